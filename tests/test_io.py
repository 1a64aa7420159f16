"""Graph files: JSON that round-trips exactly, strict loading with precise errors, GraphML, CLI."""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET
from typing import Any

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

import bpgraph as bp
from bpgraph import io
from bpgraph.cli import cli
from bpgraph.errors import BpgraphError
from bpgraph.examples import EXAMPLES, l2_mlp
from bpgraph.io.write import dumps


def small_graph() -> bp.Graph:
    """X, W, b, Z = linear, A = relu (nested scope), sq = A * A (repeated operand), J = sum."""
    g = bp.Graph()
    g.meta.update(root="J", note="tiny", sizes=[2, 3])
    x = g.input(np.arange(6.0).reshape(2, 3) / 7, name="X")
    with g.scope("layer1"):
        w = g.param([[0.5, -1.0], [2.0, 0.25]], name="W")
        b = g.param([[0.1], [-0.2]], name="b")
        z = bp.linear(w, x, b, name="Z")
        with g.scope("act"):
            a = bp.relu(z, name="A")
    sq = (a * a).named("sq")
    bp.sum(sq, axis=(0, 1), keepdims=False, name="J")
    return g


def small_data(**kwargs: Any) -> dict[str, Any]:
    return io.to_dict(small_graph(), **kwargs)


def node(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in data["nodes"] if n["name"] == name)


def load_error(data: Any, *expected: str) -> io.GraphFileError:
    """Loading ``data`` fails with a GraphFileError whose message contains every ``expected``."""
    with pytest.raises(io.GraphFileError) as info:
        io.from_dict(data)
    for text in expected:
        assert text in str(info.value), str(info.value)
    return info.value


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# --- round trips -------------------------------------------------------------------------------------
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_every_example_round_trips_with_values_and_grads(tmp_path, example):
    g = EXAMPLES[example].build()
    root = g.output.name
    expected_grads = g.backward(root)
    path = io.save_json(g, tmp_path / "g.json", grads=True)
    h = io.load_json(path)

    assert h.meta == g.meta and len(h) == len(g)
    for a, b in zip(g, h):
        assert (a.id, a.name, a.kind, a.op, a.node["scope"], a.node["requires_grad"]) == \
               (b.id, b.name, b.kind, b.op, b.node["scope"], b.node["requires_grad"])
        assert [t.name for t in g.operands(a)] == [t.name for t in h.operands(b)]
        assert a.node["params"] == b.node["params"]
        assert [type(v) for v in a.node["params"].values()] == [type(v) for v in b.node["params"].values()]
        assert a.value.dtype == b.value.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.value, b.value)  # exactly: repr of a float round-trips
    loaded_grads = h.backward(root)
    assert list(loaded_grads) == list(expected_grads)
    for name, grad in expected_grads.items():
        np.testing.assert_array_equal(loaded_grads[name], grad)
    stored = {n["name"]: n["grad"] for n in json.loads(path.read_text())["nodes"]}
    for a in g:
        if a.grad is None:
            assert stored[a.name] is None
        else:
            np.testing.assert_array_equal(np.array(stored[a.name]), a.grad)


def test_from_dict_reads_what_to_dict_writes_including_tuple_params():
    h = io.from_dict(small_data())
    assert h.node("J")["params"] == {"axis": (0, 1), "keepdims": False}
    assert h.node("A")["scope"] == "layer1/act" and h.node("sq")["scope"] == ""
    assert h.meta == {"root": "J", "note": "tiny", "sizes": [2, 3]}
    assert h.grad_root is None and all(t.grad is None for t in h)  # stored grads are not restored


def test_repeated_operands_are_kept_in_order():
    g = bp.Graph()
    x = g.param([1.5, -2.0], name="x")
    bp.sum((x * x).named("y"), name="J")
    h = io.from_dict(io.to_dict(g))
    assert [t.name for t in h.operands("y")] == ["x", "x"]
    assert h.nx.number_of_edges() == 2  # x -> y once, y -> J
    np.testing.assert_array_equal(h.backward("J")["x"], [3.0, -4.0])


