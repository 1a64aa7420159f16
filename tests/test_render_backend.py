"""The one module that runs Graphviz: system dot and the embedded wasm build."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib

import pytest

from bpgraph.render import backend

needs_dot = pytest.mark.skipif(not backend.have_dot(), reason="the Graphviz `dot` program is not installed")

LABELLED = 'digraph g { node [fontname="DejaVu Sans"]; a [label="gradient flows"]; a -> b [label="x"] }'
ENGINES = [pytest.param("system", marks=[pytest.mark.needs_dot, needs_dot]), "wasm"]
BLANK = 'digraph g { node [fontname="DejaVu Sans"]; a [label=""]; a -> b [label=""]; b [label=""] }'


def png_size_and_ink(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of non-white pixels of an 8-bit RGB(A) PNG (no Pillow)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    data = b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            data += body
        else:
            chunks.setdefault(kind, body)
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(data)
    stride = width * channels
    previous = bytearray(stride)
    ink = 0
    offset = 0
    for _ in range(height):
        filter_type, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upper_left = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 255
            elif filter_type == 2:
                line[i] = (line[i] + up) & 255
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif filter_type == 4:
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upper_left)) & 255
        for x in range(0, stride, channels):
            pixel = line[x:x + channels]
            if (channels == 4 and pixel[3] > 128 and min(pixel[:3]) < 128) or (channels == 3 and min(pixel) < 128):
                ink += 1
        previous = line
    return width, height, ink


def test_wasm_svg_is_xml_with_the_labels():
    svg = backend.render(LABELLED, "svg", engine="wasm")
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "gradient flows" in texts and "x" in texts
    assert root.get("viewBox")


def test_wasm_svg_is_deterministic():
    assert backend.render(LABELLED, "svg", engine="wasm") == backend.render(LABELLED, "svg", engine="wasm")


def test_wasm_png_really_draws_the_text():
    # The same layout with and without label text: drawn glyphs add dark pixels. A renderer
    # that cannot resolve the font draws labels blank without any error, and this catches it.
    _, _, ink_text = png_size_and_ink(backend.render(LABELLED, "png", dpi=72, engine="wasm"))
    _, _, ink_blank = png_size_and_ink(backend.render(BLANK, "png", dpi=72, engine="wasm"))
    assert ink_text > ink_blank + 150


def test_png_dpi_scales_the_picture():
    small = png_size_and_ink(backend.render(LABELLED, "png", dpi=72, engine="wasm"))
    large = png_size_and_ink(backend.render(LABELLED, "png", dpi=144, engine="wasm"))
    assert abs(large[0] - 2 * small[0]) <= 2 and abs(large[1] - 2 * small[1]) <= 2


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, data)`` of every chunk, each CRC checked."""
    pos, chunks = 8, []
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("engine", ENGINES)
def test_png_says_its_resolution_so_slides_place_it_at_its_size(engine):
    png = backend.render(LABELLED, "png", dpi=200, engine=engine)
    chunks = png_chunks(png)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds.count(b"pHYs") == 1 and kinds.index(b"pHYs") < kinds.index(b"IDAT")
    assert dict(chunks)[b"pHYs"] == struct.pack(">IIB", 7874, 7874, 1)  # 200 dpi = 7874 per metre
    assert backend.with_resolution(png, 200) == png  # never a second pHYs
    again = png_chunks(backend.with_resolution(png, 96))  # one that is there is replaced (gd writes 96 dpi)
    assert [kind for kind, _ in again] == kinds and dict(again)[b"pHYs"] == struct.pack(">IIB", 3780, 3780, 1)
    assert png_size_and_ink(png)[0] > 0


def test_pdf_without_dot_is_one_clear_message(monkeypatch):
    with pytest.raises(backend.RenderError, match="embedded Graphviz .engine wasm. writes SVG and PNG only; "
                                                  "use engine auto or system"):
        backend.render(LABELLED, "pdf", engine="wasm")  # whether or not dot is installed
    monkeypatch.setattr(backend, "have_dot", lambda: False)
    with pytest.raises(backend.RenderError, match="PDF output needs the system Graphviz `dot` program.*apt-get install graphviz"):
        backend.render(LABELLED, "pdf")


def test_unknown_format_and_engine_are_clear_errors():
    with pytest.raises(backend.RenderError, match="choose one of: svg, png, pdf"):
        backend.render(LABELLED, "gif")
    with pytest.raises(backend.RenderError, match="choose auto, system or wasm"):
        backend.render(LABELLED, "svg", engine="cairo")


def test_bad_dot_source_is_a_render_error():
    with pytest.raises(backend.RenderError):
        backend.render("digraph { a -> }", "svg", engine="wasm")


@needs_dot
@pytest.mark.needs_dot
@pytest.mark.parametrize("fmt,magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_system_dot_formats(fmt, magic):
    assert backend.render(LABELLED, fmt, engine="system").startswith(magic)


@needs_dot
@pytest.mark.needs_dot
def test_system_png_text_is_drawn_and_dpi_applies():
    w72, _, ink_text = png_size_and_ink(backend.render(LABELLED, "png", dpi=72, engine="system"))
    _, _, ink_blank = png_size_and_ink(backend.render(BLANK, "png", dpi=72, engine="system"))
    w144, _, _ = png_size_and_ink(backend.render(LABELLED, "png", dpi=144, engine="system"))
    assert ink_text > ink_blank + 150 and abs(w144 - 2 * w72) <= 2


def test_the_compiled_embedded_graphviz_is_cached_rebuilt_when_damaged_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("BPGRAPH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BPGRAPH_NO_CACHE", raising=False)
    first = backend.EmbeddedGraphviz()
    (entry,) = tmp_path.glob("graphviz-*.cwasm")
    size = entry.stat().st_size
    assert size > 100_000
    assert b"<svg" in backend.EmbeddedGraphviz().render_svg("digraph { a -> b }")  # loaded from the cache
    entry.write_bytes(b"not a compiled module")
    assert b"<svg" in backend.EmbeddedGraphviz().render_svg("digraph { a -> b }")  # rebuilt
    assert entry.stat().st_size == size
    monkeypatch.setenv("BPGRAPH_NO_CACHE", "1")
    assert backend.cache_dir() is None
    entry.unlink()
    assert b"<svg" in backend.EmbeddedGraphviz().render_svg("digraph { a -> b }")
    assert not list(tmp_path.iterdir()) and first.module is not None


def test_png_labels_are_drawn_with_the_shipped_font_when_the_machine_has_no_fonts():
    """resvg draws text blank, without an error, when it finds no font: the package ships one."""
    import resvg_py

    svg = backend.render('digraph { node [fontname="DejaVu Sans"] a [label="Labels drawn"] }', "svg", engine="wasm")
    with_system = backend._rasterise(svg, 96)
    without_system = backend._rasterise(svg, 96, system_fonts=False)
    assert without_system == with_system
    blank = bytes(resvg_py.svg_to_bytes(svg_string=svg.decode(), dpi=96, skip_system_fonts=True))
    assert blank != without_system  # no font at all: the labels would vanish
