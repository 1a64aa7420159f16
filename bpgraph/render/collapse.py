"""Decide which nodes a drawing merges into single "collapsed" nodes, so layouts stay fast.

Graphviz's ``dot`` needs about 0.2 s at 1,000 nodes, seconds at 5,000 and minutes at 20,000,
so a drawing never hands it more than ``max_nodes`` nodes (default :data:`MAX_NODES`):

1. Scopes the caller names in ``collapse`` are merged first (a scope and all its sub-scopes
   become one node).
2. If the picture is still too big, every scope at one nesting depth is collapsed: the
   deepest depth that fits, so as much detail as possible survives.
3. If even collapsing every top-level scope does not fit (or there are no scopes), the
   remaining nodes are grouped by **depth bands**: an op's depth is the length of the
   longest op chain feeding it; ops whose depths fall in the same block of ``B`` consecutive
   depths and are connected within that block form one group, and each leaf joins the group
   of its first user.  ``B`` is the smallest power-of-two-multiple block size that fits the
   budget, so a 100,000-op chain becomes a chain of a few hundred blocks and independent
   branches stay apart.  If connected blocks still do not fit, whole bands are merged.
4. Nodes in ``keep`` (the root and its cost terms) are never merged automatically.

The result is still an ordinary graph that Graphviz lays out; no coordinates are invented.
Everything here is pure and iterative, and every choice is deterministic.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..topology import components, op_depths, topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph

#: Default node budget per drawing: ``dot`` lays out 1,500 nodes in well under a second.
MAX_NODES = 1500


@dataclass(frozen=True)
class Group:
    """Nodes drawn as one: a collapsed scope or a depth band."""

    title: str
    members: tuple[int, ...]
    scope: str = ""
    ops: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """DOT node id: ``g`` + the smallest member id (stable across runs)."""
        return f"g{self.members[0]}"


@dataclass
class Plan:
    """Which group each collapsed node belongs to, plus human notes on what was collapsed."""

    groups: list[Group] = field(default_factory=list)
    group_of: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    units: int = 0


def _prefix(scope: str, depth: int) -> str:
    return "/".join(scope.split("/")[:depth])


def scope_paths(graph: Graph) -> list[str]:
    """Every scope path and prefix used in the graph, sorted (``layer1``, ``layer1/linear``)."""
    paths: set[str] = set()
    for attrs in graph.nodes.values():
        scope = attrs["scope"]
        while scope and scope not in paths:
            paths.add(scope)
            scope = scope.rpartition("/")[0]
    return sorted(paths)


def _check_scopes(requested: Iterable[str], known: list[str]) -> list[str]:
    wanted = []
    for name in requested:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            listed = ", ".join(known[:20]) or "none: record nodes inside `with g.scope(...)`"
            raise RenderOptionError(f"cannot collapse {name!r}: no such scope{hint} (scopes: {listed})")
        wanted.append(name)
    return sorted(set(wanted), key=lambda s: (s.count("/"), s))


def _scope_groups(graph: Graph, scope_of: dict[int, str]) -> list[Group]:
    """Turn ``node -> scope path`` into groups ordered by their smallest member."""
    members: dict[str, list[int]] = {}
    for node_id, path in scope_of.items():
        members.setdefault(path, []).append(node_id)
    groups = [Group(path, tuple(sorted(ids)), scope=path, ops=_top_ops(graph, ids))
              for path, ids in members.items()]
    return sorted(groups, key=lambda grp: grp.members[0])


def _top_ops(graph: Graph, ids: Iterable[int], n: int = 3) -> tuple[str, ...]:
    nodes = graph.nodes
    counts = Counter(nodes[i]["op"] for i in ids)
    counts.pop(None, None)  # leaves have no op
    return tuple(op for op, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def _band_groups(graph: Graph, free: list[int], budget: int) -> tuple[list[Group], int]:
    """Group ``free`` nodes by depth bands (see the module docstring); returns groups and B.

    Runs on :mod:`bpgraph.topology` arrays: this reads every node of graphs far larger than
    anything ``dot`` is given, so a Python loop per node would cost more than the layout.
    """
    topo = topology(graph)
    is_op, tails, heads = topo.is_op, topo.tails, topo.heads
    is_free = np.zeros(topo.size, dtype=bool)
    is_free[free] = True
    free_op = is_free & is_op
    ops = np.flatnonzero(free_op)
    depth = op_depths(topo)
    into_free_op = free_op[heads]
    inner = into_free_op & free_op[tails]
    a, b = tails[inner], heads[inner]
    fed = into_free_op & is_free[tails] & ~is_op[tails]  # a free leaf feeding a free op
    leaves, first = np.unique(tails[fed], return_index=True)
    users = heads[fed][first]  # heads ascend, so each leaf's first edge is its first user
    loose = np.setdiff1d(np.flatnonzero(is_free & ~is_op), leaves, assume_unique=True)

    top = int(depth[ops].max()) + 1 if ops.size else 1
    room = max(1, budget - loose.size)
    start = block = max(1, -(-top // room))
    while True:
        same_band = depth[a] // block == depth[b] // block
        piece = components(topo.size, a[same_band], b[same_band])
        if np.unique(piece[ops]).size <= room:
            break
        if block >= top:  # even whole connected pieces do not fit: merge each band outright
            block = start
            piece = -1 - depth // block
            break
        block *= 2
    piece[leaves] = piece[users]
    groups = _pieces(graph, np.concatenate([ops, leaves]), piece, depth) if ops.size else []
    room = budget - len(groups)
    loose = loose.tolist()
    if loose and len(loose) > room:  # leaves that feed no grouped op: merge them in id order
        size = -(-len(loose) // max(1, room))
        groups += [Group(f"{len(chunk):,} unused leaves", tuple(chunk))
                   for chunk in (loose[k:k + size] for k in range(0, len(loose), size))]
    return sorted(groups, key=lambda grp: grp.members[0]), block


def _pieces(graph: Graph, members: np.ndarray, piece: np.ndarray, depth: np.ndarray) -> list[Group]:
    """One group per distinct ``piece`` of ``members``, titled by the depths of its ops."""
    members = members[np.lexsort((members, piece[members]))]  # by piece, then id
    cuts = np.flatnonzero(np.diff(piece[members])) + 1
    starts = np.concatenate([[0], cuts])
    member_depth = depth[members]  # -1 for leaves; every piece has at least one op
    lows = np.minimum.reduceat(np.where(member_depth < 0, member_depth.max(), member_depth), starts)
    highs = np.maximum.reduceat(member_depth, starts)
    groups = []
    for ids, lo, hi in zip(np.split(members, cuts), lows.tolist(), highs.tolist()):
        ids = ids.tolist()
        title = f"depth {lo}" if lo == hi else f"depths {lo}–{hi}"
        groups.append(Group(title, tuple(ids), ops=_top_ops(graph, ids)))
    return groups


def plan(graph: Graph, collapse: Iterable[str] = (), max_nodes: int = MAX_NODES,
         keep: Iterable[int] = ()) -> Plan:
    """Choose the groups for one drawing (see the module docstring for the rules)."""
    if max_nodes < 1:
        raise RenderOptionError(f"max_nodes must be at least 1, got {max_nodes}")
    if isinstance(collapse, str):
        collapse = (collapse,)
    known = scope_paths(graph)
    requested = _check_scopes(collapse, known)
    keep = set(keep)
    nodes = graph.nodes
    total = len(nodes)

    explicit: dict[int, str] = {}
    if requested:
        for node_id, attrs in nodes.items():
            scope = attrs["scope"]
            for name in requested:  # outermost first
                if scope == name or scope.startswith(name + "/"):
                    explicit[node_id] = name
                    break
    groups = _scope_groups(graph, explicit)
    result = _finish(groups, total)
    if result.units <= max_nodes:
        return result

    free = [i for i in nodes if i not in explicit and i not in keep]
    max_depth = max((attrs["scope"].count("/") + 1 for i, attrs in nodes.items()
                     if attrs["scope"] and i not in explicit), default=0)
    for level in range(max_depth, 0, -1):
        by_scope = {i: _prefix(nodes[i]["scope"], level) for i in free
                    if nodes[i]["scope"] and nodes[i]["scope"].count("/") + 1 >= level}
        level_groups = _scope_groups(graph, by_scope)
        attempt = _finish(groups + level_groups, total)
        if attempt.units <= max_nodes:
            attempt.notes.append(f"{total:,} nodes exceed max_nodes={max_nodes:,}: collapsed "
                                 f"{len(level_groups):,} scopes at nesting depth {level} "
                                 f"(drawing {attempt.units:,} nodes)")
            return attempt

    if max_depth:  # every top-level scope collapsed, then band what is left outside scopes
        by_scope = {i: _prefix(nodes[i]["scope"], 1) for i in free if nodes[i]["scope"]}
        level_groups = _scope_groups(graph, by_scope)
        rest = [i for i in free if i not in by_scope]
        units = len(groups) + len(level_groups) + total - len(explicit) - len(by_scope)
        bands, block = _band_groups(graph, rest, max_nodes - (units - len(rest)))
        attempt = _finish(groups + level_groups + bands, total)
        if attempt.units <= max_nodes:
            attempt.notes.append(
                f"{total:,} nodes exceed max_nodes={max_nodes:,}: collapsed {len(level_groups):,} "
                f"top-level scopes" + (f" and grouped {len(rest):,} unscoped nodes into "
                                       f"{len(bands):,} depth bands of {block}" if bands else "")
                + f" (drawing {attempt.units:,} nodes)")
            return attempt

    free_all = [i for i in nodes if i not in keep]
    bands, block = _band_groups(graph, free_all, max_nodes - (total - len(free_all)))
    attempt = _finish(bands, total)
    attempt.notes.append(f"{total:,} nodes exceed max_nodes={max_nodes:,}"
                         + (" and scopes do not bring them under it" if max_depth else "")
                         + f": grouped {len(free_all):,} nodes into {len(bands):,} depth bands "
                         f"of {block} (drawing {attempt.units:,} nodes)")
    return attempt


def _finish(groups: list[Group], total: int) -> Plan:
    group_of = {m: k for k, grp in enumerate(groups) for m in grp.members}
    return Plan(groups, group_of, [], total - len(group_of) + len(groups))
