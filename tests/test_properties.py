"""Property-based tests: random compositions of the op table, checked against independent answers.

Hypothesis builds a random graph from the whole op table (random shapes with broadcasting,
shared sub-expressions, repeated operands such as ``x * x``, several parameters) whose root is
a sum of two or three named cost terms, and then checks what must hold for *every* graph:

* gradients equal central finite differences (our own, and :func:`bpgraph.gradcheck`);
* the per-term shares (:func:`~bpgraph.analysis.term_attribution`) add up to the gradient;
* the per-path shares (:func:`~bpgraph.analysis.path_attribution`) add up to the gradient;
* :func:`~bpgraph.analysis.count_paths` equals the paths enumerated, and networkx's count;
* :meth:`Graph.ancestors` and :func:`~bpgraph.analysis.term_edges` equal their definitions
  computed with networkx;
* the DOT text has one node statement per node, whose label is the node's name;
* a JSON round trip (:mod:`bpgraph.io`) gives back the same graph.

Values stay inside each op's safe domain and away from kinks (relu, abs, maximum), so finite
differences are trustworthy.  The number of examples comes from the Hypothesis profile
(``ci`` by default, ``pytest --hypothesis-profile=dev`` for a long run; see conftest.py).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Callable

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpgraph as bp
from bpgraph import analysis as an
from bpgraph.graph import Graph
from bpgraph.render import to_dot
from bpgraph.render.collapse import plan
from bpgraph.text import dot_label_text as label_text
from bpgraph.tensor import Tensor

from test_hostile_names import dot_node_labels, shown


#: Shapes of the leaves; broadcasting among them gives at most 3×3.
SHAPES = [(), (3,), (2, 3), (3, 2), (2, 1), (1, 3), (2, 2)]
#: Results larger than this are not reused, so values (and finite-difference errors) stay tame.
BOUND = 50.0
#: Distance kept from kinks and domain edges (finite differences step by 1e-6).
MARGIN = 1e-3
#: Paths are enumerated only up to this many.
ENUMERATE = 40
EPS = 1e-6


# --- building random graphs ---------------------------------------------------------------------
class Built:
    """A generated graph, its root, terms and params, and the recipe that built it.

    Its repr is the recipe, one step a line, so a failing example reads as a program.
    """

    def __init__(self, graph: Graph, root: Tensor, terms: list[Tensor], params: list[Tensor],
                 steps: list[str]) -> None:
        self.graph, self.root, self.terms, self.params, self.steps = graph, root, terms, params, steps

    def __repr__(self) -> str:
        return "Built(\n  " + "\n  ".join(self.steps) + "\n)"


def values(shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    """Float64 arrays of ``shape`` with elements in [low, high]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_subnormal=False))


