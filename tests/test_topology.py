"""bpgraph.topology: the graph's structure as arrays, checked against networkx and closed forms."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bpgraph as bp
from bpgraph.topology import components, op_depths, topology


def test_arrays_hold_every_operand_slot_in_head_order():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    c = g.const(2.0, name="c")
    y = x * x           # a repeated operand is two slots
    t = bp.tanh(y)
    z = t + c
    topo = topology(g)
    assert topo.size == len(g) == 5
    assert topo.tails.tolist() == [x.id, x.id, y.id, t.id, c.id]
    assert topo.heads.tolist() == [y.id, y.id, t.id, z.id, z.id]
    assert topo.is_op.tolist() == [False, False, True, True, True]


def test_op_depths_of_a_chain_and_a_diamond():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    a = bp.tanh(x)            # depth 0: only a leaf feeds it
    b = bp.tanh(a)            # 1
    c = bp.exp(a)             # 1
    d = b * c + bp.tanh(b)    # tanh(b) 2, b*c 2, the sum 3
    depth = op_depths(g).tolist()
    assert depth[x.id] == -1
    assert [depth[t.id] for t in (a, b, c, d)] == [0, 1, 1, 3]


def test_components_of_a_long_path_take_few_rounds_and_the_smallest_id():
    n = 100_000
    a = np.arange(n - 1)
    roots = components(n, a, a + 1)
    assert (roots == 0).all()
    roots = components(n, a[a % 1000 != 999], a[a % 1000 != 999] + 1)  # 100 pieces of 1,000
    assert roots.tolist() == (np.arange(n) // 1000 * 1000).tolist()


@given(st.integers(1, 40).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                                             max_size=3 * n))))
def test_components_equal_networkx_connected_components(case):
    n, edges = case
    a = np.array([e[0] for e in edges], dtype=np.intp)
    b = np.array([e[1] for e in edges], dtype=np.intp)
    roots = components(n, a, b)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    expected = [0] * n
    for piece in nx.connected_components(g):
        for i in piece:
            expected[i] = min(piece)
    assert roots.tolist() == expected


def test_derived_values_are_remembered_until_the_graph_grows():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    calls = []

    def size(graph):
        calls.append(len(graph))
        return len(graph)

    assert g.derived("size", size) == g.derived("size", size) == 1
    bp.tanh(x)
    assert g.derived("size", size) == 2
    assert calls == [1, 2]
    assert topology(g) is topology(g)
    assert topology(g).size == 2


def test_derived_values_are_not_pickled():
    import pickle

    g = bp.Graph()
    bp.tanh(g.param(np.ones(2), name="x"))
    topology(g)
    copy = pickle.loads(pickle.dumps(g))
    assert copy._derived == {}
    assert topology(copy).tails.tolist() == [0]


def test_term_reach_is_shared_read_only_and_takes_many_terms():
    from bpgraph.analysis import term_reach

    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    terms = [bp.sum(x * float(k + 1)) for k in range(70)]  # more terms than an int64 has bits
    root = terms[0]
    for t in terms[1:]:
        root = root + t
    reach = term_reach(g, root)
    assert reach is term_reach(g, root)
    assert not reach.feeds.flags.writeable and not reach.root_side.flags.writeable
    assert len(reach.terms) == 70 and reach.feeds.dtype == object
    assert reach.feeds[x.id] == (1 << 70) - 1  # x feeds every term
    u = g.operands(terms[69])[0].id
    assert reach.mask(u, terms[69].id) == 1 << 69
    heads = np.array([terms[69].id, root.id])
    tails = np.array([u, g.operands(root)[0].id])
    assert reach.masks(tails, heads).tolist() == [reach.mask(u, terms[69].id), reach.mask(tails[1], root.id)]


def test_derived_values_are_bounded_and_dropped_when_the_graph_grows():
    from bpgraph.graph import DERIVED_CACHE

    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    for k in range(DERIVED_CACHE + 5):
        g.derived(f"value {k}", lambda graph, k=k: k)
        g.derived("value 0", lambda graph: 0)  # used again each time
    assert len(g._derived) == DERIVED_CACHE
    assert "value 0" in g._derived and "value 1" not in g._derived  # the one used longest ago went
    bp.tanh(x)
    assert g.derived("value 1", lambda graph: "again") == "again"
    assert list(g._derived) == ["value 1"]  # answers for the smaller graph were all dropped

    def nested(graph):
        for k in range(DERIVED_CACHE):
            graph.derived(f"inner {k}", lambda graph, k=k: k)
        return "outer"

    assert g.derived("outer", nested) == "outer" and len(g._derived) == DERIVED_CACHE


def test_a_plan_is_shared_and_read_only():
    from bpgraph.render.collapse import plan

    g = bp.Graph()
    y = g.param(np.ones(2), name="x")
    for _ in range(30):
        y = bp.tanh(y)
    first = plan(g, (), 5, keep={y.id})
    assert plan(g, (), 5, keep=[y.id]) is first and plan(g, (), 6, keep={y.id}) is not first
    assert not first.group_of.flags.writeable and isinstance(first.notes, tuple)


def test_topology_is_read_only_and_an_empty_term_list_reaches_nothing():
    from bpgraph.analysis import term_edges, term_reach

    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    y = bp.sum(bp.tanh(x))
    topo = topology(g)
    assert all(not a.flags.writeable for a in (topo.indptr, topo.tails, topo.heads, topo.kind_index, topo.op_index,
                                               topo.scope_index))
    assert not topo.indptr.flags.writeable and isinstance(topo.op_names, tuple)
    assert term_edges(g, y, []) == {} and term_reach(g, y, []).terms == ()


_ACTIONS = ["enter a", "enter b", "exit", "leaf", "tanh", "mul", "const", "draw"]


@given(st.lists(st.tuples(st.sampled_from(_ACTIONS), st.integers(0, 1000)), max_size=60))
def test_columns_caught_up_from_the_node_dicts_match_every_node_dict(steps):
    """kind, op, scope and operands of each node, as the columns give them, equal the node
    dicts, whatever order scopes are entered, left empty or nested in, and however often a
    drawing (``draw``: the topology is read) makes the columns catch up in between."""
    import contextlib

    g = bp.Graph()
    nodes = [g.param(np.ones(2), name="p")]
    with contextlib.ExitStack() as stack:
        depth = []
        for action, pick in steps:
            if action.startswith("enter"):
                depth.append(stack.enter_context(contextlib.ExitStack()))
                depth[-1].enter_context(g.scope(action.split()[1]))
            elif action == "exit" and depth:
                depth.pop().close()
            elif action == "draw":
                assert topology(g).size == len(g)
            elif action == "leaf":
                nodes.append(g.input(np.ones(2)))
            elif action == "const":
                nodes.append(nodes[pick % len(nodes)] * 3.0)
            elif action == "tanh":
                nodes.append(bp.tanh(nodes[pick % len(nodes)]))
            else:
                nodes.append(nodes[pick % len(nodes)] * nodes[(pick // 7) % len(nodes)])
    topo = topology(g)
    for i, attrs in g.nodes.items():
        assert topo.kind(i) == attrs["kind"] and topo.scope(i) == attrs["scope"]
        assert (topo.op_names[topo.op_index[i]] if topo.op_index[i] >= 0 else None) == attrs["op"]
        assert topo.tails[topo.indptr[i]:topo.indptr[i + 1]].tolist() == list(attrs["operands"])
    assert list(topo.scope_names) == sorted({a["scope"] for a in g.nodes.values()})


def test_recording_and_backward_leave_the_columns_alone():
    """Recording writes only the node dicts (the columns are caught up when a drawing asks),
    so a graph recorded, differentiated and dropped in a training loop never builds them."""
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    with g.scope("layer"):
        J = bp.sum(bp.tanh(x) * x, name="J")
    g.backward(J)
    columns = g._columns
    assert len(columns.kinds) == len(columns.tails) == 0 and columns.scope_marks == []
    assert topology(g).size == len(g) == 4 and len(columns.kinds) == 4
    assert columns.scope_marks == [(1, "layer")]


def _assert_columns_match_the_dicts(g):
    topo = topology(g)
    assert topo.size == len(g)
    for i, attrs in g.nodes.items():
        assert topo.kind(i) == attrs["kind"] and topo.scope(i) == attrs["scope"]
        assert (topo.op_names[topo.op_index[i]] if topo.op_index[i] >= 0 else None) == attrs["op"]
        assert topo.tails[topo.indptr[i]:topo.indptr[i + 1]].tolist() == list(attrs["operands"])
    return topo


def test_recording_past_the_catch_up_boundaries_keeps_the_columns_right():
    """Recording catches the columns up every 4,096 nodes: scopes that start, end or stay
    empty right at those ids, renames, and an older topology still alive across a catch-up
    (whose arrays must then be copied, not grown) all leave columns equal to the node dicts."""
    g = bp.Graph()
    y = x = g.param(np.ones(1), name="x")
    before = None
    for target, scope in ((4094, "a"), (4096, "b"), (4097, ""), (8191, "c"), (8192, "d"), (8200, "")):
        while len(g) < target:
            y = bp.tanh(y) if len(g) % 3 else y * x
        if target == 4096:
            before = topology(g)  # views the columns while the next catch-up runs
        if scope:
            with g.scope(scope):
                with g.scope("empty"):
                    pass
                y = bp.tanh(y)
    y.named("last")
    assert before.size == 4096 and len(g._columns.ends) - 1 >= 8192  # caught up while recording
    _assert_columns_match_the_dicts(g)
    assert before.tails[before.indptr[4095]:].tolist() == list(g.nodes[4095]["operands"])


def test_a_catch_up_stopped_half_way_is_repaired_by_the_next(monkeypatch):
    """Ctrl-C after some columns grew and before ``ends`` did: the next
    catch-up drops the half-written part and appends those nodes once."""
    from bpgraph.graph import _Columns

    g = bp.Graph()
    y = g.param(np.ones(1), name="x")
    with g.scope("s"):
        for _ in range(10):
            y = bp.tanh(y)
    extend = _Columns._extend

    def stop_at_ends(self, name, values):
        if name == "ends":
            raise KeyboardInterrupt
        extend(self, name, values)

    monkeypatch.setattr(_Columns, "_extend", stop_at_ends)
    with pytest.raises(KeyboardInterrupt):
        topology(g)
    assert len(g._columns.kinds) == len(g) and len(g._columns.ends) == 1  # half-written
    monkeypatch.setattr(_Columns, "_extend", extend)
    topo = _assert_columns_match_the_dicts(g)
    assert len(g._columns.kinds) == len(g) and topo.scope_names == ("", "s")


def test_columns_grow_while_an_earlier_topology_still_views_them():
    """A drawing's topology views the columns without copying; recording more nodes after it
    (and catching up, which must copy an array a view still holds) leaves the old topology
    describing the old graph and gives the new one every node, none lost or doubled."""
    g = bp.Graph()
    y = x = g.param(np.ones(2), name="x")
    for _ in range(12):
        y = bp.tanh(y) * x
    before = topology(g)
    size = before.size
    for _ in range(12):
        y = bp.maximum(bp.tanh(y), x)
    after = topology(g)
    for topo, count in ((before, size), (after, len(g))):
        assert topo.size == count and topo.indptr[-1] == len(topo.tails)
        for i in range(count):
            assert topo.tails[topo.indptr[i]:topo.indptr[i + 1]].tolist() == list(g.nodes[i]["operands"])
            assert topo.kind(i) == g.nodes[i]["kind"]


def test_threads_drawing_one_graph_at_once_fill_its_columns_once():
    """Several threads asking for the topology of the same freshly recorded graph (as drawing
    it from several threads does) copy its nodes into the columns exactly once."""
    import sys
    import threading

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the threads interleave inside catch_up
    try:
        for _ in range(5):
            g = bp.Graph()
            y = g.param(np.ones(1), name="x")
            for _ in range(3000):
                y = bp.tanh(y)
            threads = [threading.Thread(target=topology, args=(g,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(g._columns.kinds) == len(g) and topology(g).size == len(g)
    finally:
        sys.setswitchinterval(switch)
