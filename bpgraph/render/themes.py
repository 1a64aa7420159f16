"""Drawing themes: every colour, shape, font and line width a picture uses, as plain data.

``light`` (default): white, pastel fills.  ``dark``: light text on dark.  ``slides``: transparent,
large text, thick edges, a 16:9 page (``size="13.33,7.5"`` inches).  ``print``: grayscale only,
kinds told apart by shape.  Terms take the Okabe-Ito palette (readable with every common
colour-vision deficiency) and each its own line style too, so a picture survives grayscale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import BpgraphError


class RenderOptionError(BpgraphError, ValueError):
    """A rendering option that bpgraph does not know (theme, show item, scope, format...)."""


#: The node kinds a drawing distinguishes, in legend order, and what the legend calls them.
KIND_TITLES = {"param": "parameter", "input": "data", "const": "constant", "op": "intermediate",
               "term": "cost term", "root": "root", "group": "collapsed group"}
NODE_KINDS = tuple(KIND_TITLES)


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

    def term_look(self, index: int) -> tuple[str, str]:
        """Edge colour and line style of the ``index``-th cost term: each colour with the next style after
        the palette runs out, so no look repeats before all are used (18 shipped, 6 in ``print``)."""
        colors, styles = self.term_colors, self.term_styles
        looks = list(dict.fromkeys((colors[c], styles[(c + shift) % len(styles)])
                                   for shift in range(len(styles)) for c in range(len(colors))))
        return looks[index % len(looks)]

    def term_color(self, index: int) -> str:
        return self.term_look(index)[0]

    def term_style(self, index: int) -> str:
        return self.term_look(index)[1]


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
    faded_edge="#C8C8C8", faded_fill="#FAFAFA", faded_text="#A0A0A0", accent="#E69F00",
    cluster_border="#B0B0B0", cluster_fill="#FCFCFC",
)

DARK = replace(
    LIGHT, name="dark", background="#1E1E1E", text="#E8E8E8",
    nodes=_nodes("#5A3E1B", "#1F3A52", "#2A2A2A", "#333333", "#4D4715", "#6B4B12", "#3A3A3A",
                 border="#C8C8C8", font="#F0F0F0"),
    term_colors=("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#D55E00"),
    faded_edge="#4A4A4A", faded_fill="#242424", faded_text="#6E6E6E", accent="#F0E442",
    cluster_border="#5A5A5A", cluster_fill="#232323",
)

SLIDES = replace(
    LIGHT, name="slides", background="transparent", fontsize=20, small_fontsize=17, edge_penwidth=3.5,
    faded_edge="#C0C0C0", faded_text="#9A9A9A", cluster_fill="none",
    graph_attrs={"size": "13.33,7.5", "ratio": "compress", "nodesep": "0.25", "ranksep": "0.45"},
)

PRINT = replace(
    LIGHT, name="print", text="#000000",
    nodes=_nodes("#D9D9D9", "#F0F0F0", "#FFFFFF", "#FFFFFF", "#BFBFBF", "#A6A6A6", "#E6E6E6",
                 border="#000000", font="#000000"),
    term_colors=("#000000", "#555555", "#000000", "#555555"), faded_edge="#CCCCCC",
    faded_fill="#FFFFFF", faded_text="#999999", accent="#000000", cluster_border="#999999",
    cluster_fill="#FFFFFF",
)

THEMES: dict[str, Theme] = {t.name: t for t in (LIGHT, DARK, SLIDES, PRINT)}


def get_theme(theme: str | Theme) -> Theme:
    """Resolve a theme name (``light``, ``dark``, ``slides``, ``print``) or pass a Theme through."""
    if isinstance(theme, Theme):
        return theme
    try:
        return THEMES[theme]
    except (KeyError, TypeError):
        raise RenderOptionError(f"unknown theme {theme!r}; choose one of: "
                                f"{', '.join(THEMES)}") from None
