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
    """The output format for writing ``path``: ``fmt`` when given, else the one its extension
    asks for (``.svg .png .pdf .dot .gv``).  A known extension must agree with ``fmt``: no PNG
    bytes in a ``.svg``."""
    named = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        if named is None:
            raise RenderOptionError(f"cannot tell the format of {os.fspath(path)!r} from its extension; use one "
                                    f"of {', '.join(EXTENSIONS)}, or give the format (--format in the shell, "
                                    "fmt= in Python)")
        return named
    if named is not None and named != fmt:
        raise RenderOptionError(f"the file name {os.fspath(path)!r} says {named} but the format asked for "
                                f"is {fmt}; change the extension or leave the format out")
    return fmt


class Diagram:
    """A drawing of one graph: the DOT source now, SVG/PNG/PDF bytes on demand.

    Built by :func:`bpgraph.render.to_dot`; ``str(diagram)`` and ``diagram.source`` are the DOT
    text, ``notes`` say what was collapsed to keep the layout small and ``units`` how many
    nodes the layout gets (graph nodes and collapsed groups, legend excluded).  None of them
    ever changes.  In Jupyter a Diagram displays itself inline as SVG.
    """

    def __init__(self, graph: Graph, root: Tensor | int | str | None = None, **options: Any) -> None:
        self.graph = graph
        self.root = root
        self.options = options
        self._digraph, self.units, self.notes = build(graph, root, **options)
        self.source: str = self._digraph.source
        #: The diagram the last :meth:`save` drew: this one, or a more collapsed one (see
        #: :meth:`render_bytes`) whose notes say why.
        self.drawn: Diagram = self

    @property
    def digraph(self) -> graphviz.Digraph:
        """A copy of the :class:`graphviz.Digraph` (render it only through this class: one backend)."""
        return self._digraph.copy()

    def __str__(self) -> str:
        return self.source

    def render_bytes(self, fmt: str = "svg", *, dpi: float | None = None, engine: str = "auto") -> bytes:
        """Lay out and render to ``svg``, ``png`` (``dpi`` sets the resolution), ``pdf`` or ``dot``.

        If the engine reports the layout as too large (the embedded Graphviz runs out of stack
        on very deep graphs), a new Diagram collapsed to about half as many nodes is rendered
        instead, and its caption says so; this diagram stays as it is.
        """
        return self._render(fmt, dpi, engine)[1]

    def save(self, path: str | os.PathLike[str], fmt: str | None = None, *, dpi: float | None = None,
             engine: str = "auto") -> Path:
        """Render and write atomically, in the format :func:`format_of` gives; the diagram
        actually drawn is then :attr:`drawn`."""
        drawn, data = self._render(format_of(path, fmt), dpi, engine)
        written = atomic_write(path, data)
        self.drawn = drawn
        return written

    def _render(self, fmt: str, dpi: float | None, engine: str) -> tuple[Diagram, bytes]:
        """The bytes, and the diagram they show (collapsed further after each layout too large)."""
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
                diagram = diagram._collapsed()
        return diagram, backend.render(diagram.source, fmt, dpi=dpi, engine=engine)

    def _collapsed(self) -> Diagram:
        """This drawing with half the node budget, plus a caption note that says why."""
        budget = max(1, self.units // 2)
        note = f"the layout engine could not handle {self.units:,} nodes; retried with max_nodes={budget:,}"
        return Diagram(self.graph, self.root, **{**self.options, "max_nodes": budget,
                                                 "notes": (*self.options.get("notes", ()), note)})

    def _repr_svg_(self) -> str:
        return self.render_bytes("svg").decode("utf-8")
