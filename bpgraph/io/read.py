"""Reading: a JSON file (:func:`load_json`) or its data (:func:`from_dict`), checked completely.

The file is checked as a whole (fields, version, limits), then node by node in file order:
fields, names, kinds, shapes, arrays; each node is then recorded and replayed (see replay).
Every problem raises GraphFileError naming the node and field.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..graph import KINDS, Graph
from ..ops import OPS
from ..tensor import Tensor
from . import arrays, limits, replay
from .schema import (DTYPES, FORMAT, NODE_FIELDS, TOP_FIELDS, VERSION, At, GraphFileError, check_name,
                     json_type)


def load_json(path: str | Path) -> Graph:
    """Read a graph saved by :func:`save_json`, checking it completely (see the module notes)."""
    source = str(path)
    with open(path, "rb") as handle:  # a size check, then a bounded read (pipes report size 0)
        too_big = os.fstat(handle.fileno()).st_size > limits.MAX_FILE_BYTES
        raw = b"" if too_big else handle.read(limits.MAX_FILE_BYTES + 1)
    if too_big or len(raw) > limits.MAX_FILE_BYTES:
        raise GraphFileError(f"the file is larger than MAX_FILE_BYTES ({limits.MAX_FILE_BYTES} bytes); "
                             "raise bpgraph.io.limits.MAX_FILE_BYTES to load a file you trust", source=source)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise GraphFileError(f"not UTF-8 text (byte {exc.start})", source=source) from None
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                             source=source) from None
    except RecursionError:
        raise GraphFileError("JSON nested too deeply to read (a value list deeper than its shape?)",
                             source=source) from None
    except ValueError as exc:  # _refuse_constant, _unique_keys, and ints with too many digits
        raise GraphFileError(f"not valid JSON: {exc}", source=source) from None
    return from_dict(data, source=source)


def _refuse_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not JSON; bpgraph writes non-finite numbers as \"nan\", \"inf\", \"-inf\"")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def from_dict(data: Any, *, source: str = "<data>") -> Graph:
    """Rebuild a graph from :func:`to_dict` data, checking it completely (see the module notes)."""
    return _Reader(source).read(data)


class _Reader:
    """Check the file as a whole, then each node in order: check it, record it, replay it."""

    def __init__(self, source: str) -> None:
        self.top = At(source)
        self.graph = Graph()
        self.new_id: dict[int, int] = {}  # file id -> id in the new graph
        self.position: dict[int, int] = {}  # file id -> index in the node list
        self.elements = 0

    def read(self, data: Any) -> Graph:
        self._check_top(data)
        nodes, with_grad = data["nodes"], data["grad_root"] is not None
        fields = {**NODE_FIELDS, "grad": None} if with_grad else NODE_FIELDS
        places = [self._at(index, node) for index, node in enumerate(nodes)]
        for at, node in zip(places, nodes):
            _check_fields(at, node, fields)
            node_id = node["id"]
            if node_id in self.position:
                at.fail("id", f"duplicate id {node_id} (also nodes[{self.position[node_id]}])")
            self.position[node_id] = at.index
        for at, node in zip(places, nodes):
            self._read_node(at, node, with_grad)
        self._check_edges(data["edges"], nodes)
        if data["grad_root"] is not None and data["grad_root"] not in self.graph:
            self.top.fail("grad_root", f"names no node: {data['grad_root']!r}")
        self.graph.meta = copy.deepcopy(data["graph"])
        return self.graph

    def _at(self, index: int, node: dict[str, Any]) -> At:
        """Node ``index``, called by its name when that is usable, so even early errors name it."""
        name = node.get("name")
        usable = type(name) is str and 0 < len(name) <= limits.MAX_NAME_LENGTH
        return At(self.top.source, index, name if usable else None)

    def _check_top(self, data: Any) -> None:
        at = self.top
        if type(data) is not dict:
            at.fail(None, f"not a bpgraph graph file: expected a JSON object, found {json_type(data)}")
        if data.get("format") != FORMAT:
            found = f"found {data['format']!r}" if "format" in data else "it is missing"
            at.fail("format", f"expected {FORMAT!r} ({found}): not a bpgraph graph file")
        _check_fields(at, data, TOP_FIELDS)
        version, nodes = data["version"], data["nodes"]
        if version != VERSION:
            newer = " (it was written by a newer bpgraph: upgrade to read it)" if version > VERSION else ""
            at.fail("version", f"unknown version {version}: this bpgraph reads version {VERSION}{newer}")
        for field, expected in (("directed", True), ("multigraph", False)):
            if data[field] is not expected:
                at.fail(field, f"expected {json.dumps(expected)}: a bpgraph graph is directed, one edge per pair")
        _check_meta(at, data["graph"])
        if len(nodes) > limits.MAX_NODES:
            at.fail("nodes", f"{len(nodes)} nodes, more than MAX_NODES ({limits.MAX_NODES})")
        for index, node in enumerate(nodes):
            if type(node) is not dict:
                At(at.source, index).fail(None, f"expected an object, found {json_type(node)}")
        if nodes and not any("value" in node for node in nodes):
            at.fail("value", "the file was saved without values (export --no-values); loading needs them: "
                             "export the graph again with values")

    def _check_edges(self, edges: list[Any], nodes: list[dict[str, Any]]) -> None:
        """The edge list must be exactly the (operand, result) pairs that the operands imply."""
        expected = {(o, node["id"]) for node in nodes for o in node["operands"]}
        seen: set[tuple[int, int]] = set()
        for k, edge in enumerate(edges):
            if type(edge) is not dict or set(edge) != {"source", "target"} \
                    or type(edge["source"]) is not int or type(edge["target"]) is not int:
                self.top.fail(f"edges[{k}]", 'expected {"source": id, "target": id}')
            pair = (edge["source"], edge["target"])
            if pair not in expected or pair in seen:
                problem = "repeated" if pair in seen else "not an operand"
                self.top.fail(f"edges[{k}]", f"edge {pair[0]} -> {pair[1]} is {problem}")
            seen.add(pair)
        if expected - seen:
            source, target = min(expected - seen)
            name_of = self.graph.name_of
            self.top.fail("edges", f"missing the edge {source} -> {target} ({name_of(self.new_id[source])!r} "
                                   f"is an operand of {name_of(self.new_id[target])!r})")

    def _read_node(self, at: At, node: dict[str, Any], with_grad: bool) -> None:
        name, kind, scope, dtype = node["name"], node["kind"], node["scope"], node["dtype"]
        check_name(at, name)
        if name in self.graph:
            at.fail("name", f"duplicate name {name!r} (also nodes[{self.graph.id_of(name)}])")
        if kind not in KINDS:
            at.fail("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if scope and not all(scope.split("/")):
            at.fail("scope", f"{scope!r} has an empty part; a scope is '' or names joined by '/'")
        if dtype not in DTYPES:
            at.fail("dtype", f"dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
        grad = node["grad"] if with_grad else None
        shape = self._read_shape(at, node["shape"], copies=1 if grad is None else 2)
        requires_grad = node["requires_grad"]
        value = arrays.from_json(at, "value", node["value"], shape, dtype)
        if grad is not None:
            arrays.from_json(at, "grad", grad, shape, "float64")
        with contextlib.ExitStack() as scopes:  # 'layer1/act' is recorded inside layer1, then act
            for part in scope.split("/") if scope else ():
                scopes.enter_context(self.graph.scope(part))
            if kind == "op":
                tensor = self._record_op(at, node, value)
            else:
                tensor = replay.record_leaf(self.graph, at, node, kind, value, requires_grad)
        if tensor.node["requires_grad"] != requires_grad:
            at.fail("requires_grad", f"is {str(requires_grad).lower()} but the rebuilt node's is "
                                     f"{str(not requires_grad).lower()} (a param's is true, a const's false, "
                                     "an op's true when an operand's is)")
        self.new_id[node["id"]] = tensor.id

    def _read_shape(self, at: At, shape: list[Any], copies: int) -> tuple[int, ...]:
        """The claimed shape, and the running element count (``copies`` arrays of it: value, grad)
        checked before anything is allocated."""
        if len(shape) > limits.MAX_DEPTH:
            at.fail("shape", f"{len(shape)} dimensions, more than MAX_DEPTH ({limits.MAX_DEPTH})")
        if any(type(n) is not int or n < 0 for n in shape):
            at.fail("shape", f"sizes must be integers >= 0, found {shape!r}")
        self.elements += copies * math.prod(shape)
        if self.elements > limits.MAX_ELEMENTS:
            at.fail("shape", f"shape {shape} brings the file's arrays to {self.elements} elements, more "
                             f"than MAX_ELEMENTS ({limits.MAX_ELEMENTS}); raise bpgraph.io.limits.MAX_ELEMENTS for a "
                             "file you trust")
        return tuple(shape)

    def _record_op(self, at: At, node: dict[str, Any], stored: np.ndarray) -> Tensor:
        """A known op, its operands found among the nodes loaded so far, then replayed."""
        op = node["op"]
        if op not in OPS:
            at.fail("op", f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
        operands = [self._operand(at, node, k, ref) for k, ref in enumerate(node["operands"])]
        return replay.record_op(self.graph, at, node, operands, stored)

    def _operand(self, at: At, node: dict[str, Any], k: int, ref: Any) -> Tensor:
        field = f"operands[{k}]"
        if type(ref) is not int:
            at.fail(field, f"expected a node id, found {json_type(ref)}")
        if ref in self.new_id:
            return Tensor(self.graph, self.new_id[ref])
        if ref == node["id"]:
            at.fail(field, "the node is its own operand (a cycle)")
        if ref in self.position:
            at.fail(field, f"refers to nodes[{self.position[ref]}], which comes later: operands must come "
                           "before their results (a cycle, or nodes out of order)")
        at.fail(field, f"refers to id {ref}, which no node has")


def _check_fields(at: At, obj: dict[str, Any], fields: dict[str, tuple[str, tuple[type, ...]] | None]) -> None:
    """Every field present with its JSON type, and nothing else (a misspelt field is an error)."""
    for field in fields:
        if field not in obj:
            at.fail(field, "missing")
    for field in obj:
        if field not in fields:
            at.fail(field, f"unknown field (known: {', '.join(sorted(fields))})")
    for field, expected in fields.items():
        if expected is not None and type(obj[field]) not in expected[1]:  # exactly: a boolean is no integer
            at.fail(field, f"expected {expected[0]}, found {json_type(obj[field])}")


def _check_meta(at: At, meta: dict[str, Any]) -> None:
    """Meta data nests at most MAX_DEPTH deep and holds finite numbers (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limits.MAX_DEPTH:
            at.fail("graph", f"meta data nested more than MAX_DEPTH ({limits.MAX_DEPTH}) levels deep")
        if type(item) is float and not math.isfinite(item):
            at.fail("graph", f"meta data holds the number {item}, which JSON cannot write back")
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        stack.extend((child, depth + 1) for child in children)
