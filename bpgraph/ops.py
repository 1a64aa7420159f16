"""The single table of ops: each forward beside its vector-Jacobian products (VJPs) and their formulas.

A VJP takes ``g = ∂root/∂out`` to the operand's gradient, in the operand's broadcast shape;
:func:`bpgraph.autodiff.unbroadcast` reduces it, in one place.  Each VJP's formula (in
:mod:`bpgraph.notation`'s language) is what explanations show, and the tests check it against the VJP.
"""

from __future__ import annotations

import builtins
import cmath
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import notation
from .notation import broadcast, count, examples
from .notation import log_softmax as stable_log_softmax
from .tensor import Tensor

Array = np.ndarray


@dataclass(frozen=True)
class Op:
    """One primitive: ``forward(*values, **params)`` and ``vjps[i](g, out, *values, **params)`` per
    operand, each with its formula over ``g``, ``out``, the operand ``slots`` and the params.  A variadic
    op (``l2_penalty``) has one rule ``vjps[0](i, g, out, values, **params)``; ``scalar``: a cost."""

    name: str
    forward: Callable[..., Array]
    vjps: tuple[Callable[..., Array], ...]
    formula: str
    variadic: bool = False
    vjp_formulas: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    scalar: bool = False

    @property
    def arity(self) -> int | None:
        """Number of operands, or None when any number is accepted."""
        return None if self.variadic else len(self.vjps)

    def vjp(self, position: int, g: Array, out: Array, values: Sequence[Array],
            params: dict[str, Any]) -> Array:  # before un-broadcasting
        if self.variadic:
            return self.vjps[0](position, g, out, values, **params)
        return self.vjps[position](g, out, *values, **params)


OPS: dict[str, Op] = {}


def all_finite(a: np.ndarray) -> bool:
    """True unless a float or complex array holds a NaN or an infinity.  A sum of squares is finite
    only when every term is, so one BLAS dot product decides the usual case (it keeps the engine
    within its speed floor)."""
    if a.dtype.kind not in "fc":
        return True
    if a.size == 1:
        return cmath.isfinite(a.item())
    if a.dtype.kind == "f":
        flat = a.ravel()
        if math.isfinite(flat.dot(flat)):
            return True
    return bool(np.isfinite(a).all())


def _declare(name: str, forward: Callable[..., Array], *rules: tuple[Callable[..., Array], str],
             formula: str, variadic: bool = False, scalar: bool = False) -> None:
    """Add an op; each rule is (VJP, formula) for one operand position."""
    arguments = list(inspect.signature(rules[0][0]).parameters)
    slots = arguments[3:4] if variadic else arguments[2:2 + len(rules)]
    OPS[name] = Op(name, forward, tuple(r[0] for r in rules), formula, variadic,
                   tuple(r[1] for r in rules), tuple(slots), scalar)


def _matmul(a: Array, b: Array) -> Array:
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("matmul needs operands with at least 2 dimensions; "
                         "reshape a vector to (n, 1) or (1, n)")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ ({a.shape[-1]} vs {b.shape[-2]}): "
                         "the left operand needs as many columns as the right one has rows")
    return a @ b


def _linear(w: Array, a: Array, b: Array) -> Array:
    """``W @ A + b``, b added into the fresh product where that keeps its shape and dtype: a layer's Z is
    not allocated twice (the large-size speed floor needs it)."""
    z = _matmul(w, a)
    if z.dtype == b.dtype:
        try:
            return np.add(z, b, out=z)
        except ValueError:  # b widens Z's shape: a new array after all
            pass
    return z + b


def _bce(a: Array, y: Array) -> Array:
    if a.shape != y.shape:
        raise ValueError("the prediction and the labels must have the same shape")
    return np.asarray(-np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / examples(a))


def _softmax_ce(z: Array, y: Array, axis: int) -> Array:
    if z.shape != y.shape:
        raise ValueError("the logits and the one-hot labels must have the same shape")
    return np.asarray(-np.sum(y * stable_log_softmax(z, axis)) / examples(z, axis))


def _mean(a: Array, axis: Any, keepdims: bool) -> Array:
    if count(a, axis) == 0:
        raise ValueError("the mean of no elements is undefined (an axis of length 0)")
    return np.mean(a, axis=axis, keepdims=keepdims)


def _l2(*weights: Array, lambd: float, m: int) -> Array:
    if m < 1:
        raise ValueError(f"m, the number of examples, must be at least 1, got {m}")
    return np.asarray(lambd / (2 * m) * builtins.sum(np.vdot(w, w) for w in weights))


