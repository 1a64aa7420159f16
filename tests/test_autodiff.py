"""The backward walk: summing contributions, the fused rule, NaN/inf reporting, networkx on demand.

Gradient values of every op are in test_ops.py (finite differences) and test_seed_network.py
(closed forms).
"""

import networkx as nx
import numpy as np
import pytest

import bpgraph as bp


def test_copy_false_keeps_a_read_only_view_and_the_callers_array_writeable():
    g = bp.Graph()
    x = np.arange(6.0).reshape(2, 3)
    X = g.input(x, name="X", copy=False)
    W = g.param(np.ones((1, 2)), name="W", copy=False)
    assert np.shares_memory(X.value, x) and x.flags.writeable and not X.value.flags.writeable
    assert W.value.dtype == np.float64 and not W.value.flags.writeable
    np.testing.assert_array_equal(g.backward(bp.sum(W @ X))["W"], x.sum(axis=1, keepdims=True).T)


def test_gradients_summed_in_place_leave_the_shared_upstream_gradient_alone():
    g = bp.Graph()
    p = g.param(np.array([1.0, 2.0]), name="p")
    q = g.param(np.array([3.0, 4.0]), name="q")
    u = (p + q).named("u")                      # add hands its upstream gradient to p and q as is
    J = bp.sum(u * u + p * 3.0 + bp.exp(u), name="J")   # u and p receive more contributions
    grads = g.backward(J)
    du = 2 * u.value + np.exp(u.value)
    np.testing.assert_allclose(grads["u"], du)
    np.testing.assert_allclose(grads["q"], du)
    np.testing.assert_allclose(grads["p"], du + 3.0)
    assert all(not grad.flags.writeable for grad in grads.values())


def test_a_seed_given_by_the_caller_is_never_summed_into():
    g = bp.Graph()
    x = g.param(np.array([1.0, 2.0]), name="x")
    y = (x * x + x).named("y")  # x's gradient has two parts: summed in place into a fresh array
    seed = np.array([1.0, 10.0])
    grads = g.backward(y, seed=seed)
    np.testing.assert_array_equal(seed, [1.0, 10.0])
    np.testing.assert_allclose(grads["x"], seed * (2 * x.value + 1))


def test_linear_adds_b_in_place_only_where_that_keeps_the_shape_and_dtype():
    g = bp.Graph()
    w32 = g.param(np.ones((3, 2), dtype=np.float32), name="w")
    a32 = g.input(np.ones((2, 1), dtype=np.float32), name="a")
    wide = bp.linear(w32, a32, np.zeros((1, 5)))  # b widens Z to (3, 5) and float64
    assert wide.shape == (3, 5) and wide.value.dtype == np.float64
    np.testing.assert_array_equal(wide.value, np.full((3, 5), 2.0))
    column = bp.linear(w32, a32, np.arange(3.0, dtype=np.float32).reshape(3, 1))
    np.testing.assert_array_equal(column.value, [[2.0], [3.0], [4.0]])


@pytest.mark.parametrize("m", [10, 3000])  # gradients tested together, and one by one (> SMALL)
def test_a_non_finite_gradient_is_still_named_at_its_first_node(m):
    g = bp.Graph()
    W = g.param(np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 1.0]]), name="W")
    X = g.input(np.vstack([np.linspace(-1, 1, m), np.linspace(1, -1, m)]), name="X")
    b = g.param(np.zeros((3, 1)), name="b")
    A = bp.relu(bp.linear(W, X, b, name="Z"), name="A")  # zeros where Z <= 0
    J = bp.sum(bp.sqrt(A), name="J")                     # d sqrt(a)/da = inf at a = 0
    with pytest.warns(bp.NonFiniteWarning, match="non-finite gradient first appears at node 'A'"):
        g.backward(J)


def _bce_of_sigmoid(z: np.ndarray, y: np.ndarray, extra_use: bool = False):
    g = bp.Graph()
    Z = g.param(z, name="Z")
    A = bp.sigmoid(Z, name="A")
    J = bp.binary_cross_entropy(A, g.input(y, name="Y"), name="J")
    if extra_use:  # A has a second user: the fused shortcut is dropped, the separate rules give dZ
        J = (J + bp.sum(A * 2.0)).named("J2")
    return g, g.backward(J), A.value


@pytest.mark.parametrize("extra_use", [False, True])
def test_bce_through_sigmoid_stores_both_gradients_as_the_separate_rules_give_them(extra_use):
    z, y = np.array([[-2.0, 0.3, 1.5, 4.0]]), np.array([[0.0, 1.0, 1.0, 0.0]])
    _, grads, a = _bce_of_sigmoid(z, y, extra_use)
    m = z.shape[1]
    da = ((1 - y) / (1 - a) - y / a) / m + (2.0 if extra_use else 0.0)
    np.testing.assert_allclose(grads["A"], da, rtol=1e-13)
    np.testing.assert_allclose(grads["Z"], da * a * (1 - a), rtol=1e-12)     # the course's dZ
    if not extra_use:
        np.testing.assert_allclose(grads["Z"], (a - y) / m, rtol=1e-13)


