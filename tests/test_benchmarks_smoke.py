"""The benchmark scripts still run, at their smallest sizes, and still check what they time.

No timing is asserted: only that the scripts work end to end, print their ratios, and that
the numbers they compare are right (gradients equal the hand-written ones, no hidden array
copies), so the benchmarks cannot rot.
"""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def engine():
    return load("bench_engine")


@pytest.fixture(scope="module")
def scale():
    return load("bench_scale")


@pytest.mark.parametrize("copy", [False, True])
def test_bpgraph_step_gives_the_hand_written_gradients(engine, copy):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    J_ref, grads_ref = engine.numpy_step(X, Y, params)
    J, grads = engine.bpgraph_step(X, Y, params, copy=copy)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert sorted(grads) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_bpgraph_step_leaves_the_callers_arrays_writeable(engine):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    engine.bpgraph_step(X, Y, params)  # copy=False: the graph keeps read-only views
    assert X.flags.writeable and Y.flags.writeable and all(p.flags.writeable for p in params.values())


def test_gradient_check_rejects_a_wrong_gradient(engine):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    J, grads = engine.numpy_step(X, Y, params)
    wrong = {**grads, "W2": grads["W2"] * 1.001}
    with pytest.raises(AssertionError, match="dW2"):
        engine.check_against((J, grads), (J, wrong), "wrong")


def test_engine_benchmark_prints_ratios_after_a_passed_gradient_check(engine, capsys):
    results = engine.main(["--quick", "--rounds", "1"])
    course = results["course"]
    assert set(course.times) == {"numpy", "bpgraph", "bp+copy"}
    assert all(t > 0 for times in course.times.values() for t in times)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("course"))
    assert "[2,20,3,1],211" in row
    assert len(re.findall(r"\(\d+\.\d\dx\)", row)) == 2  # bpgraph and bp+copy against numpy
    assert "gradient check passed at course size" in out


def test_unknown_size_is_refused(engine):
    with pytest.raises(SystemExit):
        engine.main(["--sizes", "huge"])


def test_scale_benchmark_runs_at_its_smallest_size(scale, capsys):
    results = scale.main(["--quick", "--no-layout"])
    chain = results["engine"][("chain", 200)]
    assert chain["nodes"] == 200
    if not isinstance(chain["count_paths"], str):  # count_paths available
        assert chain["paths"] == 1
    layered = results["engine"][("layered", 200)]
    if not isinstance(layered["count_paths"], str):
        assert layered["paths"] > 1
    for shape in ("chain", "layered"):
        memory = results["memory"][shape]
        assert 0 < memory["after_backward"] <= memory["with_nx"] < 2048  # the budget per node
        assert memory["value_data_ratio"] == pytest.approx(1.0, abs=0.05)  # no hidden copies
        assert memory["grad_data_ratio"] == pytest.approx(1.0, abs=0.05)
        assert results["ratios"][shape]["rec+bwd"] == pytest.approx(1.0)  # one size: ratio 1
    out = capsys.readouterr().out
    assert "start-up" in out and "--help" in out and "goals:" in out


def test_shapes_have_the_requested_size_and_a_scalar_root(scale):
    for shape, build in scale.SHAPES.items():
        g, root, leaf = build(200)
        assert abs(len(g) - 200) <= scale.WIDTH, shape
        assert root.shape == () and leaf.kind == "param"


# --- the engine's fast paths, which the benchmarks time, keep every result right ---------------
import bpgraph as bp  # noqa: E402


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
    if extra_use:  # A has a second user: no fused rule, the separate ones
        J = (J + bp.sum(A * 0.0)).named("J2")
    return g, g.backward(J), A.value


@pytest.mark.parametrize("extra_use", [False, True])
def test_bce_through_sigmoid_stores_both_gradients_as_the_separate_rules_give_them(extra_use):
    z, y = np.array([[-2.0, 0.3, 1.5, 4.0]]), np.array([[0.0, 1.0, 1.0, 0.0]])
    _, grads, a = _bce_of_sigmoid(z, y, extra_use)
    m = z.shape[1]
    np.testing.assert_allclose(grads["Z"], (a - y) / m, rtol=1e-13)            # the course's dZ
    np.testing.assert_allclose(grads["A"], ((1 - y) / (1 - a) - y / a) / m, rtol=1e-13)


def test_bce_through_a_saturated_sigmoid_names_da_and_keeps_dz_finite():
    z, y = np.array([[40.0, 0.0]]), np.array([[1.0, 0.0]])  # sigmoid(40) == 1.0 exactly
    with pytest.warns(bp.NonFiniteWarning) as caught:  # J itself is NaN too (0 · log 0)
        _, grads, a = _bce_of_sigmoid(z, y)
    assert any("non-finite gradient first appears at node 'A'" in str(w.message) for w in caught)
    np.testing.assert_allclose(grads["Z"], (a - y) / 2)


def test_the_floating_point_switch_and_its_errstate_fallback_silence_numpy_and_restore_it():
    from bpgraph import graph

    before = np.geterr()
    for switch, ignore in ((graph.FP_STATE, graph.FP_IGNORE), (graph._Errstate(), {"all": "ignore"})):
        token = switch.set(ignore)
        try:
            assert set(np.geterr().values()) == {"ignore"}
        finally:
            switch.reset(token)
        assert np.geterr() == before


def test_the_networkx_graph_is_filled_on_first_use_and_follows_later_recording():
    g = bp.Graph()
    x = g.param(np.ones(2), name="x")
    y = (x * x).named("y")
    assert g.nx.has_edge(x.id, y.id) and g.nx.number_of_edges(x.id, y.id) == 1
    z = (y + x).named("z")                       # recorded after the DiGraph was filled
    assert sorted(g.successors(x.id)) == [y.id, z.id]
    view = g.nx
    assert view.has_edge(y.id, z.id) and view.nodes[z.id] is g.nodes[z.id]
    assert sorted(view.predecessors(z.id)) == [x.id, y.id]
