"""Drawing graphs: exact DOT, SVG from both Graphviz builds, themes, options, collapsing, safety."""

from __future__ import annotations

import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import bpgraph as bp
from bpgraph import ops
from bpgraph.errors import UnknownNodeError
from bpgraph.examples import l2_mlp
from bpgraph.render import MAX_NODES, THEMES, Diagram, RenderOptionError, backend, render, to_dot
from bpgraph.render.collapse import plan

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="the Graphviz `dot` program is not installed")
#: Every SVG test runs with the system ``dot`` (when installed) and the embedded wasm build.
ENGINES = [pytest.param("system", marks=[pytest.mark.needs_dot, needs_dot]), "wasm"]

SVG = "{http://www.w3.org/2000/svg}"
L2_COLOUR = THEMES["light"].term_colors[1]
DEMO_NAMES = ["X", "Y", "W1", "b1", "Z1", "A1", "W2", "b2", "Z2", "A2", "W3", "b3", "Z3", "A3",
              "cross_entropy", "L2", "J"]


# --- helpers --------------------------------------------------------------------------------------
def small_graph() -> bp.Graph:
    """Six nodes, two cost terms: J = fit + reg with fit = w·x + b (scope "model") and reg = w·w."""
    g = bp.Graph()
    x = g.input(np.array([[3.0]]), name="x")
    with g.scope("model"):
        w = g.param(np.array([[2.0]]), name="w")
        b = g.param(np.array([[0.5]]), name="b")
        fit = ops.linear(w, x, b, name="fit")
    reg = (w * w).named("reg")
    (fit + reg).named("J")
    return g


def chain(n: int) -> bp.Graph:
    """A parameter followed by ``n - 1`` tanh ops: the deepest graph of ``n`` nodes."""
    g = bp.Graph()
    x = g.param(np.array(0.5), name="x")
    for _ in range(n - 1):
        x = g.record("tanh", [x])
    return g


_STATEMENT = re.compile(r"^\t+(?P<tail>\S+)(?: -> (?P<head>\S+))? \[(?P<attrs>.*)\]$", re.MULTILINE)
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"\]]+)')


def dot_attrs(text: str) -> dict[str, str]:
    """``a=1 b="x y"`` -> ``{"a": "1", "b": "x y"}`` (quotes removed, escapes kept)."""
    return {key: value[1:-1] if value.startswith('"') else value for key, value in _ATTR.findall(text)}


def dot_statements(source: str) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], dict[str, str]]]:
    """Node and edge statements of DOT text (the ``graph``/``node``/``edge`` defaults left out)."""
    nodes, edges = {}, {}
    for m in _STATEMENT.finditer(source):
        if m["head"]:
            edges[(m["tail"], m["head"])] = dot_attrs(m["attrs"])
        elif m["tail"] not in ("graph", "node", "edge"):
            nodes[m["tail"]] = dot_attrs(m["attrs"])
    return nodes, edges


def groups(svg: ET.Element, cls: str) -> dict[str, ET.Element]:
    """The ``<g class=cls>`` elements of an SVG by id."""
    return {g.get("id"): g for g in svg.iter(f"{SVG}g") if g.get("class") == cls}


def texts(element: ET.Element) -> list[str]:
    """The ``<text>`` contents inside an element, in document order."""
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def legend_texts(svg: ET.Element) -> list[str]:
    """Text of the legend: its title and its sample nodes (Graphviz writes clusters flat)."""
    samples = [n for n in groups(svg, "node").values()
               if "".join(n.find(f"{SVG}title").itertext()).startswith("legend_")]
    return texts(groups(svg, "cluster")["legend"]) + [t for n in samples for t in texts(n)]


def caption_texts(svg: ET.Element) -> list[str]:
    """The graph label's lines: text elements that belong to the whole graph, not a node."""
    graph0 = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "graph")
    return ["".join(t.itertext()) for t in graph0.findall(f"{SVG}text")]


def render_svg(diagram: Diagram, engine: str) -> ET.Element:
    return ET.fromstring(diagram.render_bytes("svg", engine=engine))


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


