"""Central finite differences: the independent check of every gradient bpgraph computes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .autodiff import gradients, seed_for
from .text import one_line

if TYPE_CHECKING:
    from .graph import Graph
    from .tensor import Tensor

#: Default absolute tolerance of :func:`gradcheck`, unless rounding can explain more.
ATOL = 1e-8


@dataclass(frozen=True)
class LeafCheck:
    """How one leaf's analytic gradient compares with its finite-difference estimate."""

    name: str
    shape: tuple[int, ...]
    rel_error: float   # ‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖), 0 when both are 0
    max_abs_error: float
    ok: bool


@dataclass(frozen=True)
class GradcheckReport:
    root: str
    eps: float
    tol: float
    leaves: tuple[LeafCheck, ...]

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    @property
    def worst(self) -> LeafCheck | None:
        return max(self.leaves, key=lambda leaf: leaf.rel_error, default=None)

    def __str__(self) -> str:
        """One line per parameter and a verdict (what ``bpgraph check`` prints)."""
        lines = [f"finite-difference check of ∂{one_line(self.root)}/∂(each parameter), "
                 f"tolerance {self.tol:g}"]
        for leaf in self.leaves:
            lines.append(f"  {one_line(leaf.name):<16} {leaf.shape!s:<12} relative error {leaf.rel_error:.2e}"
                         f"  max abs error {leaf.max_abs_error:.2e}  {'ok' if leaf.ok else 'FAIL'}")
        lines.append(f"{sum(leaf.ok for leaf in self.leaves)} of {len(self.leaves)} parameters pass")
        return "\n".join(lines)


def numeric_gradient(graph: Graph, root: int, leaf: int, eps: float = 1e-6) -> np.ndarray:
    """∂root/∂leaf of a scalar root by central differences, one element at a time (float64)."""
    seed = seed_for(graph, root)
    order = sorted(graph.ancestors(root))
    base = np.array(graph.nodes[leaf]["value"], dtype=np.float64)
    numeric = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        total = []
        for step in (eps, -eps):
            shifted = base.copy()
            shifted[index] += step
            total.append(float(np.sum(seed * graph.evaluate(order, {leaf: shifted})[root])))
        numeric[index] = (total[0] - total[1]) / (2 * eps)
    return numeric


def rounding_noise(graph: Graph, root_id: int, eps: float) -> float:
    """How far rounding alone can move a central difference: 100 ulps of the largest magnitude / eps."""
    values = (graph.nodes[i]["value"] for i in graph.ancestors(root_id))
    largest = max(float(np.max(np.abs(value), initial=0.0)) for value in values)
    return 100 * float(np.finfo(np.float64).eps) * max(1.0, largest) / eps


def gradcheck(graph: Graph, root: Tensor | int | str | None = None, *,
              leaves: Iterable[Tensor | int | str] | None = None,
              eps: float = 1e-6, tol: float = 1e-6, atol: float | None = None) -> GradcheckReport:
    """Compare backward's gradient of every parameter (or ``leaves``) with finite differences: a leaf
    passes when its relative error is below ``tol`` or no element differs by more than ``atol``
    (default: :data:`ATOL` or the larger :func:`rounding_noise`), as a gradient near 0 needs."""
    root_id = graph.root_id(root)
    if atol is None:
        atol = max(ATOL, rounding_noise(graph, root_id, eps))
    if leaves is None:
        leaf_ids = [i for i in sorted(graph.ancestors(root_id)) if graph.nodes[i]["kind"] == "param"]
    else:
        leaf_ids = [graph.id_of(leaf) for leaf in leaves]
    analytic = gradients(graph, root_id, inputs=True)
    checks = []
    for leaf in leaf_ids:
        shape = graph.nodes[leaf]["value"].shape
        ana = analytic.get(leaf, np.zeros(shape))
        num = numeric_gradient(graph, root_id, leaf, eps)
        norms = np.linalg.norm(ana) + np.linalg.norm(num)
        err = 0.0 if norms == 0 else float(np.linalg.norm(ana - num) / norms)  # the course's measure
        worst = float(np.max(np.abs(ana - num), initial=0.0))
        checks.append(LeafCheck(graph.name_of(leaf), shape, err, worst, err < tol or worst <= atol))
    return GradcheckReport(graph.name_of(root_id), eps, tol, tuple(checks))
