"""bpgraph.render.structure: the graph's structure as arrays, checked against networkx and closed forms."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bpgraph as bp
from bpgraph.render.structure import components, op_depths, topology


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


def test_components_of_a_long_path_and_of_many_pieces_are_their_smallest_ids():
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


def test_topology_is_read_only_and_an_empty_term_list_reaches_nothing():
    from bpgraph.analysis import term_edges, term_reach

    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    y = bp.sum(bp.tanh(x))
    topo = topology(g)
    assert all(not a.flags.writeable for a in (topo.tails, topo.heads, topo.kind_index, topo.op_index,
                                               topo.scope_index))
    assert not op_depths(g).flags.writeable and isinstance(topo.op_names, tuple)
    assert term_edges(g, y, []) == {} and term_reach(g, y, []).terms == ()


_ACTIONS = ["enter a", "enter b", "exit", "leaf", "tanh", "mul", "const", "draw"]


@given(st.lists(st.tuples(st.sampled_from(_ACTIONS), st.integers(0, 1000)), max_size=60))
def test_the_arrays_match_every_node_dict(steps):
    """kind, op, scope and operands of each node, as the arrays give them, equal the node
    dicts, whatever order scopes are entered, left empty or nested in, and however often a
    drawing (``draw``: the arrays are read) comes in between."""
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
        assert topo.tails[topo.heads == i].tolist() == list(attrs["operands"])
    assert list(topo.scope_names) == sorted({a["scope"] for a in g.nodes.values()})
