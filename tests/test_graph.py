"""Recording, naming, ids, the networkx graph, backward semantics and errors."""

import pickle
import threading
import warnings

import networkx as nx
import numpy as np
import pytest

import bpgraph as bp


def test_nodes_record_kind_op_operands_shape_and_value():
    g = bp.Graph()
    w = g.param(np.ones((2, 3)), name="W")
    x = g.input(np.arange(6.0).reshape(3, 2), name="X")
    z = (w @ x).named("Z")
    node = g.node("Z")
    assert node["kind"] == "op" and node["op"] == "matmul"
    assert node["operands"] == (w.id, x.id)
    assert z.shape == (2, 2) and node["value"].dtype == np.float64
    assert [g.node(i)["kind"] for i in (w.id, x.id)] == ["param", "input"]
    assert [w.id, x.id, z.id] == [0, 1, 2]  # a counter, never id()


def test_networkx_graph_is_a_read_only_view_with_edges_operand_to_result():
    g = bp.Graph()
    x = g.param(np.ones(3), name="x")
    y = (x * 2).named("y")
    view = g.nx
    assert isinstance(view, nx.DiGraph) and view.has_edge(x.id, y.id)
    with pytest.raises(nx.NetworkXError):
        view.add_node(99)
    empty = bp.Graph().nx  # made on first use, empty graphs included
    assert isinstance(empty, nx.DiGraph) and empty.number_of_nodes() == 0
    fresh = bp.Graph()
    a = fresh.param(np.ones(2), name="a")
    b = (a + 1).named("b")
    assert list(fresh.successors(a.id)) == [b.id] and list(fresh.successors(b.id)) == []


def test_unnamed_results_are_named_after_their_operands_and_stay_unique():
    g = bp.Graph()
    W = g.param(np.ones((2, 2)), name="W3")
    A = g.input(np.ones((2, 3)), name="A2")
    b = g.param(np.ones((2, 1)), name="b3")
    assert (W @ A).name == "W3@A2"
    Z = W @ A + b
    assert Z.name == f"matmul_{Z.id - 1}+b3"  # W3@A2 is taken: the numbered form
    assert bp.linear(W, A, b).name == "W3@A2+b3" and W.T.name == "W3.T" and bp.relu(A).name == "A2.relu"
    assert (W @ (A + A)).name.startswith("matmul_") and (A - (b + b)).name.startswith("sub_")  # would read wrongly
    assert (2 * A).name == "2*A2" and (A * 2).name.startswith("A2*const_")  # the second 2 is numbered
    long = g.param(np.ones(1), name="x" * 20)
    assert (long * long).name == f"mul_{long.id + 1}"  # past NAME_LIMIT characters
    odd = g.param(np.ones(1), name="a b")
    assert bp.exp(odd).name == f"exp_{odd.id + 1}"  # not typeable in a shell as it stands
    assert len(set(g.names)) == len(g)


def test_duplicate_name_says_which_node_has_it():
    g = bp.Graph()
    g.param(np.ones(2), name="W1")
    with pytest.raises(bp.GraphError, match=r"'W1' is already taken by node 0 \(param"):
        g.param(np.ones(2), name="W1")


def test_an_empty_name_is_refused_when_recording_and_renaming():
    g = bp.Graph()
    with pytest.raises(bp.GraphError, match="cannot be empty"):
        g.param(np.ones(2), name="")
    x = g.param(np.ones(2), name="x")
    with pytest.raises(bp.GraphError, match="cannot be empty"):
        x.named("")
    assert g.names == ["x"]  # nothing half-recorded


def test_unknown_name_lists_close_matches_and_what_exists():
    g = bp.Graph()
    for n in ("A1", "A2", "W1"):
        g.param(np.ones(1), name=n)
    with pytest.raises(bp.UnknownNodeError) as err:
        g["A4"]
    assert "did you mean 'A1', 'A2'" in str(err.value) or "did you mean 'A2', 'A1'" in str(err.value)
    assert "nodes: A1, A2, W1" in str(err.value)