# --- exact DOT and stable ids ------------------------------------------------------------------------
# Node and edge statements: label, then id, then the styling sorted (bpgraph.render.dot.node_statement).
SMALL_DOT = r"""digraph bpgraph {
	graph [bgcolor=white fontcolor="#222222" fontname="DejaVu Sans" fontsize=12 label="fit's gradient reaches w, b\lreg's gradient reaches only w\larrows: the forward pass; gradients flow back against them\l" labeljust=l labelloc=t nodesep=0.25 outputorder=edgesfirst pad=0.2 rankdir=LR ranksep=0.4]
	node [fontcolor="#222222" fontname="DejaVu Sans" fontsize=12 height=0.3 margin="0.1,0.04"]
	edge [arrowsize=0.7 color="#222222"]
	0 [label="x\n1×1" id=n0 color="#333333" fillcolor="#D6EAF8" fontcolor="#222222" margin="0.1,0.12" penwidth=1 shape=cylinder style=filled]
	4 [label="reg\n1×1" id=n4 color="#333333" fillcolor="#FCF3B0" fontcolor="#222222" penwidth=1.6 shape=octagon style=filled]
	5 [label="J\n1×1" id=n5 color="#333333" fillcolor="#F9D98C" fontcolor="#222222" penwidth=2 shape=doubleoctagon style=filled]
	subgraph cluster_0 {
		color="#B0B0B0" fillcolor="#FCFCFC" fontcolor="#222222" fontsize=11 id=cluster0 label=model labeljust=r style="rounded,filled"
		1 [label="w\n1×1" id=n1 color="#333333" fillcolor="#FBE3C4" fontcolor="#222222" penwidth=1.6 shape=box style="rounded,filled"]
		2 [label="b\n1×1" id=n2 color="#333333" fillcolor="#FBE3C4" fontcolor="#222222" penwidth=1.6 shape=box style="rounded,filled"]
		3 [label="fit\n1×1" id=n3 color="#333333" fillcolor="#FCF3B0" fontcolor="#222222" penwidth=1.6 shape=octagon style=filled]
	}
	0 -> 3 [id=e0_3 color="#A0A0A0" penwidth=1.8 style=dotted]
	1 -> 3 [id=e1_3 color="#0072B2" penwidth=1.8 style=solid]
	1 -> 4 [id=e1_4 color="#D55E00" penwidth=1.8 style=dashed]
	2 -> 3 [id=e2_3 color="#0072B2" penwidth=1.8 style=solid]
	3 -> 5 [id=e3_5 color="#0072B2" penwidth=1.8 style=solid]
	4 -> 5 [id=e4_5 color="#D55E00" penwidth=1.8 style=dashed]
	subgraph cluster_legend {
		color="#B0B0B0" fillcolor="#FCFCFC" fontcolor="#222222" fontsize=10 id=legend label="" style="rounded,filled"
		legend_t0 [label="gradient of fit" fontcolor="#222222" fontsize=10 group=legend0 shape=plaintext]
		legend_t1 [label="gradient of reg" fontcolor="#222222" fontsize=10 group=legend1 shape=plaintext]
		legend_t2 [label="no gradient computed" fontcolor="#222222" fontsize=10 group=legend2 shape=plaintext]
		legend_s0 [label="" fixedsize=true group=legend0 height=0.01 shape=none width=0.09]
		legend_s1 [label="" fixedsize=true group=legend1 height=0.01 shape=none width=0.09]
		legend_s2 [label="" fixedsize=true group=legend2 height=0.01 shape=none width=0.09]
		{rank=same; legend_s2 -> legend_s1 -> legend_s0 [style=invis]}
		legend_s0 -> legend_t0 [color="#0072B2" penwidth=1.8 style=solid tailclip=false]
		legend_s1 -> legend_t1 [color="#D55E00" penwidth=1.8 style=dashed tailclip=false]
		legend_s2 -> legend_t2 [color="#A0A0A0" penwidth=1 style=dotted tailclip=false]
	}
}
"""


def test_small_graph_dot_is_exactly_the_snapshot():
    assert to_dot(small_graph()).source == SMALL_DOT


def test_the_same_graph_built_twice_gives_byte_identical_dot():
    assert to_dot(small_graph()).source == to_dot(small_graph()).source
    assert to_dot(l2_mlp(), "J").source == to_dot(l2_mlp(), "J").source


@pytest.mark.parametrize("engine", ENGINES)
def test_svg_element_ids_are_the_graph_ids_on_every_render(engine):
    first, second = (render_svg(to_dot(small_graph()), engine) for _ in range(2))
    node_ids = {"n0", "n1", "n2", "n3", "n4", "n5"}
    edge_ids = {"e0_3", "e1_3", "e1_4", "e2_3", "e3_5", "e4_5"}
    for svg in (first, second):
        assert node_ids <= set(groups(svg, "node")) and edge_ids <= set(groups(svg, "edge"))
    assert list(groups(first, "node")) == list(groups(second, "node"))
    assert list(groups(first, "edge")) == list(groups(second, "edge"))


