"""bpgraph.sweeps: the WebAssembly kernels equal the Python loops and networkx, alone and in use.

Random CSR DAGs swept both ways against networkx definitions; then op_depths, term_reach, the
collapse levels and plan of a recorded graph past KERNEL_MIN_NODES with the kernel on, off and
unloadable; masks past 63 bits; pickled graphs.
"""

from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bpgraph as bp
from bpgraph import analysis, sweeps
from bpgraph.graph import Graph
from bpgraph.render import collapse
from bpgraph.topology import components, op_depths, topology

DEFAULT_MIN_NODES = sweeps.KERNEL_MIN_NODES
MASKS = st.one_of(st.sampled_from([0, 1, 1 << 62, (1 << 62) | 5, -2**63, 2**63 - 1]), st.integers(-2**63, 2**63 - 1))


def csr(operands: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.cumsum([0] + [len(o) for o in operands]).astype(np.intp)
    return indptr, np.array([o for ops in operands for o in ops], dtype=np.intp)


def digraph(indptr, tails, heads_from: int = 0) -> nx.DiGraph:
    """Edges operand -> user, for users at or after ``heads_from`` (a repeated operand is one edge)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(len(indptr) - 1))
    g.add_edges_from((int(o), i) for i in range(heads_from, len(indptr) - 1) for o in tails[indptr[i]:indptr[i + 1]])
    return g


def longest_oracle(indptr, tails, base, add, start) -> list[int]:
    """Longest path from a source s (edge s -> j weighs base[j], o -> i weighs add[o] for i >= start)."""
    g = nx.DiGraph()
    g.add_weighted_edges_from((("s", j, -int(b)) for j, b in enumerate(base)), weight="w")
    g.add_weighted_edges_from(((o, i, -int(add[o])) for o, i in digraph(indptr, tails, start).edges), weight="w")
    dist = nx.single_source_bellman_ford_path_length(g, "s", weight="w")
    return [-dist[j] for j in range(len(base))]


def or_down_oracle(indptr, tails, bits, top) -> list[int]:
    """Node j <= top's bits go to everything it depends on (nx.ancestors)."""
    out, g = [int(b) for b in bits], digraph(indptr, tails)
    for j in range(top + 1):
        for a in nx.ancestors(g, j):
            out[a] |= int(bits[j])
    return out


def or_up_oracle(indptr, tails, bits, start, stop) -> list[int]:
    """Node j's bits go to its users in [start, stop) reached through users in that range."""
    out, g = [int(b) for b in bits], digraph(indptr, tails, start)
    for j in range(len(bits)):
        for d in (d for d in nx.descendants(g, j) if d < stop):
            out[d] |= int(bits[j])
    return out


def both(fn, *args) -> np.ndarray:
    """``fn`` with the kernel and with the Python loop: equal values, the same dtype."""
    fast, slow = fn(*args, kernel=True), fn(*args, kernel=False)
    assert fast.dtype == slow.dtype == np.int64 and fast.tolist() == slow.tolist()
    return fast


@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    ops = [draw(st.lists(st.integers(0, i - 1), max_size=4)) if i else [] for i in range(n)]
    return n, *csr(ops)


@given(dags(), st.data())
def test_kernels_equal_loops_and_networkx_on_random_dags(dag, data):
    """All three sweeps, any bounds (start = n, top = -1, start > stop), bit 62/63 masks, negative bases."""
    n, indptr, tails = dag
    base = np.array(data.draw(st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n)), dtype=np.int64)
    add = np.array(data.draw(st.lists(st.integers(-2**20, 2**20), min_size=n, max_size=n)), dtype=np.int64)
    bits = np.array(data.draw(st.lists(MASKS, min_size=n, max_size=n)), dtype=np.int64)
    start, stop, top = data.draw(st.integers(0, n)), data.draw(st.integers(0, n)), data.draw(st.integers(-1, n - 1))
    got = both(sweeps.longest, indptr, tails, base, add, start)
    assert got.tolist() == longest_oracle(indptr, tails, base, add, start)
    is_op = np.diff(indptr) > 0  # as op depth: the longest chain of ops into each op
    depth = both(sweeps.longest, indptr, tails, np.where(is_op, 0, -1), np.ones(n, np.int64))
    ops = nx.subgraph(digraph(indptr, tails), np.flatnonzero(is_op).tolist())
    assert depth.tolist() == [nx.dag_longest_path_length(ops.subgraph(nx.ancestors(ops, i) | {i}))
                              if is_op[i] else -1 for i in range(n)]
    assert both(sweeps.or_down, indptr, tails, bits, top).tolist() == or_down_oracle(indptr, tails, bits, top)
    got = both(sweeps.or_up, indptr, tails, bits, start, stop)
    assert got.tolist() == or_up_oracle(indptr, tails, bits, start, stop)


