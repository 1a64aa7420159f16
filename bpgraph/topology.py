"""The graph's structure as numpy arrays, for passes that read every node of a large graph.

A drawing of a 100,000-node graph reads every node several times (the depth bands it
collapses into, the edges between what it draws) while Graphviz lays out at most a couple
of thousand.  A Python loop per node per pass would make those reads cost more than the
layout, so they are done once here, into arrays, and the passes run on the arrays.

Everything is derived from :attr:`bpgraph.Graph.nodes`, which stays the one source of truth.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph


class Topology(NamedTuple):
    """Arrays indexed by node id (ids run 0..n-1) and by operand slot.

    ``tails[k]`` is an operand of ``heads[k]``, one entry per operand slot (``x * x`` has two),
    in the order of the heads' ids and then of the operands.
    """

    operands: list[tuple[int, ...]]
    tails: np.ndarray
    heads: np.ndarray
    is_op: np.ndarray

    @property
    def size(self) -> int:
        return len(self.operands)


def topology(graph: Graph) -> Topology:
    """The arrays of ``graph`` as recorded so far (one pass over the node dicts)."""
    nodes = graph.nodes
    n = len(nodes)
    operands = [attrs["operands"] for attrs in nodes.values()]
    counts = np.fromiter(map(len, operands), dtype=np.intp, count=n)
    tails = np.fromiter(itertools.chain.from_iterable(operands), dtype=np.intp, count=int(counts.sum()))
    heads = np.repeat(np.arange(n, dtype=np.intp), counts)
    is_op = np.fromiter((attrs["kind"] == "op" for attrs in nodes.values()), dtype=bool, count=n)
    return Topology(operands, tails, heads, is_op)


def op_depths(topo: Topology) -> np.ndarray:
    """Length of the longest chain of ops feeding each op (0 when only leaves feed it); -1 for
    leaves.  One pass up the ids, a topological order."""
    depth = [-1] * topo.size
    operands = topo.operands
    for i in np.flatnonzero(topo.is_op).tolist():
        deepest = -1
        for o in operands[i]:  # a plain loop: several times faster than max() here
            d = depth[o]
            if d > deepest:
                deepest = d
        depth[i] = deepest + 1
    return np.array(depth, dtype=np.intp)


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
