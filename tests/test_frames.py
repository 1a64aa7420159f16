"""Backward-pass frames: one SVG per step and a self-contained page that steps through them."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import bpgraph as bp
from bpgraph import ops
from bpgraph.examples import l2_mlp
from bpgraph.render import RenderOptionError, backend, backward_steps, frame_diagrams, write_frames

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = ('"]; x [label="pwn', "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a\\lb")


def small_graph() -> bp.Graph:
    """J = fit + reg with fit = w·x + b and reg = w·w: five nodes get a gradient (x does not)."""
    g = bp.Graph()
    x = g.input(np.array([[3.0]]), name="x")
    w = g.param(np.array([[2.0]]), name="w")
    b = g.param(np.array([[0.5]]), name="b")
    fit = ops.linear(w, x, b, name="fit")
    reg = (w * w).named("reg")
    (fit + reg).named("J")
    return g


def hostile_graph() -> bp.Graph:
    """Parameters with names that try to escape DOT, SVG and HTML, summed into J."""
    g = bp.Graph()
    leaves = [g.param(np.array(float(k)), name=name) for k, name in enumerate(HOSTILE)]
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    total.named("J")
    return g


class Page(HTMLParser):
    """Every start tag of an HTML page with its attributes, and the text of its scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def attrs_of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def node_positions(svg: str) -> dict[str, tuple[str, str]]:
    """Where each graph node's first text line sits: ``n<id>`` -> (x, y)."""
    root = ET.fromstring(svg)
    positions = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node" and re.fullmatch(r"n\d+", g.get("id") or ""):
            text = g.find(f"{SVG}text")
            positions[g.get("id")] = (text.get("x"), text.get("y"))
    return positions


# --- the steps ----------------------------------------------------------------------------------
def test_backward_steps_start_at_the_root_and_visit_every_node_with_a_gradient():
    g = small_graph()
    steps = backward_steps(g)
    assert [g.name_of(s.node) for s in steps] == ["J", "reg", "fit", "b", "w"]
    assert [s.delivered for s in steps] == [(), ((4, 5),), ((3, 5),), ((2, 3),), ((1, 3), (1, 4))]


def test_the_demo_has_one_frame_per_node_that_gets_a_gradient():
    g = l2_mlp()
    with_gradient = g.backward("J")  # params and the ops computed from them; not X or Y
    diagrams = frame_diagrams(g, "J")
    assert len(diagrams) == len(with_gradient) == 15
    assert [d.options["frame"].step for d in diagrams] == list(range(1, 16))
    assert g.name_of(diagrams[0].options["frame"].current) == "J"


def test_too_many_steps_is_a_clear_error():
    with pytest.raises(RenderOptionError, match="has 15 steps, more than max_frames=10"):
        frame_diagrams(l2_mlp(), "J", max_frames=10)


# --- the files ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("frames")
    return folder, write_frames(small_graph(), folder)


def test_write_frames_writes_numbered_svgs_and_an_index(frames_folder):
    folder, written = frames_folder
    names = [f"frame_{k:03d}.svg" for k in range(1, 6)]
    assert [p.name for p in written] == names + ["slides.html"]
    assert sorted(p.name for p in folder.iterdir()) == names + ["slides.html"]
    for k, name in enumerate(names, 1):
        root = ET.fromstring((folder / name).read_bytes())
        caption = "".join(next(root.iter(f"{SVG}text")).itertext())
        assert caption.startswith(f"step {k} of 5: ")


def test_every_frame_puts_every_node_at_the_same_spot(frames_folder):
    folder, written = frames_folder
    positions = [node_positions(p.read_text("utf-8")) for p in written[:-1]]
    assert len(positions[0]) == 6 and all(p == positions[0] for p in positions)


def test_the_index_is_self_contained_and_steps_with_the_arrow_keys(frames_folder):
    folder, _ = frames_folder
    text = (folder / "slides.html").read_text("utf-8")
    page = Page(text)
    assert not re.search(r"https?://", text)
    assert [attrs for attrs in page.attrs_of("script") if "src" in attrs] == []
    assert page.attrs_of("link") == [] and page.attrs_of("img") == [] and page.attrs_of("iframe") == []
    assert len(page.attrs_of("template")) == 5 and len(page.attrs_of("svg")) == 5
    assert all((folder / a["href"]).is_file() for a in page.attrs_of("a"))
    script = "".join(page.scripts)
    assert all(key in script for key in ('"keydown"', '"ArrowRight"', '"ArrowLeft"', '"Home"', '"End"'))


