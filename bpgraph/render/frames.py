"""Backward-pass frames for teaching: one 16:9 picture per step of reverse-mode differentiation (in
decreasing id order, so every user has sent its share), the node just completed in the accent colour
and its formula in the caption; nodes keep one size, so their places never move.  :func:`write_frames`
adds ``slides.html``, a self-contained deck."""

from __future__ import annotations

import html
import string
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .. import analysis
from ..files import atomic_write
from ..text import one_line
from .diagram import Diagram
from .dot import Frame, backward_steps, stored_or_computed_grads
from .themes import RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: More backward steps than this make a slide show nobody steps through; draw a subgraph.
MAX_FRAMES = 300
FRAME_SHOW = ("name", "shape", "grad")


def frame_diagrams(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
                   rankdir: str = "LR", max_frames: int = MAX_FRAMES) -> list[Diagram]:
    """One :class:`~bpgraph.render.Diagram` per backward step (see the module docstring)."""
    root_id = graph.root_id(root)
    steps = backward_steps(graph, root_id)
    if len(steps) > max_frames:
        raise RenderOptionError(f"the backward pass of {graph.name_of(root_id)!r} has {len(steps):,} "
                                f"steps, more than max_frames={max_frames}; draw frames for a "
                                "smaller root or raise max_frames")
    frames = [Frame(k, len(steps), *step) for k, step in enumerate(steps, 1)]
    return [Diagram(graph, root_id, theme=theme, rankdir=rankdir, show=FRAME_SHOW, max_nodes=max(len(graph), 1),
                    frame=frame, caption="\n".join(frame_caption(graph, root_id, frame))) for frame in frames]


def frame_caption(graph: Graph, root_id: int, frame: Frame) -> tuple[str, ...]:
    """What one backward step does: whose gradient it completes and which users delivered it, then how
    (the op table's formula, a second line)."""
    nodes = graph.nodes
    root, current = nodes[root_id]["name"], nodes[frame.current]["name"]
    head = f"step {frame.step} of {frame.total}: "
    if frame.current == root_id:
        return (head + f"start at the root, ∂{root}/∂{root} = 1",)
    users = ", ".join(nodes[v]["name"] for _, v in frame.delivered)
    within = set(stored_or_computed_grads(graph, root_id))
    lines = analysis.backward_steps(graph, root_id, within, only=frame.current)
    ops = ", ".join(dict.fromkeys(str(nodes[v]["op"]) for _, v in frame.delivered))
    formula = str(lines[0]) if lines and lines[0].rhs else f"through {ops}"
    return head + f"∂{root}/∂{current} is complete, delivered by {users}", formula


def slide_dpi(svg: str) -> float:
    """The resolution that makes a frame 1920 pixels wide: a full-HD slide, whatever the graph's size."""
    width = re.search(r'<svg\b[^>]*?\bwidth="([\d.]+)pt"', svg)
    return 1920 * 72 / float(width[1]) if width else 150.0


def inline_svg(svg: str) -> str:
    """An SVG file's text fit for HTML, which needs no XML prolog, comments or namespace URLs."""
    svg = re.sub(r"\A.*?(?=<svg\b)", "", svg, count=1, flags=re.DOTALL)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    head, sep, body = svg.partition(">")
    return re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", head) + sep + body


#: The deck page; its ``$`` fields are filled with escaped text only.
FRAMES_PAGE = string.Template((resources.files("bpgraph.render") / "assets" / "frames.html").read_text("utf-8"))


def deck_html(svgs: list[str], captions: list[str], files: list[str], title: str, background: str) -> str:
    """A self-contained page that shows one frame at a time (arrow keys, Home/End, buttons)."""
    page = "white" if background in ("transparent", "none") else background
    captions, title = [one_line(c) for c in captions], one_line(title)  # HTML drops or mangles controls
    templates = "\n".join(f'<template class="frame" data-caption="{html.escape(c)}">'
                          f'{inline_svg(s)}</template>' for s, c in zip(svgs, captions))
    links = "\n".join(f'<li><a href="{html.escape(f)}">{html.escape(c)}</a></li>'
                      for f, c in zip(files, captions))
    return FRAMES_PAGE.substitute(title=html.escape(title), background=page, links=links, templates=templates)


def write_frames(graph: Graph, folder: str | os.PathLike[str], root: Tensor | int | str | None = None,
                 *, theme: str | Theme = "light", rankdir: str = "LR", engine: str = "auto",
                 fmt: str = "svg", max_frames: int = MAX_FRAMES) -> list[Path]:
    """Write ``frame_001.svg`` (or ``.png``)... and the deck ``slides.html`` into ``folder``,
    all rendered first and written atomically; returns the frames' paths and the deck's."""
    if fmt not in ("svg", "png"):
        raise RenderOptionError(f"frames are written as svg or png, not {fmt!r}")
    folder = Path(folder)
    theme_obj = get_theme(theme)
    diagrams = frame_diagrams(graph, root, theme=theme_obj, rankdir=rankdir, max_frames=max_frames)
    svgs = [d.render_bytes("svg", engine=engine).decode("utf-8") for d in diagrams]
    pngs = [d.render_bytes("png", engine=engine, dpi=slide_dpi(svg)) for d, svg in zip(diagrams, svgs)] \
        if fmt == "png" else svgs
    width = max(3, len(str(len(svgs))))
    names = [f"frame_{k:0{width}d}.{fmt}" for k in range(1, len(svgs) + 1)]
    captions = [frame_caption(graph, d.root, d.options["frame"])[0] for d in diagrams]  # the formula is drawn
    title = f"bpgraph: backward pass of {graph.name_of(graph.root_id(root))}"
    folder.mkdir(parents=True, exist_ok=True)
    written = [atomic_write(folder / name, data) for name, data in zip(names, pngs)]
    page = deck_html(svgs, captions, names, title, theme_obj.background)
    written.append(atomic_write(folder / "slides.html", page))
    for old in folder.iterdir():
        if re.fullmatch(r"frame_\d+\.(svg|png)", old.name) and old.name not in names:
            old.unlink()
    return written

