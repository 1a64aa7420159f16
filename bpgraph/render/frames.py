"""Backward-pass frames for teaching: one picture per step of reverse-mode differentiation.

The backward pass visits the root's ancestors in decreasing id order; when it reaches a node,
every user of that node has already sent its share, so the node's gradient is complete.
Frame k shows that moment: the node whose gradient was just completed (accent fill), the
edges that delivered it (thick), the gradients known so far (in the labels), and what is
still pending (faded, ``= ?``).  Every node has one fixed size in every frame, big enough
for its final label, so Graphviz places every node at the same spot in every frame.

:func:`write_frames` writes ``frame_001.svg ...`` and a self-contained ``index.html`` that
embeds every frame inline (no network, opens from disk) and steps with the arrow keys.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, NamedTuple

from ..files import atomic_write
from ..text import one_line
from .diagram import Diagram
from .captions import Frame, frame_caption
from .dot import stored_or_computed_grads
from .themes import RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: More backward steps than this make a slide show nobody steps through; draw a subgraph.
MAX_FRAMES = 300
FRAME_SHOW = ("name", "shape", "grad")


class Step(NamedTuple):
    """One backward step: ``node``'s gradient is complete, delivered along ``delivered`` edges."""

    node: int
    delivered: tuple[tuple[int, int], ...]


def backward_steps(graph: Graph, root: Tensor | int | str | None = None) -> list[Step]:
    """The backward pass of ``root`` as steps, in the order gradients become complete.

    One step per node that gets a gradient (the root first, with ∂root/∂root = 1); the
    delivering edges run from the node to its users on the way to the root.
    """
    root_id = graph.root_id(root)
    grads = stored_or_computed_grads(graph, root_id)
    return [Step(i, tuple((i, user) for user in sorted(graph.successors(i)) if user in grads))
            for i in sorted(grads, reverse=True)]


def frame_diagrams(graph: Graph, root: Tensor | int | str | None = None, *,
                   theme: str | Theme = "light", rankdir: str = "LR",
                   show: str | Iterable[str] = FRAME_SHOW,
                   max_frames: int = MAX_FRAMES) -> list[Diagram]:
    """One :class:`~bpgraph.render.Diagram` per backward step (see the module docstring)."""
    root_id = graph.root_id(root)
    steps = backward_steps(graph, root_id)
    if len(steps) > max_frames:
        raise RenderOptionError(f"the backward pass of {graph.name_of(root_id)!r} has {len(steps):,} "
                                f"steps, more than max_frames={max_frames}; draw frames for a "
                                "smaller root or raise max_frames")
    diagrams = []
    done: set[int] = set()
    for k, step in enumerate(steps, 1):
        done.add(step.node)
        frame = Frame(k, len(steps), step.node, frozenset(done), frozenset(step.delivered))
        diagrams.append(Diagram(graph, root_id, theme=theme, rankdir=rankdir, show=show,
                                max_nodes=max(len(graph), 1), legend=False, frame=frame,
                                caption=frame_caption(graph, root_id, frame)))
    return diagrams


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_XMLNS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def inline_svg(svg: str) -> str:
    """An SVG file's text made fit to sit inside HTML: no XML prolog, comments or namespaces.

    (The HTML parser puts ``<svg>`` in the SVG namespace by itself, and dropping the
    namespace URLs leaves the page without a single ``http`` reference.)
    """
    svg = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
    head, sep, body = svg.partition(">")
    return _XMLNS.sub("", head) + sep + body


def index_html(svgs: list[str], captions: list[str], files: list[str], title: str,
               background: str) -> str:
    """A self-contained page that shows one frame at a time (arrow keys, Home/End, buttons)."""
    page = "white" if background in ("transparent", "none") else background
    captions, title = [one_line(c) for c in captions], one_line(title)  # HTML drops or mangles controls
    templates = "\n".join(f'<template class="frame" data-caption="{html.escape(c)}">{inline_svg(s)}</template>'
                          for s, c in zip(svgs, captions))
    links = "\n".join(f'<li><a href="{html.escape(f)}">{html.escape(c)}</a></li>'
                      for f, c in zip(files, captions))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ margin: 0; font-family: "DejaVu Sans", sans-serif; background: {page}; color: #222; }}
header {{ position: sticky; top: 0; padding: 8px 12px; background: #f4f4f4; border-bottom: 1px solid #ccc; }}
header button {{ font-size: 16px; min-width: 2.5em; }}
#counter {{ font-weight: bold; margin: 0 8px; }}
#stage {{ padding: 12px; }}
#stage svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<header>
<button id="prev" title="previous step (←)">◀</button><span id="counter"></span><button id="next" title="next step (→)">▶</button>
<span id="caption"></span> <small>(← → keys step, Home/End jump)</small>
</header>
<main id="stage"></main>
<noscript><ol>
{links}
</ol></noscript>
{templates}
<script>
(function () {{
  var frames = document.querySelectorAll("template.frame");
  var stage = document.getElementById("stage");
  var k = 0;
  function show(i) {{
    k = Math.max(0, Math.min(frames.length - 1, i));
    stage.replaceChildren(frames[k].content.cloneNode(true));
    document.getElementById("counter").textContent = (k + 1) + " / " + frames.length;
    document.getElementById("caption").textContent = frames[k].dataset.caption;
  }}
  document.addEventListener("keydown", function (e) {{
    if (e.key === "ArrowRight" || e.key === "ArrowDown" || e.key === "PageDown" || e.key === " ") show(k + 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp" || e.key === "PageUp") show(k - 1);
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(frames.length - 1);
    else return;
    e.preventDefault();
  }});
  document.getElementById("prev").addEventListener("click", function () {{ show(k - 1); }});
  document.getElementById("next").addEventListener("click", function () {{ show(k + 1); }});
  show(0);
}})();
</script>
</body>
</html>
"""


_FRAME_FILE = re.compile(r"frame_\d+\.svg")


def write_frames(graph: Graph, folder: str | os.PathLike[str], root: Tensor | int | str | None = None,
                 *, theme: str | Theme = "light", rankdir: str = "LR",
                 show: str | Iterable[str] = FRAME_SHOW, engine: str = "auto",
                 max_frames: int = MAX_FRAMES) -> list[Path]:
    """Write ``frame_001.svg``... and ``index.html`` into ``folder``; returns the paths.

    Every frame is rendered before anything is written, and each file is written atomically,
    so a failure leaves the folder as it was.  Frame files from an earlier run that do not
    belong to this sequence (more steps, or numbered with more digits) are removed.
    """
    folder = Path(folder)
    theme_obj = get_theme(theme)
    diagrams = frame_diagrams(graph, root, theme=theme_obj, rankdir=rankdir, show=show,
                              max_frames=max_frames)
    svgs = [d.render_bytes("svg", engine=engine).decode("utf-8") for d in diagrams]
    width = max(3, len(str(len(svgs))))
    names = [f"frame_{k:0{width}d}.svg" for k in range(1, len(svgs) + 1)]
    captions = [d.options["caption"] for d in diagrams]
    root_name = graph.name_of(diagrams[0].root) if diagrams else ""
    folder.mkdir(parents=True, exist_ok=True)
    written = [atomic_write(folder / name, svg) for name, svg in zip(names, svgs)]
    page = index_html(svgs, captions, names, f"bpgraph: backward pass of {root_name}",
                      theme_obj.background)
    written.append(atomic_write(folder / "index.html", page))
    keep = set(names)
    for old in folder.iterdir():
        if _FRAME_FILE.fullmatch(old.name) and old.name not in keep:
            old.unlink()
    return written