def test_repeated_operands_x_times_x_and_x_plus_x():
    g = bp.Graph()
    x = g.param(np.array([1.5, -2.0]), name="x")
    sq = bp.sum(x * x, name="sq")
    product = g.operands(sq)[0]
    assert g.node(product)["operands"] == (x.id, x.id)
    assert g.nx.number_of_edges(x.id, product.id) == 1  # the DiGraph merges the pair; operands do not
    np.testing.assert_allclose(g.backward(sq)["x"], 2 * x.value)
    tw = bp.sum(x + x, name="tw")
    np.testing.assert_allclose(g.backward(tw)["x"], [2.0, 2.0])


def test_node_used_by_three_ops_sums_all_contributions():
    g = bp.Graph()
    x = g.param(np.array([0.3, 0.7]), name="x")
    y = bp.sum(bp.exp(x) + x * 3 + bp.square(x), name="y")
    np.testing.assert_allclose(g.backward(y)["x"], np.exp(x.value) + 3 + 2 * x.value)


def test_backward_twice_gives_the_same_result_and_replaces_old_gradients():
    g = bp.Graph()
    x = g.param(np.array([2.0]), name="x")
    u = bp.sum(x * 5, name="u")
    v = bp.sum(g.param(np.array([1.0]), name="other") * 2, name="v")
    first = g.backward(u)["x"].copy()
    np.testing.assert_array_equal(g.backward(u)["x"], first)
    g.backward(v)
    assert x.grad is None and g["other"].grad is not None


def test_no_path_means_no_gradient_while_zero_means_a_zero_array():
    g = bp.Graph()
    a = g.param(np.array([1.0, 2.0]), name="a")
    b = g.param(np.array([3.0, 4.0]), name="b")
    y = bp.sum(a * 2 + b * 0, name="y")
    grads = g.backward(y)
    np.testing.assert_array_equal(grads["b"], [0.0, 0.0])
    unrelated = g.param(np.ones(1), name="c")
    g.backward(y)
    assert "c" not in g.backward(y) and unrelated.grad is None


def test_inputs_get_gradients_only_when_asked():
    g = bp.Graph()
    w = g.param(np.array([[2.0, 1.0]]), name="W")
    x = g.input(np.array([[1.0], [3.0]]), name="X")
    y = bp.sum(w @ x, name="y")
    assert "X" not in g.backward(y)
    np.testing.assert_allclose(g.backward(y, inputs=True)["X"], w.value.T)


def test_non_scalar_root_needs_a_seed():
    g = bp.Graph()
    x = g.param(np.ones((2, 2)), name="x")
    y = (x * 3).named("y")
    with pytest.raises(bp.GraphError, match=r"shape \(2, 2\), not a scalar: pass seed="):
        g.backward(y)
    np.testing.assert_allclose(g.backward(y, seed=np.full((2, 2), 2.0))["x"], np.full((2, 2), 6.0))
    with pytest.raises(bp.GraphError, match="seed has shape"):
        g.backward(y, seed=np.ones(3))


def test_a_100000_op_chain_runs_backward_without_recursion():
    g = bp.Graph()
    x = g.param(np.array(1.0), name="x")
    y = x
    for _ in range(100_000):
        y = y * 1.0
    assert len(g) == 200_001  # each step adds a const leaf and a mul
    assert g.backward(y)["x"] == 1.0


def test_shape_mismatch_names_the_op_the_operands_and_their_shapes():
    g = bp.Graph()
    w2 = g.param(np.ones((3, 20)), name="W2")
    a1 = g.input(np.ones((21, 211)), name="A1")
    with pytest.raises(bp.OpError, match=r"matmul\(W2 \(3, 20\), A1 \(21, 211\)\): inner dimensions differ"):
        w2 @ a1
    with pytest.raises(bp.OpError, match=r"add\(W2 \(3, 20\), A1 \(21, 211\)\)"):
        w2 + a1


