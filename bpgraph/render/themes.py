"""Drawing themes as plain data: every colour, shape, font and line width a picture uses.  Terms take
the Okabe-Ito palette (readable with common colour-vision deficiencies) and each its own line style, so
a picture survives grayscale.  DOT names one font (a list would lose the embedded Graphviz's metrics)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import BpgraphError


class RenderOptionError(BpgraphError, ValueError):
    """A rendering option that bpgraph does not know (theme, show item, scope, format...)."""


#: The node kinds a drawing distinguishes, in legend order, and what the legend calls them.
KIND_TITLES = {"param": "parameter", "input": "data", "const": "constant", "op": "intermediate",
               "term": "cost term", "root": "root", "group": "collapsed group"}


@dataclass(frozen=True)
class NodeStyle:
    """How one node kind looks; ``margin`` (inches) for shapes whose outline eats into the label."""

    shape: str
    style: str
    fill: str
    border: str
    font: str
    penwidth: float = 1.0
    margin: str | None = None


@dataclass(frozen=True)
class Theme:
    """Everything a drawing's appearance depends on (see the module docstring)."""

    name: str
    background: str
    fontname: str
    fontsize: float
    small_fontsize: float
    text: str
    nodes: dict[str, NodeStyle]
    term_colors: tuple[str, ...]
    term_styles: tuple[str, ...]
    edge_penwidth: float
    faded_edge: str
    faded_fill: str
    faded_text: str
    accent: str
    cluster_border: str
    cluster_fill: str
    graph_attrs: dict[str, str] = field(default_factory=dict)
    arrowsize: float = 0.7
    clusters: bool = True  # scopes as boxes (they bend a straight forward chain into a staircase)

    def term_look(self, index: int) -> tuple[str, str]:
        """Edge colour and line style of the ``index``-th cost term: each colour with the next style after
        the palette runs out, so no look repeats before all are used (18 shipped, 6 in ``print``)."""
        colors, styles = self.term_colors, self.term_styles
        looks = list(dict.fromkeys((colors[c], styles[(c + shift) % len(styles)])
                                   for shift in range(len(styles)) for c in range(len(colors))))
        return looks[index % len(looks)]


# Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish green, reddish purple,
# orange, sky blue.  The first two carry the seed example's cross_entropy and L2.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
TERM_STYLES = ("solid", "dashed", "dotted")


def _nodes(param: str, input_: str, const: str, op: str, term: str, root: str, group: str,
           border: str, font: str) -> dict[str, NodeStyle]:
    """Node styles for one theme: the shapes are shared, only the colours differ."""
    return {
        "param": NodeStyle("box", "rounded,filled", param, border, font, 1.6),
        "input": NodeStyle("cylinder", "filled", input_, border, font, margin="0.1,0.12"),
        "const": NodeStyle("box", "filled,dashed", const, border, font),
        "op": NodeStyle("ellipse", "filled", op, border, font),
        "term": NodeStyle("octagon", "filled", term, border, font, 1.6),
        "root": NodeStyle("doubleoctagon", "filled", root, border, font, 2.0),
        "group": NodeStyle("box3d", "filled", group, border, font, margin="0.15,0.1"),
    }


LIGHT = Theme(
    name="light", background="white", fontname="DejaVu Sans", fontsize=12, small_fontsize=10,
    text="#222222",
    nodes=_nodes("#FBE3C4", "#D6EAF8", "#FFFFFF", "#F2F2F2", "#FCF3B0", "#F9D98C", "#E5E5E5",
                 border="#333333", font="#222222"),
    term_colors=OKABE_ITO, term_styles=TERM_STYLES, edge_penwidth=1.8,
    faded_edge="#C8C8C8", faded_fill="#FAFAFA", faded_text="#A0A0A0", accent="#F0E442",
    cluster_border="#B0B0B0", cluster_fill="#FCFCFC",
)

DARK = replace(
    LIGHT, name="dark", background="#1E1E1E", text="#E8E8E8",
    nodes=_nodes("#5A3E1B", "#1F3A52", "#2A2A2A", "#333333", "#4D4715", "#6B4B12", "#3A3A3A",
                 border="#C8C8C8", font="#F0F0F0"),
    term_colors=("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#D55E00"),
    faded_edge="#4A4A4A", faded_fill="#242424", faded_text="#6E6E6E", accent="#8B1E6B",
    cluster_border="#5A5A5A", cluster_fill="#232323",
)

#: Slides: no ``size`` (it would shrink the text): the graph id ``slide`` has :func:`finish_svg` pad the
#: picture to 16:9; intermediates are boxes, narrower than ellipses, so the chain's text can be larger.
SLIDE_LAYOUT = {"id": "slide", "nodesep": "0.3", "ranksep": "0.12", "pad": "0.2"}


