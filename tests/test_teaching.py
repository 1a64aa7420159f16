"""Issue #19, teaching in the course's notation: explain's backward lines, compare's diagnoses of the
usual mistakes planted in a hand-written backward pass, forgiving gradient files, and the small fixes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from bpgraph import analysis as an
from bpgraph.cli import cli
from bpgraph.examples import l2_mlp
from test_hostile_names import compile_latex, needs_pdflatex

M, LAMBD = 211, 0.7


@pytest.fixture(scope="module")
def seed():
    return l2_mlp(lambd=LAMBD)


def backward(g, **mistakes: bool) -> dict[str, np.ndarray]:
    """The course's backward pass for the seed network, written out in numpy, with mistakes planted."""
    v = {n: g[n].value for n in g.names}
    d = {"dZ3": v["A3"] - v["Y"]}
    d["dW3"] = d["dZ3"] @ v["A2"].T / M + LAMBD / M * v["W3"]
    d["db3"] = d["dZ3"].sum(axis=1, keepdims=True) / M
    d["dA2"] = v["W3"].T @ d["dZ3"]
    if mistakes.get("l2_in_da2"):  # "L2 is part of J, so it must reach dA2 too"
        d["dA2"] = d["dA2"] + LAMBD / M * (v["W2"] @ v["A1"])
    d["dZ2"] = d["dA2"] * (v["Z2"] > 0)
    d["dW2"] = d["dZ2"] @ v["A1"].T / M + LAMBD / M * v["W2"]
    d["db2"] = d["dZ2"].sum(axis=1, keepdims=True) / M
    d["dA1"] = v["W2"].T @ d["dZ2"]
    d["dZ1"] = d["dA1"] * (v["Z1"] > 0)
    d["dW1"] = d["dZ1"] @ v["X"].T / M + (0 if mistakes.get("no_l2_in_dw1") else LAMBD / M * v["W1"])
    d["db1"] = d["dZ1"].sum(axis=1, keepdims=True) / M
    if mistakes.get("dw3_transposed"):
        d["dW3"] = d["dW3"].T
    if mistakes.get("db3_times_m"):
        d["db3"] = d["db3"] * M
    return d


def compare_json(tmp_path, grads: dict[str, np.ndarray], *args: str):
    path = tmp_path / "grads.npz"
    np.savez(path, **grads)
    result = CliRunner().invoke(cli, ["compare", "l2-mlp", "--grads", str(path), "--json", *args])
    return result.exit_code, json.loads(result.output)


# --- explain in the course's notation -----------------------------------------------------------
COURSE_LINES = ["dZ3 = A3 − Y", "dA2 = W3ᵀ·dZ3", "dZ2 = dA2 ⊙ 1[Z2 > 0]", "dA1 = W2ᵀ·dZ2",
                "dZ1 = dA1 ⊙ 1[Z1 > 0]", "dW1 = 1/m·dZ1·Xᵀ + λ/m·W1"]


def test_explain_writes_the_course_backward_pass_along_the_paths(seed):
    text = an.explain(seed, "J", "W1")
    assert "sum over the 2 paths from W1 to J" in text and "contributes shape (20, 2)" in text  # kept
    tail = text.splitlines()[-8:]
    assert tail[0] == "backward along these paths, in the course's notation (dZ = m·∂J/∂Z, dW = ∂J/∂W):"
    assert tail[1:7] == [f"  {line}" for line in COURSE_LINES]
    assert tail[7] == "        λ/m·W1 is L2's share: it arrives by the short path W1 → L2 → J"
    steps = an.backward_steps(seed, "J", seed.between("J", "W3"), course=True)
    assert str(steps[-1]) == "dW3 = 1/m·dZ3·A2ᵀ + λ/m·W3" and steps[-1].notes
    db1 = an.backward_steps(seed, "J", seed.between("J", "b1"), course=True)[-1]
    assert str(db1) == "db1 = 1/m·Σ_cols dZ1" and not db1.notes