# --- the demo picture ---------------------------------------------------------------------------
def test_demo_dot_colours_exactly_the_l2_edges_with_l2s_colour_and_dashes():
    g = l2_mlp()
    _, edges = dot_statements(to_dot(g, "J").source)
    ids = {name: str(g.id_of(name)) for name in DEMO_NAMES}
    edges = {e: attrs for e, attrs in edges.items() if not e[0].startswith("legend")}
    l2_edges = {e for e, attrs in edges.items() if L2_COLOUR in attrs["color"].split(":")}
    assert l2_edges == {(ids["W1"], ids["L2"]), (ids["W2"], ids["L2"]), (ids["W3"], ids["L2"]),
                        (ids["L2"], ids["J"])}
    assert all(edges[e]["style"] == "dashed" for e in l2_edges)
    data_edges = {(ids["X"], ids["Z1"]), (ids["Y"], ids["cross_entropy"])}  # no gradient computed for data
    assert {e for e, attrs in edges.items() if attrs["style"] == "dotted"} == data_edges
    assert {edges[e]["color"] for e in data_edges} == {THEMES["light"].faded_text}
    assert {edges[e]["style"] for e in edges.keys() - l2_edges - data_edges} == {"solid"}


def test_data_edges_carry_a_gradient_once_one_is_computed_for_the_data():
    g = bp.Graph()
    x, y = g.input([1.0, 2.0], name="x", requires_grad=True), g.input([3.0, 4.0], name="y")
    w = g.param([0.5, -1.0], name="w")
    bp.sum(x * w + y, name="J")
    _, edges = dot_statements(to_dot(g, "J").source)
    ids = {name: str(g.id_of(name)) for name in ("x", "y", "w")}
    style = {tail: attrs["style"] for (tail, _), attrs in edges.items() if tail in ids.values()}
    assert style == {ids["x"]: "solid", ids["w"]: "solid", ids["y"]: "dotted"}  # y: no gradient computed
    g.backward("J", inputs=True)  # now y's gradient is computed and stored: its edge carries it
    _, edges = dot_statements(to_dot(g, "J").source)
    assert {attrs["style"] for (tail, _), attrs in edges.items() if tail in ids.values()} == {"solid"}


@pytest.mark.parametrize("engine", ENGINES)
def test_demo_svg_has_every_node_the_l2_edges_a_legend_and_the_caption(engine):
    g = l2_mlp()
    svg = render_svg(to_dot(g, "J"), engine)
    nodes = {k: v for k, v in groups(svg, "node").items() if re.fullmatch(r"n\d+", k or "")}
    assert {texts(v)[0] for v in nodes.values()} == set(DEMO_NAMES)
    assert all(texts(nodes[f"n{g.id_of(name)}"])[0] == name for name in DEMO_NAMES)

    dashed_l2 = {eid for eid, e in groups(svg, "edge").items()
                 if re.fullmatch(r"e\d+_\d+", eid or "")
                 and any(p.get("stroke") == L2_COLOUR.lower() and p.get("stroke-dasharray")
                         for p in e.iter(f"{SVG}path"))}
    ids = {name: g.id_of(name) for name in ("W1", "W2", "W3", "L2", "J")}
    assert dashed_l2 == {f"e{ids[w]}_{ids['L2']}" for w in ("W1", "W2", "W3")} | {f"e{ids['L2']}_{ids['J']}"}

    assert legend_texts(svg) == ["legend · gradients flow against the arrows",
                                 "parameter", "data", "intermediate", "cost term", "root",
                                 "gradient of cross_entropy", "gradient of L2", "no gradient computed"]
    assert caption_texts(svg)[1:] == ["L2's gradient reaches only W1, W2, W3: no path from L2 through any Z or A",
                                      "arrows: the forward pass; gradients flow back against them"]


# --- names that try to break out --------------------------------------------------------------
HOSTILE = ('"]; x [label="pwn', "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
           "a\\lb", "\\N", "two\nlines", "&amp;", "&lt;")
HOSTILE_SCOPE = "<b onmouseover=alert(1)>"
GRAPHVIZ_TAGS = {"svg", "g", "title", "text", "path", "polygon", "ellipse", "polyline", "a", "defs"}


