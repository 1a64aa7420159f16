"""The graph's structure as numpy arrays, made in one pass over the node dicts and remembered until
the graph grows: a drawing of a big graph reads every node several times."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, NamedTuple

import numpy as np

from ..graph import KINDS

if TYPE_CHECKING:
    from ..graph import Graph


class Topology(NamedTuple):
    """Per node id: kind, op, scope.  Per operand slot, by head id then operand: ``tails[k]`` is an operand
    of ``heads[k]`` (``x * x`` has two).  Read-only, shared."""

    tails: np.ndarray
    heads: np.ndarray
    kind_index: np.ndarray  # per node: its kind's index in bpgraph.graph.KINDS
    op_names: tuple[str, ...]  # the distinct op names, sorted
    op_index: np.ndarray  # per node: its op's index in op_names, -1 for leaves
    scope_names: tuple[str, ...]  # the distinct scopes, sorted ("" first when present)
    scope_index: np.ndarray  # per node: its scope's index in scope_names

    @property
    def size(self) -> int:
        return len(self.kind_index)

    @property
    def is_op(self) -> np.ndarray:
        """Per node: is it an op (not a leaf)?"""
        return self.is_kind("op")

    def is_kind(self, kind: str) -> np.ndarray:
        """Per node: is it of ``kind`` (one of :data:`bpgraph.graph.KINDS`)?"""
        return self.kind_index == KINDS.index(kind)

    def kind(self, node_id: int) -> str:
        return KINDS[self.kind_index[node_id]]

    def scope(self, node_id: int) -> str:
        return self.scope_names[self.scope_index[node_id]]


def topology(graph: Graph) -> Topology:
    """The arrays of ``graph`` as recorded so far, made once per graph size."""
    return graph.derived("topology", _make_topology)


def _make_topology(graph: Graph) -> Topology:
    nodes = list(graph.nodes.values())
    n = len(nodes)
    counts = np.fromiter((len(attrs["operands"]) for attrs in nodes), np.intp, n)
    tails = np.array([o for attrs in nodes for o in attrs["operands"]], dtype=np.intp)
    heads = np.repeat(np.arange(n, dtype=np.intp), counts)
    kind_index = np.array([KINDS.index(attrs["kind"]) for attrs in nodes], dtype=np.int8)
    op_names = tuple(sorted({attrs["op"] for attrs in nodes if attrs["op"] is not None}))
    op_code = {op: k for k, op in enumerate(op_names)}
    op_index = np.array([op_code.get(attrs["op"], -1) for attrs in nodes], dtype=np.intp)
    scope_names = tuple(sorted({attrs["scope"] for attrs in nodes}))
    scope_code = {scope: k for k, scope in enumerate(scope_names)}
    scope_index = np.array([scope_code[attrs["scope"]] for attrs in nodes], dtype=np.intp)
    for array in (tails, heads, kind_index, op_index, scope_index):
        array.flags.writeable = False  # shared by every caller until the graph grows
    return Topology(tails, heads, kind_index, op_names, op_index, scope_names, scope_index)


def op_depths(graph: Graph) -> np.ndarray:
    """Per node, the longest chain of ops feeding it (0 when only leaves do; -1 for leaves), remembered."""
    def depths(graph: Graph) -> np.ndarray:
        topo = topology(graph)
        found = np.array(longest(topo, [0 if op else -1 for op in topo.is_op.tolist()], [1] * topo.size))
        found.flags.writeable = False  # shared by every caller until the graph grows
        return found

    return graph.derived("op_depths", depths)


def longest(topo: Topology, base: list[int], add: list[int]) -> list[int]:
    """Per node in id order: the max of ``base[i]`` and ``result[o] + add[o]`` over its operands o."""
    value = list(base)
    for o, i in zip(topo.tails.tolist(), topo.heads.tolist()):
        value[i] = max(value[i], value[o] + add[o])
    return value


def components(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per node, the smallest id of its connected piece, the edges being ``a[k] -- b[k]`` (union-find)."""
    root = list(range(size))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = x = root[root[x]]  # halve the path on the way up
        return x

    for u, v in zip(a.tolist(), b.tolist()):
        ru, rv = find(u), find(v)
        root[max(ru, rv)] = min(ru, rv)
    return np.array([find(x) for x in range(size)], dtype=np.intp)


def scope_depths(paths: Iterable[str]) -> dict[str, int]:
    """Every path in ``paths`` and each of its prefixes, with its nesting depth ("" has 0), each after its
    parent: a path walks up to a known prefix, so a chain of nested scopes costs its length, not its square."""
    depth = {"": 0}
    for path in paths:
        new = []
        while path not in depth:
            new.append(path)
            path = path.rpartition("/")[0]
        for k, prefix in enumerate(reversed(new), depth[path] + 1):
            depth[prefix] = k
    return depth