def test_recorded_values_are_protected_from_later_changes():
    g = bp.Graph()
    w = np.ones((2, 2))
    W = g.param(w, name="W")
    y = bp.sum(W * W, name="y")
    w[0, 0] = 5.0  # the user's array: the graph kept its own copy
    assert W.value[0, 0] == 1.0
    with pytest.raises(ValueError):
        W.value[0, 0] = 5.0
    with pytest.raises(ValueError):
        y.value[...] = 0.0


def test_mixing_two_graphs_is_a_clear_error():
    g1, g2 = bp.Graph(), bp.Graph()
    a, b = g1.param(np.ones(2), name="a"), g2.param(np.ones(2), name="b")
    with pytest.raises(bp.GraphError, match="belongs to another graph"):
        a + b


def test_graphs_recorded_in_two_threads_never_mix():
    results = {}

    def build(tag: str) -> None:
        g = bp.Graph()
        x = g.param(np.ones(1), name=f"x_{tag}")
        for _ in range(2000):
            x = x + 1.0
        results[tag] = g

    threads = [threading.Thread(target=build, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(g) == 4001 for g in results.values())
    assert "x_b" not in results["a"] and "x_a" not in results["b"]


def test_scopes_are_recorded_and_nest():
    g = bp.Graph()
    with g.scope("layer1"):
        w = g.param(np.ones(1), name="w")
        with g.scope("linear"):
            z = (w * 2).named("z")
    out = (z + 1).named("out")
    assert (g.node(w)["scope"], g.node(z)["scope"], g.node(out)["scope"]) == ("layer1", "layer1/linear", "")


def test_nonfinite_value_is_reported_at_the_first_node():
    g = bp.Graph()
    a = g.param(np.array([0.0, 1.0]), name="A3")
    with pytest.warns(bp.NonFiniteWarning, match=r"first appears at node 'logA' = log\(A3\) at index \(0,\): A3=0"):
        la = bp.log(a, name="logA")
    with warnings.catch_warnings():
        warnings.simplefilter("error", bp.NonFiniteWarning)
        (la * 2).named("twice")  # its operand is already non-finite: not reported again
    strict = bp.Graph(strict=True)
    b = strict.param(np.array([0.0]), name="b")
    with pytest.raises(bp.NonFiniteError, match="node 'lb'"):
        bp.log(b, name="lb")


def test_nonfinite_warnings_point_at_the_users_line_whatever_path_recorded_the_op():
    g = bp.Graph()
    a = g.param(np.array([0.0, 1.0]), name="a")
    cases = {"op helper": lambda: bp.log(a), "operator": lambda: a / a,
             "backward": lambda: g.backward(bp.sum(bp.sqrt(a), name=f"J{len(g)}"))}
    for path, make in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", bp.NonFiniteWarning)
            make()
        places = {(w.filename, w.lineno) for w in caught if issubclass(w.category, bp.NonFiniteWarning)}
        assert places, path
        assert {f for f, _ in places} == {__file__}, path  # this file, not bpgraph's own
        assert {n for _, n in places} <= {make.__code__.co_firstlineno}, path


def test_output_is_the_last_recorded_node_and_the_default_root():
    g = bp.Graph()
    x = g.param(np.array([3.0]), name="x")
    y = bp.sum(x * x, name="y")
    assert g.output.id == y.id and g.output.name == "y"
    np.testing.assert_allclose(g.backward()["x"], [6.0])


def test_a_scalar_node_used_twice_gets_its_gradient_summed():
    g = bp.Graph()
    a = g.param(np.array([0.5, -1.0]), name="a")
    t = bp.sum(a * a, name="t")
    root = (t + bp.exp(t)).named("J")
    grads = g.backward(root)
    np.testing.assert_allclose(grads["t"], 1 + np.exp(t.value))
    np.testing.assert_allclose(grads["a"], (1 + np.exp(t.value)) * 2 * a.value)


def test_every_public_name_resolves_to_what_it_documents_even_after_submodule_imports():
    # A submodule named like a public function would shadow it once imported.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(bp.__path__):
        importlib.import_module(f"bpgraph.{module.name}")
    for name in bp.__all__:
        if name != "__version__":
            assert not isinstance(getattr(bp, name), type(bp)), f"bp.{name} is a module"
