"""Hostile and huge inputs (issue #21): every one refused with a clear message or handled within
bounded memory and time, and a render stopped by a signal leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import bpgraph as bp
from bpgraph import io
from bpgraph.cli import cli as bpgraph_cli
from bpgraph.cli_support import DEBUG_HINT, Group
from bpgraph.errors import BpgraphError
from bpgraph.examples import l2_mlp
from bpgraph.files import InputError, read_npz
from bpgraph.io.write import dumps
from bpgraph.render import backend, to_dot
from bpgraph.render.collapse import plan, virtual_nodes
from bpgraph.render.structure import topology

ENGINES = [pytest.param("system", marks=[pytest.mark.needs_dot, pytest.mark.skipif(
    not backend.have_dot(), reason="the Graphviz `dot` program is not installed")]), "wasm"]
#: Peak memory allowed while loading a file under 1 MB.
PEAK = 600 * 2**20
#: A fan-out summed in a chain, drawn as is: minutes in `dot`, half a minute embedded.
SLOW = "digraph { " + " ".join(f"x -> m{k}; m{k} -> a{k + 1}; a{k} -> a{k + 1};" for k in range(500)) + " }"


# --- bounded work on input files ------------------------------------------------------------------
def saved(tmp_path: Path, name: str, data: dict | str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(data if isinstance(data, str) else dumps(data), encoding="utf-8")
    return path


def refused_within_memory(path: Path, *expected: str) -> int:
    """Load ``path`` (under 1 MB) under tracemalloc: refused, naming the file, with a bounded peak."""
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(io.GraphFileError) as caught:
            io.load_json(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(str(path)) and all(part in message for part in expected), message
    assert peak < PEAK
    return peak


def one_sum(shape: list[int], stored: list[int]) -> dict:
    g = bp.Graph()
    bp.sum(g.param(np.ones((2, 3)), name="x"), axis=0, name="s")
    data = io.to_dict(g)
    data["nodes"][0].update(shape=shape, value=[] if 0 in shape else data["nodes"][0]["value"])
    data["nodes"][1].update(shape=stored, value=0.0 if not stored else [])
    return data


def test_an_empty_axis_summed_away_is_refused_before_the_sum(tmp_path):
    path = saved(tmp_path, "empty-axis", one_sum([0, 300_000_000], []))  # about 470 bytes
    assert path.stat().st_size < 600
    refused_within_memory(path, "node 's' (nodes[1]): field 'shape': is [] but sum(x) gives [300000000]")
    declared = saved(tmp_path, "declared", one_sum([0, 300_000_000], [300_000_000]))
    refused_within_memory(declared, "field 'shape'", "more than MAX_ELEMENTS")


def test_list_valued_params_and_empty_inner_dimensions_are_counted(tmp_path):
    g = bp.Graph()
    bp.apply("pow", g.param(np.ones((3, 1)), name="x"), exponent=(1.0, 2.0), name="p")
    data = io.to_dict(g)
    data["nodes"][0].update(shape=[20_000, 1], value=[[1.0]] * 20_000)
    data["nodes"][1].update(shape=[], value=0.0, params={"exponent": [2.0] * 20_000})
    refused_within_memory(saved(tmp_path, "pow", data), "node 'p'", "gives [20000, 20000]")

    g = bp.Graph()
    (g.param(np.ones((2, 0)), name="a") @ g.param(np.ones((0, 2)), name="b")).named("m")
    data = io.to_dict(g)
    data["nodes"][0].update(shape=[30_000, 0], value=[[]] * 30_000)
    data["nodes"][1].update(shape=[0, 30_000], value=[])
    data["nodes"][2].update(shape=[1], value=[0.0])
    refused_within_memory(saved(tmp_path, "matmul", data), "node 'm'", "gives [30000, 30000]")


@pytest.mark.parametrize("junk", [[[]] * 300_000, [{"a": [1, 2]}] * 60_000, {"k": [[[0]]] * 50_000}])
def test_meta_data_is_bounded_by_how_many_values_it_holds(tmp_path, junk):
    data = one_sum([2, 3], [3])
    data["graph"]["junk"] = junk
    refused_within_memory(saved(tmp_path, "meta", data), "field 'graph'",
                          "more than MAX_META_ITEMS (100,000)")


def test_ops_with_unusual_params_load_back_exactly():
    """The result shapes computed from shapes alone agree with the ops for every op and param kind."""
    g = bp.Graph()
    x = g.param(np.arange(24.0).reshape(2, 3, 4) / 10, name="x")
    y = g.param(np.ones((0, 3)), name="empty")
    parts = [bp.sum(x, axis=(0, -1), keepdims=True), bp.mean(x, axis=-2), bp.sum(x), bp.sum(y, axis=0),
             bp.sum(y, axis=1, keepdims=True), bp.apply("pow", x, exponent=(1.0, 2.0, 3.0, 0.5)),
             bp.softmax(x, axis=(1, 2)), bp.transpose(x, (2, 0, 1)), bp.reshape(x, (4, -1)),
             bp.reshape(y, (3, 0)), bp.apply("matmul", x, g.const(np.ones((4, 2)))), x @ np.ones((1, 4, 5)),
             bp.dropout(x, keep_prob=0.5), bp.l2_penalty([x, y], 0.1, 3)]
    bp.sum(parts[0] * 2.0)
    loaded = io.from_dict(json.loads(dumps(io.to_dict(g))))
    assert [n["value"].shape for n in loaded.nodes.values()] == [n["value"].shape for n in g.nodes.values()]


def test_export_refuses_what_load_would_refuse(tmp_path, monkeypatch):
    monkeypatch.setattr(io.limits, "MAX_NODES", 10)
    with pytest.raises(io.GraphFileError, match="17 nodes, more than MAX_NODES .10.: load_json would refuse"):
        io.save_json(l2_mlp(), tmp_path / "l2.json")
    result = CliRunner().invoke(bpgraph_cli, ["export", "l2-mlp", "-o", str(tmp_path / "l2.json")])
    assert result.exit_code == 2 and "more than MAX_NODES (10)" in result.output
    assert not (tmp_path / "l2.json").exists()
    io.save_json(l2_mlp(), tmp_path / "l2.json", values=False)  # not loadable anyway: no limit
    monkeypatch.setattr(io.limits, "MAX_NODES", 17)
    assert len(io.load_json(io.save_json(l2_mlp(), tmp_path / "l2.json"))) == 17


# --- the .npz reader ---------------------------------------------------------------------------------
def npz_member(path: Path, name: str, header: dict, body: bytes = b"", compress: bool = False) -> None:
    """An .npz whose one member has the .npy header given (which may lie about its data)."""
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr(name, data)


def test_read_npz_reads_numbers_and_refuses_everything_else(tmp_path):
    np.savez(tmp_path / "ok.npz", dW1=np.ones((2, 3)), db1=np.zeros((2, 1), dtype=np.float32))
    arrays = read_npz(tmp_path / "ok.npz")
    assert {k: (v.shape, v.dtype.name) for k, v in arrays.items()} == {"dW1": ((2, 3), "float64"),
                                                                      "db1": ((2, 1), "float32")}
    np.savez_compressed(tmp_path / "bomb.npz", big=np.zeros((2000, 2000)))  # 32 MB inflated, 31 kB stored
    np.savez(tmp_path / "objects.npz", o=np.array([1, "a", None], dtype=object))
    npz_member(tmp_path / "liar.npz", "x.npy", {"descr": "<f8", "fortran_order": False, "shape": (10**6,)})
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "half.npz").write_bytes(raw[:len(raw) // 2])
    damaged = bytearray(raw)
    damaged[200] ^= 0xFF
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    (tmp_path / "text.npz").write_text("dW1 = 1")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    cases = {"bomb.npz": "its arrays take 32,000,128 bytes, more than max_bytes (16,000,000)",
             "objects.npz": "array 'o': holds Python objects (a pickle)",
             "liar.npz": "array 'x': truncated: (1000000,) float64 in 128 bytes",
             "half.npz": "File is not a zip file", "damaged.npz": "array 'dW1': Bad CRC-32",
             "text.npz": "File is not a zip file",
             "other.npz": "array 'notes.txt': EOF: reading magic string",
             "missing.npz": "No such file or directory"}
    for name, expected in cases.items():
        with pytest.raises(InputError, match=re.escape(expected)) as caught:
            read_npz(tmp_path / name, max_bytes=16_000_000)
        assert str(tmp_path / name) in str(caught.value) and isinstance(caught.value, BpgraphError)
    with pytest.raises(InputError, match="array 'db1': 8 elements in all, more than max_elements .7."):
        read_npz(tmp_path / "ok.npz", max_elements=7)
    with pytest.raises(InputError, match="bytes, more than max_bytes .100."):
        read_npz(tmp_path / "ok.npz", max_bytes=100)


# --- bounded layout --------------------------------------------------------------------------------
def fan_out(terms: int) -> bp.Graph:
    """One parameter fanning out into terms that Python's sum adds one by one."""
    g = bp.Graph()
    x = g.param(np.linspace(-1.0, 1.0, 4), name="x")
    sum(x * float(k) for k in range(terms))
    return g


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("terms", [200, 2000])
def test_a_fan_out_sum_renders_within_a_minute_with_a_note(engine, terms):
    start = time.perf_counter()
    diagram = to_dot(fan_out(terms))
    svg = ET.fromstring(diagram.render_bytes("svg", engine=engine))
    assert time.perf_counter() - start < 60 and svg.tag.endswith("svg")
    assert any("runs of one op as single nodes" in note for note in diagram.notes)
    assert "run of add" in diagram.source


