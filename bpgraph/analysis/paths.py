"""Reachability: the paths from WRT to OF along which ∂OF/∂WRT flows (none: it is zero), always in
one order: depth-first from OF back to WRT, operands by increasing id."""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from ..autodiff import edge_vjp
from ..errors import BpgraphError, GraphError, UnknownNodeError
from ..graph import KINDS, Graph, Ref
from ..ops import OPS
from ..tensor import Tensor
from ..text import one_line

Pattern = str | Tensor | int | Iterable[Tensor | int | str]


class ClaimError(BpgraphError, AssertionError):
    """A claim about the graph's paths is false; the message shows the path or the reason."""


def descendants(graph: Graph, ref: Ref) -> set[int]:
    """Ids of every node that depends on ``ref``, including itself."""
    return graph.descendants(ref)


def depends(graph: Graph, of: Ref, wrt: Ref) -> bool:
    """Whether a path leads from WRT to OF (a node depends on itself); if not, ∂OF/∂WRT = 0."""
    return graph.id_of(wrt) in graph.ancestors(of)


def count_paths(graph: Graph, of: Ref, wrt: Ref) -> int:
    """The exact number of paths from WRT to OF, by dynamic programming over the ids in between."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    counts = {wrt_id: 1}
    for node_id in sorted(graph.between(of_id, wrt_id) - {wrt_id}):
        counts[node_id] = sum(counts[o] for o in set(graph.nodes[node_id]["operands"]) if o in counts)
    return counts.get(of_id, 0)


def walk(graph: Graph, of_id: int, wrt_id: int,
         seed: np.ndarray | None = None) -> Iterator[tuple[list[int], np.ndarray | None]]:
    """Every path from WRT to OF (ids, WRT first), lazily, each with the ``seed`` carried back along it."""
    nodes, on = graph.nodes, graph.between(of_id, wrt_id)
    path: list[int] = []  # from OF down to the node last taken off the stack
    stack: list[tuple[int, int, np.ndarray | None]] = [(of_id, 0, seed)]  # (node, depth, gradient)
    while stack:
        node, depth, carried = stack.pop()
        del path[depth:]
        grad = carried if not path or carried is None else edge_vjp(graph, path[-1], node, carried)
        path.append(node)
        if node == wrt_id:
            yield path[::-1], grad
        else:
            operands = sorted({o for o in nodes[node]["operands"] if o in on}, reverse=True)
            stack.extend((o, depth + 1, grad) for o in operands)


def paths(graph: Graph, of: Ref, wrt: Ref, limit: int | None = 1000) -> list[list[str]]:
    """The first ``limit`` paths from WRT to OF as lists of node names, WRT first."""
    found = itertools.islice(walk(graph, graph.id_of(of), graph.id_of(wrt)), limit)
    return [[graph.name_of(i) for i in ids] for ids, _ in found]


def select(graph: Graph, pattern: Pattern) -> list[int]:
    """Ids of the nodes a pattern names (a name, a glob ``"A*"``, ``"kind:param"``, ``"op:relu"`` or refs);
    matching nothing is an error, so a typo cannot make a claim pass vacuously."""
    if isinstance(pattern, (Tensor, int, np.integer)):
        return [graph.id_of(pattern)]
    if not isinstance(pattern, str):
        return sorted({graph.id_of(p) for p in pattern})
    if pattern in graph:
        return [graph.id_of(pattern)]
    nodes = graph.nodes
    for prefix, field, known in (("kind:", "kind", KINDS), ("op:", "op", sorted(OPS))):
        if pattern.startswith(prefix):
            value = pattern[len(prefix):]
            if value not in known:
                raise GraphError(f"unknown {field} {value!r} in pattern {pattern!r}; "
                                 f"{field}s are {', '.join(known)}")
            return [i for i, a in nodes.items() if a[field] == value]
    found = [i for i, a in nodes.items() if fnmatch.fnmatchcase(a["name"], pattern)]
    if not found:
        raise UnknownNodeError(pattern, graph.names)
    return found


def _first_path(graph: Graph, of_id: int, wrt_id: int) -> list[int]:
    return next((ids for ids, _ in walk(graph, of_id, wrt_id)), [])


def find_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
              through: Pattern | None = None) -> list[str] | None:
    """One path to OF (names) from WRT, through a node matching ``through`` when given, or None."""
    of_id, wrt_id = graph.id_of(of), None if wrt is None else graph.id_of(wrt)
    if through is None and wrt_id is None:
        raise GraphError("find_path needs wrt=, through= or both")
    if through is None:
        ids = _first_path(graph, of_id, wrt_id)
    else:  # to the first matching node strictly between them (or that OF depends on), then on from it
        inside = graph.ancestors(of_id) if wrt_id is None else graph.between(of_id, wrt_id)
        mid = min(set(select(graph, through)) & inside - {of_id, wrt_id}, default=None)
        start = [] if mid is None or wrt_id is None else _first_path(graph, mid, wrt_id)[:-1]
        ids = [] if mid is None else start + _first_path(graph, of_id, mid)
    return [graph.name_of(i) for i in ids] or None


def through(graph: Graph, of: Ref, wrt: Ref | None, pattern: Pattern) -> bool:
    """Whether a path from WRT (None: anywhere) to OF passes through a node matching ``pattern``."""
    return find_path(graph, of, wrt, through=pattern) is not None


def no_path_reason(graph: Graph, of: Ref, wrt: Ref) -> str | None:
    """Why ∂OF/∂WRT is structurally zero ("L2 does not depend on A2; its inputs are W1, W2, W3."), or None."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    if wrt_id in graph.ancestors(of_id):
        return None
    attrs, why = graph.nodes[of_id], f"{graph.name_of(of_id)} does not depend on {graph.name_of(wrt_id)}; "
    if attrs["kind"] != "op":
        return f"{why}{attrs['name']} is a {attrs['kind']} leaf with no inputs."
    return f"{why}its inputs are {', '.join(graph.name_of(o) for o in dict.fromkeys(attrs['operands']))}."