def _slides(theme: Theme, name: str) -> Theme:
    """``theme`` for a 1920×1080 slide: no text under 24 px there, thick lines, no scope boxes."""
    op = replace(theme.nodes["op"], shape="box", margin="0.03,0.02")
    return replace(theme, name=name, fontsize=34, small_fontsize=25, edge_penwidth=3.0, graph_attrs=SLIDE_LAYOUT,
                   arrowsize=1.3, clusters=False, nodes={**theme.nodes, "op": op})


SLIDES, SLIDES_DARK = _slides(LIGHT, "slides"), _slides(DARK, "slides-dark")

PRINT = replace(
    LIGHT, name="print", text="#000000",
    nodes=_nodes("#D9D9D9", "#F0F0F0", "#FFFFFF", "#FFFFFF", "#BFBFBF", "#A6A6A6", "#E6E6E6",
                 border="#000000", font="#000000"),
    term_colors=("#000000", "#555555", "#000000", "#555555"), faded_edge="#CCCCCC",
    faded_fill="#FFFFFF", faded_text="#999999", accent="#8C8C8C", cluster_border="#999999",
    cluster_fill="#FFFFFF",
)

THEMES: dict[str, Theme] = {t.name: t for t in (LIGHT, DARK, SLIDES, SLIDES_DARK, PRINT)}


def get_theme(theme: str | Theme) -> Theme:
    """Resolve a theme name (one of :data:`THEMES`) or pass a Theme through."""
    if isinstance(theme, Theme):
        return theme
    try:
        return THEMES[theme]
    except (KeyError, TypeError):
        raise RenderOptionError(f"unknown theme {theme!r}; choose one of: "
                                f"{', '.join(THEMES)}") from None


def finish_svg(svg: bytes) -> bytes:
    """Graphviz SVG that reads anywhere: fonts fall back to sans-serif, dashes grow with the line width, a
    ``slide`` graph is padded to 16:9, and on a transparent background every text gets a halo."""
    def dashes(m: re.Match[bytes]) -> bytes:
        width = re.search(rb'stroke-width="([\d.]+)"', m[0])
        scale = max(1.0, float(width[1]) / 1.5) if width else 1.0
        dash, gap = {b"5,2": (4.0, 3.0), b"1,5": (1.0, 2.5)}.get(m[1], (0.0, 0.0))
        wider = b'stroke-dasharray="%g,%g"' % (dash * scale, gap * scale)
        return m[0].replace(b'stroke-dasharray="' + m[1] + b'"', wider) if dash and scale > 1 else m[0]

    svg = re.sub(rb'<path\b[^>]*?stroke-dasharray="([\d.,]+)"[^>]*>', dashes, svg)
    svg = re.sub(rb'font-family="([^",]+)"', rb'font-family="\1,sans-serif"', svg)
    background = re.search(rb'class="graph"[^>]*>\s*<title>[^<]*</title>\s*(?:<polygon fill="([^"]*)")?', svg)
    fill = background[1] if background and background[1] else b"none"  # Graphviz draws none if transparent
    svg = _pad_to_slide(svg, fill) if b'<g id="slide" class="graph"' in svg else svg
    if fill not in (b"transparent", b"none"):
        return svg

    def halo(m: re.Match[bytes]) -> bytes:
        rgb = re.search(rb'fill="#(\w\w)(\w\w)(\w\w)"', m[0])
        dark = rgb is None or sum(int(c, 16) for c in rgb.groups()) <= 384
        return m[0][:-1] + b' stroke="%s" stroke-width="3" stroke-opacity="0.8" paint-order="stroke">' % (
            b"#FFFFFF" if dark else b"#000000")

    return re.sub(rb"<text\b[^>]*>", halo, svg)


def _pad_to_slide(svg: bytes, fill: bytes) -> bytes:
    """The picture widened (centred) or heightened (room for a title strip at the top) to 16:9: the
    view box grows, and a rect of the background colour is laid under it all."""
    head = re.search(rb'<svg\b[^>]*?width="([\d.]+)pt" height="([\d.]+)pt"[^>]*>', svg)
    if head is None:
        return svg
    width, height = float(head[1]), float(head[2])
    new_w, new_h = max(width, height * 16 / 9), max(height, width * 9 / 16)
    extra = new_h - height  # room for a title strip above (up to 18%), centred when there is more
    x, y = (width - new_w) / 2, -max(extra / 2, min(extra, 0.18 * new_h))
    box = b'width="%.2fpt" height="%.2fpt" viewBox="%.2f %.2f %.2f %.2f"' % (new_w, new_h, x, y, new_w, new_h)
    tag = re.sub(rb'width="[^"]*" height="[^"]*"\s+viewBox="[^"]*"', box, head[0])
    rect = b'\n<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"/>' % (x, y, new_w, new_h, fill)
    return svg[:head.start()] + tag + rect + svg[head.end():]
