"""Pure queries on a recorded graph: which gradient flows where, and why.

The questions are asked in the words of the chain rule.  A *path* from WRT to OF is a chain
of forward data edges ``WRT -> ... -> OF``; the gradient ∂OF/∂WRT travels back along every
such path and is the sum, over the paths, of the product of the local derivatives (vector-
Jacobian products) along each one.  When there is no path, the gradient is zero
*structurally*: no numbers are needed to know it.

* reachability: :func:`depends`, :func:`count_paths`, :func:`paths`, :func:`through`,
  :func:`find_path`, and claims a test can assert (:func:`assert_no_path`, :func:`assert_path`);
* attribution: :func:`term_attribution` (each cost term's share of every gradient) and
  :func:`path_attribution` (each path's share of one gradient);
* comparison: :func:`diff_grads` (two graphs) and :func:`compare_grads` (a hand-written
  backward pass, with the node where its error enters);
* :func:`explain`: the chain rule for one pair as text, Markdown or LaTeX.

Every query takes the graph first and accepts nodes as names, Tensors or ids (a typo gets
:class:`~bpgraph.errors.UnknownNodeError` with "did you mean").  Traversals are iterative and
ids ascend in a topological order, so no topological sort is ever needed and nothing recurses.  Paths come in
one deterministic order everywhere: depth-first from OF back to WRT, visiting each node's
operands by increasing id.  An operand used at several positions (``x * x``) is one edge, whose
local derivative sums over those positions.  Reports are frozen dataclasses with ``to_dict()``
(plain JSON-ready data, names exactly as they are) and a ``__str__`` giving a text table, in
which every name stays on one line whatever it holds (:func:`one_line`).
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence, Union

import numpy as np

from .autodiff import edge_vjp, gradients, seed_for
from .errors import BpgraphError, GraphError, UnknownNodeError
from .graph import KINDS
from .ops import OPS
from .tensor import Tensor

if TYPE_CHECKING:
    from .graph import Graph

Ref = Union[Tensor, int, str]
Pattern = Union[str, Tensor, int, Iterable[Union[Tensor, int, str]]]

NO_PATH, ZERO, NONZERO = "no path", "zero", "nonzero"
OTHER = "(other)"
OK, WRONG, WRONG_SHAPE, NOT_GIVEN = "ok", "wrong", "wrong shape", "not given"


class ClaimError(BpgraphError, AssertionError):
    """A claim about the graph's paths is false; the message shows the path or the reason."""


# --- reachability -------------------------------------------------------------------------------
def descendants(graph: Graph, ref: Ref) -> set[int]:
    """Ids of every node that depends on ``ref``, including itself."""
    return graph.descendants(ref)


def depends(graph: Graph, of: Ref, wrt: Ref) -> bool:
    """Whether ``of`` depends on ``wrt``: a forward path leads from WRT to OF (a node depends on itself).

    When it is False, ∂OF/∂WRT is zero whatever the values.
    """
    of_id = graph.id_of(of)
    return graph.id_of(wrt) in graph.ancestors(of_id)


def count_paths(graph: Graph, of: Ref, wrt: Ref) -> int:
    """The exact number of paths from WRT to OF, by dynamic programming (never by enumeration).

    Each node on a path counts the paths reaching it from WRT, as the sum over its distinct
    operands, in increasing id order: linear in the graph, exact for 2**60 paths or more.
    """
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    if not on:
        return 0
    nodes = graph.nodes
    counts: dict[int, int] = {}
    for node_id in sorted(on):
        if node_id == wrt_id:
            counts[node_id] = 1
        else:
            counts[node_id] = sum(counts[o] for o in set(nodes[node_id]["operands"]) if o in counts)
    return counts[of_id]


def _walk(graph: Graph, of_id: int, wrt_id: int, on: set[int],
          seed: np.ndarray | None = None) -> Iterator[tuple[list[int], np.ndarray | None]]:
    """Every path from WRT to OF (ids, WRT first) in the module's order, lazily.

    With a ``seed`` each path comes with its contribution: the seed carried back from OF through
    the local VJPs of that path only (computed when the path is reached, so shared suffixes are
    computed once per branch and a capped walk does little extra work).  Iterative.
    """
    nodes = graph.nodes
    # entries: (node, suffix as a linked list (node, next) toward OF, user and its gradient)
    stack: list[tuple[int, Any, int | None, np.ndarray | None]] = [(of_id, None, None, seed)]
    while stack:
        node, suffix, user, carried = stack.pop()
        grad = carried if user is None or carried is None else edge_vjp(graph, user, node, carried)
        link = (node, suffix)
        if node == wrt_id:
            ids = []
            while link is not None:
                ids.append(link[0])
                link = link[1]
            yield ids, grad
            continue
        operands = sorted({o for o in nodes[node]["operands"] if o in on}, reverse=True)
        stack.extend((o, link, node, grad) for o in operands)


def paths(graph: Graph, of: Ref, wrt: Ref, limit: int | None = 1000) -> list[list[str]]:
    """The paths from WRT to OF as lists of node names (WRT first), at most ``limit`` of them.

    Deterministic order (depth-first from OF, operands by increasing id).  Enumerating is only
    for looking: :func:`count_paths` says how many there are, in linear time.
    """
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    if not on:
        return []
    names = graph.nodes
    walk = itertools.islice(_walk(graph, of_id, wrt_id, on), limit)
    return [[names[i]["name"] for i in ids] for ids, _ in walk]


def select(graph: Graph, pattern: Pattern) -> list[int]:
    """Ids (ascending) of the nodes a pattern names.

    A pattern is a node name; a glob on names (``"A*"``, ``"W[12]"``: :func:`fnmatch.fnmatchcase`,
    case-sensitive); ``"kind:param"`` (or input, const, op); ``"op:relu"``; or a collection of
    names, Tensors and ids.  A name or glob that matches nothing raises UnknownNodeError, so a
    typo cannot make a claim pass vacuously.
    """
    if isinstance(pattern, str):
        if pattern in graph:
            return [graph.id_of(pattern)]
        nodes = graph.nodes
        if pattern.startswith("kind:"):
            kind = pattern[5:]
            if kind not in KINDS:
                raise GraphError(f"unknown kind {kind!r} in pattern {pattern!r}; kinds are {', '.join(KINDS)}")
            return [i for i, a in nodes.items() if a["kind"] == kind]
        if pattern.startswith("op:"):
            op = pattern[3:]
            if op not in OPS:
                raise GraphError(f"unknown op {op!r} in pattern {pattern!r}; ops are {', '.join(sorted(OPS))}")
            return [i for i, a in nodes.items() if a["op"] == op]
        found = [i for i, a in nodes.items() if fnmatch.fnmatchcase(a["name"], pattern)]
        if not found:
            raise UnknownNodeError(pattern, graph.names)
        return found
    if isinstance(pattern, (Tensor, int, np.integer)):
        return [graph.id_of(pattern)]
    return sorted({graph.id_of(p) for p in pattern})


