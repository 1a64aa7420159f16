"""What a graph file is (format, version, dtypes, fields), the error that names where a problem
is, and the checks that saving and loading share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import BpgraphError
from . import limits

FORMAT = "bpgraph-graph"
VERSION = 1
#: The file extensions of the data formats written here (pictures and DOT: bpgraph.render's).
EXTENSIONS = {".json": "json", ".graphml": "graphml"}
#: The array dtypes a file may hold (each survives a trip through JSON numbers exactly).
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64")
#: How non-finite floats are spelled in a file.
NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}

#: The fields of a file and of a node: how a message names the JSON type each must have, and
#: the Python types that are that (None: the field's content is checked on its own).
_INTEGER, _STRING = ("an integer", (int,)), ("a string", (str,))
TOP_FIELDS = {"format": None, "version": _INTEGER, "directed": None, "multigraph": None,
              "graph": ("an object (the graph's meta data)", (dict,)),
              "grad_root": ("a node name or null", (str, type(None))),
              "nodes": ("a list of nodes", (list,)), "edges": ("a list of edges", (list,))}
NODE_FIELDS = {"id": _INTEGER, "name": _STRING, "kind": _STRING,
               "op": ("the name of an op", (str, type(None))), "operands": ("a list of node ids", (list,)),
               "params": ("an object", (dict,)), "scope": _STRING, "shape": ("a list of sizes", (list,)),
               "dtype": _STRING, "requires_grad": ("true or false", (bool,)), "value": None}


class GraphFileError(BpgraphError, ValueError):
    """A graph file (or dict) that cannot be read, or a graph that cannot be saved; the message
    names the source, the node (its name and position in the node list) and the field."""

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


@dataclass
class At:
    """Where a check is looking (source, node), and how it reports a problem there."""

    source: str
    index: int | None = None
    name: str | None = None

    def fail(self, field: str | None, problem: str) -> NoReturn:
        raise GraphFileError(problem, source=self.source, node=self.name, index=self.index, field=field)


def json_type(value: Any) -> str:
    """How a JSON reader would call this value's type (for messages)."""
    names = {type(None): "null", bool: "a boolean", int: "an integer", float: "a number",
             str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def check_name(at: At, name: str) -> None:
    if not 0 < len(name) <= limits.MAX_NAME_LENGTH:
        at.fail("name", f"a name must be 1 to {limits.MAX_NAME_LENGTH} characters (MAX_NAME_LENGTH), "
                        f"this one has {len(name)}")


def check_params(at: At, params: dict[str, Any]) -> None:
    """Each param is a finite number, boolean, None, string or a flat list of those (saving and loading)."""
    for key, value in params.items():
        for item in value if type(value) is list else [value]:
            finite_float = type(item) is float and math.isfinite(item)
            if not (item is None or type(item) in (bool, int, str) or finite_float):
                at.fail(f"params.{key}", "a param is a finite number, true/false, null, a string "
                                         f"or a flat list of those; found {json_type(item)} {item!r:.40}")


def check_meta(at: At, meta: dict[str, Any]) -> None:
    """Meta data holds at most MAX_META_ITEMS values in all, nested at most MAX_DEPTH deep, and finite
    numbers only (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(meta, 1)]
    items = 1
    while stack:
        item, depth = stack.pop()
        if depth > limits.MAX_DEPTH:
            at.fail("graph", f"meta data nested more than MAX_DEPTH ({limits.MAX_DEPTH}) levels deep")
        if type(item) is float and not math.isfinite(item):
            at.fail("graph", f"meta data holds the number {item}, which JSON cannot write back")
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        items += len(children)
        if items > limits.MAX_META_ITEMS:  # counted before they are visited
            at.fail("graph", f"meta data holds more than MAX_META_ITEMS ({limits.MAX_META_ITEMS:,}) values")
        stack.extend((child, depth + 1) for child in children)
