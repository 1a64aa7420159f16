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
import threading
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Sequence, overload

import numpy as np

from .structure import Topology, components, longest, op_depths, topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph

#: Default node budget per drawing: ``dot`` lays out 1,500 nodes in well under a second.
MAX_NODES = 1500


class Group(NamedTuple):
    """Nodes drawn as one: a collapsed scope or a depth band.  ``members`` are the ids,
    ascending, as a read-only array (a view into :attr:`Groups.members`).  Compared by
    identity, since ``members`` is an array."""

    title: str
    members: np.ndarray
    first: int  # members[0] as an int: where the group is drawn
    scope: str = ""
    ops: tuple[str, ...] = ()

    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def key(self) -> str:
        """DOT node id (and SVG id): see :func:`group_key`."""
        return group_key(self.first)


def group_key(first: int) -> str:
    """The DOT node id of the group whose smallest member is ``first``: ``g`` + that id
    (stable across runs)."""
    return f"g{first}"


class Groups(Sequence[Group]):
    """A plan's groups, as columns: group k holds the ids ``members[bounds[k]:bounds[k + 1]]``
    (ascending), is titled ``titles[k]``, collapses scope ``scopes[k]`` (or "" for a band) and
    mostly holds the ops ``ops[k]``.

    A drawing of a 100,000-node graph makes 1,500 groups; made as objects, they were a third
    of its time, so a drawing reads these columns.  As a sequence it gives :class:`Group`
    objects, made on first use (and then kept: the same objects each time).
    """

    __slots__ = ("members", "bounds", "titles", "scopes", "ops", "_made")

    def __init__(self, members: np.ndarray, bounds: np.ndarray, titles: Sequence[str],
                 scopes: Sequence[str], ops: Sequence[tuple[str, ...]]) -> None:
        self.members = _read_only(np.asarray(members, dtype=np.intp))
        self.bounds = _read_only(np.asarray(bounds, dtype=np.intp))
        self.titles, self.scopes, self.ops = tuple(titles), tuple(scopes), tuple(ops)
        self._made: tuple[Group, ...] | None = None

    @classmethod
    def joined(cls, parts: Sequence[Groups]) -> Groups:
        """The groups of ``parts``, one part after another."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [part.members.size for part in parts])
        return cls(np.concatenate([part.members for part in parts]),
                   np.concatenate([[0]] + [part.bounds[1:] + at for part, at in zip(parts, offsets.tolist())]),
                   [t for part in parts for t in part.titles], [t for part in parts for t in part.scopes],
                   [t for part in parts for t in part.ops])

    @property
    def firsts(self) -> np.ndarray:
        """Each group's smallest member: where it is drawn."""
        return self.members[self.bounds[:-1]]

    @property
    def sizes(self) -> np.ndarray:
        """How many nodes each group holds."""
        return np.diff(self.bounds)

    def ordered(self) -> Groups:
        """The same groups, ordered by smallest member (so every plan lists them alike)."""
        firsts = self.firsts
        if (firsts[1:] > firsts[:-1]).all():
            return self
        order = np.argsort(firsts)
        sizes = self.sizes[order]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        # member j of the new order comes from its group's old start plus its place in the group
        source = np.repeat(self.bounds[:-1][order] - bounds[:-1], sizes) + np.arange(self.members.size)
        pick = order.tolist()
        return Groups(self.members[source], bounds, [self.titles[k] for k in pick],
                      [self.scopes[k] for k in pick], [self.ops[k] for k in pick])

    def __len__(self) -> int:
        return len(self.titles)

    @overload
    def __getitem__(self, index: int) -> Group: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Group, ...]: ...
    def __getitem__(self, index: int | slice) -> Group | tuple[Group, ...]:
        return self._objects()[index]

    def __iter__(self) -> Iterator[Group]:
        return iter(self._objects())

    def _objects(self) -> tuple[Group, ...]:
        if self._made is None:
            with _MAKING:  # two threads reading one shared plan get the same objects
                if self._made is None:
                    bounds = self.bounds.tolist()
                    self._made = tuple(Group(title, self.members[a:b], int(self.members[a]), scope, ops)
                                       for title, scope, ops, a, b in zip(self.titles, self.scopes, self.ops,
                                                                          bounds, bounds[1:]))
        return self._made