def test_stale_frames_from_an_earlier_run_are_removed(tmp_path):
    for name in ("frame_0001.svg", "frame_009.svg", "notes.txt"):
        (tmp_path / name).write_text("old")
    write_frames(small_graph(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame_001.svg", "frame_002.svg", "frame_003.svg", "frame_004.svg", "frame_005.svg",
        "notes.txt", "slides.html"]


def test_a_failed_frame_render_changes_nothing(tmp_path, monkeypatch):
    (tmp_path / "slides.html").write_text("the old page")
    calls = []

    def failing_on_the_third(source: str, fmt: str, **kwargs) -> bytes:
        calls.append(fmt)
        if len(calls) == 3:
            raise backend.RenderError("Graphviz failed")
        return b"<svg/>"

    monkeypatch.setattr(backend, "render", failing_on_the_third)
    with pytest.raises(backend.RenderError):
        write_frames(small_graph(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["slides.html"]
    assert (tmp_path / "slides.html").read_text() == "the old page"


def test_hostile_names_are_escaped_in_the_frames_page(tmp_path):
    write_frames(hostile_graph(), tmp_path)
    text = (tmp_path / "slides.html").read_text("utf-8")
    page = Page(text)
    assert len(page.attrs_of("script")) == 1 and page.attrs_of("img") == []
    assert not [(tag, a) for tag, attrs in page.tags for a in attrs if a.lower().startswith("on")]
    captions = [attrs["data-caption"] for attrs in page.attrs_of("template")]
    assert f"step 2 of {len(captions)}: ∂J/∂add_5 is complete, delivered by J" in captions  # the formula is in the frame
    assert any(f"∂J/∂{HOSTILE[1]} is complete" in c for c in captions)
    assert any(f"∂J/∂{HOSTILE[0]} is complete" in c for c in captions)
    for name in HOSTILE:
        assert any(name in "".join(t.itertext()) for t in ET.fromstring(
            (tmp_path / "frame_001.svg").read_bytes()).iter(f"{SVG}text"))


# --- frames for teaching: 16:9, a legend, the formula, PNG, the deck ---------------------------------
def svg_aspect(svg: bytes) -> float:
    box = [float(v) for v in ET.fromstring(svg).get("viewBox").split()]
    return box[2] / box[3]


def test_every_frame_is_16_9_with_its_legend_and_the_formula_of_the_node_completed(frames_folder):
    folder, written = frames_folder
    for path in written[:-1]:
        svg = path.read_bytes()
        assert abs(svg_aspect(svg) - 16 / 9) < 0.01
        legend = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("id") == "legend"]
        assert len(legend) == 1
        text = ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]
        assert {"just delivered", "already delivered", "still pending"} <= set(text)
    captions = ["".join(t.itertext()) for t in ET.fromstring(written[2].read_bytes()).iter(f"{SVG}text")][:2]
    assert captions == ["step 3 of 5: ∂J/∂fit is complete, delivered by J", "∂J/∂fit = 1"]


def test_the_current_node_takes_the_accent_which_is_no_terms_colour():
    from bpgraph.render import THEMES

    for theme in THEMES.values():
        looks = {theme.term_look(k)[0].lower() for k in range(18)}
        assert theme.accent.lower() not in looks
    diagram = frame_diagrams(l2_mlp(), "J")[4]
    current = diagram.options["frame"].current
    line = next(line for line in diagram.source.splitlines() if line.lstrip("\t").startswith(f"{current} ["))
    assert f'fillcolor="{THEMES["light"].accent}"' in line


def test_frames_as_png_and_a_deck_that_lists_every_frame_with_no_external_reference(tmp_path):
    written = write_frames(small_graph(), tmp_path, fmt="png", theme="slides")
    names = [f"frame_{k:03d}.png" for k in range(1, 6)]
    assert [p.name for p in written] == names + ["slides.html"]
    sizes = [struct.unpack(">II", (tmp_path / name).read_bytes()[16:24]) for name in names]
    assert all(abs(w - 1920) <= 2 and abs(h - 1080) <= 2 for w, h in sizes), sizes  # a full-HD slide each
    text = (tmp_path / "slides.html").read_text("utf-8")
    page = Page(text)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?://""", text)
    assert [a["href"] for a in page.attrs_of("a")] == names
    assert len(page.attrs_of("template")) == 5
    script = "".join(page.scripts)
    assert "requestFullscreen" in script and '"ArrowRight"' in script


def test_data_labels_get_room_inside_the_cylinder():
    diagram = frame_diagrams(l2_mlp(), "J")[0]
    x_line = next(line for line in diagram.source.splitlines() if line.startswith("\t0 ["))
    attrs = dict(re.findall(r'(\w+)="?([^" ]+)"?', x_line))
    assert attrs["shape"] == "cylinder" and float(attrs["height"]) >= 0.6


def test_write_frames_takes_the_frame_limit_its_message_names(tmp_path):
    g = l2_mlp()
    with pytest.raises(RenderOptionError, match="more than max_frames=3"):
        write_frames(g, tmp_path / "few", "J", max_frames=3)
    assert not (tmp_path / "few").exists()
    assert len(write_frames(g, tmp_path / "all", "J", max_frames=15, engine="wasm")) == 16
