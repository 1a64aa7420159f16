"""Every op's gradient against central finite differences, on several shapes (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import bpgraph as bp
from bpgraph.ops import OPS

# (op, operand shapes, operand domains, params). Domains keep finite differences away
# from kinks and outside-of-domain values: any, pos, prob, away0, onehot, mask.
CASES = [
    ("add", [(3, 4), (3, 4)], ["any", "any"], {}),
    ("add", [(20, 1), (20, 7)], ["any", "any"], {}),
    ("add", [(), (3, 4)], ["any", "any"], {}),
    ("add", [(4,), (3, 4)], ["any", "any"], {}),
    ("sub", [(3, 4), (1, 4)], ["any", "any"], {}),
    ("sub", [(2, 1, 3), (4, 1)], ["any", "any"], {}),
    ("mul", [(3, 1), (1, 4)], ["any", "any"], {}),
    ("mul", [(), (2, 3)], ["any", "any"], {}),
    ("div", [(3, 4), (3, 4)], ["any", "pos"], {}),
    ("div", [(3, 4), (1, 4)], ["any", "pos"], {}),
    ("neg", [(3, 4)], ["any"], {}),
    ("pow", [(2, 3)], ["any"], {"exponent": 3.0}),
    ("pow", [(2, 3)], ["pos"], {"exponent": 0.5}),
    ("matmul", [(3, 4), (4, 5)], ["any", "any"], {}),
    ("matmul", [(2, 3, 4), (4, 5)], ["any", "any"], {}),
    ("linear", [(3, 4), (4, 5), (3, 1)], ["any", "any", "any"], {}),
    ("exp", [(3, 4)], ["any"], {}),
    ("log", [(3, 4)], ["pos"], {}),
    ("sqrt", [(3, 4)], ["pos"], {}),
    ("square", [(3, 4)], ["any"], {}),
    ("abs", [(3, 4)], ["away0"], {}),
    ("maximum", [(3, 4), (3, 4)], ["any", "any"], {}),
    ("maximum", [(3, 4), (1, 4)], ["any", "any"], {}),
    ("relu", [(3, 4)], ["away0"], {}),
    ("sigmoid", [(3, 4)], ["any"], {}),
    ("tanh", [(3, 4)], ["any"], {}),
    ("softmax", [(3, 5)], ["any"], {"axis": 0}),
    ("softmax", [(3, 5)], ["any"], {"axis": 1}),
    ("log_softmax", [(4, 3)], ["any"], {"axis": 0}),
    ("log_softmax", [(4, 3)], ["any"], {"axis": -1}),
    ("sum", [(3, 4)], ["any"], {"axis": None, "keepdims": False}),
    ("sum", [(3, 4)], ["any"], {"axis": 1, "keepdims": True}),
    ("sum", [(2, 3, 4)], ["any"], {"axis": (0, 2), "keepdims": False}),
    ("mean", [(3, 4)], ["any"], {"axis": 0, "keepdims": False}),
    ("mean", [(2, 3, 4)], ["any"], {"axis": None, "keepdims": True}),
    ("reshape", [(3, 4)], ["any"], {"shape": (2, 6)}),
    ("transpose", [(2, 3, 4)], ["any"], {"axes": (1, 2, 0)}),
    ("transpose", [(3, 4)], ["any"], {"axes": None}),
    ("binary_cross_entropy", [(1, 6), (1, 6)], ["prob", "prob"], {}),
    ("softmax_cross_entropy", [(3, 5), (3, 5)], ["any", "prob"], {"axis": 0}),
    ("softmax_cross_entropy", [(4, 3), (4, 3)], ["any", "prob"], {"axis": 1}),
    ("l2_penalty", [(2, 3), (3, 1), (1, 1)], ["any", "any", "any"], {"lambd": 0.7, "m": 5}),
    ("dropout", [(3, 4), (3, 4)], ["any", "mask"], {"keep_prob": 0.8}),
]


def sample(rng: np.random.Generator, shape: tuple[int, ...], domain: str) -> np.ndarray:
    if domain == "pos":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "prob":
        return rng.uniform(0.1, 0.9, shape)
    if domain == "away0":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 1.0, shape)
    if domain == "mask":
        return (rng.random(shape) < 0.7).astype(float)
    return rng.normal(0, 1, shape)


def record_case(op: str, shapes, domains, params, rng):
    g = bp.Graph()
    leaves = [g.param(sample(rng, s, d), name=f"x{i}") for i, (s, d) in enumerate(zip(shapes, domains))]
    out = g.record(op, leaves, params, name="out")
    # A random weighting turns any output into a scalar and tests the whole Jacobian.
    weights = g.const(rng.normal(0, 1, out.shape), name="weights")
    root = bp.sum(out * weights, name="root")
    return g, leaves, out, root


@pytest.mark.parametrize("op,shapes,domains,params", CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[1]))}-{i}" for i, c in enumerate(CASES)])
def test_gradient_matches_finite_differences(op, shapes, domains, params, rng):
    g, leaves, out, root = record_case(op, shapes, domains, params, rng)
    report = bp.gradcheck(g, root, leaves=leaves)
    assert len(report.leaves) == len(shapes)
    for leaf in report.leaves:
        assert leaf.rel_error < 1e-6, (op, leaf)
    grads = g.backward(root)
    for leaf in leaves:  # un-broadcasting gives every gradient its operand's shape
        assert grads[leaf.name].shape == leaf.shape


def test_every_op_in_the_table_is_tested():
    assert {c[0] for c in CASES} == set(OPS)


def test_forward_values_match_numpy(rng):
    g = bp.Graph()
    a, b = g.param(rng.normal(size=(3, 4)), name="a"), g.param(rng.normal(size=(1, 4)), name="b")
    np.testing.assert_array_equal((a * b - a / (b * b + 1)).value,
                                  a.value * b.value - a.value / (b.value * b.value + 1))
    np.testing.assert_allclose(bp.softmax(a, axis=0).value.sum(axis=0), np.ones(4))
    np.testing.assert_allclose(bp.log_softmax(a, axis=1).value,
                               np.log(np.exp(a.value) / np.exp(a.value).sum(axis=1, keepdims=True)))


def test_closed_forms_of_simple_rules():
    g = bp.Graph()
    x = g.param(np.array([[1.0, -2.0, 3.0]]), name="x")
    y = bp.sum(x ** 3, name="y")
    np.testing.assert_allclose(g.backward(y)["x"], 3 * x.value ** 2)
    z = bp.sum(bp.sigmoid(x), name="z")
    s = 1 / (1 + np.exp(-x.value))
    np.testing.assert_allclose(g.backward(z)["x"], s * (1 - s))


def test_sigmoid_then_cross_entropy_gives_a_minus_y_over_m(rng):
    g = bp.Graph()
    z = g.param(rng.normal(size=(1, 7)), name="Z")
    y = g.input((rng.random((1, 7)) < 0.5).astype(float), name="Y")
    a = bp.sigmoid(z, name="A")
    cost = bp.binary_cross_entropy(a, y, name="J")
    np.testing.assert_allclose(g.backward(cost)["Z"], (a.value - y.value) / 7, rtol=1e-12)


def test_softmax_cross_entropy_gradient_is_softmax_minus_y(rng):
    g = bp.Graph()
    z = g.param(rng.normal(size=(3, 4)), name="Z")
    y = g.input(np.eye(3)[:, [0, 2, 1, 1]], name="Y")
    cost = bp.softmax_cross_entropy(z, y, name="J")
    p = np.exp(z.value) / np.exp(z.value).sum(axis=0)
    np.testing.assert_allclose(g.backward(cost)["Z"], (p - y.value) / 4, rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_cross_entropy_averages_over_examples_whatever_the_class_axis(axis, rng):
    g = bp.Graph()
    z = g.param(rng.normal(size=(4, 6)), name="Z")
    y = g.input(np.eye(4)[:, rng.integers(0, 4, 6)] if axis == 0 else np.eye(6)[rng.integers(0, 6, 4)], name="Y")
    cost = bp.softmax_cross_entropy(z, y, axis=axis, name="J")
    log_p = z.value - np.log(np.exp(z.value).sum(axis=axis, keepdims=True))
    per_example = -(y.value * log_p).sum(axis=axis)  # one loss per example
    np.testing.assert_allclose(cost.value, per_example.mean(), rtol=1e-12)


def test_tensor_operators_with_scalars_and_arrays(rng):
    g = bp.Graph()
    x = g.param(rng.normal(size=(2, 2)), name="x")
    arr = rng.normal(size=(2, 2))
    y = 2.0 - x * 3 + arr / 4 - (-x) ** 2 + 1 / (x * x + 1) + arr @ x + x.T
    expected = (2.0 - x.value * 3 + arr / 4 - x.value ** 2 + 1 / (x.value ** 2 + 1)
                + arr @ x.value + x.value.T)
    np.testing.assert_allclose(y.value, expected)
    consts = [t for t in g if t.kind == "const"]
    assert any(np.array_equal(t.value, arr) for t in consts)


def test_dropout_mask_is_a_const_leaf():
    g = bp.Graph()
    a = g.param(np.ones((4, 50)), name="A")
    d = bp.dropout(a, keep_prob=0.8, seed=0, name="A_drop", mask_name="D")
    mask = g["D"]
    assert mask.kind == "const" and set(np.unique(mask.value)) == {0.0, 1.0}
    expected = (np.random.default_rng(0).random((4, 50)) < 0.8).astype(float)  # the documented mask
    np.testing.assert_array_equal(mask.value, expected)
    assert 0.7 < mask.value.mean() < 0.9  # keeps about keep_prob of the units
    np.testing.assert_allclose(d.value, mask.value / 0.8)
    assert [t.name for t in g.operands(d)] == ["A", "D"]