def hostile_graph() -> bp.Graph:
    """One scalar parameter per hostile name (inside a hostile scope), summed into J."""
    g = bp.Graph()
    with g.scope(HOSTILE_SCOPE):
        leaves = [g.param(np.array(float(k)), name=name) for k, name in enumerate(HOSTILE)]
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    total.named("J")
    return g


def test_hostile_names_stay_inside_quoted_dot_labels():
    g = hostile_graph()
    nodes, _ = dot_statements(to_dot(g, legend=False).source)
    assert set(nodes) == {str(i) for i in range(len(g))}
    assert nodes["0"]["label"] == '\\"]; x [label=\\"pwn\\nscalar'
    assert nodes["3"]["label"] == "a\\\\lb\\nscalar" and nodes["4"]["label"] == "\\\\N\\nscalar"
    assert nodes["6"]["label"] == "&amp;amp;\\nscalar"


@pytest.mark.parametrize("engine", ENGINES)
def test_hostile_names_reach_the_svg_as_text_only(engine):
    g = hostile_graph()
    svg = render_svg(to_dot(g), engine)
    elements = list(svg.iter())
    assert {e.tag.removeprefix(SVG) for e in elements} <= GRAPHVIZ_TAGS
    assert not [(e.tag, a) for e in elements for a in e.attrib if a.lower().startswith("on")]
    nodes = groups(svg, "node")
    for k, name in enumerate(HOSTILE):
        assert "\n".join(texts(nodes[f"n{k}"])) == name + "\nscalar"
    assert texts(groups(svg, "cluster")["cluster0"]) == [HOSTILE_SCOPE]
    assert "gradient of <script>alert(1)</script>" in legend_texts(svg)
    assert "<img src=x onerror=alert(1)>'s gradient reaches only <img src=x onerror=alert(1)>: " \
           "no path from <img src=x onerror=alert(1)> through add_8" in caption_texts(svg)


@pytest.mark.parametrize("engine", ENGINES)
def test_hostile_names_add_no_node_to_the_layout(engine):
    g = hostile_graph()
    svg = render_svg(to_dot(g, legend=False), engine)
    titles = {"".join(n.find(f"{SVG}title").itertext()) for n in groups(svg, "node").values()}
    assert titles == {str(i) for i in range(len(g))}


def test_a_name_with_a_newline_keeps_the_caption_left_justified():
    g = bp.Graph()
    (g.param(np.array(1.0), name="two\nlines") * 2.0).named("J")
    label = dot_attrs(to_dot(g).source.splitlines()[1])["label"]
    assert "two\\l" in label and "two\\n" not in label


# --- themes ---------------------------------------------------------------------------------------
_COLOUR_ATTR = re.compile(r'\b(?:color|fillcolor|fontcolor|bgcolor)=("[^"]*"|[^\s\]]+)')
_SVG_COLOUR_ATTRS = ("fill", "stroke")


def is_gray(colour: str) -> bool:
    colour = colour.strip('"').lower()
    if colour in ("white", "black", "none", "transparent"):
        return True
    m = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", colour)
    return bool(m) and m[1] == m[2] == m[3]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("theme", list(THEMES))
def test_every_theme_renders_the_demo_and_keeps_the_viewbox(theme, engine):
    svg = render_svg(to_dot(l2_mlp(), "J", theme=theme), engine)
    nodes = [k for k in groups(svg, "node") if re.fullmatch(r"n\d+", k or "")]
    assert len(nodes) == len(DEMO_NAMES)
    # the family resvg is told to resolve (any other would rasterise as blank labels), then any sans-serif
    assert {t.get("font-family") for t in svg.iter(f"{SVG}text")} == {f"{backend.FONT},sans-serif"}
    box = [float(v) for v in svg.get("viewBox").split()]
    assert box[:2] == [0, 0] or theme.startswith("slides")  # slides are padded to 16:9 around the drawing
    assert abs(box[2] - float(svg.get("width").removesuffix("pt"))) < 1
    assert abs(box[3] - float(svg.get("height").removesuffix("pt"))) < 1


@pytest.mark.parametrize("engine", ENGINES)
def test_print_theme_uses_only_grays(engine):
    diagram = to_dot(l2_mlp(), "J", theme="print")
    dot_colours = [part for value in _COLOUR_ATTR.findall(diagram.source)
                   for part in value.strip('"').split(":")]
    assert len(dot_colours) > 50 and all(map(is_gray, dot_colours)), sorted(set(dot_colours))
    svg = render_svg(diagram, engine)
    svg_colours = {e.get(a) for e in svg.iter() for a in _SVG_COLOUR_ATTRS if e.get(a)}
    assert all(map(is_gray, svg_colours)), sorted(svg_colours)


