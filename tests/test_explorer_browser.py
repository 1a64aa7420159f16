"""The explorer page in headless Chromium (playwright, the system's browser; never downloaded).

Each page is opened from disk with every request other than the page itself failed and recorded:
a test fails if anything else was asked for, a dialog opened, a script error or a navigation
happened.  Screenshots at 1280×720 go to a temporary folder and are copied to /tmp/explorer-shots.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import bpgraph as bp
from bpgraph import analysis as an
from bpgraph.graph import Graph
from bpgraph.render import backward_steps, explorer_html
from test_explorer import HOSTILE, big_graph, hostile_graph, page_data, seed_graph

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("no chromium browser (apt-get install chromium)", allow_module_level=True)
#: Where screenshots are also copied for a person to look at, when set (they always go to the test's tmp_path).
SHOTS = os.environ.get("BPGRAPH_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The pages the tests open, written once: the seed network's (light and dark) and a hostile one's."""
    folder = tmp_path_factory.mktemp("explorer")
    seed = seed_graph()
    files = {"seed": explorer_html(seed, "J"), "dark": explorer_html(seed, "J", theme="dark"),
             "hostile": explorer_html(hostile_graph(), None)}
    for name, text in files.items():
        (folder / f"{name}.html").write_text(text, "utf-8")
    return folder


class Page:
    """A page opened from disk, with what it asked for and did recorded."""

    def __init__(self, browser, path: Path, viewport=(1280, 720)) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.navigations: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("framenavigated", lambda f: self.navigations.append(f.url))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]")
        self.data = page_data(path.read_text("utf-8"))

    def _route(self, route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def close(self) -> None:
        self.context.close()
        assert self.requests == [self.url], "the page asked for more than itself"
        assert self.dialogs == [] and self.errors == []
        assert self.navigations == [self.url]

    def id_of(self, name: str) -> int:
        return [n["name"] for n in self.data["nodes"]].index(name)

    def unit(self, name: str):
        return self.page.locator(f'g.node[data-unit="{self.data["nodes"][self.id_of(name)]["unit"]}"]')

    def edges(self, cls: str) -> set[str]:
        return set(self.page.eval_on_selector_all(f"g.edge.{cls}", "els => els.map(e => e.dataset.edge)"))

    def units(self, cls: str) -> list[str]:
        return self.page.eval_on_selector_all(f"g.node.{cls}", "els => els.map(e => e.dataset.unit)")

    def shot(self, folder: Path, name: str) -> None:
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path))
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(SHOTS) / path.name)


@pytest.fixture
def opened(browser, pages):
    opened_pages = []

    def open_page(name: str, **kwargs) -> Page:
        page = Page(browser, pages / f"{name}.html", **kwargs)
        opened_pages.append(page)
        return page

    yield open_page
    for page in opened_pages:
        page.close()


def edge_keys(graph, names_paths) -> set[str]:
    return {f"{graph.id_of(a)}->{graph.id_of(b)}" for path in names_paths for a, b in zip(path, path[1:])}


def test_clicking_w1_lights_exactly_its_two_paths(opened, tmp_path):
    g, view = seed_graph(), opened("seed")
    view.shot(tmp_path, "1-seed")
    view.unit("W1").click()
    paths = an.paths(g, "J", "W1")
    assert len(paths) == 2 and {p[-2] for p in paths} == {"cross_entropy", "L2"}
    assert view.edges("bx-lit") == edge_keys(g, paths)
    lit_units = set(map(str, (g.id_of(n) for p in paths for n in p)))
    assert set(view.units("bx-sel")) == {str(g.id_of("W1"))}
    dimmed = set(view.units("bx-dim"))
    assert not dimmed & lit_units and dimmed == {str(i) for i in range(len(g))} - lit_units
    assert view.page.locator("#bx-panel h2").inner_text() == "W1"
    view.shot(tmp_path, "2-seed-W1")


def test_clicking_a2_says_l2_has_no_path(opened, tmp_path):
    view = opened("seed")
    view.unit("A2").click()
    panel = view.page.locator("#bx-panel").inner_text()
    assert "L2: no path" in panel and "L2 does not depend on A2; its inputs are W1, W2, W3." in panel
    assert "dA2 = W3ᵀ·dZ3" in panel and "cross_entropy: shape (3, 211), norm" in panel
    view.shot(tmp_path, "3-seed-A2")
    view.unit("J").click()  # the root is made of its terms: no per-term "no path" lines for it
    panel = view.page.locator("#bx-panel").inner_text()
    assert "J\n" in panel and "no path" not in panel and "Gradient per cost term".upper() not in panel.upper()