# --- elementwise arithmetic ---------------------------------------------------------------
# Each operand: (its VJP, the same product as a formula in bpgraph.notation's language).
_declare("add", np.add,
         (lambda g, out, a, b: g, "g"),
         (lambda g, out, a, b: g, "g"),
         formula="a + b")
_declare("sub", np.subtract,
         (lambda g, out, a, b: g, "g"),
         (lambda g, out, a, b: -g, "-g"),
         formula="a - b")
_declare("mul", np.multiply,
         (lambda g, out, a, b: g * b, "g * b"),
         (lambda g, out, a, b: g * a, "g * a"),
         formula="a * b")
_declare("div", np.divide,
         (lambda g, out, a, b: g / b, "g * (1 / b)"),
         (lambda g, out, a, b: -g * out / b, "-g * (a / b ** 2)"),
         formula="a / b")
_declare("neg", np.negative,
         (lambda g, out, a: -g, "-g"),
         formula="-a")
_declare("pow", lambda a, exponent: np.power(a, exponent),
         (lambda g, out, a, exponent: g * exponent * np.power(a, exponent - 1),
          "g * (exponent * a ** (exponent - 1))"),
         formula="a ** p")
_declare("matmul", _matmul,
         (lambda g, out, a, b: g @ b.swapaxes(-1, -2), "g @ T(b)"),
         (lambda g, out, a, b: a.swapaxes(-1, -2) @ g, "T(a) @ g"),
         formula="a @ b")
_declare("linear", _linear,
         (lambda g, out, w, a, b: g @ a.swapaxes(-1, -2), "g @ T(a)"),
         (lambda g, out, w, a, b: w.swapaxes(-1, -2) @ g, "T(w) @ g"),
         (lambda g, out, w, a, b: g, "sum_cols(g)"),  # the course's column bias b (n, 1)
         formula="W @ A + b")

# --- elementwise functions ----------------------------------------------------------------
_declare("exp", np.exp, (lambda g, out, a: g * out, "g * exp(a)"), formula="exp(a)")
_declare("log", np.log, (lambda g, out, a: g / a, "g * (1 / a)"), formula="log(a)")
_declare("sqrt", np.sqrt, (lambda g, out, a: g * 0.5 / out, "g * (1 / (2 * sqrt(a)))"), formula="sqrt(a)")
_declare("square", np.square, (lambda g, out, a: g * 2 * a, "g * (2 * a)"), formula="a²")
_declare("abs", np.abs, (lambda g, out, a: g * np.sign(a), "g * sign(a)"), formula="|a|")
_declare("maximum", np.maximum,
         (lambda g, out, a, b: g * (a >= b), "g * ind(a >= b)"),
         (lambda g, out, a, b: g * (a < b), "g * ind(a < b)"),
         formula="max(a, b)")
_declare("relu", lambda a: np.maximum(a, 0),
         (lambda g, out, a: g * (out > 0), "g * ind(a > 0)"),
         formula="max(a, 0)")
_declare("sigmoid", lambda a: 1 / (1 + np.exp(-a)),
         (lambda g, out, a: g * out * (1 - out), "g * (out * (1 - out))"),
         formula="1 / (1 + exp(-a))")
_declare("tanh", np.tanh, (lambda g, out, a: g * (1 - out * out), "g * (1 - out ** 2)"), formula="tanh(a)")
_declare("softmax", lambda a, axis: np.exp(stable_log_softmax(a, axis)),
         (lambda g, out, a, axis: out * (g - np.sum(g * out, axis=axis, keepdims=True)),
          "out * (g - sum_along(g * out, axis))"),
         formula="softmax(a)")
_declare("log_softmax", stable_log_softmax,
         (lambda g, out, a, axis: g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),
          "g - softmax(a, axis) * sum_along(g, axis)"),
         formula="log softmax(a)")

# --- reductions and shape -----------------------------------------------------------------
_declare("sum", lambda a, axis, keepdims: np.sum(a, axis=axis, keepdims=keepdims),
         (lambda g, out, a, axis, keepdims: broadcast(g, a, axis, keepdims),
          "broadcast(g, a, axis, keepdims)"),
         formula="Σ a")
_declare("mean", _mean,
         (lambda g, out, a, axis, keepdims:
              broadcast(g, a, axis, keepdims) / count(a, axis),
          "broadcast(g, a, axis, keepdims) / count(a, axis)"),
         formula="mean(a)")
_declare("reshape", lambda a, shape: np.reshape(a, shape),
         (lambda g, out, a, shape: np.reshape(g, a.shape), "reshape(g, a)"),
         formula="reshape(a)")
_declare("transpose", lambda a, axes: np.transpose(a, axes),
         (lambda g, out, a, axes: np.transpose(g, None if axes is None else np.argsort(axes)),
          "untranspose(g, axes)"),
         formula="aᵀ")