def test_edge_cases_one_node_no_edges_and_repeated_operands():
    """A single leaf, edgeless graphs, x*x (one operand in both slots), a strided array: exact answers."""
    one = csr([[]])
    assert both(sweeps.longest, *one, np.array([-7]), np.array([3]), 0).tolist() == [-7]
    assert both(sweeps.or_down, *one, np.array([1 << 62]), 0).tolist() == [1 << 62]
    assert both(sweeps.or_up, *one, np.array([5]), 0, 1).tolist() == [5]
    none = csr([[], [], []])
    assert both(sweeps.longest, *none, np.array([-1, 4, -9]), np.ones(3, np.int64), 0).tolist() == [-1, 4, -9]
    assert both(sweeps.or_down, *none, np.array([1, 2, 4]), 2).tolist() == [1, 2, 4]
    square = csr([[], [0, 0], [1, 1, 0]])  # x, y = x * x, z = y * y * x
    assert both(sweeps.longest, *square, np.array([-1, 0, 0]), np.ones(3, np.int64), 0).tolist() == [-1, 0, 1]
    assert both(sweeps.or_down, *square, np.array([0, 0, 1 << 62]), 2).tolist() == [1 << 62] * 3
    assert both(sweeps.or_down, *square, np.array([0, 0, 1 << 62]), 1).tolist() == [0, 0, 1 << 62]  # z above top
    assert both(sweeps.or_up, *square, np.array([1, 2, 4]), 1, 3).tolist() == [1, 3, 7]
    assert both(sweeps.or_up, *square, np.array([1, 2, 4]), 2, 3).tolist() == [1, 2, 7]  # y below start stays
    strided = np.array([1, 0, 2, 0, 4, 0], dtype=np.int64)[::2]  # the kernel copies bytes: no stride
    assert both(sweeps.or_up, *csr([[], [0], [1]]), strided, 0, 3).tolist() == [1, 3, 7]


