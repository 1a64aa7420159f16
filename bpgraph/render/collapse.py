"""Decide which nodes a drawing merges into single nodes, so layouts stay fast (``dot`` time grows much
faster than the node count, and with the virtual nodes of edges that span ranks).

At most ``max_nodes`` units: the scopes named in ``collapse`` merge, then every scope at the deepest
nesting depth that fits, then depth bands; too many virtual nodes merge runs of one op and halve the
budget.  Nodes in ``keep`` (the root and its cost terms) never merge automatically."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Iterable, NamedTuple, Sequence

import numpy as np

from .structure import Topology, components, longest, op_depths, scope_depths, topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph

#: Default budgets per drawing: ``dot`` lays out 1,500 nodes in well under a second, and takes about
#: a second with 2,000 virtual nodes in the worst shape measured (a parameter feeding a chain of adds).
MAX_NODES, MAX_VIRTUAL = 1500, 2000


@dataclass(frozen=True, eq=False)
class Group:
    """Nodes drawn as one (a collapsed scope, a run of one op or a depth band): ids ascending, the
    scope whose cluster it is drawn in, and its 3 most frequent ops."""

    title: str
    members: np.ndarray
    cluster: str = ""
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

    def at(self) -> list[int]:
        """Per node id, where it is drawn: at itself, or at (and named after) its group's smallest member."""
        firsts = [int(group.members[0]) for group in self.groups]
        return [firsts[k] if k >= 0 else i for i, k in enumerate(self.group_of.tolist())]


