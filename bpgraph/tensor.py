"""Tensor: a thin handle (graph, node id) whose Python operators ask the graph to record ops."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph


def _binary(op: str) -> tuple[Callable[[Tensor, Any], Tensor], Callable[[Tensor, Any], Tensor]]:
    """The operator method for ``op`` and its reflected twin."""
    def forward(self: Tensor, other: Any) -> Tensor:
        return self.graph.record(op, (self, other))

    def reflected(self: Tensor, other: Any) -> Tensor:
        return self.graph.record(op, (other, self))

    return forward, reflected


class Tensor:
    """Handle to one node of a :class:`~bpgraph.Graph`; arithmetic records nodes (numbers become consts)."""

    __slots__ = ("graph", "id")
    __array_priority__ = 1000  # make ``ndarray + Tensor`` call Tensor.__radd__

    def __init__(self, graph: Graph, node_id: int) -> None:
        self.graph = graph
        self.id = node_id

    # --- what the node holds ----------------------------------------------------------------
    @property
    def node(self) -> dict[str, Any]:
        """The node's attribute dict in the graph (read it, don't edit it)."""
        return self.graph.node(self.id)

    @property
    def name(self) -> str:
        return self.node["name"]

    @property
    def value(self) -> np.ndarray:
        return self.node["value"]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node["value"].shape

    @property
    def kind(self) -> str:
        return self.node["kind"]

    @property
    def op(self) -> str | None:
        return self.node["op"]

    @property
    def grad(self) -> np.ndarray | None:
        """Gradient from the last ``backward``; None when the root does not depend on it."""
        return self.node["grad"]

    def named(self, name: str) -> Tensor:
        """Give this node a human name (``Z1``, ``A1``, ``J``) and return the same tensor."""
        self.graph.rename(self.id, name)
        return self

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, shape={self.shape}, kind={self.kind!r})"

    # Tensors are graph nodes: compare them by identity and keep them hashable.
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError("a Tensor has no truth value; compare its .value instead")

    # --- operators: each records one op (a reflected one, ``2 * x``, with its operands swapped) --
    __add__, __radd__ = _binary("add")
    __sub__, __rsub__ = _binary("sub")
    __mul__, __rmul__ = _binary("mul")
    __truediv__, __rtruediv__ = _binary("div")
    __matmul__, __rmatmul__ = _binary("matmul")

    def __neg__(self) -> Tensor:
        return self.graph.record("neg", (self,))

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a constant number; "
                            "for a tensor exponent write bp.exp(b * bp.log(a))")
        return self.graph.record("pow", (self,), {"exponent": float(exponent)})

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's spelling
        """Transpose (reverses the axes), recorded as an op."""
        return self.graph.record("transpose", (self,), {"axes": None})
