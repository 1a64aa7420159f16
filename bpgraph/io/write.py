"""Writing: a graph as JSON data (:func:`to_dict`), as a JSON file that always has the same bytes
(:func:`save_json`), or as GraphML for other tools (:func:`save_graphml`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from ..files import atomic_write
from ..graph import Graph
from ..ops import all_finite
from ..text import xml_text
from . import limits
from .schema import DTYPES, FORMAT, VERSION, At, GraphFileError, check_meta, check_name, check_params


def to_dict(graph: Graph, *, values: bool = True, grads: bool = False) -> dict[str, Any]:
    """The graph as plain JSON data (the file's content); ``grads`` needs a previous backward, whose root
    becomes ``grad_root``; without ``values`` the data cannot be loaded."""
    if grads and graph.grad_root is None:
        At("<graph>").fail("grad", "no gradients to save: call graph.backward() first, or save without grads")
    meta = _meta_to_json(graph.meta)
    if values:  # what load_json would refuse for its size is refused here: the same limits
        elements = sum(a["value"].size + (grads and a["grad"] is not None and a["grad"].size)
                       for a in graph.nodes.values())
        for what, count, limit in ("nodes", len(graph), "MAX_NODES"), ("elements", elements, "MAX_ELEMENTS"):
            if count > getattr(limits, limit):
                At("<graph>").fail(None, f"{count:,} {what}, more than {limit} ({getattr(limits, limit):,}): "
                                         f"load_json would refuse the file (see bpgraph.io.limits)")
        check_meta(At("<graph>"), meta)
    nodes = [_node_to_dict(graph, i, values, grads) for i in graph.nodes]
    edges = [{"source": o, "target": i} for i, attrs in graph.nodes.items()
             for o in dict.fromkeys(attrs["operands"])]
    return {"format": FORMAT, "version": VERSION, "directed": True, "multigraph": False,
            "graph": meta,
            "grad_root": graph.name_of(graph.grad_root) if grads else None,
            "nodes": nodes, "edges": edges}


def _node_to_dict(graph: Graph, node_id: int, values: bool, grads: bool) -> dict[str, Any]:
    attrs = graph.nodes[node_id]
    name, value, grad = attrs["name"], attrs["value"], attrs["grad"]
    at = At("<graph>", name=name[:80])
    check_name(at, name)
    if value.dtype.name not in DTYPES:
        at.fail("dtype", f"dtype {value.dtype.name} cannot be saved exactly; allowed: {', '.join(DTYPES)}")
    params = {key: [_plain(v) for v in value] if isinstance(value, (tuple, list)) else _plain(value)
              for key, value in attrs["params"].items()}
    check_params(at, params)
    node = {"id": node_id, "name": name, "kind": attrs["kind"], "op": attrs["op"],
            "operands": list(attrs["operands"]), "params": params, "scope": attrs["scope"],
            "shape": list(value.shape), "dtype": value.dtype.name,
            "requires_grad": bool(attrs["requires_grad"])}
    if values:
        node["value"] = _array(value)
    if grads:
        if grad is not None and grad.dtype.kind != "f":
            at.fail("grad", f"a {grad.dtype} gradient cannot be saved")
        node["grad"] = None if grad is None else _array(grad)
    return node


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _array(arr: np.ndarray) -> Any:
    """Nested lists (a bare number for 0-d), with NaN/inf spelled as in :data:`NONFINITE`."""
    if arr.dtype.kind != "f" or all_finite(arr):
        return arr.tolist()
    spelled = arr.astype(object)
    spelled[np.isnan(arr)] = "nan"
    spelled[arr == np.inf] = "inf"
    spelled[arr == -np.inf] = "-inf"
    return spelled.tolist()


def _meta_to_json(meta: dict[str, Any]) -> dict[str, Any]:
    """graph.meta as JSON data (tuples become lists, numpy scalars plain numbers), key by key."""
    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON data")

    out = {}
    for key, value in meta.items():
        try:
            if not isinstance(key, str):
                raise TypeError("meta keys must be strings")
            out[key] = json.loads(json.dumps(value, allow_nan=False, default=plain))
        except (TypeError, ValueError, RecursionError) as exc:
            raise GraphFileError(f"meta entry {key!r} is not JSON data: {exc}", source="<graph>",
                                 field="graph") from None
    return out


def dumps(data: dict[str, Any]) -> str:
    """Deterministic strict JSON text: sorted keys, one node (and one edge) per line."""
    lines = []
    for key, value in sorted(data.items()):
        body = "[\n" + ",\n".join(map(_compact, value)) + "\n]" if isinstance(value, list) and value \
            else _compact(value)
        lines.append(f"{json.dumps(key)}:{body}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))


def save_json(graph: Graph, path: str | Path, *, values: bool = True, grads: bool = False) -> Path:
    """Write the graph to ``path`` as JSON (atomically) and return the path."""
    text = dumps(to_dict(graph, values=values, grads=grads)).encode("utf-8")
    if values and len(text) > limits.MAX_FILE_BYTES:
        At(str(path)).fail(None, f"{len(text):,} bytes, more than MAX_FILE_BYTES: load_json would refuse it")
    return atomic_write(path, text)


def save_graphml(graph: Graph, path: str | Path, *, values: bool = False, grads: bool = False) -> Path:
    """Write the graph as GraphML (valid XML whatever the names hold) and return the path: the graph's
    ids, and the JSON file's node fields as attributes (lists and arrays as JSON text)."""
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
