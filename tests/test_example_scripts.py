"""The scripts in examples/ run from a checkout and still say what their docstrings promise."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            check=True, timeout=120, cwd=cwd)
    return result.stdout


def png_size_and_dpi(path: Path) -> tuple[int, int, float]:
    """Width and height in pixels, and the resolution the PNG's pHYs chunk records."""
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    per_metre, _, unit = struct.unpack(">IIB", data[at + 4:at + 13])
    assert unit == 1  # metres
    return width, height, per_metre * 0.0254


def test_l2_regularization_shows_only_dw_changes():
    out = run_example("l2_regularization.py")
    assert "The L2 node reads only: W1, W2, W3" in out
    assert "SOMETHING (unexpected)" not in out
    changed = [line.split()[0] for line in out.splitlines() if "λ/m·" in line]
    assert changed == ["dW3", "dW2", "dW1"]


def test_find_my_mistake_names_a2_as_the_entry_point():
    out = run_example("find_my_mistake.py")
    assert out.count("error enters at:") == 2
    assert "error enters at: nowhere (all gradients agree)" in out
    assert out.rstrip().endswith("error enters at: A2")
    assert "computed from it and wrong as a result: dZ2, db2, dW2, dA1, dZ1, db1, dW1" in out


def test_find_my_mistake_saves_the_wrong_gradients_for_the_command_line(tmp_path):
    out = run_example("find_my_mistake.py", "--save", "my_grads.npz", cwd=tmp_path)
    assert out.startswith("wrote my_grads.npz")
    with np.load(tmp_path / "my_grads.npz") as grads:
        assert sorted(grads.files) == sorted(["dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1",
                                              "dW1", "db1"])
        assert grads["dA2"].shape == (3, 211) and grads["dW1"].shape == (20, 2)
    result = subprocess.run([sys.executable, "-m", "bpgraph", "compare", "l2-mlp", "--grads", "my_grads.npz"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "the error enters at dA2 (A2)" in result.stdout


def test_make_slides_writes_slide_ready_pictures(tmp_path):
    out = run_example("make_slides.py", str(tmp_path / "deck"))
    deck = tmp_path / "deck"
    names = {Path(line).relative_to(deck).as_posix() for line in out.splitlines()}
    frames = {f"backward/frame_{k:03d}.svg" for k in range(1, 16)}
    assert names == {"l2-mlp-slides.svg", "l2-mlp-slides.png", "dJ-dW1-slides.svg", "dJ-dW1.tex",
                     "l2-mlp.html", "backward/slides.html"} | frames
    width, height, dpi = png_size_and_dpi(deck / "l2-mlp-slides.png")
    assert round(dpi) == 200
    assert abs(width / height - 16 / 9) < 0.01 and width >= 3840  # a 16:9 slide, sharp on a 4K projector
    svg = (deck / "l2-mlp-slides.svg").read_text(encoding="utf-8")
    assert "viewBox" in svg
    # opaque: a white background polygon right after the title (a transparent one would be text first)
    assert re.search(r'class="graph"[^>]*>\s*<title>bpgraph</title>\s*<polygon fill="(white|#ffffff)"', svg)
    assert "<script" in (deck / "l2-mlp.html").read_text(encoding="utf-8")
    assert "frame_015.svg" in (deck / "backward" / "slides.html").read_text(encoding="utf-8")
    assert "L2&#39;s gradient reaches only W1, W2, W3" in svg or "L2's gradient reaches only W1, W2, W3" in svg
    tex = (deck / "dJ-dW1.tex").read_text(encoding="utf-8")
    assert tex.startswith("\\begin{gathered}") and "\\lambda / m" in tex
    page = (deck / "backward" / "slides.html").read_text(encoding="utf-8")
    assert page.count("frame_0") >= 15


def test_make_slides_without_a_folder_uses_a_new_temporary_one():
    out = run_example("make_slides.py")
    first = Path(out.splitlines()[0])
    try:
        assert first.name == "l2-mlp-slides.svg" and first.parent.name.startswith("bpgraph-slides-")
        assert first.is_file()
    finally:
        for path in sorted(first.parent.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        first.parent.rmdir()


def test_every_example_script_is_tested():
    tested = {"l2_regularization.py", "find_my_mistake.py", "make_slides.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
