"""The explorer page (bpgraph.render.explorer) without a browser: its structure, the data it embeds,
escaping, size, the command line.  tests/test_explorer_browser.py drives it in Chromium."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

import bpgraph as bp
from bpgraph import analysis as an
from bpgraph.cli import cli
from bpgraph.examples import l2_mlp
from bpgraph.graph import Graph
from bpgraph.render import backward_steps, explorer_html, to_dot
from bpgraph.render.explorer import NOT_COMPUTED

HOSTILE = {"param": "</script><script>alert(1)</script>", "input": "<img src=x onerror=alert(1)>",
           "op": '"]; x [label="pwn', "term": "T & <b>bold</b>\u2028", "root": "J' onload='alert(2)"}
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def seed_graph() -> Graph:
    g = l2_mlp()
    g.backward("J")
    return g


def hostile_graph(names: dict[str, str] = HOSTILE) -> Graph:
    """W @ X -> tanh; a sum of squares and an L2 term; their sum: every name hostile."""
    g = Graph()
    w = g.param(np.array([[0.5, -0.3], [0.2, 0.8]]), name=names["param"])
    x = g.input(np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 1.5]]), name=names["input"])
    z = (w @ x).named(names["op"])
    a = bp.tanh(z, name="A")
    t1 = bp.sum(a * a, name=names["term"])
    t2 = bp.l2_penalty([w], lambd=0.7, m=3, name="L2")
    (t1 + t2).named(names["root"])
    g.backward()
    return g


def big_graph(layers: int = 1000) -> Graph:
    """About 5,000 nodes: a deep tanh network, a scope per layer, a sum of squares plus L2."""
    rng = np.random.default_rng(0)
    g = Graph()
    a = g.input(rng.normal(size=(3, 4)), name="X")
    weights = []
    for layer in range(layers):
        with g.scope(f"layer{layer}"):
            w = g.param(rng.normal(scale=0.5, size=(3, 3)), name=f"W{layer}")
            a = bp.tanh(w @ a + 0.1, name=f"A{layer}")
        weights.append(w)
    (bp.sum(a * a, name="fit") + bp.l2_penalty(weights, lambd=0.1, m=4, name="L2")).named("J")
    return g


def page_data(page: str) -> dict:
    """The JSON the page embeds, parsed as the browser's JSON.parse would."""
    found = re.findall(r'<script type="application/json" id="bx-data">(.*?)</script>', page, re.DOTALL)
    assert len(found) == 1
    return json.loads(found[0])


