"""Draw a recorded graph: DOT source, SVG, PNG and PDF, coloured by where each gradient flows.

>>> from bpgraph.examples import l2_mlp
>>> from bpgraph.render import to_dot
>>> d = to_dot(l2_mlp())
>>> d.source.startswith("digraph bpgraph {")
True
>>> d.save("l2.svg")                    # doctest: +SKIP
>>> d.save("l2.png", dpi=200)           # doctest: +SKIP

Edges are coloured by the cost term whose gradient flows back along them (cross_entropy and
L2 in different colours and line styles, parallel lines where both flow); edges that carry
nothing from the root are faded.  The DOT text is built in :mod:`bpgraph.render.dot` (pure);
:mod:`bpgraph.render.backend` is the one module that runs Graphviz; every file is written
with :func:`bpgraph.files.atomic_write`, so a failed render leaves an existing file untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..files import atomic_write
from .collapse import MAX_NODES
from .dot import DEFAULT_SHOW, SHOW_ITEMS, Drawing, build, describe_terms, highlight_paths
from .frames import backward_steps, frame_diagrams, write_frames
from .themes import THEMES, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    import graphviz

    from ..graph import Graph
    from ..tensor import Tensor

__all__ = ["DEFAULT_SHOW", "Diagram", "FORMATS", "MAX_NODES", "RenderOptionError", "SHOW_ITEMS",
           "THEMES", "Theme", "backward_steps", "describe_terms", "frame_diagrams", "get_theme",
           "highlight_paths", "render", "repr_svg", "to_dot", "write_frames"]

#: Output formats, and the file extensions that select them.
FORMATS = ("svg", "png", "pdf", "dot")
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

#: How many times a layout the engine cannot handle is collapsed further and retried.
RETRIES = 6


class Diagram:
    """A drawing of one graph: the DOT source now, SVG/PNG/PDF bytes on demand.

    Built by :func:`to_dot`; ``str(diagram)`` and ``diagram.source`` are the DOT text, and in
    Jupyter a Diagram displays itself inline as SVG.
    """

    def __init__(self, graph: Graph, root: Tensor | int | str | None = None, **options: Any) -> None:
        self.graph = graph
        self.root = root
        self.options = options
        self._drawing: Drawing = build(graph, root, **options)

    @property
    def digraph(self) -> graphviz.Digraph:
        """The :class:`graphviz.Digraph` (render it only through this class: one backend)."""
        return self._drawing.digraph

    @property
    def source(self) -> str:
        """The DOT text: byte-identical for the same graph and options."""
        return self._drawing.digraph.source

    @property
    def notes(self) -> tuple[str, ...]:
        """What was collapsed to keep the layout small (empty when nothing was)."""
        return self._drawing.notes

    @property
    def units(self) -> int:
        """How many nodes the layout gets (graph nodes and collapsed groups, legend excluded)."""
        return self._drawing.units

    def __str__(self) -> str:
        return self.source

    def render_bytes(self, fmt: str = "svg", *, dpi: float | None = None, engine: str = "auto") -> bytes:
        """Lay out and render to ``svg``, ``png`` (``dpi`` sets the resolution), ``pdf`` or ``dot``.

        If the engine reports the layout as too large (the embedded Graphviz runs out of
        stack on very deep graphs), the graph is collapsed to about half as many nodes and retried;
        the picture's caption says so, and the diagram keeps the collapsed drawing, so its
        :attr:`source` and :attr:`notes` then describe what was actually drawn.
        """
        fmt = _check_format(fmt)
        if fmt == "dot":
            return self.source.encode("utf-8")
        from . import backend

        for _ in range(RETRIES):
            try:
                return backend.render(self.source, fmt, dpi=dpi, engine=engine)
            except backend.LayoutTooLarge:
                if self.units <= 1:
                    raise
                self._collapse_further()
        return backend.render(self.source, fmt, dpi=dpi, engine=engine)

    def _collapse_further(self) -> None:
        """Rebuild with half the node budget, adding a caption note that says why."""
        budget = max(1, self.units // 2)
        note = f"the layout engine could not handle {self.units:,} nodes; retried with max_nodes={budget:,}"
        self.options = {**self.options, "max_nodes": budget,
                        "notes": (*self.options.get("notes", ()), note)}
        self._drawing = build(self.graph, self.root, **self.options)

    def save(self, path: str | os.PathLike[str], fmt: str | None = None, *, dpi: float | None = None,
             engine: str = "auto") -> Path:
        """Render and write atomically; the format comes from the extension unless ``fmt`` is given
        (a file name with a known extension must agree with ``fmt``: no PNG bytes in a ``.svg``)."""
        named = EXTENSIONS.get(Path(path).suffix.lower())
        if fmt is not None and named is not None and named != fmt:
            raise RenderOptionError(f"the file name {os.fspath(path)!r} says {named} but the format asked for "
                                    f"is {fmt}; change the extension or leave the format out")
        data = self.render_bytes(fmt or format_of(path), dpi=dpi, engine=engine)
        return atomic_write(path, data)

    def _repr_svg_(self) -> str:
        return self.render_bytes("svg").decode("utf-8")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise RenderOptionError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def format_of(path: str | os.PathLike[str]) -> str:
    """The output format a file name asks for (``.svg .png .pdf .dot .gv``)."""
    suffix = Path(path).suffix.lower()
    try:
        return EXTENSIONS[suffix]
    except KeyError:
        raise RenderOptionError(f"cannot tell the format of {os.fspath(path)!r} from its extension; "
                                f"use one of {', '.join(EXTENSIONS)}, or give the format (--format in the shell, "
                                "fmt= in Python)") from None


def to_dot(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
           rankdir: str = "LR", show: str | Iterable[str] = DEFAULT_SHOW, highlight: Any = None,
           collapse: str | Iterable[str] = (), max_nodes: int = MAX_NODES,
           caption: str | bool | None = None, legend: bool = True) -> Diagram:
    """A :class:`Diagram` of ``graph``, edges coloured by the cost terms of ``root``.

    root       the node whose gradient is traced (default: the last recorded node).
    theme      ``light`` (default), ``dark``, ``slides``, ``print`` or a :class:`Theme`.
    rankdir    ``LR`` (default, left to right) or ``TB`` (top to bottom).
    show       what node labels hold: any of ``name shape op value grad gradvalue``
               (``value``/``gradvalue`` only for arrays of at most 6 elements; ``grad`` is the
               norm of ∂root/∂node).  Default: name and shape.
    highlight  ``(of, wrt)`` pairs: every path carrying ∂OF/∂WRT stays bright, the rest dims.
    collapse   scope names to draw as one node each (with their sub-scopes).
    max_nodes  above this many nodes, scopes (or depth bands) are collapsed automatically and
               the caption says what was collapsed and how many nodes are drawn (more than
               max_nodes only when kept cost terms feed each other along a chain: groups
               never span one, which would draw a cycle).
    caption    None: a generated one saying what each cost term's gradient reaches; a string
               to use instead; False for none.
    legend     whether to draw the legend of node kinds and edge colours.
    """
    return Diagram(graph, root, theme=theme, rankdir=rankdir, show=show, highlight=highlight,
                   collapse=collapse, max_nodes=max_nodes, caption=caption, legend=legend)


def render(graph: Graph, path: str | os.PathLike[str], root: Tensor | int | str | None = None, *,
           fmt: str | None = None, dpi: float | None = None, engine: str = "auto",
           **options: Any) -> Path:
    """Draw ``graph`` into ``path`` (format from the extension); options as for :func:`to_dot`."""
    return to_dot(graph, root, **options).save(path, fmt, dpi=dpi, engine=engine)


def repr_svg(graph: Graph) -> str:
    """The default drawing as SVG text: what ``Graph._repr_svg_`` shows in Jupyter."""
    return to_dot(graph).render_bytes("svg").decode("utf-8")