def test_big_random_dags_grow_the_kernel_memory_and_still_agree():
    """Seeded DAGs up to 60,000 nodes (several wasm pages, long chains): kernel equals loop."""
    rng = np.random.default_rng(7)
    for n in (2, 100, 5000, 60_000):
        counts = rng.integers(0, 4, n)
        counts[0] = 0
        tails = np.concatenate([rng.integers(max(0, i - 50), i, c) for i, c in enumerate(counts)]).astype(np.intp)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        bits = np.where(rng.random(n) < 0.01, rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64), 0)
        both(sweeps.longest, indptr, tails, rng.integers(-5, 5, n), rng.integers(-2, 3, n), n // 3)
        both(sweeps.or_down, indptr, tails, bits, n - 1 - n // 4)
        both(sweeps.or_up, indptr, tails, bits, n // 5, n - n // 7)


# --- the public paths on a recorded graph -------------------------------------------------------
@pytest.fixture(scope="module")
def big():
    """A random recorded graph of about 6,000 nodes in scopes; root (s0 + s1) - s2 with later nodes after it."""
    rng = np.random.default_rng(3)
    g = bp.Graph()
    pool = [g.param(np.full(3, 0.5), name=f"x{k}") for k in range(4)]
    terms = []  # sum(...) nodes, themselves used later
    for step in range(5000):
        a, b = (pool[int(i)] for i in rng.integers(max(0, len(pool) - 300), len(pool), 2))
        with g.scope(f"layer{step % 7}"):
            pool.append([lambda: bp.tanh(a), lambda: a * a, lambda: a * b, lambda: bp.maximum(a, b),
                         lambda: bp.tanh(a + b)][int(rng.integers(5))]())
        if step in (50, 2500, 4500):
            terms.append(bp.sum(pool[-1]))
            pool.append(terms[-1])
    root = (terms[0] + terms[1]) - terms[2]
    for _ in range(20):
        bp.tanh(pool[-1])
    assert len(g) > sweeps.KERNEL_MIN_NODES
    return g, root, terms


def spy(monkeypatch) -> list[str]:
    """Record which implementation serves each sweep ("kernel longest", "python or_up", ...)."""
    calls, run = [], sweeps._Kernel.run
    monkeypatch.setattr(sweeps._Kernel, "run", lambda self, name, *a: calls.append(f"kernel {name}") or run(self, name, *a))
    for name, fn in list(sweeps._PYTHON.items()):
        monkeypatch.setitem(sweeps._PYTHON, name, lambda *a, fn=fn, name=name: calls.append(f"python {name}") or fn(*a))
    return calls


def public(g, root, monkeypatch, min_nodes):
    """op_depths, term_reach and the collapse levels with KERNEL_MIN_NODES set, caches cleared."""
    monkeypatch.setattr(sweeps, "KERNEL_MIN_NODES", min_nodes)
    g._derived.clear()
    free = np.random.default_rng(5).random(len(g)) < 0.8
    reach = analysis.term_reach(g, root)
    return op_depths(g), reach, collapse._levels(topology(g), free), free


def check(got, g, root, terms):
    """op depths, feeds, fed_by, root_side and levels equal their definitions on g.nx."""
    depths, reach, levels, free = got
    d, kind = g.nx, {i: a["kind"] for i, a in g.nx.nodes(data=True)}
    depth, level = dict.fromkeys(range(len(g))), dict.fromkeys(range(len(g)))  # id order
    for v in nx.topological_sort(d):
        depth[v] = max([0] + [depth[p] + 1 for p in d.pred[v]]) if kind[v] == "op" else -1
        level[v] = max([0] + [level[p] + int(not free[p]) for p in d.pred[v]])
    top = max(t.id for t in [root, *terms])
    feeds, fed_by = [0] * (top + 1), [0] * (top + 1)
    for k, t in enumerate(terms):
        for a in nx.ancestors(d, t.id) | {t.id}:
            feeds[a] |= 1 << k
        for a in {i for i in nx.descendants(d, t.id) if i <= top} | {t.id}:
            fed_by[a] |= 1 << k
    side = nx.ancestors(d, root.id) | {root.id}
    assert reach.terms == tuple(t.id for t in terms)
    assert depths.tolist() == list(depth.values()) and levels.tolist() == list(level.values())
    assert reach.feeds.tolist() == feeds and reach.fed_by.tolist() == fed_by
    assert reach.root_side.tolist() == [i in side for i in range(top + 1)]


def test_public_paths_give_the_same_arrays_with_and_without_the_kernel(big, monkeypatch):
    """op_depths, term_reach and _levels: kernel on, off and by default all equal networkx."""
    g, root, terms = big
    calls = spy(monkeypatch)
    on = public(g, root, monkeypatch, 0)
    assert calls == ["kernel or_down", "kernel or_up", "kernel longest", "kernel longest"]
    check(on, g, root, terms)
    calls.clear()
    off = public(g, root, monkeypatch, 10**9)
    assert calls == ["python or_down", "python or_up", "python longest", "python longest"]
    calls.clear()
    default = public(g, root, monkeypatch, DEFAULT_MIN_NODES)
    assert calls and all(c.startswith("kernel") for c in calls)  # big enough by default
    flat = [[on[0], *on[1][1:], on[2]] for on in (on, off, default)]
    for a, b, c in zip(*flat):
        assert a.dtype == b.dtype == c.dtype and np.array_equal(a, b) and np.array_equal(a, c)


def test_python_loops_serve_when_the_kernel_cannot_be_made(big, monkeypatch):
    """A _Kernel that raises: no error, the loops answer right, and it is not tried again."""
    g, root, terms = big
    calls = spy(monkeypatch)
    monkeypatch.setattr(sweeps, "_Kernel", lambda: {}["no executable memory"])  # raises KeyError
    monkeypatch.setattr(sweeps, "_kernel", None)
    monkeypatch.setattr(sweeps, "_kernel_failed", False)
    check(public(g, root, monkeypatch, 0), g, root, terms)
    assert sweeps._kernel_failed and sweeps._kernel is None
    assert calls and all(c.startswith("python") for c in calls)
    assert both(sweeps.or_up, *csr([[], [0, 0]]), np.array([1 << 62, 0]), 0, 2).tolist() == [1 << 62] * 2


def test_masks_past_63_bits_take_the_python_loops(monkeypatch):
    """Object masks (bit 100) ignore kernel=True and are right; term_reach at 61 and 62 terms too."""
    calls = spy(monkeypatch)
    indptr, tails = csr([[], [0], [1, 1], [0]])
    bits = np.array([0, 0, 1 << 100, 1 << 62], dtype=object)
    down = sweeps.or_down(indptr, tails, bits, 3, kernel=True)
    assert down.dtype == object and down.tolist() == or_down_oracle(indptr, tails, bits, 3)
    up = sweeps.or_up(indptr, tails, np.array([1 << 100, 0, 0, 1], dtype=object), 1, 4, kernel=True)
    assert up.tolist() == [1 << 100, 1 << 100, 1 << 100, (1 << 100) | 1]
    assert calls == ["python or_down", "python or_up"]
    for count, dtype in ((61, np.int64), (62, object)):
        g = bp.Graph()
        x = g.param(np.ones(2), name="x")
        terms = [bp.sum(bp.tanh(x * float(k + 1))) for k in range(count)]
        root = sum(terms[1:], terms[0])  # t0 + t1 + ... as a chain of adds
        got = public(g, root, monkeypatch, 0)
        assert got[1].feeds.dtype == dtype
        check(got, g, root, terms)


def test_pickled_graphs_keep_their_topology_and_rebuild_the_columns(big):
    """A pickle leaves the columns out (they are a cache of the node dicts): a round trip gives
    the same arrays and, once caught up, the same columns."""
    g = big[0]
    assert "_columns" not in g.__getstate__()
    copy = pickle.loads(pickle.dumps(g))
    assert len(copy._columns.ends) == 1  # nothing caught up yet
    same = lambda a, b: all(x == y if isinstance(x, tuple) else np.array_equal(x, y) for x, y in zip(a, b))
    assert same(topology(g), topology(copy)) and np.array_equal(op_depths(g), op_depths(copy))
    for field in ("tails", "ends", "kinds", "op_codes", "op_names", "scope_marks"):
        assert getattr(copy._columns, field) == getattr(g._columns, field)


def test_kernel_memory_never_serves_another_graphs_structure(monkeypatch):
    """Read-only CSR arrays of one shape (as Topology's), swept in turn with components between."""
    monkeypatch.setattr(sweeps, "KERNEL_MIN_NODES", 0)
    rng, dags = np.random.default_rng(11), []
    for _ in range(2):
        indptr, tails = csr([[]] + [rng.integers(0, i, 2).tolist() for i in range(1, 300)])
        indptr.flags.writeable = tails.flags.writeable = False
        dags.append((indptr, tails))
    bits = np.where(rng.random(300) < 0.05, 1 << 62, 0)
    for indptr, tails in dags * 2:
        assert both(sweeps.or_down, indptr, tails, bits, 299).tolist() == or_down_oracle(indptr, tails, bits, 299)
        heads = np.repeat(np.arange(300), np.diff(indptr))
        g = nx.Graph(zip(tails.tolist(), heads.tolist()))
        assert components(300, tails, heads).tolist() == [min(nx.node_connected_component(g, i)) for i in range(300)]
        assert both(sweeps.or_up, indptr, tails, bits, 7, 300).tolist() == or_up_oracle(indptr, tails, bits, 7, 300)


def test_a_big_drawing_plan_is_the_same_with_and_without_the_kernel(big, monkeypatch):
    """collapse.plan (levels, depths, pieces) groups a 6,000-node graph identically either way."""
    g = big[0]
    plans = []
    for min_nodes in (0, 10**9):
        monkeypatch.setattr(sweeps, "KERNEL_MIN_NODES", min_nodes)
        g._derived.clear()
        p = collapse.plan(g, (), 60)
        plans.append(([(grp.title, np.asarray(grp.members).tolist(), grp.scope, grp.ops) for grp in p.groups],
                      p.group_of.tolist()))
    assert plans[0][0] and plans[0] == plans[1]


def test_crossing_slots_and_band_pieces_match_numpy_on_a_big_dag():
    """The two kernel passes a drawing uses beyond the sweeps: which operand slots cross
    between drawn units, and the pieces of each band, equal their numpy definitions."""
    rng = np.random.default_rng(5)
    n = sweeps.KERNEL_MIN_NODES + 700
    operands = [[]] + [rng.integers(0, i, size=rng.integers(0, 4)).tolist() for i in range(1, n)]
    indptr, tails = csr(operands)
    heads = np.repeat(np.arange(n), np.diff(indptr))
    unit = rng.integers(0, 50, size=n) // 3
    crossed = sweeps.crossing(indptr, tails, unit)
    cross = unit[tails] != unit[heads]
    assert crossed is not None and cross.any() and not cross.all()
    assert crossed[0].tolist() == tails[cross].tolist() and crossed[1].tolist() == heads[cross].tolist()

    band, mark = rng.integers(0, 6, size=n), rng.random(n) < 0.8
    pairs = (rng.integers(0, n, size=30), rng.integers(0, n, size=30))
    got = sweeps.band_pieces(indptr, tails, band, mark, pairs)
    inner = mark[heads] & mark[tails] & (band[heads] == band[tails])
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(tails[inner].tolist(), heads[inner].tolist()))
    g.add_edges_from(zip(*(p.tolist() for p in pairs)))
    expected = np.empty(n, dtype=np.int64)
    for piece in nx.connected_components(g):
        expected[list(piece)] = min(piece)
    assert got is not None and got.tolist() == expected.tolist()


def test_runs_gather_marked_nodes_by_label_in_order_of_first_member():
    """The counting sort a drawing's depth bands use: runs by label, ordered by smallest
    member, with each run's depth range (nodes at depth -1, leaves, count only for the
    largest) and its count of each code; labels that are not node ids are left to numpy."""
    rng = np.random.default_rng(11)
    n = sweeps.KERNEL_MIN_NODES + 300
    indptr, tails = csr([[]] * n)
    for marked, width in ((0.0, 3), (0.6, 8), (1.0, 1), (0.5, 9)):
        label = rng.integers(0, n, size=n) // 7 * 7  # any node id: runs of about 7 labels' nodes
        mark = rng.random(n) < marked
        depth = rng.integers(-1, 40, size=n)
        code = rng.integers(-1, width, size=n)
        got = sweeps.runs(indptr, tails, label, mark, depth, code, width)
        assert got is not None
        members, bounds, lows, highs, counts = got
        by_label: dict[int, list[int]] = {}
        for i in np.flatnonzero(mark).tolist():
            by_label.setdefault(int(label[i]), []).append(i)  # first met, first listed
        expected = list(by_label.values())
        assert members.tolist() == [i for run in expected for i in run]
        assert bounds.tolist() == np.cumsum([0] + [len(run) for run in expected]).tolist()
        assert lows.tolist() == [min((int(depth[i]) for i in run if depth[i] >= 0), default=2**63 - 1)
                                 for run in expected]
        assert highs.tolist() == [max(int(depth[i]) for i in run) for run in expected]
        if width > 8:  # a table that big is left to numpy
            assert counts is None
        else:
            assert counts.tolist() == [sum(code[i] == c for i in run) for run in expected for c in range(width)]
    label[5] = -3  # bands merged outright are labelled below 0
    assert sweeps.runs(indptr, tails, label, mark, depth, code, 2) is None
    label[5] = n
    assert sweeps.runs(indptr, tails, label, mark, depth, code, 2) is None
    small = csr([[]] * 10)
    assert sweeps.runs(*small, np.zeros(10), np.ones(10, bool), np.zeros(10), np.zeros(10), 1) is None


def test_bands_merged_outright_plan_alike_with_and_without_the_kernel(monkeypatch):
    """60 independent chains drawn in 20 nodes: no band's pieces fit, so whole bands merge
    (labelled by band, not by node id); the plan is the same either way."""
    g = bp.Graph()
    for k in range(60):
        y = g.param(np.ones(2), name=f"p{k}")
        for _ in range(90):
            y = bp.tanh(y)
    plans = []
    for min_nodes in (0, 10**9):
        monkeypatch.setattr(sweeps, "KERNEL_MIN_NODES", min_nodes)
        g._derived.clear()
        p = collapse.plan(g, (), 20)
        plans.append(([(grp.title, grp.members.tolist(), grp.ops) for grp in p.groups], p.group_of.tolist()))
    assert plans[0] == plans[1] and 1 < len(plans[0][0]) <= 20
    assert all(len(members) > 60 for _, members, _ in plans[0][0])  # every group spans the chains


def test_kernel_calls_through_the_c_entry_point_or_the_binding_alike(monkeypatch):
    """Sweeps are called through wasmtime's unchecked C call (the binding's own call costs
    ~12 µs an argument); without that entry point the binding's call gives the same arrays,
    and a call that traps, or lacks an argument, raises instead of returning garbage."""
    import wasmtime
    import wasmtime._ffi

    rng = np.random.default_rng(3)
    n = sweeps.KERNEL_MIN_NODES + 50
    indptr, tails = csr([[]] + [rng.integers(0, i, size=2).tolist() for i in range(1, n)])
    base, add = np.zeros(n, np.int64), np.ones(n, np.int64)
    fast = sweeps._Kernel()

    def another_signature(*args):
        raise TypeError("this wasmtime's unchecked call takes other arguments")

    monkeypatch.setattr(wasmtime._ffi, "wasmtime_func_call_unchecked", another_signature)
    checked = sweeps._Kernel()  # its first call fails: every sweep falls back to the binding's call
    monkeypatch.delattr(wasmtime._ffi, "wasmtime_func_call_unchecked")
    slow = sweeps._Kernel()
    results = [k.run("longest", (indptr, tails), [base, add], (0, n)) for k in (fast, checked, slow)]
    expected = base.tolist()
    sweeps._longest_py(indptr.tolist(), tails.tolist(), expected, add.tolist(), 0, n)
    assert all(result.tolist() == expected for result in results) and max(expected) > 10
    with pytest.raises(wasmtime.Trap, match="memory fault"):  # wasmtime's own account of it
        fast.functions["or_up"](0, 0, 2**31 - 8, 0, 1)  # reads past the end of the kernel's memory
    with pytest.raises(TypeError, match="5 arguments was given 3"):
        fast.functions["or_up"](0, 0, 0)
