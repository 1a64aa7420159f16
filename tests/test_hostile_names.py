"""Hostile node names through every output: each stays data, valid for its format, shown as typed.

A corpus of names that mean something to DOT, Graphviz labels, XML/SVG, HTML, JSON, GraphML,
terminals, Markdown and LaTeX is put, a group at a time, on the nodes of one small graph (the
parameter, the data, two ops, two cost terms and the root).  Every output is then checked for
two things:

* **nothing is injected**: the output has exactly the structure it has for the same graph with
  plain names (the same DOT statements, Graphviz nodes and edges, SVG elements and attributes,
  HTML elements and the one navigation script, GraphML elements, table rows);
* **the name is shown as typed**: it appears literally, or, where the format cannot hold a
  character, as the documented visible escape: control characters become ``\\xNN`` in drawings
  and GraphML, control pictures (``␊``, ``␛``) in text tables and ``[U+XXXX]`` in LaTeX.

The empty name is refused by :class:`~bpgraph.Graph` itself (see tests/test_graph.py); the
"empty first line" group has names that start with line breaks instead.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import bpgraph as bp
from bpgraph import analysis as an
from bpgraph.graph import Graph
from bpgraph.render import backend, frame_diagrams, to_dot, write_frames
from bpgraph.text import dot_label_text as label_text
from bpgraph.render.frames import frame_caption

try:
    from bpgraph import io as bpio
except ImportError:  # being written
    bpio = None

needs_dot = pytest.mark.skipif(not backend.have_dot(), reason="the Graphviz `dot` program is not installed")
needs_io = pytest.mark.skipif(bpio is None, reason="bpgraph.io is not available")
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="needs pdflatex (apt package texlive-latex-base)")

# --- the corpus ------------------------------------------------------------------------------------
#: Hostile names by theme; each group goes on one graph (at most len(ROLES) names a group).
GROUPS: dict[str, list[str]] = {
    "quotes": ['"', "'", '"]; x [label="pwn', "a\"b'c", '\\"]; evil [label="', "``quoted''"],
    "backslashes": ["\\", "\\N", "\\l", "trailing\\", "\\G\\E\\T\\H\\L", "\\\\n", "\\x41"],
    "whitespace": ["a\nb", "cr\rx", "crlf\r\nx", "tab\tx", "  spaced  ", "line\u2028sep", "end\n"],
    "controls": ["\x00", "\x01x", "esc\x1b[31mred", "del\x7f", "bell\x07", "vt\x0bff\x0c", "\x1f\x02"],
    "c1 controls": ["nel\x85", "csi\x9b31m", "\x80\x9f"],
    "markup": ["<", ">", "&", "&amp;", "&#60;b&#62;", "<b>bold</b>", "<script>alert(1)</script>"],
    "html": ["<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "</text>", "]]>", "<!--",
             "--></template><script>alert(2)</script>", '" onmouseover="alert(3)'],
    "dot": ["node", "digraph", "subgraph", "->", "{", "}", ";"],
    "dot2": ["edge", "graph", "strict", "[", "]", "=", "a -> b"],
    "unicode": ["\u200f", "\u202eevil", "zw\u200dj", "👩‍👩‍👧", "🦄", "e\u0301", "λ∂Σ"],
    "unicode2": ["\ufeffbom", "\ud800", "中文名", "\U0001d4b3", "x\u0300\u0301\u0302", "\u00a0nbsp"],
    "latex": ["$\\frac{a}{b}$", "%", "#", "_", "~", "^", "a--b"],
    "latex2": ["{open", "close}", "\\textbf{x}", "\\\\", "$", "|x|", "\\end{document}"],
    "size": ["x" * 500, "y" * 80 + "\n" + "z" * 80],
    "empty first line": ["\nlead", "\n\ntwo empty lines"],
}

#: The nodes the names go on, in order; a group with fewer names keeps the plain ones for the rest.
ROLES = ("param", "input", "op", "act", "term1", "term2", "root")
PLAIN = dict(zip(ROLES, ("W", "X", "Z", "A", "T1", "T2", "J")))

ALL_NAMES = [name for names in GROUPS.values() for name in names]


def test_the_corpus_is_large_distinct_and_fits_the_roles():
    assert len(ALL_NAMES) >= 30
    assert len(set(ALL_NAMES)) == len(ALL_NAMES)
    assert all(len(names) <= len(ROLES) for names in GROUPS.values())
    assert not set(ALL_NAMES) & set(PLAIN.values())


def roles_for(names: list[str]) -> dict[str, str]:
    return {role: names[k] if k < len(names) else PLAIN[role] for k, role in enumerate(ROLES)}


def build(names: dict[str, str]) -> Graph:
    """W (param) @ X (input) -> Z -> A = tanh(Z); T1 = Σ A·A; T2 = L2(W); J = T1 + T2."""
    g = Graph()
    w = g.param(np.array([[0.5, -0.3], [0.2, 0.8]]), name=names["param"])
    x = g.input(np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 1.5]]), name=names["input"])
    with g.scope("layer"):
        z = (w @ x).named(names["op"])
        a = bp.tanh(z)
        g.rename(a, names["act"])
    t1 = bp.sum(a * a, name=names["term1"])
    t2 = bp.l2_penalty([w], lambd=0.7, m=3, name=names["term2"])
    (t1 + t2).named(names["root"])
    g.backward()
    return g


def group_graph(group: str) -> tuple[Graph, dict[str, str]]:
    names = roles_for(GROUPS[group])
    return build(names), names


@pytest.fixture(scope="module")
def plain() -> Graph:
    return build(PLAIN)


group_params = pytest.mark.parametrize("group", list(GROUPS))

# --- what a name should look like ------------------------------------------------------------------
def shown(name: str) -> list[str]:
    """The label lines a drawing shows for a name (the rules of bpgraph.text.dot_label_text)."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    text = re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]",
                  lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                  text)
    return text.split("\n")


