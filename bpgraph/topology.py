"""The graph's structure as numpy arrays, for passes that read every node of a large graph.

A drawing of a 100,000-node graph reads every node several times (the depth bands it
collapses into, the edges between what it draws) while Graphviz lays out at most a couple
of thousand.  So the graph copies each node's operands, op, kind and scope into flat
columns (:class:`bpgraph.graph._Columns`) in a few C-speed passes over the node dicts
(every 4,096 nodes while recording, and when a drawing asks), this module turns them into
arrays, and those passes run in numpy; the few that are sequential by nature (each op's
depth, which cost terms each node feeds) are the sweeps of :mod:`bpgraph.sweeps`.
Everything is remembered until the graph grows.

The node dicts of :attr:`bpgraph.Graph.nodes` stay the one source of truth: the columns
are copied from them, never written anywhere else, and tests check them against the dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import sweeps
from .graph import KINDS

if TYPE_CHECKING:
    from .graph import Graph


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
    """The arrays of ``graph`` as recorded so far; made once per graph size from its columns
    (caught up from the node dicts first), since recording is the only thing that changes them."""
    return graph.derived("topology", _make_topology)


def _make_topology(graph: Graph) -> Topology:
    columns = graph._columns
    columns.catch_up(graph._nodes)
    n = len(columns.ends) - 1
    # views of the columns, not copies (they only ever grow, and catch_up copies one a view holds)
    indptr = np.frombuffer(columns.ends, dtype=np.int64, count=n + 1)
    tails = np.frombuffer(columns.tails, dtype=np.int64, count=int(indptr[-1]))
    # node i heads slots indptr[i]:indptr[i+1] (np.repeat: twice as fast, in numpy 2.4, as
    # counting the ends at or before each slot and summing)
    heads = np.repeat(np.arange(n, dtype=np.intp), np.diff(indptr))
    kind_index = np.frombuffer(columns.kinds, dtype=np.int8, count=n)
    op_names = tuple(sorted(op for op in columns.op_names if op is not None))
    op_of_code = np.array([-1 if op is None else op_names.index(op) for op in columns.op_names],
                          dtype=np.intp)
    op_index = op_of_code[np.frombuffer(columns.op_codes, dtype=np.int16, count=n)]
    marks = columns.scope_marks
    starts = np.array([0] + [start for start, _ in marks] + [n], dtype=np.intp)
    scopes = [""] + [scope for _, scope in marks]  # scope of the ids from starts[k] to starts[k+1]
    lengths = np.diff(starts)
    scope_names = tuple(sorted({scope for scope, length in zip(scopes, lengths.tolist()) if length}))
    index = {scope: k for k, scope in enumerate(scope_names)}
    scope_index = np.repeat(np.array([index.get(scope, -1) for scope in scopes], dtype=np.intp), lengths)
    for array in (indptr, tails, heads, kind_index, op_index, scope_index):
        array.flags.writeable = False
    return Topology(indptr, tails, heads, kind_index, op_names, op_index, scope_names, scope_index)


def use_counts(graph: Graph) -> np.ndarray:
    """Per node: how many operand slots hold it (``x * x`` holds x twice); remembered until
    the graph grows."""
    return graph.derived("use_counts", _use_counts)


def _use_counts(graph: Graph) -> np.ndarray:
    columns = graph._columns
    columns.catch_up(graph._nodes)  # not the whole topology: only the operand column is read
    counts = np.bincount(np.frombuffer(columns.tails, dtype=np.int64), minlength=len(graph))
    counts.flags.writeable = False  # shared by every caller until the graph grows
    return counts


def op_depths(graph: Graph) -> np.ndarray:
    """Length of the longest chain of ops feeding each op (0 when only leaves feed it); -1 for
    leaves.  One sweep up the ids, a topological order (:func:`bpgraph.sweeps.longest`);
    remembered until the graph grows."""
    return graph.derived("op_depths", _op_depths)


def _op_depths(graph: Graph) -> np.ndarray:
    topo = topology(graph)
    is_op = topo.is_op
    depths = sweeps.longest(topo.indptr, topo.tails, np.where(is_op, 0, -1), np.ones(topo.size, np.int64))
    depths = depths.astype(np.intp, copy=False)
    depths.flags.writeable = False  # shared by every caller until the graph grows
    return depths


def components(size: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each of ``size`` nodes, the smallest id of its connected piece, the edges being
    ``a[k] -- b[k]``.

    Union-find done for all edges at once: every edge hooks the larger of its two roots under
    the smaller, then every node jumps to its root; repeated until no edge joins two roots.
    The number of rounds grows with the logarithm of a piece's length, not with the length.
    (Drawings of big graphs join their bands' pieces in the kernel instead:
    :func:`bpgraph.sweeps.band_pieces`.)
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
