"""Regenerate the gallery: every built-in example in every theme, the demo's backward frames, and
the interactive explorer page.  Deterministic: the same code gives the same files.

    python docs/gallery/make_gallery.py            # rewrites docs/gallery/ in place

Pictures are always laid out by the embedded Graphviz (``engine="wasm"``), so they do not depend on
which ``dot`` a machine has installed.  Beside every picture lies its DOT source (``.gv``), which
``tests/test_gallery.py`` regenerates and compares: a gallery that no longer matches the code fails.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bpgraph.examples import EXAMPLES
from bpgraph.graph import Graph
from bpgraph.render import THEMES, Diagram, frame_diagrams, to_dot, write_frames

GALLERY = Path(__file__).resolve().parent
ENGINE = "wasm"
PNG_DPI = 100
#: The themes that also get a PNG (the ones meant for slide software); every theme gets an SVG.
PNG_THEMES = ("slides", "slides-dark")
#: The demo's network, drawn as backward-pass frames and as the explorer page.
DEMO = "l2-mlp"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class Entry:
    """One picture: its file stem, its diagram, the formats written and a line for the README."""

    stem: str
    diagram: Diagram
    formats: tuple[str, ...]
    caption: str


def example_graph(name: str) -> Graph:
    """A built-in example with its gradients computed, as ``bpgraph render NAME`` draws it."""
    graph = EXAMPLES[name].build()
    graph.backward()
    return graph


def entries() -> list[Entry]:
    """Every picture of the gallery, in README order."""
    found = []
    for name, example in EXAMPLES.items():
        graph = example_graph(name)
        for theme in THEMES:
            formats = ("svg", "png") if theme in PNG_THEMES else ("svg",)
            found.append(Entry(f"{name}-{theme}", to_dot(graph, theme=theme), formats,
                               f"`bpgraph render {name} --theme {theme}`: {example.summary}"))
    found.append(Entry(f"{DEMO}-explorer", to_dot(example_graph(DEMO)), ("html",),
                       f"`bpgraph render {DEMO} -o graph.html`: the interactive explorer"))
    return found


def frames() -> list[Diagram]:
    """The demo network's backward pass, one diagram per step (``bpgraph render l2-mlp --frames``)."""
    return frame_diagrams(example_graph(DEMO))


def expected_sources() -> dict[str, str]:
    """Every committed ``.gv`` file's path relative to the gallery, and the DOT text it must hold."""
    sources = {f"{entry.stem}.gv": entry.diagram.source for entry in entries()}
    for k, diagram in enumerate(frames(), 1):
        sources[f"{FRAMES_DIR}/frame_{k:03d}.gv"] = diagram.source
    return sources


def readme(found: list[Entry], frame_count: int, page: str) -> str:
    """docs/gallery/README.md: one line per picture."""
    lines = ["# Gallery", "",
             "Every built-in example in every theme, drawn by the code in this commit. Regenerate after any",
             "change to drawing, themes or examples (then commit the result; `tests/test_gallery.py` fails",
             "while a picture is stale):", "", "```sh", "python docs/gallery/make_gallery.py", "```", "",
             "Each picture has its DOT source beside it (`.gv`). Layout: the embedded Graphviz, so the",
             "files do not depend on the machine.", ""]
    for entry in found:
        if "html" in entry.formats:
            lines.append(f"- [{entry.stem}.html]({entry.stem}.html): {entry.caption}")
            continue
        extra = " ([PNG](" + entry.stem + ".png))" if "png" in entry.formats else ""
        lines.append(f"- ![{entry.stem}]({entry.stem}.svg){extra} {entry.caption}")
    lines += ["", f"The demo's backward pass in {frame_count} frames "
              f"(`bpgraph render {DEMO} --frames {FRAMES_DIR}/`): open [{FRAMES_DIR}/{page}]"
              f"({FRAMES_DIR}/{page}) and step with the arrow keys, or see the first and last frame:", "",
              f"- ![first frame]({FRAMES_DIR}/frame_001.svg) step 1: the root J",
              f"- ![last frame]({FRAMES_DIR}/frame_{frame_count:03d}.svg) step {frame_count}: "
              "every gradient complete", ""]
    return "\n".join(lines)


def main(folder: Path = GALLERY) -> None:
    """Write every picture, its DOT source, the frames and the README into ``folder``."""
    found = entries()
    for old in folder.glob("*"):
        if old.suffix in (".svg", ".png", ".gv", ".html"):
            old.unlink()
    for entry in found:
        (folder / f"{entry.stem}.gv").write_text(entry.diagram.source, encoding="utf-8")
        for fmt in entry.formats:
            entry.diagram.save(folder / f"{entry.stem}.{fmt}", engine=ENGINE,
                               **({"dpi": PNG_DPI} if fmt == "png" else {}))
    frame_folder = folder / FRAMES_DIR
    if frame_folder.exists():
        for old in frame_folder.iterdir():
            old.unlink()
    diagrams = frames()
    written = write_frames(example_graph(DEMO), frame_folder, engine=ENGINE)
    for k, diagram in enumerate(diagrams, 1):
        (frame_folder / f"frame_{k:03d}.gv").write_text(diagram.source, encoding="utf-8")
    page = next(path.name for path in written if path.suffix == ".html")
    (folder / "README.md").write_text(readme(found, len(diagrams), page), encoding="utf-8")
    print(f"wrote {len(found)} pictures and {len(diagrams)} frames into {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else GALLERY)