def one_line(name: str) -> str:
    """A name in a text table: C0 controls as control pictures, other invisible controls as [U+XXXX]."""
    out = []
    for ch in name:
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            out.append(chr(0x2400 + code) if code < 0x20 else "\u2421")
        elif 0x80 <= code < 0xA0 or 0xD800 <= code < 0xE000 or ch in "\u061c\u200e\u200f\u2028\u2029" \
                or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
            out.append(f"[U+{code:04X}]")
        else:
            out.append(ch)
    return "".join(out)


def unescape_label(text: str) -> list[str]:
    """The lines Graphviz displays for a plain (already DOT-unquoted) label.

    ``\\n``, ``\\l`` and ``\\r`` end a line, ``\\x`` is ``x`` for any other character, and
    entities are decoded last.
    """
    lines, current, k = [], [], 0
    while k < len(text):
        if text[k] == "\\" and k + 1 < len(text):
            if text[k + 1] in "nlr":
                lines.append("".join(current))
                current = []
            else:
                current.append(text[k + 1])
            k += 2
        else:
            current.append(text[k])
            k += 1
    lines.append("".join(current))
    return [html.unescape(line) for line in lines]


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_NODE = re.compile(r'^\s*(\d+) \[label=(' + _QUOTED.pattern + r'|[^\s\]]+)', re.MULTILINE)


def dot_node_labels(source: str) -> dict[int, list[str]]:
    """Node id -> displayed label lines, read back from DOT text (graph nodes only, not the legend).

    A label is a quoted string or a plain DOT ID; an HTML-like label (``<...>``) fails the test,
    since a name must never be read as markup.
    """
    out = {}
    for match in _NODE.finditer(source):
        token = match.group(2)
        assert not token.startswith("<"), f"an HTML-like label: {token}"
        text = re.sub(r'\\(")', r"\1", token[1:-1]) if token.startswith('"') else token
        out[int(match.group(1))] = unescape_label(text)
    return out


def skeleton(source: str) -> str:
    """DOT text with every quoted string emptied: the statements and attribute names that remain."""
    return _QUOTED.sub('""', source)


# --- DOT -------------------------------------------------------------------------------------------
SHOW_ALL = ("name", "op", "shape", "value", "grad", "gradvalue")


@group_params
def test_dot_source_has_the_same_statements_and_shows_each_name(group: str, plain: Graph):
    g, names = group_graph(group)
    for show in (("name", "shape"), SHOW_ALL):
        source = to_dot(g, show=show).source
        assert skeleton(source) == skeleton(to_dot(plain, show=show).source)
        labels = dot_node_labels(source)
        assert sorted(labels) == sorted(g.nodes)
        for node_id, attrs in g.nodes.items():
            lines = shown(attrs["name"])
            assert labels[node_id][:len(lines)] == lines, (attrs["name"], labels[node_id])
    labels = dot_node_labels(to_dot(g, show=("name",)).source)  # a bare name can look like <html>
    assert {i: labels[i] for i in g.nodes} == {i: shown(a["name"]) for i, a in g.nodes.items()}
    caption = to_dot(g).source.split("\n")[1]
    for role in ("term1", "term2"):
        assert label_text(names[role]).replace('"', '\\"') in caption


