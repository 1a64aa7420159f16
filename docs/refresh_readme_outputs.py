"""Rewrite the output blocks of README.md from what their code blocks print now.

A ```text block right after a runnable block is that block's output (see tests/test_readme.py, which
checks it and whose rules this script shares).  Blocks whose output is an excerpt (lines of ``...``)
are left alone and listed, to be edited by hand.

    python docs/refresh_readme_outputs.py
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_readme_test():
    spec = importlib.util.spec_from_file_location("test_readme", ROOT / "tests" / "test_readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its NamedTuple looks its module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    rules = load_readme_test()
    text = rules.README.read_text(encoding="utf-8")
    for block in reversed(rules.RUN):  # from the end, so earlier offsets stay valid
        if block.output is None or block.lang == "latex":
            continue
        if any(line.strip() == "..." for line in block.output.splitlines()):
            print(f"line {block.line}: left as it is (an excerpt)")
            continue
        with tempfile.TemporaryDirectory() as folder:
            previous = rules.BLOCKS[rules.BLOCKS.index(block) - 1]
            printed = rules.run_block(block, rules.fresh_clone(Path(folder)), previous)
        printed = "\n".join(line.rstrip() for line in printed.strip("\n").splitlines()) + "\n"
        start = text.index(block.code, sum(len(line) + 1 for line in text.splitlines()[:block.line - 1]))
        at = text.index("```text\n", start + len(block.code)) + len("```text\n")
        end = text.index("\n```", at - 1) + 1
        if text[at:end] != printed:
            print(f"line {block.line}: output updated")
        text = text[:at] + printed + text[end:]
    rules.README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