def _claim(graph: Graph, of: Ref, wrt: Ref | None, through: Pattern | None) -> tuple[str, str]:
    """Where a claim looks ("from W1 to J" or "into J") and what it passes through ("'A*'", "{Z1, Z2}")."""
    where = f"from {graph.name_of(graph.id_of(wrt))} to " if wrt is not None else "into "
    names = "" if through is None else repr(through) if isinstance(through, str) else (
        "{" + ", ".join(graph.name_of(i) for i in select(graph, through)) + "}")
    return where + graph.name_of(graph.id_of(of)), names


def assert_no_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                   through: Pattern | None = None) -> None:
    """Claim there is no path from WRT to OF (through ``through``); else ClaimError shows one."""
    found = find_path(graph, of, wrt, through=through)
    if found is not None:
        where, names = _claim(graph, of, wrt, through)
        total = f" (1 of {count_paths(graph, of, wrt)} paths)" if wrt is not None and through is None else ""
        raise ClaimError(f"claim failed: there is a path {where}{f' through {names}' * bool(names)}{total}: "
                         f"{' -> '.join(map(one_line, found))}")


def assert_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                through: Pattern | None = None) -> list[str]:
    """Claim there is a path from WRT to OF (through ``through``) and return it; else ClaimError says why."""
    found = find_path(graph, of, wrt, through=through)
    if found is None and wrt is not None and through is None:
        raise ClaimError(f"claim failed: {no_path_reason(graph, of, wrt)}")
    if found is None:
        where, names = _claim(graph, of, wrt, through)
        raise ClaimError(f"claim failed: no path {where} passes through {names}")
    return found


@dataclass(frozen=True)
class PathsReport:
    """What ``bpgraph paths`` prints: the exact ``count``, the paths listed, and ``reason`` when none."""

    of: str
    wrt: str
    count: int
    paths: tuple[tuple[str, ...], ...]
    through: str | None
    count_only: bool
    reason: str | None

    @property
    def capped(self) -> bool:
        return not self.count_only and self.through is None and self.count > len(self.paths)

    def to_dict(self) -> dict[str, Any]:
        return {"of": self.of, "wrt": self.wrt, "count": self.count, "through": self.through,
                "paths": [list(path) for path in self.paths], "capped": self.capped, "reason": self.reason}

    def __str__(self) -> str:
        if self.count == 0:
            return f"no path: ∂{self.of}/∂{self.wrt} = 0 because {self.reason}"
        if self.count_only:
            return str(self.count)
        if self.through is not None and not self.paths:
            return f"no path from {self.wrt} to {self.of} passes through {self.through}"
        if self.through is not None:
            return f"a path through {self.through}: " + " -> ".join(map(one_line, self.paths[0]))
        shown = f" (showing the first {len(self.paths)}; raise --limit)" if self.capped else ""
        lines = [" -> ".join(map(one_line, path)) for path in self.paths]
        return "\n".join(lines + [f"{self.count} path{'s' if self.count != 1 else ''}{shown}"])


def paths_report(graph: Graph, of: Ref, wrt: Ref, *, through: Pattern | None = None, limit: int = 100,
                 count_only: bool = False) -> PathsReport:
    """The first ``limit`` paths from WRT to OF, or one ``through`` a match (``"A1,A2"`` lists names),
    or with ``count_only`` their number alone."""
    pattern, label = through, through
    if isinstance(through, str) and "," in through:  # "A1, A2" names nodes, as --through takes them
        pattern = [part.strip() for part in through.split(",") if part.strip()]
    elif through is not None and not isinstance(through, str):
        label = ",".join(graph.name_of(i) for i in select(graph, through))
    found = [] if count_only else paths(graph, of, wrt, limit=limit) if pattern is None else [
        p for p in [find_path(graph, of, wrt, through=pattern)] if p]
    names = graph.name_of(graph.id_of(of)), graph.name_of(graph.id_of(wrt))
    return PathsReport(*names, count_paths(graph, of, wrt), tuple(map(tuple, found)), label, count_only,
                       no_path_reason(graph, of, wrt))