class Tags(HTMLParser):
    """Every start tag and attribute name an HTML parser sees, and the scripts' texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)
            self._in_script = False


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


@pytest.fixture(scope="module")
def seed_page() -> str:
    return explorer_html(seed_graph(), "J")


def test_page_is_one_file_with_the_drawing_the_data_and_the_script(seed_page):
    assert seed_page.startswith("<!DOCTYPE html>")
    tags = parse(seed_page)
    names = [tag for tag, _ in tags.tags]
    assert names.count("svg") == 1 and names.count("script") == 2 and names.count("style") == 1
    assert not {"link", "img", "iframe", "object", "embed"} & set(names)  # nothing loaded from elsewhere
    # the CSP allows exactly the one script shipped with bpgraph
    script = [s for s in tags.scripts if "bpgraph explorer" in s]
    assert len(script) == 1
    digest = base64.b64encode(hashlib.sha256(script[0].encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in seed_page and "default-src 'none'" in seed_page
    assert "<title>bpgraph explorer: J</title>" in seed_page


def test_no_url_but_the_svg_namespaces(seed_page):
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", seed_page))
    assert urls <= NAMESPACES
    assert "<?xml" not in seed_page and "<!DOCTYPE svg" not in seed_page


def test_seed_page_is_small(seed_page):
    assert len(seed_page.encode("utf-8")) < 300_000


def test_embedded_data_round_trips_the_graph(seed_page):
    g = seed_graph()
    data = page_data(seed_page)
    assert [n["name"] for n in data["nodes"]] == g.names
    assert data["root"] == "J" and [t["name"] for t in data["terms"]] == ["cross_entropy", "L2"]
    nodes = {n["name"]: n for n in data["nodes"]}
    w1, a2 = nodes["W1"], nodes["A2"]
    assert (w1["kind"], w1["shape"], w1["op"]) == ("parameter", "20×2", "")
    assert [c["status"] for c in w1["terms"]] == ["nonzero", "nonzero"]
    assert a2["args"] == [g.id_of("Z2")] and a2["op"] == "relu" and a2["formula"] == "max(a, 0)"
    assert a2["terms"][1] == {"status": "no path", "text": an.no_path_reason(g, "L2", "A2")}
    assert a2["terms"][1]["text"] == "L2 does not depend on A2; its inputs are W1, W2, W3."
    assert a2["lines"] == ["∂J/∂A2 = W3ᵀ·∂J/∂Z3", "dA2 = W3ᵀ·dZ3"]
    assert w1["lines"][1] == "dW1 = 1/m·dZ1·Xᵀ + λ/m·W1"
    # data the root depends on has no computed gradient (as the drawing's dotted edges say), not "no path"
    assert nodes["X"]["grad"] == NOT_COMPUTED and nodes["X"]["terms"][0] == {"status": "not computed",
                                                                           "text": NOT_COMPUTED}
    assert nodes["X"]["terms"][1]["status"] == "no path"
    report = an.term_attribution(g, "J")
    assert w1["terms"][1]["text"] == an.reports.describe_value(report.row("W1").cell("L2").value)
    # the bits that trace paths: W1 feeds both terms; A2 only cross_entropy; J is fed by both
    assert (w1["feeds"], a2["feeds"], nodes["J"]["fedBy"]) == ([0, 1], [0], [0, 1])
    assert all(n["rootSide"] for n in data["nodes"])
    assert nodes["L2"]["terms"] == [
        {"status": "no path", "text": an.no_path_reason(g, "cross_entropy", "L2")},
        {"status": "seed", "text": "1"}]
    # the backward steps are the frames' steps
    steps = backward_steps(g, "J")
    assert [s["node"] for s in data["steps"]] == [s.node for s in steps]
    assert [s["users"] for s in data["steps"]] == [[v for _, v in s.delivered] for s in steps]
    assert data["groups"] == {} and all(n["unit"] == str(i) for i, n in enumerate(data["nodes"]))


def test_every_unit_is_a_titled_node_of_the_drawing_when_collapsed():
    g = seed_graph()
    page = explorer_html(g, "J", collapse=["layer1", "layer2"])
    data = page_data(page)
    titles = set(re.findall(r'<g id="[^"]*" class="node">\s*<title>([^<]*)</title>', page))
    units = {n["unit"] for n in data["nodes"]}
    assert units <= titles
    group = data["groups"][f"g{g.id_of('W1')}"]
    assert sorted(group["members"]) == sorted(g.id_of(n) for n in ("W1", "b1", "Z1", "A1"))
    assert group["title"] == "layer1" and data["nodes"][g.id_of("Z1")]["unit"] == f"g{g.id_of('W1')}"


def test_hostile_names_stay_data():
    page = explorer_html(hostile_graph(), None)
    plain = explorer_html(hostile_graph({key: key.upper() for key in HOSTILE}), None)
    assert parse(page).tags == parse(plain).tags  # no element or attribute added
    assert page.count("</script>") == 2 and "<img" not in page and "<b>" not in page
    assert "\u2028" not in page.split('id="bx-data">')[1]
    data = page_data(page)
    assert {n["name"] for n in data["nodes"]} >= set(HOSTILE.values())
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the SVG label, as text
    assert "<title>bpgraph explorer: J&#x27; onload=&#x27;alert(2)</title>" in page


def test_theme_passes_through_to_the_drawing_and_the_page():
    page = explorer_html(seed_graph(), "J", theme="dark")
    assert page_data(page)["theme"]["bg"] == "#1E1E1E"
    assert page_data(page)["terms"][0]["color"] == "#56B4E9"
    assert 'fill="#1e1e1e"' in page.lower()


def test_diagram_save_picks_html_from_the_extension(tmp_path):
    path = to_dot(seed_graph(), "J").save(tmp_path / "seed.html")
    assert path.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert page_data(path.read_text("utf-8"))["root"] == "J"


def test_cli_render_writes_the_explorer(tmp_path):
    target = tmp_path / "x.html"
    result = CliRunner().invoke(cli, ["render", "l2-mlp", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.output
    page = target.read_text("utf-8")
    assert [n["name"] for n in page_data(page)["nodes"]] == l2_mlp().names


def test_a_graph_over_the_node_budget_is_explored_collapsed():
    g = big_graph(layers=300)
    page = explorer_html(g, "J", max_nodes=100)
    data = page_data(page)
    assert len(data["nodes"]) == len(g) and data["groups"]
    units = {n["unit"] for n in data["nodes"]}
    assert len(units) <= 100
    members = sorted(i for group in data["groups"].values() for i in group["members"])
    assert members == sorted(i for i, n in enumerate(data["nodes"]) if n["unit"] in data["groups"])
    assert data["notes"] and "nodes exceed max_nodes" in data["notes"][0]
    titles = set(re.findall(r'<g id="[^"]*" class="node">\s*<title>([^<]*)</title>', page))
    assert units <= titles  # the page's plan is the drawing's