_MAKING = threading.Lock()  # see Groups._objects


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array`` (plans are shared between drawings)."""
    view = array.view()
    view.flags.writeable = False
    return view


_NO_GROUPS = Groups(np.zeros(0, np.intp), np.zeros(1, np.intp), (), (), ())


class Plan(NamedTuple):
    """Which group each collapsed node belongs to, plus human notes on what was collapsed.

    ``group_of[i]`` is the index in ``groups`` of node i's group, or -1 when node i is drawn
    as itself (an array: test ``group_of[i] >= 0``, not ``i in group_of``; read-only, since
    plans are shared, see :func:`plan`).
    """

    groups: Groups
    group_of: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def units(self) -> int:
        """How many nodes the drawing has: the groups and every node drawn as itself."""
        return int(np.count_nonzero(self.group_of < 0)) + len(self.groups)

    def noted(self, note: str) -> Plan:
        """The same plan with one more note."""
        return self._replace(notes=self.notes + (note,))


def _prefix(scope: str, depth: int) -> str:
    """The first ``depth`` parts of a scope path."""
    return "/".join(scope.split("/")[:depth])


def scope_paths(graph: Graph) -> list[str]:
    """Every scope path and prefix used in the graph, sorted (``layer1``, ``layer1/linear``)."""
    paths: set[str] = set()
    for scope in topology(graph).scope_names:
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


def _sorted_by(labels: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ids`` (ascending) sorted by label then id, their labels in that order, and where each
    label starts."""
    # stable, so ids stay ascending within a label; labels mostly come in ascending runs along
    # the ids (bands follow them), which numpy's stable sort (timsort) takes in about one pass,
    # and often already sorted: then no sort and no new arrays at all
    if labels.size and not (labels[1:] >= labels[:-1]).all():
        order = np.argsort(labels, kind="stable")
        ids, labels = ids[order], labels[order]
    starts = np.flatnonzero(np.diff(labels, prepend=labels[:1] - 1)) if labels.size else labels
    return ids, labels, starts


def _scope_groups(topo: Topology, ids: np.ndarray, labels: np.ndarray, paths: Sequence[str]) -> Groups:
    """One group per scope path, ``ids[k]`` going to ``paths[labels[k]]``; ordered by smallest member."""
    ids, labels, starts = _sorted_by(labels, ids)
    titles = [paths[label] for label in labels[starts].tolist()]
    return Groups(ids, np.append(starts, ids.size), titles, titles, _top_ops(topo, ids, starts)).ordered()


def _top_ops(topo: Topology, ids: np.ndarray, starts: np.ndarray, n: int = 3) -> list[tuple[str, ...]]:
    """For each run ``ids[starts[k]:starts[k+1]]``, its ``n`` most frequent ops (ties by name)."""
    names = topo.op_names
    width = max(len(names), 1)
    counts = _op_counts(topo.op_index[ids], starts, width)
    pairs = np.flatnonzero(counts)
    counts = counts[pairs]
    runs, codes = pairs // width, pairs % width
    order = np.lexsort((codes, -counts, runs))  # per run: most frequent first, then by name
    runs, codes = runs[order], codes[order]
    rank = np.arange(runs.size) - np.searchsorted(runs, runs)  # place within its run
    chosen = rank < n
    # each run's list as one number, base width + 1, with the digit `width` for "no op here"
    packed = np.zeros(starts.size, dtype=np.int64)
    for place in range(n):
        digits = np.full(starts.size, width, dtype=np.int64)
        at = chosen & (rank == place)
        digits[runs[at]] = codes[at]
        packed = packed * (width + 1) + digits
    # runs share a handful of op lists: make each distinct list once
    distinct, which = np.unique(packed, return_inverse=True)
    lists = [tuple(names[c] for c in _digits(number, width + 1, n) if c < width) for number in distinct.tolist()]
    return [lists[k] for k in which.tolist()]