def test_the_layout_estimate_counts_virtual_nodes_of_long_edges():
    g = fan_out(200)
    unplanned = plan(g, max_virtual=10**9)
    assert virtual_nodes(topology(g), unplanned) == 199 * 200 // 2
    assert plan(g).units < unplanned.units
    chain = bp.Graph()
    y = chain.param(np.ones(2), name="x")
    for _ in range(300):
        y = bp.tanh(y)
    assert plan(chain).groups == ()  # a chain has no long edge: drawn as is


@pytest.mark.parametrize("engine", ENGINES)
def test_a_layout_over_its_time_limit_is_stopped(engine):
    start = time.perf_counter()
    with pytest.raises(backend.LayoutTimeout, match="took longer than 1 s and was stopped"):
        backend.render(SLOW, "svg", engine=engine, timeout=1)
    assert time.perf_counter() - start < 3
    assert b"<svg" in backend.render("digraph { a -> b }", "svg", engine=engine, timeout=30)  # ready again


def test_a_layout_that_times_out_is_retried_collapsed_within_the_time_limit(monkeypatch, tmp_path):
    calls = []

    def slow_then_fast(source, fmt, *, timeout, **options):
        calls.append(timeout)
        if len(calls) % 2:
            raise backend.LayoutTimeout("took too long")
        return b"<svg/>"

    monkeypatch.setattr(backend, "render", slow_then_fast)
    diagram = to_dot(l2_mlp(), "J")
    assert diagram.render_bytes("svg", timeout=10) == b"<svg/>"
    assert 4.9 < calls[0] <= 5 and calls[1] <= 5  # half the time, then what is left
    diagram.save(tmp_path / "l2.svg")
    assert "the layout engine took too long for 17 nodes; retried with max_nodes=4" in diagram.drawn.notes