def test_the_l2_toggle_hides_the_cross_entropy_flow(opened, tmp_path):
    g, view = seed_graph(), opened("seed")
    carried = {f"{u}->{v}": terms for (u, v), terms in an.term_edges(g, "J").items()}
    view.page.get_by_label("L2 only").check()
    off = view.edges("bx-off")
    assert {e for e, terms in carried.items() if "L2" not in terms} <= off
    assert not off & {e for e, terms in carried.items() if "L2" in terms}
    view.shot(tmp_path, "4-seed-L2-only")
    view.unit("W1").click()  # W1's paths, L2's only
    assert view.edges("bx-lit") == edge_keys(g, [["W1", "L2", "J"]])
    view.page.get_by_label("cross_entropy only").check()
    assert view.edges("bx-lit") == edge_keys(g, [p for p in an.paths(g, "J", "W1") if "L2" not in p])
    view.page.get_by_label("all (2)").check()
    assert view.edges("bx-lit") == edge_keys(g, an.paths(g, "J", "W1"))


def test_the_term_toggles_work_from_the_keyboard(opened):
    view = opened("seed")
    view.page.get_by_label("all (2)").focus()
    view.page.keyboard.press("ArrowRight")  # the radio group's own key: the next toggle, not a backward step
    assert view.page.get_by_label("cross_entropy only").is_checked()
    view.page.keyboard.press("ArrowRight")
    assert view.page.get_by_label("L2 only").is_checked()
    assert view.units("bx-done") == [] and view.units("bx-current") == []


def test_arrow_keys_light_the_nodes_in_backward_order(opened, tmp_path):
    g, view = seed_graph(), opened("seed")
    steps = backward_steps(g, "J")
    for k, step in enumerate(steps, 1):
        view.page.keyboard.press("ArrowRight")
        assert view.units("bx-current") == [str(step.node)]
        assert set(view.units("bx-done")) == {str(s.node) for s in steps[:k]}
        assert view.edges("bx-delivered") == {f"{u}->{v}" for u, v in step.delivered}
        status = view.page.locator("#bx-status").inner_text()
        assert status.startswith(f"step {k} of {len(steps)}: ")
        if k == 5:
            view.shot(tmp_path, "5-seed-step5")
    view.page.keyboard.press("ArrowLeft")
    assert view.units("bx-current") == [str(steps[-2].node)]
    view.page.keyboard.press("Escape")
    assert view.units("bx-done") == [] and view.edges("bx-dim") == set()


def test_search_tab_and_enter_select_a_node(opened):
    g, view = seed_graph(), opened("seed")
    view.page.fill("#bx-search", "b2")
    view.page.press("#bx-search", "Enter")
    assert view.units("bx-sel") == [str(g.id_of("b2"))]
    assert view.page.locator("#bx-panel h2").inner_text() == "b2"
    view.page.locator("#bx-panel").get_by_role("button", name="Z2").click()  # an operand's user link
    assert view.units("bx-sel") == [str(g.id_of("Z2"))]
    view.unit("X").focus()
    view.page.keyboard.press("Tab")  # the next node in the drawing's order, then Enter
    focused = view.page.evaluate("document.activeElement.dataset.unit")
    view.page.keyboard.press("Enter")
    assert view.units("bx-sel") == [focused]
    assert view.page.locator("#bx-panel h2").inner_text() == g.name_of(int(focused))


def test_pan_zoom_and_reset(opened):
    view = opened("seed")
    box = view.page.locator("#bx-view svg")
    start = box.get_attribute("viewBox")
    view.page.mouse.move(400, 400)
    view.page.mouse.wheel(0, -400)
    zoomed = [float(v) for v in box.get_attribute("viewBox").split()]
    assert zoomed[2] < float(start.split()[2])
    view.page.mouse.down()
    view.page.mouse.move(500, 450, steps=5)
    view.page.mouse.up()
    panned = [float(v) for v in box.get_attribute("viewBox").split()]
    assert panned[0] < zoomed[0] and panned[1] < zoomed[1] and panned[2] == zoomed[2]
    assert view.units("bx-sel") == []  # a drag is not a click
    view.page.click("#bx-reset")
    assert box.get_attribute("viewBox") == start


