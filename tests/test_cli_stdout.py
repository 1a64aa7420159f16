"""`-o -` writes the data itself to standard output, for every format, and nothing else goes there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs the system Graphviz `dot`")


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the real console entry point, so bytes reach a real standard output (not click's runner)."""
    return subprocess.run([sys.executable, "-m", "bpgraph", *args], capture_output=True, timeout=120, check=True)


def test_render_to_stdout_defaults_to_svg_and_prints_only_the_svg(tmp_path):
    result = run_cli("render", "l2-mlp", "-o", "-", "--engine", "wasm")
    assert result.stdout.startswith(b"<?xml") and result.stdout.rstrip().endswith(b"</svg>")
    assert b"wrote" not in result.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG\r\n\x1a\n"), ("dot", b"digraph")])
def test_render_to_stdout_in_each_format(fmt, magic):
    result = run_cli("render", "l2-mlp", "-o", "-", "--format", fmt, "--engine", "wasm")
    assert result.stdout.startswith(magic)
    assert b"wrote" not in result.stdout


@pytest.mark.needs_dot
@needs_dot
def test_render_pdf_to_stdout_with_dot():
    result = run_cli("render", "l2-mlp", "-o", "-", "--format", "pdf", "--engine", "system")
    assert result.stdout.startswith(b"%PDF-") and result.stdout.rstrip().endswith(b"%%EOF")


def test_export_to_stdout_defaults_to_json_that_loads_back(tmp_path):
    result = run_cli("export", "l2-mlp", "-o", "-")
    data = json.loads(result.stdout)
    assert data["version"] == 1 and any(node["name"] == "L2" for node in data["nodes"])
    saved = tmp_path / "l2.json"
    saved.write_bytes(result.stdout)
    rows = json.loads(run_cli("grads", str(saved), "--json").stdout)["rows"]
    assert {"W1", "b1", "A2"} <= {row["name"] for row in rows}


def test_export_graphml_to_stdout():
    result = run_cli("export", "l2-mlp", "-o", "-", "--format", "graphml")
    assert result.stdout.startswith(b"<?xml") and b"<graphml" in result.stdout
    assert b"wrote" not in result.stdout
