"""Reachability: the paths from WRT to OF, along which ∂OF/∂WRT flows (none: it is zero).

Paths come in one order everywhere: depth-first from OF back to WRT, operands by increasing id.
"""

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
    """Every path from WRT to OF (ids, WRT first), lazily; with a ``seed``, each with its
    contribution: the seed carried back through that path's local VJPs."""
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
    """Ids (ascending) of the nodes a pattern names: a name, a glob (``"A*"``), ``"kind:param"``,
    ``"op:relu"`` or a collection of refs.  Matching nothing is an error, so a typo cannot
    make a claim pass vacuously."""
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
    """One path to OF (node names), or None: from WRT, through a node matching ``through``
    strictly between them, or (without ``wrt``) from the first matching node OF depends on."""
    of_id = graph.id_of(of)
    wrt_id = None if wrt is None else graph.id_of(wrt)
    if through is None:
        if wrt_id is None:
            raise GraphError("find_path needs wrt=, through= or both")
        ids = _first_path(graph, of_id, wrt_id)
    elif wrt_id is None:  # from the first matching node OF depends on
        start = min(set(select(graph, through)) & graph.ancestors(of_id) - {of_id}, default=None)
        ids = [] if start is None else _first_path(graph, of_id, start)
    else:  # up to the first matching node strictly between them, then on from it
        mid = min(set(select(graph, through)) & graph.between(of_id, wrt_id) - {of_id, wrt_id}, default=None)
        ids = [] if mid is None else _first_path(graph, mid, wrt_id)[:-1] + _first_path(graph, of_id, mid)
    return [graph.name_of(i) for i in ids] or None


def through(graph: Graph, of: Ref, wrt: Ref | None, pattern: Pattern) -> bool:
    """Whether some path from WRT (``None``: from anywhere) to OF passes through a node
    matching ``pattern`` strictly between them.  See :func:`select` for patterns."""
    return find_path(graph, of, wrt, through=pattern) is not None


def no_path_reason(graph: Graph, of: Ref, wrt: Ref) -> str | None:
    """Why ∂OF/∂WRT is structurally zero, as one sentence ("L2 does not depend on A2; its inputs
    are W1, W2, W3."); None when OF depends on WRT."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    if wrt_id in graph.ancestors(of_id):
        return None
    attrs = graph.nodes[of_id]
    of_name, wrt_name = attrs["name"], graph.name_of(wrt_id)
    if attrs["kind"] != "op":
        return f"{of_name} does not depend on {wrt_name}; {of_name} is a {attrs['kind']} leaf with no inputs."
    inputs = ", ".join(graph.name_of(o) for o in dict.fromkeys(attrs["operands"]))
    return f"{of_name} does not depend on {wrt_name}; its inputs are {inputs}."


def _where(graph: Graph, of: Ref, wrt: Ref | None) -> str:
    of_name = graph.name_of(graph.id_of(of))
    return f"from {graph.name_of(graph.id_of(wrt))} to {of_name}" if wrt is not None else f"into {of_name}"


def _pattern_text(graph: Graph, pattern: Pattern) -> str:
    if isinstance(pattern, str):
        return repr(pattern)
    return "{" + ", ".join(graph.name_of(i) for i in select(graph, pattern)) + "}"


def assert_no_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                   through: Pattern | None = None) -> None:
    """Claim there is no path from WRT to OF (through a matching node, when ``through`` is
    given); a false claim raises ClaimError showing one offending path."""
    found = find_path(graph, of, wrt, through=through)
    if found is None:
        return
    via = "" if through is None else f" through {_pattern_text(graph, through)}"
    total = f" (1 of {count_paths(graph, of, wrt)} paths)" if wrt is not None and through is None else ""
    raise ClaimError(f"claim failed: there is a path {_where(graph, of, wrt)}{via}{total}: "
                     f"{' -> '.join(map(one_line, found))}")


def assert_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
                through: Pattern | None = None) -> list[str]:
    """Claim there is a path from WRT to OF (through a matching node, when ``through`` is
    given) and return it; a false claim raises ClaimError saying why."""
    found = find_path(graph, of, wrt, through=through)
    if found is not None:
        return found
    if wrt is not None and through is None:
        raise ClaimError(f"claim failed: {no_path_reason(graph, of, wrt)}")
    raise ClaimError(f"claim failed: no path {_where(graph, of, wrt)} passes through "
                     f"{_pattern_text(graph, through)}")


@dataclass(frozen=True)
class PathsReport:
    """What ``bpgraph paths`` prints (see :func:`paths_report`).  ``count`` is exact; ``paths``
    the first ``limit`` of them, or the one found ``through`` a matching node, or none with
    ``count_only``.  ``reason`` says why there is no path (None when there is one)."""

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
    """The paths from WRT to OF as a report: the first ``limit`` of them, or with ``through`` one
    passing through a matching node (see :func:`select`; a string with commas lists names,
    ``"A1,A2"``), or with ``count_only`` just their exact number (nothing is enumerated)."""
    count = count_paths(graph, of, wrt)
    pattern = through
    if isinstance(through, str) and "," in through:  # "A1, A2" names nodes, as --through takes them
        pattern = [part.strip() for part in through.split(",") if part.strip()]
    if count_only:
        found = []
    elif pattern is None:
        found = paths(graph, of, wrt, limit=limit)
    else:
        found = [p for p in [find_path(graph, of, wrt, through=pattern)] if p]
    label = through
    if label is not None and not isinstance(label, str):
        label = ",".join(graph.name_of(i) for i in select(graph, through))
    return PathsReport(graph.name_of(graph.id_of(of)), graph.name_of(graph.id_of(wrt)), count,
                       tuple(map(tuple, found)), label, count_only, no_path_reason(graph, of, wrt))