def test_a_time_limit_used_up_is_reported_as_the_limit_never_as_a_negative_time(monkeypatch):
    def over_time(source, fmt, *, timeout, **options):
        time.sleep(max(timeout, 0) + 0.05)
        raise backend.LayoutTimeout(f"took longer than {timeout:.3g} s")

    monkeypatch.setattr(backend, "render", over_time)
    with pytest.raises(backend.LayoutTimeout, match=r"^the layout did not finish within 0.2 s \([2-6] tries\) and was stopped$"):
        to_dot(l2_mlp(), "J").render_bytes("svg", timeout=0.2)


def test_a_layout_that_takes_the_whole_limit_leaves_no_negative_time_to_the_png(monkeypatch):
    def slow_layout(command, data, timeout, what):
        time.sleep(timeout + 0.05)
        return b'<svg width="10pt" height="10pt"></svg>'

    monkeypatch.setattr(backend, "have_dot", lambda: True)
    monkeypatch.setattr(backend, "_run", slow_layout)
    with pytest.raises(backend.LayoutTimeout, match="took all of the 0.1 s time limit; none was left"):
        backend.render("digraph { a }", "png", engine="system", timeout=0.1)


def test_a_chain_2000_scopes_deep_draws_in_a_few_seconds():
    g = bp.Graph()
    y = g.param(np.ones(2), name="x")
    with contextlib.ExitStack() as scopes:
        for k in range(2000):
            scopes.enter_context(g.scope(f"s{k}"))
            y = bp.tanh(y)
    start = time.perf_counter()
    diagram = to_dot(g, max_nodes=5000)  # every node drawn
    assert time.perf_counter() - start < 5
    assert diagram.source.count("subgraph cluster_") == 20 + 1  # 20 nested, and the legend
    assert "scopes nested more than 20 deep are drawn inside their 20th-level scope" in diagram.notes
    assert max(len(line) - len(line.lstrip("\t")) for line in diagram.source.splitlines()) <= 9
    start = time.perf_counter()
    assert ET.fromstring(to_dot(g).render_bytes("svg")).tag.endswith("svg")  # collapsed to 1,500 nodes
    assert time.perf_counter() - start < 20