def _first_path(graph: Graph, of_id: int, wrt_id: int) -> list[int] | None:
    on = graph.between(of_id, wrt_id)
    return next(_walk(graph, of_id, wrt_id, on))[0] if on else None


def find_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
              through: Pattern | None = None) -> list[str] | None:
    """One path to OF (node names, first node first), or None when there is none.

    With ``wrt``: a path from WRT; with ``through`` too, one that passes through a node
    matching the pattern strictly between WRT and OF.  Without ``wrt`` the path may start
    anywhere: it starts at the first matching node OF depends on (other than OF itself).
    The path returned is the first in the module's order through the first such node.
    """
    of_id = graph.id_of(of)
    wrt_id = None if wrt is None else graph.id_of(wrt)
    if wrt_id is None and through is None:
        raise GraphError("find_path needs wrt=, through= or both")
    matches = None if through is None else set(select(graph, through))
    if wrt_id is None:
        upstream = graph.ancestors(of_id)
        starts = sorted(m for m in matches if m in upstream and m != of_id)
        ids = _first_path(graph, of_id, starts[0]) if starts else None
    elif matches is None:
        ids = _first_path(graph, of_id, wrt_id)
    else:
        inner = sorted(m for m in matches & graph.between(of_id, wrt_id) if m not in (of_id, wrt_id))
        ids = None
        if inner:
            ids = _first_path(graph, inner[0], wrt_id)[:-1] + _first_path(graph, of_id, inner[0])
    return None if ids is None else [graph.name_of(i) for i in ids]


def through(graph: Graph, of: Ref, wrt: Ref | None, pattern: Pattern) -> bool:
    """Whether some path from WRT to OF passes through a node matching ``pattern``.

    Only nodes strictly between WRT and OF count.  ``wrt=None`` means "from anywhere": True
    when OF depends on some matching node other than itself.  See :func:`select` for patterns.
    """
    return find_path(graph, of, wrt, through=pattern) is not None


def _describe_pattern(graph: Graph, pattern: Pattern) -> str:
    if isinstance(pattern, str):
        return repr(pattern)
    return "{" + ", ".join(graph.name_of(i) for i in select(graph, pattern)) + "}"


def no_path_reason(graph: Graph, of: Ref, wrt: Ref) -> str | None:
    """Why ∂OF/∂WRT is structurally zero, as one sentence; None when OF depends on WRT.

    >>> no_path_reason(g, "L2", "A2")   # doctest: +SKIP
    'L2 does not depend on A2; its inputs are W1, W2, W3.'
    """
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    if wrt_id in graph.ancestors(of_id):
        return None
    attrs = graph.nodes[of_id]
    of_name, wrt_name = attrs["name"], graph.name_of(wrt_id)
    if attrs["kind"] != "op":
        return f"{of_name} does not depend on {wrt_name}; {of_name} is a {attrs['kind']} leaf with no inputs."
    inputs = ", ".join(graph.name_of(o) for o in dict.fromkeys(attrs["operands"]))
    return f"{of_name} does not depend on {wrt_name}; its inputs are {inputs}."


def assert_no_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                   through: Pattern | None = None) -> None:
    """Claim there is no path from WRT to OF (through a matching node, when ``through`` is given).

    ``assert_no_path(g, of="L2", through="A*")``: L2 depends on no A node.  Raises ClaimError
    (an AssertionError) showing one offending path when the claim is false.
    """
    found = find_path(graph, of, wrt, through=through)
    if found is None:
        return
    of_name = graph.name_of(graph.id_of(of))
    where = f"from {graph.name_of(graph.id_of(wrt))} to {of_name}" if wrt is not None else f"into {of_name}"
    via = "" if through is None else f" through {_describe_pattern(graph, through)}"
    total = ""
    if wrt is not None and through is None:
        total = f" (1 of {count_paths(graph, of, wrt)} paths)"
    raise ClaimError(f"claim failed: there is a path {where}{via}{total}: {' -> '.join(map(one_line, found))}")


def assert_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                through: Pattern | None = None) -> list[str]:
    """Claim there is a path from WRT to OF (through a matching node, when ``through`` is given).

    Returns the first such path; raises ClaimError saying why there is none.
    """
    found = find_path(graph, of, wrt, through=through)
    if found is not None:
        return found
    of_name = graph.name_of(graph.id_of(of))
    if wrt is not None and through is None:
        raise ClaimError(f"claim failed: {no_path_reason(graph, of, wrt)}")
    where = f"from {graph.name_of(graph.id_of(wrt))} to {of_name}" if wrt is not None else f"into {of_name}"
    raise ClaimError(f"claim failed: no path {where} passes through {_describe_pattern(graph, through)}")


# --- small shared helpers ---------------------------------------------------------------------
def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.flags.writeable = False
    return a


def _norm(a: np.ndarray | None) -> float:
    return 0.0 if a is None else float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))


def _num(x: float | None) -> float | None:
    """A JSON-safe float: None for a missing, infinite or NaN number."""
    return None if x is None or not np.isfinite(x) else float(x)


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.3e}"


def _array_json(a: np.ndarray, limit: int = 16) -> Any:
    """Small arrays as nested lists; larger ones as their shape and norm only."""
    return a.tolist() if a.size <= limit else {"shape": list(a.shape), "norm": _norm(a)}


def _describe_value(a: np.ndarray) -> str:
    """A scalar's value, a tiny array's values, else shape and norm."""
    if a.size == 1:
        return f"{float(a.ravel()[0]):.6g}"
    if a.size <= 4:
        return "[" + ", ".join(f"{float(v):.4g}" for v in a.ravel()) + f"] (shape {a.shape})"
    return f"shape {a.shape}, norm {_norm(a):.3e}"


#: Bidirectional controls: U+202E, say, shows everything after it on the line reversed.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(text: str) -> str:
    """``text`` as one line of plain text that shows every character it holds.

    Node names may hold anything, but a table row or a sentence must stay one line, and a
    terminal must neither obey nor hide what is in a name.  C0 control characters (newline,
    tab, escape, NUL...) and DEL become their Unicode control pictures (``␊ ␉ ␛ ␀ ␡``); C1
    controls, bidirectional controls, line and paragraph separators and lone surrogates (which
    cannot even be encoded) become ``[U+XXXX]``, as in :func:`tex_text`.  Everything else
    (emoji, accents, zero-width joiners, backslashes, markup) is kept as it is.

    >>> one_line("a\\nb\\tc\\x1b[31m")
    'a␊b␉c␛[31m'
    >>> one_line("\\u202eevil")
    '[U+202E]evil'
    """
    if text.isprintable():  # the usual case; every character changed below is non-printable
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("\u2421")
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(f"[U+{code:04X}]")
        else:
            out.append(ch)
    return "".join(out)


