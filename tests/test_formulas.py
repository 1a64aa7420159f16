"""Every op's gradient formula: it computes what the engine computes, and reads as the course writes it."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from helpers import rel_err
from test_hostile_names import compile_latex, needs_pdflatex
from test_ops import CASES, record_case

from bpgraph import notation, ops
from bpgraph.autodiff import unbroadcast, vjp_to_operand
from bpgraph.ops import OPS, vjp_formula
from bpgraph.text import markdown_text, one_line, tex_text


# --- the formulas compute the engine's gradients -----------------------------------------------------
@pytest.mark.parametrize("op,shapes,domains,params", CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[1]))}-{i}" for i, c in enumerate(CASES)])
def test_every_formula_equals_the_engines_gradient(op, shapes, domains, params, rng):
    g, leaves, out, _ = record_case(op, shapes, domains, params, rng)
    values = [leaf.value for leaf in leaves]
    for position, value in enumerate(values):
        upstream = rng.normal(size=out.shape)
        engine = vjp_to_operand(g, out.id, position, upstream)
        formula = evaluate_formula(OPS[op], position, upstream, out.value, values, params)
        shown = unbroadcast(formula, value.shape)
        assert rel_err(shown, engine) < 1e-12, (op, position, OPS[op].vjp_formulas)


def evaluate_formula(spec, position, g, out, values, params):
    """What the op's VJP returns, computed from the formula that vjp_formula shows."""
    slots = {spec.slots[0]: values, "i": position} if spec.variadic else dict(zip(spec.slots, values))
    return notation.evaluate(spec.vjp_formulas[0 if spec.variadic else position],
                             {"g": g, "out": out, **slots, **params})


def test_every_op_has_a_formula_per_operand_and_is_checked():
    assert {c[0] for c in CASES} == set(OPS)
    for spec in OPS.values():
        assert len(spec.vjp_formulas) == len(spec.vjps)
        assert len(spec.slots) == (1 if spec.variadic else len(spec.vjps))


def test_evaluate_is_numpy_on_the_parsed_formula(rng):
    w, a, g = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    env = {"g": g, "out": w @ a, "w": w, "a": a, "b": np.zeros((3, 1))}
    linear = OPS["linear"].vjp_formulas
    np.testing.assert_allclose(notation.evaluate(linear[0], env), g @ a.T, rtol=1e-14)
    np.testing.assert_allclose(notation.evaluate(linear[1], env), w.T @ g, rtol=1e-14)
    np.testing.assert_allclose(notation.evaluate(linear[2], env), g.sum(axis=1, keepdims=True), rtol=1e-14)
    assert notation.parse(linear[0]) is notation.parse(linear[0])  # parsed once


@pytest.mark.parametrize("expr", ["a.T", "__import__('os')", "np.sum(g)", "open('x')", "'text'", "g if a else b",
                                  "lambda: 0", "[g]", "sum_cols(g, axis=0)", "ind(0 < a < 1)"])
def test_the_formula_language_refuses_anything_else(expr):
    with pytest.raises(ValueError, match="formula"):
        notation.parse(expr)


# --- how they read ------------------------------------------------------------------------------------
#: Every formula in text, for out = op(A, B, C) with the root J (axis 0 where an op has one).
TEXT = {
    "add": ["∂J/∂OUT", "∂J/∂OUT"],
    "sub": ["∂J/∂OUT", "−∂J/∂OUT"],
    "mul": ["∂J/∂OUT ⊙ B", "∂J/∂OUT ⊙ A"],
    "div": ["∂J/∂OUT ⊙ 1/B", "−∂J/∂OUT ⊙ A/B²"],
    "neg": ["−∂J/∂OUT"],
    "pow": ["∂J/∂OUT ⊙ p·A^(p−1)"],
    "matmul": ["∂J/∂OUT·Bᵀ", "Aᵀ·∂J/∂OUT"],
    "linear": ["∂J/∂OUT·Bᵀ", "Aᵀ·∂J/∂OUT", "Σ_cols ∂J/∂OUT"],
    "exp": ["∂J/∂OUT ⊙ exp(A)"],
    "log": ["∂J/∂OUT ⊙ 1/A"],
    "sqrt": ["∂J/∂OUT ⊙ 1/(2·√A)"],
    "square": ["∂J/∂OUT ⊙ 2·A"],
    "abs": ["∂J/∂OUT ⊙ sign(A)"],
    "maximum": ["∂J/∂OUT ⊙ 1[A ≥ B]", "∂J/∂OUT ⊙ 1[A < B]"],
    "relu": ["∂J/∂OUT ⊙ 1[A > 0]"],
    "sigmoid": ["∂J/∂OUT ⊙ OUT⊙(1−OUT)"],
    "tanh": ["∂J/∂OUT ⊙ (1−OUT²)"],
    "softmax": ["OUT ⊙ (∂J/∂OUT − Σ_rows(∂J/∂OUT ⊙ OUT))"],
    "log_softmax": ["∂J/∂OUT − softmax(A) ⊙ Σ_rows ∂J/∂OUT"],
    "sum": ["broadcast(∂J/∂OUT)"],
    "mean": ["broadcast(∂J/∂OUT)/n"],
    "reshape": ["reshape(∂J/∂OUT)"],
    "transpose": ["(∂J/∂OUT)ᵀ"],
    "binary_cross_entropy": ["∂J/∂OUT·1/m·(A−B)/(A⊙(1−A))", "∂J/∂OUT·1/m·(log(1−A)−log(A))"],
    "softmax_cross_entropy": ["∂J/∂OUT·1/m·(softmax(A)⊙(Σ_rows B)−B)", "−∂J/∂OUT·1/m·log softmax(A)"],
    "l2_penalty": ["∂J/∂OUT·λ/m·A", "∂J/∂OUT·λ/m·B", "∂J/∂OUT·λ/m·C"],
    "dropout": ["∂J/∂OUT ⊙ B/keep_prob", "∂J/∂OUT ⊙ A/keep_prob"],
}


