"""Draw a recorded graph as DOT, SVG, PNG, PDF or an explorer page, edges coloured by the cost terms
whose gradient flows back along them: :mod:`.dot` builds the DOT text, :mod:`.backend` alone runs
Graphviz.  ``to_dot(l2_mlp()).save("l2.png", dpi=200)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .collapse import MAX_NODES
from .caption import describe_terms, highlight_paths
from .diagram import EXTENSIONS, FORMATS, Diagram, explorer_html, format_of
from .dot import DEFAULT_SHOW, SHOW_ITEMS, backward_steps
from .frames import frame_diagrams, write_frames
from .themes import THEMES, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

__all__ = ["DEFAULT_SHOW", "Diagram", "EXTENSIONS", "FORMATS", "MAX_NODES", "RenderOptionError", "SHOW_ITEMS",
           "THEMES", "Theme", "backward_steps", "describe_terms", "explorer_html", "format_of", "frame_diagrams",
           "get_theme", "highlight_paths", "render", "repr_svg", "to_dot", "write_frames"]


def to_dot(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
           rankdir: str = "LR", show: str | Iterable[str] = DEFAULT_SHOW, highlight: Any = None,
           collapse: str | Iterable[str] = (), max_nodes: int = MAX_NODES,
           caption: str | bool | None = None, legend: bool = True) -> Diagram:
    """A :class:`Diagram` of ``graph``, edges coloured by the cost terms of ``root`` (default: the
    last node).  ``theme``: light, dark, slides, slides-dark, print or a :class:`Theme`; ``rankdir``: LR or TB;
    ``show``: label items of ``name shape op value grad gradvalue`` (values of at most 6 elements,
    ``grad`` the norm of ∂root/∂node); ``highlight``: ``(of, wrt)`` pairs whose paths stay bright;
    ``collapse``: scopes drawn as one node each; ``max_nodes``: above it, scopes or depth bands
    collapse (the caption says so); ``caption``: None for a generated one, a string, or False;
    ``legend``: whether to draw the legend of node kinds and edge colours."""
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
