"""Reading a JSON file (:func:`load_json`) or its data (:func:`from_dict`), checked as a whole, then
node by node: a leaf is recorded, an op recomputed (its shape checked first, so no work grows past
the limits) and compared with its stored value.  Every problem is a GraphFileError naming the field.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import os
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..errors import BpgraphError
from ..graph import KINDS, Graph
from ..ops import OPS
from ..tensor import Tensor
from . import limits
from .schema import (DTYPES, FORMAT, NODE_FIELDS, NONFINITE, TOP_FIELDS, VERSION, At, GraphFileError,
                     check_meta, check_name, check_params, json_type)


def load_json(path: str | Path) -> Graph:
    """Read a graph saved by :func:`save_json`, checking it completely (see the module notes)."""
    source = str(path)
    with open(path, "rb") as handle:  # a size check, then a read in chunks up to the limit (pipes say size 0)
        raw = bytearray()
        too_big = os.fstat(handle.fileno()).st_size > limits.MAX_FILE_BYTES
        while not too_big and (chunk := handle.read(2**20)):
            raw += chunk
            too_big = len(raw) > limits.MAX_FILE_BYTES
    if too_big:
        raise GraphFileError(f"the file is larger than MAX_FILE_BYTES ({limits.MAX_FILE_BYTES} bytes); raise "
                             "bpgraph.io.limits.MAX_FILE_BYTES to load a file you trust", source=source)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                          object_pairs_hook=_unique_keys)
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
    obj = dict(pairs)
    if len(obj) < len(pairs):
        key = next(key for k, (key, _) in enumerate(pairs) if key in dict(pairs[:k]))
        raise ValueError(f"the key {key!r} appears twice in one object")
    return obj


def from_dict(data: Any, *, source: str = "<data>") -> Graph:
    """Rebuild a graph from :func:`to_dict` data, checking it completely (see the module notes)."""
    return _Reader(source).read(data)


class _Reader:
    """Check the file as a whole, then each node in order: check it, then record or replay it."""

    def __init__(self, source: str) -> None:
        self.top = At(source)
        self.graph = Graph()
        self.new_id: dict[int, int] = {}  # file id -> id in the new graph
        self.position: dict[int, int] = {}  # file id -> index in the node list
        self.elements = 0

    def read(self, data: Any) -> Graph:
        self._check_top(data)
        nodes, grad_root = data["nodes"], data["grad_root"]
        fields = NODE_FIELDS if grad_root is None else {**NODE_FIELDS, "grad": None}
        places = [self._at(index, node) for index, node in enumerate(nodes)]
        for at, node in zip(places, nodes):
            _check_fields(at, node, fields)
            node_id = node["id"]
            if node_id in self.position:
                at.fail("id", f"duplicate id {node_id} (also nodes[{self.position[node_id]}])")
            self.position[node_id] = at.index
        for at, node in zip(places, nodes):
            self._read_node(at, node)
        self._check_edges(data["edges"], nodes)
        if grad_root is not None and grad_root not in self.graph:
            self.top.fail("grad_root", f"names no node: {grad_root!r}")
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
                at.fail(field, f"expected {json.dumps(expected)}: a bpgraph graph is directed, one edge "
                               "per pair")
        check_meta(at, data["graph"])
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

    def _read_node(self, at: At, node: dict[str, Any]) -> None:
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
        grad = node.get("grad")
        shape = self._read_shape(at, node["shape"], copies=1 if grad is None else 2)
        value = _array(at, "value", node["value"], shape, dtype)
        if grad is not None:
            _array(at, "grad", grad, shape, "float64")
        if kind != "op":  # a leaf has no op, operands or params, and a param holds floats
            for field, empty in (("op", None), ("operands", []), ("params", {})):
                if node[field] != empty:
                    at.fail(field, f"a {kind} has no {field}; expected {json.dumps(empty)}")
            if kind == "param" and value.dtype.kind != "f":
                at.fail("dtype", f"a param holds floats, not {value.dtype}")
        with contextlib.ExitStack() as scopes:  # 'layer1/act' is recorded inside layer1, then act
            for part in scope.split("/") if scope else ():
                scopes.enter_context(self.graph.scope(part))
            if kind == "op":
                tensor = self._replay_op(at, node, value)
            elif kind in ("param", "const"):
                tensor = getattr(self.graph, kind)(value, name=name)
            else:
                tensor = self.graph.input(value, name=name, requires_grad=node["requires_grad"])
        flag = node["requires_grad"]
        if tensor.node["requires_grad"] != flag:
            at.fail("requires_grad", f"is {json.dumps(flag)} but the rebuilt node's is {json.dumps(not flag)} (a "
                                     "param's is true, a const's false, an op's true when an operand's is)")
        self.new_id[node["id"]] = tensor.id

    def _read_shape(self, at: At, shape: list[Any], copies: int) -> tuple[int, ...]:
        """The shape, counted (``copies`` arrays of it) into the file's total before any is allocated."""
        if len(shape) > limits.MAX_DEPTH:
            at.fail("shape", f"{len(shape)} dimensions, more than MAX_DEPTH ({limits.MAX_DEPTH})")
        if any(type(n) is not int or n < 0 for n in shape):
            at.fail("shape", f"sizes must be integers >= 0, found {shape!r}")
        self.elements += copies * math.prod(shape)
        if self.elements > limits.MAX_ELEMENTS:
            at.fail("shape", f"shape {shape} brings the file's arrays to {self.elements} elements, more than "
                             f"MAX_ELEMENTS ({limits.MAX_ELEMENTS}); raise bpgraph.io.limits.MAX_ELEMENTS "
                             "for a file you trust")
        return tuple(shape)

    def _replay_op(self, at: At, node: dict[str, Any], stored: np.ndarray) -> Tensor:
        """A known op recomputed from nodes loaded before it: its shape, dtype and NaN/inf must equal the
        stored value's, its numbers within REPLAY_RTOL (or 100 epsilons) of the largest."""
        op, params = node["op"], node["params"]
        if op not in OPS:
            at.fail("op", f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
        operands = [self._operand(at, node, k, ref) for k, ref in enumerate(node["operands"])]
        arity = OPS[op].arity
        if (arity is not None and len(operands) != arity) or not operands:
            at.fail("operands", f"{op} takes {arity or 'at least 1'} operand(s), found {len(operands)}")
        check_params(at, params)
        params = {key: tuple(value) if type(value) is list else value for key, value in params.items()}
        what = f"{op}({', '.join(t.name for t in operands)})"
        try:
            made = _result_shape(op, [t.shape for t in operands], params)  # None: only running it tells
            if made in (None, stored.shape):
                fresh = self.graph.record(op, operands, params, name=node["name"])
                made = fresh.value.shape
        except (BpgraphError, ArithmeticError, ValueError) as exc:
            at.fail("params" if params else "operands", f"cannot be recomputed: {exc}")
        if made != stored.shape:
            at.fail("shape", f"is {list(stored.shape)} but {what} gives {list(made)}")
        value = fresh.value
        if value.dtype != stored.dtype:
            at.fail("dtype", f"is {stored.dtype} but {what} gives {value.dtype}")
        floats = value.dtype.kind == "f"
        if np.array_equal(value, stored, equal_nan=floats):
            return fresh  # the usual case: recomputed bit for bit
        finite = np.isfinite(stored)
        if not np.array_equal(finite, np.isfinite(value)) or \
                not np.array_equal(value[~finite], stored[~finite], equal_nan=True):
            at.fail("value", f"does not follow from {what}: its NaN/inf entries differ")
        diff = float(np.max(np.abs(value[finite].astype(np.float64) - stored[finite]), initial=0.0))
        rtol = max(limits.REPLAY_RTOL, 100 * float(np.finfo(value.dtype).eps)) if floats else 0.0
        tol = rtol * float(np.max(np.abs(stored[finite]), initial=0.0))
        if diff > tol:
            at.fail("value", f"does not follow from {what}: max abs difference {diff:.6g} (tolerance "
                             f"{tol:.3g}); the file was edited or damaged here")
        return fresh

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


def _check_fields(at: At, obj: dict[str, Any], fields: dict[str, Any]) -> None:
    """Every field present with its JSON type, and nothing else (a misspelt field is an error)."""
    for field in [*fields, *obj]:
        if field not in obj:
            at.fail(field, "missing")
        if field not in fields:
            at.fail(field, f"unknown field (known: {', '.join(sorted(fields))})")
    for field, expected in fields.items():
        if expected is not None and type(obj[field]) not in expected[1]:  # exactly: a boolean is no integer
            at.fail(field, f"expected {expected[0]}, found {json_type(obj[field])}")


def _result_shape(op: str, shapes: list[tuple[int, ...]], params: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape of ``op``'s result from shapes and params alone (None when the size stays); ValueError
    where the op would fail."""
    if op in ("reshape", "transpose"):
        return None
    if OPS[op].scalar:
        return ()
    if op in ("sum", "mean"):
        shape, axis, n = shapes[0], params.get("axis"), len(shapes[0])
        axes = [a % n if type(a) is int and -n <= a < n else None
                for a in (range(n) if axis is None else axis if type(axis) is tuple else (axis,))]
        if None in axes or len(set(axes)) < len(axes):
            raise ValueError(f"axis {axis} does not fit {n} dimensions")
        kept = [i for i in range(n) if params.get("keepdims") or i not in axes]
        return tuple(1 if i in axes else shape[i] for i in kept)
    if op in ("matmul", "linear"):
        (a, b), rest = shapes[:2], shapes[2:]
        if min(len(a), len(b)) < 2 or a[-1] != b[-2]:
            raise ValueError(f"shapes {list(a)} and {list(b)} do not fit a matrix product")
        shapes = [np.broadcast_shapes(a[:-2], b[:-2]) + (a[-2], b[-1]), *rest]
    listed = [(len(v),) for key, v in params.items() if type(v) is tuple and key not in ("axis", "axes")]
    return np.broadcast_shapes(*shapes, *listed)


def _array(at: At, field: str, value: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Nested lists (NaN/inf spelled as in NONFINITE) -> array, checked level by level."""
    level = [value]
    for depth, n in enumerate(shape):
        for k, item in enumerate(level):
            if type(item) is not list or len(item) != n:
                found = f"a list of {len(item)}" if type(item) is list else json_type(item)
                at.fail(field, f"ragged or not of shape {list(shape)}: {field}{_index(k, shape[:depth])} "
                               f"should be a list of {n}, found {found}")
        level = list(itertools.chain.from_iterable(level))
    kinds = set(map(type, level))
    if list in kinds:
        at.fail(field, f"nested deeper than its shape {list(shape)}")
    allowed, what = ({bool}, "true/false") if dtype == "bool" else ({int}, "integers") if "int" in dtype \
        else ({int, float, str}, 'numbers (or "nan", "inf", "-inf")')
    if not kinds <= allowed:
        k = next(k for k, x in enumerate(level) if type(x) not in allowed)
        at.fail(field, f"{field}{_index(k, shape)} is {json_type(level[k])}; a {dtype} array holds {what}")
    info = np.iinfo(dtype) if "int" in dtype else None
    if info is not None and level and not info.min <= min(level) <= max(level) <= info.max:
        at.fail(field, f"a number does not fit {dtype} ({info.min} to {info.max})")
    spelled = [x for x in level if type(x) is str] if str in kinds else []
    bad = next((x for x in spelled if x not in NONFINITE), None)
    if bad is not None:
        at.fail(field, f"the string {bad!r:.40} is not a number; non-finite numbers are written "
                       '"nan", "inf" or "-inf"')
    try:
        with np.errstate(over="ignore"):
            arr = np.array([NONFINITE[x] if type(x) is str else x for x in level] if spelled else level,
                           dtype=dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        at.fail(field, f"a number does not fit {dtype}: {exc}")
    if arr.dtype.kind == "f" and np.count_nonzero(~np.isfinite(arr)) != len(spelled):
        at.fail(field, f"a number is too large for {dtype}; write infinities as \"inf\" or \"-inf\"")
    return arr


def _index(k: int, shape: tuple[int, ...]) -> str:
    return "".join(f"[{int(i)}]" for i in np.unravel_index(k, shape)) if shape else ""