@pytest.mark.parametrize("theme", list(THEMES))
def test_terms_differ_in_line_style_not_only_in_hue(theme):
    g = l2_mlp()
    _, edges = dot_statements(to_dot(g, "J", theme=theme).source)
    ce = edges[(str(g.id_of("cross_entropy")), str(g.id_of("J")))]
    l2 = edges[(str(g.id_of("L2")), str(g.id_of("J")))]
    assert (ce["style"], l2["style"]) == ("solid", "dashed")


def test_every_colour_and_style_pair_is_used_before_a_term_look_repeats():
    light = THEMES["light"]
    looks = [light.term_look(k) for k in range(19)]
    assert looks[:6] == [(c, ("solid", "dashed", "dotted")[k % 3]) for k, c in enumerate(light.term_colors)]
    assert len(set(looks[:18])) == 18 and looks[18] == looks[0]
    grays = [THEMES["print"].term_look(k) for k in range(7)]
    assert len(set(grays[:6])) == 6 and grays[6] == grays[0]  # 2 grays x 3 styles


def test_the_seventh_term_gets_the_first_colour_with_another_style():
    g = bp.Graph()
    w = g.param(np.ones(2), name="w")
    terms = [bp.sum(w * float(k + 1), name=f"t{k}") for k in range(7)]
    J = terms[0]
    for t in terms[1:]:
        J = J + t
    J = J.named("J")
    _, edges = dot_statements(to_dot(g, J).source)
    first, seventh = (edges[(str(g.id_of(f"t{k}")), str(_user(g, f"t{k}")))] for k in (0, 6))
    assert first["color"] == seventh["color"] == THEMES["light"].term_colors[0]
    assert (first["style"], seventh["style"]) == ("solid", "dashed")


def _user(g: bp.Graph, name: str) -> int:
    """The one node that uses ``name``."""
    (user,) = g.successors(g.id_of(name))
    return user


# --- options --------------------------------------------------------------------------------------
def test_show_puts_op_value_and_gradients_in_the_labels():
    show = ("name", "op", "shape", "value", "grad", "gradvalue")
    nodes, _ = dot_statements(to_dot(small_graph(), show=show).source)
    assert nodes["1"]["label"] == "w\\n1×1\\n= [[2]]\\n‖∂J/∂w‖ = 7\\n∂J/∂w = [[7]]"
    assert nodes["3"]["label"] == "fit\\nlinear\\n1×1\\n= [[6.5]]\\n‖∂J/∂fit‖ = 1\\n∂J/∂fit = [[1]]"
    assert nodes["0"]["label"] == "x\\n1×1\\n= [[3]]"  # an input gets no gradient


def test_show_leaves_out_values_of_big_arrays_and_names_when_asked():
    nodes, _ = dot_statements(to_dot(l2_mlp(), "J", show=("shape", "value")).source)
    assert nodes["2"]["label"] == "20×2"                  # W1: 40 values, too many to print
    assert nodes["11"]["label"].startswith("1×1\\n= [[")  # b3: one value


@pytest.mark.parametrize("rankdir", ["LR", "TB"])
def test_rankdir_is_passed_to_graphviz(rankdir):
    assert f"rankdir={rankdir}" in to_dot(small_graph(), rankdir=rankdir).source.splitlines()[1]


@pytest.mark.parametrize("options, choices", [
    ({"theme": "neon"}, ["light", "dark", "slides", "print"]),
    ({"show": ("name", "colour")}, ["name", "op", "shape", "value", "grad", "gradvalue"]),
    ({"rankdir": "RL"}, ["LR", "TB"]),
    ({"collapse": ["layer_1"]}, ["cost", "layer1", "layer2", "layer3"]),
])
def test_bad_option_values_raise_with_the_choices(options, choices):
    with pytest.raises(RenderOptionError) as error:
        to_dot(l2_mlp(), "J", **options)
    assert all(choice in str(error.value) for choice in choices), str(error.value)