def test_nan_and_infinities_round_trip_as_strict_json(tmp_path):
    g = bp.Graph()
    specials = [np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.7976931348623157e308]
    x = g.input(specials, name="x")
    y = (-x).named("y")
    g.input(np.array([np.nan, 1.25], dtype=np.float32), name="x32")
    path = io.save_json(g, tmp_path / "nan.json")
    text = path.read_text()
    assert '"nan"' in text and '"-inf"' in text and "NaN" not in text and "Infinity" not in text

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)  # strict JSON
    h = io.load_json(path)
    np.testing.assert_array_equal(h["x"].value, x.value)
    np.testing.assert_array_equal(h["y"].value, y.value)
    assert np.signbit(h["x"].value[3]) and h["x"].value[4] == 5e-324
    assert h["x32"].value.dtype == np.float32 and np.isnan(h["x32"].value[0])


def test_integer_boolean_and_small_float_dtypes_round_trip():
    g = bp.Graph()
    g.input(np.array([[1, -2], [3, 2**62]], dtype=np.int64), name="i")
    g.input(np.array([0, 255], dtype=np.uint8), name="u")
    g.const(np.array([True, False]), name="mask")
    g.param(np.array([0.1, 3.5], dtype=np.float16), name="h")
    g.input(np.array(7.25), name="scalar")
    h = io.from_dict(json.loads(json.dumps(io.to_dict(g))))
    for t in g:
        assert h[t.name].value.dtype == t.value.dtype and h[t.name].shape == t.shape
        np.testing.assert_array_equal(h[t.name].value, t.value)


def test_output_is_deterministic_and_a_loaded_graph_saves_byte_identically(tmp_path):
    first = io.save_json(l2_mlp(), tmp_path / "a.json", grads=False).read_bytes()
    second = io.save_json(l2_mlp(), tmp_path / "b.json").read_bytes()
    again = io.save_json(io.load_json(tmp_path / "a.json"), tmp_path / "c.json").read_bytes()
    assert first == second == again
    assert first.endswith(b"}\n")
    data = json.loads(first)
    assert [n["id"] for n in data["nodes"]] == list(range(len(data["nodes"])))
    assert list(data) == sorted(data) and all(list(n) == sorted(n) for n in data["nodes"])


def test_the_file_is_networkx_node_link_data():
    g = small_graph()
    read = nx.node_link_graph(json.loads(dumps(io.to_dict(g))))
    assert read.is_directed() and sorted(read.edges) == sorted(g.nx.edges)
    assert read.graph == g.meta and read.nodes[3]["name"] == "Z"


def test_hostile_names_round_trip_through_json():
    g = bp.Graph()
    name = 'a\x00b\x01"\\\ud800 λ'
    g.input([1.0], name=name)
    h = io.from_dict(json.loads(dumps(io.to_dict(g))))
    assert h.names == [name]


def test_saving_refuses_what_cannot_be_loaded_back():
    g = bp.Graph()
    g.input(np.array([1 + 2j]), name="z")
    with pytest.raises(io.GraphFileError, match="node 'z': field 'dtype': dtype complex128 cannot be saved"):
        io.to_dict(g)
    g = small_graph()
    g.meta["bad"] = {1, 2}
    with pytest.raises(io.GraphFileError, match="field 'graph': meta entry 'bad' is not JSON data"):
        io.to_dict(g)
    with pytest.raises(io.GraphFileError, match="no gradients to save: call graph.backward"):
        io.to_dict(small_graph(), grads=True)


def test_graph_file_error_is_a_bpgraph_value_error_with_node_and_field():
    data = small_data()
    node(data, "Z")["op"] = "softplus"
    error = load_error(data)
    assert isinstance(error, BpgraphError) and isinstance(error, ValueError)
    assert (error.node, error.index, error.field, error.source) == ("Z", 3, "op", "<data>")


# --- validation: the file as a whole ------------------------------------------------------------------
def test_not_a_json_object(tmp_path):
    load_error([1, 2], "<data>: not a bpgraph graph file: expected a JSON object, found a list")
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(io.GraphFileError, match="list.json: not a bpgraph graph file"):
        io.load_json(path)


def test_missing_or_wrong_format():
    data = small_data()
    del data["format"]
    load_error(data, "field 'format'", "it is missing", "not a bpgraph graph file")
    data["format"] = "dot"
    load_error(data, "field 'format'", "expected 'bpgraph-graph' (found 'dot')")