def _width(text: str) -> int:
    """Columns ``text`` takes in a monospace terminal: wide characters (CJK, most emoji) take
    two, combining marks and zero-width format characters none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, one line per row whatever the cells hold (see :func:`one_line`)."""
    cells = [[one_line(str(c)) for c in row] for row in (header, *rows)]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip(" ")

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def _root_id(graph: Graph, root: Ref | None) -> int:
    return graph.output.id if root is None else graph.id_of(root)


# --- cost terms -------------------------------------------------------------------------------
def cost_terms(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None) -> list[int]:
    """The terms of a root that is a sum (J = cross_entropy + L2 gives [cross_entropy, L2]).

    Found by unfolding the root's chain of ``add``/``sub`` ops; a root that is not a sum is
    its own single term. ``terms`` names them explicitly instead. Ids in recording order.
    """
    if terms is not None:
        return sorted({graph.id_of(t) for t in terms})
    root_id = _root_id(graph, root)
    found: set[int] = set()
    stack = [root_id]
    nodes = graph.nodes
    while stack:
        node_id = stack.pop()
        attrs = nodes[node_id]
        if attrs["op"] in ("add", "sub"):
            stack.extend(attrs["operands"])
        else:
            found.add(node_id)
    return sorted(found)


class TermReach(NamedTuple):
    """Which cost terms each node feeds and is fed by: one bit per term, in term order.

    Arrays indexed by node id up to the last of the root and its terms (later nodes feed
    nothing): ``feeds[i]`` has bit k when node i is term k or one of its ancestors,
    ``fed_by[i]`` when it is term k or depends on it, and ``root_side[i]`` is true when the
    root depends on node i (or is it).  Built by :func:`term_reach`; read by :meth:`mask`.
    The arrays are read-only: one TermReach is shared by every caller for the same graph.
    """

    terms: tuple[int, ...]
    feeds: np.ndarray
    fed_by: np.ndarray
    root_side: np.ndarray

    def mask(self, u: int, v: int) -> int:
        """The terms whose gradient flows back along the edge u -> v (see :func:`term_edges`)."""
        if v >= len(self.feeds):
            return 0
        return int(self.feeds[v] | self.fed_by[u] if self.root_side[v] else self.feeds[v])

    def masks(self, tails: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """:meth:`mask` of every edge ``tails[k] -> heads[k]`` at once."""
        top = len(self.feeds)
        inside = heads < top
        u, v = tails[inside], heads[inside]
        out = np.zeros(len(heads), dtype=self.feeds.dtype)
        out[inside] = self.feeds[v] | np.where(self.root_side[v], self.fed_by[u], 0)
        return out

    def names(self, graph: Graph, mask: int) -> tuple[str, ...]:
        """The names of the terms in ``mask``."""
        return tuple(graph.name_of(t) for k, t in enumerate(self.terms) if mask >> k & 1)


def term_reach(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None) -> TermReach:
    """Two passes over the ids (a topological order), one bit per cost term of ``root``.

    Down from the root marking what feeds each term and the root (one more bit), up from
    the first term marking what each term feeds.  Linear in the graph size, whatever the
    number of paths; remembered until the graph grows.
    """
    root_id = _root_id(graph, root)
    term_ids = cost_terms(graph, root_id, terms)
    return graph.derived(f"term_reach {root_id} {term_ids}", lambda g: _term_reach(g, root_id, term_ids))


def _term_reach(graph: Graph, root_id: int, term_ids: list[int]) -> TermReach:
    nodes = graph.nodes
    count = len(term_ids)
    top = max([root_id, *term_ids])
    terms_mask = (1 << count) - 1
    both = [0] * (top + 1)  # bit k: feeds term k; bit ``count``: feeds the root
    both[root_id] = 1 << count
    for k, t in enumerate(term_ids):
        both[t] |= 1 << k
    fed_by = [bits & terms_mask for bits in both]
    for i in range(top, -1, -1):
        if both[i]:
            for o in nodes[i]["operands"]:
                both[o] |= both[i]
    for i in range(term_ids[0] if term_ids else top + 1, top + 1):
        for o in nodes[i]["operands"]:
            fed_by[i] |= fed_by[o]
    dtype = np.int64 if count < 62 else object  # the terms and the root side's bit fit 63 bits
    arrays = (np.array([bits & terms_mask for bits in both], dtype=dtype), np.array(fed_by, dtype=dtype),
              np.array([bits >> count for bits in both], dtype=bool))
    for array in arrays:
        array.flags.writeable = False
    return TermReach(tuple(term_ids), *arrays)


def term_edges(graph: Graph, root: Ref | None = None,
               terms: Iterable[Ref] | None = None) -> dict[tuple[int, int], tuple[str, ...]]:
    """For every edge that carries part of ∂root/∂(something), the names of the terms it carries.

    An edge u -> v carries term t's gradient when it lies on a path into t (v is t or one of
    its ancestors) or on the path from t up to the root (u depends on t and the root on v).
    Edges missing from the result carry nothing from this root: that is how a drawing shows
    "no path".  Keys are in the order of their heads' ids; names in the order of the terms.
    """
    reach = term_reach(graph, root, terms)
    nodes = graph.nodes
    names: dict[int, tuple[str, ...]] = {}
    carried: dict[tuple[int, int], tuple[str, ...]] = {}
    for v in range(len(reach.feeds)):
        for u in dict.fromkeys(nodes[v]["operands"]):
            mask = reach.mask(u, v)
            if mask:
                if mask not in names:
                    names[mask] = reach.names(graph, mask)
                carried[(u, v)] = names[mask]
    return carried


# --- per-term attribution ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TermCell:
    """One term's share of one node's gradient: ``no path``, ``zero`` (numerically) or ``nonzero``."""

    term: str
    status: str
    norm: float
    value: np.ndarray | None  # None exactly when status is "no path"

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"term": self.term, "status": self.status, "norm": self.norm}
        if values and self.value is not None:
            out["value"] = self.value.tolist()
        return out


@dataclass(frozen=True, eq=False)
class TermRow:
    """A node's full gradient and each term's share of it."""

    name: str
    kind: str
    shape: tuple[int, ...]
    grad: np.ndarray
    cells: tuple[TermCell, ...]

    @property
    def norm(self) -> float:
        return _norm(self.grad)

    def cell(self, term: str) -> TermCell:
        for c in self.cells:
            if c.term == term:
                return c
        raise UnknownNodeError(term, [c.term for c in self.cells])

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                               "norm": self.norm, "terms": [c.to_dict(values) for c in self.cells]}
        if values:
            out["grad"] = self.grad.tolist()
        return out


