"""A drawing as a value: one graph's DOT source, rendered to SVG, PNG or PDF on demand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_write
from . import backend
from .dot import build
from .themes import RenderOptionError

if TYPE_CHECKING:
    import graphviz

    from ..graph import Graph
    from ..tensor import Tensor

#: Output formats, and the file extensions that select them.
FORMATS = ("svg", "png", "pdf", "dot")
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

#: How many times a layout the engine cannot handle is collapsed further and retried.
RETRIES = 6


def format_of(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format for ``path``: ``fmt``, else its extension's; a known extension must agree with ``fmt``."""
    named = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None and named is None:
        raise RenderOptionError(f"cannot tell the format of {os.fspath(path)!r} from its extension; "
                                f"use one of {', '.join(EXTENSIONS)}, or give the format "
                                "(--format in the shell, fmt= in Python)")
    if fmt is not None and named not in (None, fmt):
        raise RenderOptionError(f"the file name {os.fspath(path)!r} says {named} but the format asked for "
                                f"is {fmt}; change the extension or leave the format out")
    return named if fmt is None else fmt


class Diagram:
    """A drawing of one graph (see :func:`bpgraph.render.to_dot`): its DOT ``source``, ``notes`` on what was
    collapsed and ``units``, the nodes the layout gets (legend excluded); Jupyter shows it as SVG."""

    def __init__(self, graph: Graph, root: Tensor | int | str | None = None, **options: Any) -> None:
        self.graph, self.root, self.options = graph, root, options
        self._digraph, self.units, self.notes = build(graph, root, **options)
        self.source: str = self._digraph.source
        #: The diagram the last :meth:`save` drew: this one, or a more collapsed one whose notes say why.
        self.drawn: Diagram = self

    @property
    def digraph(self) -> graphviz.Digraph:
        """A copy of the :class:`graphviz.Digraph` (render it only through this class: one backend)."""
        return self._digraph.copy()

    def __str__(self) -> str:
        return self.source

    def render_bytes(self, fmt: str = "svg", *, dpi: float | None = None, engine: str = "auto") -> bytes:
        """Render to ``svg``, ``png`` (at ``dpi``), ``pdf`` or ``dot``; a layout too large for the engine
        (the embedded Graphviz runs out of stack) is drawn again with half the nodes, as its caption says."""
        return self._render(fmt, dpi, engine)[1]

    def save(self, path: str | os.PathLike[str], fmt: str | None = None, *, dpi: float | None = None,
             engine: str = "auto") -> Path:
        """Render and write atomically, in :func:`format_of`'s format; :attr:`drawn` is what was drawn."""
        drawn, data = self._render(format_of(path, fmt), dpi, engine)
        written = atomic_write(path, data)
        self.drawn = drawn
        return written

    def _render(self, fmt: str, dpi: float | None, engine: str) -> tuple[Diagram, bytes]:
        if fmt not in FORMATS:
            raise RenderOptionError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
        if fmt == "dot":
            return self, self.source.encode("utf-8")
        diagram = self
        for _ in range(RETRIES):
            try:
                return diagram, backend.render(diagram.source, fmt, dpi=dpi, engine=engine)
            except backend.LayoutTooLarge:
                if diagram.units <= 1:
                    raise
                budget = max(1, diagram.units // 2)
                note = (f"the layout engine could not handle {diagram.units:,} nodes; "
                        f"retried with max_nodes={budget:,}")
                notes = (*diagram.options.get("notes", ()), note)
                options = diagram.options | {"max_nodes": budget, "notes": notes}
                diagram = Diagram(self.graph, self.root, **options)
        return diagram, backend.render(diagram.source, fmt, dpi=dpi, engine=engine)

    def _repr_svg_(self) -> str:
        return self.render_bytes("svg").decode("utf-8")