# --- signals ---------------------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat_file.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat_file.parent.name))
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, waiting to be reaped)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads child processes from /proc")
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_render_at_once_and_leaves_nothing_behind(tmp_path, signum, status):
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "dot").write_text("#!/bin/sh\nexec sleep 30\n")  # a layout that never ends
    (folder / "dot").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "bpgraph", "render", "l2-mlp", "-o", str(out / "l2.svg"),
               "--engine", "system"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not children(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (layout,) = children(process.pid)
    start = time.monotonic()
    process.send_signal(signum)
    assert process.wait(timeout=10) == status and time.monotonic() - start < 1.5
    assert f"stopped by {signal.Signals(signum).name}" in process.stderr.read()
    assert not running(layout)  # killed
    assert list(out.iterdir()) == []  # no picture, no temporary file


def test_an_interrupt_stops_the_embedded_graphviz_within_a_second():

    def interrupt(*_args):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            backend.render(SLOW, "svg", engine="wasm")
        assert time.perf_counter() - start < 1.5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert b"<svg" in backend.render("digraph { a -> b }", "svg", engine="wasm")  # ready for the next


# --- output size and text -----------------------------------------------------------------------------
def png_header(png: bytes) -> tuple[int, int, float]:
    """Width, height and the dpi its pHYs chunk says."""
    width, height = struct.unpack(">II", png[16:24])
    at = png.index(b"pHYs")
    return width, height, struct.unpack(">I", png[at + 4:at + 8])[0] * 0.0254


@pytest.mark.parametrize("engine", ENGINES)
def test_a_png_over_the_pixel_limit_is_drawn_at_a_lower_dpi_with_a_note(engine, tmp_path):
    diagram = to_dot(l2_mlp(), "J")
    diagram.save(tmp_path / "l2.png", dpi=2400, engine=engine, max_pixels=2_000_000)
    width, height, dpi = png_header((tmp_path / "l2.png").read_bytes())
    assert width * height <= 2_000_000 and 50 < round(dpi) < 2400
    assert diagram.drawn.notes[-1] == (f"at 2400 dpi the PNG would have more than max_pixels=2,000,000 "
                                       f"pixels: drawn at {round(dpi)} dpi")


def test_the_embedded_graphviz_under_an_address_space_limit_says_so(tmp_path):
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    command = [sys.executable, "-m", "bpgraph", "render", "l2-mlp", "-o", "l2.svg", "--engine", "wasm"]
    done = subprocess.run(command, cwd=tmp_path, preexec_fn=limit_memory, capture_output=True, text=True,
                          timeout=120)
    if done.returncode == 0:
        pytest.skip("this wasmtime lays out within a 4 GB address space")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "could not reserve its memory" in done.stderr and "ulimit -v" in done.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_noncharacters_and_very_long_names_give_well_formed_svg(engine):
    g = bp.Graph()
    x = g.param(np.ones(2), name="x\ufffe\uffff")
    (x * 2.0).named("y" * 20_000)
    bp.sum(g["y" * 20_000], name="J")
    diagram = to_dot(g, show=("name", "shape", "grad"))
    svg = ET.fromstring(diagram.render_bytes("svg", engine=engine))  # parses: well-formed XML
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert not any("\ufffe" in t or "\uffff" in t for t in texts)
    assert any(t.startswith("yyyy") and t.endswith("…") and len(t) <= 2000 for t in texts)
    assert "names longer than 2000 characters are drawn cut short, ending in …" in diagram.notes


# --- the command line's errors ---------------------------------------------------------------------------
def test_the_debug_hint_is_given_only_without_debug():
    @click.group(cls=Group)
    def cli() -> None:
        pass

    @cli.command()
    def broken() -> None:
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError as exc:
            raise BpgraphError(f"net.py:build() raised ZeroDivisionError: {exc}") from exc

    @cli.command()
    def hinted() -> None:  # a message that says it already is not said twice
        raise BpgraphError(f"importing net.py raised ValueError: no {DEBUG_HINT}") from ValueError()

    @cli.command()
    def plain() -> None:
        raise BpgraphError("no such file: net.py")

    result = CliRunner().invoke(cli, ["broken"])
    assert result.exit_code == 2 and result.output.strip().endswith(f"division by zero {DEBUG_HINT}")
    assert CliRunner().invoke(cli, ["hinted"]).output.count("--debug") == 1
    assert DEBUG_HINT not in CliRunner().invoke(cli, ["plain"]).output
    debug = CliRunner().invoke(cli, ["broken", "--debug"])
    assert isinstance(debug.exception, BpgraphError) and DEBUG_HINT not in str(debug.exception)
    assert isinstance(debug.exception.__cause__, ZeroDivisionError)