def test_the_course_lines_compute_the_engine_s_gradients(seed):
    """dZ3 = A3 − Y (cross-entropy through the sigmoid) and dA2 = W3ᵀ·dZ3 are m·∂J/∂node; dW1 is exact."""
    grads, v = seed.backward("J"), {n: seed[n].value for n in seed.names}
    np.testing.assert_allclose(v["A3"] - v["Y"], M * grads["Z3"], rtol=1e-12)
    np.testing.assert_allclose(v["W3"].T @ (M * grads["Z3"]), M * grads["A2"], rtol=1e-12)
    dz1 = M * grads["Z1"]
    np.testing.assert_allclose(dz1 @ v["X"].T / M + LAMBD / M * v["W1"], grads["W1"], rtol=1e-12)


def test_explain_in_exact_convention_and_for_user_graphs():
    exact = an.explain(l2_mlp(), "J", "W1", convention="exact").splitlines()
    assert "  ∂J/∂A2 = W3ᵀ·∂J/∂Z3" in exact and "  ∂J/∂Z3 = ∂J/∂A3 ⊙ A3⊙(1−A3)" in exact
    assert "  ∂J/∂W1 = ∂J/∂Z1·Xᵀ + ∂J/∂L2·λ/m·W1" in exact
    import bpgraph as bp
    g = bp.Graph()  # no meta: exact by default, in the user's own names
    w = g.param(np.array([[0.5, -0.2]]), name="weights")
    h = bp.tanh(w * 3.0, name="hidden")
    (bp.sum(h, name="fit") + bp.l2_penalty([w], lambd=0.1, m=4, name="reg")).named("cost")
    lines = an.explain(g, "cost", "weights").splitlines()
    assert "  ∂cost/∂hidden = broadcast(∂cost/∂fit)" in lines and "  ∂cost/∂reg = 1" in lines
    assert lines[-2] == "  ∂cost/∂weights = ∂cost/∂weights*3 ⊙ 3 + ∂cost/∂reg·λ/m·weights"
    assert lines[-1].endswith("∂cost/∂reg·λ/m·weights is reg's share: it arrives by the short path "
                              "weights → reg → cost")
    assert an.explain(g, "reg", "hidden").endswith(
        "∂reg/∂hidden = 0, so the reg share of ∂cost/∂hidden is 0; ∂cost/∂hidden = broadcast(∂cost/∂fit) "
        "exactly as without reg.")


def test_explain_course_lines_in_markdown_and_latex(seed):
    md = an.explain(seed, "J", "W1", format="markdown")
    shown = md.replace("\\", "")  # what Markdown displays
    for line in COURSE_LINES:
        assert f"- {line}" in shown
    assert "- dW1 = 1/m·dZ1·Xᵀ + λ/m·W1 — λ/m·W1 is L2's share: it arrives by the short path W1 → L2 → J" in shown
    tex = an.explain(seed, "J", "W1", format="latex")
    assert r"\text{dA2} &= \text{W3}^\top \cdot \text{dZ3}" in tex
    assert r"\text{dZ2} &= \text{dA2} \odot \mathbf{1}[\text{Z2} > 0]" in tex
    assert r"\text{dW1} &= \frac{1}{m} \cdot \text{dZ1} \cdot \text{X}^\top + \lambda / m \cdot \text{W1}" in tex
    assert r"\text{W1} \rightarrow \text{L2} \rightarrow \text{J}" in tex


@needs_pdflatex
def test_the_course_and_exact_lines_compile_and_fit_the_page(seed, tmp_path):
    log = compile_latex(tmp_path, [an.explain(seed, "J", wrt, format="latex", convention=convention)
                                   for wrt in ("W1", "b1", "A2") for convention in ("course", "exact")]
                        + [an.explain(seed, "L2", "A2", format="latex")])
    assert "Overfull" not in log


