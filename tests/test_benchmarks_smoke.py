"""The benchmark scripts still run, at their smallest sizes, and still check what they time.

No timing is asserted: only that the scripts work end to end, print their ratios, and that
the numbers they compare are right (gradients equal the hand-written ones, no hidden array
copies), so the benchmarks cannot rot.
"""

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def engine():
    return load("bench_engine")


@pytest.fixture(scope="module")
def scale():
    return load("bench_scale")


@pytest.mark.parametrize("copy", [False, True])
def test_bpgraph_step_gives_the_hand_written_gradients(engine, copy):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    J_ref, grads_ref = engine.numpy_step(X, Y, params)
    J, grads = engine.bpgraph_step(X, Y, params, copy=copy)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert sorted(grads) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_bpgraph_step_leaves_the_callers_arrays_writeable(engine):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    engine.bpgraph_step(X, Y, params)  # copy=False: the graph keeps read-only views
    assert X.flags.writeable and Y.flags.writeable and all(p.flags.writeable for p in params.values())


def test_gradient_check_rejects_a_wrong_gradient(engine):
    X, Y, params = engine.make_problem(engine.SIZES["course"])
    J, grads = engine.numpy_step(X, Y, params)
    wrong = {**grads, "W2": grads["W2"] * 1.001}
    with pytest.raises(AssertionError, match="dW2"):
        engine.check_against((J, grads), (J, wrong), "wrong")


def test_engine_benchmark_prints_ratios_after_a_passed_gradient_check(engine, capsys):
    results = engine.main(["--quick", "--rounds", "1"])
    course = results["course"]
    assert set(course.times) == {"numpy", "bpgraph", "bp+copy"}
    assert all(t > 0 for times in course.times.values() for t in times)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("course"))
    assert "[2,20,3,1],211" in row
    assert len(re.findall(r"\(\d+\.\d\dx\)", row)) == 2  # bpgraph and bp+copy against numpy
    assert "gradient check passed at course size" in out


def test_unknown_size_is_refused(engine):
    with pytest.raises(SystemExit):
        engine.main(["--sizes", "huge"])


def test_scale_benchmark_runs_at_its_smallest_size(scale, capsys):
    results = scale.main(["--quick", "--no-layout"])
    chain = results["engine"][("chain", 200)]
    assert chain["nodes"] == 200
    if not isinstance(chain["count_paths"], str):  # count_paths available
        assert chain["paths"] == 1
    layered = results["engine"][("layered", 200)]
    if not isinstance(layered["count_paths"], str):
        assert layered["paths"] > 1
    for shape in ("chain", "layered"):
        memory = results["memory"][shape]
        assert 0 < memory["after_backward"] <= memory["with_nx"] < 2048  # the budget per node
        assert memory["value_data_ratio"] == pytest.approx(1.0, abs=0.05)  # no hidden copies
        assert memory["grad_data_ratio"] == pytest.approx(1.0, abs=0.05)
        assert results["ratios"][shape]["rec+bwd"] == pytest.approx(1.0)  # one size: ratio 1
    out = capsys.readouterr().out
    assert "start-up" in out and "--help" in out and "goals:" in out


def test_scale_references_do_the_engines_arithmetic(scale):
    """The no-engine reference records the same values and finds the same leaf gradient, so the
    two sides of its paired line time the same work."""
    for shape, size in (("chain", 50), ("layered", 58)):
        g, root, leaf = scale.SHAPES[shape](size)
        g.backward(root)
        nodes = scale.REFERENCES[shape](size)
        assert len(nodes) == len(g) - 1  # every node but bpgraph's final sum, with the same ids
        for i, attrs in enumerate(nodes):
            assert attrs["operands"] == g.nodes[i]["operands"]
            np.testing.assert_array_equal(attrs["value"], g.nodes[i]["value"])
            if g.nodes[i]["grad"] is None:
                assert attrs["grad"] is None
            else:
                np.testing.assert_allclose(attrs["grad"], g.nodes[i]["grad"])
        assert leaf.grad is not None and nodes[0]["grad"] is not None


def test_scale_benchmark_pairs_sizes_and_drawings_with_layouts(scale, capsys):
    """Two small sizes: the paired per-node ratio, and DOT generation against the layout."""
    results = scale.main(["--sizes", "60,120", "--shapes", "chain", "--repeat", "1",
                          "--full-layout-max", "60"])
    paired = results["ratios"]["chain"]["paired"]
    assert paired["rounds"] == scale.PAIRED_ROUNDS and paired["ratio"] > 0  # goals: never fewer
    assert {"extra", "reference_ratio", "reference_range", "reference_extra"} <= set(paired)
    assert paired["reference_ratio"] > 0 and 0 < paired["reference_range"][0] <= paired["reference_range"][1]
    out = capsys.readouterr().out
    assert "paired rounds" in out and "no engine" in out
    small, large = results["engine"][("chain", 60)], results["engine"][("chain", 120)]
    if shutil.which("dot"):  # the layout needs the system Graphviz
        drawn = large["collapsed"]
        assert drawn["rounds"] == scale.PAIRED_ROUNDS and drawn["units"] == 120
        assert all(drawn[f"{key}_share"] > 0 for key in ("dot", "again", "passes", "read"))
        assert drawn["shares"][0] <= drawn["dot_share"] <= drawn["shares"][1]
        assert 0 < small["full_share"][0] and "full_share" not in large  # laid out whole up to 60
        assert "DOT generation / layout of the same drawing (goal < 10%): collapsed, first drawing 60: " in out
        assert "uncollapsed: not attempted above 60 nodes" in out
    else:
        assert "failed:" in out


def test_shapes_have_the_requested_size_and_a_scalar_root(scale):
    for shape, build in scale.SHAPES.items():
        g, root, leaf = build(200)
        assert abs(len(g) - 200) <= scale.WIDTH, shape
        assert root.shape == () and leaf.kind == "param"