@pytest.mark.parametrize("other_use", ["before", "after", "as the labels", "none"])
def test_the_fused_rule_gives_way_to_any_other_contribution_whatever_its_order(other_use, monkeypatch):
    """A = sigmoid(Z) feeding cross-entropy: every gradient equals what the separate rules
    give, whether A has another user recorded before the cost (walked after it), after it
    (walked before it), is the labels too, or has no other user (the fused rule holds)."""
    from bpgraph import autodiff

    def build():
        g = bp.Graph()
        Z = g.param(np.array([[-2.0, 0.3, 1.5, 4.0]]), name="Z")
        A = bp.sigmoid(Z, name="A")
        extra = bp.sum(A * A, name="extra") if other_use == "before" else None
        Y = np.array([[0.0, 1.0, 1.0, 0.0]])
        labels = A * 0.5 if other_use == "as the labels" else g.input(Y, name="Y")
        J = bp.binary_cross_entropy(A, labels, name="ce")
        if other_use == "after":
            extra = bp.sum(A * A, name="extra")
        if extra is not None:
            J = (J + extra).named("J")
        return g, J

    g, J = build()
    fused = g.backward(J)
    monkeypatch.setattr(autodiff, "FUSED", {})
    g, J = build()
    separate = g.backward(J)
    assert fused.keys() == separate.keys()
    for name in fused:
        np.testing.assert_allclose(fused[name], separate[name], rtol=1e-12, atol=1e-15, err_msg=name)


def test_bce_through_a_saturated_sigmoid_names_da_and_keeps_dz_finite():
    z, y = np.array([[40.0, 0.0]]), np.array([[1.0, 0.0]])  # sigmoid(40) == 1.0 exactly
    with pytest.warns(bp.NonFiniteWarning) as caught:  # J itself is NaN too (0 · log 0)
        _, grads, a = _bce_of_sigmoid(z, y)
    assert any("non-finite gradient first appears at node 'A'" in str(w.message) for w in caught)
    np.testing.assert_allclose(grads["Z"], (a - y) / 2)


def test_the_networkx_graph_follows_recording_and_keeps_one_edge_per_pair():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    y = (x * x).named("y")
    assert g.nx.has_edge(x.id, y.id) and g.nx.number_of_edges(x.id, y.id) == 1
    z = (y + x).named("z")
    assert sorted(g.successors(x.id)) == [y.id, z.id]
    view = g.nx
    assert view.has_edge(y.id, z.id) and view.nodes[z.id]["name"] == "z"
    assert sorted(view.predecessors(z.id)) == [x.id, y.id]
    assert nx.is_frozen(view)
    assert g.nodes[y.id]["operands"] == (x.id, x.id)  # x * x holds x twice


def test_between_is_the_nodes_on_some_path():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    w = g.param(np.ones(2), name="w")
    y = bp.tanh(x, name="y")
    z = (y * w).named("z")
    J = bp.sum(z + x, name="J")
    assert g.between(J, x) == {x.id, y.id, z.id, J.id - 1, J.id}
    assert g.between(y, w) == set()
    assert g.ancestors(y) == {x.id, y.id} and g.descendants(w) == {w.id, z.id, J.id - 1, J.id}


def test_a_nan_in_the_data_is_reported_at_the_leaf():
    g = bp.Graph()
    with pytest.warns(bp.NonFiniteWarning, match=r"input 'X' holds NaN or infinity in its data \(at index \(1,\)\)"):
        g.input(np.array([1.0, np.nan]), name="X")
    with pytest.raises(bp.NonFiniteError, match="param 'W'"):
        bp.Graph(strict=True).param(np.array([np.inf]), name="W")


def test_nan_in_the_data_is_blamed_on_the_data_not_on_a_log_or_a_sigmoid():
    g = bp.Graph()
    with pytest.warns(bp.NonFiniteWarning, match="input 'X' holds NaN"):
        X = g.input(np.array([[1.0, np.nan]]), name="X")
    W = g.param(np.array([[2.0]]), name="W")
    J = bp.sum(bp.sigmoid(W @ X), name="J")  # no second warning while recording: X was reported
    with pytest.warns(bp.NonFiniteWarning) as caught:
        g.backward(J)
    (message,) = [str(w.message) for w in caught]
    assert "already NaN or infinite" in message and "saturated sigmoid" not in message


def test_l2_penalty_backward_is_linear_in_its_operands():
    """50,000 weights: each gradient is λ/m·W (the variadic rule takes the values as one sequence)."""
    g = bp.Graph()
    weights = [g.param(np.array([float(k % 7)]), name=f"W{k}") for k in range(50_000)]
    L2 = bp.l2_penalty(weights, lambd=0.5, m=10, name="L2")
    np.testing.assert_allclose(L2.value, 0.5 / 20 * sum((k % 7) ** 2 for k in range(50_000)))
    grads = g.backward(L2)
    assert len(grads) == 50_001
    np.testing.assert_allclose(grads["W49999"], 0.05 * (49_999 % 7))


@pytest.mark.parametrize("build, message", [
    (lambda g: bp.mean(g.param(np.ones((0, 3)), name="E"), axis=0), r"mean\(E \(0, 3\)\): the mean of no elements"),
    (lambda g: bp.l2_penalty([g.param(np.ones(2), name="W")], 0.7, 0), r"l2_penalty\(W \(2,\)\): m, the number"),
])
def test_empty_means_and_m_0_are_clear_op_errors(build, message):
    with pytest.raises(bp.OpError, match=message):
        build(bp.Graph())
