"""Every code block in README.md runs as written, and prints what the README says it prints.

* ```python blocks run on their own in a subprocess (own imports, own data), in a temporary folder.
* ```sh / ```bash blocks run with ``bash -e`` in a temporary folder that holds a copy of ``examples/``
  (what a fresh clone has next to the README), with this venv's ``bin`` first on PATH.
* ```console blocks: lines starting with ``$ `` are run as above, the other lines are their output.
* ```latex blocks are compiled with pdflatex, beside the files the shell block before them wrote.
* A ```text block right after a code block (only blank lines between) is that block's output: it must
  equal what the block prints, or, where it has lines holding only ``...``, contain its pieces in order.
* The first two blocks create a venv and install the package (minutes, and the package index):
  they are checked by content instead: the test command must be the one ``.ci/run`` runs verbatim,
  and the demo one-liner's last command is run here.

Blocks that need Graphviz's ``dot`` program (PDF output) are skipped where it is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNABLE = ("python", "sh", "bash", "console", "latex")
NOT_RUN = ("text",)
DEMO_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && bpgraph demo"



class Block(NamedTuple):
    line: int        # 1-based line of the opening fence
    lang: str
    code: str
    output: str | None  # the ```text block right after it, if any


def readme_blocks(text: str) -> list[Block]:
    fences = list(re.finditer(r"^```([\w-]*)\n(.*?)^```\s*$", text, re.S | re.M))
    blocks = []
    for k, fence in enumerate(fences):
        line = text.count("\n", 0, fence.start()) + 1
        following = fences[k + 1] if k + 1 < len(fences) else None
        output = None
        if (following is not None and following.group(1) == "text"
                and not text[fence.end():following.start()].strip()):
            output = following.group(2)
        blocks.append(Block(line, fence.group(1), fence.group(2), output))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
INSTALL, TESTS = BLOCKS[0], BLOCKS[1]
RUN = [b for b in BLOCKS[2:] if b.lang in RUNNABLE]


def ci_command() -> str:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    return lines[-1].strip()


def test_every_block_has_a_language_this_test_knows():
    assert BLOCKS and all(b.lang in RUNNABLE + NOT_RUN for b in BLOCKS), \
        [(b.line, b.lang) for b in BLOCKS if b.lang not in RUNNABLE + NOT_RUN]


def test_the_first_two_blocks_are_the_demo_and_the_ci_test_command():
    assert INSTALL.lang == TESTS.lang == "bash"
    assert INSTALL.code.strip() == DEMO_COMMAND
    assert TESTS.code.strip() == ci_command()
    assert ci_command() == ("python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' "
                            "&& python -m pytest -q")


def needs_dot(block: Block) -> bool:
    return block.lang != "python" and bool(re.search(r"\.pdf\b|--format pdf|--engine system", block.code))


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONPATH", None)
    return env


def run(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, env=environment(),
                            timeout=300)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fresh_clone(tmp_path: Path) -> Path:
    """A folder with what a clone has beside the README that the blocks use (examples/)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def matches(shown: str, printed: str) -> bool:
    """Whether ``printed`` is what the README shows: equal, or containing the ``...``-separated pieces."""
    def lines(text: str) -> list[str]:
        return [line.rstrip() for line in text.strip("\n").splitlines()]

    pieces = [[]]
    for line in lines(shown):
        if line.strip() == "...":
            pieces.append([])
        else:
            pieces[-1].append(line)
    got = "\n".join(lines(printed))
    if len(pieces) == 1:
        return got == "\n".join(pieces[0])
    at = 0
    for piece in pieces:
        found = got.find("\n".join(piece), at)
        if found < 0:
            return False
        at = found + len("\n".join(piece))
    return True


def run_block(block: Block, folder: Path, previous: Block | None) -> str:
    if block.lang == "python":
        script = folder / "block.py"
        script.write_text(block.code, encoding="utf-8")
        return run([sys.executable, str(script)], folder)
    if block.lang in ("sh", "bash"):
        return run(["bash", "-e"], folder, stdin=block.code)
    if block.lang == "console":
        commands = "\n".join(line[2:] for line in block.code.splitlines() if line.startswith("$ "))
        return run(["bash", "-e"], folder, stdin=commands)
    assert previous is not None and previous.lang in ("sh", "bash"), "a latex block follows the shell block " \
                                                                     "that writes its files"
    run_block(previous, folder, None)
    (folder / "slides.tex").write_text(block.code, encoding="utf-8")
    return run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "slides.tex"], folder)


@pytest.mark.parametrize("block", RUN, ids=[f"line{b.line}-{b.lang}" for b in RUN])
def test_readme_block_runs_as_written(block: Block, tmp_path: Path):
    previous = BLOCKS[BLOCKS.index(block) - 1]
    if (needs_dot(block) or block.lang == "latex" and needs_dot(previous)) and shutil.which("dot") is None:
        pytest.skip("writes a PDF, which needs Graphviz's `dot` program; not installed here")
    if block.lang == "latex":
        for tool in ("pdflatex", "kpsewhich"):
            if shutil.which(tool) is None:
                pytest.skip(f"needs {tool} (TeX); not installed here")
        found = subprocess.run(["kpsewhich", "beamer.cls", "pgfmath.sty"], capture_output=True, text=True)
        if len(found.stdout.split()) < 2:
            pytest.skip("needs the LaTeX beamer class and pgf (texlive-latex-recommended, texlive-pictures); "
                        "not installed here")
    printed = run_block(block, fresh_clone(tmp_path), previous)
    if block.output is not None and block.lang != "latex":
        assert matches(block.output, printed), f"README line {block.line} shows:\n{block.output}\nbut it " \
                                               f"printed:\n{printed}"
    if block.lang == "console":
        shown = "\n".join(line for line in block.code.splitlines() if not line.startswith("$ "))
        assert matches(shown, printed)


def test_the_demo_one_liner_runs_its_last_command(tmp_path: Path):
    last = INSTALL.code.strip().rsplit("&&", 1)[1].strip()
    assert last == "bpgraph demo"
    printed = run(["bpgraph", "demo"], tmp_path)
    assert "∂L2/∂A2 = 0" in printed and "changed:   dW3, dW2, dW1" in printed
    assert (tmp_path / "bpgraph-demo.svg").read_text(encoding="utf-8").rstrip().endswith("</svg>")


def test_the_readme_shows_the_committed_demo_picture():
    prose = re.sub(r"^```.*?^```|`[^`\n]*`", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", prose)
    assert "docs/gallery/l2-mlp-light.svg" in images
    for image in images:
        assert (ROOT / image).is_file(), image


def test_no_indented_code_block_escapes_these_checks():
    prose = re.sub(r"^```.*?^```", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert not re.search(r"\n\n {4}\S", prose), "use a fenced block (it is run) or a quote (>)"


def test_matches_compares_exactly_or_piece_by_piece():
    assert matches("a\nb\n", "a\nb")
    assert not matches("a\nb", "a\nb\nc")
    assert matches("a\n...\nc", "a\nb\nc")
    assert not matches("c\n...\na", "a\nb\nc")
