"""The command line: exit codes, output and error paths, through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from bpgraph.cli import cli
from bpgraph.examples import l2_mlp


def run(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def test_version_and_help_teach_by_example():
    assert run("--version").output.strip() == "bpgraph, version 0.1.0"
    out = run("--help").output
    assert "bpgraph demo" in out and "compare" in out
    paths_help = run("paths", "--help").output
    assert "bpgraph paths l2-mlp --of L2 --wrt A2" in paths_help and "MODEL is one of" in paths_help


def test_examples_lists_each_builtin_with_one_line():
    lines = run("examples").output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["l2-mlp", "dropout-mlp", "logistic", "softmax-classifier"]


def test_paths_lists_both_paths_of_dj_dw1():
    result = run("paths", "l2-mlp", "--of", "J", "--wrt", "W1")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "W1 -> Z1 -> A1 -> Z2 -> A2 -> Z3 -> A3 -> cross_entropy -> J",
        "W1 -> L2 -> J",
        "2 paths",
    ]


def test_paths_with_no_path_exits_0_and_says_why():
    result = run("paths", "l2-mlp", "--of", "L2", "--wrt", "A2")
    assert result.exit_code == 0
    assert result.output.strip() == ("no path: ∂L2/∂A2 = 0 because L2 does not depend on A2; "
                                     "its inputs are W1, W2, W3.")


def test_paths_count_and_json():
    assert run("paths", "l2-mlp", "--of", "J", "--wrt", "W2", "--count").output.strip() == "2"
    data = json.loads(run("paths", "l2-mlp", "--of", "J", "--wrt", "W1", "--json").output)
    assert data["count"] == 2 and data["paths"][1] == ["W1", "L2", "J"] and data["capped"] is False
    none = json.loads(run("paths", "l2-mlp", "--of", "L2", "--wrt", "A2", "--json").output)
    assert none["count"] == 0 and none["paths"] == [] and "does not depend on A2" in none["reason"]


def test_paths_through_pattern():
    out = run("paths", "l2-mlp", "--of", "L2", "--wrt", "W1", "--through", "A*").output
    assert out.strip() == "no path from W1 to L2 passes through A*"
    found = run("paths", "l2-mlp", "--of", "J", "--wrt", "W1", "--through", "L2, b2", "--json").output
    assert json.loads(found)["through"] == "L2, b2" and json.loads(found)["paths"] == [["W1", "L2", "J"]]


def test_grads_by_term_table_and_json():
    out = run("grads", "l2-mlp", "--by-term").output
    row = next(line for line in out.splitlines() if line.startswith("A2 "))
    assert row.split()[-1] == "path" and "no path" in row
    data = json.loads(run("grads", "l2-mlp", "--by-term", "--json").output)
    assert data["terms"] == ["cross_entropy", "L2"]
    a2 = next(r for r in data["rows"] if r["name"] == "A2")
    assert [(c["term"], c["status"]) for c in a2["terms"]] == [("cross_entropy", "nonzero"), ("L2", "no path")]
    assert a2["terms"][0]["norm"] == pytest.approx(a2["norm"], rel=1e-12)


def test_grads_without_by_term_is_one_column_of_norms():
    lines = run("grads", "l2-mlp").output.splitlines()
    assert lines[:2] == ["∂J/∂node for every node below J that gets a gradient (norms)",
                         "node           shape      ‖∂J/∂node‖"]
    assert "split by term" not in "\n".join(lines)
    w1 = next(line for line in lines if line.startswith("W1 "))
    expected = np.linalg.norm(l2_mlp().backward("J")["W1"])
    assert w1.split() == ["W1", "(20,", "2)", f"{expected:.3e}"]
    single = CliRunner().invoke(cli, ["grads", "logistic", "--by-term"])
    assert single.exit_code == 0 and single.output == run("grads", "logistic").output + (
        "note: J is not a sum of cost terms (no + or - at the root): nothing to split\n")  # the note on stderr


def test_explain_formats():
    assert run("explain", "l2-mlp", "--of", "L2", "--wrt", "A2").output.strip() == (
        "∂L2/∂A2 = 0: L2 does not depend on A2; its inputs are W1, W2, W3. ∂L2/∂A2 = 0, so the L2 share "
        "of dA2 is 0; dA2 = W3ᵀ·dZ3 exactly as without L2.")
    latex = run("explain", "l2-mlp", "--of", "J", "--wrt", "W1", "--format", "latex").output
    assert "\\partial" in latex and latex.count("{") == latex.count("}")


def test_diff_reports_exactly_the_weights_as_changed():
    data = json.loads(run("diff", "l2-mlp", "--set", "lambd=0.7", "--vs", "lambd=0", "--json").output)
    changed = sorted(row["name"] for row in data["rows"] if row["status"] == "changed")
    assert changed == ["W1", "W2", "W3"]


def test_check_passes_on_the_seed_and_fails_with_a_silly_tolerance():
    ok = run("check", "l2-mlp")
    assert ok.exit_code == 0 and "6 of 6 parameters pass" in ok.output
    bad = run("check", "l2-mlp", "--tol", "1e-30", "--atol", "0")
    assert bad.exit_code == 1 and "FAIL" in bad.output


def _course_grads(lambd: float = 0.7) -> dict[str, np.ndarray]:
    g = l2_mlp(lambd=lambd)
    v = {n: g[n].value for n in g.names}
    m = 211
    d = {"dZ3": v["A3"] - v["Y"]}
    d["dW3"] = d["dZ3"] @ v["A2"].T / m + lambd / m * v["W3"]
    d["db3"] = d["dZ3"].sum(axis=1, keepdims=True) / m
    d["dA2"] = v["W3"].T @ d["dZ3"]
    return d


def test_compare_all_ok_exits_0_and_wrong_exits_1(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, **_course_grads())
    result = run("compare", "l2-mlp", "--grads", str(good), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["first_wrong"] == []
    wrong = _course_grads()
    wrong["dA2"] = wrong["dA2"] + 0.1
    bad = tmp_path / "bad.npz"
    np.savez(bad, **wrong)
    result = run("compare", "l2-mlp", "--grads", str(bad), "--json")
    assert result.exit_code == 1 and json.loads(result.output)["first_wrong"] == ["A2"]


def test_compare_passes_convention_and_tolerances_on(tmp_path):
    course = tmp_path / "course.npz"
    np.savez(course, **_course_grads())
    assert run("compare", "l2-mlp", "--grads", str(course), "--convention", "course").exit_code == 0
    assert run("compare", "l2-mlp", "--grads", str(course), "--convention", "exact").exit_code == 1
    nudged = _course_grads()
    nudged["dA2"] = nudged["dA2"] * (1 + 1e-5)  # 1e-5 relative: over the default rtol of 1e-7
    path = tmp_path / "nudged.npz"
    np.savez(path, **nudged)
    assert run("compare", "l2-mlp", "--grads", str(path)).exit_code == 1
    assert run("compare", "l2-mlp", "--grads", str(path), "--rtol", "1e-3").exit_code == 0
    shifted = _course_grads()
    shifted["db3"] = shifted["db3"] + 1e-10  # an absolute slip, judged by --atol once rtol is 0
    path = tmp_path / "shifted.npz"
    np.savez(path, **shifted)
    assert run("compare", "l2-mlp", "--grads", str(path), "--rtol", "0").exit_code == 1
    assert run("compare", "l2-mlp", "--grads", str(path), "--rtol", "0", "--atol", "1e-8").exit_code == 0


def test_limit_and_of_reach_the_library():
    limited = run("paths", "l2-mlp", "--of", "J", "--wrt", "W1", "--limit", "1").output.splitlines()
    assert limited == ["W1 -> Z1 -> A1 -> Z2 -> A2 -> Z3 -> A3 -> cross_entropy -> J",
                       "2 paths (showing the first 1; raise --limit)"]
    checked = run("check", "l2-mlp", "--of", "L2").output
    assert checked.startswith("finite-difference check of ∂L2/∂(each parameter)")
    data = json.loads(run("diff", "l2-mlp", "--set", "lambd=0.7", "--vs", "lambd=0", "--of", "L2", "--json").output)
    assert data["root"] == "L2" and data["changed"] == ["W3", "W2", "W1"]


# --- error paths: one clear line, exit 2, no traceback -----------------------------------------
@pytest.mark.parametrize("args,message", [
    (("paths", "l2-mlp", "--of", "J", "--wrt", "A4"), "no node named 'A4'; did you mean"),
    (("paths", "l2-mlpp", "--of", "J", "--wrt", "W1"), "Did you mean l2-mlp?"),
    (("check", "missing.py"), "no such file: missing.py"),
    (("check", "l2-mlp", "--set", "lamda=0"), "does not take lamda; it accepts: lambd"),
    (("check", "l2-mlp", "--set", "oops"), "--set expects key=value"),
    (("paths", "l2-mlp", "--of", "J", "--wrt", "W1", "--through", "Q*"), "Q*"),
    (("diff", "l2-mlp"), "give a second MODEL or --vs"),
])
def test_user_mistakes_exit_2_with_one_message(args, message):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_user_script_models_and_their_errors(tmp_path):
    script = tmp_path / "net.py"
    script.write_text(
        "import numpy as np\nimport bpgraph as bp\n\n"
        "def build(scale=2.0):\n"
        "    g = bp.Graph()\n"
        "    w = g.param(np.array([[1.0, 2.0]]), name='w')\n"
        "    return bp.sum(w * scale, name='y')\n\n"
        "def broken():\n"
        "    return 1 / 0\n")
    ok = run("paths", str(script), "--of", "y", "--wrt", "w", "--set", "scale=3")
    assert ok.exit_code == 0 and ok.output.startswith("w -> ") and ok.output.endswith(" -> y\n1 path\n")
    missing = CliRunner().invoke(cli, ["check", f"{script}:nothing"])
    assert missing.exit_code == 2 and "has no function 'nothing'; functions in it: build, broken" in missing.output
    raised = CliRunner().invoke(cli, ["check", f"{script}:broken"])
    assert raised.exit_code == 2 and "raised ZeroDivisionError: division by zero" in raised.output
    assert "Traceback" not in raised.output
    for args in (["--debug", "check", f"{script}:broken"], ["check", f"{script}:broken", "--debug"]):
        debug = CliRunner().invoke(cli, args)
        assert isinstance(debug.exception.__cause__, ZeroDivisionError), args  # the full chain is shown



def test_debug_after_the_command_but_a_node_named_debug_stays_a_name(tmp_path):
    script = tmp_path / "dbg.py"
    script.write_text("import numpy as np\nimport bpgraph as bp\n\n"
                      "def build():\n"
                      "    g = bp.Graph()\n"
                      "    w = g.param(np.ones(2), name='--debug')\n"
                      "    return bp.sum(w * 2, name='J')\n")
    named = run("paths", str(script), "--of", "J", "--wrt", "--debug")
    assert named.exit_code == 0 and named.output == "--debug -> mul_2 -> J\n1 path\n"
    quiet = CliRunner().invoke(cli, ["paths", str(script), "--of", "J", "--wrt", "W9"])
    assert quiet.exit_code == 2 and "no node named 'W9'" in quiet.output
    loud = CliRunner().invoke(cli, ["paths", str(script), "--of", "J", "--wrt", "W9", "--debug"])
    assert type(loud.exception).__name__ == "UnknownNodeError"  # raised, not turned into a message


def test_python_dash_m_bpgraph_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "bpgraph", "examples"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("l2-mlp")


# --- drawing ----------------------------------------------------------------------------------------
def test_demo_answers_the_seed_question_and_writes_the_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo")
    assert result.exit_code == 0
    assert "L2 reaches only: W1, W2, W3." in result.output
    assert "∂L2/∂A2 = 0: L2 does not depend on A2; its inputs are W1, W2, W3." in result.output
    assert "changed:   dW3, dW2, dW1, each by exactly λ/m·W" in result.output
    assert "unchanged: dA3, dZ3, db3, dA2, dZ2, db2, dA1, dZ1, db1" in result.output
    assert "Arrows point forward; gradients flow back against them" in result.output
    assert "no gradient is computed" in result.output
    svg = (tmp_path / "bpgraph-demo.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and ">L2<" in svg and ">W1<" in svg
    assert ">arrows: the forward pass; gradients flow back against them<" in svg  # the caption
    assert ">legend · gradients flow against the arrows<" in svg and ">no gradient computed<" in svg


def test_demo_with_lambda_zero_says_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--lambd", "0")
    assert result.exit_code == 0
    assert "changed:   nothing (with λ = 0, L2 adds λ/m·W = 0 to each dW)" in result.output
    assert "unchanged: dA3, dZ3, db3, dW3, dA2, dZ2, db2, dW2, dA1, dZ1, db1, dW1" in result.output


def test_demo_with_an_unwritable_output_fails_before_printing_the_answer(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "missing" / "demo.svg")])
    assert result.exit_code == 2 and "the folder" in result.output and "does not exist" in result.output
    assert "The seed network" not in result.output  # no long answer above the error


def test_demo_png_without_the_dot_program(tmp_path, monkeypatch):
    monkeypatch.setattr("bpgraph.render.backend.have_dot", lambda: False)
    out = tmp_path / "demo.png"
    result = run("demo", "-o", str(out))
    assert result.exit_code == 0 and out.read_bytes().startswith(b"\x89PNG")


def test_render_formats_from_the_extension_and_options(tmp_path):
    svg = tmp_path / "l2.svg"
    assert run("render", "l2-mlp", "-o", str(svg), "--theme", "slides", "--highlight", "J:W1",
               "--show", "name,shape,grad").exit_code == 0
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    dot = tmp_path / "l2.dot"
    assert run("render", "l2-mlp", "-o", str(dot), "--rankdir", "TB").exit_code == 0
    assert dot.read_text(encoding="utf-8").startswith("digraph")


def test_render_passes_every_drawing_option_to_the_library(tmp_path):
    from bpgraph.render import to_dot

    target = tmp_path / "options.dot"
    options = ["--theme", "dark", "--rankdir", "TB", "--show", "name,grad", "--highlight", "J:W1",
               "--collapse", "layer1", "--of", "J"]
    assert run("render", "l2-mlp", "-o", str(target), *options).exit_code == 0
    g = l2_mlp()
    g.backward("J")
    expected = to_dot(g, "J", theme="dark", rankdir="TB", show=["name", "grad"], highlight=[("J", "W1")],
                      collapse=["layer1"]).source
    assert target.read_text(encoding="utf-8") == expected


def test_render_passes_dpi_engine_and_frame_options_on(tmp_path, monkeypatch):
    calls = []

    def fake_render(source, fmt, *, dpi=None, engine="auto", **_):
        calls.append((fmt, dpi, engine))
        return b"picture"

    def fake_frames(graph, folder, root, **options):
        calls.append(options)
        return [folder]

    monkeypatch.setattr("bpgraph.render.backend.render", fake_render)
    monkeypatch.setattr("bpgraph.render.write_frames", fake_frames)
    result = run("render", "l2-mlp", "-o", str(tmp_path / "s.png"), "--dpi", "200", "--engine", "wasm",
                 "--theme", "slides", "--rankdir", "TB", "--frames", str(tmp_path / "frames"))
    assert result.exit_code == 0, result.output
    assert calls == [("png", 200.0, "wasm"), {"theme": "slides", "rankdir": "TB", "engine": "wasm", "fmt": "svg"}]
    assert (tmp_path / "s.png").read_bytes() == b"picture"


def test_demo_draws_with_the_theme_asked_for(tmp_path):
    from bpgraph.render import to_dot

    target = tmp_path / "demo.dot"
    assert run("demo", "-o", str(target), "--theme", "dark").exit_code == 0
    g = l2_mlp(lambd=0.7)
    g.backward("J")
    assert target.read_text(encoding="utf-8") == to_dot(g, "J", theme="dark").source


def test_render_frames_writes_one_svg_per_step_and_an_index(tmp_path):
    frames = tmp_path / "frames"
    result = run("render", "logistic", "-o", str(tmp_path / "l.svg"), "--frames", str(frames))
    assert result.exit_code == 0
    html = (frames / "slides.html").read_text(encoding="utf-8")
    assert "keydown" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert len(list(frames.glob("frame_*.svg"))) >= 3
    assert "slides.html" in result.output


def test_render_frames_as_png(tmp_path):
    frames = tmp_path / "frames"
    result = run("render", "logistic", "--frames", str(frames), "--frames-format", "png")
    assert result.exit_code == 0, result.output
    pngs = sorted(frames.glob("frame_*.png"))
    assert len(pngs) >= 3 and not list(frames.glob("frame_*.svg"))
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_a_failed_render_keeps_the_existing_file(tmp_path):
    target = tmp_path / "keep.svg"
    target.write_text("precious")
    result = CliRunner().invoke(cli, ["render", "l2-mlp", "-o", str(target), "--theme", "neon"])
    assert result.exit_code == 2 and "'neon' is not one of 'light', 'dark', 'slides', 'slides-dark', 'print'" in result.output
    assert target.read_text() == "precious"
    bad_highlight = CliRunner().invoke(cli, ["render", "l2-mlp", "-o", str(target), "--highlight", "J"])
    assert bad_highlight.exit_code == 2 and "--highlight expects OF:WRT" in bad_highlight.output
    assert target.read_text() == "precious"


def test_a_render_that_fails_inside_graphviz_keeps_the_existing_file(tmp_path, monkeypatch):
    from bpgraph.render.backend import RenderError

    def broken_layout(*args, **kwargs):
        raise RenderError("dot crashed halfway")

    monkeypatch.setattr("bpgraph.render.backend.render", broken_layout)
    target = tmp_path / "keep.png"
    target.write_bytes(b"previous picture")
    result = CliRunner().invoke(cli, ["render", "l2-mlp", "-o", str(target)])
    assert result.exit_code == 2 and "dot crashed halfway" in result.output
    assert target.read_bytes() == b"previous picture"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]  # no temporary left behind


def test_command_list_shows_whole_one_line_summaries():
    out = run("--help").output
    commands = out.split("Commands:")[1].strip().splitlines()
    assert len(commands) == 10
    assert all(not line.rstrip().endswith("...") for line in commands), commands


def test_progress_is_shown_on_a_terminal_after_a_delay_and_never_on_a_pipe(monkeypatch, capsys):
    import time

    from bpgraph import cli_support as cli_module

    monkeypatch.setattr(cli_module, "PROGRESS_DELAY", 0.01)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with cli_module.progress("laying out 12 nodes..."):
        time.sleep(0.2)
    with cli_module.progress("quick"):
        pass
    assert capsys.readouterr().err == "laying out 12 nodes...\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with cli_module.progress("slow but piped"):
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


def test_a_script_that_exits_at_import_is_a_clear_error_and_render_names_are_safe(tmp_path):
    script = tmp_path / "net.py"
    script.write_text("import sys\nsys.exit(0)\n")
    result = CliRunner().invoke(cli, ["grads", str(script)])
    assert result.exit_code == 2 and "called sys.exit(0)" in result.output