def plan(graph: Graph, collapse: str | Iterable[str] = (), max_nodes: int = MAX_NODES,
         keep: Iterable[int] = (), max_virtual: int = MAX_VIRTUAL) -> Plan:
    """Choose the groups for one drawing (see the module docstring for the rules)."""
    if max_nodes < 1:
        raise RenderOptionError(f"max_nodes must be at least 1, got {max_nodes}")
    topo = topology(graph)
    known = sorted(scope_depths(topo.scope_names))[1:]  # "" first
    requested = list((collapse,) if isinstance(collapse, str) else collapse)
    for name in requested:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            listed = ", ".join(known[:20]) or "none: record nodes inside `with g.scope(...)`"
            raise RenderOptionError(f"cannot collapse {name!r}: no such scope{hint} (scopes: {listed})")
    requested = sorted(set(requested), key=lambda s: (s.count("/"), s))
    keep = {i for i in keep if 0 <= i < topo.size}  # ids of other graphs: nothing to keep
    outermost = {s: next((r for r in requested if s == r or s.startswith(r + "/")), None)
                 for s in topo.scope_names}
    named = [outermost[topo.scope_names[k]] for k in topo.scope_index.tolist()]
    result = _fit(graph, named, max_nodes, keep, [])
    virtual = virtual_nodes(topo, result)
    if virtual <= max_virtual:
        return result
    runs = _run_groups(topo, np.array([name is None and i not in keep for i, name in enumerate(named)]))
    budget = max_nodes
    while True:
        result = _fit(graph, named, budget, keep, runs)
        if budget == 1 or virtual_nodes(topo, result) <= max_virtual:
            break
        budget = max(1, min(budget, result.units) // 2)
    done = [f"drew {len(runs):,} runs of one op as single nodes"] if runs else []
    done += [f"lowered max_nodes to {budget:,}"] if budget < max_nodes else []
    note = (f"long edges would add {virtual:,} virtual nodes to the layout, more than max_virtual="
            f"{max_virtual:,}: {' and '.join(done)} (drawing {result.units:,} nodes)")
    return result._replace(notes=(*result.notes, note))


def virtual_nodes(topo: Topology, layout: Plan) -> int:
    """About how many virtual nodes ``dot`` adds to lay out ``layout``: an edge across r ranks adds
    r - 1, ranks being longest paths between drawn units (a source one rank before its first user)."""
    at = layout.at()
    # edges inside a unit draw nothing; those closing a cycle are left out
    pairs = sorted({(at[v], at[u]) for u, v in zip(topo.tails.tolist(), topo.heads.tolist()) if at[u] < at[v]})
    rank = [0] * topo.size
    for head, tail in pairs:  # by head: in order
        rank[head] = max(rank[head], rank[tail] + 1)
    first_use: dict[int, int] = {}
    for head, tail in pairs:
        first_use[tail] = min(first_use.get(tail, rank[head]), rank[head])
    for tail, use in first_use.items():
        if rank[tail] == 0:
            rank[tail] = use - 1
    return sum(rank[head] - rank[tail] - 1 for head, tail in pairs)


def _fit(graph: Graph, named: list[str | None], max_nodes: int, keep: set[int], runs: list[Group]) -> Plan:
    """Requested scopes and ``runs``, then scope levels, then depth bands, until ``max_nodes`` fit."""
    topo = topology(graph)
    in_run = {i for run in runs for i in run.members.tolist()}
    alone = [name is None and i not in in_run for i, name in enumerate(named)]
    groups = _scope_groups(topo, named) + runs
    if sum(alone) + len(groups) <= max_nodes:
        return _finish(groups, topo.size)
    over = f"{topo.size:,} nodes exceed max_nodes={max_nodes:,}"
    free = [is_alone and i not in keep for i, is_alone in enumerate(alone)]
    level, level_groups = _scope_level(topo, free, max_nodes - len(groups) - sum(alone) + sum(free))
    if level:
        return _finish(groups + level_groups, topo.size,
                       f"{over}: collapsed {len(level_groups):,} scopes at nesting depth {level}")
    free = [i not in keep and i not in in_run for i in range(topo.size)]
    bands, block = _band_groups(graph, free, max_nodes - len(keep) - len(runs))
    why = " and scopes do not bring them under it" if any(topo.scope_names) else ""
    return _finish(runs + bands, topo.size, f"{over}{why}: grouped {sum(free):,} nodes into {len(bands):,} "
                                            f"depth bands of {block}")


def _finish(groups: list[Group], total: int, note: str = "") -> Plan:
    """The plan drawing ``groups`` as single nodes, its note saying how many nodes it draws."""
    group_of = np.full(total, -1, dtype=np.intp)
    for k, group in enumerate(groups):
        group_of[group.members] = k
    result = Plan(tuple(groups), group_of)
    return result._replace(notes=(f"{note} (drawing {result.units:,} nodes)",)) if note else result


def _group(topo: Topology, title: str, ids: list[int], cluster: str = "") -> Group:
    """A group of ``ids`` with its three most frequent ops, ties by name (op names are sorted)."""
    members = np.array(ids, dtype=np.intp)
    counts = Counter(code for code in topo.op_index[members].tolist() if code >= 0)
    ranked = sorted(counts, key=lambda code: (-counts[code], code))
    return Group(title, members, cluster, tuple(topo.op_names[code] for code in ranked[:3]))


def _runs(keys: Sequence[Hashable], skip: Hashable = None) -> list[tuple[Hashable, list[int]]]:
    """``(key, its ids)`` per distinct key other than ``skip``, ids ascending, by smallest id."""
    runs: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        if key != skip:
            runs.setdefault(key, []).append(i)
    return list(runs.items())


def _scope_groups(topo: Topology, paths: Sequence[Hashable]) -> list[Group]:
    """A group per scope path in ``paths`` (one per node; None: in no group), in its parent's cluster."""
    return [_group(topo, str(path), ids, str(path).rpartition("/")[0]) for path, ids in _runs(paths)]


def _run_groups(topo: Topology, free: np.ndarray) -> list[Group]:
    """Runs of ``free`` nodes of one op and scope, each feeding only the next (a chain of adds)."""
    tails, heads, op = topo.tails, topo.heads, topo.op_index
    single_use = np.bincount(tails, minlength=topo.size)[tails] == 1
    link = free[tails] & free[heads] & single_use & (op[tails] >= 0) & (op[tails] == op[heads]) \
        & (topo.scope_index[tails] == topo.scope_index[heads])
    piece = components(topo.size, tails[link], heads[link])
    linked = np.bincount(piece, minlength=topo.size)[piece] > 1
    return [_group(topo, f"run of {topo.op_names[op[ids[0]]]}", ids, topo.scope(ids[0]))
            for _, ids in _runs(np.where(linked, piece, -1).tolist(), skip=-1)]


# --- scopes -------------------------------------------------------------------------------------
def _scope_level(topo: Topology, free: list[bool], room: int) -> tuple[int, list[Group]]:
    """The deepest nesting depth L (0: none) whose scopes, collapsed, bring the ``free`` nodes to ``room``
    units or fewer, and its groups: free nodes nested deeper merge by the first L parts of their scopes."""
    scopes = [topo.scope_names[k] for k in topo.scope_index.tolist()]
    counts = Counter(s for s, is_free in zip(scopes, free) if is_free)
    depth = scope_depths(counts)
    prefixes, nested = Counter(depth.values()), Counter()
    for scope, count in counts.items():
        nested[depth[scope]] += count
    level, below = 0, 0
    for deeper in range(1, max(depth.values()) + 1):
        below += nested[deeper - 1]
        level = deeper if below + prefixes[deeper] <= room else level
    cut = {s: "/".join(s.split("/")[:level]) for s in counts if depth[s] >= level > 0}
    return level, _scope_groups(topo, [cut.get(s) if is_free else None for s, is_free in zip(scopes, free)])


# --- depth bands --------------------------------------------------------------------------------
def _band_groups(graph: Graph, free: list[bool], budget: int) -> tuple[list[Group], int]:
    """Group the ``free`` nodes by depth bands of B depths (the smallest doubling of depths / ``budget``
    that fits, else whole bands, then levels); returns the groups and B.

    Connected free ops in one band form a group, a leaf joins its users' earliest; a group keeps to one
    level (as many non-free nodes behind), and a leaf feeding a non-free node to no higher one: else a cycle."""
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