def test_cli_explain_shows_the_course_lines_in_every_format():
    run = CliRunner().invoke
    text = run(cli, ["explain", "l2-mlp", "--of", "J", "--wrt", "W1"]).output
    for wanted in ("W3ᵀ", "1[Z2 > 0]", "λ/m·W1", "dA2 = W3ᵀ·dZ3"):
        assert wanted in text
    md = run(cli, ["explain", "l2-mlp", "--of", "J", "--wrt", "W1", "--format", "markdown"]).output
    assert all(w in md.replace("\\", "") for w in ("W3ᵀ", "1[Z2 > 0]", "λ/m·W1", "dA2 = W3ᵀ·dZ3"))
    tex = run(cli, ["explain", "l2-mlp", "--of", "J", "--wrt", "W1", "--format", "latex"]).output
    assert all(w in tex for w in (r"\text{W3}^\top", r"\mathbf{1}[\text{Z2} > 0]", r"\lambda / m \cdot \text{W1}",
                                  r"\text{dA2} &= \text{W3}^\top \cdot \text{dZ3}"))
    exact = run(cli, ["explain", "l2-mlp", "--of", "J", "--wrt", "W1", "--convention", "exact"]).output
    assert "∂J/∂A2 = W3ᵀ·∂J/∂Z3" in exact and "dA2 = " not in exact


# --- compare diagnoses the usual mistakes ---------------------------------------------------------
def test_a_dw1_without_its_l2_term_is_a_missing_term(seed, tmp_path):
    code, data = compare_json(tmp_path, backward(seed, no_l2_in_dw1=True))
    assert code == 1 and data["first_wrong"] == ["W1"] and data["wrong"] == ["W1"]
    (entry,) = data["entries"]
    assert entry["diagnosis"] == {"pattern": "missing_term", "term": "L2", "factor": None,
                                  "detail": "your dW1 lacks the L2 cost term's share λ/m·W1, which arrives by "
                                            "the short path W1 → L2 → J"}
    assert entry["formula"] == "dW1 = 1/m·dZ1·Xᵀ + λ/m·W1"
    assert entry["difference"]["norm"] == pytest.approx(np.linalg.norm(LAMBD / M * seed["W1"].value), rel=1e-9)


def test_an_l2_term_added_into_da2_and_carried_down_is_an_extra_term_entering_at_a2(seed, tmp_path):
    code, data = compare_json(tmp_path, backward(seed, l2_in_da2=True))
    assert code == 1 and data["first_wrong"] == ["A2"]
    assert data["wrong"] == ["A2", "Z2", "b2", "W2", "A1", "Z1", "b1", "W1"]
    (entry,) = data["entries"]
    assert (entry["diagnosis"]["pattern"], entry["diagnosis"]["term"], entry["diagnosis"]["factor"]) == (
        "extra_term", "L2", None)
    assert entry["diagnosis"]["detail"].endswith("L2 does not depend on A2, so no L2 term belongs in dA2")
    assert "λ/m·W2·A1" in entry["diagnosis"]["detail"]
    assert entry["formula"] == "dA2 = W3ᵀ·dZ3" and entry["consumers"] == ["Z3"]


def test_a_transposed_dw3_and_a_db3_times_m(seed, tmp_path):
    code, data = compare_json(tmp_path, backward(seed, dw3_transposed=True, db3_times_m=True))
    assert code == 1 and data["first_wrong"] == ["b3", "W3"]
    db3, dw3 = data["entries"]
    assert (dw3["diagnosis"]["pattern"], dw3["diagnosis"]["term"], dw3["diagnosis"]["factor"]) == (
        "transposed", None, None)
    assert (db3["diagnosis"]["pattern"], db3["diagnosis"]["term"], db3["diagnosis"]["factor"]) == (
        "scaled", None, M)
    assert db3["diagnosis"]["detail"] == "your db3 is m (= 211) times the correct one"
    np.testing.assert_allclose(db3["given"], M * backward(seed)["db3"], rtol=1e-12)  # a small array, in full
    np.testing.assert_allclose(db3["expected"], backward(seed)["db3"], rtol=1e-12)
    assert [r["shape"] for r in data["rows"] if r["name"] == "W3"] == [[1, 3]]


