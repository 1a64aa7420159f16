"""Comparing two graphs' gradients node by node (:func:`diff_grads`): which changed, and by how much."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autodiff import gradients
from ..graph import Graph
from ..text import one_line, table
from .reports import by_name, json_ready, norm, readonly, sci, with_values


@dataclass(frozen=True, eq=False)
class DiffRow:
    """How one node's gradient differs between graph a and graph b (``delta`` = a − b)."""

    name: str
    status: str  # "changed" | "unchanged" | "shape differs" | "only in <label>"
    shape: tuple[int, ...]
    norm: float
    max_abs: float
    delta: np.ndarray | None

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return with_values({"name": self.name, "status": self.status, "shape": list(self.shape),
                            "norm": self.norm, "max_abs": self.max_abs}, values, "delta", self.delta)


@dataclass(frozen=True, eq=False)
class GradDiff:
    """Per node, whether ∂root/∂node changed from graph b to graph a, and by how much."""

    root: str
    labels: tuple[str, str]
    atol: float
    rows: tuple[DiffRow, ...]

    @property
    def changed(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "changed"]

    @property
    def unchanged(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "unchanged"]

    def row(self, name: str) -> DiffRow:
        return by_name(self.rows, name)

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return json_ready({"root": self.root, "labels": list(self.labels), "atol": self.atol,
                           "changed": self.changed, "rows": [r.to_dict(values) for r in self.rows]})

    def __str__(self) -> str:
        a, b = map(one_line, self.labels)
        rows = [[f"d{r.name}", str(r.shape), r.status, sci(r.norm), sci(r.max_abs)] for r in self.rows]
        return (f"∂{one_line(self.root)}/∂node with {a} against {b}: which gradients change\n"
                + table(["gradient", "shape", f"{a} vs {b}", f"‖{a} − {b}‖", "max |change|"], rows))


def diff_grads(a: Graph, b: Graph, root: str | None = None, *, inputs: bool = False,
               atol: float = 0.0, labels: tuple[str, str] | None = None) -> GradDiff:
    """Compare the gradients of ``root`` (default: a's last node) in two graphs whose nodes share names;
    a gradient ``changed`` when max|a − b| > ``atol``.  Rows in a's backward order.  ``labels`` default
    to the settings in which the graphs' meta differ (``lambd=0.7``, ``lambd=0``), else a and b."""
    root_name = a.name_of(a.root_id(root))
    if labels is None:
        keys = [k for k in sorted({*a.meta, *b.meta}) if a.meta.get(k) != b.meta.get(k)
                and all(isinstance(g.meta.get(k), (int, float, str, type(None))) for g in (a, b))]
        labels = tuple(" ".join(f"{k}={g.meta[k]:g}" if isinstance(g.meta[k], float) else f"{k}={g.meta[k]}"
                                for k in keys if k in g.meta) or ab for g, ab in ((a, "a"), (b, "b")))

    def named_grads(graph: Graph) -> dict[str, np.ndarray]:  # in backward order
        grads = gradients(graph, graph.id_of(root_name), inputs=inputs)
        return {graph.name_of(i): grads[i] for i in sorted(grads, reverse=True)}

    ga, gb = named_grads(a), named_grads(b)
    rows = []
    for name in [*ga, *(n for n in gb if n not in ga)]:
        x, y = ga.get(name), gb.get(name)
        if x is None or y is None:
            only = labels[0] if y is None else labels[1]
            rows.append(DiffRow(name, f"only in {only}", (x if y is None else y).shape, 0.0, 0.0, None))
        elif x.shape != y.shape:
            rows.append(DiffRow(name, "shape differs", x.shape, 0.0, 0.0, None))
        else:
            delta = readonly(np.asarray(x - y))
            max_abs = float(np.max(np.abs(delta), initial=0.0))
            status = "changed" if max_abs > atol or np.isnan(max_abs) else "unchanged"
            rows.append(DiffRow(name, status, x.shape, norm(delta), max_abs, delta))
    return GradDiff(root_name, (str(labels[0]), str(labels[1])), atol, tuple(rows))
