"""The scripts in examples/ run from a checkout and still say what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                            check=True, timeout=120)
    return result.stdout


def test_l2_regularization_shows_only_dw_changes():
    out = run_example("l2_regularization.py")
    assert "The L2 node reads only: W1, W2, W3" in out
    assert "SOMETHING (unexpected)" not in out
    changed = [line.split()[0] for line in out.splitlines() if "λ/m·" in line]
    assert changed == ["dW3", "dW2", "dW1"]


def test_find_my_mistake_names_a2_as_the_entry_point():
    out = run_example("find_my_mistake.py")
    assert out.count("error enters at:") == 2
    assert "error enters at: nowhere (all gradients agree)" in out
    assert out.rstrip().endswith("error enters at: A2")
    assert "computed from it and wrong as a result: dZ2, db2, dW2, dA1, dZ1, db1, dW1" in out


def test_every_example_script_is_tested():
    tested = {"l2_regularization.py", "find_my_mistake.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
