"""Decide which nodes a drawing merges into single "collapsed" nodes, so layouts stay fast.

Graphviz's ``dot`` layout time grows much faster than the node count, so a drawing never
hands it more than ``max_nodes`` nodes (default :data:`MAX_NODES`):

1. Scopes the caller names in ``collapse`` are merged first (a scope and all its sub-scopes
   become one node).
2. If the picture is still too big, every scope at one nesting depth is collapsed: the
   deepest depth that fits, so as much detail as possible survives.
3. If even collapsing every top-level scope does not fit (or there are no scopes), the
   remaining nodes are grouped by **depth bands**: an op's depth is the length of the
   longest op chain feeding it; ops whose depths fall in the same block of ``B`` consecutive
   depths and are connected within that block (by an edge, or by a leaf they both read) form
   one group, and each leaf joins the group of its first user in its earliest block.  ``B``
   is the smallest power-of-two-multiple block size that fits the budget, so a 100,000-op
   chain becomes a chain of a few hundred blocks and independent branches stay apart.  If
   connected blocks still do not fit, whole bands are merged.
4. Nodes in ``keep`` (the root and its cost terms) are never merged automatically.

Nodes left out of the bands (kept ones, collapsed scopes) split them: ops share a group only
when as many such nodes lie behind them (their *level*), and a leaf that feeds such a node
joins no group that node may feed.  So an edge between units never runs back to an earlier
block or level, and depth bands draw no cycle.  (A collapsed scope can, when it holds both
something a band feeds and something that feeds it: that is the scope's shape.)  The price:
when kept nodes feed each other, a drawing has at least one group per level, which can be
more than ``max_nodes`` allows; its note then says how many nodes it draws.

The result is still an ordinary graph that Graphviz lays out; no coordinates are invented.
Everything here is pure and iterative, and every choice is deterministic.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

import numpy as np

from .structure import Topology, components, longest, op_depths, topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph

#: Default node budget per drawing: ``dot`` lays out 1,500 nodes in well under a second.
MAX_NODES = 1500


@dataclass(frozen=True, eq=False)
class Group:
    """Nodes drawn as one: a collapsed scope or a depth band.  ``members`` are the ids,
    ascending; ``ops`` its three most frequent ops (most frequent first, ties by name)."""

    title: str
    members: np.ndarray
    scope: str = ""  # the collapsed scope, "" for a band
    ops: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """DOT node id (and SVG id): ``g`` + the smallest member's id, stable across runs."""
        return f"g{self.members[0]}"


class Plan(NamedTuple):
    """Which group each collapsed node belongs to, plus human notes on what was collapsed.

    ``group_of[i]`` is the index in ``groups`` of node i's group, or -1 when node i is drawn
    as itself (an array: test ``group_of[i] >= 0``, not ``i in group_of``).
    """

    groups: tuple[Group, ...]
    group_of: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def units(self) -> int:
        """How many nodes the drawing has: the groups and every node drawn as itself."""
        return int(np.count_nonzero(self.group_of < 0)) + len(self.groups)