def test_bad_format_and_extension_raise_with_the_choices(tmp_path):
    with pytest.raises(RenderOptionError, match="choose one of: svg, png, pdf, dot"):
        to_dot(small_graph()).render_bytes("gif")
    with pytest.raises(RenderOptionError, match=r"\.svg, \.png, \.pdf, \.dot, \.gv, or give the format"):
        to_dot(small_graph()).save(tmp_path / "picture.gif")
    assert to_dot(small_graph()).save(tmp_path / "picture.gif", "dot").read_text().startswith("digraph")
    (tmp_path / "kept.svg").write_text("old")
    with pytest.raises(RenderOptionError, match="'.*kept.svg' says svg but the format asked for is png"):
        to_dot(small_graph()).save(tmp_path / "kept.svg", "png")  # no PNG bytes in a .svg
    assert (tmp_path / "kept.svg").read_text() == "old"
    assert to_dot(small_graph()).save(tmp_path / "kept.svg", "svg").read_text().lstrip().startswith("<?xml")


def test_highlight_keeps_exactly_the_paths_from_w1_to_j_lit():
    g = l2_mlp()
    faded = THEMES["light"].faded_fill
    nodes, edges = dot_statements(to_dot(g, "J", highlight=("J", "W1")).source)
    lit = {g.name_of(int(k)) for k, a in nodes.items() if k.isdigit() and a["fillcolor"] != faded}
    assert lit == {"W1", "Z1", "A1", "Z2", "A2", "Z3", "A3", "cross_entropy", "L2", "J"}
    bright = {(g.name_of(int(t)), g.name_of(int(h))) for (t, h), a in edges.items()
              if t.isdigit() and a["color"] != THEMES["light"].faded_edge}
    assert bright == {("W1", "Z1"), ("Z1", "A1"), ("A1", "Z2"), ("Z2", "A2"), ("A2", "Z3"), ("Z3", "A3"),
                      ("A3", "cross_entropy"), ("cross_entropy", "J"), ("W1", "L2"), ("L2", "J")}


def test_highlight_of_an_unknown_node_names_close_matches():
    with pytest.raises(UnknownNodeError) as error:
        to_dot(l2_mlp(), "J", highlight=("J", "W_1"))
    assert error.value.suggestions[0] == "W1" and "did you mean 'W1'" in str(error.value)


# --- collapsing -----------------------------------------------------------------------------------
def test_collapse_draws_a_scope_as_one_node():
    g = l2_mlp()
    diagram = to_dot(g, "J", collapse=["layer1"])
    nodes, edges = dot_statements(diagram.source)
    layer1 = [str(g.id_of(n)) for n in ("W1", "b1", "Z1", "A1")]
    assert not set(layer1) & set(nodes) and diagram.units == len(g) - 3
    assert nodes["g2"]["label"] == "layer1\\n4 nodes · linear, relu" and nodes["g2"]["shape"] == "box3d"
    into_group = {t for (t, h) in edges if h == "g2"}
    out_of_group = {h for (t, h) in edges if t == "g2"}
    assert into_group == {str(g.id_of("X"))} and out_of_group == {str(g.id_of("Z2")), str(g.id_of("L2"))}
    assert edges[("g2", str(g.id_of("L2")))]["color"] == L2_COLOUR


def test_collapsing_an_unknown_scope_suggests_and_lists_the_scopes():
    with pytest.raises(RenderOptionError, match=r"cannot collapse 'layer_1': no such scope; did you mean "
                                                r"'layer1'.*\(scopes: cost, layer1, layer2, layer3\)"):
        to_dot(l2_mlp(), "J", collapse="layer_1")


def test_graphs_above_max_nodes_collapse_automatically_with_a_note():
    diagram = to_dot(l2_mlp(), "J", max_nodes=10)
    assert diagram.units <= 10
    assert diagram.notes == ("17 nodes exceed max_nodes=10: collapsed 3 scopes at nesting depth 1 "
                             "(drawing 8 nodes)",)
    assert diagram.notes[0] in diagram.source


@pytest.mark.parametrize("max_nodes", [1, 2, 3])
def test_a_budget_smaller_than_the_kept_nodes_still_draws_and_says_so(max_nodes):
    g = bp.Graph()
    w, x = g.param(np.ones((2, 2)), name="W"), g.input(np.ones((2, 2)), name="X")
    with g.scope("layer"):
        a = bp.tanh((w @ x).named("Z"))
    J = (bp.sum(a * a, name="T1") + bp.l2_penalty([w], lambd=0.7, m=3, name="T2")).named("J")
    diagram = to_dot(g, J, max_nodes=max_nodes)  # J and its two terms are never merged
    assert diagram.units > max_nodes and "exceed max_nodes" in " ".join(diagram.notes)
    nodes, _ = dot_statements(diagram.source)
    for name in ("J", "T1", "T2"):
        assert nodes[str(g.id_of(name))]["label"].startswith(name + "\\n")


