"""Replaying a loaded file: leaves are recorded with their stored values, every op is recomputed
from its operands (only ops of :data:`bpgraph.ops.OPS`) and must give the value the file holds."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..errors import BpgraphError
from ..graph import Graph
from ..ops import OPS
from ..tensor import Tensor
from . import limits
from .schema import At, check_params


def record_leaf(graph: Graph, at: At, node: dict[str, Any], kind: str, value: np.ndarray,
                requires_grad: bool) -> Tensor:
    """Record a param, const or input with the file's value (it has no op, operands or params)."""
    for field, empty in (("op", None), ("operands", []), ("params", {})):
        if node[field] != empty or type(node[field]) is not type(empty):
            at.fail(field, f"a {kind} has no {field}; expected {json.dumps(empty)}")
    if kind == "param" and value.dtype.kind != "f":
        at.fail("dtype", f"a param holds floats, not {value.dtype}")
    if kind == "param":
        return graph.param(value, name=node["name"])
    if kind == "const":
        return graph.const(value, name=node["name"])
    return graph.input(value, name=node["name"], requires_grad=requires_grad)


def record_op(graph: Graph, at: At, node: dict[str, Any], operands: list[Tensor], stored: np.ndarray) -> Tensor:
    """Recompute a known op from its loaded operands; its value must match the file's."""
    op = node["op"]
    arity = OPS[op].arity
    if (arity is not None and len(operands) != arity) or not operands:
        at.fail("operands", f"{op} takes {arity or 'at least 1'} operand(s), found {len(operands)}")
    params = node["params"]
    check_params(at, params)
    bound = _result_size_bound(op, [t.shape for t in operands])
    if bound > limits.MAX_ELEMENTS:
        at.fail("operands", f"{op} of shapes {', '.join(str(t.shape) for t in operands)} would give up to "
                            f"{bound} elements, more than MAX_ELEMENTS ({limits.MAX_ELEMENTS})")
    try:
        tensor = graph.record(op, operands, {key: tuple(value) if type(value) is list else value
                                             for key, value in params.items()}, name=node["name"])
    except (BpgraphError, ArithmeticError) as exc:
        at.fail("params" if params else "operands", f"cannot be recomputed: {exc}")
    _check_replay(at, tensor, stored)
    return tensor


def _result_size_bound(op: str, shapes: list[tuple[int, ...]]) -> int:
    """An upper bound on the size of an op's result, from shapes alone (nothing allocated).

    Every op's result fits the broadcast of its operands, except matmul-like ops, whose
    result takes rows from the first operand and columns from the second.
    """
    if op in ("matmul", "linear") and len(shapes) >= 2 and min(len(shapes[0]), len(shapes[1])) >= 2:
        a, b = shapes[0], shapes[1]
        shapes = [a[:-2] + (a[-2], b[-1]), b[:-2] + (a[-2], b[-1]), *shapes[2:]]
    try:
        return math.prod(np.broadcast_shapes(*shapes))
    except ValueError:
        return max(math.prod(s) for s in shapes)


def _check_replay(at: At, tensor: Tensor, stored: np.ndarray) -> None:
    """The recomputed value must equal the file's: same shape and dtype, same NaN/inf, close numbers
    (within the REPLAY_RTOL tolerance for floats, exactly otherwise)."""
    fresh = tensor.value
    if fresh.shape == stored.shape and fresh.dtype == stored.dtype \
            and np.array_equal(fresh, stored, equal_nan=fresh.dtype.kind == "f"):
        return  # the usual case: recomputed bit for bit
    what = f"{tensor.op}({', '.join(t.name for t in tensor.graph.operands(tensor))})"
    if fresh.shape != stored.shape:
        at.fail("shape", f"is {list(stored.shape)} but {what} gives {list(fresh.shape)}")
    if fresh.dtype != stored.dtype:
        at.fail("dtype", f"is {stored.dtype} but {what} gives {fresh.dtype}")
    finite = np.isfinite(stored)
    if not np.array_equal(finite, np.isfinite(fresh)) or \
            not np.array_equal(fresh[~finite], stored[~finite], equal_nan=True):
        at.fail("value", f"does not follow from {what}: its NaN/inf entries differ")
    diff = float(np.max(np.abs(fresh[finite].astype(np.float64) - stored[finite]), initial=0.0))
    tol = 0.0
    if fresh.dtype.kind == "f":
        rtol = max(limits.REPLAY_RTOL, 100 * float(np.finfo(fresh.dtype).eps))
        tol = rtol * float(np.max(np.abs(stored[finite]), initial=0.0))
    if diff > tol:
        at.fail("value", f"does not follow from {what}: max abs difference {diff:.6g} (tolerance {tol:.3g}); "
                         "the file was edited or damaged here")
