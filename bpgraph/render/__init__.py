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

from .collapse import MAX_NODES
from .diagram import EXTENSIONS, FORMATS, Diagram, format_of
from .captions import describe_terms, highlight_paths
from .dot import DEFAULT_SHOW, SHOW_ITEMS
from .frames import backward_steps, frame_diagrams, write_frames
from .themes import THEMES, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

__all__ = ["DEFAULT_SHOW", "Diagram", "EXTENSIONS", "FORMATS", "MAX_NODES", "RenderOptionError", "SHOW_ITEMS",
           "THEMES", "Theme", "backward_steps", "describe_terms", "format_of", "frame_diagrams",
           "get_theme", "highlight_paths", "render", "repr_svg", "to_dot", "write_frames"]


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
