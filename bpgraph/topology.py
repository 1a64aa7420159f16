"""The graph's structure as numpy arrays, for passes that read every node of a large graph.

A drawing of a 100,000-node graph reads every node several times (the depth bands it
collapses into, the edges between what it draws) while Graphviz lays out at most a couple
of thousand.  So each node is read once here, into arrays, and those passes run in numpy;
the few that are sequential by nature (each op's depth, which cost terms each node feeds)
are plain loops over these lists, and remembered until the graph grows.

Everything is derived from :attr:`bpgraph.Graph.nodes`, which stays the one source of truth.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .graph import KINDS

if TYPE_CHECKING:
    from .graph import Graph


class Topology(NamedTuple):
    """Per node id (ids run 0..n-1): operands, kind, op and scope; and per operand slot:
    ``tails[k]`` is an operand of ``heads[k]``, one entry per slot (``x * x`` has two), in the
    order of the heads' ids and then of the operands.  Tuples and read-only arrays: one
    Topology is shared by every caller until the graph grows.
    """

    operands: tuple[tuple[int, ...], ...]
    kinds: tuple[str, ...]
    scopes: tuple[str, ...]
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
        return len(self.operands)

    @property
    def is_op(self) -> np.ndarray:
        """Per node: is it an op (not a leaf)?"""
        return self.is_kind("op")

    def is_kind(self, kind: str) -> np.ndarray:
        """Per node: is it of ``kind`` (one of :data:`bpgraph.graph.KINDS`)?"""
        return self.kind_index == KINDS.index(kind)


def topology(graph: Graph) -> Topology:
    """The arrays of ``graph`` as recorded so far; made once per graph size (one pass over the
    node dicts), since recording is the only thing that changes them."""
    return graph.derived("topology", _make_topology)


def _make_topology(graph: Graph) -> Topology:
    nodes = graph.nodes.values()
    # one list per attribute: a tuple per node would be 100,000 new objects for the garbage
    # collector to chase through the whole graph, which costs more than reading it
    operands, kinds, ops, scopes = ([a[key] for a in nodes] for key in ("operands", "kind", "op", "scope"))
    n = len(operands)
    counts = np.fromiter(map(len, operands), dtype=np.intp, count=n)
    tails = np.fromiter(itertools.chain.from_iterable(operands), dtype=np.intp, count=int(counts.sum()))
    heads = np.repeat(np.arange(n, dtype=np.intp), counts)
    kind_index = np.fromiter(map(KINDS.index, kinds), dtype=np.int8, count=n)
    op_names, op_index = _codes(ops)
    if op_names and op_names[0] is None:  # leaves
        op_names, op_index = op_names[1:], op_index - 1
    scope_names, scope_index = _codes(scopes)
    arrays = tails, heads, kind_index, op_index, scope_index
    for array in arrays:
        array.flags.writeable = False
    return Topology(tuple(operands), tuple(kinds), tuple(scopes), tails, heads, kind_index,
                    op_names, op_index, scope_names, scope_index)


def _codes(values: list[Any]) -> tuple[tuple[Any, ...], np.ndarray]:
    """The distinct values, sorted (None first), and each position's index into them."""
    names = tuple(sorted(set(values), key=lambda v: (v is not None, v)))
    index = {name: k for k, name in enumerate(names)}
    return names, np.fromiter(map(index.__getitem__, values), dtype=np.intp, count=len(values))


def op_depths(graph: Graph) -> np.ndarray:
    """Length of the longest chain of ops feeding each op (0 when only leaves feed it); -1 for
    leaves.  One pass up the ids, a topological order; remembered until the graph grows."""
    return graph.derived("op_depths", _op_depths)


def _op_depths(graph: Graph) -> np.ndarray:
    topo = topology(graph)
    depth = [-1] * topo.size
    operands = topo.operands
    for i in np.flatnonzero(topo.is_op).tolist():
        deepest = -1
        for o in operands[i]:  # a plain loop: several times faster than max() here
            d = depth[o]
            if d > deepest:
                deepest = d
        depth[i] = deepest + 1
    depths = np.array(depth, dtype=np.intp)
    depths.flags.writeable = False  # shared by every caller until the graph grows
    return depths


def components(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of ``size`` nodes, the smallest id of its connected piece, the edges being
    ``a[k] -- b[k]``.

    Union-find done for all edges at once: every edge hooks the larger of its two roots under
    the smaller, then every node jumps to its root; repeated until no edge joins two roots.
    The number of rounds grows with the logarithm of a piece's length, not with the length.
    """
    root = np.arange(size, dtype=np.intp)
    while a.size:
        ra, rb = root[a], root[b]
        apart = ra != rb
        if not apart.any():
            break
        a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
        np.minimum.at(root, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:  # jump to the roots (pointer doubling)
            up = root[root]
            if np.array_equal(up, root):
                break
            root = up
    return root
