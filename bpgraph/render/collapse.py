"""Decide which nodes a drawing merges into single "collapsed" nodes, so layouts stay fast.

``dot`` layout time grows much faster than the node count, so a drawing gets at most ``max_nodes``
nodes: the scopes named in ``collapse`` merge (with their sub-scopes), then every scope at the
deepest nesting depth that fits, then depth bands (:func:`_band_groups`).  Nodes in ``keep`` (the
root and its cost terms) never merge automatically.  Pure, iterative and deterministic.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Iterable, NamedTuple, Sequence

import numpy as np

from .structure import Topology, components, longest, op_depths, topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph

#: Default node budget per drawing: ``dot`` lays out 1,500 nodes in well under a second.
MAX_NODES = 1500


@dataclass(frozen=True, eq=False)
class Group:
    """Nodes drawn as one, a collapsed scope or a depth band: ids ascending, its 3 most frequent ops."""

    title: str
    members: np.ndarray
    scope: str = ""  # the collapsed scope, "" for a band
    ops: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """DOT node id (and SVG id): ``g`` + the smallest member's id, stable across runs."""
        return f"g{self.members[0]}"


class Plan(NamedTuple):
    """The groups, notes on what was collapsed, and per node id the index of its group in
    ``groups`` (-1 when drawn as itself: test ``group_of[i] >= 0``, not ``i in group_of``)."""

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
    keep = {i for i in keep if 0 <= i < total}  # ids of other graphs: nothing to keep
    scopes = [topo.scope_names[k] for k in topo.scope_index.tolist()]
    outermost = {s: next((r for r in requested if s == r or s.startswith(r + "/")), None)
                 for s in topo.scope_names}
    named = [outermost[s] for s in scopes]
    groups = _scope_groups(topo, named)
    if named.count(None) + len(groups) <= max_nodes:
        return _finish(groups, total)

    over = f"{total:,} nodes exceed max_nodes={max_nodes:,}"
    free = [name is None and i not in keep for i, name in enumerate(named)]
    max_depth = max((_nesting(s) for s, name in zip(scopes, named) if name is None), default=0)
    for level in range(max_depth, 0, -1):
        level_groups = _scope_groups(topo, _prefixes(topo, scopes, free, level))
        attempt = _finish(groups + level_groups, total,
                          f"{over}: collapsed {len(level_groups):,} scopes at nesting depth {level}")
        if attempt.units <= max_nodes:
            return attempt

    if max_depth:  # the top-level scopes collapsed (level_groups of the last pass), then bands outside scopes
        rest = [is_free and not s for s, is_free in zip(scopes, free)]
        others = len(groups) + len(level_groups) + named.count(None) - sum(free)  # + kept nodes, drawn alone
        bands, block = _band_groups(graph, rest, max_nodes - others)
        banded = f" and grouped {sum(rest):,} unscoped nodes into {len(bands):,} depth bands of {block}"
        note = f"{over}: collapsed {len(level_groups):,} top-level scopes{banded if bands else ''}"
        attempt = _finish(groups + level_groups + bands, total, note)
        if attempt.units <= max_nodes:
            return attempt

    bands, block = _band_groups(graph, [i not in keep for i in range(total)], max_nodes - len(keep))
    why = " and scopes do not bring them under it" if max_depth else ""
    return _finish(bands, total, f"{over}{why}: grouped {total - len(keep):,} nodes into {len(bands):,} "
                                 f"depth bands of {block}")


def _finish(groups: list[Group], total: int, note: str = "") -> Plan:
    """The plan drawing ``groups`` as single nodes, its note saying how many nodes it draws."""
    group_of = np.full(total, -1, dtype=np.intp)
    for k, group in enumerate(groups):
        group_of[group.members] = k
    result = Plan(tuple(groups), group_of)
    return result._replace(notes=(f"{note} (drawing {result.units:,} nodes)",)) if note else result


def _runs(keys: Sequence[Hashable]) -> list[tuple[Hashable, list[int]]]:
    """``(key, its ids)`` per distinct key other than None, ids ascending, by smallest id."""
    runs: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            runs.setdefault(key, []).append(i)
    return list(runs.items())


def _group(topo: Topology, title: str, ids: list[int], scope: str = "") -> Group:
    """A group of ``ids`` with its three most frequent ops, ties by name (op names are sorted)."""
    members = np.array(ids, dtype=np.intp)
    counts = Counter(code for code in topo.op_index[members].tolist() if code >= 0)
    ranked = sorted(counts, key=lambda code: (-counts[code], code))
    return Group(title, members, scope, tuple(topo.op_names[code] for code in ranked[:3]))


# --- scopes -------------------------------------------------------------------------------------
def scope_paths(graph: Graph) -> list[str]:
    """Every scope path and prefix used in the graph, sorted (``layer1``, ``layer1/linear``)."""
    scopes = [s for s in topology(graph).scope_names if s]
    return sorted({_prefix(s, depth) for s in scopes for depth in range(1, _nesting(s) + 1)})