def all_formulas(style: str, names: Sequence[str] = ("A", "B", "C"), out: str = "OUT",
                 root: str = "J") -> list[str]:
    """Every op's formula for every operand position, as equations for out = op(*names)."""
    return [vjp_formula(op, position, names[:len(shown)], out, root=root, params={"axis": 0}, style=style)
            for op, shown in TEXT.items() for position in range(len(shown))]


def test_every_formula_reads_as_written_in_the_table():
    assert set(TEXT) == set(OPS)
    expected = [f"∂J/∂{'ABC'[position]} = {rhs}" for shown in TEXT.values() for position, rhs in enumerate(shown)]
    assert all_formulas("text") == expected


@pytest.mark.parametrize("call,expected", [
    (("linear", 1, ["W3", "A2", "b3"], "Z3"), "∂J/∂A2 = W3ᵀ·∂J/∂Z3"),
    (("linear", 0, ["W3", "A2", "b3"], "Z3"), "∂J/∂W3 = ∂J/∂Z3·A2ᵀ"),
    (("linear", 2, ["W3", "A2", "b3"], "Z3"), "∂J/∂b3 = Σ_cols ∂J/∂Z3"),
    (("relu", 0, ["Z2"], "A2"), "∂J/∂Z2 = ∂J/∂A2 ⊙ 1[Z2 > 0]"),
    (("sigmoid", 0, ["Z3"], "A3"), "∂J/∂Z3 = ∂J/∂A3 ⊙ A3⊙(1−A3)"),
    (("l2_penalty", 0, ["W1", "W2", "W3"], "L2"), "∂J/∂W1 = ∂J/∂L2·λ/m·W1"),
    (("l2_penalty", 2, ["W1", "W2", "W3"], "L2"), "∂J/∂W3 = ∂J/∂L2·λ/m·W3"),
    (("matmul", 0, ["W", "X"], "Z"), "∂J/∂W = ∂J/∂Z·Xᵀ"),
])
def test_the_course_examples_read_exactly(call, expected):
    assert vjp_formula(*call) == expected


def test_the_root_itself_as_upstream_drops_the_factor_of_one():
    assert vjp_formula("l2_penalty", 0, ["W1", "W2", "W3"], "L2", root="L2") == "∂L2/∂W1 = λ/m·W1"
    assert vjp_formula("binary_cross_entropy", 0, ["A3", "Y"], "J") == "∂J/∂A3 = 1/m·(A3−Y)/(A3⊙(1−A3))"
    assert vjp_formula("softmax_cross_entropy", 1, ["Z", "Y"], "J", params={"axis": 0}) == (
        "∂J/∂Y = −1/m·log softmax(Z)")
    assert vjp_formula("sub", 1, ["A", "B"], "C", root="C") == "∂C/∂B = −1"
    assert vjp_formula("relu", 0, ["Z"], "A", root="A") == "∂A/∂Z = 1[Z > 0]"


def test_the_course_convention_names_the_gradients():
    assert vjp_formula("linear", 1, ["W3", "A2", "b3"], "Z3", upstream="dZ3", grad="dA2") == "dA2 = W3ᵀ·dZ3"
    assert vjp_formula("transpose", 0, ["A"], "B", upstream="dB", grad="dA") == "dA = dBᵀ"
    assert vjp_formula("relu", 0, ["Z1"], "A1", upstream="dA1", grad="dZ1", style="latex") == (
        r"\text{dZ1} = \text{dA1} \odot \mathbf{1}[\text{Z1} > 0]")