def test_factors_and_an_unrecognised_mistake(seed):
    grads = backward(seed)
    grads["dZ3"], grads["db2"] = grads["dZ3"] / M, -grads["db2"]
    grads["dW2"] = grads["dW2"] * 2
    grads["dA1"] = grads["dA1"].copy()
    grads["dA1"][2, 5] += 0.25  # a slip no usual mistake explains
    report = an.compare_grads(seed, "J", grads)
    found = {e.row.name: e.row.diagnosis for e in report.entries}
    assert found["Z3"] == (an.SCALED, "your dZ3 is 1/m (= 0.004739) times the correct one; it matches the exact "
                                      "convention (∂J/∂Z3) instead", None, 1 / M)
    assert found["b2"].factor == -1 and found["W2"].factor == 2
    assert found["A1"].pattern == an.UNRECOGNISED and found["A1"].term is None and found["A1"].factor is None
    assert found["A1"].detail == ("yours − correct has norm 2.500e-01 and is largest at index (2, 5) (+0.25); "
                                  "not a usual mistake (a cost term missing or extra, a transpose, a factor)")


def test_the_text_report_fits_100_columns_and_speaks_the_course_s_words(seed, tmp_path):
    path = tmp_path / "g.npz"
    np.savez(path, **backward(seed, l2_in_da2=True, db3_times_m=True))
    text = CliRunner().invoke(cli, ["compare", "l2-mlp", "--grads", str(path)]).output
    assert max(map(len, text.splitlines())) <= 100
    lines = text.splitlines()
    assert lines[0] == "your gradients of J against the correct ones, in the course convention"
    assert lines[1].split() == ["gradient", "layer", "status", "‖yours‖", "‖correct‖", "‖yours", "−", "correct‖"]
    assert "course convention (m = 211): dZ, dA are m·∂J/∂Z, m·∂J/∂A; dW, db are ∂J/∂W, ∂J/∂b." in lines
    assert "the error enters at db3 (b3): your db3 is m (= 211) times the correct one." in lines
    assert "  correct: db3 = 1/m·Σ_cols dZ3  (from your dZ3, which you have right)" in lines
    assert lines[lines.index("the error enters at db3 (b3): your db3 is m (= 211) times the correct one.") + 2:][:3] == [
        "  your value: [[-7.5381]]", "  correct value: [[-0.0357]]", "  difference: [[-7.5024]]"]
    for words in ("op nodes", "leaves exact", "nearest checked consumers"):
        assert words not in text


# --- forgiving input ------------------------------------------------------------------------------
def test_lower_case_keys_and_stray_entries_compare_as_correct(seed, tmp_path):
    grads = {key.lower(): value for key, value in backward(seed).items()}
    grads.update(dA0=np.ones((2, M)), cache=np.zeros(3))
    code, data = compare_json(tmp_path, grads)
    assert code == 0 and data["ok"] and data["ignored"] == ["dA0", "cache"]
    assert data["notes"][0] == ("dA0 (did you mean dA3?), cache: ignored, as no gradient of this graph has "
                                "that name")
    assert {r["key"] for r in data["rows"] if r["status"] == "ok"} >= {"dz3", "dw1", "db1", "da2"}
    text = CliRunner().invoke(cli, ["compare", "l2-mlp", "--grads", str(tmp_path / "grads.npz")]).output
    assert "ignored" in text and "every gradient you gave is correct." in text


def test_did_you_mean_puts_matches_ignoring_case_first(seed):
    with pytest.raises(an.UnknownNodeError, match=r"no node named 'dw4'; did you mean 'dW3', 'dW2', 'dW1'\?"):
        an.compare_grads(seed, "J", {"dw4": np.zeros((1, 3))})


