"""Reverse-mode differentiation over the recorded graph.

One iterative walk over the root's ancestors in decreasing id order (ids are a
topological order), summing each op's vector-Jacobian products into its operands.
Broadcasting is undone here, in :func:`unbroadcast`, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GraphError
from .graph import all_finite
from .ops import OPS

if TYPE_CHECKING:
    from .graph import Graph


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that numpy broadcasting added or stretched to reach ``shape``.

    >>> unbroadcast(np.ones((20, 5)), (20, 1)).ravel()[:3]
    array([5., 5., 5.])
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = np.add.reduce(grad, axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = np.add.reduce(grad, axis=stretched, keepdims=True)
    return np.asarray(grad).reshape(shape)


def seed_for(graph: Graph, root: int, seed: Any = None) -> np.ndarray:
    """The starting gradient ∂root/∂root: ones for a scalar root, else the given ``seed``."""
    value = graph.node(root)["value"]
    if seed is None:
        if value.size != 1:
            raise GraphError(f"root {graph.name_of(root)!r} has shape {value.shape}, not a scalar: "
                             "pass seed=<array of that shape> (e.g. numpy.ones_like(value))")
        return np.ones(value.shape, dtype=np.result_type(value.dtype, np.float64))
    seed = np.asarray(seed, dtype=np.result_type(np.asarray(seed).dtype, np.float64))
    if seed.shape != value.shape:
        raise GraphError(f"seed has shape {seed.shape} but root {graph.name_of(root)!r} has shape {value.shape}")
    return seed


def vjp_to_operand(graph: Graph, node_id: int, position: int, upstream: np.ndarray) -> np.ndarray:
    """The gradient that op ``node_id`` sends to its operand at ``position``, in that operand's shape."""
    nodes = graph.nodes
    attrs = nodes[node_id]
    operand = nodes[attrs["operands"][position]]["value"]
    values = [nodes[o]["value"] for o in attrs["operands"]]
    local = OPS[attrs["op"]].vjp(position, upstream, attrs["value"], values, attrs["params"])
    return unbroadcast(np.asarray(local), operand.shape)


def gradients(graph: Graph, root: int, seed: Any = None, *, inputs: bool = False) -> dict[int, np.ndarray]:
    """``{node id: ∂root/∂node}`` for the ancestors of ``root`` that need a gradient.

    A node needs one when it ``requires_grad`` (params and ops computed from them), or
    always when ``inputs=True``.  Pure: nothing is stored on the graph.
    """
    nodes = graph.nodes
    grads: dict[int, np.ndarray] = {root: seed_for(graph, root, seed)}
    with np.errstate(all="ignore"):  # NaN/inf are reported once, by _check_finite
        for node_id in sorted(graph.ancestors(root), reverse=True):
            g = grads.get(node_id)
            attrs = nodes[node_id]
            if g is None or attrs["kind"] != "op":
                continue
            op, operands, out, params = OPS[attrs["op"]], attrs["operands"], attrs["value"], attrs["params"]
            operand_attrs = [nodes[o] for o in operands]
            values = [a["value"] for a in operand_attrs]
            for position, operand in enumerate(operands):
                if not (inputs or operand_attrs[position]["requires_grad"]):
                    continue
                local = unbroadcast(np.asarray(op.vjp(position, g, out, values, params)), values[position].shape)
                previous = grads.get(operand)
                grads[operand] = local if previous is None else np.asarray(previous + local)
    for grad in grads.values():
        grad.flags.writeable = False
    _check_finite(graph, grads)
    return grads


def _check_finite(graph: Graph, grads: dict[int, np.ndarray]) -> None:
    """Name the node where a NaN/inf gradient first appears (walking from the root down)."""
    nodes = graph.nodes
    checked: set[int] = set()  # an op like add passes its upstream array on: check each array once
    for node_id in sorted(grads, reverse=True):
        grad = grads[node_id]
        if id(grad) in checked:
            continue
        checked.add(id(grad))
        if not all_finite(grad):
            consumers = [c for c in graph.successors(node_id) if c in grads]
            via = ", ".join(f"{nodes[c]['name']} = {nodes[c]['op']}" for c in consumers) or "the seed"
            graph.warn_or_raise(f"non-finite gradient first appears at node {nodes[node_id]['name']!r} "
                                f"(flowing back from {via}); check the values there for 0 in a log "
                                "or a division, or a saturated sigmoid")
            return
