"""Reverse-mode differentiation: one iterative walk down the ids from the root (a topological
order), summing each op's vector-Jacobian products into its operands, which backward and every
analysis use (:func:`gradients`).  Broadcasting is undone in :func:`unbroadcast` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection

import numpy as np

from .errors import GraphError
from .ops import FUSED, OPS, all_finite

if TYPE_CHECKING:
    from .graph import Graph


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``.

    >>> unbroadcast(np.ones((20, 5)), (20, 1)).ravel()[:3]
    array([5., 5., 5.])
    """
    if grad.shape == shape:
        return grad
    added = grad.ndim - len(shape)
    grad = np.add.reduce(grad, axis=tuple(range(added))) if added > 0 else grad
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = np.add.reduce(grad, axis=stretched, keepdims=True)
    return np.asarray(grad).reshape(shape)


def seed_for(graph: Graph, root: int, seed: Any = None) -> np.ndarray:
    """The starting gradient ∂root/∂root: ones for a scalar root, else the given ``seed``."""
    value = graph.nodes[root]["value"]
    dtype = np.result_type(value.dtype, np.float64)
    if seed is None:
        if value.size != 1:
            raise GraphError(f"root {graph.name_of(root)!r} has shape {value.shape}, not a scalar: "
                             "pass seed=<array of that shape> (e.g. numpy.ones_like(value))")
        return np.ones(value.shape, dtype=dtype)
    seed = np.asarray(seed)
    seed = seed.astype(np.result_type(seed.dtype, np.float64))
    if seed.shape != value.shape:
        raise GraphError(f"seed has shape {seed.shape} but root {graph.name_of(root)!r} has shape {value.shape}")
    return seed


def vjp_to_operand(graph: Graph, node_id: int, position: int, upstream: np.ndarray) -> np.ndarray:
    """The gradient that op ``node_id`` sends to its operand at ``position``, in that operand's shape."""
    nodes = graph.nodes
    attrs = nodes[node_id]
    values = [nodes[o]["value"] for o in attrs["operands"]]
    local = OPS[attrs["op"]].vjp(position, upstream, attrs["value"], values, attrs["params"])
    return unbroadcast(np.asarray(local), values[position].shape)


def edge_vjp(graph: Graph, user: int, operand: int, upstream: np.ndarray) -> np.ndarray:
    """The local VJP along the edge operand -> user, summed over each position that reads it."""
    with np.errstate(all="ignore"):
        parts = [vjp_to_operand(graph, user, position, upstream)
                 for position, o in enumerate(graph.nodes[user]["operands"]) if o == operand]
    return sum(parts[1:], parts[0])


def gradients(graph: Graph, root: int, seed: Any = None, *, inputs: bool = False,
         within: Collection[int] | None = None, stop: Collection[int] = ()) -> dict[int, np.ndarray]:
    """``{node id: ∂root/∂node}`` (read-only) for every node that ``requires_grad`` (any, with ``inputs``)
    and that the root's gradient reaches, only ``within`` those nodes when given; ``stop`` nodes get a
    gradient but pass none on.  Nothing is stored; NaN/inf is reported at the first node it reaches."""
    nodes = graph.nodes
    grads: dict[int, np.ndarray] = {root: seed_for(graph, root, seed)}
    shortcut: dict[int, np.ndarray] = {}  # node -> the gradient of its operand, from a fused rule
    order = range(root, -1, -1) if within is None else sorted(within, reverse=True)
    with np.errstate(all="ignore"):
        for node_id in order:
            g = grads.get(node_id)
            if g is None:
                continue
            g.setflags(write=False)
            attrs = nodes[node_id]
            if not attrs["operands"] or node_id in stop:
                continue
            spec, out, params = OPS[attrs["op"]], attrs["value"], attrs["params"]
            values = [nodes[o]["value"] for o in attrs["operands"]]
            for position, o in enumerate(attrs["operands"]):
                if not (inputs or nodes[o]["requires_grad"]) or (within is not None and o not in within):
                    continue
                fused = FUSED.get((attrs["op"], position, nodes[o]["op"]))
                if fused is not None:
                    local, inner = fused(g, out, *values, **params)
                elif node_id in shortcut:
                    local = shortcut.pop(node_id)
                else:
                    local = spec.vjp(position, g, out, values, params)
                local = unbroadcast(np.asarray(local), values[position].shape)
                if o in grads:  # a second contribution: a fused shortcut no longer holds
                    grads[o] = _accumulate(grads[o], local)
                    shortcut.pop(o, None)
                else:
                    grads[o] = local
                    if fused is not None:
                        shortcut[o] = inner
        finite = all(all_finite(g) for g in grads.values())
    if not finite:
        _report_nonfinite(graph, grads)
    return grads


def _accumulate(total: np.ndarray, part: np.ndarray) -> np.ndarray:
    """``total + part``, summed in place when ``total`` is an array the walk made and no one else reads (a
    VJP's fresh result; a gradient already passed on is read-only): the large-size speed floor needs it."""
    if total.flags.writeable and total.flags.owndata and total.dtype == part.dtype:
        return np.add(total, part, out=total)
    return total + part


def _report_nonfinite(graph: Graph, grads: dict[int, np.ndarray]) -> None:
    """Name the node where a NaN/inf gradient first appears (walking from the root down)."""
    nodes = graph.nodes
    for node_id in sorted(grads, reverse=True):
        if all_finite(grads[node_id]):
            continue
        users = [u for u in graph.successors(node_id) if u in grads]
        via = ", ".join(f"{nodes[u]['name']} = {nodes[u]['op']}" for u in users) or "the seed"
        values = [nodes[i]["value"] for i in (node_id, *users)]
        why = ("the values there are already NaN or infinite (reported when they were recorded)"
               if not all(all_finite(v) for v in values) else
               "check the values there for 0 in a log or a division, or a saturated sigmoid")
        graph.warn_or_raise(f"non-finite gradient first appears at node {nodes[node_id]['name']!r} "
                            f"(flowing back from {via}); {why}")
        return