# --- small things ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value,message", [
    ("lambd=0,5", "--set lambd: the value became tuple (0, 5), but example 'l2-mlp' expects a number for lambd "
                  "(default 0.7); for a decimal write --set lambd=0.5"),
    ("lambd=zero", "--set lambd: the value became str 'zero', but example 'l2-mlp' expects a number for lambd"),
    ("m=2.5", "--set m: the value became float 2.5, but example 'l2-mlp' expects int for m (default 211)"),
])
def test_a_set_value_of_the_wrong_type_says_which_and_why(value, message):
    result = CliRunner().invoke(cli, ["paths", "l2-mlp", "--of", "J", "--wrt", "W1", "--set", value])
    assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1


def test_render_frames_alone_writes_only_the_frames(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["render", "logistic", "--frames", "steps"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["steps"] and (tmp_path / "steps" / "slides.html").exists()


def test_diff_labels_come_from_the_settings_in_the_meta():
    diff = an.diff_grads(l2_mlp(lambd=0.7), l2_mlp(lambd=0.0))
    assert diff.labels == ("lambd=0.7", "lambd=0")
    assert str(diff).splitlines()[0] == "∂J/∂node with lambd=0.7 against lambd=0: which gradients change"
    assert "lambd=0.7 vs lambd=0" in str(diff).splitlines()[1]
    import bpgraph as bp
    plain = bp.Graph()
    bp.sum(plain.param(np.ones(2), name="w"), name="y")
    assert an.diff_grads(plain, plain).labels == ("a", "b")


def test_json_stays_strict_when_a_norm_is_not_finite(seed, tmp_path):
    grads = backward(seed)
    grads["dW1"] = np.full((20, 2), np.inf)
    grads["dA2"] = grads["dA2"].copy()
    grads["dA2"][0, 0] = np.nan
    code, data = compare_json(tmp_path, grads)
    w1 = next(r for r in data["rows"] if r["name"] == "W1")
    assert code == 1 and w1["max_abs_error"] == "inf" and w1["norms"]["yours"] == "inf"
    a2 = next(r for r in data["rows"] if r["name"] == "A2")
    assert a2["norms"]["difference"] == "nan" and "NaN or infinity" in a2["diagnosis"]["detail"]
    for report in (an.term_attribution(seed), an.diff_grads(seed, seed)):
        json.dumps(report.to_dict(values=True), allow_nan=False)
    assert an.reports.json_ready([math.inf, -math.inf, math.nan, 1j]) == ["inf", "-inf", "nan", "1j"]


def test_complex_gradients_are_wrong_for_a_real_graph(seed):
    grads = backward(seed)
    grads["dW3"] = grads["dW3"] + 0j
    report = an.compare_grads(seed, "J", grads)
    assert report.wrong == ["W3"] and report.row("W3").diagnosis.detail == (
        "your dW3 holds complex numbers, but this graph is real")
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize("args,message", [
    (("compare", "--rtol", "1"), "--rtol must be at least 0 and below 1"),
    (("compare", "--rtol", "nan"), "--rtol must be at least 0 and below 1"),
    (("compare", "--atol", "inf"), "--atol must be at least 0 and finite"),
    (("compare", "--atol", "-1e-9"), "--atol must be at least 0 and finite"),
    (("compare", "--atol", "10"), "atol=10 is at least the largest correct value given"),
    (("check", "--tol", "inf"), "--tol must be at least 0 and below 1"),
    (("check", "--tol", "-1"), "--tol must be at least 0 and below 1"),
    (("check", "--atol", "nan"), "--atol must be at least 0 and finite"),
])
def test_tolerances_must_be_finite_non_negative_and_not_accept_everything(seed, tmp_path, args, message):
    path = tmp_path / "g.npz"
    np.savez(path, **backward(seed))
    command, *options = args
    extra = ["--grads", str(path)] if command == "compare" else []
    result = CliRunner().invoke(cli, [command, "l2-mlp", *extra, *options])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with pytest.raises(an.GraphError, match="tolerances must be finite"):
        an.compare_grads(seed, "J", backward(seed), rtol=math.nan)