def test_unknown_or_missing_version():
    data = small_data()
    data["version"] = 2
    load_error(data, "<data>: field 'version': unknown version 2: this bpgraph reads version 1 (it was written "
                     "by a newer bpgraph: upgrade to read it)")
    data["version"] = 0
    load_error(data, "<data>: field 'version': unknown version 0: this bpgraph reads version 1")
    data["version"] = "1"
    load_error(data, "<data>: field 'version': expected an integer, found a string")
    data["version"] = True
    load_error(data, "<data>: field 'version': expected an integer, found a boolean")
    del data["version"]
    load_error(data, "<data>: field 'version': missing")


def test_unknown_and_missing_top_level_fields():
    data = small_data()
    data["colour"] = "red"
    load_error(data, "field 'colour': unknown field (known: directed, edges, format")
    data = small_data()
    del data["edges"]
    load_error(data, "field 'edges': missing")
    data = small_data()
    data["nodes"] = {"X": {}}
    load_error(data, "field 'nodes': expected a list of nodes, found an object")
    data = small_data()
    data["nodes"][2] = "b"
    load_error(data, "nodes[2]: expected an object, found a string")


def test_the_graph_is_directed_without_parallel_edges():
    data = small_data()
    data["multigraph"] = True
    load_error(data, "<data>: field 'multigraph': expected false")
    data = small_data()
    data["directed"] = 1
    load_error(data, "<data>: field 'directed': expected true")


def test_values_are_needed_to_load():
    load_error(small_data(values=False), "saved without values", "export the graph again with values")


