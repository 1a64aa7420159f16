"""Save a graph as JSON that loads back exactly, or as GraphML for other tools.

The JSON file is networkx's node-link layout (``networkx.node_link_graph(data)`` reads it)
plus ``format``, ``version`` and ``grad_root``::

    {"directed": true, "multigraph": false, "format": "bpgraph-graph", "version": 1,
     "graph": {meta: root, m, lambd, ...},  "grad_root": "J" or null,
     "nodes": [{"id", "name", "kind", "op", "operands", "params", "scope", "shape", "dtype",
                "requires_grad", "value", "grad"}, ...],
     "edges": [{"source": id, "target": id}, ...]}

Nodes are listed in id order, one per line, keys sorted: the same graph always gives the same
bytes.  ``operands`` is the ordered list of operand ids, repeats kept (``x * x`` has
``[x, x]``); ``edges`` holds each (operand, result) pair once, as the DiGraph does.  Op params
are numbers, booleans, null, strings or flat lists; lists come back as tuples.
``value`` and ``grad`` are nested lists of numbers.  JSON has no NaN or infinity, so those
are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (the output is strict JSON;
no other strings appear in an array).  ``grad`` is present only in files saved with
``grads=True`` (null where the node has no gradient).  Complex and extended-precision
arrays cannot be saved.

Loading checks everything and names the node and field of the first problem.  It never runs
code: leaves are recorded with their stored values and every op, looked up by name in
:data:`bpgraph.ops.OPS`, is recomputed from its operands and compared with its stored value
(the first node whose value does not follow from its ops is reported).  Stored gradients are
checked (shape, numbers) but not put on the loaded graph: gradients are derived data, so call
:meth:`Graph.backward`, which recomputes them from the loaded values.  Ids are renumbered in
file order; names are the stable key.

Limits, module constants a caller may raise for files it trusts:

``MAX_FILE_BYTES``   256 MiB: a bigger file is refused before it is parsed
``MAX_NODES``        100,000 nodes
``MAX_ELEMENTS``     10,000,000 array elements in all (values and gradients, and any single
                     op result), checked from the shapes before any array is allocated
``MAX_DEPTH``        32 dimensions per array, and 32 levels of nesting in the meta data
                     (deeper JSON than Python's parser handles is refused as well)
``MAX_NAME_LENGTH``  1,000 characters per node name

GraphML (:func:`save_graphml`) is for reading elsewhere, not for loading back: every attribute
is a string, number or boolean; operands, params, shape, values and gradients are JSON text.
XML 1.0 cannot hold most control characters, lone surrogates or U+FFFE/U+FFFF, so in names
and scopes these are written as visible escapes (``\\x01``, ``\\ud800``), as is ``\\r``
(which XML readers would turn into ``\\n``) and the backslash itself (``\\\\``).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NoReturn, Sequence

import networkx as nx
import numpy as np

from .errors import BpgraphError
from .files import atomic_write
from .graph import KINDS, Graph
from .ops import OPS, all_finite
from .text import xml_text
from .tensor import Tensor

FORMAT = "bpgraph-graph"
VERSION = 1

MAX_FILE_BYTES = 256 * 2**20
MAX_NODES = 100_000
MAX_ELEMENTS = 10_000_000
MAX_DEPTH = 32
MAX_NAME_LENGTH = 1_000

#: The array dtypes a file may hold (each survives a trip through JSON numbers exactly).
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64")

#: How non-finite floats are spelled in a file.
NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}

#: Replay tolerance: a recomputed value may differ from the stored one by REPLAY_RTOL (or 100
#: machine epsilons for float16/32) times the stored array's largest magnitude.
REPLAY_RTOL = 1e-12

_TOP_FIELDS = ("directed", "edges", "format", "grad_root", "graph", "multigraph", "nodes", "version")
_NODE_FIELDS = ("dtype", "id", "kind", "name", "op", "operands", "params", "requires_grad", "scope",
                "shape", "value")
_MATMUL_LIKE = ("matmul", "linear")  # ops whose result can outgrow their broadcast operands


class GraphFileError(BpgraphError, ValueError):
    """A graph file (or dict) that cannot be read, or a graph that cannot be saved.

    ``node`` is the node's name (or None), ``index`` its position in the file's node list,
    ``field`` the offending field; the message states all three and the source.
    """

    def __init__(self, problem: str, *, source: str = "<data>", node: str | None = None,
                 index: int | None = None, field: str | None = None) -> None:
        parts = [source]
        if node is not None:
            parts.append(f"node {node!r}" + ("" if index is None else f" (nodes[{index}])"))
        elif index is not None:
            parts.append(f"nodes[{index}]")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts + [problem]))
        self.source, self.node, self.index, self.field = source, node, index, field


# --- writing -------------------------------------------------------------------------------------
def to_dict(graph: Graph, *, values: bool = True, grads: bool = False) -> dict[str, Any]:
    """The graph as plain JSON data (the file's content; :func:`from_dict` reads it back).

    ``grads=True`` needs a previous :meth:`Graph.backward`; its root is stored as ``grad_root``.
    Without ``values`` the file documents the graph but cannot be loaded.
    """
    if grads and graph.grad_root is None:
        raise GraphFileError("no gradients to save: call graph.backward() first, or save without grads",
                             source="<graph>", field="grad")
    nodes = [_node_to_dict(graph, i, values, grads) for i in graph.nodes]
    edges = [{"source": o, "target": i} for i, attrs in graph.nodes.items()
             for o in dict.fromkeys(attrs["operands"])]
    return {"format": FORMAT, "version": VERSION, "directed": True, "multigraph": False,
            "graph": _meta_to_json(graph.meta),
            "grad_root": graph.name_of(graph.grad_root) if grads else None,
            "nodes": nodes, "edges": edges}


def _node_to_dict(graph: Graph, node_id: int, values: bool, grads: bool) -> dict[str, Any]:
    attrs = graph.nodes[node_id]
    name, value = attrs["name"], attrs["value"]
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise GraphFileError(f"a saved name must be 1 to {MAX_NAME_LENGTH} characters (MAX_NAME_LENGTH)",
                             source="<graph>", node=name[:80], field="name")
    if value.dtype.name not in DTYPES:
        raise GraphFileError(f"dtype {value.dtype.name} cannot be saved exactly; allowed: {', '.join(DTYPES)}",
                             source="<graph>", node=name, field="dtype")
    node = {"id": node_id, "name": name, "kind": attrs["kind"], "op": attrs["op"],
            "operands": list(attrs["operands"]), "params": _params_to_json(attrs["params"], name),
            "scope": attrs["scope"], "shape": list(value.shape), "dtype": value.dtype.name,
            "requires_grad": bool(attrs["requires_grad"])}
    if values:
        node["value"] = _array_to_json(value)
    if grads:
        grad = attrs["grad"]
        if grad is not None and grad.dtype.kind != "f":
            raise GraphFileError(f"a {grad.dtype} gradient cannot be saved", source="<graph>", node=name,
                                 field="grad")
        node["grad"] = None if grad is None else _array_to_json(grad)
    return node


def _array_to_json(arr: np.ndarray) -> Any:
    """Nested lists (a bare number for 0-d), with NaN/inf spelled as in :data:`NONFINITE`."""
    if arr.dtype.kind != "f" or all_finite(arr):
        return arr.tolist()
    spelled = arr.astype(object)
    spelled[np.isnan(arr)] = "nan"
    spelled[arr == np.inf] = "inf"
    spelled[arr == -np.inf] = "-inf"
    return spelled.tolist()


def _params_to_json(params: dict[str, Any], node: str) -> dict[str, Any]:
    """Op params as JSON: scalars stay, tuples become lists; anything else is refused."""
    out = {}
    for key, value in params.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        plain = [v.item() if isinstance(v, np.generic) else v for v in items]
        if not all(map(_is_param_scalar, plain)):
            raise GraphFileError(f"param {key}={value!r} cannot be saved: params must be finite "
                                 "numbers, booleans, None, strings or flat tuples of them",
                                 source="<graph>", node=node, field=f"params.{key}")
        out[key] = plain if isinstance(value, (tuple, list)) else plain[0]
    return out


def _is_param_scalar(value: Any) -> bool:
    """What a param (or an item of a tuple param) may be in a file."""
    return value is None or type(value) in (bool, int, str) or type(value) is float and math.isfinite(value)


def _meta_to_json(meta: dict[str, Any]) -> dict[str, Any]:
    """graph.meta as JSON data (tuples become lists, numpy scalars plain numbers), key by key."""
    out = {}
    for key, value in meta.items():
        try:
            if not isinstance(key, str):
                raise TypeError("meta keys must be strings")
            out[key] = json.loads(json.dumps(value, allow_nan=False, default=_numpy_scalar))
        except (TypeError, ValueError, RecursionError) as exc:
            raise GraphFileError(f"meta entry {key!r} is not JSON data: {exc}", source="<graph>",
                                 field="graph") from None
    return out


def _numpy_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _dumps(data: dict[str, Any]) -> str:
    """Deterministic strict JSON text: sorted keys, one node (and one edge) per line."""
    lines = []
    for key, value in sorted(data.items()):
        if isinstance(value, list) and value:
            body = "[\n" + ",\n".join(_compact(v) for v in value) + "\n]"
        else:
            body = _compact(value)
        lines.append(f"{json.dumps(key)}:{body}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))


def save_json(graph: Graph, path: str | Path, *, values: bool = True, grads: bool = False) -> Path:
    """Write the graph to ``path`` as JSON (atomically) and return the path."""
    return atomic_write(path, _dumps(to_dict(graph, values=values, grads=grads)))


# --- GraphML -------------------------------------------------------------------------------------
def save_graphml(graph: Graph, path: str | Path, *, values: bool = False, grads: bool = False) -> Path:
    """Write the graph as GraphML (valid XML whatever the names hold) and return the path.

    Node ids are the graph's ids; attributes are ``name kind op operands params scope shape
    dtype requires_grad`` and, when asked, ``value``/``grad`` as JSON text.
    """
    data = to_dict(graph, values=values, grads=grads)
    out = nx.DiGraph(format=FORMAT, version=VERSION, meta=_compact(data["graph"]),
                     grad_root=xml_text(data["grad_root"] or ""))
    for node in data["nodes"]:
        attrs = {"name": xml_text(node["name"]), "kind": node["kind"], "op": node["op"] or "",
                 "scope": xml_text(node["scope"]), "dtype": node["dtype"],
                 "requires_grad": node["requires_grad"]}
        attrs.update({key: _compact(node[key]) for key in ("operands", "params", "shape", "value", "grad")
                      if key in node})
        out.add_node(node["id"], **attrs)
    out.add_edges_from((e["source"], e["target"]) for e in data["edges"])
    xml = "\n".join(nx.generate_graphml(out))
    return atomic_write(path, f'<?xml version="1.0" encoding="utf-8"?>\n{xml}\n')


# --- reading -------------------------------------------------------------------------------------
def load_json(path: str | Path) -> Graph:
    """Read a graph saved by :func:`save_json`, checking it completely (see the module notes)."""
    source = str(path)
    with open(path, "rb") as handle:  # a size check, then a bounded read (pipes report size 0)
        too_big = os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES
        raw = b"" if too_big else handle.read(MAX_FILE_BYTES + 1)
    if too_big or len(raw) > MAX_FILE_BYTES:
        raise GraphFileError(f"the file is larger than MAX_FILE_BYTES ({MAX_FILE_BYTES} bytes); "
                             "raise bpgraph.io.MAX_FILE_BYTES to load a file you trust", source=source)
    return from_dict(_parse(raw, source), source=source)


def _parse(raw: bytes, source: str) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity tokens, no repeated keys, bounded nesting."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
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


def _json_type(value: Any) -> str:
    """How a JSON reader would call this value's type (for messages)."""
    names = {type(None): "null", bool: "a boolean", int: "an integer", float: "a number",
             str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


@dataclass
class _At:
    """Where a check is looking (file, node, field), and how it reports a problem there."""

    source: str
    index: int | None = None
    name: str | None = None

    def fail(self, field: str | None, problem: str) -> NoReturn:
        raise GraphFileError(problem, source=self.source, node=self.name, index=self.index, field=field)

    def get(self, obj: dict[str, Any], field: str, types: tuple[type, ...], what: str) -> Any:
        """``obj[field]`` if its type is one of ``types`` (exactly: a boolean is no integer)."""
        value = obj[field]
        if type(value) not in types:
            self.fail(field, f"expected {what}, found {_json_type(value)}")
        return value


class _Reader:
    """One pass over the data: check a node, record it, compare its value; stop at the first problem."""

    def __init__(self, source: str) -> None:
        self.top = _At(source)
        self.graph = Graph()
        self.new_id: dict[int, int] = {}  # file id -> id in the new graph
        self.position: dict[int, int] = {}  # file id -> index in the node list
        self.elements = 0

    def read(self, data: Any) -> Graph:
        self._check_top(data)
        nodes = data["nodes"]
        self._check_ids(nodes)
        for index, node in enumerate(nodes):
            self._read_node(index, node, data["grad_root"] is not None)
        self._check_edges(data["edges"], nodes)
        root = data["grad_root"]
        if root is not None and root not in self.graph:
            self.top.fail("grad_root", f"names no node: {root!r}")
        self.graph.meta = copy.deepcopy(data["graph"])
        return self.graph

    # --- the file as a whole ---------------------------------------------------------------------
    def _check_top(self, data: Any) -> None:
        at = self.top
        if type(data) is not dict:
            at.fail(None, f"not a bpgraph graph file: expected a JSON object, found {_json_type(data)}")
        if data.get("format") != FORMAT:
            found = f"found {data['format']!r}" if "format" in data else "it is missing"
            at.fail("format", f"expected {FORMAT!r} ({found}): not a bpgraph graph file")
        _check_fields(at, data, _TOP_FIELDS)
        version = at.get(data, "version", (int,), "an integer")
        if version != VERSION:
            newer = " (it was written by a newer bpgraph: upgrade to read it)" if version > VERSION else ""
            at.fail("version", f"unknown version {version}: this bpgraph reads version {VERSION}{newer}")
        for field, expected in (("directed", True), ("multigraph", False)):
            if data[field] is not expected:
                at.fail(field, f"expected {json.dumps(expected)}: a bpgraph graph is directed, one edge per pair")
        at.get(data, "graph", (dict,), "an object (the graph's meta data)")
        _check_meta(at, data["graph"])
        at.get(data, "grad_root", (str, type(None)), "a node name or null")
        nodes = at.get(data, "nodes", (list,), "a list of nodes")
        at.get(data, "edges", (list,), "a list of edges")
        if len(nodes) > MAX_NODES:
            at.fail("nodes", f"{len(nodes)} nodes, more than MAX_NODES ({MAX_NODES})")
        for index, node in enumerate(nodes):
            if type(node) is not dict:
                _At(at.source, index).fail(None, f"expected an object, found {_json_type(node)}")
        if nodes and not any("value" in node for node in nodes):
            at.fail("value", "the file was saved without values (export --no-values); loading needs them: "
                             "export the graph again with values")

    def _check_ids(self, nodes: list[dict[str, Any]]) -> None:
        for index, node in enumerate(nodes):
            at = _At(self.top.source, index, _name_for_messages(node))
            if "id" not in node:
                at.fail("id", "missing")
            node_id = at.get(node, "id", (int,), "an integer")
            if node_id in self.position:
                at.fail("id", f"duplicate id {node_id} (also nodes[{self.position[node_id]}])")
            self.position[node_id] = index

    def _check_edges(self, edges: list[Any], nodes: list[dict[str, Any]]) -> None:
        """The edge list must be exactly the (operand, result) pairs that the operands imply."""
        expected = {(o, node["id"]) for node in nodes for o in node["operands"]}
        seen: set[tuple[int, int]] = set()
        for k, edge in enumerate(edges):
            at, field = self.top, f"edges[{k}]"
            if type(edge) is not dict or set(edge) != {"source", "target"} \
                    or type(edge["source"]) is not int or type(edge["target"]) is not int:
                at.fail(field, 'expected {"source": id, "target": id}')
            pair = (edge["source"], edge["target"])
            if pair not in expected or pair in seen:
                problem = "repeated" if pair in seen else "not an operand"
                at.fail(field, f"edge {pair[0]} -> {pair[1]} is {problem}")
            seen.add(pair)
        missing = sorted(expected - seen)
        if missing:
            source, target = missing[0]
            self.top.fail("edges", f"missing the edge {source} -> {target} "
                                   f"({self._name(source)} is an operand of {self._name(target)})")

    def _name(self, file_id: int) -> str:
        return repr(self.graph.name_of(self.new_id[file_id]))

    # --- one node --------------------------------------------------------------------------------
    def _read_node(self, index: int, node: dict[str, Any], with_grad: bool) -> None:
        at = _At(self.top.source, index, _name_for_messages(node))
        _check_fields(at, node, _NODE_FIELDS + (("grad",) if with_grad else ()))
        name = self._read_name(at, node)
        kind = at.get(node, "kind", (str,), "a string")
        if kind not in KINDS:
            at.fail("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        scope = _read_scope(at, node)
        dtype = at.get(node, "dtype", (str,), "a string")
        if dtype not in DTYPES:
            at.fail("dtype", f"dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPES)}")
        shape = self._read_shape(at, node, with_grad)
        requires_grad = at.get(node, "requires_grad", (bool,), "true or false")
        value = _read_array(at, "value", node["value"], shape, dtype)
        if with_grad and node["grad"] is not None:
            _read_array(at, "grad", node["grad"], shape, "float64")
        with self._scope(scope):
            if kind == "op":
                tensor = self._record_op(at, node, name, value)
            else:
                tensor = self._record_leaf(at, node, kind, value, requires_grad)
        if tensor.node["requires_grad"] != requires_grad:
            at.fail("requires_grad", f"is {str(requires_grad).lower()} but the rebuilt node's is "
                                     f"{str(not requires_grad).lower()} (a param's is true, a const's false, "
                                     "an op's true when an operand's is)")
        self.new_id[node["id"]] = tensor.id

    def _read_name(self, at: _At, node: dict[str, Any]) -> str:
        name = at.get(node, "name", (str,), "a string")
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            at.fail("name", f"a name must be 1 to {MAX_NAME_LENGTH} characters (MAX_NAME_LENGTH), "
                            f"this one has {len(name)}")
        if name in self.graph:
            at.fail("name", f"duplicate name {name!r} (also nodes[{self.graph.id_of(name)}])")
        return name

    def _read_shape(self, at: _At, node: dict[str, Any], with_grad: bool) -> tuple[int, ...]:
        """The claimed shape, and the running element count checked before anything is allocated."""
        shape = at.get(node, "shape", (list,), "a list of sizes")
        if len(shape) > MAX_DEPTH:
            at.fail("shape", f"{len(shape)} dimensions, more than MAX_DEPTH ({MAX_DEPTH})")
        if any(type(n) is not int or n < 0 for n in shape):
            at.fail("shape", f"sizes must be integers >= 0, found {shape!r}")
        size = math.prod(shape)
        self.elements += size * (2 if with_grad and node["grad"] is not None else 1)
        if self.elements > MAX_ELEMENTS:
            at.fail("shape", f"shape {shape} brings the file's arrays to {self.elements} elements, more "
                             f"than MAX_ELEMENTS ({MAX_ELEMENTS}); raise bpgraph.io.MAX_ELEMENTS for a file "
                             "you trust")
        return tuple(shape)

    @contextlib.contextmanager
    def _scope(self, scope: str) -> Iterator[None]:
        """Record inside the nested scopes that ``scope`` ('layer1/linear') names."""
        with contextlib.ExitStack() as stack:
            for part in scope.split("/") if scope else ():
                stack.enter_context(self.graph.scope(part))
            yield

    def _record_leaf(self, at: _At, node: dict[str, Any], kind: str, value: np.ndarray,
                     requires_grad: bool) -> Tensor:
        for field, empty in (("op", None), ("operands", []), ("params", {})):
            if node[field] != empty or type(node[field]) is not type(empty):
                at.fail(field, f"a {kind} has no {field}; expected {json.dumps(empty)}")
        if kind == "param" and value.dtype.kind != "f":
            at.fail("dtype", f"a param holds floats, not {value.dtype}")
        if kind == "param":
            return self.graph.param(value, name=node["name"])
        if kind == "const":
            return self.graph.const(value, name=node["name"])
        return self.graph.input(value, name=node["name"], requires_grad=requires_grad)

    def _record_op(self, at: _At, node: dict[str, Any], name: str, stored: np.ndarray) -> Tensor:
        """Recompute the op from its (already loaded) operands; its value must match the file's."""
        op = at.get(node, "op", (str,), "the name of an op")
        spec = OPS.get(op)
        if spec is None:
            at.fail("op", f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}")
        operands = [self._operand(at, node, k, ref) for k, ref in
                    enumerate(at.get(node, "operands", (list,), "a list of node ids"))]
        if (spec.arity is not None and len(operands) != spec.arity) or not operands:
            at.fail("operands", f"{op} takes {spec.arity or 'at least 1'} operand(s), found {len(operands)}")
        params = _read_params(at, node)
        bound = _result_size_bound(op, [t.shape for t in operands])
        if bound > MAX_ELEMENTS:
            at.fail("operands", f"{op} of shapes {', '.join(str(t.shape) for t in operands)} would give up to "
                                f"{bound} elements, more than MAX_ELEMENTS ({MAX_ELEMENTS})")
        try:
            tensor = self.graph.record(op, operands, params, name=name)
        except (BpgraphError, ArithmeticError) as exc:
            at.fail("params" if params else "operands", f"cannot be recomputed: {exc}")
        _check_replay(at, tensor, stored)
        return tensor

    def _operand(self, at: _At, node: dict[str, Any], k: int, ref: Any) -> Tensor:
        field = f"operands[{k}]"
        if type(ref) is not int:
            at.fail(field, f"expected a node id, found {_json_type(ref)}")
        if ref in self.new_id:
            return Tensor(self.graph, self.new_id[ref])
        if ref == node["id"]:
            at.fail(field, "the node is its own operand (a cycle)")
        if ref in self.position:
            at.fail(field, f"refers to nodes[{self.position[ref]}], which comes later: operands must come "
                           "before their results (a cycle, or nodes out of order)")
        at.fail(field, f"refers to id {ref}, which no node has")


def _check_fields(at: _At, obj: dict[str, Any], fields: Sequence[str]) -> None:
    """Every field present and nothing else (a misspelt field is an error, not ignored)."""
    for field in fields:
        if field not in obj:
            at.fail(field, "missing")
    for field in obj:
        if field not in fields:
            at.fail(field, f"unknown field (known: {', '.join(sorted(fields))})")


def _name_for_messages(node: dict[str, Any]) -> str | None:
    """The node's name if it is a usable one, so even early errors can name the node."""
    name = node.get("name")
    return name if type(name) is str and 0 < len(name) <= MAX_NAME_LENGTH else None


def _read_scope(at: _At, node: dict[str, Any]) -> str:
    scope = at.get(node, "scope", (str,), "a string")
    if scope and not all(scope.split("/")):
        at.fail("scope", f"{scope!r} has an empty part; a scope is '' or names joined by '/'")
    return scope


def _check_meta(at: _At, meta: dict[str, Any]) -> None:
    """Meta data nests at most MAX_DEPTH deep and holds finite numbers (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(meta, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            at.fail("graph", f"meta data nested more than MAX_DEPTH ({MAX_DEPTH}) levels deep")
        if type(item) is float and not math.isfinite(item):
            at.fail("graph", f"meta data holds the number {item}, which JSON cannot write back")
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        stack.extend((child, depth + 1) for child in children)


def _read_params(at: _At, node: dict[str, Any]) -> dict[str, Any]:
    """Params as the ops take them: flat lists become tuples; only plain finite scalars inside."""
    params = at.get(node, "params", (dict,), "an object")
    out = {}
    for key, value in params.items():
        items = value if type(value) is list else [value]
        for item in items:
            if not _is_param_scalar(item):
                at.fail(f"params.{key}", "a param is a finite number, true/false, null, a string "
                                         f"or a flat list of those; found {_json_type(item)} {item!r:.40}")
        out[key] = tuple(value) if type(value) is list else value
    return out


def _read_array(at: _At, field: str, value: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Nested lists -> array of ``shape`` and ``dtype``, checked level by level (no recursion)."""
    flat = _flatten(at, field, value, shape)
    kinds = set(map(type, flat))
    if list in kinds:
        at.fail(field, f"nested deeper than its shape {list(shape)}")
    allowed = {bool} if dtype == "bool" else {int} if "int" in dtype else {int, float, str}
    if not kinds <= allowed:
        k = next(k for k, x in enumerate(flat) if type(x) not in allowed)
        what = ("true/false" if dtype == "bool" else "integers" if "int" in dtype
                else 'numbers (or "nan", "inf", "-inf")')
        at.fail(field, f"{field}{_index(k, shape)} is {_json_type(flat[k])}; a {dtype} array holds {what}")
    if "int" in dtype and flat:
        info = np.iinfo(dtype)
        if not (info.min <= min(flat) and max(flat) <= info.max):
            at.fail(field, f"a number does not fit {dtype} ({info.min} to {info.max})")
    spelled = 0
    if str in kinds:
        bad = next((x for x in flat if type(x) is str and x not in NONFINITE), None)
        if bad is not None:
            at.fail(field, f"the string {bad!r:.40} is not a number; non-finite numbers are written "
                           '"nan", "inf" or "-inf"')
        spelled = sum(type(x) is str for x in flat)
        flat = [NONFINITE[x] if type(x) is str else x for x in flat]
    try:
        with np.errstate(over="ignore"):
            arr = np.array(flat, dtype=dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        at.fail(field, f"a number does not fit {dtype}: {exc}")
    if arr.dtype.kind == "f" and not (spelled == 0 and all_finite(arr)) \
            and np.count_nonzero(~np.isfinite(arr)) != spelled:
        at.fail(field, f"a number is too large for {dtype}; write infinities as \"inf\" or \"-inf\"")
    return arr


def _flatten(at: _At, field: str, value: Any, shape: tuple[int, ...]) -> list[Any]:
    """The elements of nested lists in order, after checking they nest exactly as ``shape`` says."""
    level = [value]
    for depth, n in enumerate(shape):
        for k, item in enumerate(level):
            if type(item) is not list or len(item) != n:
                found = f"a list of {len(item)}" if type(item) is list else _json_type(item)
                at.fail(field, f"ragged or not of shape {list(shape)}: {field}{_index(k, shape[:depth])} "
                               f"should be a list of {n}, found {found}")
        level = list(itertools.chain.from_iterable(level))
    return level


def _index(k: int, shape: tuple[int, ...]) -> str:
    """Flat position ``k`` as ``[i][j]`` within ``shape``."""
    return "".join(f"[{int(i)}]" for i in np.unravel_index(k, shape)) if shape else ""


def _result_size_bound(op: str, shapes: list[tuple[int, ...]]) -> int:
    """An upper bound on the size of an op's result, from shapes alone (nothing allocated).

    Every op's result fits the broadcast of its operands, except matmul-like ops, whose
    result takes rows from the first operand and columns from the second.
    """
    if op in _MATMUL_LIKE and len(shapes) >= 2 and min(len(shapes[0]), len(shapes[1])) >= 2:
        a, b = shapes[0], shapes[1]
        shapes = [a[:-2] + (a[-2], b[-1]), b[:-2] + (a[-2], b[-1]), *shapes[2:]]
    try:
        return math.prod(np.broadcast_shapes(*shapes))
    except ValueError:
        return max(math.prod(s) for s in shapes)


def _check_replay(at: _At, tensor: Tensor, stored: np.ndarray) -> None:
    """The recomputed value must equal the file's: same shape and dtype, same NaN/inf, close numbers."""
    fresh = tensor.value
    if fresh.shape == stored.shape and fresh.dtype == stored.dtype \
            and np.array_equal(fresh, stored, equal_nan=fresh.dtype.kind == "f"):
        return  # the usual case: recomputed bit for bit
    what = f"{tensor.op}({', '.join(t.name for t in tensor.graph.operands(tensor))})"
    if fresh.shape != stored.shape:
        at.fail("shape", f"is {list(stored.shape)} but {what} gives {list(fresh.shape)}")
    if fresh.dtype != stored.dtype:
        at.fail("dtype", f"is {stored.dtype} but {what} gives {fresh.dtype}")
    if fresh.dtype.kind != "f":
        diff = np.max(np.abs(fresh.astype(np.float64) - stored))
        at.fail("value", f"does not follow from {what}: max abs difference {diff:.6g}")
    finite = np.isfinite(stored)
    if not np.array_equal(finite, np.isfinite(fresh)) or \
            not np.array_equal(fresh[~finite], stored[~finite], equal_nan=True):
        at.fail("value", f"does not follow from {what}: its NaN/inf entries differ")
    diff = float(np.max(np.abs(fresh[finite] - stored[finite]), initial=0.0))
    rtol = max(REPLAY_RTOL, 100 * float(np.finfo(fresh.dtype).eps))
    tol = rtol * float(np.max(np.abs(stored[finite]), initial=0.0))
    if diff > tol:
        at.fail("value", f"does not follow from {what}: max abs difference {diff:.6g} (tolerance {tol:.3g}); "
                         "the file was edited or damaged here")