def _check_scopes(requested: Iterable[str], known: list[str]) -> list[str]:
    requested = list(requested)
    for name in requested:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            listed = ", ".join(known[:20]) or "none: record nodes inside `with g.scope(...)`"
            raise RenderOptionError(f"cannot collapse {name!r}: no such scope{hint} (scopes: {listed})")
    return sorted(set(requested), key=lambda s: (s.count("/"), s))


def _nesting(scope: str) -> int:
    return scope.count("/") + 1 if scope else 0


def _prefix(scope: str, depth: int) -> str:
    return "/".join(scope.split("/")[:depth])


def _prefixes(topo: Topology, scopes: list[str], free: list[bool], level: int) -> list[str | None]:
    """Per node: the first ``level`` parts of its scope path when it is free and nested that deep."""
    prefix = {s: _prefix(s, level) if _nesting(s) >= level else None for s in topo.scope_names}
    return [prefix[s] if is_free else None for s, is_free in zip(scopes, free)]


def _scope_groups(topo: Topology, paths: list[str | None]) -> list[Group]:
    return [_group(topo, path, ids, path) for path, ids in _runs(paths)]


# --- depth bands --------------------------------------------------------------------------------
def _band_groups(graph: Graph, free: list[bool], budget: int) -> tuple[list[Group], int]:
    """Group the ``free`` nodes by depth bands; returns the groups and the block size B.

    Free ops whose depths fall in one block of B depths and are connected within it form a group; a
    leaf joins its users' group in its earliest block.  B is the smallest doubling of ``ceil(depths /
    budget)`` that fits, else whole bands (then levels) merge.  Groups keep to one *level* (as many
    non-free nodes behind), and a leaf feeding a non-free node joins no higher level: a cycle else.
    """
    topo = topology(graph)
    size = topo.size
    depth = op_depths(graph).tolist()
    is_op = topo.is_op.tolist()
    level = longest(topo, [0] * size, [0 if f else 1 for f in free])
    op_edges, users, lowest = [], {}, {}  # free op -> free op; free leaf -> free ops it feeds
    for u, v in zip(topo.tails.tolist(), topo.heads.tolist()):
        if not free[u]:
            continue
        if is_op[u]:
            if free[v]:
                op_edges.append((u, v))
        elif free[v]:
            users.setdefault(u, []).append(v)
        else:  # the lowest level of a non-free node the leaf feeds
            lowest[u] = min(lowest.get(u, level[v]), level[v])
    joined = {leaf: vs for leaf, vs in users.items() if min(level[v] for v in vs) <= lowest.get(leaf, size)}
    ops = [i for i in range(size) if free[i] and is_op[i]]
    loose = [i for i in range(size) if free[i] and not is_op[i] and i not in joined]
    top = max((depth[i] for i in ops), default=0) + 1

    def bands(block: int) -> dict[int, Hashable]:
        return {i: (level[i], depth[i] // block) for i in ops}

    room = max(1, budget - len(loose))
    start = block = max(1, -(-top // room))
    while True:
        band = bands(block)
        pairs = [(u, v) for u, v in op_edges if band[u] == band[v]]
        for leaf, vs in joined.items():
            earliest = min(band[v] for v in vs)
            pairs += [(leaf, v) for v in vs if band[v] == earliest]
        ends = np.array(pairs, dtype=np.intp).reshape(-1, 2)
        piece = components(size, ends[:, 0], ends[:, 1]).tolist()
        if len({piece[i] for i in ops}) <= room:
            break
        if block >= top:  # even whole connected pieces do not fit: merge each band outright,
            block = start  # and if that is still too many, each level outright
            piece = bands(block)
            if len(set(piece.values())) > room:
                piece = {i: level[i] for i in ops}
            piece.update({leaf: min(piece[v] for v in vs) for leaf, vs in joined.items()})
            break
        block *= 2
    keys = [piece[i] if (free[i] and is_op[i]) or i in joined else None for i in range(size)]
    groups = []
    for _, ids in _runs(keys):
        low = min(depth[i] for i in ids if depth[i] >= 0)
        high = max(depth[i] for i in ids)
        groups.append(_group(topo, f"depth {low}" if low == high else f"depths {low}–{high}", ids))
    room = budget - len(groups)
    if loose and len(loose) > room:  # leaves in no group: merge them in id order
        width = -(-len(loose) // max(1, room))
        chunks = [loose[a:a + width] for a in range(0, len(loose), width)]
        groups += [_group(topo, f"{len(c):,} other leaves", c) for c in chunks if len(c) > 1]  # lone: itself
        groups.sort(key=lambda group: group.members[0])
    return groups, block