# --- costs (scalar results) ---------------------------------------------------------------
_declare("binary_cross_entropy", _bce,
         (lambda g, out, a, y: (a - y) / (a * (1 - a)) * (g / examples(a)),  # (1-y)/(1-a) - y/a, over m
          "g * (1 / examples(a)) * ((a - y) / (a * (1 - a)))"),
         (lambda g, out, a, y: g * (np.log(1 - a) - np.log(a)) / examples(a),
          "g * (1 / examples(a)) * (log(1 - a) - log(a))"),
         formula="-1/m Σ (y log a + (1-y) log(1-a))", scalar=True)
_declare("softmax_cross_entropy", _softmax_ce,
         (lambda g, out, z, y, axis: g * (np.exp(stable_log_softmax(z, axis)) * np.sum(y, axis=axis, keepdims=True)
                                          - y) / examples(z, axis),
          "g * (1 / examples(z, axis)) * (softmax(z, axis) * sum_along(y, axis) - y)"),
         (lambda g, out, z, y, axis: -g * stable_log_softmax(z, axis) / examples(z, axis),
          "-g * (1 / examples(z, axis)) * log_softmax(z, axis)"),
         formula="-1/m Σ y log softmax(z)", scalar=True)
_declare("l2_penalty", _l2,
         (lambda i, g, out, weights, lambd, m: g * (lambd / m) * weights[i], "g * lambd / m * weights[i]"),
         formula="λ/(2m) Σ ‖W‖²", variadic=True, scalar=True)
_declare("dropout", lambda a, mask, keep_prob: a * mask / keep_prob,
         (lambda g, out, a, mask, keep_prob: g * mask / keep_prob, "g * (mask / keep_prob)"),
         (lambda g, out, a, mask, keep_prob: g * a / keep_prob, "g * (a / keep_prob)"),
         formula="a * D / keep_prob")


# --- fused rules: a gradient taken straight through the op that made the operand ----------
def _bce_through_sigmoid(g: Array, out: Array, a: Array, y: Array) -> tuple[Array, Array]:
    """bce(A, Y) with A = sigmoid(Z): dA = dZ / (A (1-A)) and the course's dZ = (A - Y)/m, which stays
    finite where A saturates to 0 or 1 (there dA = ±inf, reported as such)."""
    dz = (a - y) * (g / examples(a))
    return dz / (a * (1 - a)), dz


#: (op, operand position, the operand's op) -> rule giving the operand's gradient and its own
#: operand's; autodiff uses the second only while no other gradient reaches the operand.
FUSED: dict[tuple[str, int, str], Callable[..., tuple[Array, Array]]] = {
    ("binary_cross_entropy", 0, "sigmoid"): _bce_through_sigmoid,
}