def plan(graph: Graph, collapse: str | Iterable[str] = (), max_nodes: int = MAX_NODES,
         keep: Iterable[int] = ()) -> Plan:
    """Choose the groups for one drawing (see the module docstring for the rules)."""
    if max_nodes < 1:
        raise RenderOptionError(f"max_nodes must be at least 1, got {max_nodes}")
    requested = _check_scopes((collapse,) if isinstance(collapse, str) else collapse, scope_paths(graph))
    topo = topology(graph)
    total = topo.size
    keep = sorted(i for i in set(keep) if 0 <= i < total)  # ids of other graphs: nothing to keep
    scopes, scope_of = topo.scope_names, topo.scope_index  # rules are decided per distinct scope
    nesting = np.array([s.count("/") + 1 if s else 0 for s in scopes], dtype=np.intp)
    outermost = np.array([next((k for k, name in enumerate(requested)
                                if s == name or s.startswith(name + "/")), -1) for s in scopes], dtype=np.intp)
    explicit = (outermost >= 0)[scope_of]
    ids = np.flatnonzero(explicit)
    groups = _scope_groups(topo, ids, outermost[scope_of[ids]], requested)
    if total - ids.size + len(groups) <= max_nodes:
        return _finish(groups, total)

    over = f"{total:,} nodes exceed max_nodes={max_nodes:,}"
    kept = np.zeros(total, dtype=bool)
    kept[keep] = True
    free = ~explicit & ~kept
    present = np.bincount(scope_of[~explicit], minlength=len(scopes)) > 0  # scopes left to collapse
    max_depth = int(nesting[present].max(initial=0))
    for level in range(max_depth, 0, -1):
        level_groups = _prefix_groups(topo, free & (nesting >= level)[scope_of], level)
        attempt = _finish(groups + level_groups, total)
        if attempt.units <= max_nodes:
            return attempt._replace(notes=(f"{over}: collapsed {len(level_groups):,} scopes at nesting depth "
                                           f"{level} (drawing {attempt.units:,} nodes)",))

    if max_depth:  # every top-level scope collapsed, then band what is left outside scopes
        scoped = free & (nesting > 0)[scope_of]
        level_groups = _prefix_groups(topo, scoped, 1)
        rest = free & ~scoped
        count = int(np.count_nonzero(rest))
        others = len(groups) + len(level_groups) + total - ids.size - int(np.count_nonzero(scoped)) - count
        bands, block = _band_groups(graph, rest, max_nodes - others)
        attempt = _finish(groups + level_groups + bands, total)
        if attempt.units <= max_nodes:
            banded = f" and grouped {count:,} unscoped nodes into {len(bands):,} depth bands of {block}" if bands else ""
            return attempt._replace(notes=(f"{over}: collapsed {len(level_groups):,} top-level scopes{banded} "
                                           f"(drawing {attempt.units:,} nodes)",))

    bands, block = _band_groups(graph, ~kept, max_nodes - len(keep))
    attempt = _finish(bands, total)
    why = " and scopes do not bring them under it" if max_depth else ""
    return attempt._replace(notes=(f"{over}{why}: grouped {total - len(keep):,} nodes into {len(bands):,} "
                                   f"depth bands of {block} (drawing {attempt.units:,} nodes)",))


def _finish(groups: list[Group], total: int) -> Plan:
    """The plan drawing ``groups`` as single nodes and every other node as itself."""
    group_of = np.full(total, -1, dtype=np.intp)
    for k, group in enumerate(groups):
        group_of[group.members] = k
    return Plan(tuple(groups), group_of)


# --- scopes -------------------------------------------------------------------------------------
def scope_paths(graph: Graph) -> list[str]:
    """Every scope path and prefix used in the graph, sorted (``layer1``, ``layer1/linear``)."""
    scopes = [s for s in topology(graph).scope_names if s]
    return sorted({_prefix(s, depth) for s in scopes for depth in range(1, s.count("/") + 2)})


def _check_scopes(requested: Iterable[str], known: list[str]) -> list[str]:
    requested = list(requested)
    for name in requested:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            listed = ", ".join(known[:20]) or "none: record nodes inside `with g.scope(...)`"
            raise RenderOptionError(f"cannot collapse {name!r}: no such scope{hint} (scopes: {listed})")
    return sorted(set(requested), key=lambda s: (s.count("/"), s))


def _prefix(scope: str, depth: int) -> str:
    """The first ``depth`` parts of a scope path."""
    return "/".join(scope.split("/")[:depth])