@dataclass(frozen=True, eq=False)
class TermReport:
    """Every node's gradient of ``root`` split into the contribution of each cost term.

    ``terms`` are the columns; it ends with ``(other)`` only when some gradient reaches the root
    along a path that avoids every term (possible with explicitly named terms).  ``seeds`` holds
    ∂root/∂term along the add chain (1 for ``+``, -1 for ``-``).  Rows come in backward order.
    """

    root: str
    terms: tuple[str, ...]
    seeds: Mapping[str, np.ndarray]
    rows: tuple[TermRow, ...]

    def row(self, name: str) -> TermRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise UnknownNodeError(name, [r.name for r in self.rows])

    def reached_by(self, term: str) -> list[str]:
        """Names of the nodes this term's gradient reaches (status not ``no path``), backward order."""
        if term not in self.terms:
            raise UnknownNodeError(term, self.terms)
        return [r.name for r in self.rows if r.cell(term).status != NO_PATH]

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return {"root": self.root, "terms": list(self.terms),
                "seeds": {t: _array_json(s) for t, s in self.seeds.items()},
                "rows": [r.to_dict(values) for r in self.rows]}

    def __str__(self) -> str:
        def cell_text(c: TermCell) -> str:
            return {NO_PATH: "no path", ZERO: "0"}.get(c.status) or _sci(c.norm)

        root = one_line(self.root)
        if self.terms == (self.root,):  # not split (`bpgraph grads` without --by-term): one column
            rows = [[r.name, str(r.shape), _sci(r.norm)] for r in self.rows]
            return (f"∂{root}/∂node for every node below {root} that gets a gradient (norms)\n"
                    + _table(["node", "shape", f"‖∂{root}/∂node‖"], rows))
        rows = [[r.name, str(r.shape), _sci(r.norm), *(cell_text(c) for c in r.cells)] for r in self.rows]
        seeds = ", ".join(f"∂{root}/∂{one_line(t)} = {_describe_value(s)}" for t, s in self.seeds.items())
        title = (f"∂{root}/∂node split by term ({seeds}); each cell is the norm of that term's share, "
                 "'no path' when the term does not depend on the node")
        return title + "\n" + _table(["node", "shape", f"‖∂{root}/∂node‖", *self.terms], rows)


def _term_cell(term: str, value: np.ndarray | None) -> TermCell:
    if value is None:
        return TermCell(term, NO_PATH, 0.0, None)
    value = _readonly(value)
    return TermCell(term, NONZERO if np.any(value != 0) else ZERO, _norm(value), value)


def term_attribution(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None, *,
                     seed: Any = None, inputs: bool = False) -> TermReport:
    """Split every node's gradient of ``root`` into the contribution of each cost term.

    Terms are found from the root's add/sub chain (J = cross_entropy + L2) or named in
    ``terms``.  Term t contributes ``gradients(t, seed=∂root/∂t)``, where ∂root/∂t is taken
    along the chain only (1 for a plain sum, -1 under a ``-``), so the contributions add up to
    the full gradient.  A path that meets several terms is credited to the last one (nearest
    the root).  "no path" is decided structurally: the node is not an ancestor of the term.

    Rows: the nodes that get a gradient from :meth:`Graph.backward` (params and the ops
    computed from them; inputs and consts too with ``inputs=True``), except the terms and the
    chain between the terms and the root (a term is kept when another term depends on it).
    """
    root_id = _root_id(graph, root)
    term_ids = cost_terms(graph, root_id, terms)
    upstream = graph.ancestors(root_id)
    for t in term_ids:
        if t not in upstream:
            raise GraphError(f"{graph.name_of(t)!r} is not a term of {graph.name_of(root_id)!r}: "
                             f"{no_path_reason(graph, root_id, t)}")
    term_set = set(term_ids)
    full = gradients(graph, root_id, seed, inputs=inputs)
    rest = gradients(graph, root_id, seed, inputs=inputs, stop=term_set)
    shares = {t: gradients(graph, t, rest[t], inputs=inputs) if t in rest else {} for t in term_ids}

    after: set[int] = set()
    before: set[int] = set()
    for t in term_ids:
        after |= descendants(graph, t)
        before |= graph.ancestors(t) - {t}
    row_ids = [i for i in sorted(full, reverse=True) if i not in after or i in before]
    names = [graph.name_of(t) for t in term_ids]
    has_other = any(i in rest and i not in term_set for i in row_ids)
    columns = tuple(names + [OTHER] if has_other else names)

    rows = []
    for i in row_ids:
        cells = [_term_cell(name, shares[t].get(i)) for t, name in zip(term_ids, names)]
        if has_other:
            cells.append(_term_cell(OTHER, None if i in term_set else rest.get(i)))
        attrs = graph.nodes[i]
        rows.append(TermRow(attrs["name"], attrs["kind"], attrs["value"].shape, full[i], tuple(cells)))
    seeds = {graph.name_of(t): _readonly(rest[t]) for t in term_ids if t in rest}
    return TermReport(graph.name_of(root_id), columns, seeds, tuple(rows))


# --- per-path attribution ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PathContribution:
    """One path (WRT first) and its share of ∂OF/∂WRT: the product of the local VJPs along it."""

    nodes: tuple[str, ...]
    value: np.ndarray

    @property
    def norm(self) -> float:
        return _norm(self.value)

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"path": list(self.nodes), "norm": self.norm}
        if values:
            out["value"] = self.value.tolist()
        return out


@dataclass(frozen=True, eq=False)
class PathReport:
    """∂OF/∂WRT split over the paths from WRT to OF.

    ``count`` is the exact number of paths; ``paths`` holds the first ``limit`` of them in the
    module's order, so ``capped`` says whether the contributions shown add up to ``total``.
    ``total`` is ∂OF/∂WRT (zeros in WRT's shape when there is no path).
    """

    of: str
    wrt: str
    total: np.ndarray
    paths: tuple[PathContribution, ...]
    count: int
    limit: int | None

    @property
    def capped(self) -> bool:
        return self.count > len(self.paths)

    def sum(self) -> np.ndarray:
        """The sum of the contributions listed (equals ``total`` unless capped)."""
        out = np.zeros(self.total.shape, dtype=self.total.dtype)
        for p in self.paths:
            out = np.asarray(out + p.value)
        return out

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"of": self.of, "wrt": self.wrt, "count": self.count,
                               "shown": len(self.paths), "capped": self.capped,
                               "total_norm": _norm(self.total),
                               "paths": [p.to_dict(values) for p in self.paths]}
        if values:
            out["total"] = self.total.tolist()
        return out

    def __str__(self) -> str:
        head = (f"∂{one_line(self.of)}/∂{one_line(self.wrt)}: {_paths_word(self.count)}"
                + (f", first {len(self.paths)} shown" if self.capped else "")
                + f"; total {_describe_value(self.total)}")
        rows = [[str(k), _sci(p.norm), " -> ".join(p.nodes)] for k, p in enumerate(self.paths, 1)]
        return head + "\n" + _table(["#", "‖contribution‖", "path"], rows)