def test_hostile_names_show_literally_and_run_nothing(opened, tmp_path):
    view = opened("hostile")
    texts = view.page.eval_on_selector_all("#bx-view g.node text", "els => els.map(e => e.textContent)")
    for key in ("param", "input", "op"):
        assert HOSTILE[key] in texts
        view.unit(HOSTILE[key]).click()
        assert view.page.locator("#bx-panel h2").inner_text() == HOSTILE[key]
    assert view.page.evaluate("document.querySelectorAll('img, iframe, b').length") == 0
    assert view.page.evaluate("document.scripts.length") == 2
    view.page.fill("#bx-search", "onerror")
    view.page.press("#bx-search", "Enter")
    assert view.page.locator("#bx-panel h2").inner_text() == HOSTILE["input"]
    view.shot(tmp_path, "6-hostile")


def test_dark_theme_page(opened, tmp_path):
    view = opened("dark")
    assert view.page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(30, 30, 30)"
    view.unit("W2").click()
    view.shot(tmp_path, "7-dark-W2")


def test_in_an_iframe(browser, pages):
    (pages / "slides.html").write_text('<!DOCTYPE html><iframe src="seed.html" width="1000" height="600"></iframe>')
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((pages / "slides.html").as_uri())
        frame = page.frame_locator("iframe")
        frame.locator("body[data-ready]").wait_for()
        frame.locator(f'g.node[data-unit="{seed_graph().id_of("A2")}"]').click()
        assert "L2: no path" in frame.locator("#bx-panel").inner_text()
        assert errors == []
    finally:
        context.close()


def wide_graph(branches: int = 1250) -> Graph:
    """About 5,000 nodes side by side: a scope per branch W @ X -> tanh, summed by a tree of adds."""
    rng = np.random.default_rng(0)
    g = Graph()
    x = g.input(rng.normal(size=(2, 3)), name="X")
    outs, weights = [], []
    for k in range(branches):
        with g.scope(f"branch{k}"):
            weights.append(g.param(rng.normal(size=(2, 2)), name=f"W{k}"))
            outs.append(bp.tanh(weights[-1] @ x, name=f"A{k}"))
    while len(outs) > 1:
        outs = [outs[i] + outs[i + 1] if i + 1 < len(outs) else outs[i] for i in range(0, len(outs), 2)]
    (bp.sum(outs[0] * outs[0], name="fit") + bp.l2_penalty(weights, lambd=0.1, m=3, name="L2")).named("J")
    return g


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_a_5000_node_graph_opens_and_answers_a_click(browser, tmp_path, shape):
    g = big_graph() if shape == "deep" else wide_graph()
    started = time.perf_counter()
    (tmp_path / "big.html").write_text(explorer_html(g, "J"), "utf-8")
    written = time.perf_counter() - started
    view = Page(browser, tmp_path / "big.html")
    load = view.page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    init = view.page.evaluate("document.body.dataset.initMs")
    group = view.data["nodes"][view.id_of("W600")]["unit"]
    assert group in view.data["groups"]
    click_ms = view.page.evaluate("""key => new Promise(done => {
        const t0 = performance.now();
        document.querySelector(`g.node[data-unit="${key}"]`).dispatchEvent(new MouseEvent("click", {bubbles: true}));
        requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
    })""", group)
    assert "collapsed group of" in view.page.locator("#bx-panel").inner_text()
    assert view.units("bx-sel") == [group] and view.edges("bx-lit")
    size = (tmp_path / "big.html").stat().st_size
    units = len({n["unit"] for n in view.data["nodes"]})
    select_ms = view.page.evaluate("document.body.dataset.selectMs")
    print(f"\n5,000-node graph ({shape}): {len(g):,} nodes drawn as {units:,} units, page {size / 1e6:.2f} MB "
          f"written in {written:.1f} s; opened in {load:.0f} ms (script {init} ms), a click answered (painted) "
          f"in {click_ms:.0f} ms (script: {select_ms} ms)")
    view.shot(tmp_path, f"8-{shape}-group")
    view.page.fill("#bx-search", "W600")
    view.page.press("#bx-search", "Enter")
    assert view.page.locator("#bx-panel h2").inner_text() == "W600"
    view.shot(tmp_path, f"9-{shape}-W600")
    view.close()