def graphviz_json(source: str) -> dict:
    run = subprocess.run(["dot", "-Tjson"], input=source.encode("utf-8"), capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
    return json.loads(run.stdout)


def graphviz_nodes(data: dict) -> dict[str, list[str]]:
    """Graphviz's own reading of the DOT text: node name -> displayed label lines."""
    return {o["name"]: unescape_label(o.get("label", "")) for o in data["objects"] if "nodes" not in o}


@needs_dot
@pytest.mark.needs_dot
@group_params
def test_graphviz_reads_the_same_nodes_and_edges_and_each_label(group: str, plain: Graph):
    g, _ = group_graph(group)
    data, base = graphviz_json(to_dot(g).source), graphviz_json(to_dot(plain).source)
    nodes = graphviz_nodes(data)
    assert sorted(nodes) == sorted(graphviz_nodes(base))  # no node injected, none lost
    assert len(data["edges"]) == len(base["edges"])
    assert [o["name"] for o in data["objects"] if "nodes" in o] == [o["name"] for o in base["objects"] if "nodes" in o]
    for node_id, attrs in g.nodes.items():
        lines = shown(attrs["name"])
        assert nodes[str(node_id)][:len(lines)] == lines, attrs["name"]


# --- SVG -------------------------------------------------------------------------------------------
SVG = "{http://www.w3.org/2000/svg}"
SVG_TAGS = {"svg", "g", "title", "polygon", "path", "ellipse", "polyline", "text"}


def svg_tree(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def svg_structure(root: ET.Element) -> Counter:
    """(tag, attribute names) of every element except text lines (a newline in a name adds one)."""
    return Counter((el.tag, tuple(sorted(el.attrib))) for el in root.iter() if el.tag != SVG + "text")


def node_texts(root: ET.Element, node_id: int) -> list[str]:
    """The non-blank text lines drawn in node ``n<id>``, with Graphviz's no-break spaces undone."""
    group = next(el for el in root.iter(SVG + "g") if el.get("id") == f"n{node_id}")
    texts = [(t.text or "").replace("\xa0", " ") for t in group.iter(SVG + "text")]
    return [t for t in texts if t.strip()]


def check_svg(svg: bytes, plain_svg: bytes, g: Graph) -> None:
    root, base = svg_tree(svg), svg_tree(plain_svg)
    assert svg_structure(root) == svg_structure(base)
    tags = {el.tag.removeprefix(SVG) for el in root.iter()}
    assert tags <= SVG_TAGS, tags - SVG_TAGS
    for el in root.iter():
        assert not [a for a in el.attrib if a.lower().startswith("on") or "href" in a.lower()], el.attrib
        assert set(el.attrib) <= {a for b in base.iter(el.tag) for a in b.attrib}
    for node_id, attrs in g.nodes.items():
        lines = [line.replace("\xa0", " ") for line in shown(attrs["name"]) if line.strip()]
        assert node_texts(root, node_id)[:len(lines)] == lines, attrs["name"]


@needs_dot
@pytest.mark.needs_dot
@group_params
def test_svg_from_system_dot_gains_no_element_and_shows_each_name(group: str, plain: Graph):
    g, _ = group_graph(group)
    check_svg(to_dot(g).render_bytes("svg", engine="system"),
              to_dot(plain).render_bytes("svg", engine="system"), g)


@group_params
def test_svg_from_embedded_graphviz_gains_no_element_and_shows_each_name(group: str, plain: Graph):
    plain_svg = to_dot(plain).render_bytes("svg", engine="wasm")  # also: never the first wasm render
    g, _ = group_graph(group)
    check_svg(to_dot(g).render_bytes("svg", engine="wasm"), plain_svg, g)


def test_embedded_graphviz_draws_labels_that_start_with_an_empty_line(plain: Graph):
    g, _ = group_graph("empty first line")
    plain_svg = to_dot(plain).render_bytes("svg", engine="wasm")
    for _ in range(12):  # the trap depends on the instance's state: alternate until it shows
        to_dot(plain).render_bytes("svg", engine="wasm")
        check_svg(to_dot(g).render_bytes("svg", engine="wasm"), plain_svg, g)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.mark.parametrize("engine", [pytest.param("system", marks=[needs_dot, pytest.mark.needs_dot]), "wasm"])
@pytest.mark.parametrize("group", ["html", "unicode"])
def test_png_renders(group: str, engine: str):
    g, _ = group_graph(group)
    width, height = png_size(to_dot(g).render_bytes("png", engine=engine, dpi=50))
    assert width > 50 and height > 50


# --- JSON and GraphML ------------------------------------------------------------------------------
@needs_io
@group_params
def test_json_is_strict_and_names_round_trip_exactly(group: str, tmp_path: Path):
    g, _ = group_graph(group)
    path = tmp_path / "graph.json"
    bpio.save_json(g, path, grads=True)
    raw = path.read_bytes()
    data = json.loads(raw.decode("utf-8"), parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    assert [n["name"] for n in data["nodes"]] == g.names
    assert bpio.load_json(path).names == g.names
    assert bpio.from_dict(bpio.to_dict(g)).names == g.names


_GRAPHML_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def unescape_graphml(text: str) -> str:
    """Undo bpgraph.io's GraphML escapes: ``\\\\`` is a backslash, ``\\xNN``/``\\uNNNN`` a character."""
    return _GRAPHML_ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), text)


@needs_io
@group_params
def test_graphml_is_valid_xml_and_names_round_trip(group: str, tmp_path: Path):
    g, _ = group_graph(group)
    path = tmp_path / "graph.graphml"
    bpio.save_graphml(g, path, values=True, grads=True)
    tree = ET.parse(path)
    tags = {el.tag.split("}")[-1] for el in tree.iter()}
    assert tags <= {"graphml", "key", "graph", "node", "edge", "data"}, tags
    read = nx.read_graphml(path)
    assert read.number_of_nodes() == len(g) and read.number_of_edges() == g.nx.number_of_edges()
    by_id = {int(node): attrs for node, attrs in read.nodes(data=True)}
    assert [unescape_graphml(by_id[i]["name"]) for i in sorted(by_id)] == g.names


# --- HTML (backward-pass frames) -------------------------------------------------------------------
#: What HTML must not hold raw: C0 controls but tab and newline (CR is turned into LF), DEL, C1.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class PageParser(HTMLParser):
    """Every element and attribute of a page, and the text of its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter = Counter()
        self.attributes: set[str] = set()
        self.captions: list[str] = []
        self.scripts: list[str] = []
        self.title: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attributes |= {name for name, _ in attrs}
        self.captions += [value for name, value in attrs if name == "data-caption"]
        self._in = tag if tag in ("script", "title") else None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "title" and not self.title:
            self.title.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def read_page(folder: Path) -> PageParser:
    parser = PageParser()
    parser.feed((folder / "slides.html").read_text(encoding="utf-8"))
    parser.close()
    return parser


@pytest.fixture(scope="module")
def plain_page(plain: Graph, tmp_path_factory: pytest.TempPathFactory) -> PageParser:
    folder = tmp_path_factory.mktemp("plain_frames")
    write_frames(plain, folder)
    return read_page(folder)


@group_params
def test_frames_page_runs_only_its_own_script_and_shows_each_name(group: str, plain_page: PageParser,
                                                                 tmp_path: Path):
    g, names = group_graph(group)
    files = write_frames(g, tmp_path)
    page = read_page(tmp_path)
    assert page.tags["script"] == 1 and page.scripts == plain_page.scripts
    assert page.tags["template"] == len(files) - 1
    assert set(page.tags) == set(plain_page.tags)
    assert page.attributes == plain_page.attributes
    assert not [a for a in page.attributes if a.startswith("on")]
    raw = (tmp_path / "slides.html").read_bytes().decode("utf-8")  # no newline translation
    assert not re.findall(RAW_CONTROL, raw), "control characters in slides.html"
    expected = [frame_caption(g, d.root, d.options["frame"])[0] for d in frame_diagrams(g)]
    assert len(page.captions) == len(expected)
    for caption, wanted in zip([*page.captions, *page.title],
                               [*expected, f"bpgraph: backward pass of {names['root']}"]):
        assert caption == one_line(wanted)  # exactly as typed, but controls made visible
    assert any(names["term1"] in c for c in expected) and any(names["param"] in c for c in expected)
    for svg_file in files[:-1]:
        svg_tree(svg_file.read_bytes())


# --- text tables and explanations ------------------------------------------------------------------
def check_text(text: str) -> None:
    """No character that breaks a line, moves the cursor or reorders the line; encodable as UTF-8."""
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]",
                         text), text
    text.encode("utf-8")  # no lone surrogate


def table_body(text: str, rows: int, title_lines: int = 1) -> list[str]:
    """The lines of a report's table rows; asserts exactly one line per row (after title, header, rule)."""
    check_text(text)
    lines = text.split("\n")
    assert len(lines) == title_lines + 2 + rows, text
    return lines[title_lines + 2:]


@group_params
def test_term_table_keeps_one_line_per_row_and_shows_each_name(group: str):
    g, names = group_graph(group)
    report = an.term_attribution(g)
    text = str(report)
    body = table_body(text, len(report.rows))
    for line, row in zip(body, report.rows):
        assert line.startswith(one_line(row.name) + " "), (row.name, line)
    header = text.split("\n")[1]
    assert one_line(names["term1"]) in header and one_line(names["term2"]) in header
    assert f"∂{one_line(names['root'])}/∂node" in text.split("\n")[0]


@group_params
def test_path_table_and_text_explanation_show_each_name_on_its_line(group: str):
    g, names = group_graph(group)
    report = an.path_attribution(g, names["root"], names["param"])
    body = table_body(str(report), len(report.paths))
    for line, path in zip(body, report.paths):
        assert line.endswith(" -> ".join(one_line(n) for n in path.nodes)), line
    text = an.explain(g, names["root"], names["param"])
    check_text(text.replace("\n", " "))
    lines = text.split("\n")
    steps = an.backward_steps(g, names["root"], g.between(names["root"], names["param"]))
    assert len(lines) == report.count + 2 + 3 * report.count + 1 + sum(1 + len(s.notes) for s in steps)
    assert lines[0].startswith(f"∂{one_line(names['root'])}/∂{one_line(names['param'])} = ")
    reason = an.explain(g, names["term2"], names["input"])
    assert "\n" not in reason and one_line(names["input"]) in reason


@group_params
def test_markdown_table_keeps_one_row_per_path(group: str):
    g, names = group_graph(group)
    md = an.explain(g, names["root"], names["param"], format="markdown")
    check_text(md.replace("\n", " "))
    rows = [line for line in md.split("\n") if re.match(r"\| \d+ \|", line)]
    assert len(rows) == an.count_paths(g, names["root"], names["param"])
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 5, row  # no unescaped | from a name
    shows = re.sub(r"\\(.)", r"\1", md)  # what Markdown displays: a backslash shows the next character
    for name in (names["root"], names["param"]):
        assert one_line(name) in shows, name
    assert not re.search(r"(?<!\\)&[A-Za-z][A-Za-z0-9]*;", md)  # &amp; in a name stays literal


@group_params
def test_diff_and_comparison_tables_keep_one_line_per_row(group: str):
    g, names = group_graph(group)
    other = build({**names})
    diff = an.diff_grads(g, other)
    table_body(str(diff), len(diff.rows))
    grads = {names["param"]: 2 * g[names["param"]].grad, names["act"]: g[names["act"]].grad}
    comparison = an.compare_grads(g, None, grads, convention="exact")
    assert comparison.first_wrong == [names["param"]]
    text = str(comparison)
    check_text(text.replace("\n", " "))
    lines = text.split("\n")
    assert lines[3 + len(comparison.rows)] == ""  # title, header, rule, one line per row, then a gap
    param = one_line(names["param"])
    assert f"the error enters at {param} ({param})" in text


# --- LaTeX -----------------------------------------------------------------------------------------
def compile_latex(folder: Path, parts: list[str]) -> str:
    body = "".join(f"\\[\n{p}\n\\]\n" for p in parts)
    (folder / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                                    + body + "\\end{document}\n", encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=folder, capture_output=True, text=True, errors="replace", timeout=120)
    log = (folder / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert run.returncode == 0, log[-3000:]
    assert (folder / "doc.pdf").stat().st_size > 1000
    return log


TEX_ESCAPES = re.compile(r"\\(textbackslash|textasciicircum|textasciitilde|textless|textgreater|textbar|"
                         r"textquotesingle|textasciigrave)\{\}|\\texttt\{\\char34\}|\\[{}%$&#_]|\$\\\w+\$|-\{\}")


#: What each LaTeX escape shows, decoded here independently of bpgraph's tex_text.
TEX_SHOWS = {r"\textbackslash{}": "\\", r"\textasciicircum{}": "^", r"\textasciitilde{}": "~",
             r"\textless{}": "<", r"\textgreater{}": ">", r"\textbar{}": "|", r"\textquotesingle{}": "'",
             r"\textasciigrave{}": "`", r"\texttt{\char34}": '"', "-{}": "-"}
TEX_TOKEN = re.compile("|".join(map(re.escape, TEX_SHOWS)) + r"|\\([{}%$&#_])|\$\\(\w+)\$")
GREEK = "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ∂"


def tex_shows(tex: str) -> str:
    """The characters a LaTeX text shows once its escapes are typeset."""
    def back(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(1)
        if match.group(2):
            word = match.group(2)
            if word == "partial":
                return "∂"
            case = "CAPITAL" if word[0].isupper() else "SMALL"
            return unicodedata.lookup(f"GREEK {case} LETTER {word.upper().replace('LAMBDA', 'LAMDA')}")
        return TEX_SHOWS[match.group(0)]
    return TEX_TOKEN.sub(back, tex)


def tex_visible(name: str) -> str:
    """A name as LaTeX shows it: printable ASCII and Greek as typed, spaces as spaces, the rest [U+XXXX]."""
    return "".join(ch if 32 <= ord(ch) <= 126 or ch in GREEK
                   else " " if unicodedata.category(ch) == "Zs" else f"[U+{ord(ch):04X}]" for ch in name)


@group_params
def test_latex_escapes_every_name(group: str):
    g, names = group_graph(group)
    for of, wrt in ((names["root"], names["param"]), (names["term2"], names["input"])):
        tex = an.explain(g, of, wrt, format="latex")
        for name in (of, wrt):
            escaped = an.tex_text(name)
            assert escaped in tex
            inner = TEX_ESCAPES.sub("", escaped[len("\\text{"):-1])
            assert not set(inner) & set("\\{}$&#^_%~'\"`\n\r"), (name, inner)
            assert "--" not in inner
            assert tex_shows(escaped) == r"\text{" + tex_visible(name) + "}", name  # shown as typed


@needs_pdflatex
def test_latex_with_every_hostile_name_compiles(tmp_path: Path):
    parts = []
    for group in GROUPS:
        g, names = group_graph(group)
        parts += [an.explain(g, names["root"], names["param"], format="latex"),
                  an.explain(g, names["term2"], names["input"], format="latex")]
    log = compile_latex(tmp_path, parts)
    assert "Missing character" not in log


# --- the command line (its tables come from analysis; some commands print names themselves) --------

def cli_output(tmp_path: Path, *args: str) -> str:
    from click.testing import CliRunner

    from bpgraph.cli import cli

    g, names = group_graph("controls") if args[0] == "controls" else group_graph("whitespace")
    model = tmp_path / "graph.json"
    bpio.save_json(g, model)
    resolved = [names.get(a, a) for a in args[1:]]  # role names become the hostile names
    result = CliRunner().invoke(cli, [resolved[0], str(model), *resolved[1:]])
    assert result.exit_code == 0, result.output
    check_text(result.output.replace("\n", " "))
    return result.output


@needs_io
@pytest.mark.parametrize("group", ["whitespace", "controls"])
def test_cli_term_table_and_explanation_keep_their_lines(group: str, tmp_path: Path):
    g, names = group_graph(group)
    grads = cli_output(tmp_path, group, "grads", "--by-term").rstrip("\n").split("\n")
    assert len(grads) == 1 + 2 + len(an.term_attribution(g).rows)
    text = cli_output(tmp_path, group, "explain", "--of", "root", "--wrt", "param")
    assert text.rstrip("\n") == an.explain(g, names["root"], names["param"])


@needs_io
@pytest.mark.parametrize("group", ["whitespace", "controls"])
def test_cli_paths_and_check_print_one_line_per_path_and_parameter(group: str, tmp_path: Path):
    g, names = group_graph(group)
    listed = cli_output(tmp_path, group, "paths", "--of", "root", "--wrt", "param").rstrip("\n").split("\n")
    assert listed[:-1] == [" -> ".join(one_line(n) for n in p) for p in an.paths(g, names["root"], names["param"])]
    checked = cli_output(tmp_path, group, "check").rstrip("\n").split("\n")
    assert len(checked) == 1 + 1 + 1 and one_line(names["param"]) in checked[1]