def path_attribution(graph: Graph, of: Ref, wrt: Ref, *, seed: Any = None,
                     limit: int | None = 1000) -> PathReport:
    """Split ∂OF/∂WRT into the contribution of each path from WRT to OF.

    A path's contribution starts from the seed at OF (1 for a scalar) and applies the local
    vector-Jacobian product of each edge, back to WRT.  At most ``limit`` paths are enumerated
    (None: all); ``count`` is exact either way and ``capped`` says when paths were left out.
    """
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    names = graph.nodes
    shape = names[wrt_id]["value"].shape
    if not on:  # structurally zero: no seed needed
        return PathReport(names[of_id]["name"], names[wrt_id]["name"], _readonly(np.zeros(shape)), (), 0, limit)
    start = seed_for(graph, of_id, seed)
    total = gradients(graph, of_id, start, inputs=True, within=on)[wrt_id]
    found = tuple(PathContribution(tuple(names[i]["name"] for i in ids), _readonly(value))
                  for ids, value in itertools.islice(_walk(graph, of_id, wrt_id, on, start), limit))
    return PathReport(names[of_id]["name"], names[wrt_id]["name"], _readonly(total), found,
                      count_paths(graph, of_id, wrt_id), limit)


# --- diff of two graphs' gradients ------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DiffRow:
    """How one node's gradient differs between graph a and graph b (``delta`` = a − b)."""

    name: str
    status: str  # "changed" | "unchanged" | "shape differs" | "only in <label>"
    shape: tuple[int, ...]
    norm: float
    max_abs: float
    delta: np.ndarray | None

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "shape": list(self.shape),
                               "norm": self.norm, "max_abs": self.max_abs}
        if values and self.delta is not None:
            out["delta"] = self.delta.tolist()
        return out


@dataclass(frozen=True, eq=False)
class GradDiff:
    """Per node, whether ∂root/∂node changed from graph b to graph a, and by how much."""

    root: str
    labels: tuple[str, str]
    atol: float
    rows: tuple[DiffRow, ...]

    @property
    def changed(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "changed"]

    @property
    def unchanged(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "unchanged"]

    def row(self, name: str) -> DiffRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise UnknownNodeError(name, [r.name for r in self.rows])

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return {"root": self.root, "labels": list(self.labels), "atol": self.atol,
                "changed": self.changed, "rows": [r.to_dict(values) for r in self.rows]}

    def __str__(self) -> str:
        a, b = map(one_line, self.labels)
        rows = [[f"d{r.name}", str(r.shape), r.status, _sci(r.norm), _sci(r.max_abs)] for r in self.rows]
        return (f"∂{one_line(self.root)}/∂node: {a} − {b}\n"
                + _table(["gradient", "shape", "status", "‖change‖", "max |change|"], rows))


def diff_grads(a: Graph, b: Graph, root: str | None = None, *, inputs: bool = False,
               atol: float = 0.0, labels: tuple[str, str] = ("a", "b")) -> GradDiff:
    """Compare the gradients of two graphs whose nodes share names (e.g. λ = 0.7 and λ = 0).

    ``root`` is a node name found in both (default: a's last node).  Which nodes get a gradient
    follows :meth:`Graph.backward`.  A gradient ``changed`` when max|a − b| > ``atol`` (default:
    any difference at all).  Rows in a's backward order, then nodes only b has.
    """
    root_name = a.name_of(_root_id(a, root))
    ga = {a.name_of(i): g for i, g in gradients(a, a.id_of(root_name), inputs=inputs).items()}
    gb = {b.name_of(i): g for i, g in gradients(b, b.id_of(root_name), inputs=inputs).items()}
    order = [a.name_of(i) for i in sorted(map(a.id_of, ga), reverse=True)]
    order += [b.name_of(i) for i in sorted(map(b.id_of, gb), reverse=True) if b.name_of(i) not in ga]
    rows = []
    for name in order:
        x, y = ga.get(name), gb.get(name)
        if x is None or y is None:
            only = labels[0] if y is None else labels[1]
            rows.append(DiffRow(name, f"only in {only}", (x if y is None else y).shape, 0.0, 0.0, None))
        elif x.shape != y.shape:
            rows.append(DiffRow(name, "shape differs", x.shape, 0.0, 0.0, None))
        else:
            delta = _readonly(np.asarray(x - y))
            max_abs = float(np.max(np.abs(delta), initial=0.0))
            status = "changed" if max_abs > atol or np.isnan(max_abs) else "unchanged"
            rows.append(DiffRow(name, status, x.shape, _norm(delta), max_abs, delta))
    return GradDiff(root_name, tuple(labels), atol, tuple(rows))


# --- checking a hand-written backward pass ----------------------------------------------------
@dataclass(frozen=True, eq=False)
class GradCheckRow:
    """One node: the user's gradient against the correct one (in the convention read)."""

    name: str
    key: str | None          # the user's key for it ("dW1"), None when not given
    status: str              # ok | wrong | wrong shape | not given
    shape: tuple[int, ...]
    given_shape: tuple[int, ...] | None
    max_abs_error: float | None
    rel_error: float | None  # max_abs_error / max|correct|; None when the correct one is all 0
    hint: str
    expected: np.ndarray
    given: np.ndarray | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "status": self.status, "shape": list(self.shape),
                "given_shape": None if self.given_shape is None else list(self.given_shape),
                "max_abs_error": _num(self.max_abs_error), "rel_error": _num(self.rel_error),
                "hint": self.hint}


@dataclass(frozen=True, eq=False)
class EntryPoint:
    """A wrong gradient whose nearest checked consumers are all correct: where an error enters."""

    name: str
    key: str
    consumers: tuple[str, ...]  # its nearest checked consumers (all ok)
    symptoms: tuple[str, ...]   # wrong nodes whose gradient is computed from it (its wrong ancestors)
    expected: np.ndarray
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "consumers": list(self.consumers),
                "symptoms": list(self.symptoms), "expected": _array_json(self.expected),
                "explanation": self.explanation}