def test_a_theme_made_with_lists_draws():
    import dataclasses

    theme = dataclasses.replace(THEMES["light"], term_colors=["red", "blue"], term_styles=["solid"])
    _, edges = dot_statements(to_dot(small_graph(), theme=theme).source)
    drawn = {attrs["color"] for (tail, _), attrs in edges.items() if not tail.startswith("legend")}
    assert drawn == {"red", "blue", theme.faded_text}  # fit's edges red, reg's blue, x's (data) gray


def test_a_100000_node_chain_renders_collapsed_within_a_minute():
    g = chain(100_000)
    start = time.perf_counter()
    diagram = to_dot(g)
    svg = ET.fromstring(diagram.render_bytes("svg"))  # system dot if installed, else wasm
    elapsed = time.perf_counter() - start
    drawn = [k for k in groups(svg, "node") if re.fullmatch(r"[ng]\d+", k or "")]
    assert diagram.units <= MAX_NODES and len(drawn) == diagram.units
    assert any(t.startswith("100,000 nodes exceed max_nodes=1,500: grouped 99,999 nodes into")
               for t in caption_texts(svg))
    assert elapsed < 60


def test_the_band_plan_covers_every_node_once():
    g = chain(5_000)
    result = plan(g, max_nodes=100, keep={len(g) - 1})
    members = [m for group in result.groups for m in group.members]
    assert sorted(members) == list(range(len(g) - 1)) and result.units <= 100


def test_wasm_stack_exhaustion_is_retried_with_more_collapsing(tmp_path):
    diagram = to_dot(chain(12_000), max_nodes=10**6, legend=False)
    source = diagram.source
    svg = ET.fromstring(diagram.save(tmp_path / "deep.svg", engine="wasm").read_bytes())
    drawn = diagram.drawn
    if drawn is diagram:
        pytest.skip("this wasm Graphviz build lays out a 12,000-op chain without running out of stack")
    note = "the layout engine could not handle 12,000 nodes; retried with max_nodes=6,000"
    assert drawn.notes[-1] == note and note in caption_texts(svg)
    assert drawn.units <= 6_000 and len(groups(svg, "node")) == drawn.units
    assert diagram.units == 12_000 and diagram.notes == () and diagram.source == source  # a value: unchanged


def test_a_layout_too_large_is_retried_and_the_caption_says_so(monkeypatch, tmp_path):
    sources = []

    def fake_render(source: str, fmt: str, **kwargs) -> bytes:
        sources.append(source)
        if len(sources) % 3:
            raise backend.LayoutTooLarge("out of stack")
        return b"<svg/>"

    monkeypatch.setattr(backend, "render", fake_render)
    diagram = to_dot(l2_mlp(), "J")
    assert diagram.render_bytes("svg") == b"<svg/>"
    assert diagram.source == sources[0] and diagram.notes == () and diagram.units == 17  # never changes
    assert diagram.drawn is diagram
    assert diagram.save(tmp_path / "l2.svg").read_bytes() == b"<svg/>"
    drawn = diagram.drawn
    assert drawn.notes[1:] == ("the layout engine could not handle 17 nodes; retried with max_nodes=8",
                               "the layout engine could not handle 8 nodes; retried with max_nodes=4")
    assert drawn.notes[0].startswith("17 nodes exceed max_nodes=4") and drawn.units == 5
    assert sources[-1] == drawn.source and all(note in drawn.source for note in drawn.notes)
    assert "max_nodes=8" not in sources[3] and "max_nodes=4" not in sources[4]
    assert sources[:3] == sources[3:] and diagram.source == sources[0]


def test_a_layout_that_never_fits_raises_after_a_few_retries(monkeypatch):
    calls = []

    def fake_render(source: str, fmt: str, **kwargs) -> bytes:
        calls.append(source)
        raise backend.LayoutTooLarge("out of stack")

    monkeypatch.setattr(backend, "render", fake_render)
    with pytest.raises(backend.LayoutTooLarge):
        to_dot(l2_mlp(), "J").render_bytes("svg")
    assert 2 <= len(calls) <= 8


