"""Default node names after the operands, safe to type in a shell (``W3@A2``, ``W3@A2+b3``, ``a*b``,
``Z1.relu``, ``W1.T``, ``2``); numbered (``matmul_6``) when too long, ambiguous or taken."""

from __future__ import annotations

import re
from typing import Collection

import numpy as np

NAME_LIMIT = 24
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_.@+*/-]+")


def default_name(kind: str, op: str | None, operands: list[str], value: np.ndarray, node_id: int,
                 taken: Collection[str]) -> str:
    """The name of node ``node_id`` (of ``kind``, ``op``, operands named ``operands``)."""
    name = ""
    if op in _INFIX and _infix_reads_right(op, operands):
        name = _INFIX[op].join(operands)
    elif op == "linear" and all(_plain(n) for n in operands):
        name = f"{operands[0]}@{operands[1]}+{operands[2]}"
    elif len(operands) == 1 and _plain(operands[0]):
        name = f"{operands[0]}.T" if op == "transpose" else f"{operands[0]}.{op}"
    elif kind == "const" and value.size == 1 and value.dtype.kind in "biuf":
        name = f"{value.item():g}"
    if len(name) > NAME_LIMIT or not _SHELL_SAFE.fullmatch(name) or name in taken:
        name = f"{op or kind}_{node_id}"
        while name in taken:
            name += "_"
    return name


def _plain(name: str) -> bool:
    """A name holding no infix operator, so it reads as one operand anywhere."""
    return not any(c in name for c in "+-*/@")


def _infix_reads_right(op: str, names: list[str]) -> bool:
    """Whether ``a<op>b`` written without parentheses reads as this op of these operands."""
    left, right = names
    if op == "add":
        return True
    if op == "sub":
        return "+" not in right and "-" not in right
    return "+" not in left and "-" not in left and _plain(right)