def _op_counts(codes: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``counts[k * width + c]``: how many of ``codes[starts[k]:starts[k+1]]`` are c (leaves,
    -1, are not counted)."""
    if width <= 8 and starts.size:  # a few ops (the usual case): one count per op, no run array
        return np.stack([np.add.reduceat(codes == c, starts) for c in range(width)], axis=1).reshape(-1)
    run = np.repeat(np.arange(starts.size), np.diff(starts, append=codes.size))
    run, codes = run[codes >= 0], codes[codes >= 0]
    return np.bincount(run * width + codes, minlength=starts.size * width)  # runs x ops: small


def _digits(number: int, base: int, count: int) -> list[int]:
    """The ``count`` digits of ``number`` in ``base``, most significant first."""
    digits = []
    for _ in range(count):
        number, digit = divmod(number, base)
        digits.append(digit)
    return digits[::-1]


def _band_groups(graph: Graph, is_free: np.ndarray, budget: int) -> tuple[Groups, int]:
    """Group the nodes marked in ``is_free`` by depth bands (see the module docstring);
    returns groups and B.

    Runs on :mod:`bpgraph.topology` arrays; what is sequential (depths, levels, the pieces
    of each band) runs in the :mod:`bpgraph.sweeps` kernel on big graphs, so no Python loop
    goes over the nodes, only over the groups made.
    """
    topo = topology(graph)
    is_op = topo.is_op
    free_op = is_free & is_op
    ops = np.flatnonzero(free_op)
    depth = op_depths(graph)
    level = _levels(topo, is_free)
    leaf_edges = _joinable_leaf_edges(topo, is_free, level)
    is_loose = is_free & ~is_op
    is_loose[leaf_edges[0]] = False
    loose = np.flatnonzero(is_loose)

    top = max(int(depth.max(where=free_op, initial=-1)), 0) + 1
    leveled = bool(level.any())

    def bands(block: int) -> np.ndarray:
        """Each node's block of ``block`` depths, told apart by level (when there are levels)."""
        return level * (top // block + 1) + depth // block if leveled else depth // block

    room = max(1, budget - loose.size)
    start = block = max(1, -(-top // room))
    while True:
        band = bands(block)
        leaves, users, shared = _leaf_users(topo.size, *leaf_edges, band)
        piece = _band_pieces(topo, band, free_op, shared)
        if _distinct(topo.size, piece[ops]) <= room:
            break
        if block >= top:  # even whole connected pieces do not fit: merge each band outright,
            block = start  # and if that is still too many, each level outright
            band = bands(block)
            if np.unique(band[ops]).size > room:
                band = level
            leaves, users, _ = _leaf_users(topo.size, *leaf_edges, band)
            piece = -1 - band
            break
        block *= 2
    piece[leaves] = piece[users]
    is_member = free_op.copy()
    is_member[leaves] = True
    groups = _pieces(topo, is_member, piece, depth) if ops.size else _NO_GROUPS
    room = budget - len(groups)
    if loose.size and loose.size > room:  # leaves in no group: merge them in id order
        groups = Groups.joined([groups, _leaf_chunks(loose, -(-loose.size // max(1, room)))]).ordered()
    return groups, block


def _leaf_chunks(leaves: np.ndarray, size: int) -> Groups:
    """``leaves`` (ascending) in groups of ``size``; a lone leaf left at the end stays itself."""
    if size < 2:
        return _NO_GROUPS
    starts = np.arange(0, leaves.size, size)
    if leaves.size - starts[-1] == 1:
        starts, leaves = starts[:-1], leaves[:-1]
    bounds = np.append(starts, leaves.size)
    count = starts.size
    return Groups(leaves, bounds, [f"{n:,} other leaves" for n in np.diff(bounds).tolist()], [""] * count, [()] * count)


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
    slots = np.flatnonzero(~is_op[topo.tails])  # operand slots holding a leaf: usually few
    tails, heads = topo.tails[slots], topo.heads[slots]
    from_free_leaf = is_free[tails]
    outside = from_free_leaf & ~is_free[heads]
    lowest = _smallest(topo.size, tails[outside], level[heads[outside]])  # lowest level a leaf feeds outside
    into_free_op = from_free_leaf & is_free[heads] & is_op[heads]
    leaf, user = tails[into_free_op], heads[into_free_op]
    earliest = _smallest(topo.size, leaf, level[user])  # a leaf's group has its users' lowest level
    joinable = earliest[leaf] <= lowest[leaf]
    return leaf[joinable], user[joinable]


def _levels(topo: Topology, is_free: np.ndarray) -> np.ndarray:
    """For each node, the most nodes outside ``free`` (kept, or in a collapsed scope) on one
    path into it.  Only ops of one level share a group: a group holding an ancestor and a
    descendant of such a node would both feed it and be fed by it, a cycle in the picture.
    """
    barrier = ~is_free
    outside = np.flatnonzero(barrier)
    first = int(outside[0]) if outside.size else topo.size
    if first + 1 >= topo.size:  # only nodes recorded after the first barrier can pass one
        return np.zeros(topo.size, dtype=np.intp)
    return longest(topo.indptr, topo.tails, np.zeros(topo.size, np.intp), barrier, first + 1)


def _distinct(size: int, ids: np.ndarray) -> int:
    """How many different values ``ids`` (each in ``range(size)``) holds."""
    seen = np.zeros(size, dtype=bool)
    seen[ids] = True
    return int(np.count_nonzero(seen))


def _smallest(size: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each of ``size`` ids, the smallest of ``values[k]`` with ``index[k]`` equal to it
    (the largest integer for ids that ``index`` never names)."""
    smallest = np.full(size, np.iinfo(np.intp).max, dtype=np.intp)
    np.minimum.at(smallest, index, values)
    return smallest


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


def _pieces(topo: Topology, is_member: np.ndarray, piece: np.ndarray, depth: np.ndarray) -> Groups:
    """One group per distinct ``piece`` of the nodes marked in ``is_member``, titled by the
    depths of its ops (every piece has one; leaves are at depth -1); ordered by smallest member."""
    members = np.flatnonzero(is_member)
    members, _, starts = _sorted_by(piece[members], members)
    member_depth = depth[members]
    lows = np.minimum.reduceat(np.where(member_depth < 0, member_depth.max(), member_depth), starts)
    highs = np.maximum.reduceat(member_depth, starts)
    bounds = np.append(starts, members.size)
    titles = [f"depth {lo}" if lo == hi else f"depths {lo}–{hi}" for lo, hi in zip(lows.tolist(), highs.tolist())]
    return Groups(members, bounds, titles, [""] * len(titles), _top_ops(topo, members, bounds[:-1])).ordered()


def plan(graph: Graph, collapse: Iterable[str] = (), max_nodes: int = MAX_NODES,
         keep: Iterable[int] = ()) -> Plan:
    """Choose the groups for one drawing (see the module docstring for the rules).

    Remembered until the graph grows, so drawing it again with other colours, highlights or
    labels does not plan again.
    """
    if max_nodes < 1:
        raise RenderOptionError(f"max_nodes must be at least 1, got {max_nodes}")
    if isinstance(collapse, str):
        collapse = (collapse,)
    requested = _check_scopes(collapse, scope_paths(graph))
    keep = sorted(i for i in set(keep) if 0 <= i < len(graph))  # ids of other graphs: nothing to keep
    return graph.derived(f"plan {requested} {max_nodes} {keep}",
                         lambda g: _plan(g, requested, max_nodes, keep))


def _plan(graph: Graph, requested: list[str], max_nodes: int, keep: list[int]) -> Plan:
    topo = topology(graph)
    total = topo.size
    scopes, scope_of = topo.scope_names, topo.scope_index  # rules are decided per distinct scope
    # per distinct scope, then looked up per node (masks, not id arrays: a drawing of a
    # 100,000-node graph is mostly these passes, and their memory)
    nesting = np.array([s.count("/") + 1 if s else 0 for s in scopes], dtype=np.intp)
    outermost = np.array([next((k for k, name in enumerate(requested)
                                if s == name or s.startswith(name + "/")), -1) for s in scopes], dtype=np.intp)
    if requested:
        explicit = (outermost >= 0)[scope_of]
        ids = np.flatnonzero(explicit)
        groups = _scope_groups(topo, ids, outermost[scope_of[ids]], requested)
        present = np.bincount(scope_of[~explicit], minlength=len(scopes)) > 0  # scopes left to collapse
    else:  # every scope listed holds a node (two passes fewer over a big graph)
        explicit, groups, present = np.zeros(total, dtype=bool), _NO_GROUPS, np.ones(len(scopes), dtype=bool)
    if total - int(np.count_nonzero(explicit)) + len(groups) <= max_nodes:
        return _finish([groups], total)

    kept = np.zeros(total, dtype=bool)
    kept[keep] = True
    free = ~explicit & ~kept
    max_depth = int(nesting[present].max(initial=0))
    for level in range(max_depth, 0, -1):
        level_groups = _prefix_groups(topo, scopes, scope_of, free & (nesting >= level)[scope_of], level)
        attempt = _finish([groups, level_groups], total)
        if attempt.units <= max_nodes:
            return attempt.noted(f"{total:,} nodes exceed max_nodes={max_nodes:,}: collapsed "
                                 f"{len(level_groups):,} scopes at nesting depth {level} "
                                 f"(drawing {attempt.units:,} nodes)")

    if max_depth:  # every top-level scope collapsed, then band what is left outside scopes
        scoped = free & (nesting > 0)[scope_of]
        level_groups = _prefix_groups(topo, scopes, scope_of, scoped, 1)
        rest = free & ~scoped
        count = int(np.count_nonzero(rest))
        units = len(groups) + len(level_groups) + total - int(explicit.sum()) - int(scoped.sum())
        bands, block = _band_groups(graph, rest, max_nodes - (units - count))
        attempt = _finish([groups, level_groups, bands], total)
        if attempt.units <= max_nodes:
            return attempt.noted(
                f"{total:,} nodes exceed max_nodes={max_nodes:,}: collapsed {len(level_groups):,} "
                f"top-level scopes" + (f" and grouped {count:,} unscoped nodes into "
                                       f"{len(bands):,} depth bands of {block}" if bands else "")
                + f" (drawing {attempt.units:,} nodes)")

    count = total - len(keep)
    bands, block = _band_groups(graph, ~kept, max_nodes - (total - count))
    attempt = _finish([bands], total)
    return attempt.noted(f"{total:,} nodes exceed max_nodes={max_nodes:,}"
                         + (" and scopes do not bring them under it" if max_depth else "")
                         + f": grouped {count:,} nodes into {len(bands):,} depth bands "
                         f"of {block} (drawing {attempt.units:,} nodes)")


def _prefix_groups(topo: Topology, scopes: Sequence[str], scope_of: np.ndarray, chosen: np.ndarray,
                   level: int) -> Groups:
    """Groups of the ``chosen`` nodes by the first ``level`` parts of their scope paths."""
    prefixes = sorted({_prefix(s, level) for s in scopes})
    index = {p: k for k, p in enumerate(prefixes)}
    prefix_of = np.array([index[_prefix(s, level)] for s in scopes], dtype=np.intp)
    ids = np.flatnonzero(chosen)
    return _scope_groups(topo, ids, prefix_of[scope_of[ids]], prefixes)


def _finish(parts: Sequence[Groups], total: int) -> Plan:
    """The plan drawing the groups of ``parts`` (in that order) as single nodes and every other
    node as itself."""
    groups = Groups.joined(parts)
    group_of = np.full(total, -1, dtype=np.intp)
    group_of[groups.members] = np.repeat(np.arange(len(groups)), groups.sizes)
    group_of.flags.writeable = False
    return Plan(groups, group_of)
