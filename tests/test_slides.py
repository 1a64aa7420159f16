"""Pictures for a lecture hall: the slides themes fill 16:9 with text that reads at 1920×1080, the
direction of the gradients is stated, terms keep their look, and a highlight with no path says so."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from bpgraph.examples import EXAMPLES, l2_mlp
from bpgraph.render import THEMES, to_dot
from bpgraph.render.themes import finish_svg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz `dot` program is not installed")
ENGINES = [pytest.param("system", marks=[pytest.mark.needs_dot, needs_dot]), "wasm"]
SVG = "{http://www.w3.org/2000/svg}"


def fitted_text_sizes(svg: ET.Element) -> tuple[float, list[tuple[float, str, bool]]]:
    """The picture's aspect, and each text's size in pixels once it is fitted into 1920×1080, with
    its content and whether it is a graph node's label."""
    box = [float(v) for v in svg.get("viewBox").split()]
    fit = min(1920 / box[2], 1080 / box[3])
    graph = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "graph")
    scale = float(re.search(r"scale\(([\d.]+)", graph.get("transform"))[1])
    sizes = [(float(t.get("font-size")) * scale * fit, "".join(t.itertext()),
              g.get("class") == "node" and bool(re.fullmatch(r"n\d+", g.get("id") or "")))
             for g in svg.iter(f"{SVG}g") for t in g.findall(f"{SVG}text")]
    return box[2] / box[3], sizes


def box_area(element: ET.Element) -> float:
    """The area of the bounding box of an element's outline (a cluster's path or polygon)."""
    shape = next(e for e in element if e.tag in (f"{SVG}path", f"{SVG}polygon"))
    numbers = [float(v) for v in re.findall(r"-?[\d.]+", shape.get("d") or shape.get("points"))]
    xs, ys = numbers[0::2], numbers[1::2]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("theme", ["light", "slides", "print"])
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_the_legend_takes_at_most_a_sixth_of_a_small_graphs_picture(example, theme, engine):
    svg = ET.fromstring(to_dot(EXAMPLES[example].build(), theme=theme).render_bytes("svg", engine=engine))
    box = [float(v) for v in svg.get("viewBox").split()]
    legend = next(g for g in svg.iter(f"{SVG}g") if g.get("id") == "legend")
    assert 0 < box_area(legend) <= box[2] * box[3] / 6


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("theme", ["slides", "slides-dark"])
def test_slides_fill_16_9_with_names_of_32_px_and_every_text_of_24_px(theme, engine):
    svg = ET.fromstring(to_dot(l2_mlp(), "J", theme=theme).render_bytes("svg", engine=engine))
    aspect, sizes = fitted_text_sizes(svg)
    assert abs(aspect / (16 / 9) - 1) < 0.05
    assert len(sizes) > 40
    assert min(size for size, _, _ in sizes) >= 24, min(sizes)
    assert min(size for size, _, node in sizes if node) >= 32
    background = next(e for e in svg if e.tag == f"{SVG}rect")  # the padding takes the background
    assert background.get("fill").lower() == THEMES[theme].background.lower()


def test_slides_lay_the_forward_chain_on_one_line_without_scope_boxes():
    source = to_dot(l2_mlp(), "J", theme="slides").source
    spine = re.findall(r"^\t+\d+ \[label=\"([^\\\"]+)[^\n]*group=spine", source, flags=re.MULTILINE)
    assert spine == ["X", "Z1", "A1", "Z2", "A2", "Z3", "A3", "cross_entropy", "J"]
    assert "subgraph cluster_0" not in source and "subgraph cluster_legend" in source
    assert not re.search(r"\bsize=", source.splitlines()[1])  # a size would shrink the text


def test_thick_dashes_stay_dashed_and_transparent_pictures_get_a_text_halo():
    svg = (b'<svg width="10pt" height="10pt" viewBox="0 0 10 10"><g id="graph0" class="graph"><title>g</title>'
           b'<polygon fill="transparent" points=""/><path stroke-width="4.5" stroke-dasharray="5,2" d=""/>'
           b'<path stroke-dasharray="5,2" d=""/><text fill="#222222">a</text><text fill="#e8e8e8">b</text></g></svg>')
    out = finish_svg(svg).decode()
    assert 'stroke-width="4.5" stroke-dasharray="12,9"' in out and '<path stroke-dasharray="5,2"' in out
    assert '<text fill="#222222" stroke="#FFFFFF"' in out and '<text fill="#e8e8e8" stroke="#000000"' in out
    opaque = svg.replace(b'fill="transparent"', b'fill="white"')
    assert b"paint-order" not in finish_svg(opaque)


def edge_colours(source: str) -> dict[tuple[str, str], str]:
    return {(m[1], m[2]): m[3] for m in re.finditer(r"^\t+(\d+) -> (\d+) \[.*?color=\"([^\"]+)\"", source,
                                                    flags=re.MULTILINE)}


def test_a_term_keeps_its_colour_whatever_the_root():
    g = l2_mlp()
    w1, l2, j = (str(g.id_of(n)) for n in ("W1", "L2", "J"))
    in_j = edge_colours(to_dot(g, "J").source)
    in_l2 = edge_colours(to_dot(g, "L2").source)
    assert in_j[(w1, l2)] == in_l2[(w1, l2)] == THEMES["light"].term_colors[1]
    assert in_l2[(l2, j)] == THEMES["light"].faded_edge  # past the root: no gradient from L2


@pytest.mark.parametrize("engine", ENGINES)
def test_a_highlight_with_no_path_marks_both_ends_and_says_no_path(engine):
    g = l2_mlp()
    diagram = to_dot(g, "J", highlight=[("L2", "A2")])
    ends = {str(g.id_of("L2")), str(g.id_of("A2"))}
    marked = {m[1] for m in re.finditer(r"^\t+(\d+) \[.*xlabel=\"no path\"", diagram.source, flags=re.MULTILINE)}
    assert marked == ends
    svg = ET.fromstring(diagram.render_bytes("svg", engine=engine))
    texts = {g.get("id"): ["".join(t.itertext()) for t in g.iter(f"{SVG}text")] for g in svg.iter(f"{SVG}g")}
    assert all("no path" in texts[f"n{i}"] for i in ends)
    assert "no path from A2 to L2: ∂L2/∂A2 = 0 structurally" in texts["graph0"]


def test_on_a_small_graph_the_legend_takes_at_most_a_sixth_of_the_picture():
    import bpgraph as bp
    import numpy as np

    g = bp.Graph()
    (g.param(np.array(2.0), name="w") * g.input(np.array(3.0), name="x")).named("J")
    svg = ET.fromstring(to_dot(g).render_bytes("svg", engine="wasm"))
    box = [float(v) for v in svg.get("viewBox").split()]
    legend = next(e for e in svg.iter(f"{SVG}g") if e.get("id") == "legend")
    points = [float(v) for v in re.findall(r"-?[\d.]+", legend.find(f"{SVG}path").get("d"))]
    xs, ys = points[0::2], points[1::2]
    assert (max(xs) - min(xs)) * (max(ys) - min(ys)) <= box[2] * box[3] / 6