def _prefix_groups(topo: Topology, chosen: np.ndarray, level: int) -> list[Group]:
    """Groups of the ``chosen`` nodes by the first ``level`` parts of their scope paths."""
    prefix_of_scope = [_prefix(s, level) for s in topo.scope_names]
    prefixes = sorted(set(prefix_of_scope))
    index = {p: k for k, p in enumerate(prefixes)}
    prefix_of = np.array([index[p] for p in prefix_of_scope], dtype=np.intp)
    ids = np.flatnonzero(chosen)
    return _scope_groups(topo, ids, prefix_of[topo.scope_index[ids]], prefixes)


def _scope_groups(topo: Topology, ids: np.ndarray, labels: np.ndarray, paths: Sequence[str]) -> list[Group]:
    """One group per scope path, ``ids[k]`` going to ``paths[labels[k]]``."""
    return [Group(paths[label], members, paths[label], _top_ops(topo, members))
            for label, members in _split(ids, labels)]


def _split(ids: np.ndarray, labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(label, its ids)`` for each distinct label of ``ids`` (ascending), ids ascending within
    a label, ordered by smallest id (so every plan lists its groups alike)."""
    order = np.argsort(labels, kind="stable")
    ids, labels = ids[order], labels[order]
    starts = np.flatnonzero(np.diff(labels, prepend=labels[:1] - 1)).tolist()
    runs = [(int(labels[a]), ids[a:b]) for a, b in zip(starts, starts[1:] + [ids.size])]
    return sorted(runs, key=lambda run: run[1][0])


def _top_ops(topo: Topology, members: np.ndarray, n: int = 3) -> tuple[str, ...]:
    """The ``n`` most frequent ops among ``members``, ties by name (op names are sorted)."""
    counts = Counter(code for code in topo.op_index[members].tolist() if code >= 0)
    ranked = sorted(counts, key=lambda code: (-counts[code], code))
    return tuple(topo.op_names[code] for code in ranked[:n])


# --- depth bands --------------------------------------------------------------------------------
def _band_groups(graph: Graph, is_free: np.ndarray, budget: int) -> tuple[list[Group], int]:
    """Group the nodes marked in ``is_free`` by depth bands (see the module docstring);
    returns the groups and the block size B."""
    topo = topology(graph)
    free_op = is_free & topo.is_op
    ops = np.flatnonzero(free_op)
    depth = op_depths(graph)
    # the most nodes outside `free` on one path into each node: only ops of one level share a
    # group, since a group holding an ancestor and a descendant of such a node would both feed
    # it and be fed by it, a cycle in the picture
    level = longest(topo.indptr, topo.tails, np.zeros(topo.size, np.intp), (~is_free).astype(np.intp))
    leaf, user = _joinable_leaf_edges(topo, is_free, level)
    is_loose = is_free & ~topo.is_op  # free leaves that join no group
    is_loose[leaf] = False
    loose = np.flatnonzero(is_loose)
    top = max(int(depth.max(where=free_op, initial=-1)), 0) + 1

    def bands(block: int) -> np.ndarray:
        """Each node's block of ``block`` depths, told apart by level."""
        return level * (top // block + 1) + depth // block

    room = max(1, budget - loose.size)
    start = block = max(1, -(-top // room))
    while True:
        band = bands(block)
        leaves, users, shared = _leaf_users(topo.size, leaf, user, band)
        piece = _band_pieces(topo, band, free_op, shared)
        if np.unique(piece[ops]).size <= room:
            break
        if block >= top:  # even whole connected pieces do not fit: merge each band outright,
            block = start  # and if that is still too many, each level outright
            band = bands(block)
            if np.unique(band[ops]).size > room:
                band = level
            leaves, users, _ = _leaf_users(topo.size, leaf, user, band)
            piece = -1 - band
            break
        block *= 2
    piece[leaves] = piece[users]
    is_member = free_op.copy()
    is_member[leaves] = True
    groups = _pieces(topo, np.flatnonzero(is_member), piece, depth)
    room = budget - len(groups)
    if loose.size and loose.size > room:  # leaves in no group: merge them in id order
        groups = sorted(groups + _leaf_chunks(loose, -(-loose.size // max(1, room))),
                        key=lambda group: group.members[0])
    return groups, block


def _pieces(topo: Topology, members: np.ndarray, piece: np.ndarray, depth: np.ndarray) -> list[Group]:
    """One group per distinct ``piece`` of ``members``, titled by the depths of its ops
    (every piece has one; leaves are at depth -1)."""
    groups = []
    for _, run in _split(members, piece[members]):
        depths = depth[run]
        low, high = int(depths[depths >= 0].min()), int(depths.max())
        title = f"depth {low}" if low == high else f"depths {low}–{high}"
        groups.append(Group(title, run, "", _top_ops(topo, run)))
    return groups


def _leaf_chunks(leaves: np.ndarray, size: int) -> list[Group]:
    """``leaves`` (ascending) in groups of ``size``; a lone leaf left at the end stays itself."""
    if size < 2:
        return []
    chunks = [leaves[a:a + size] for a in range(0, leaves.size, size)]
    if chunks[-1].size == 1:
        chunks.pop()
    return [Group(f"{chunk.size:,} other leaves", chunk) for chunk in chunks]


def _band_pieces(topo: Topology, band: np.ndarray, free_op: np.ndarray,
                 shared: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Connected pieces (the smallest id in each) of the edges between free ops of one band,
    and of the ``shared`` pairs (ops that read one leaf)."""
    tails, heads = topo.tails, topo.heads
    inner = free_op[heads] & free_op[tails]
    a, b = tails[inner], heads[inner]
    same_band = band[a] == band[b]
    return components(topo.size, np.concatenate([a[same_band], shared[0]]),
                      np.concatenate([b[same_band], shared[1]]))


def _joinable_leaf_edges(topo: Topology, is_free: np.ndarray, level: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``(leaf, user)`` edges from free leaves to free ops, heads ascending, for the leaves that
    may join a group: a leaf that also feeds a node outside ``free`` (a kept term, a collapsed
    scope) stays out of every group of a higher level than that node's, which that node may
    feed (the group would feed it and be fed by it)."""
    is_op = topo.is_op
    slots = np.flatnonzero(~is_op[topo.tails])  # operand slots holding a leaf
    tails, heads = topo.tails[slots], topo.heads[slots]
    from_free_leaf = is_free[tails]
    outside = from_free_leaf & ~is_free[heads]
    lowest = _smallest(topo.size, tails[outside], level[heads[outside]])  # lowest level a leaf feeds outside
    into_free_op = from_free_leaf & is_free[heads] & is_op[heads]
    leaf, user = tails[into_free_op], heads[into_free_op]
    earliest = _smallest(topo.size, leaf, level[user])  # a leaf's group has its users' lowest level
    joinable = earliest[leaf] <= lowest[leaf]
    return leaf[joinable], user[joinable]


def _leaf_users(size: int, leaf: np.ndarray, user: np.ndarray, band: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Each leaf's group-mate: its first user in its earliest band; and ``(a, b)`` edges tying
    that user to the leaf's other users in the same band, so that a leaf's edges never run
    between two groups of one band (two such groups could feed each other through leaves).

    ``leaf[k] -> user[k]`` are the leaf edges, users ascending.
    """
    earliest = _smallest(size, leaf, band[user])
    at_earliest = band[user] == earliest[leaf]
    leaf, user = leaf[at_earliest], user[at_earliest]
    leaves, first = np.unique(leaf, return_index=True)
    mate = np.zeros(size, dtype=np.intp)
    mate[leaves] = user[first]
    return leaves, user[first], (mate[leaf], user)


def _smallest(size: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each of ``size`` ids, the smallest of ``values[k]`` with ``index[k]`` equal to it
    (the largest integer for ids that ``index`` never names)."""
    smallest = np.full(size, np.iinfo(np.intp).max, dtype=np.intp)
    np.minimum.at(smallest, index, values)
    return smallest
