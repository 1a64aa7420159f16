"""Gradient paths: reachability, claims, per-term and per-path attribution, diffs, checks, explanations."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import bpgraph as bp
from bpgraph import analysis as an
from bpgraph.errors import BpgraphError, GraphError, UnknownNodeError
from bpgraph.examples import l2_mlp

from helpers import rel_err

M = 211
LAMBD = 0.7
A_AND_Z = ["A1", "A2", "A3", "Z1", "Z2", "Z3"]
LONG_PATH = ["W1", "Z1", "A1", "Z2", "A2", "Z3", "A3", "cross_entropy", "J"]


@pytest.fixture(scope="module")
def seed_net():
    return l2_mlp(lambd=LAMBD)


def course_pass(g, mistake: float = 0.0) -> dict:
    """The learner's backward pass in the course's notation (dA, dZ are m·∂J/∂node).

    ``mistake`` adds an L2-looking term into dA2 and propagates it by hand, as the learner did.
    """
    v = {n: g[n].value for n in "X Y W1 A1 W2 A2 W3 A3".split()}
    d = {"dA3": -(v["Y"] / v["A3"] - (1 - v["Y"]) / (1 - v["A3"])), "dZ3": v["A3"] - v["Y"]}
    d["dW3"] = d["dZ3"] @ v["A2"].T / M + LAMBD / M * v["W3"]
    d["db3"] = d["dZ3"].sum(axis=1, keepdims=True) / M
    d["dA2"] = v["W3"].T @ d["dZ3"] + mistake * LAMBD / M * (v["W2"] @ v["A1"])
    d["dZ2"] = d["dA2"] * (v["A2"] > 0)
    d["dW2"] = d["dZ2"] @ v["A1"].T / M + LAMBD / M * v["W2"]
    d["db2"] = d["dZ2"].sum(axis=1, keepdims=True) / M
    d["dA1"] = v["W2"].T @ d["dZ2"]
    d["dZ1"] = d["dA1"] * (v["A1"] > 0)
    d["dW1"] = d["dZ1"] @ v["X"].T / M + LAMBD / M * v["W1"]
    d["db1"] = d["dZ1"].sum(axis=1, keepdims=True) / M
    return d


def diamond():
    """x feeds u = exp(x) and v = tanh(x); w = u·v; y = Σ (w + u): three paths from x to y."""
    g = bp.Graph()
    x = g.param(np.array([0.3, -1.2, 2.0]), name="x")
    u = bp.exp(x).named("u")
    v = bp.tanh(x).named("v")
    w = (u * v).named("w")
    bp.sum((w + u).named("s"), name="y")
    return g


def ladder(layers: int):
    """Each layer's a and b both read both of the previous layer's: 2**layers paths from x to y."""
    g = bp.Graph()
    x = g.param(np.array([0.5, -0.25]), name="x")
    a, b = bp.tanh(x, name="a1"), bp.sigmoid(x, name="b1")
    for i in range(2, layers + 1):
        a, b = bp.tanh(a + b, name=f"a{i}"), bp.sigmoid(a - b, name=f"b{i}")
    bp.sum(a + b, name="y")
    return g


# --- reachability and claims ----------------------------------------------------------------
def test_the_package_exports_its_public_names_and_imports_no_higher_layer():
    import ast
    import pathlib

    assert all(hasattr(an, name) for name in an.__all__)
    assert callable(an.paths) and callable(an.explain)  # the functions, not the modules of those names
    for module in pathlib.Path(an.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                assert set(names) <= {"autodiff", "errors", "files", "graph", "notation", "ops", "tensor", "text"}, module
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                assert "bpgraph" not in ast.dump(node), module


def test_no_path_from_any_a_or_z_node_to_l2(seed_net):
    for name in A_AND_Z:
        assert not an.depends(seed_net, "L2", name)
        assert an.count_paths(seed_net, "L2", name) == 0
        assert an.paths(seed_net, "L2", name) == []
        assert an.find_path(seed_net, "L2", name) is None
        assert an.no_path_reason(seed_net, "L2", name) == f"L2 does not depend on {name}; its inputs are W1, W2, W3."
    assert not an.through(seed_net, "L2", None, "A*")
    assert not an.through(seed_net, "L2", None, "Z*")
    an.assert_no_path(seed_net, of="L2", through="A*")
    an.assert_no_path(seed_net, of="L2", through=A_AND_Z)
    an.assert_no_path(seed_net, of="L2", wrt="A2")
    assert an.through(seed_net, "L2", None, "kind:param")


def test_the_cost_depends_on_every_parameter_and_w1_has_exactly_two_paths(seed_net):
    for name in ("W1", "b1", "W2", "b2", "W3", "b3", "X"):
        assert an.depends(seed_net, "J", name)
    assert an.depends(seed_net, "J", "J") and an.count_paths(seed_net, "J", "J") == 1
    assert an.count_paths(seed_net, "J", "W1") == 2
    assert an.paths(seed_net, "J", "W1") == [LONG_PATH, ["W1", "L2", "J"]]
    assert an.paths(seed_net, "J", "W1", limit=1) == [LONG_PATH]
    assert an.count_paths(seed_net, "J", "b1") == 1 and an.count_paths(seed_net, "A3", "W1") == 1


def test_through_and_find_path_with_wrt(seed_net):
    assert an.through(seed_net, "J", "W1", "Z*")
    assert an.through(seed_net, "J", "W3", "A*")  # W3 -> Z3 -> A3 -> ...
    assert not an.through(seed_net, "J", "W3", "Z2")
    assert not an.through(seed_net, "J", "W1", "W*")  # endpoints do not count
    assert an.find_path(seed_net, "J", "W1", through="L2") == ["W1", "L2", "J"]
    assert an.find_path(seed_net, "J", "W1", through=["Z2"]) == LONG_PATH
    assert an.find_path(seed_net, "J", through="kind:param") == ["W1"] + LONG_PATH[1:]
    with pytest.raises(GraphError, match="needs wrt"):
        an.find_path(seed_net, "J")


def test_paths_report_gives_the_text_and_json_of_the_paths_command(seed_net):
    listed = an.paths_report(seed_net, "J", "W1")
    assert str(listed) == "\n".join([" -> ".join(LONG_PATH), "W1 -> L2 -> J", "2 paths"])
    assert listed.to_dict() == {"of": "J", "wrt": "W1", "count": 2, "through": None, "capped": False,
                                "paths": [LONG_PATH, ["W1", "L2", "J"]], "reason": None}
    capped = an.paths_report(seed_net, seed_net["J"], seed_net["W1"], limit=1)  # Tensors work too
    assert str(capped).splitlines() == [" -> ".join(LONG_PATH), "2 paths (showing the first 1; raise --limit)"]
    assert capped.capped and capped.of == "J" and capped.paths == (tuple(LONG_PATH),)
    counted = an.paths_report(seed_net, "J", "W1", count_only=True)
    assert str(counted) == "2" and counted.paths == () and not counted.capped
    assert str(an.paths_report(seed_net, "J", "J")) == "J\n1 path"
    none = an.paths_report(seed_net, "L2", "A2", count_only=True)
    assert str(none) == "no path: ∂L2/∂A2 = 0 because L2 does not depend on A2; its inputs are W1, W2, W3."
    assert none.to_dict()["reason"] == an.no_path_reason(seed_net, "L2", "A2")


def test_paths_report_through_a_pattern_a_comma_list_or_nodes(seed_net):
    via = an.paths_report(seed_net, "J", "W1", through="L2, b2")  # a comma list names nodes, like --through
    assert str(via) == "a path through L2, b2: W1 -> L2 -> J"
    assert via.to_dict()["through"] == "L2, b2" and via.to_dict()["paths"] == [["W1", "L2", "J"]]
    assert not via.capped
    miss = an.paths_report(seed_net, "J", "W3", through=[seed_net["Z1"], "Z2"])
    assert str(miss) == "no path from W3 to J passes through Z1,Z2" and miss.paths == ()
    with pytest.raises(UnknownNodeError):
        an.paths_report(seed_net, "J", "W1", through="Q*")


def test_failed_claims_raise_with_the_offending_path(seed_net):
    with pytest.raises(an.ClaimError) as info:
        an.assert_no_path(seed_net, of="J", through="A*")
    assert isinstance(info.value, AssertionError) and isinstance(info.value, BpgraphError)
    assert str(info.value) == ("claim failed: there is a path into J through 'A*': "
                               "A1 -> Z2 -> A2 -> Z3 -> A3 -> cross_entropy -> J")
    with pytest.raises(an.ClaimError, match=r"from W1 to J \(1 of 2 paths\): W1 -> Z1 -> A1"):
        an.assert_no_path(seed_net, of="J", wrt="W1")
    with pytest.raises(an.ClaimError, match=r"L2 does not depend on A2; its inputs are W1, W2, W3\.$"):
        an.assert_path(seed_net, of="L2", wrt="A2")
    with pytest.raises(an.ClaimError, match=r"no path from W3 to J passes through \{Z1, Z2\}"):
        an.assert_path(seed_net, of="J", wrt="W3", through=["Z1", "Z2"])
    assert an.assert_path(seed_net, of="J", wrt="W3") == ["W3", "Z3", "A3", "cross_entropy", "J"]


def test_patterns_select_by_glob_kind_op_and_list(seed_net):
    names = lambda ids: [seed_net.name_of(i) for i in ids]  # noqa: E731
    assert names(an.select(seed_net, "A*")) == ["A1", "A2", "A3"]
    assert names(an.select(seed_net, "W[12]")) == ["W1", "W2"]
    assert names(an.select(seed_net, "kind:param")) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert names(an.select(seed_net, "op:relu")) == ["A1", "A2"]
    assert names(an.select(seed_net, ["Z2", seed_net["A1"], seed_net.id_of("X")])) == ["X", "A1", "Z2"]
    with pytest.raises(GraphError, match="unknown kind 'parm'"):
        an.select(seed_net, "kind:parm")
    with pytest.raises(GraphError, match="unknown op 'rleu'"):
        an.select(seed_net, "op:rleu")


@pytest.mark.parametrize("query", [
    lambda g: an.depends(g, "J", "W11"),
    lambda g: an.count_paths(g, "J", "W11"),
    lambda g: an.paths(g, "J", "W11"),
    lambda g: an.through(g, "J", "W11", "A*"),
    lambda g: an.assert_no_path(g, of="J", wrt="W11"),
    lambda g: an.path_attribution(g, "J", "W11"),
    lambda g: an.term_attribution(g, "J", terms=["W11"]),
    lambda g: an.explain(g, "J", "W11"),
    lambda g: an.compare_grads(g, "J", {"W11": np.zeros((20, 2))}),
])
def test_typos_get_did_you_mean(seed_net, query):
    with pytest.raises(UnknownNodeError, match=r"no node named 'W11'; did you mean 'W1'"):
        query(seed_net)


def test_queries_accept_tensors_and_ids_as_well_as_names(seed_net):
    j, w1 = seed_net["J"], seed_net.id_of("W1")
    assert an.count_paths(seed_net, j, w1) == 2 and an.depends(seed_net, j, seed_net["W1"])
    assert an.paths(seed_net, j, w1, limit=None)[1] == ["W1", "L2", "J"]
    assert an.explain(seed_net, seed_net["L2"], seed_net.id_of("A2")).startswith("∂L2/∂A2 = 0: ")


def test_a_glob_that_matches_nothing_cannot_make_a_claim_pass(seed_net):
    with pytest.raises(UnknownNodeError, match="no node named 'a\\*'"):
        an.assert_no_path(seed_net, of="L2", through="a*")


# --- per-term attribution -------------------------------------------------------------------
def test_term_table_cross_entropy_reaches_every_node_and_l2_only_the_weights(seed_net):
    report = an.term_attribution(seed_net)
    assert report.root == "J" and report.terms == ("cross_entropy", "L2")
    assert {t: float(s) for t, s in report.seeds.items()} == {"cross_entropy": 1.0, "L2": 1.0}
    rows = [r.name for r in report.rows]
    assert rows == ["A3", "Z3", "b3", "W3", "A2", "Z2", "b2", "W2", "A1", "Z1", "b1", "W1"]
    assert report.reached_by("cross_entropy") == rows
    assert report.reached_by("L2") == ["W3", "W2", "W1"]
    for name in A_AND_Z + ["b1", "b2", "b3"]:
        cell = report.row(name).cell("L2")
        assert cell.status == an.NO_PATH and cell.value is None and cell.norm == 0.0
    for name in ("W1", "W2", "W3"):
        share = report.row(name).cell("L2")
        assert share.status == an.NONZERO
        np.testing.assert_allclose(share.value, LAMBD / M * seed_net[name].value, rtol=1e-14)


def test_term_contributions_add_up_to_the_full_gradient(seed_net):
    full = seed_net.backward("J")
    report = an.term_attribution(seed_net, "J")
    for row in report.rows:
        total = sum(c.value for c in row.cells if c.value is not None)
        assert rel_err(total, full[row.name]) < 1e-12, row.name
        assert rel_err(row.grad, full[row.name]) < 1e-12


def test_term_statuses_distinguish_no_path_from_a_numerical_zero():
    g = bp.Graph()
    w = g.param(np.array([1.0, -2.0]), name="w")
    dead = bp.relu(w * 0.0 - 1.0, name="dead")  # relu of negatives: the gradient through it is exactly 0
    t1 = bp.sum(dead, name="t1")
    t2 = bp.sum(w * w, name="t2")
    (t1 + t2).named("J")
    report = an.term_attribution(g)
    assert report.row("w").cell("t1").status == an.ZERO
    assert report.row("w").cell("t2").status == an.NONZERO
    assert report.row("dead").cell("t2").status == an.NO_PATH


def test_a_subtracted_term_gets_seed_minus_one_and_explicit_terms_get_an_other_column():
    g = bp.Graph()
    a = g.param(np.array([0.5, 1.5, -0.5]), name="a")
    t1 = bp.sum(a * a, name="t1")
    t2 = bp.sum(bp.exp(a), name="t2")
    (t1 - t2).named("J")
    full = g.backward("J")
    report = an.term_attribution(g)
    assert float(report.seeds["t2"]) == -1.0
    np.testing.assert_allclose(report.row("a").cell("t2").value, -np.exp(a.value), rtol=1e-15)
    only = an.term_attribution(g, "J", terms=["t1"])
    assert only.terms == ("t1", an.OTHER)
    row = only.row("a")
    np.testing.assert_allclose(row.cell(an.OTHER).value, -np.exp(a.value), rtol=1e-15)
    assert rel_err(row.cell("t1").value + row.cell(an.OTHER).value, full["a"]) < 1e-12


def test_a_term_that_feeds_another_term_is_credited_once():
    g = bp.Graph()
    a = g.param(np.array([0.2, -0.4]), name="a")
    square = a * a
    t1 = bp.sum(square, axis=0, keepdims=True, name="t1")  # shape (1,): see the report on 0-d reuse
    t2 = bp.exp(t1, name="t2")
    (t1 + t2).named("J")
    full = g.backward("J")
    report = an.term_attribution(g)
    assert [r.name for r in report.rows] == ["t1", square.name, "a"]
    for row in report.rows:
        assert rel_err(sum(c.value for c in row.cells), full[row.name]) < 1e-12, row.name
    np.testing.assert_allclose(report.row("t1").cell("t2").value, np.exp(t1.value), rtol=1e-15)


def test_term_report_text_and_json(seed_net):
    report = an.term_attribution(seed_net)
    lines = str(report).splitlines()
    assert lines[1].split() == ["node", "shape", "‖∂J/∂node‖", "cross_entropy", "L2"]
    a2 = next(line for line in lines if line.startswith("A2 "))
    assert a2.endswith("no path")
    w1 = next(line for line in lines if line.startswith("W1 "))
    assert w1.split()[-1] == f"{np.linalg.norm(LAMBD / M * seed_net['W1'].value):.3e}"
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["terms"] == ["cross_entropy", "L2"]
    assert data["rows"][4]["name"] == "A2" and data["rows"][4]["terms"][1]["status"] == "no path"


# --- per-path attribution -------------------------------------------------------------------
def test_w1_has_the_long_path_and_the_short_l2_path(seed_net):
    report = an.path_attribution(seed_net, "J", "W1")
    assert [list(p.nodes) for p in report.paths] == [LONG_PATH, ["W1", "L2", "J"]]
    assert report.count == 2 and not report.capped
    np.testing.assert_allclose(report.paths[1].value, LAMBD / M * seed_net["W1"].value, rtol=1e-14)
    full = seed_net.backward("J")["W1"]
    assert rel_err(report.sum(), full) < 1e-12 and rel_err(report.total, full) < 1e-12
    without_l2 = l2_mlp(lambd=0.0).backward("J")["W1"]
    assert rel_err(report.paths[0].value, without_l2) < 1e-12


@pytest.mark.parametrize("wrt", ["W1", "b1", "W2", "A1", "Z2", "W3", "X"])
def test_path_contributions_add_up_on_the_seed_network(seed_net, wrt):
    report = an.path_attribution(seed_net, "J", wrt)
    full = an.gradients(seed_net, seed_net.id_of("J"), inputs=True)[seed_net.id_of(wrt)]
    assert rel_err(report.sum(), full) < 1e-12


def test_diamond_paths_each_carry_their_product_of_local_derivatives():
    g = diamond()
    x = g["x"].value
    u, v = np.exp(x), np.tanh(x)
    report = an.path_attribution(g, "y", "x")
    assert report.count == an.count_paths(g, "y", "x") == 3
    assert [list(p.nodes) for p in report.paths] == [
        ["x", "u", "s", "y"], ["x", "u", "w", "s", "y"], ["x", "v", "w", "s", "y"]]
    expected = [u, v * u, u * (1 - v ** 2)]
    for path, value in zip(report.paths, expected):
        np.testing.assert_allclose(path.value, value, rtol=1e-14)
    assert rel_err(report.sum(), g.backward("y")["x"]) < 1e-12


def test_a_repeated_operand_is_one_edge_summing_both_positions():
    g = bp.Graph()
    x = g.param(np.array([1.5, -2.0]), name="x")
    sq = (x * x).named("sq")
    bp.sum((sq * x).named("cube"), name="y")  # y = Σ x³, with x used three times
    assert an.count_paths(g, "y", "x") == 2
    report = an.path_attribution(g, "y", "x")
    assert [list(p.nodes) for p in report.paths] == [["x", "cube", "y"], ["x", "sq", "cube", "y"]]
    np.testing.assert_allclose(report.paths[0].value, x.value ** 2, rtol=1e-15)
    np.testing.assert_allclose(report.paths[1].value, 2 * x.value * x.value, rtol=1e-15)
    assert rel_err(report.sum(), 3 * x.value ** 2) < 1e-12
    assert "∂sq/∂x (mul ×2)" in an.explain(g, "y", "x")


def test_a_60_layer_ladder_counts_2_to_the_60_paths_exactly():
    g = ladder(60)
    assert an.count_paths(g, "y", "x") == 2 ** 60
    assert an.count_paths(g, "a60", "x") == 2 ** 59
    first = an.paths(g, "y", "x", limit=3)
    assert len(first) == 3 and all(p[0] == "x" and p[-1] == "y" for p in first)
    assert len(first[0]) == 2 + 2 * 60  # x, then a_i (or b_i) and the add/sub feeding the next one
    report = an.path_attribution(g, "y", "x", limit=10)
    assert report.capped and report.count == 2 ** 60 and len(report.paths) == 10
    assert report.to_dict()["capped"] is True
    assert rel_err(report.total, g.backward("y")["x"]) < 1e-12


def test_ladder_path_contributions_add_up_to_the_gradient():
    g = ladder(4)
    report = an.path_attribution(g, "y", "x", limit=None)
    assert report.count == len(report.paths) == 16 and not report.capped
    assert rel_err(report.sum(), g.backward("y")["x"]) < 1e-12
    assert len({p.nodes for p in report.paths}) == 16


def test_a_pair_with_no_path_has_zero_and_no_paths(seed_net):
    report = an.path_attribution(seed_net, "L2", "A2")
    assert report.count == 0 and report.paths == () and not report.capped
    assert report.total.shape == (3, M) and not report.total.any()


# --- diff -------------------------------------------------------------------------------------
def test_diff_of_lambda_07_and_0_changes_exactly_the_weight_gradients():
    a, b = l2_mlp(lambd=LAMBD), l2_mlp(lambd=0.0)
    diff = an.diff_grads(a, b, labels=("λ=0.7", "λ=0"))
    assert diff.changed == ["W3", "W2", "W1"]
    assert set(diff.unchanged) == {"J", "cross_entropy", "L2", "A3", "Z3", "b3", "A2", "Z2", "b2",
                                   "A1", "Z1", "b1"}
    for name in ("W1", "W2", "W3"):
        row = diff.row(name)
        assert rel_err(row.delta, LAMBD / M * a[name].value) < 1e-12
        assert row.norm == pytest.approx(np.linalg.norm(LAMBD / M * a[name].value), rel=1e-12)
        assert row.max_abs == pytest.approx(np.abs(LAMBD / M * a[name].value).max(), rel=1e-12)
    assert diff.row("A2").norm == 0.0 and diff.row("A2").max_abs == 0.0
    text = str(diff)
    assert re.search(r"^dW1 +\(20, 2\) +changed", text, re.M) and re.search(r"^dA2 +\(3, 211\) +unchanged", text, re.M)
    assert json.loads(json.dumps(diff.to_dict(), allow_nan=False))["changed"] == ["W3", "W2", "W1"]


def test_diff_reports_nodes_only_one_graph_has():
    g1, g2 = bp.Graph(), bp.Graph()
    for g, extra in ((g1, False), (g2, True)):
        w = g.param(np.array([1.0, 2.0]), name="w")
        y = w * w
        if extra:
            y = bp.exp(y, name="e")
        bp.sum(y, name="y")
    diff = an.diff_grads(g1, g2, "y")
    assert diff.row("e").status == "only in b" and diff.row("w").status == "changed"


# --- checking a hand-written backward pass ----------------------------------------------------
def test_the_learners_correct_course_pass_is_all_ok(seed_net):
    report = an.compare_grads(seed_net, "J", course_pass(seed_net))
    assert report.convention == "course" and report.m == M
    assert report.ok and report.first_wrong == [] and report.wrong == []
    given = {r.name for r in report.rows if r.status != an.NOT_GIVEN}
    assert given == {"A3", "Z3", "W3", "b3", "A2", "Z2", "W2", "b2", "A1", "Z1", "W1", "b1"}
    assert all(r.status == an.OK for r in report.rows if r.name in given)
    assert {r.name for r in report.rows if r.status == an.NOT_GIVEN} == {"cross_entropy", "L2"}
    assert "every gradient you gave is correct" in str(report)


def test_exact_gradients_without_the_d_prefix_read_as_the_exact_convention(seed_net):
    report = an.compare_grads(seed_net, None, seed_net.backward("J"))
    assert report.convention == "exact" and report.ok and report.m is None


def test_an_error_in_da2_propagated_by_hand_enters_at_a2(seed_net):
    report = an.compare_grads(seed_net, "J", course_pass(seed_net, mistake=1.0))
    assert report.convention == "course"
    assert report.wrong == ["A2", "Z2", "b2", "W2", "A1", "Z1", "b1", "W1"]
    assert report.first_wrong == ["A2"]
    (entry,) = report.entries
    assert entry.row.key == "dA2" and entry.consumers == ("Z3",)
    assert entry.symptoms == ("Z2", "b2", "W2", "A1", "Z1", "b1", "W1")
    correct = M * seed_net.backward("J")["A2"]
    assert rel_err(entry.row.expected, correct) < 1e-12
    assert entry.formula == "dA2 = W3ᵀ·dZ3"
    assert entry.row.diagnosis == (an.EXTRA_TERM, "yours − correct = λ/m·W2·A1, which looks like a term of L2, "
                                   "but L2 does not depend on A2, so no L2 term belongs in dA2", "L2", None)
    row = report.row("A2")
    added = LAMBD / M * (seed_net["W2"].value @ seed_net["A1"].value)
    assert row.max_abs_error == pytest.approx(np.abs(added).max(), rel=1e-9)
    assert row.rel_error == pytest.approx(np.abs(added).max() / np.abs(correct).max(), rel=1e-9)
    text = str(report)
    assert "the error enters at dA2 (A2): yours − correct = λ/m·W2·A1" in text
    assert "  correct: dA2 = W3ᵀ·dZ3  (from your dZ3, which you have right)" in text
    assert "computed from it and wrong as a result: dZ2, db2, dW2, dA1, dZ1, db1, dW1" in text
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["first_wrong"] == ["A2"] and data["convention"] == "course" and data["ok"] is False
    assert data["entries"][0]["expected"] == {"shape": [3, M], "norm": pytest.approx(np.linalg.norm(correct))}


def test_a_transposed_dw_is_reported_as_such(seed_net):
    grads = course_pass(seed_net)
    grads["dW1"] = grads["dW1"].T
    report = an.compare_grads(seed_net, "J", grads)
    row = report.row("W1")
    assert row.status == an.WRONG_SHAPE and row.given.shape == (2, 20) and row.expected.shape == (20, 2)
    assert row.diagnosis == (an.TRANSPOSED, "your dW1 is the transpose of the correct one", None, None)
    assert row.to_dict()["given_shape"] == [2, 20] and row.to_dict()["shape"] == [20, 2]
    assert report.first_wrong == ["W1"]


def test_hints_for_a_mixed_convention_and_a_flipped_sign(seed_net):
    grads = course_pass(seed_net)
    grads["dZ3"] = grads["dZ3"] / M  # the exact ∂J/∂Z3 among course-style gradients
    grads["db1"] = -grads["db1"]
    report = an.compare_grads(seed_net, "J", grads)
    assert report.row("Z3").diagnosis.detail == ("your dZ3 is 1/m (= 0.004739) times the correct one; "
                                                 "it matches the exact convention (∂J/∂Z3) instead")
    assert report.row("b1").diagnosis == (an.SCALED, "your db1 is −1 times the correct one; the sign is flipped",
                                          None, -1.0)
    assert report.first_wrong == ["Z3", "b1"]


def test_with_only_some_gradients_given_the_error_still_enters_at_a2(seed_net):
    """The nearest checked consumers are found through the unchecked nodes (here dZ2, dA1,
    dZ1): dW2 and dW1 are wrong only because dA2 is, so they are symptoms, not entry points."""
    full = course_pass(seed_net, mistake=1.0)
    given = {key: full[key] for key in ("dA2", "dW2", "dW1", "dZ3")}
    report = an.compare_grads(seed_net, "J", given)
    assert report.wrong == ["A2", "W2", "W1"]
    assert report.first_wrong == ["A2"]
    (entry,) = report.entries
    assert entry.symptoms == ("W2", "W1")


def test_user_gradients_load_from_an_npz_file(seed_net, tmp_path):
    path = tmp_path / "grads.npz"
    np.savez(path, **course_pass(seed_net, mistake=1.0))
    for source in (path, str(path)):
        assert an.compare_grads(seed_net, "J", source).first_wrong == ["A2"]
    with pytest.raises(GraphError, match="cannot read gradients"):
        an.compare_grads(seed_net, "J", tmp_path / "missing.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(GraphError, match="holds one array, not named gradients"):
        an.compare_grads(seed_net, "J", tmp_path / "one.npy")
    script = tmp_path / "make_grads.py"  # the wrong file: no numpy hint about unsafe loading
    script.write_text("import numpy as np\n")
    with pytest.raises(GraphError, match=r"^'.*make_grads\.py' is not an \.npz file: save your gradients with "
                                         r"numpy\.savez\(path, dW1=\.\.\., db1=\.\.\.\) and pass that file$") as caught:
        an.compare_grads(seed_net, "J", script)
    assert "pickle" not in str(caught.value)
    with pytest.raises(GraphError, match="must be numeric"):
        an.compare_grads(seed_net, "J", {"dW1": "oops"})


def test_keys_with_and_without_d_and_an_exact_name_wins():
    g = bp.Graph()
    x = g.param(np.array([1.0, 2.0]), name="x")
    dx = g.param(np.array([3.0, 4.0]), name="dx")
    bp.sum(x * dx, name="y")
    report = an.compare_grads(g, "y", {"dx": np.array([1.0, 2.0]), "x": np.array([3.0, 4.0])})
    assert report.row("dx").status == an.OK and report.row("x").status == an.OK
    assert report.row("dx").key == "dx" and report.row("x").key == "x"
    with pytest.raises(GraphError, match="gradients 'dx' and 'ddx' both name node 'dx'"):
        an.compare_grads(g, "y", {"dx": np.ones(2), "ddx": np.ones(2)})


def test_unknown_keys_list_close_matches(seed_net):
    with pytest.raises(UnknownNodeError, match=r"no node named 'dW4'; did you mean 'dW3', 'dW2', 'dW1'\?"):
        an.compare_grads(seed_net, "J", {"dW4": np.zeros((1, 3))})
    with pytest.raises(GraphError, match="gradients 'W1' and 'dW1' both name node 'W1'; give it once"):
        an.compare_grads(seed_net, "J", {"W1": np.zeros((20, 2)), "dW1": np.zeros((20, 2))})


def test_convention_options_and_tolerances(seed_net):
    grads = course_pass(seed_net, mistake=1.0)
    assert an.compare_grads(seed_net, "J", grads, convention="exact").first_wrong == ["A3"]
    assert an.compare_grads(seed_net, "J", grads, rtol=0.1).ok
    leaves = {k: grads[k] for k in ("dW3", "db3")}
    assert an.compare_grads(seed_net, "J", leaves).convention == "exact"  # a tie reads as exact
    g = bp.Graph()
    w = g.param(np.array([1.0, 2.0]), name="w")
    bp.sum(bp.tanh(w, name="t"), name="y")
    with pytest.raises(GraphError, match="course convention needs m"):
        an.compare_grads(g, "y", {"dt": np.ones(2)}, convention="course")
    report = an.compare_grads(g, "y", {"dt": 4 * np.ones(2)}, convention="course", m=4)
    assert report.ok and report.m == 4
    auto = an.compare_grads(g, "y", {"dt": np.ones(2)})
    assert auto.convention == "exact" and auto.ok
    assert auto.notes == ("course convention not tried: m is unknown (pass m=...)",)
    with pytest.raises(GraphError, match="convention must be"):
        an.compare_grads(g, "y", {}, convention="mine")


def test_a_nonzero_gradient_for_a_node_the_root_does_not_depend_on_is_wrong(seed_net):
    report = an.compare_grads(seed_net, "L2", {"dA2": np.ones((3, M)), "dW1": LAMBD / M * seed_net["W1"].value},
                              convention="exact")
    assert report.row("W1").status == an.OK
    assert report.row("A2").status == an.WRONG and report.row("A2").diagnosis == (
        an.EXTRA_TERM, "L2 does not depend on A2, so no L2 term belongs in dA2: the correct dA2 is 0", "L2", None)
    assert report.first_wrong == ["A2"]


# --- explanations -----------------------------------------------------------------------------
def test_explain_the_two_paths_of_dj_dw1(seed_net):
    text = an.explain(seed_net, "J", "W1")
    lines = text.splitlines()
    assert lines[0] == "∂J/∂W1 = ∂J/∂cross_entropy·∂cross_entropy/∂A3·∂A3/∂Z3·∂Z3/∂A2·∂A2/∂Z2·∂Z2/∂A1·∂A1/∂Z1·∂Z1/∂W1"
    assert lines[1] == "       + ∂J/∂L2·∂L2/∂W1"
    assert "∂A1/∂Z1 (relu)" in text and "∂L2/∂W1 (l2_penalty)" in text
    report = an.path_attribution(seed_net, "J", "W1")
    for path in report.paths:
        assert f"norm {path.norm:.3e}" in text
    assert f"  total ∂J/∂W1: shape (20, 2), norm {np.linalg.norm(report.total):.3e}" in lines


def test_explain_a_pair_with_no_path_in_one_sentence_and_what_the_chain_rule_gives(seed_net):
    reason = "L2 does not depend on A2; its inputs are W1, W2, W3."
    assert an.explain(seed_net, "L2", "A2") == (f"∂L2/∂A2 = 0: {reason} ∂L2/∂A2 = 0, so the L2 share of dA2 is 0; "
                                                "dA2 = W3ᵀ·dZ3 exactly as without L2.")
    assert an.explain(seed_net, "L2", "A2", convention="exact").endswith(
        "so the L2 share of ∂J/∂A2 is 0; ∂J/∂A2 = W3ᵀ·∂J/∂Z3 exactly as without L2.")
    assert an.explain(seed_net, "L2", "A2", format="markdown") == (
        f"**∂L2/∂A2 = 0**: {reason} ∂L2/∂A2 = 0, so the L2 share of dA2 is 0; dA2 = W3ᵀ·dZ3 exactly as without L2.")
    assert an.explain(seed_net, "L2", "A2", format="latex") == (
        "\\begin{aligned}\n"
        r"\frac{\partial \text{L2}}{\partial \text{A2}} &= 0 && \text{(" + reason + r")} \\" "\n"
        r"\text{dA2} &= \text{W3}^\top \cdot \text{dZ3} && \text{(the L2 share of dA2 is 0, exactly as without L2)}"
        "\n\\end{aligned}")
    assert an.explain(seed_net, "W1", "A2") == "∂W1/∂A2 = 0: W1 does not depend on A2; W1 is a param leaf with no inputs."


def test_explain_markdown_has_one_table_row_per_path(seed_net):
    md = an.explain(seed_net, "J", "W1", format="markdown")
    rows = [line for line in md.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2
    assert rows[1].startswith("| 2 | W1 → L2 → J | ∂J/∂L2 (add) · ∂L2/∂W1 (l2\\_penalty) |")
    assert "cross\\_entropy" in md and "cross_entropy" not in md.replace("cross\\_entropy", "")


def test_explain_says_when_paths_are_left_out():
    g = ladder(5)
    text = an.explain(g, "y", "x", limit=3)
    lines = text.splitlines()
    assert lines[3].strip() == "+ … (29 more paths, not written out)"
    assert lines[4].startswith("a sum over the 32 paths from x to y")
    assert len(re.findall(r"^  \d+\. x → ", text, re.M)) == 3
    assert "(29 more paths)" in an.explain(g, "y", "x", format="markdown", limit=3)
    assert r"\text{29 more paths}" in an.explain(g, "y", "x", format="latex", limit=3)


def test_explain_rejects_an_unknown_format(seed_net):
    with pytest.raises(GraphError, match="format must be"):
        an.explain(seed_net, "J", "W1", format="html")


NASTY = ["a_b", "x^2", "{", "%", "\\", "λ~$&#_Δ"]


def nasty_graph():
    g = bp.Graph()
    x = g.param(np.array([0.5, -1.0]), name=NASTY[0])
    y = (x * x).named(NASTY[1])
    z = bp.tanh(x).named(NASTY[2])
    w = (y + z).named(NASTY[3])
    q = bp.exp(w).named(NASTY[4])
    bp.sum(q * x, name=NASTY[5])
    return g


def strip_text_groups(tex: str) -> tuple[str, list[str]]:
    """Remove every \\text{...} group (brace-matched, escapes respected); return the rest and the groups."""
    rest, groups, i = [], [], 0
    while i < len(tex):
        if tex.startswith(r"\text{", i):
            depth, j = 1, i + len(r"\text{")
            while depth:
                if tex[j] == "\\":
                    j += 2
                    continue
                depth += {"{": 1, "}": -1}.get(tex[j], 0)
                j += 1
            groups.append(tex[i + len(r"\text{"):j - 1])
            rest.append(r"\text{}")
            i = j
        else:
            rest.append(tex[i])
            i += 1
    return "".join(rest), groups


def check_latex_structure(tex: str) -> None:
    unescaped = re.sub(r"\\[{}%$&#_]", "", tex)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, tex
    assert depth == 0, tex
    opened = []  # environments nest
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
        if kind == "begin":
            opened.append(env)
        else:
            assert opened and opened.pop() == env, tex
    assert not opened, tex
    assert "%" not in unescaped and "#" not in unescaped and "$" not in re.sub(r"\$\\\w+\$", "", unescaped)
    rest, groups = strip_text_groups(tex)
    allowed = r"\\(textbackslash|textasciicircum|textasciitilde|textless|textgreater|textbar)\{\}|\\[{}%$&#_]|\$\\\w+\$"
    for group in groups:
        plain = re.sub(allowed, "", group)
        assert not set(plain) & set("\\{}$&#^_%~"), group
    assert not set(re.sub(r"\\\\|\\[a-zA-Z]+|\\[ |{}]", "", rest)) & set("%#$~"), rest


def test_latex_escapes_every_name_and_is_well_formed():
    g = nasty_graph()
    tex = an.explain(g, NASTY[5], "a_b", format="latex")
    check_latex_structure(tex)
    for name in NASTY:
        assert an.tex_text(name) in tex
    assert an.tex_text("x^2") == r"\text{x\textasciicircum{}2}"
    assert an.tex_text("a_b%{}\\") == r"\text{a\_b\%\{\}\textbackslash{}}"
    assert an.tex_text("λ…") == r"\text{$\lambda$[U+2026]}"
    check_latex_structure(an.explain(g, "x^2", "{", format="latex"))
    check_latex_structure(an.explain(l2_mlp(), "J", "W1", format="latex", limit=1))


def test_markdown_escapes_names():
    md = an.explain(nasty_graph(), NASTY[5], "a_b", format="markdown")
    assert md.startswith("**∂λ\\~\\$&\\#\\_Δ/∂a\\_b** = ")
    assert "| 2 | a\\_b → x^2 → % → \\\\ → mul\\_5 → λ\\~\\$&\\#\\_Δ |" in md


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (apt package texlive-latex-base)")
def test_latex_compiles_with_pdflatex(tmp_path):
    g, seed = nasty_graph(), l2_mlp()
    parts = [an.explain(g, NASTY[5], "a_b", format="latex"), an.explain(g, "x^2", "{", format="latex"),
             an.explain(g, NASTY[5], NASTY[5], format="latex"), an.explain(seed, "J", "W1", format="latex"),
             an.explain(seed, "L2", "A2", format="latex"), an.explain(seed, "J", "W1", format="latex", limit=1)]
    _pdflatex(tmp_path, parts)
    # the seed network's deepest derivation fits an article's text width (long products wrap)
    log = _pdflatex(tmp_path, [an.explain(seed, "J", wrt, format="latex") for wrt in ("W1", "b1", "Z1")])
    assert "Overfull" not in log


def _pdflatex(folder, parts: list[str]) -> str:
    """Compile ``parts`` as displayed maths in an article; the log."""
    body = "".join(f"\\[\n{p}\n\\]\n" for p in parts)
    (folder / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                                    + body + "\\end{document}\n", encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (folder / "doc.pdf").stat().st_size > 1000
    return (folder / "doc.log").read_text(encoding="utf-8", errors="replace")