def broadcast_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: some axes set to 1, some leading axes dropped."""
    ones = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    out = tuple(1 if one else n for one, n in zip(ones, shape))
    return out[draw(st.integers(0, len(out))):]


def min_abs(a: np.ndarray) -> float:
    return float(np.min(np.abs(a))) if a.size else np.inf


def tame(a: np.ndarray) -> bool:
    """Whether a result can be reused: finite and not too large."""
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a), initial=0.0)) <= BOUND


class Builder:
    """Records random ops on one graph, keeping a pool of reusable results."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.graph = Graph(strict=True)
        self.pool: list[Tensor] = []
        self.params: list[Tensor] = []
        self.steps: list[str] = []

    # leaves
    def param(self, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> Tensor:
        p = self.graph.param(self.draw(values(shape, low, high)), name=f"p{len(self.params)}")
        self.params.append(p)
        self.steps.append(f"{p.name} = param {p.value.tolist()!r}")
        return p

    def const(self, value: np.ndarray) -> Tensor:
        c = self.graph.const(value)
        self.steps.append(f"{c.name} = const {c.value.tolist()!r}")
        return c

    def pick(self, fits: Callable[[Tensor], bool] = lambda t: True) -> Tensor | None:
        """A pool member that ``fits`` (None when none does).

        Recent results are preferred (and shrinking goes towards the most recent), so ops
        build on each other into deep graphs rather than all reading the leaves.
        """
        choices = [t for t in self.pool if fits(t)]
        if not choices:
            return None
        back = 0 if self.draw(st.booleans()) else self.draw(st.integers(0, len(choices) - 1))
        return choices[-1 - back]

    def any(self) -> Tensor:
        """A pool member, recent ones preferred."""
        return self.pick()  # the pool is never empty: it starts with a param

    def partner(self, a: Tensor) -> object:
        """A second operand for an elementwise op on ``a``: itself, a pool node, a new leaf or a number."""
        kind = self.draw(st.sampled_from(["same", "pool", "param", "const", "number"]))
        if kind == "same":
            return a
        if kind == "pool":
            other = self.pick(lambda t: _broadcasts(t.shape, a.shape))
            if other is not None:
                return other
        if kind == "number":
            return self.draw(st.sampled_from([-1.5, 0.5, 2.0, 3.0]))
        shape = broadcast_shape(self.draw, a.shape)
        if kind == "const":
            return self.const(self.draw(values(shape)))
        return self.param(shape)

    def record(self, op: str, operands: list[object], **params: object) -> Tensor:
        out = self.graph.record(op, operands, params)
        args = ", ".join(o.name if isinstance(o, Tensor) else repr(o) for o in operands)
        extra = "".join(f", {k}={v!r}" for k, v in params.items())
        self.steps.append(f"{out.name} = {op}({args}{extra})")
        return out


def _broadcasts(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether ``small`` and ``big`` broadcast together to a shape of at most 2 dims."""
    try:
        return len(np.broadcast_shapes(small, big)) <= 2
    except ValueError:
        return False


def _elementwise(b: Builder, op: str) -> Tensor | None:
    """A binary elementwise op, with operand domains kept safe."""
    a = b.any()
    other = b.partner(a)
    av = a.value
    ov = other.value if isinstance(other, Tensor) else np.asarray(other)
    if not _broadcasts(np.shape(ov), av.shape):
        return None
    if op == "div" and min_abs(ov) < 0.2:
        return None
    if op == "maximum" and min_abs(av - ov) < MARGIN:
        return None
    operands = [other, a] if b.draw(st.booleans()) and op != "div" else [a, other]
    return b.record(op, operands)


def _unary(b: Builder, op: str) -> Tensor | None:
    """A unary elementwise op on a pool node inside its domain."""
    a = b.any()
    v = a.value
    if op in ("log", "sqrt") and float(np.min(v, initial=np.inf)) < 0.05:
        if float(np.max(np.abs(v), initial=0.0)) > 2.9:
            return None
        a = b.record("sigmoid", [a])  # into (0.05, 0.95): inside the domain, away from 0
    if op in ("abs", "relu") and min_abs(v) < MARGIN:
        return None
    if op == "exp" and float(np.max(v, initial=-np.inf)) > 3.5:
        return None
    if op == "pow":
        exponent = b.draw(st.sampled_from([2.0, 3.0, -1.0, 0.5, 1.5]))
        if exponent == -1.0 and min_abs(v) < 0.2:
            return None
        if exponent in (0.5, 1.5) and float(np.min(v, initial=np.inf)) < 0.05:
            return None
        return b.record("pow", [a], exponent=exponent)
    if op == "dropout":
        keep = b.draw(st.sampled_from([0.5, 0.8, 1.0]))
        mask = (np.random.default_rng(b.draw(st.integers(0, 9))).random(a.shape) < keep).astype(float)
        return b.record("dropout", [a, b.const(mask)], keep_prob=keep)
    return b.record(op, [a])


def _matmul(b: Builder, op: str) -> Tensor | None:
    """``a @ w`` (``op="matmul"``) or ``W @ a + c`` (``op="linear"``) on a 2-D pool node."""
    a = b.pick(lambda t: t.value.ndim == 2)
    if a is None:
        return None
    n, k = a.shape
    if op == "matmul":
        w = b.pick(lambda t: t.value.ndim == 2 and t.shape[0] == k) if b.draw(st.booleans()) else None
        if w is None:
            w = b.param((k, b.draw(st.integers(1, 3))), -1.0, 1.0)
        return b.record("matmul", [a, w])
    w = b.param((b.draw(st.integers(1, 3)), n), -1.0, 1.0)
    bias = b.param((w.shape[0], 1))
    return b.record("linear", [w, a, bias])


def _axis_op(b: Builder, op: str) -> Tensor | None:
    """softmax / log_softmax along an axis, a reduction, reshape or transpose."""
    a = b.any()
    ndim = a.value.ndim
    if op in ("softmax", "log_softmax"):
        if ndim == 0:
            return None
        return b.record(op, [a], axis=b.draw(st.integers(-ndim, ndim - 1)))
    if op in ("sum", "mean"):
        axis = b.draw(st.none() | st.integers(0, ndim - 1)) if ndim else None
        return b.record(op, [a], axis=axis, keepdims=b.draw(st.booleans()))
    if op == "reshape":
        shape = b.draw(st.sampled_from([(a.value.size,), a.shape[::-1], (1, a.value.size)]))
        return b.record("reshape", [a], shape=shape)
    axes = b.draw(st.sampled_from([None, tuple(range(ndim))[::-1]]))
    return b.record("transpose", [a], axes=axes)


def _l2(b: Builder, op: str) -> Tensor:
    weights = [b.any() for _ in range(b.draw(st.integers(1, 3)))]
    return b.record("l2_penalty", weights, lambd=b.draw(st.sampled_from([0.1, 0.7])), m=5)


def _fork(b: Builder, op: str) -> Tensor | None:
    """1-4 diamonds in a row: two smooth functions of a node, joined again (paths double each time)."""
    a = b.any()
    for _ in range(b.draw(st.integers(1, 4))):
        left = b.record(b.draw(st.sampled_from(["tanh", "sigmoid", "neg", "square"])), [a])
        right = b.record(b.draw(st.sampled_from(["tanh", "sigmoid", "neg"])), [a])
        a = b.record(b.draw(st.sampled_from(["add", "mul", "sub"])), [left, right])
    return a


STEPS: dict[str, Callable[[Builder, str], Tensor | None]] = {
    "fork": _fork,
    **{op: _elementwise for op in ("add", "sub", "mul", "div", "maximum")},
    **{op: _unary for op in ("neg", "pow", "exp", "log", "sqrt", "square", "abs", "relu",
                             "sigmoid", "tanh", "dropout")},
    **{op: _matmul for op in ("matmul", "linear")},
    **{op: _axis_op for op in ("softmax", "log_softmax", "sum", "mean", "reshape", "transpose")},
    "l2_penalty": _l2,
}


def make_term(b: Builder, k: int) -> Tensor:
    """A scalar cost term named ``term<k>`` whose own op is a reduction or a cost, never add/sub.

    The first term reads the last result, so the longest chain always reaches the root.
    """
    a = b.pool[-1] if k == 0 else b.any()
    kind = b.draw(st.sampled_from(["sum", "mean", "bce", "softmax_ce", "l2"]))
    name = f"term{k}"
    if kind == "bce" and float(np.max(np.abs(a.value), initial=0.0)) < 4:
        prob = b.record("sigmoid", [a])
        labels = b.const(b.draw(values(a.shape, 0.0, 1.0)))
        term = b.record("binary_cross_entropy", [prob, labels])
    elif kind == "softmax_ce" and a.value.ndim:
        labels = b.const(b.draw(values(a.shape, 0.0, 1.0)))
        term = b.record("softmax_cross_entropy", [a, labels], axis=b.draw(st.integers(0, a.value.ndim - 1)))
    elif kind == "l2":
        term = _l2(b, "l2_penalty")
    else:
        term = b.record("mean" if kind == "mean" else "sum", [a], axis=None, keepdims=False)
    b.steps.append(f"  (named {name})")
    return term.named(name)


@st.composite
def graphs(draw: st.DrawFn) -> Built:
    """A random graph over the op table whose root ``J`` is a sum of 2-3 named terms."""
    b = Builder(draw)
    for _ in range(draw(st.integers(1, 3))):
        b.pool.append(b.param(draw(st.sampled_from(SHAPES))))
    if draw(st.booleans()):
        x = b.graph.input(draw(values(draw(st.sampled_from(SHAPES)))), name="x")
        b.steps.append(f"x = input {x.value.tolist()!r}")
        b.pool.append(x)
    for _ in range(draw(st.integers(3, 12))):
        op = draw(st.sampled_from(sorted(STEPS)))
        out = STEPS[op](b, op)
        if out is not None and tame(out.value):
            b.pool.append(out)
    terms = [make_term(b, k) for k in range(draw(st.integers(2, 3)))]
    root = terms[0]
    for t in terms[1:]:
        root = b.record(draw(st.sampled_from(["add", "sub"])), [root, t])
    root = root.named("J")
    b.steps.append("  (named J)")
    return Built(b.graph, root, terms, b.params, b.steps)


# --- independent answers ------------------------------------------------------------------------
def central_differences(graph: Graph, root: Tensor, leaf: Tensor, eps: float = EPS) -> np.ndarray:
    """∂root/∂leaf by central differences in float64, replaying the forward pass."""
    order = sorted(graph.ancestors(root))
    base = np.array(leaf.value, dtype=np.float64)
    out = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        results = []
        for step in (eps, -eps):
            shifted = base.copy()
            shifted[index] += step
            results.append(float(graph.evaluate(order, {leaf.id: shifted})[root.id]))
        out[index] = (results[0] - results[1]) / (2 * eps)
    return out


def close_to_sum(total: np.ndarray, parts: list[np.ndarray], floor: float, rtol: float = 1e-10) -> bool:
    """Whether the parts add up to ``total`` within ``rtol`` of their size, or within ``floor``.

    The floor is for rounding upstream: a split is exact in real numbers, but an op's VJP is
    linear only up to rounding (softmax's ``out * (g - Σ g·out)`` turns a constant upstream
    gradient into ~1e-17 instead of 0), so a tiny total can differ from its parts by rounding
    on the scale of the gradients flowing through the graph.
    """
    summed = np.zeros(np.shape(total))
    for p in parts:
        summed = summed + p
    scale = _size(total) + sum(_size(p) for p in parts)
    return _size(summed - total) <= rtol * scale + floor


def _size(a: np.ndarray) -> float:
    return float(np.linalg.norm(np.ravel(a)))


def rounding_floor(grads: dict[str, np.ndarray]) -> float:
    """1e-13 of the largest gradient anywhere in the graph: the size of rounding in a split."""
    return 1e-13 * max((float(np.max(np.abs(g), initial=0.0)) for g in grads.values()), default=0.0)


def reachable_params(built: Built) -> list[Tensor]:
    upstream = built.graph.ancestors(built.root)
    return [p for p in built.params if p.id in upstream]


# --- the properties -----------------------------------------------------------------------------
@given(graphs())
def test_gradients_match_central_differences(built: Built):
    g, root = built.graph, built.root
    grads = g.backward(root)
    for p in built.params:
        numeric = central_differences(g, root, p)
        if p.name not in grads:
            assert not np.any(numeric), f"{p.name}: no path, yet finite differences move J"
            continue
        analytic = grads[p.name]
        assert analytic.shape == p.shape
        scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-5 * scale, err_msg=p.name)
    # bpgraph's own check agrees (a leaf whose gradient is ~0 passes on its absolute error)
    for leaf in bp.gradcheck(g, root, tol=1e-5).leaves:
        assert leaf.ok, leaf


@given(graphs())
def test_term_shares_add_up_to_the_gradient(built: Built):
    g, root = built.graph, built.root
    grads = g.backward(root)
    floor = rounding_floor(grads)
    report = an.term_attribution(g, root)
    assert set(report.terms) - {an.OTHER} == {t.name for t in built.terms}
    assert an.OTHER not in report.terms  # the root is a plain chain of +/- over the terms
    rows = {r.name: r for r in report.rows}
    for p in reachable_params(built):
        assert p.name in rows, f"{p.name} has a gradient but no row"
    for row in report.rows:
        np.testing.assert_array_equal(row.grad, grads[row.name])
        parts = [c.value for c in row.cells if c.value is not None]
        assert close_to_sum(row.grad, parts, floor), row.name
        for term, cell in zip(built.terms, row.cells):
            assert (cell.status == an.NO_PATH) == (g.id_of(row.name) not in g.ancestors(term)), (row.name, term.name)


@given(graphs())
def test_path_shares_add_up_to_the_gradient_and_counts_agree(built: Built):
    g, root = built.graph, built.root
    grads = g.backward(root)
    floor = rounding_floor(grads)
    for p in built.params:
        count = an.count_paths(g, root, p)
        if count > ENUMERATE:
            report = an.path_attribution(g, root, p, limit=ENUMERATE)
            assert report.capped and len(report.paths) == ENUMERATE and report.count == count
            continue
        listed = an.paths(g, root, p, limit=None)
        assert len(listed) == count
        assert len({tuple(path) for path in listed}) == count  # no path listed twice
        assert count == sum(1 for _ in nx.all_simple_paths(g.nx, p.id, root.id))
        for path in listed:
            assert path[0] == p.name and path[-1] == root.name
        report = an.path_attribution(g, root, p, limit=None)
        assert not report.capped and report.count == count
        assert [list(c.nodes) for c in report.paths] == listed
        if count == 0:
            assert p.name not in grads and not np.any(report.total)
            continue
        np.testing.assert_allclose(report.total, grads[p.name], rtol=1e-12, atol=1e-14)
        assert close_to_sum(grads[p.name], [c.value for c in report.paths], floor), p.name


@given(graphs(), st.data())
def test_ancestors_and_term_edges_match_their_networkx_definitions(built: Built, data: st.DataObject):
    g, root = built.graph, built.root
    d = g.nx
    for node_id in g.nodes:
        assert an.descendants(g, node_id) == nx.descendants(d, node_id) | {node_id}
        expected = nx.ancestors(d, node_id) | {node_id}
        first, second = g.ancestors(node_id), g.ancestors(node_id)  # the second one remembered
        assert first == second == expected and first is not second
        first.add(-1)  # a caller's changes do not reach the remembered answer
        assert g.ancestors(node_id) == expected
    explicit = data.draw(st.none() | st.lists(st.sampled_from(sorted(g.nodes)), min_size=1, max_size=3))
    terms = an.cost_terms(g, root, explicit)
    if explicit is None:
        assert terms == sorted(t.id for t in built.terms)
    root_side = nx.ancestors(d, root.id) | {root.id}
    expected_edges: dict[tuple[int, int], list[str]] = {}
    for t in terms:  # on a path into t, or on a path from t to the root
        into = nx.ancestors(d, t) | {t}
        above = (nx.descendants(d, t) | {t}) & root_side
        for u, v in d.edges:
            if v in into or u in above and v in root_side:
                expected_edges.setdefault((u, v), []).append(g.name_of(t))
    got = an.term_edges(g, root, explicit)
    assert {e: list(names) for e, names in got.items()} == expected_edges
    assert [v for _, v in got] == sorted(v for _, v in got)  # in the order of the heads
    reach = an.term_reach(g, root, explicit)
    assert set(np.flatnonzero(reach.root_side).tolist()) == root_side
    tails = np.array([u for u, _ in d.edges], dtype=np.intp)
    heads = np.array([v for _, v in d.edges], dtype=np.intp)
    assert reach.masks(tails, heads).tolist() == [reach.mask(u, v) for u, v in d.edges]


@given(graphs(), st.integers(1, 12))
def test_collapse_plans_partition_the_graph_into_an_acyclic_picture(built: Built, max_nodes: int):
    """Depth-band groups: each node in at most one group, the root and its terms in none, and
    the collapsed picture still a DAG (an edge never runs from a later band to an earlier one)."""
    g, root = built.graph, built.root
    keep = {root.id, *an.cost_terms(g, root)}
    result = plan(g, (), max_nodes, keep)
    members = [m for group in result.groups for m in group.members]
    assert len(members) == len(set(members)) and not keep & set(members)
    assert all(list(group.members) == sorted(group.members) for group in result.groups)
    grouped = {m: k for k, group in enumerate(result.groups) for m in group.members}
    assert result.group_of.tolist() == [grouped.get(i, -1) for i in range(len(g))]
    assert result.units == len(g) - len(members) + len(result.groups)
    if len(g) <= max_nodes:
        assert not result.groups
    # the budget, unless kept nodes that feed each other split the bands into more levels
    assert result.units <= max(max_nodes, 2 * len(keep) + 2)
    unit = {i: ("group", grouped[i]) if i in grouped else ("node", i) for i in g.nodes}
    picture = nx.DiGraph()
    picture.add_nodes_from(set(unit.values()))
    picture.add_edges_from((unit[u], unit[v]) for u, v in g.nx.edges if unit[u] != unit[v])
    assert nx.is_directed_acyclic_graph(picture)


# --- DOT ---------------------------------------------------------------------------------------
#: Pieces of text that DOT, Graphviz labels, XML or terminals treat specially.
TRICKY = ['"', "\\", "\n", "\r", "\r\n", "\t", "\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b", "<", ">", "&", "&amp;",
          ";", "#", "%", "$", "_", "{", "}", "[", "]", "=", "-", "->", "|", "'", "`", "\\N", "\\l",
          "\u202e", "\u200f", "\u200d", "\u0301", "\u2028", "λ", "∂", "🦄"]
#: Names made of tricky pieces and any characters of the BMP below the surrogates.
NAMES = st.lists(st.sampled_from(TRICKY) | st.integers(0x20, 0xD7FF).map(chr),
                 max_size=8).map("".join)


def rename_some(g: Graph, data: st.DataObject, names: st.SearchStrategy[str] = NAMES) -> None:
    """Rename up to 3 nodes to arbitrary text (quotes, backslashes, newlines, markup, any Unicode)."""
    for node_id in data.draw(st.lists(st.sampled_from(sorted(g.nodes)), max_size=3, unique=True)):
        g.rename(node_id, data.draw(names.filter(lambda s: s and s not in g)))
    note(repr(g.names))


@given(graphs(), st.data())
def test_dot_has_one_statement_per_node_labelled_with_its_name(built: Built, data: st.DataObject):
    g = built.graph
    rename_some(g, data)
    source = to_dot(g, built.root).source  # with the caption and legend, which hold names too
    labels = dot_node_labels(source)
    assert sorted(labels) == sorted(g.nodes)
    for node_id, attrs in g.nodes.items():
        name_lines = shown(attrs["name"])
        assert labels[node_id][:len(name_lines)] == name_lines, (attrs["name"], labels[node_id])
        quoted = label_text(attrs["name"]).replace('"', '\\"')  # DOT quoting of the escaped label
        assert f'label="{quoted}\\n' in source
    assert len(re.findall(r"^\s*\d+ -> \d+ ", source, re.MULTILINE)) == g.nx.number_of_edges()


# --- JSON ----------------------------------------------------------------------------------------
try:
    from bpgraph import io as bpio
except ImportError:  # being written: the property waits for it
    bpio = None


def _no_constant(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")


@pytest.mark.skipif(bpio is None, reason="bpgraph.io is not available")
@given(graphs(), st.data())
def test_json_round_trip_gives_the_same_graph(built: Built, data: st.DataObject):
    g = built.graph
    rename_some(g, data, NAMES.filter(bool))  # a file refuses the empty name (test_hostile_names)
    grads = g.backward(built.root)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "graph.json"
        bpio.save_json(g, path, grads=True)
        text = path.read_text(encoding="utf-8")
        back = bpio.load_json(path)
        assert bpio.save_json(g, path, grads=True).read_text(encoding="utf-8") == text  # deterministic
    saved = json.loads(text, parse_constant=_no_constant)  # strict JSON: no NaN/Infinity tokens
    assert back.names == g.names
    assert sorted(back.nx.edges) == sorted(g.nx.edges)
    for node_id, attrs in g.nodes.items():
        other = back.nodes[node_id]
        for key in ("name", "kind", "op", "operands", "params", "scope", "requires_grad"):
            assert other[key] == attrs[key], (attrs["name"], key)
        assert other["value"].shape == attrs["value"].shape, attrs["name"]
        assert other["value"].dtype == attrs["value"].dtype, attrs["name"]
        np.testing.assert_array_equal(other["value"], attrs["value"], err_msg=attrs["name"])
        node = saved["nodes"][node_id]
        assert node["name"] == attrs["name"]
        if attrs["grad"] is None:
            assert node["grad"] is None, attrs["name"]
        else:
            np.testing.assert_array_equal(np.array(node["grad"]), attrs["grad"], err_msg=attrs["name"])
    assert saved["grad_root"] == built.root.name
    again = back.backward(saved["grad_root"])
    assert list(again) == list(grads)
    for name, grad in grads.items():
        np.testing.assert_array_equal(again[name], grad, err_msg=name)
