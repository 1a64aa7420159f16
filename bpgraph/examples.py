"""Built-in example networks: deterministic, one example per column (X is (features, m)), cost J last."""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

from . import ops
from .graph import Graph
from .tensor import Tensor


def two_class_data(m: int = 211, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy interleaved half-moons: X of shape (2, m), labels Y of shape (1, m) in 0.0 / 1.0."""
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % 2
    angle = rng.uniform(0, np.pi, m)
    x = np.where(labels == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(labels == 0, np.sin(angle), 0.5 - np.sin(angle))
    X = np.stack([x, y]) + rng.normal(0, 0.15, (2, m))
    return X, labels[np.newaxis, :].astype(np.float64)


def init_params(layers: Sequence[int], seed: int = 1) -> dict[str, np.ndarray]:
    """He-initialised W1..WL and small random b1..bL for the given layer sizes."""
    rng = np.random.default_rng(seed)
    params = {}
    for l in range(1, len(layers)):
        params[f"W{l}"] = rng.normal(0, 1, (layers[l], layers[l - 1])) * np.sqrt(2 / layers[l - 1])
        params[f"b{l}"] = rng.normal(0, 0.1, (layers[l], 1))
    return params


def _new_graph(example: str, m: int, data: tuple[np.ndarray, np.ndarray] | None = None,
               **meta: float) -> tuple[Graph, Tensor, Tensor]:
    """A graph with its meta data and the inputs X, Y (default: :func:`two_class_data`)."""
    g = Graph()
    g.meta.update(example=example, m=m, **meta)
    x, y = two_class_data(m) if data is None else data
    return g, g.input(x, name="X"), g.input(y, name="Y")


def _mlp(g: Graph, X: Tensor, layers: Sequence[int], seed: int, keep_prob: float | None = None,
         output: Callable[..., Tensor] | None = ops.sigmoid) -> tuple[Tensor, list[Tensor]]:
    """LINEAR->RELU ... LINEAR->``output`` (None: Z_L), one scope per layer; returns A_L and the Ws."""
    params, last = init_params(layers, seed), len(layers) - 1
    A, weights = X, []
    for l in range(1, last + 1):
        with g.scope(f"layer{l}"):
            W = g.param(params[f"W{l}"], name=f"W{l}")
            Z = ops.linear(W, A, g.param(params[f"b{l}"], name=f"b{l}"), name=f"Z{l}")
            if l == last:
                A = Z if output is None else output(Z, name=f"A{l}")
            elif keep_prob is None:
                A = ops.relu(Z, name=f"A{l}")
            else:
                A = ops.dropout(ops.relu(Z), keep_prob, seed=l, name=f"A{l}", mask_name=f"D{l}")
        weights.append(W)
    return A, weights


def l2_mlp(lambd: float = 0.7, m: int = 211, layers: Sequence[int] = (2, 20, 3, 1),
           seed: int = 1) -> Graph:
    """The seed network: 3 layers, J = cross_entropy + L2 with L2 = λ/(2m)·(‖W1‖²+‖W2‖²+‖W3‖²)."""
    g, X, Y = _new_graph("l2-mlp", m, lambd=float(lambd))
    A, weights = _mlp(g, X, layers, seed)
    with g.scope("cost"):
        ce = ops.binary_cross_entropy(A, Y, name="cross_entropy")
        l2 = ops.l2_penalty(weights, lambd=lambd, m=m, name="L2")
        (ce + l2).named("J")
    return g


def dropout_mlp(keep_prob: float = 0.86, m: int = 211, layers: Sequence[int] = (2, 20, 3, 1),
                seed: int = 1) -> Graph:
    """The course's dropout network: masks D1, D2 are const leaves, A_l = relu(Z_l)·D_l/keep_prob."""
    g, X, Y = _new_graph("dropout-mlp", m, keep_prob=float(keep_prob))
    A, _ = _mlp(g, X, layers, seed, keep_prob=keep_prob)
    with g.scope("cost"):
        ops.binary_cross_entropy(A, Y, name="J")
    return g


def logistic(m: int = 211, seed: int = 1) -> Graph:
    """Logistic regression: A = sigmoid(w·X + b), J = cross-entropy. The smallest picture."""
    g, X, Y = _new_graph("logistic", m)
    p = init_params((2, 1), seed)
    w = g.param(p["W1"], name="w")
    b = g.param(p["b1"], name="b")
    A = ops.sigmoid(ops.linear(w, X, b, name="Z"), name="A")
    ops.binary_cross_entropy(A, Y, name="J")
    return g


def softmax_classifier(classes: int = 3, m: int = 150, hidden: int = 8, seed: int = 1) -> Graph:
    """A one-hidden-layer classifier with a softmax cross-entropy cost over ``classes`` classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(m) % classes
    centres = np.stack([np.cos(2 * np.pi * labels / classes), np.sin(2 * np.pi * labels / classes)])
    data = centres + rng.normal(0, 0.4, (2, m)), np.eye(classes)[:, labels]
    g, X, Y = _new_graph("softmax-classifier", m, data)
    Z2, _ = _mlp(g, X, (2, hidden, classes), seed, output=None)
    ops.softmax_cross_entropy(Z2, Y, name="J")
    return g


class Example(NamedTuple):
    build: Callable[..., Graph]
    summary: str


EXAMPLES: dict[str, Example] = {
    "l2-mlp": Example(l2_mlp, "the seed network: 3-layer MLP, J = cross_entropy + L2 (λ = 0.7)"),
    "dropout-mlp": Example(dropout_mlp, "the same MLP with inverted dropout; masks D1, D2 are constants"),
    "logistic": Example(logistic, "logistic regression: sigmoid(w·X + b) with cross-entropy"),
    "softmax-classifier": Example(softmax_classifier,
                                  "one hidden layer and a softmax cross-entropy over 3 classes"),
}
