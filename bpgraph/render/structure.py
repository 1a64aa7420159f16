"""The graph's structure as numpy arrays, for the passes a drawing makes over every node.

The arrays are made in one Python pass over the node dicts (which stay the one source of
truth) and remembered until the graph grows: a drawing of a big graph reads every node
several times (collapsing it into depth bands, merging the edges between what it draws)
while Graphviz lays out at most a couple of thousand.  Passes that are sequential by nature,
such as each op's depth, are plain loops over the ids (:func:`longest`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..graph import KINDS

if TYPE_CHECKING:
    from ..graph import Graph


class Topology(NamedTuple):
    """Per node id (ids run 0..n-1): operands, kind, op and scope.  Per operand slot:
    ``tails[k]`` is an operand of ``heads[k]``, one entry per slot (``x * x`` has two), in the
    order of the heads' ids and then of the operands; node i's slots are
    ``indptr[i]:indptr[i + 1]``.  Read-only arrays: one Topology is shared by every caller
    until the graph grows.
    """

    indptr: np.ndarray
    tails: np.ndarray
    heads: np.ndarray
    kind_index: np.ndarray  # per node: its kind's index in bpgraph.graph.KINDS
    op_names: tuple[str, ...]  # the distinct op names, sorted
    op_index: np.ndarray  # per node: its op's index in op_names, -1 for leaves
    scope_names: tuple[str, ...]  # the distinct scopes, sorted ("" first when present)
    scope_index: np.ndarray  # per node: its scope's index in scope_names

    @property
    def size(self) -> int:
        """The number of nodes."""
        return len(self.kind_index)

    @property
    def is_op(self) -> np.ndarray:
        """Per node: is it an op (not a leaf)?"""
        return self.is_kind("op")

    def is_kind(self, kind: str) -> np.ndarray:
        """Per node: is it of ``kind`` (one of :data:`bpgraph.graph.KINDS`)?"""
        return self.kind_index == KINDS.index(kind)

    def kind(self, node_id: int) -> str:
        """The kind of one node."""
        return KINDS[self.kind_index[node_id]]

    def scope(self, node_id: int) -> str:
        """The scope of one node."""
        return self.scope_names[self.scope_index[node_id]]


def topology(graph: Graph) -> Topology:
    """The arrays of ``graph`` as recorded so far, made once per graph size."""
    return graph.derived("topology", _make_topology)


def _make_topology(graph: Graph) -> Topology:
    nodes = list(graph.nodes.values())
    n = len(nodes)
    counts = np.fromiter((len(attrs["operands"]) for attrs in nodes), np.intp, n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
    tails = np.fromiter(itertools.chain.from_iterable(attrs["operands"] for attrs in nodes), np.intp,
                        int(indptr[-1]))
    heads = np.repeat(np.arange(n, dtype=np.intp), counts)
    kind_index = np.array([KINDS.index(attrs["kind"]) for attrs in nodes], dtype=np.int8)
    op_names = tuple(sorted({attrs["op"] for attrs in nodes if attrs["op"] is not None}))
    op_code = {op: k for k, op in enumerate(op_names)}
    op_index = np.array([op_code.get(attrs["op"], -1) for attrs in nodes], dtype=np.intp)
    scope_names = tuple(sorted({attrs["scope"] for attrs in nodes}))
    scope_code = {scope: k for k, scope in enumerate(scope_names)}
    scope_index = np.array([scope_code[attrs["scope"]] for attrs in nodes], dtype=np.intp)
    for array in (indptr, tails, heads, kind_index, op_index, scope_index):
        array.flags.writeable = False  # shared by every caller until the graph grows
    return Topology(indptr, tails, heads, kind_index, op_names, op_index, scope_names, scope_index)


def op_depths(graph: Graph) -> np.ndarray:
    """Length of the longest chain of ops feeding each op (0 when only leaves feed it); -1 for
    leaves.  Remembered until the graph grows."""
    return graph.derived("op_depths", _op_depths)


def _op_depths(graph: Graph) -> np.ndarray:
    topo = topology(graph)
    depths = longest(topo.indptr, topo.tails, np.where(topo.is_op, 0, -1), np.ones(topo.size, np.intp))
    depths.flags.writeable = False  # shared by every caller until the graph grows
    return depths


def longest(indptr: np.ndarray, tails: np.ndarray, base: np.ndarray, add: np.ndarray) -> np.ndarray:
    """For each node, in id order: the largest of ``base[i]`` and, over its operands o,
    ``result[o] + add[o]``.  (An op's depth: base 0 for ops and -1 for leaves, add 1.)"""
    ends, operands = indptr.tolist(), tails.tolist()
    value, add_ = base.tolist(), add.tolist()
    for i in range(len(value)):
        for o in operands[ends[i]:ends[i + 1]]:
            value[i] = max(value[i], value[o] + add_[o])
    return np.array(value, dtype=np.intp)


def components(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of ``size`` nodes, the smallest id of its connected piece, the edges being
    ``a[k] -- b[k]`` (union-find, each piece's root its smallest id)."""
    root = list(range(size))

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = x = root[root[x]]  # halve the path on the way up
        return x

    for u, v in zip(a.tolist(), b.tolist()):
        ru, rv = find(u), find(v)
        root[max(ru, rv)] = min(ru, rv)
    return np.array([find(x) for x in range(size)], dtype=np.intp)