@pytest.mark.parametrize("axis,below", [(0, "rows"), (1, "cols"), (-1, "cols"), (2, "axis 2"), (None, "axis")])
def test_a_sum_over_an_axis_names_it(axis, below):
    params = {} if axis is None else {"axis": axis}
    expected = f"∂J/∂Z = ∂J/∂S − softmax(Z) ⊙ Σ_{below} ∂J/∂S"
    assert vjp_formula("log_softmax", 0, ["Z"], "S", params=params) == expected


def test_markdown_and_latex_forms():
    def both(*call):
        return vjp_formula(*call, style="markdown"), vjp_formula(*call, style="latex")

    md, tex = both("linear", 1, ["W3", "A2", "b3"], "Z3")
    assert md == "∂J/∂A2 = W3ᵀ·∂J/∂Z3"
    assert tex == (r"\frac{\partial \text{J}}{\partial \text{A2}} = \text{W3}^\top \cdot "
                   r"\frac{\partial \text{J}}{\partial \text{Z3}}")
    md, tex = both("linear", 2, ["W3", "A2", "b3"], "Z3")
    assert md == r"∂J/∂b3 = Σ\_cols ∂J/∂Z3"
    assert tex.endswith(r"= \sum_{\text{cols}} \frac{\partial \text{J}}{\partial \text{Z3}}")
    md, tex = both("relu", 0, ["Z2"], "A2")
    assert md == r"∂J/∂Z2 = ∂J/∂A2 ⊙ 1\[Z2 \> 0\]"
    assert tex.endswith(r"\frac{\partial \text{J}}{\partial \text{A2}} \odot \mathbf{1}[\text{Z2} > 0]")
    md, tex = both("l2_penalty", 0, ["W1", "W2"], "L2")
    assert md == "∂J/∂W1 = ∂J/∂L2·λ/m·W1"
    assert tex.endswith(r"\frac{\partial \text{J}}{\partial \text{L2}} \cdot \lambda / m \cdot \text{W1}")
    assert vjp_formula("sigmoid", 0, ["Z3"], "A3", style="latex").endswith(
        r"\odot \text{A3} \odot \left(1 - \text{A3}\right)")
    assert vjp_formula("transpose", 0, ["A"], "B", style="latex").endswith(
        r"\left(\frac{\partial \text{J}}{\partial \text{B}}\right)^\top")


HOSTILE = ["a_b", "&amp;", "x^2", "</script>", "$", "line\nbreak", "{open", "\\end{document}", "%", "a--b",
           "|x|", "*em*"]


@pytest.mark.parametrize("name", HOSTILE)
def test_user_names_are_escaped_in_every_style(name):
    """The name (an operand and the result) changes nothing but its own escaped spelling."""
    escaped = {"text": (one_line(name), "Q"), "markdown": (markdown_text(name), "Q"),
               "latex": (tex_text(name), tex_text("Q"))}
    for op, position, names in (("linear", 1, ["W", "Q", "b"]), ("l2_penalty", 0, ["Q"]), ("relu", 0, ["Q"])):
        for style, (shown, placeholder) in escaped.items():
            plain = vjp_formula(op, position, names, "Q", style=style)
            hostile = vjp_formula(op, position, [name if n == "Q" else n for n in names], name, style=style)
            assert plain.count(placeholder) >= 2 and hostile == plain.replace(placeholder, shown)
            assert "\n" not in hostile


@needs_pdflatex
def test_the_latex_of_every_formula_compiles(tmp_path: Path):
    parts = all_formulas("latex") + all_formulas("latex", names=["W3", "A2", "b3"], out="Z3")
    for name in HOSTILE:
        parts += all_formulas("latex", names=[name, "B", name], out=name, root=name + "J")
    log = compile_latex(tmp_path, parts)
    assert "Missing character" not in log


def test_wrong_calls_say_what_is_wrong():
    with pytest.raises(ValueError, match="linear takes 3 operand"):
        vjp_formula("linear", 0, ["W", "A"], "Z")
    with pytest.raises(ValueError, match="position 1"):
        vjp_formula("relu", 1, ["Z"], "A")
    with pytest.raises(ValueError, match="unknown op 'softplus'"):
        vjp_formula("softplus", 0, ["Z"], "A")
    with pytest.raises(ValueError, match="unknown style 'html'"):
        vjp_formula("relu", 0, ["Z"], "A", style="html")


@pytest.mark.parametrize("module", [notation, ops])
def test_the_documented_examples_hold(module):
    assert doctest.testmod(module).failed == 0
