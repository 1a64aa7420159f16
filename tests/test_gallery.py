"""docs/gallery/ shows what the code draws: every committed DOT source equals a fresh one.

The DOT text is deterministic and engine-independent, so comparing it catches any change to
themes, labels, layout options or examples without rendering.  When this fails, rerun
``python docs/gallery/make_gallery.py`` and commit the result.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

GALLERY = Path(__file__).resolve().parent.parent / "docs" / "gallery"
RERUN = "stale gallery: rerun `python docs/gallery/make_gallery.py` and commit the result"


def load_script():
    spec = importlib.util.spec_from_file_location("make_gallery", GALLERY / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def expected(script) -> dict[str, str]:
    return script.expected_sources()


def test_every_committed_dot_source_matches_the_code(expected):
    stale = [name for name, source in expected.items()
             if not (GALLERY / name).is_file() or (GALLERY / name).read_text(encoding="utf-8") != source]
    assert not stale, f"{RERUN}: {', '.join(stale)}"


def test_no_picture_is_left_over_from_an_older_gallery(expected):
    committed = {p.relative_to(GALLERY).as_posix() for p in GALLERY.rglob("*.gv")}
    assert committed == set(expected), RERUN


def test_every_entry_has_its_pictures_beside_its_source(script):
    for entry in script.entries():
        for fmt in entry.formats:
            picture = GALLERY / f"{entry.stem}.{fmt}"
            assert picture.is_file() and picture.stat().st_size > 1000, f"{RERUN}: {picture.name}"
    assert {e.stem for e in script.entries()} >= {f"{name}-{theme}" for name in script.EXAMPLES
                                                  for theme in ("light", "dark", "slides", "print")}


def test_each_svg_was_drawn_from_the_source_beside_it(script):
    """The SVG's node titles and texts are those of its .gv (the layout itself is not compared)."""
    for entry in script.entries():
        if "svg" not in entry.formats:
            continue
        svg = (GALLERY / f"{entry.stem}.svg").read_text(encoding="utf-8")
        labels = re.findall(r'label="([^"\\]+)\\n', entry.diagram.source)
        assert labels, entry.stem
        texts = set(re.findall(r">([^<]+)</text>", svg))
        assert set(labels) <= texts, f"{RERUN}: {entry.stem}.svg"


def test_the_frames_page_holds_every_frame(expected):
    """One frame per backward step of J: J, L2, cross_entropy, then A3, Z3, b3, W3 ... down to W1."""
    frames = sorted(name for name in expected if name.startswith("frames/"))
    assert len(frames) == 15
    for name in frames:
        assert (GALLERY / name).with_suffix(".svg").is_file(), RERUN
    deck = (GALLERY / "frames" / "slides.html").read_text(encoding="utf-8")
    assert deck.count('<template class="frame"') == 15, RERUN
    assert all(f"frame_{k:03d}.svg" in deck for k in range(1, 16)), RERUN


def test_the_gallery_readme_lists_every_picture(script):
    text = (GALLERY / "README.md").read_text(encoding="utf-8")
    assert "python docs/gallery/make_gallery.py" in text
    for entry in script.entries():
        assert f"]({entry.stem}.{entry.formats[0]})" in text, f"{RERUN}: {entry.stem}"


def test_the_gallery_stays_small():
    total = sum(p.stat().st_size for p in GALLERY.rglob("*") if p.is_file())
    assert total < 4_000_000  # every theme, slides PNGs, 15 frames, the deck and the explorer