@dataclass(frozen=True, eq=False)
class GradComparison:
    """The result of :func:`compare_grads`: a status per node and where the errors enter."""

    root: str
    convention: str  # "exact" or "course"
    m: int | None
    rtol: float
    atol: float
    rows: tuple[GradCheckRow, ...]
    entries: tuple[EntryPoint, ...]
    notes: tuple[str, ...]

    @property
    def first_wrong(self) -> list[str]:
        """Names of the entry points (empty when every given gradient is correct)."""
        return [e.name for e in self.entries]

    @property
    def wrong(self) -> list[str]:
        return [r.name for r in self.rows if r.status in (WRONG, WRONG_SHAPE)]

    @property
    def ok(self) -> bool:
        return not self.wrong

    def row(self, name: str) -> GradCheckRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise UnknownNodeError(name, [r.name for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "convention": self.convention, "m": self.m, "rtol": self.rtol,
                "atol": self.atol, "ok": self.ok, "first_wrong": self.first_wrong, "wrong": self.wrong,
                "rows": [r.to_dict() for r in self.rows], "entries": [e.to_dict() for e in self.entries],
                "notes": list(self.notes)}

    def __str__(self) -> str:
        rows = [[r.name, r.key or "-", r.status, _sci(r.max_abs_error), _sci(r.rel_error), r.hint]
                for r in self.rows]
        root = one_line(self.root)
        lines = [f"your gradients of {root}, read in the {_convention_text(self.convention, self.m)}; "
                 f"ok when max|yours − correct| <= {self.atol:g} + {self.rtol:g}·max|correct|",
                 _table(["node", "your key", "status", "max abs err", "rel err", "hint"], rows), ""]
        lines += self.notes
        if self.ok:
            lines.append("every gradient you gave is correct.")
        for e in self.entries:
            key, name = one_line(e.key), one_line(e.name)
            consumers = (f"its nearest checked consumers ({', '.join(map(one_line, e.consumers))}) are correct"
                         if e.consumers else f"no checked gradient lies between it and {root}")
            lines += [f"the error enters at {key} ({name}): {consumers}, but {key} is wrong.",
                      f"  correct {key}, {_describe_value(e.expected)}:",
                      "    " + np.array2string(e.expected, precision=4, threshold=12, edgeitems=2)
                      .replace("\n", "\n    "),
                      "  " + e.explanation.replace("\n", "\n  ")]
            if e.symptoms:
                keys = ", ".join(one_line(self.row(n).key or n) for n in e.symptoms)
                lines.append(f"  computed from it and wrong as a result: {keys}")
        return "\n".join(lines)


def _convention_text(convention: str, m: int | None) -> str:
    if convention == "course":
        return f"course convention (op nodes: d = m·∂J/∂node with m = {m}; leaves exact)"
    return "exact convention (d = ∂J/∂node for every node)"


def _load_user_grads(source: Mapping[str, Any] | str | os.PathLike) -> dict[str, np.ndarray]:
    """The user's gradients as name -> array, from a mapping or an ``.npz`` file."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:
                head = handle.read(6)
            numpy_file = head.startswith((b"PK\x03\x04", b"\x93NUMPY"))  # how .npz and .npy files begin
            data = np.load(path, allow_pickle=False) if numpy_file else None
        except (OSError, ValueError) as exc:
            raise GraphError(f"cannot read gradients from {path!r}: {exc}; "
                             "pass a dict or an .npz written by numpy.savez") from None
        if data is None:
            raise GraphError(f"{path!r} is not an .npz file: save your gradients with "
                             "numpy.savez(path, dW1=..., db1=...) and pass that file")
        if not hasattr(data, "files"):
            raise GraphError(f"{path!r} holds one array, not named gradients: "
                             "save them with numpy.savez(path, dW1=..., db1=...)")
        with data:
            source = {k: data[k] for k in data.files}
    if not isinstance(source, Mapping):
        raise GraphError(f"user_grads must be a dict of name -> array or a path to an .npz, "
                         f"got {type(source).__name__}")
    out = {}
    for key, value in source.items():
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number):
            raise GraphError(f"gradient {key!r} must be numeric, got dtype {arr.dtype}")
        out[str(key)] = arr
    return out


def _resolve_keys(graph: Graph, given: Mapping[str, np.ndarray]) -> dict[int, tuple[str, np.ndarray]]:
    """Node id -> (user's key, array). ``dW1`` and ``W1`` both mean W1; an exact node name wins."""
    out: dict[int, tuple[str, np.ndarray]] = {}
    for key, arr in given.items():
        if key in graph:
            node_id = graph.id_of(key)
        elif key.startswith("d") and key[1:] in graph:
            node_id = graph.id_of(key[1:])
        else:
            known = [f"d{n}" for n in graph.names] if key.startswith("d") else graph.names
            raise UnknownNodeError(key, known)
        if node_id in out:
            raise GraphError(f"gradients {out[node_id][0]!r} and {key!r} both name node "
                             f"{graph.name_of(node_id)!r}; give it once")
        out[node_id] = (key, arr)
    return out


def _closeness(given: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> tuple[bool, float, float | None]:
    """(ok, max abs error, relative error) for two arrays of one shape."""
    with np.errstate(all="ignore"):
        max_abs = float(np.max(np.abs(given.astype(np.float64) - expected), initial=0.0))
        scale = float(np.max(np.abs(expected), initial=0.0))
    ok = bool(max_abs <= atol + rtol * scale)  # False for NaN
    return ok, max_abs, (max_abs / scale if scale else None)


def _shape_hint(given: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    text = f"expected shape {expected.shape}, got {given.shape}"
    if given.ndim >= 2 and given.shape == expected.shape[::-1]:
        same = _closeness(given.T, expected, rtol, atol)[0]
        return f"looks transposed: {text}" + ("; its transpose is correct" if same else "")
    if given.size == expected.size:
        same = _closeness(given.reshape(expected.shape), expected, rtol, atol)[0]
        return text + ("; the values are correct once reshaped" if same else "")
    return text


def _value_hint(given: np.ndarray, expected: np.ndarray, other: np.ndarray | None, other_name: str,
                rtol: float, atol: float) -> str:
    if other is not None and _closeness(given, other, rtol, atol)[0]:
        return f"matches the {other_name} convention instead"
    if np.any(expected) and _closeness(-given, expected, rtol, atol)[0]:
        return "sign flipped"
    return ""


def _course_m(graph: Graph, m: int | None) -> int | None:
    if m is not None:
        return int(m)
    meta_m = graph.meta.get("m")
    return None if meta_m is None else int(meta_m)


def compare_grads(graph: Graph, root: Ref | None, user_grads: Mapping[str, Any] | str | os.PathLike, *,
                  convention: str = "auto", m: int | None = None, rtol: float = 1e-7,
                  atol: float = 1e-12, seed: Any = None) -> GradComparison:
    """Check a hand-written backward pass against the graph's and say where its error enters.

    ``user_grads``: a dict or the path of an ``.npz``; keys are node names with or without
    the course's ``d`` (``dW1`` or ``W1``; an exact node name wins).  Each node gets ``ok``,
    ``wrong`` (with max abs and relative error), ``wrong shape`` (a transposed one says so) or
    ``not given``.  A gradient is ok when max|yours − correct| <= atol + rtol·max|correct|.

    Conventions: ``exact`` expects ∂root/∂node everywhere; ``course`` expects m·∂root/∂node at
    op nodes (the course's dZ = A − Y, dA = Wᵀ·dZ) and the exact gradient at leaves (dW, db),
    with m from ``m=`` or ``graph.meta["m"]``; ``auto`` takes whichever matches more of the
    given gradients (exact on a tie, or when m is unknown).

    Entry points: a checked node (given, with any status but ``not given``) that is wrong is an
    entry point when all its *nearest checked consumers* are ok: the checked nodes reached by
    walking forward from it toward the root through unchecked nodes only.  None at all counts
    as all ok.  A gradient computed from a wrong one is wrong too, so one mistake shows as many
    wrong nodes but one entry point; the other wrong nodes it feeds are listed as its symptoms.
    """
    if convention not in ("auto", "exact", "course"):
        raise GraphError(f"convention must be 'auto', 'exact' or 'course', got {convention!r}")
    root_id = _root_id(graph, root)
    given = _resolve_keys(graph, _load_user_grads(user_grads))
    exact = gradients(graph, root_id, seed, inputs=True)
    nodes = graph.nodes
    m_value = _course_m(graph, m)
    notes: list[str] = []
    if convention == "course" and m_value is None:
        raise GraphError("the course convention needs m, the number of examples: pass m=... "
                         "(graph.meta has no 'm')")

    def reference(node_id: int, conv: str) -> np.ndarray:
        value = exact.get(node_id)
        if value is None:  # structurally zero: the root does not depend on this node
            value = np.zeros(nodes[node_id]["value"].shape)
        if conv == "course" and nodes[node_id]["kind"] == "op":
            value = m_value * value
        return value

    if convention == "auto":
        convention = "exact"
        if m_value is None:
            notes.append("course convention not tried: m is unknown (pass m=...)")
        else:
            score = {c: sum(_closeness(arr, reference(i, c), rtol, atol)[0] for i, (_, arr) in given.items()
                            if arr.shape == nodes[i]["value"].shape) for c in ("exact", "course")}
            if score["course"] > score["exact"]:
                convention = "course"
    other = {"exact": "course", "course": "exact"}[convention]

    wanted = {i for i in exact if nodes[i]["requires_grad"] and i != root_id} | set(given)
    rows: dict[int, GradCheckRow] = {}
    for i in sorted(wanted, reverse=True):
        name, expected = nodes[i]["name"], _readonly(reference(i, convention))
        if i not in given:
            rows[i] = GradCheckRow(name, None, NOT_GIVEN, expected.shape, None, None, None, "", expected, None)
            continue
        key, arr = given[i]
        if arr.shape != expected.shape:
            rows[i] = GradCheckRow(name, key, WRONG_SHAPE, expected.shape, arr.shape, None, None,
                                   _shape_hint(arr, expected, rtol, atol), expected, arr)
            continue
        ok, max_abs, rel = _closeness(arr, expected, rtol, atol)
        hint = ""
        if not ok:
            alt = reference(i, other) if m_value is not None and nodes[i]["kind"] == "op" else None
            hint = _value_hint(arr, expected, alt, other, rtol, atol)
            if i not in exact:
                hint = (hint + "; " if hint else "") + f"{nodes[root_id]['name']} does not depend on {name}: it is 0"
        rows[i] = GradCheckRow(name, key, OK if ok else WRONG, expected.shape, arr.shape, max_abs, rel,
                               hint, expected, arr)

    entries = _entry_points(graph, root_id, rows, convention, m_value, seed)
    return GradComparison(nodes[root_id]["name"], convention, m_value if convention == "course" else None,
                          rtol, atol, tuple(rows.values()), entries, tuple(notes))


def _entry_points(graph: Graph, root_id: int, rows: Mapping[int, GradCheckRow], convention: str,
                  m: int | None, seed: Any) -> tuple[EntryPoint, ...]:
    """The wrong checked nodes whose nearest checked consumers (toward the root) are all ok."""
    upstream = graph.ancestors(root_id)
    checked = {i for i, r in rows.items() if r.status != NOT_GIVEN}
    wrong = {i for i in checked if rows[i].status in (WRONG, WRONG_SHAPE)}
    entries = []
    for i in sorted(wrong, reverse=True):
        nearest: set[int] = set()
        seen = {i}
        stack = [i]
        while stack:
            for user in graph.successors(stack.pop()):
                if user in upstream and user not in seen:
                    seen.add(user)
                    if user in checked:
                        nearest.add(user)
                    else:
                        stack.append(user)
        if nearest & wrong:
            continue
        symptoms = sorted((graph.ancestors(i) - {i}) & wrong, reverse=True)
        entries.append(EntryPoint(
            rows[i].name, rows[i].key, tuple(rows[c].name for c in sorted(nearest, reverse=True)),
            tuple(rows[s].name for s in symptoms), rows[i].expected,
            _entry_explanation(graph, root_id, i, rows, convention, m, seed)))
    return tuple(entries)


def _entry_explanation(graph: Graph, root_id: int, node_id: int, rows: Mapping[int, GradCheckRow],
                       convention: str, m: int | None, seed: Any) -> str:
    """The one-step chain rule at the entry point, then its full sum over paths."""
    def shown(i: int) -> str:
        return one_line(graph.name_of(i))

    root, name = shown(root_id), shown(node_id)
    upstream = graph.ancestors(root_id)
    users = sorted((u for u in graph.successors(node_id) if u in upstream))
    if not users:
        return explain(graph, root_id, node_id, seed=seed, limit=4)
    terms = " + ".join(f"∂{root}/∂{shown(u)}·∂{shown(u)}/∂{name}" for u in users)
    lines = [f"chain rule, one step: ∂{root}/∂{name} = {terms}"]
    for u in users:
        attrs = graph.nodes[u]
        args = ", ".join(shown(o) for o in attrs["operands"])
        row = rows.get(u)
        state = f"your {one_line(row.key)} is {row.status}" if row is not None and row.key else "not given"
        lines.append(f"  where {shown(u)} = {attrs['op']}({args}) = {OPS[attrs['op']].formula}; {state}")
    if convention == "course" and graph.nodes[node_id]["kind"] == "op":
        lines.append(f"  (course convention: d{name} = {m}·∂{root}/∂{name})")
    lines.append(explain(graph, root_id, node_id, seed=seed, limit=4))
    return "\n".join(lines)


# --- explanations -----------------------------------------------------------------------------
_GREEK = dict(zip("αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ∂",
                  ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho "
                   "sigma tau upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi "
                   "Omega partial").split()))
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
                # typeset literally rather than as curly quotes (and no `` or '' ligatures):
                "'": r"\textquotesingle{}", "`": r"\textasciigrave{}", '"': r"\texttt{\char34}"}
_MD_SPECIAL = set("\\`*_{}[]<>#|~!$")


def tex_text(text: str) -> str:
    """``text`` as LaTeX: ``\\text{...}`` with every special character escaped.

    Greek letters become math symbols; other non-ASCII characters (and control characters) are
    written as ``[U+XXXX]`` so that pdflatex compiles it without extra packages (amsmath is
    needed for ``\\text``).  Quotes, backquotes and ``--`` are typeset as typed, not as curly
    quotes or a dash.
    """
    out = []
    for k, ch in enumerate(text):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch == "-" and text[k + 1:k + 2] == "-":
            out.append("-{}")  # "--" would be typeset as an en dash
        elif ch in _GREEK:
            out.append(f"$\\{_GREEK[ch]}$")
        elif ord(ch) > 126 or ord(ch) < 32:
            out.append(f"[U+{ord(ch):04X}]" if unicodedata.category(ch) != "Zs" else " ")
        else:
            out.append(ch)
    return r"\text{" + "".join(out) + "}"


_MD_ENTITY = re.compile(r"&(?=[A-Za-z][A-Za-z0-9]*;)")


def _md(text: str) -> str:
    """``text`` as Markdown that shows exactly these characters, on one line (for table rows).

    Special characters get a backslash, and so does an ``&`` that would start an entity
    (``&amp;`` must not become ``&``).
    """
    escaped = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in one_line(text))
    return _MD_ENTITY.sub(r"\\&", escaped)


def _tex_number(x: float) -> str:
    if not np.isfinite(x):
        return tex_text(str(x))
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.6g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{mantissa} \\times 10^{{{int(exponent)}}}"


def _paths_word(n: int, more: bool = False) -> str:
    """'1 path', '3 paths'; with ``more``: '1 more path', '3 more paths'."""
    return f"{n}{' more' if more else ''} path" + ("" if n == 1 else "s")


def _factors(graph: Graph, ids: Sequence[int]) -> list[tuple[str, str, str, int]]:
    """Local factors of a path, from OF down to WRT: (numerator, denominator, op, positions)."""
    out = []
    for k in range(len(ids) - 1, 0, -1):
        user, operand = graph.nodes[ids[k]], ids[k - 1]
        out.append((user["name"], graph.name_of(operand), user["op"], user["operands"].count(operand)))
    return out


def explain(graph: Graph, of: Ref, wrt: Ref, *, format: str = "text", seed: Any = None,  # noqa: A002
            limit: int = 20) -> str:
    """The chain rule for ∂OF/∂WRT as a sum over paths of products of local derivatives.

    ``format`` is ``"text"`` (Unicode ∂), ``"markdown"`` or ``"latex"`` (an ``aligned`` block for
    a math environment; needs amsmath; names escaped inside ``\\text{}``).  Each path's numeric
    contribution is given (its value when tiny, else shape and norm); at most ``limit`` paths
    are written out.  With no path, one sentence says why:
    "∂L2/∂A2 = 0: L2 does not depend on A2; its inputs are W1, W2, W3."
    """
    if format not in ("text", "markdown", "latex"):
        raise GraphError(f"format must be 'text', 'markdown' or 'latex', got {format!r}")
    if limit < 1:
        raise GraphError(f"limit must be at least 1, got {limit}")
    report = path_attribution(graph, of, wrt, seed=seed, limit=limit)
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    reason = no_path_reason(graph, of_id, wrt_id)
    ids = [[graph.id_of(n) for n in p.nodes] for p in report.paths]
    factors = [_factors(graph, p) for p in ids]
    return {"text": _explain_text, "markdown": _explain_markdown, "latex": _explain_latex}[format](
        report, reason, factors)


def _explain_text(report: PathReport, reason: str | None, factors: list[list[tuple]]) -> str:
    of, wrt = one_line(report.of), one_line(report.wrt)
    lhs = f"∂{of}/∂{wrt}"
    if reason is not None:
        return f"{lhs} = 0: {one_line(reason)}"
    if not factors[0]:
        return f"{lhs} = {_describe_value(report.total)}: the seed (a node with respect to itself)"
    factors = [[(one_line(v), one_line(u), op, n) for v, u, op, n in fs] for fs in factors]
    products = ["·".join(f"∂{v}/∂{u}" for v, u, _, _ in fs) for fs in factors]
    pad = " " * _width(lhs)
    lines = [f"{lhs} = " + f"\n{pad} + ".join(products)]
    if report.capped:
        lines.append(f"{pad} + … ({_paths_word(report.count - len(factors), more=True)}, not written out)")
    lines.append(f"a sum over the {_paths_word(report.count)} from {wrt} to {of}, "
                 "each a product of local derivatives (op in brackets):")
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        local = " · ".join(f"∂{v}/∂{u} ({op}{f' ×{n}' if n > 1 else ''})" for v, u, op, n in fs)
        lines += [f"  {k}. {' → '.join(map(one_line, p.nodes))}", f"     {local}",
                  f"     contributes {_describe_value(p.value)}"]
    lines.append(f"  total {lhs}: {_describe_value(report.total)}")
    return "\n".join(lines)


def _explain_markdown(report: PathReport, reason: str | None, factors: list[list[tuple]]) -> str:
    of, wrt = _md(report.of), _md(report.wrt)
    lhs = f"∂{of}/∂{wrt}"
    if reason is not None:
        return f"**{lhs} = 0**: {_md(reason)}"
    if not factors[0]:
        return f"**{lhs}** = {_describe_value(report.total)}: the seed (a node with respect to itself)"
    products = ["·".join(f"∂{_md(v)}/∂{_md(u)}" for v, u, _, _ in fs) for fs in factors]
    more = f" + … ({_paths_word(report.count - len(factors), more=True)})" if report.capped else ""
    lines = [f"**{lhs}** = " + " + ".join(products) + more, "",
             f"A sum over the {_paths_word(report.count)} from {wrt} to {of}, each a product of local derivatives:",
             "", "| # | path | local derivatives | contribution |", "|---:|---|---|---|"]
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        local = " · ".join(f"∂{_md(v)}/∂{_md(u)} ({_md(op)}{f' ×{n}' if n > 1 else ''})" for v, u, op, n in fs)
        lines.append(f"| {k} | {' → '.join(_md(n) for n in p.nodes)} | {local} | {_describe_value(p.value)} |")
    lines += ["", f"Total {lhs}: {_describe_value(report.total)}."]
    return "\n".join(lines)


#: Local derivatives per line of a LaTeX chain-rule product (three fit an article's text width).
TEX_FACTORS_PER_LINE = 3


def _explain_latex(report: PathReport, reason: str | None, factors: list[list[tuple]]) -> str:
    def partial(v: str, u: str) -> str:
        return f"\\frac{{\\partial {tex_text(v)}}}{{\\partial {tex_text(u)}}}"

    lhs = partial(report.of, report.wrt)
    if reason is not None:
        return f"{lhs} = 0 \\quad {tex_text('(' + reason + ')')}"

    def amount(a: np.ndarray) -> str:
        if a.size == 1:
            return _tex_number(float(a.ravel()[0]))
        return f"\\|\\cdot\\| = {_tex_number(_norm(a))}"

    if not factors[0]:
        return f"{lhs} = {amount(report.total)}"
    lines = []
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        fractions = [partial(v, u) for v, u, _, _ in fs]
        # a long product goes on several lines, so a deep network's path fits a page or a slide
        rows = [" \\cdot ".join(fractions[i:i + TEX_FACTORS_PER_LINE])
                for i in range(0, len(fractions), TEX_FACTORS_PER_LINE)]
        head = f"{lhs} &= " if k == 1 else "&\\quad + "
        lines += [head + rows[0]] + [f"&\\qquad \\cdot {row}" for row in rows[1:]]
        lines[-1] += f" && {tex_text(f'path {k}:')}\\ {amount(p.value)}"
    if report.capped:
        lines.append(f"&\\quad + \\cdots && {tex_text(_paths_word(report.count - len(factors), more=True))}")
    lines.append(f"& && {tex_text('total:')}\\ {amount(report.total)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"