# --- the formulas in the course's notation -----------------------------------------------
def vjp_formula(op: str, position: int, operands: Sequence[str], out: str, *, root: str = "J",
                params: Mapping[str, Any] | None = None, style: str = "text",
                upstream: str | None = None, grad: str | None = None) -> str:
    """The gradient ``out = op(*operands)`` sends to operand ``position``, as an equation in ``style``
    (text, markdown, latex); ``upstream`` (``dZ3``) and ``grad`` name the two gradients when given.

    >>> vjp_formula("linear", 1, ["W3", "A2", "b3"], "Z3")
    '∂J/∂A2 = W3ᵀ·∂J/∂Z3'
    >>> vjp_formula("l2_penalty", 0, ["W1", "W2", "W3"], "L2", root="L2")
    '∂L2/∂W1 = λ/m·W1'
    """
    spec = OPS.get(op)
    if spec is None:
        raise ValueError(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
    if not (spec.variadic or len(operands) == spec.arity) or not 0 <= position < len(operands):
        raise ValueError(f"{op} takes {spec.arity or 'any number of'} operand(s); "
                         f"got {len(operands)} names and position {position}")
    expr = spec.vjp_formulas[0 if spec.variadic else position]
    slots = {spec.slots[0]: operands[position]} if spec.variadic else dict(zip(spec.slots, operands))
    lhs = notation.gradient(root, operands[position], style, grad)
    rhs = notation.render(expr, {"out": out, **slots}, style, root=root, upstream=upstream, params=params,
                          scalar_out=spec.scalar)
    return f"{lhs} = {rhs}"


# --- public functions: record an op on the graph of their tensor operands -----------------
def apply(op: str, *operands: Any, name: str | None = None, **params: Any) -> Tensor:
    """Record ``op`` on the graph that owns the tensor operands and return the result."""
    for operand in operands:
        if isinstance(operand, Tensor):
            return operand.graph.record(op, operands, params, name=name)
    raise TypeError(f"{op}() needs at least one bpgraph Tensor operand; "
                    "create one with Graph.param / Graph.input first")


def linear(w: Tensor, a: Any, b: Any, name: str | None = None) -> Tensor:
    """The course's LINEAR step ``Z = W @ A + b`` as one node (b broadcasts over columns)."""
    return apply("linear", w, a, b, name=name)


def _elementwise(op: str, doc: str) -> Callable[..., Tensor]:
    """The public function that records the one-operand op ``op``."""
    def record(x: Tensor, name: str | None = None) -> Tensor:
        return apply(op, x, name=name)

    record.__name__ = record.__qualname__ = op
    record.__doc__ = doc
    return record


exp = _elementwise("exp", "Elementwise e**x.")
log = _elementwise("log", "Elementwise natural logarithm.")
sqrt = _elementwise("sqrt", "Elementwise square root.")
square = _elementwise("square", "Elementwise x**2.")
abs = _elementwise("abs", "Elementwise |x| (gradient 0 at 0).")  # noqa: A001 - mirrors numpy's name
relu = _elementwise("relu", "max(x, 0); the gradient is 1 where the output is positive, else 0.")
sigmoid = _elementwise("sigmoid", "1 / (1 + e**-x).")
tanh = _elementwise("tanh", "Hyperbolic tangent.")


def maximum(a: Any, b: Any, name: str | None = None) -> Tensor:
    """Elementwise max(a, b); at ties the gradient goes to ``a``."""
    return apply("maximum", a, b, name=name)


def softmax(x: Tensor, axis: int = 0, name: str | None = None) -> Tensor:
    """Softmax along ``axis`` (default 0: one example per column, as in the course)."""
    return apply("softmax", x, axis=axis, name=name)


def log_softmax(x: Tensor, axis: int = 0, name: str | None = None) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably."""
    return apply("log_softmax", x, axis=axis, name=name)


def sum(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False,  # noqa: A001
        name: str | None = None) -> Tensor:
    """Sum over ``axis`` (all axes when None)."""
    return apply("sum", x, axis=axis, keepdims=keepdims, name=name)


def mean(x: Tensor, axis: int | tuple[int, ...] | None = None, keepdims: bool = False,
         name: str | None = None) -> Tensor:
    """Mean over ``axis`` (all axes when None)."""
    return apply("mean", x, axis=axis, keepdims=keepdims, name=name)


def reshape(x: Tensor, shape: tuple[int, ...], name: str | None = None) -> Tensor:
    """Same values, new shape."""
    return apply("reshape", x, shape=tuple(shape), name=name)


def transpose(x: Tensor, axes: tuple[int, ...] | None = None, name: str | None = None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None)."""
    return apply("transpose", x, axes=None if axes is None else tuple(axes), name=name)


def binary_cross_entropy(a: Tensor, y: Any, name: str | None = None) -> Tensor:
    """The course's cost ``-1/m Σ (Y log A + (1-Y) log(1-A))``, m = number of columns."""
    return apply("binary_cross_entropy", a, y, name=name)


def softmax_cross_entropy(z: Tensor, y: Any, axis: int = 0, name: str | None = None) -> Tensor:
    """``-1/m Σ Y log softmax(Z)`` for logits Z and one-hot labels Y (classes along ``axis``);
    m is the number of examples, the entries per class."""
    return apply("softmax_cross_entropy", z, y, axis=axis, name=name)


def l2_penalty(weights: Sequence[Tensor], lambd: float, m: int, name: str | None = None) -> Tensor:
    """``λ/(2m) · Σ ‖W‖²``: one node whose operands are exactly ``weights``.

    λ and m are recorded as parameters of the node (shown in its label), not as graph
    leaves, so the node reads nothing but the weights: that is the whole point.
    """
    if not weights:
        raise ValueError("l2_penalty needs at least one weight tensor")
    return apply("l2_penalty", *weights, lambd=float(lambd), m=int(m), name=name)


def dropout(a: Tensor, keep_prob: float, seed: int | None = 0, name: str | None = None,
            mask_name: str | None = None) -> Tensor:
    """Inverted dropout ``A * D / keep_prob``; the 0/1 mask D is recorded as a ``const`` leaf.

    The mask comes from ``numpy.random.default_rng(seed)`` so a drawing is reproducible.
    """
    if not 0 < keep_prob <= 1:
        raise ValueError(f"dropout: keep_prob must be in (0, 1], got {keep_prob}")
    rng = np.random.default_rng(seed)
    mask = (rng.random(a.shape) < keep_prob).astype(a.value.dtype)
    d = a.graph.const(mask, name=mask_name)
    return apply("dropout", a, d, keep_prob=float(keep_prob), name=name)