def test_malformed_json_text(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "bpgraph-graph",\n "version": ')
    with pytest.raises(io.GraphFileError, match="bad.json: not valid JSON: Expecting value at line 2 column 13"):
        io.load_json(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(io.GraphFileError, match="not UTF-8 text"):
        io.load_json(path)


def test_non_standard_constants_and_repeated_keys_are_refused(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(dumps(small_data()).replace('"value":[[0.0,', '"value":[[NaN,', 1))
    with pytest.raises(io.GraphFileError, match='NaN is not JSON; bpgraph writes non-finite numbers as "nan"'):
        io.load_json(path)
    path.write_text(dumps(small_data()).replace('"name":"X"', '"name":"X","name":"Y"', 1))
    with pytest.raises(io.GraphFileError, match="the key 'name' appears twice"):
        io.load_json(path)


def test_edges_must_match_the_operands():
    data = small_data()
    data["edges"].pop()
    load_error(data, "field 'edges': missing the edge 5 -> 6 ('sq' is an operand of 'J')")
    data = small_data()
    data["edges"].append({"source": 0, "target": 6})
    load_error(data, "field 'edges[6]': edge 0 -> 6 is not an operand")
    data = small_data()
    data["edges"].append(dict(data["edges"][0]))
    load_error(data, "field 'edges[6]': edge", "is repeated")


def test_grad_root_must_name_a_node():
    g = small_graph()
    g.backward("J")
    data = io.to_dict(g, grads=True)
    assert data["grad_root"] == "J"
    data["grad_root"] = "K"
    load_error(data, "field 'grad_root': names no node: 'K'")


def test_meta_must_be_an_object_of_finite_data():
    data = small_data()
    data["graph"] = []
    load_error(data, "field 'graph': expected an object (the graph's meta data), found a list")
    data["graph"] = {"lambd": float("inf")}
    load_error(data, "field 'graph': meta data holds the number inf")


# --- validation: one node ------------------------------------------------------------------------------
@pytest.mark.parametrize("field, bad, found", [
    ("shape", "2x3", "expected a list of sizes, found a string"),
    ("requires_grad", "yes", "expected true or false, found a string"),
    ("operands", "W", "expected a list of node ids, found a string"),
    ("params", [], "expected an object, found a list"),
    ("scope", None, "expected a string, found null"),
    ("kind", 1, "expected a string, found an integer"),
    ("dtype", 64, "expected a string, found an integer"),
    ("op", False, "expected the name of an op, found a boolean"),
])
def test_wrong_types_name_the_node_and_field(field, bad, found):
    data = small_data()
    node(data, "Z")[field] = bad
    load_error(data, f"node 'Z' (nodes[3]): field '{field}': {found}")


def test_a_node_without_a_usable_name_is_named_by_position():
    data = small_data()
    node(data, "Z")["name"] = 5
    load_error(data, "<data>: nodes[3]: field 'name': expected a string, found an integer")
    node(data, 5)["name"] = "x" * 1001
    load_error(data, "nodes[3]: field 'name': a name must be 1 to 1000 characters")


@pytest.mark.parametrize("field", ["kind", "name", "operands", "params", "scope", "shape", "dtype",
                                   "requires_grad", "value", "op", "id"])
def test_missing_node_fields(field):
    data = small_data()
    del node(data, "Z")[field]
    load_error(data, f"field '{field}': missing")
    if field != "name":
        load_error(data, "node 'Z' (nodes[3])")


def test_unknown_node_field_and_grad_without_grad_root():
    data = small_data()
    node(data, "A")["colour"] = "red"
    load_error(data, "node 'A' (nodes[4]): field 'colour': unknown field (known: dtype, id, kind")
    data = small_data()
    node(data, "A")["grad"] = None
    load_error(data, "node 'A' (nodes[4]): field 'grad': unknown field")


def test_grads_in_the_file_are_checked():
    g = small_graph()
    g.backward("J")
    data = io.to_dict(g, grads=True)
    node(data, "J")["grad"] = [1.0]
    load_error(data, "node 'J' (nodes[6]): field 'grad': nested deeper than its shape []")
    node(data, "J")["grad"] = "1.0"
    load_error(data, "field 'grad': the string '1.0' is not a number")
    del node(data, "W")["grad"]
    load_error(data, "node 'W' (nodes[1]): field 'grad': missing")


def test_dangling_operand():
    data = small_data()
    node(data, "Z")["operands"][1] = 99
    load_error(data, "node 'Z' (nodes[3]): field 'operands[1]': refers to id 99, which no node has")
    node(data, "Z")["operands"][1] = "X"
    load_error(data, "field 'operands[1]': expected a node id, found a string")


def test_operand_that_comes_later_or_is_the_node_itself():
    data = small_data()
    node(data, "Z")["operands"][1] = 4  # A, which is computed from Z: a cycle
    load_error(data, "node 'Z' (nodes[3]): field 'operands[1]': refers to nodes[4], which comes later")
    node(data, "Z")["operands"][1] = 3
    load_error(data, "node 'Z' (nodes[3]): field 'operands[1]': the node is its own operand (a cycle)")


def test_unknown_op_lists_the_known_ones():
    data = small_data()
    node(data, "A")["op"] = "softplus"
    error = load_error(data, "node 'A' (nodes[4]): field 'op': unknown op 'softplus'; known ops: abs, add")
    assert "relu" in str(error) and "l2_penalty" in str(error)


def test_wrong_arity():
    data = small_data()
    node(data, "Z")["operands"] = [1, 0]
    load_error(data, "node 'Z' (nodes[3]): field 'operands': linear takes 3 operand(s), found 2")
    g = bp.Graph()
    bp.l2_penalty([g.param([1.0], name="W")], lambd=0.5, m=2, name="L2")
    data = io.to_dict(g)
    node(data, "L2")["operands"] = []
    data["edges"] = []
    load_error(data, "node 'L2' (nodes[1]): field 'operands': l2_penalty takes at least 1 operand(s), found 0")


def test_duplicate_names_and_ids():
    data = small_data()
    node(data, "A")["name"] = "Z"
    load_error(data, "nodes[4]): field 'name': duplicate name 'Z' (also nodes[3])")
    data = small_data()
    node(data, "A")["id"] = 3
    load_error(data, "node 'A' (nodes[4]): field 'id': duplicate id 3 (also nodes[3])")


def test_unknown_kind_and_bad_scope():
    data = small_data()
    node(data, "W")["kind"] = "weight"
    load_error(data, "node 'W' (nodes[1]): field 'kind': unknown kind 'weight'; expected one of param, input")
    data = small_data()
    node(data, "A")["scope"] = "layer1//act"
    load_error(data, "node 'A' (nodes[4]): field 'scope': 'layer1//act' has an empty part")


def test_leaves_have_no_op_operands_or_params():
    data = small_data()
    node(data, "W")["op"] = "relu"
    load_error(data, "node 'W' (nodes[1]): field 'op': a param has no op; expected null")
    data = small_data()
    node(data, "X")["params"] = {"axis": 0}
    load_error(data, "node 'X' (nodes[0]): field 'params': a input has no params")


def test_params_are_checked_and_used_as_the_op_needs_them():
    data = small_data()
    del node(data, "J")["params"]["keepdims"]
    load_error(data, "node 'J' (nodes[6]): field 'params': cannot be recomputed", "keepdims")
    data = small_data()
    node(data, "J")["params"]["axis"] = [[0], [1]]
    load_error(data, "node 'J' (nodes[6]): field 'params.axis': a param is a finite number")
    data = small_data()
    node(data, "J")["params"]["axis"] = 10**30
    load_error(data, "node 'J' (nodes[6]): field 'params': cannot be recomputed")


def test_requires_grad_must_follow_from_kind_and_operands():
    data = small_data()
    node(data, "Z")["requires_grad"] = False
    load_error(data, "node 'Z' (nodes[3]): field 'requires_grad': is false but the rebuilt node's is true")
    data = small_data()
    node(data, "W")["requires_grad"] = False
    load_error(data, "node 'W' (nodes[1]): field 'requires_grad'")


def test_shape_and_value_size_mismatch():
    data = small_data()
    node(data, "X")["shape"] = [3, 2]
    load_error(data, "node 'X' (nodes[0]): field 'value': ragged or not of shape [3, 2]: "
                     "value should be a list of 3, found a list of 2")
    data = small_data()
    node(data, "X")["value"][0].append(1.0)
    load_error(data, "node 'X' (nodes[0]): field 'value': ragged or not of shape [2, 3]: "
                     "value[0] should be a list of 3, found a list of 4")
    data = small_data()
    node(data, "X")["shape"] = [2, -3]
    load_error(data, "node 'X' (nodes[0]): field 'shape': sizes must be integers >= 0")


def test_ragged_and_too_deep_values():
    data = small_data()
    node(data, "X")["value"][1].pop()
    load_error(data, "node 'X' (nodes[0]): field 'value': ragged",
               "value[1] should be a list of 3, found a list of 2")
    data = small_data()
    node(data, "X")["value"][1][2] = [0.5]
    load_error(data, "node 'X' (nodes[0]): field 'value': nested deeper than its shape [2, 3]")
    data = small_data()
    node(data, "X")["value"] = 1.0
    load_error(data, "field 'value': ragged or not of shape [2, 3]: "
                     "value should be a list of 2, found a number")


@pytest.mark.parametrize("dtype", ["complex128", "object", "float128", "str"])
def test_dtype_not_allowed(dtype):
    data = small_data()
    node(data, "X")["dtype"] = dtype
    load_error(data, f"node 'X' (nodes[0]): field 'dtype': dtype '{dtype}' is not allowed; allowed: bool, int8")


def test_elements_must_suit_the_dtype():
    data = small_data()
    node(data, "X")["value"][0][1] = "1.5"
    load_error(data, "node 'X' (nodes[0]): field 'value': the string '1.5' is not a number")
    node(data, "X")["value"][0][1] = True
    load_error(data, "field 'value': value[0][1] is a boolean; a float64 array holds numbers")
    node(data, "X")["value"][0][1] = 1e300
    node(data, "X")["dtype"] = "float32"
    load_error(data, "field 'value': a number is too large for float32")
    g = bp.Graph()
    g.input(np.array([1, 2]), name="i")
    data = io.to_dict(g)
    data["nodes"][0]["value"][1] = 2.0
    load_error(data, "node 'i' (nodes[0]): field 'value': value[1] is a number; a int64 array holds integers")
    data["nodes"][0]["value"][1] = 2**70
    load_error(data, "field 'value': a number does not fit int64")
    data["nodes"][0]["kind"] = "param"
    data["nodes"][0]["requires_grad"] = True
    data["nodes"][0]["value"][1] = 2
    load_error(data, "node 'i' (nodes[0]): field 'dtype': a param holds floats, not int64")


def test_a_number_too_large_for_float64_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(dumps(small_data()).replace('"value":[[0.0,', '"value":[[1e999,', 1))
    with pytest.raises(io.GraphFileError) as info:
        io.load_json(path)
    assert "node 'X' (nodes[0]): field 'value': a number is too large for float64" in str(info.value)


# --- replay: values must follow from the ops ----------------------------------------------------------------
def test_replay_names_the_first_corrupted_node():
    data = io.to_dict(l2_mlp())
    node(data, "Z2")["value"][1][4] += 1e-6
    error = load_error(data, "node 'Z2' (nodes[8]): field 'value': does not follow from linear(W2, A1, b2): "
                             "max abs difference 1e-06")
    assert error.node == "Z2" and "A2" not in str(error)


def test_replay_tolerates_nothing_visible_but_float_noise():
    data = io.to_dict(l2_mlp())
    z2 = node(data, "Z2")["value"]
    z2[0][0] = float(np.nextafter(z2[0][0], np.inf))  # one ulp: well within the tolerance
    assert io.from_dict(data).names == l2_mlp().names


def test_replay_checks_shape_dtype_and_non_finite_entries():
    data = small_data()
    node(data, "A")["shape"] = [3, 2]
    node(data, "A")["value"] = np.reshape(node(data, "A")["value"], (3, 2)).tolist()
    load_error(data, "node 'A' (nodes[4]): field 'shape': is [3, 2] but relu(Z) gives [2, 3]")
    data = small_data()
    node(data, "A")["dtype"] = "float32"
    load_error(data, "node 'A' (nodes[4]): field 'dtype': is float32 but relu(Z) gives float64")
    data = small_data()
    node(data, "sq")["value"][0][0] = "nan"
    load_error(data, "node 'sq' (nodes[5]): field 'value': does not follow from mul(A, A): "
                     "its NaN/inf entries differ")
    g = bp.Graph()
    i = g.input(np.array([1, 2]), name="i")
    (i + i).named("twice")
    data = io.to_dict(g)
    node(data, "twice")["value"][1] = 5
    load_error(data, "node 'twice' (nodes[1]): field 'value': does not follow from add(i, i): max abs difference 1")


# --- limits -------------------------------------------------------------------------------------------------
def test_a_file_over_max_file_bytes_is_refused_before_parsing(tmp_path, monkeypatch):
    path = io.save_json(small_graph(), tmp_path / "g.json")
    monkeypatch.setattr(io.limits, "MAX_FILE_BYTES", 100)

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed a file over the limit")

    monkeypatch.setattr(json, "loads", never)
    with pytest.raises(io.GraphFileError, match=r"g.json: the file is larger than MAX_FILE_BYTES \(100 "):
        io.load_json(path)


def test_a_limit_raised_in_io_limits_reaches_the_reader_and_is_restored(monkeypatch):
    g = bp.Graph()
    x = g.input(np.array([1.0, 2.0]), name="x")
    (x + x).named("twice")
    data = io.to_dict(g)
    node(data, "twice")["value"][1] = 4.2
    monkeypatch.setattr(io.limits, "REPLAY_RTOL", 0.5)
    assert io.limits.REPLAY_RTOL == 0.5 and io.from_dict(data)["twice"].value[1] == 4.0
    monkeypatch.undo()
    assert io.limits.REPLAY_RTOL == 1e-12
    load_error(data, "node 'twice' (nodes[1]): field 'value': does not follow from add(x, x)")


def test_the_package_keeps_its_public_names():
    names = {"to_dict", "save_json", "save_graphml", "load_json", "from_dict", "GraphFileError", "EXTENSIONS",
             "FORMAT", "VERSION", "DTYPES", "NONFINITE", "limits"}
    assert names <= set(io.__all__) and all(hasattr(io, name) for name in io.__all__)


def test_a_huge_claimed_shape_is_refused_before_allocating():
    data = small_data()
    node(data, "X")["shape"] = [10**6, 10**6, 10**6]
    load_error(data, "node 'X' (nodes[0]): field 'shape': shape [1000000, 1000000, 1000000] brings the file's "
                     "arrays to 1000000000000000000 elements, more than MAX_ELEMENTS (10000000)")


def test_the_element_limit_counts_all_arrays(monkeypatch):
    data = small_data()  # saved under the default limits
    monkeypatch.setattr(io.limits, "MAX_ELEMENTS", 20)  # X 6 + W 4 + b 2 + Z 6 = 18, then A brings 24
    load_error(data, "node 'A' (nodes[4]): field 'shape'", "24 elements, more than MAX_ELEMENTS (20)")


def test_an_op_whose_result_is_not_the_stored_shape_is_refused_before_computing():
    g = bp.Graph()
    x = g.input(np.ones((100, 1)), name="x")
    y = g.input(np.ones((1, 1)), name="y")
    (x * y).named("z")
    data = io.to_dict(g)
    node(data, "y").update(shape=[1, 100], value=[[1.0] * 100])  # x * y would now be 100 x 100
    load_error(data, "node 'z' (nodes[2]): field 'shape': is [100, 1] but mul(x, y) gives [100, 100]")


def test_too_many_nodes(monkeypatch):
    data = small_data()  # saved under the default limits
    monkeypatch.setattr(io.limits, "MAX_NODES", 3)
    load_error(data, "field 'nodes': 7 nodes, more than MAX_NODES (3)")


def test_too_many_dimensions():
    data = small_data()
    x = node(data, "X")
    x["shape"], x["value"] = [1] * 33, json.loads("[" * 33 + "1.0" + "]" * 33)
    load_error(data, "node 'X' (nodes[0]): field 'shape': 33 dimensions, more than MAX_DEPTH (32)")


def test_a_deeply_nested_value_file_is_refused_without_a_recursion_error(tmp_path):
    path = tmp_path / "deep.json"
    depth = 200_000
    path.write_text(dumps(small_data()).replace('"value":[[0.0,', '"value":' + "[" * depth + "[[0.0,", 1)
                    .replace("]],", "]]" + "]" * depth + ",", 1))
    with pytest.raises(io.GraphFileError, match="deep.json: JSON nested too deeply to read"):
        io.load_json(path)


def test_deep_meta_is_refused():
    data = small_data()
    data["graph"] = {"deep": json.loads("[" * 40 + "]" * 40)}
    load_error(data, "field 'graph': meta data nested more than MAX_DEPTH (32) levels deep")


# --- GraphML ----------------------------------------------------------------------------------------------
def test_graphml_parses_back_with_the_nodes_edges_and_attributes(tmp_path):
    g = l2_mlp()
    g.backward("J")
    path = io.save_graphml(g, tmp_path / "l2.graphml", values=True, grads=True)
    read = nx.read_graphml(path)
    assert read.number_of_nodes() == len(g) == 17
    assert read.number_of_edges() == g.nx.number_of_edges()
    assert [read.nodes[str(i)]["name"] for i in range(len(g))] == g.names
    z1 = read.nodes[str(g.id_of("Z1"))]
    assert (z1["kind"], z1["op"], z1["scope"], json.loads(z1["shape"])) == ("op", "linear", "layer1", [20, 211])
    assert json.loads(z1["operands"]) == [g.id_of("W1"), g.id_of("X"), g.id_of("b1")]
    np.testing.assert_array_equal(json.loads(z1["value"]), g["Z1"].value)
    np.testing.assert_array_equal(json.loads(read.nodes[str(g.id_of("W1"))]["grad"]), g["W1"].grad)
    assert json.loads(read.nodes[str(g.id_of("L2"))]["params"]) == {"lambd": 0.7, "m": 211}
    assert json.loads(read.graph["meta"]) == g.meta and read.graph["grad_root"] == "J"


def test_graphml_without_values_has_no_value_attributes(tmp_path):
    read = nx.read_graphml(io.save_graphml(small_graph(), tmp_path / "s.graphml"))
    assert all("value" not in attrs and "grad" not in attrs for _, attrs in read.nodes(data=True))


def test_graphml_is_valid_xml_for_hostile_names(tmp_path):
    g = bp.Graph()
    with g.scope("s\x02"):
        g.input([1.0], name='a\x00b\x01\r\\ <&>"\ud800\uffff ok')
    path = io.save_graphml(g, tmp_path / "hostile.graphml")
    ET.parse(path)  # well-formed XML 1.0
    attrs = nx.read_graphml(path).nodes["0"]
    assert attrs["name"] == 'a\\x00b\\x01\\x0d\\\\ <&>"\\ud800\\uffff ok'
    assert attrs["scope"] == "s\\x02"


# --- the command line ---------------------------------------------------------------------------------------
def test_cli_export_then_render_and_grads_from_the_file(tmp_path):
    saved = tmp_path / "f.json"
    result = run("export", "l2-mlp", "-o", str(saved), "--grads")
    assert result.exit_code == 0 and result.output.strip() == f"wrote {saved}"
    assert json.loads(saved.read_text())["graph"]["root"] == "J"
    svg = tmp_path / "f.svg"
    assert run("render", str(saved), "-o", str(svg)).exit_code == 0
    assert "<svg" in svg.read_text(encoding="utf-8")
    from_file = run("grads", str(saved))
    assert from_file.exit_code == 0 and from_file.output == run("grads", "l2-mlp").output


def test_cli_diff_of_two_exported_files_changes_only_the_weights(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("export", "l2-mlp", "--set", "lambd=0.7", "-o", str(a)).exit_code == 0
    assert run("export", "l2-mlp", "--set", "lambd=0", "-o", str(b)).exit_code == 0
    result = run("diff", str(a), str(b), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert sorted(data["changed"]) == ["W1", "W2", "W3"] and data["root"] == "J"
    assert {row["status"] for row in data["rows"] if row["name"] not in data["changed"]} == {"unchanged"}


def test_cli_malformed_json_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "bpgraph-graph", ')
    result = CliRunner().invoke(cli, ["grads", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: {bad}: not valid JSON: Expecting property name enclosed in double quotes at line 1 column 29"]
    assert "Traceback" not in result.output


def test_cli_a_file_exported_without_values_cannot_be_used_and_says_why(tmp_path):
    saved = tmp_path / "nv.json"
    assert run("export", "logistic", "-o", str(saved), "--no-values").exit_code == 0
    result = CliRunner().invoke(cli, ["grads", str(saved)])
    assert result.exit_code == 2 and "saved without values" in result.output


def test_cli_an_export_that_fails_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_text("old graph")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = CliRunner().invoke(cli, ["export", "l2-mlp", "-o", str(target)])
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert target.read_text() == "old graph"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left behind


def test_cli_an_export_of_an_unsavable_graph_keeps_the_old_file(tmp_path):
    script = tmp_path / "net.py"
    script.write_text("import numpy as np\nimport bpgraph as bp\n\n"
                      "def build():\n"
                      "    g = bp.Graph()\n"
                      "    g.meta['when'] = object()\n"
                      "    return bp.sum(g.param(np.ones(2), name='w'), name='y')\n")
    target = tmp_path / "f.json"
    target.write_text("old graph")
    result = CliRunner().invoke(cli, ["export", str(script), "-o", str(target)])
    assert result.exit_code == 2 and "meta entry 'when' is not JSON data" in result.output
    assert target.read_text() == "old graph"


def test_cli_export_refuses_a_format_the_file_name_contradicts(tmp_path):
    target = tmp_path / "l2.graphml"
    result = CliRunner().invoke(cli, ["export", "l2-mlp", "-o", str(target), "--format", "json"])
    assert result.exit_code == 2 and "says graphml but --format asks for json" in result.output
    assert not target.exists()
    assert run("export", "l2-mlp", "-o", str(tmp_path / "l2.txt"), "--format", "json").exit_code == 0
    for picture in ("l2.svg", "l2.pdf"):
        refused = CliRunner().invoke(cli, ["export", "l2-mlp", "-o", str(tmp_path / picture), "--format", "dot"])
        assert refused.exit_code == 2 and "for a" in refused.output and "bpgraph render MODEL -o" in refused.output
        assert not (tmp_path / picture).exists()


def test_cli_export_graphml(tmp_path):
    target = tmp_path / "l2.graphml"
    assert run("export", "l2-mlp", "-o", str(target), "--grads").exit_code == 0
    read = nx.read_graphml(target)
    assert read.number_of_nodes() == 17 and "value" in read.nodes["0"] and "grad" in read.nodes["2"]


def test_cli_export_takes_the_format_from_any_known_extension(tmp_path):
    assert run("export", "l2-mlp", "-o", str(tmp_path / "l2.gv")).exit_code == 0
    assert (tmp_path / "l2.gv").read_text(encoding="utf-8").startswith("digraph")
    assert run("export", "l2-mlp", "-o", str(tmp_path / "l2.JSON")).exit_code == 0
    assert io.load_json(tmp_path / "l2.JSON").names == l2_mlp().names
    unknown = CliRunner().invoke(cli, ["export", "l2-mlp", "-o", str(tmp_path / "l2.txt")])
    assert unknown.exit_code == 2 and "cannot tell the format of" in unknown.output


def test_loading_leaves_the_input_data_untouched():
    data = small_data()
    before = copy.deepcopy(data)
    h = io.from_dict(data)
    h.meta["sizes"].append(4)
    assert data == before
