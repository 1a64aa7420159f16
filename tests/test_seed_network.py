"""The seed network's gradients equal the course's closed forms, with and without L2."""

import numpy as np
import pytest

from bpgraph.examples import l2_mlp

from helpers import rel_err

M = 211
NAMES = "W1 b1 Z1 A1 W2 b2 Z2 A2 W3 b3 Z3 A3 X Y cross_entropy L2 J".split()


def course_backward(g, lambd: float) -> dict[str, np.ndarray]:
    """The course's backward pass with regularisation, written out by hand.

    In the course dZ and dA are m times ∂J/∂Z and ∂J/∂A (the 1/m sits in dW and db).
    """
    v = {n: g[n].value for n in NAMES}
    d = {}
    d["Z3"] = v["A3"] - v["Y"]
    d["W3"] = d["Z3"] @ v["A2"].T / M + lambd / M * v["W3"]
    d["b3"] = d["Z3"].sum(axis=1, keepdims=True) / M
    d["A2"] = v["W3"].T @ d["Z3"]
    d["Z2"] = d["A2"] * (v["A2"] > 0)
    d["W2"] = d["Z2"] @ v["A1"].T / M + lambd / M * v["W2"]
    d["b2"] = d["Z2"].sum(axis=1, keepdims=True) / M
    d["A1"] = v["W2"].T @ d["Z2"]
    d["Z1"] = d["A1"] * (v["A1"] > 0)
    d["W1"] = d["Z1"] @ v["X"].T / M + lambd / M * v["W1"]
    d["b1"] = d["Z1"].sum(axis=1, keepdims=True) / M
    return d


def test_seed_network_has_the_course_names_and_shapes():
    g = l2_mlp()
    assert sorted(g.names) == sorted(NAMES)
    shapes = {n: g[n].shape for n in NAMES}
    assert shapes["X"] == (2, M) and shapes["W1"] == (20, 2) and shapes["b1"] == (20, 1)
    assert shapes["W2"] == (3, 20) and shapes["W3"] == (1, 3) and shapes["A3"] == (1, M)
    assert {g[n].kind for n in ("W1", "b1", "W2", "b2", "W3", "b3")} == {"param"}
    assert {g[n].kind for n in ("X", "Y")} == {"input"}


@pytest.mark.parametrize("lambd", [0.7, 0.0])
def test_gradients_equal_the_course_closed_forms(lambd):
    g = l2_mlp(lambd=lambd)
    grads = g.backward("J")
    expected = course_backward(g, lambd)
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert rel_err(grads[name], expected[name]) < 1e-12, name
    for name in ("Z3", "A2", "Z2", "A1", "Z1"):
        assert rel_err(M * grads[name], expected[name]) < 1e-12, name


def test_l2_changes_only_dw_and_by_exactly_lambda_over_m_w():
    with_l2, without = l2_mlp(lambd=0.7).backward("J"), l2_mlp(lambd=0.0).backward("J")
    g = l2_mlp()
    for name in ("A1", "A2", "A3", "Z1", "Z2", "Z3", "b1", "b2", "b3"):
        np.testing.assert_array_equal(with_l2[name], without[name], err_msg=name)
    for name in ("W1", "W2", "W3"):
        added = with_l2[name] - without[name]
        assert not np.array_equal(with_l2[name], without[name])
        assert rel_err(added, 0.7 / M * g[name].value) < 1e-12, name


def test_l2_reads_only_the_weights():
    g = l2_mlp()
    assert [t.name for t in g.operands("L2")] == ["W1", "W2", "W3"]
    upstream = {g.name_of(i) for i in g.ancestors("L2")}
    assert upstream == {"L2", "W1", "W2", "W3"}
    assert not any(n[0] in "AZ" for n in upstream)


def test_dl2_da2_is_no_path_not_a_zero_array():
    g = l2_mlp()
    grads = g.backward("L2")
    assert set(grads) == {"L2", "W1", "W2", "W3"}
    assert g["A2"].grad is None
    np.testing.assert_allclose(grads["W2"], 0.7 / M * g["W2"].value, rtol=1e-14)


def test_the_whole_network_passes_gradcheck():
    from bpgraph import gradcheck

    report = gradcheck(l2_mlp(), "J")
    assert [leaf.name for leaf in report.leaves] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert report.ok and report.worst.rel_error < 1e-7


def test_gradcheck_passes_a_gradient_of_about_zero_on_its_absolute_error_and_fails_a_wrong_one():
    import bpgraph as bp

    g = bp.Graph()
    x = g.param(np.array([1e-20, 2e-20]), name="x")
    y = bp.sum(x ** 8, name="y")  # ∂y/∂x = 8x⁷ ≈ 1e-139, while the central difference gives 0
    report = bp.gradcheck(g, y)
    assert report.leaves[0].rel_error == 1.0 and report.ok
    assert not bp.gradcheck(g, y, atol=0.0).ok


def test_gradcheck_fails_a_wrong_gradient_rule(monkeypatch):
    import dataclasses

    import bpgraph as bp
    from bpgraph.ops import OPS

    wrong_rule = dataclasses.replace(OPS["square"], vjps=(lambda g, out, a: 3 * g * a,))  # should be 2·a
    monkeypatch.setitem(OPS, "square", wrong_rule)
    g = bp.Graph()
    w = g.param(np.array([1.0, 2.0]), name="w")
    report = bp.gradcheck(g, bp.sum(bp.square(w), name="z"))
    assert not report.ok and report.leaves[0].rel_error == pytest.approx(0.2)  # |3−2| / (3+2)
    text = str(report).splitlines()  # what print(report) and `bpgraph check` show
    assert text[0] == "finite-difference check of ∂z/∂(each parameter), tolerance 1e-06"
    assert text[1].split()[:2] == ["w", "(2,)"] and text[1].endswith("FAIL") and "2.00e-01" in text[1]
    assert text[2] == "0 of 1 parameters pass"


def test_gradcheck_allows_for_rounding_in_the_finite_differences():
    """Hypothesis found it: ∂J/∂p0 is exactly 0 here (a log-softmax of equal values), while
    central differences give 1.9e-8 from rounding alone; a fixed 1e-8 called that a failure."""
    import bpgraph as bp
    from bpgraph.fdcheck import ATOL, rounding_noise

    g = bp.Graph()
    p0 = g.param(np.zeros(3), name="p0")
    a = bp.tanh(p0) + bp.tanh(p0)
    a = bp.tanh(a) + bp.tanh(a)
    a = bp.tanh(a) + bp.tanh(a)
    x = bp.abs(bp.abs(a + g.param(np.ones(3), name="p2")) ** 2.0) ** 2.0
    log_p = bp.log_softmax(x, axis=0)
    J = (bp.sum(log_p, name="term0") + bp.sum(log_p, name="term1")).named("J")  # J = -6 log 3
    strict = bp.gradcheck(g, J, atol=ATOL)
    assert not strict.leaves[0].ok and ATOL < strict.leaves[0].max_abs_error < 1e-7
    noise = rounding_noise(g, J.id, 1e-6)
    assert noise == pytest.approx(100 * np.finfo(float).eps * 6 * np.log(3) / 1e-6)  # |J| is the largest value
    assert bp.gradcheck(g, J).ok