# --- Jupyter and files ---------------------------------------------------------------------------
def test_graph_and_diagram_show_themselves_as_svg_in_jupyter():
    g = small_graph()
    for text in (g._repr_svg_(), to_dot(g)._repr_svg_()):
        svg = ET.fromstring(text)
        assert svg.tag == f"{SVG}svg" and texts(groups(svg, "node")["n5"])[0] == "J"


def test_a_failed_render_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "picture.svg"
    target.write_bytes(b"the old picture")

    def failing_render(*args, **kwargs) -> bytes:
        raise backend.RenderError("Graphviz failed")

    monkeypatch.setattr(backend, "render", failing_render)
    with pytest.raises(backend.RenderError):
        render(small_graph(), target)
    with pytest.raises(backend.RenderError):
        to_dot(small_graph()).save(target)
    assert target.read_bytes() == b"the old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["picture.svg"]


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".dot", b"digraph")])
def test_save_picks_the_format_from_the_extension(tmp_path, suffix, magic):
    path = render(small_graph(), tmp_path / f"small{suffix}", engine="wasm")
    assert Path(path).read_bytes().startswith(magic)


def test_depth_bands_never_draw_a_cycle_through_a_kept_node_or_a_shared_leaf():
    """Hypothesis found both: a band holding J's plumbing and what feeds a term (so the band
    fed the term and the term fed the band), and two pieces of a band each holding a leaf the
    other reads."""
    g = bp.Graph()
    p = g.param(np.ones(2), name="p")
    a = p + p
    terms = [bp.sum(a, name=f"T{k}") for k in range(3)]
    J = (terms[0] + terms[1] + terms[2]).named("J")
    result = plan(g, (), 1, keep={J.id, *(t.id for t in terms)})
    owner = {m: k for k, group in enumerate(result.groups) for m in group.members}
    plumbing = g.operands(J)[0].id  # T0 + T1
    assert owner[a.id] != owner[plumbing]

    g = bp.Graph()
    u, v = g.param(np.ones(2), name="u"), g.param(np.ones(2), name="v")
    a, b = bp.tanh(u), bp.tanh(v)  # u is first read on the left, v on the right
    left, right = a * v, b * u
    terms = [bp.sum(left, name="T0"), bp.sum(right, name="T1")]
    J = (terms[0] + terms[1]).named("J")
    result = plan(g, (), 5, keep={J.id, *(t.id for t in terms)})
    owner = {m: k for k, group in enumerate(result.groups) for m in group.members}
    assert owner[u.id] == owner[v.id] == owner[left.id] == owner[right.id]


def test_a_leaf_read_by_a_kept_node_joins_no_group_that_node_feeds():
    """A residual connection drawn from an intermediate root: X feeds Z (kept) and the later
    ``out = tanh(Z) + X``; grouping X with ``out`` would draw group -> Z -> group."""
    g = bp.Graph()
    X, W = g.input(np.ones((2, 2)), name="X"), g.param(np.ones((2, 2)), name="W")
    Z = (X @ W).named("Z")
    out = (bp.tanh(Z) + X).named("out")
    bp.sum(out)
    diagram = to_dot(g, "Z", max_nodes=3)
    _, edges = dot_statements(diagram.source)
    picture = nx.DiGraph((t, h) for t, h in edges if not t.startswith("legend"))
    assert nx.is_directed_acyclic_graph(picture)


def test_kept_nodes_along_a_chain_split_it_into_groups_and_the_note_says_so():
    """20 kept nodes along a 400-op chain (the last one its end): a group across one would be
    drawn both before and after it, so the drawing keeps the 20 pieces apart and goes over
    max_nodes=30."""
    g = bp.Graph()
    y = g.param(np.ones(2), name="x")
    for _ in range(400):
        y = bp.tanh(y)
    result = plan(g, (), 30, set(range(20, 401, 20)))
    assert len(result.groups) == 20 and result.units == 40
    assert [len(group.members) for group in result.groups] == [20] + [19] * 19
    assert result.notes[-1].endswith("(drawing 40 nodes)")
    assert plan(g, (), 30, {400, 10**6, -1}).units <= 30  # ids not in the graph are ignored


def test_gradvalue_says_what_it_leaves_out_and_how_to_see_it():
    diagram = to_dot(l2_mlp(), "J", show=("name", "gradvalue"))
    (note,) = [n for n in diagram.notes if n.startswith("gradvalue")]
    assert "larger gradients" in note and "bpgraph grads MODEL --json" in note
    assert not [n for n in to_dot(l2_mlp(), "J", show=("name", "grad")).notes if n.startswith("gradvalue")]
