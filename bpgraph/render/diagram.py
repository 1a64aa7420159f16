"""A drawing as a value: one graph's DOT source, rendered to SVG, PNG or PDF on demand."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_write
from . import backend
from .dot import build
from .explorer import explorer_page
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: Output formats, and the file extensions that select them; html is the interactive explorer page.
FORMATS = ("svg", "png", "pdf", "dot", "html")
EXTENSIONS = {".html": "html", ".htm": "html", ".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot",
              ".gv": "dot"}

#: How many times a layout the engine cannot handle (in time) is collapsed further and retried.
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
    """A drawing of one graph (see :func:`bpgraph.render.to_dot`): its DOT ``source``, ``notes``, collapse ``plan``
    and ``units``, the nodes the layout gets (legend excluded); Jupyter shows it as SVG."""

    def __init__(self, graph: Graph, root: Tensor | int | str | None = None, **options: Any) -> None:
        self.graph, self.root, self.options = graph, root, options
        self.source, self.plan, self.notes = build(graph, root, **options)
        self.units = self.plan.units
        #: The diagram the last :meth:`save` drew: this one, or a more collapsed one whose notes say why.
        self.drawn: Diagram = self

    def __str__(self) -> str:
        return self.source

    def render_bytes(self, fmt: str = "svg", **limits: Any) -> bytes:
        """Render to ``svg``, ``png``, ``pdf``, ``dot`` or ``html`` (the explorer page) with :func:`backend.render`'s
        limits; a layout too large for the engine is drawn again with fewer nodes, as its caption says."""
        return self._render(fmt, **limits)[1]

    def save(self, path: str | os.PathLike[str], fmt: str | None = None, **limits: Any) -> Path:
        """Render (as :meth:`render_bytes`) and write atomically, in :func:`format_of`'s format;
        :attr:`drawn` is what was drawn."""
        self.drawn, data = self._render(format_of(path, fmt), **limits)
        return atomic_write(path, data)

    def _render(self, fmt: str, timeout: float = backend.TIMEOUT, **limits: Any) -> tuple[Diagram, bytes]:
        if fmt not in FORMATS:
            raise RenderOptionError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
        if fmt == "dot":
            return self, self.source.encode("utf-8")
        deadline, diagram, notes = time.monotonic() + timeout, self, []
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES or diagram.units <= 1  # all the time left, else half of it
            left = deadline - time.monotonic()
            if left <= 0:  # the tries so far took the whole limit
                raise backend.LayoutTimeout(f"the layout did not finish within {timeout:.3g} s ({attempt} tries) "
                                            "and was stopped")
            limit = left / (1 if last else 2)
            try:
                data = backend.render(diagram.source, "svg" if fmt == "html" else fmt, timeout=limit,
                                      notes=notes, **limits)
                break
            except backend.LayoutTooLarge as exc:
                if last:
                    raise
                slow = isinstance(exc, backend.LayoutTimeout)
                budget = max(1, diagram.units // (4 if slow else 2))
                note = (f"the layout engine {'took too long for' if slow else 'could not handle'} "
                        f"{diagram.units:,} nodes; retried with max_nodes={budget:,}")
                notes_before = diagram.options.get("notes", ())
                diagram = Diagram(self.graph, self.root, **diagram.options | {"max_nodes": budget,
                                                                             "notes": (*notes_before, note)})
        if notes:  # what the picture could not show as asked, on a copy (its source is unchanged)
            diagram = copy.copy(diagram)
            diagram.notes = (*diagram.notes, *notes)
        if fmt == "html":
            data = explorer_page(diagram, data.decode("utf-8")).encode("utf-8")
        return diagram, data

    def _repr_svg_(self) -> str:
        return self.render_bytes("svg").decode("utf-8")


def explorer_html(graph: Graph, root: Tensor | int | str | None = None, *, engine: str = "auto",
                  **options: Any) -> str:
    """The interactive explorer page of ``graph`` (options as for :func:`bpgraph.render.to_dot`):
    what ``Diagram.save("x.html")`` and ``bpgraph render MODEL -o x.html`` write."""
    return Diagram(graph, root, **options).render_bytes("html", engine=engine).decode("utf-8")
