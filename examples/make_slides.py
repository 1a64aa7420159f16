"""Pictures for a lecture on the seed question, ready for slide software.

Writes into FOLDER (default: a new temporary folder):

* ``l2-mlp-slides.svg``: for reveal.js, Marp or any HTML deck (it scales: it keeps its viewBox);
* ``l2-mlp-slides.png``: for PowerPoint, Google Slides or Keynote (16:9, sharp on a 4K projector;
  fit it to the slide);
* ``dJ-dW1-slides.svg``: the same network with only the paths of ∂J/∂W1 bright;
* ``dJ-dW1.tex``: the chain rule for ∂J/∂W1 as a LaTeX block, for Beamer (needs amsmath);
* ``l2-mlp.html``: the interactive explorer, for an iframe in reveal.js or Marp;
* ``backward/``: one 16:9 frame per backward step and ``slides.html``, a deck of them (arrow keys,
  ``f`` for full screen), also an iframe for HTML slides.

    python examples/make_slides.py [FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bpgraph.analysis import explain
from bpgraph.examples import l2_mlp
from bpgraph.render import to_dot, write_frames

DPI = 200


def make_slides(folder: Path) -> list[Path]:
    """Write the pictures listed in the module docstring into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    g = l2_mlp(lambd=0.7)
    g.backward("J")
    whole = to_dot(g, "J", theme="slides")
    tex = folder / "dJ-dW1.tex"
    tex.write_text(explain(g, "J", "W1", format="latex") + "\n", encoding="utf-8")
    written = [whole.save(folder / "l2-mlp-slides.svg"),
               whole.save(folder / "l2-mlp-slides.png", dpi=DPI),
               to_dot(g, "J", theme="slides", highlight=[("J", "W1")]).save(folder / "dJ-dW1-slides.svg"),
               tex, whole.save(folder / "l2-mlp.html")]
    return written + write_frames(g, folder / "backward", "J", theme="slides")


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bpgraph-slides-"))
    for path in make_slides(folder):
        print(path)


if __name__ == "__main__":
    main()
