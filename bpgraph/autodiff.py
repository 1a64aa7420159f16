"""Reverse-mode differentiation over the recorded graph.

One iterative walk over the root's ancestors in decreasing id order (ids are a
topological order), summing each op's vector-Jacobian products into its operands.
Broadcasting is undone here, in :func:`unbroadcast`, and nowhere else.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GraphError
from .graph import FP_IGNORE, FP_STATE, all_finite
from .ops import FUSED, OPS

#: Ops that have a fused rule for some operand (a quick test before the full lookup).
_FUSING = frozenset(op for op, _, _ in FUSED)

if TYPE_CHECKING:
    from .graph import Graph


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that numpy broadcasting added or stretched to reach ``shape``.

    >>> unbroadcast(np.ones((20, 5)), (20, 1)).ravel()[:3]
    array([5., 5., 5.])
    """
    if grad.shape == shape:
        return grad
    extra, stretched = _broadcast_axes(grad.shape, shape)
    if extra:
        grad = np.add.reduce(grad, axis=extra)
    if stretched:
        grad = np.add.reduce(grad, axis=stretched, keepdims=True)
    grad = np.asarray(grad)
    return grad if grad.shape == shape else grad.reshape(shape)


@functools.lru_cache(maxsize=1024)
def _broadcast_axes(broadcast: tuple[int, ...], shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The leading axes broadcasting added, and the (remaining) axes it stretched from 1."""
    extra = len(broadcast) - len(shape)
    kept = broadcast[max(extra, 0):]
    return tuple(range(max(extra, 0))), tuple(i for i, n in enumerate(shape) if n == 1 and kept[i] != 1)


def seed_for(graph: Graph, root: int, seed: Any = None) -> np.ndarray:
    """The starting gradient ∂root/∂root: ones for a scalar root, else the given ``seed``."""
    value = graph.nodes[root]["value"]
    if seed is None:
        if value.size != 1:
            raise GraphError(f"root {graph.name_of(root)!r} has shape {value.shape}, not a scalar: "
                             "pass seed=<array of that shape> (e.g. numpy.ones_like(value))")
        if value.shape == () and value.dtype == np.float64:  # the usual cost J (result_type costs 1 µs)
            return np.array(1.0)
        dtype = np.result_type(value.dtype, np.float64)
        return np.array(1, dtype=dtype) if value.ndim == 0 else np.ones(value.shape, dtype=dtype)
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
    always when ``inputs=True``; no vector-Jacobian product is computed for any other
    operand (the data X gets no dX).  Pure: nothing is stored on the graph.

    The walk goes down the ids from ``root``: ids are a topological order, and a node is
    reached only after every op that uses it, so its gradient is complete by then (and is
    made read-only there).  Nodes that hold no gradient cost one dict lookup each.
    """
    nodes = graph.nodes
    grads: dict[int, np.ndarray] = {root: seed_for(graph, root, seed)}
    # For the NaN/inf test at the end: small gradients, tested together in one joined copy,
    # and large ones, each tested once.  A gradient need not be read at all when a NaN/inf
    # in it would show in one that is tested: in an operand's gradient (``covered``, see
    # Op.carries_nonfinite), or in its own sum over some axes, made by un-broadcasting for
    # the bias b (a finite sum has only finite terms).
    covered = False
    small: list[np.ndarray] = []
    large: dict[int, np.ndarray] = {}
    sums: dict[int, np.ndarray] = {}
    # node id -> the gradient for its operand, already found by a fused rule of its user (while
    # nothing else adds to the node's gradient: see _fused_rule)
    through: dict[int, np.ndarray] = {}
    ndarray, asarray, get = np.ndarray, np.asarray, grads.get
    token = FP_STATE.set(FP_IGNORE)  # NaN/inf are reported once, by _check_finite
    try:
        for node_id in range(root, -1, -1):
            g = get(node_id)
            if g is None:
                continue
            g.setflags(False)  # write=False (positional: ~0.1 µs less, per gradient)
            attrs = nodes[node_id]
            operands = attrs["operands"]
            if operands:
                op = attrs["op"]
                spec = OPS[op]
                out, params = attrs["value"], attrs["params"]
                values, wanted = [], []
                for position, o in enumerate(operands):
                    operand_attrs = nodes[o]
                    values.append(operand_attrs["value"])
                    if inputs or operand_attrs["requires_grad"]:
                        wanted.append(position)
                vjps, carries = spec.vjps, spec.carries_nonfinite
                # Most ops take the plain rule for every operand; the others are told apart here
                # once, not for each operand.
                special = spec.variadic or op in _FUSING or node_id in through
                for position in wanted:
                    operand = operands[position]
                    if not special:
                        local = vjps[position](g, out, *values, **params)
                    elif fused := op in _FUSING and _fused_rule(graph, attrs, position):
                        local, through[operand] = fused(g, out, *values, **params)
                    elif node_id in through:  # position 0 of a node with one operand
                        local = through.pop(node_id)
                        carries = False  # found from the user's gradient, not from g
                    elif spec.variadic:  # what Op.vjp does, without the extra call
                        local = vjps[0](position, g, out, *values, **params)
                    else:
                        local = vjps[position](g, out, *values, **params)
                    if type(local) is not ndarray:
                        local = asarray(local)
                    if carries and local.size:
                        covered = True
                    shape = values[position].shape
                    if local.shape != shape:
                        reduced = unbroadcast(local, shape)
                        if local is g:
                            sums[node_id] = reduced
                        local = reduced
                    previous = get(operand)
                    if previous is None:
                        grads[operand] = local
                    else:  # a second contribution: summed in place into an array only we hold
                        if through:  # the operand's gradient is no longer one fused rule's part alone
                            through.pop(operand, None)
                        same = previous.dtype == local.dtype
                        if _private(previous) and (same or previous.dtype == np.result_type(previous, local)):
                            np.add(previous, local, out=previous)
                        elif _private(local) and (same or local.dtype == np.result_type(previous, local)):
                            grads[operand] = np.add(local, previous, out=local)
                        else:
                            grads[operand] = asarray(previous + local)
            if covered:  # an operand's gradient carries any NaN/inf of g: testing it suffices
                covered = False
                continue
            tested = sums.get(node_id, g)
            if tested.size <= SMALL:
                small.append(tested.ravel())
            else:
                large[id(tested)] = tested  # an array passed on unchanged (add) is tested once
    finally:
        FP_STATE.reset(token)
    finite = all(all_finite(a) for a in large.values()) and (not small or all_finite(np.concatenate(small)))
    if not finite:  # rare: find and name the first node, walking from the root down
        _check_finite(graph, grads, sums)
    return grads


def _fused_rule(graph: Graph, attrs: dict[str, Any], position: int) -> Any:
    """The fused rule for this operand of the op with ``attrs`` (see ``ops.FUSED``), or None.

    Only for an operand made by a one-operand op.  The gradient the rule finds for that op's
    operand holds only while the operand's gradient is this node's contribution alone: any
    other contribution to it (from another user, or this node's other operand slot) drops
    that shortcut again in :func:`gradients`, and the op's own rule is used instead.
    """
    inner = graph.nodes[attrs["operands"][position]]
    rule = FUSED.get((attrs["op"], position, inner["op"]))
    return None if rule is None or len(inner["operands"]) != 1 else rule


def _private(partial: np.ndarray) -> bool:
    """Whether a partial gradient can take a further contribution in place.

    True for an array a rule made in this pass and nobody else holds: it owns its data and
    is writeable.  Everything shared is read-only by then: values always, and the gradient
    of every node already walked (the upstream array that ``add`` hands on, and its views).
    Summing in place spares a new array as large as a weight matrix.  (If the array is also
    the sum standing in for a large gradient in the NaN/inf test, that test stays sound: a
    finite total has finite parts.)
    """
    return partial.base is None and partial.flags.writeable


#: Gradients of at most this many elements are tested for NaN/inf together, in one joined
#: copy: for them a numpy call costs more than the arithmetic.
SMALL = 4096


def _check_finite(graph: Graph, grads: dict[int, np.ndarray], sums: dict[int, np.ndarray] | None = None) -> None:
    """Name the node where a NaN/inf gradient first appears (walking from the root down).

    ``sums`` maps a node to a sum of its gradient over some axes: when that sum is finite,
    every term is (NaN and ±inf survive addition), and the large array need not be read.
    """
    sums = sums or {}
    nodes = graph.nodes
    checked: set[int] = set()  # an op like add passes its upstream array on: check each array once
    for node_id in sorted(grads, reverse=True):
        grad = grads[node_id]
        if id(grad) in checked:
            continue
        checked.add(id(grad))
        partial = sums.get(node_id)
        if partial is not None and all_finite(partial):
            continue
        if not all_finite(grad):
            consumers = [c for c in graph.successors(node_id) if c in grads]
            via = ", ".join(f"{nodes[c]['name']} = {nodes[c]['op']}" for c in consumers) or "the seed"
            graph.warn_or_raise(f"non-finite gradient first appears at node {nodes[node_id]['name']!r} "
                                f"(flowing back from {via}); check the values there for 0 in a log "
                                "or a division, or a saturated sigmoid")
            return
