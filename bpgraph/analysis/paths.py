"""Reachability: the paths from WRT to OF, along which ∂OF/∂WRT flows (none: it is zero).

Paths come in one order everywhere: depth-first from OF back to WRT, operands by increasing id.
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from ..autodiff import edge_vjp
from ..errors import BpgraphError, GraphError, UnknownNodeError
from ..graph import KINDS
from ..ops import OPS
from ..tensor import Tensor
from ..text import one_line

if TYPE_CHECKING:
    from ..graph import Graph, Ref

Pattern = str | Tensor | int | Iterable[Tensor | int | str]


class ClaimError(BpgraphError, AssertionError):
    """A claim about the graph's paths is false; the message shows the path or the reason."""


def descendants(graph: Graph, ref: Ref) -> set[int]:
    """Ids of every node that depends on ``ref``, including itself."""
    return graph.descendants(ref)


def depends(graph: Graph, of: Ref, wrt: Ref) -> bool:
    """Whether a path leads from WRT to OF (a node depends on itself); if not, ∂OF/∂WRT = 0."""
    upstream = graph.ancestors(of)
    return graph.id_of(wrt) in upstream


def count_paths(graph: Graph, of: Ref, wrt: Ref) -> int:
    """The exact number of paths from WRT to OF, by dynamic programming over the ids in between."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    if not on:
        return 0
    nodes = graph.nodes
    counts = {wrt_id: 1}
    for node_id in sorted(on - {wrt_id}):
        counts[node_id] = sum(counts[o] for o in set(nodes[node_id]["operands"]) if o in counts)
    return counts[of_id]


def walk(graph: Graph, of_id: int, wrt_id: int, on: set[int],
         seed: np.ndarray | None = None) -> Iterator[tuple[list[int], np.ndarray | None]]:
    """Every path from WRT to OF (ids, WRT first), lazily; with a ``seed``, each with its
    contribution: the seed carried back through that path's local VJPs."""
    nodes = graph.nodes
    # entries: (node, suffix as a linked list (node, next) toward OF, user and its gradient)
    stack: list[tuple[int, Any, int | None, np.ndarray | None]] = [(of_id, None, None, seed)]
    while stack:
        node, suffix, user, carried = stack.pop()
        grad = carried if user is None or carried is None else edge_vjp(graph, user, node, carried)
        link = (node, suffix)
        if node == wrt_id:
            ids = []
            while link is not None:
                ids.append(link[0])
                link = link[1]
            yield ids, grad
            continue
        operands = sorted({o for o in nodes[node]["operands"] if o in on}, reverse=True)
        stack.extend((o, link, node, grad) for o in operands)


def paths(graph: Graph, of: Ref, wrt: Ref, limit: int | None = 1000) -> list[list[str]]:
    """The first ``limit`` paths from WRT to OF as lists of node names, WRT first."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    found = itertools.islice(walk(graph, of_id, wrt_id, on), limit) if on else ()
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


def _first_path(graph: Graph, of_id: int, wrt_id: int) -> list[int] | None:
    on = graph.between(of_id, wrt_id)
    return next(walk(graph, of_id, wrt_id, on))[0] if on else None


def find_path(graph: Graph, of: Ref, wrt: Ref | None = None, *,
              through: Pattern | None = None) -> list[str] | None:
    """One path to OF (node names), or None: from WRT, through a node matching ``through``
    strictly between them, or (without ``wrt``) from the first matching node OF depends on."""
    of_id = graph.id_of(of)
    wrt_id = None if wrt is None else graph.id_of(wrt)
    if wrt_id is None and through is None:
        raise GraphError("find_path needs wrt=, through= or both")
    matches = None if through is None else set(select(graph, through))
    if wrt_id is None:
        starts = sorted(matches & graph.ancestors(of_id) - {of_id})
        ids = _first_path(graph, of_id, starts[0]) if starts else None
    elif matches is None:
        ids = _first_path(graph, of_id, wrt_id)
    else:
        inner = sorted(matches & graph.between(of_id, wrt_id) - {of_id, wrt_id})
        ids = None
        if inner:  # up to the first matching node, then on from it
            ids = _first_path(graph, inner[0], wrt_id)[:-1] + _first_path(graph, of_id, inner[0])
    return None if ids is None else [graph.name_of(i) for i in ids]


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
    """What ``bpgraph paths`` prints: the paths that carry ∂OF/∂WRT (see :func:`paths_report`).

    ``count`` is exact; ``paths`` holds the first ``limit`` of them, or with ``through`` the one
    found through a matching node, or nothing when only the count was asked for.  ``reason``
    says why there is no path (None when there is one).
    """

    of: str
    wrt: str
    count: int
    paths: tuple[tuple[str, ...], ...]
    through: str | None
    count_only: bool
    reason: str | None

    @property
    def capped(self) -> bool:
        """Whether more paths exist than are listed."""
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
    ``"A1,A2"``), or with ``count_only`` just their exact number (nothing is enumerated).

    >>> from bpgraph.examples import l2_mlp
    >>> print(paths_report(l2_mlp(), "J", "W1"))
    W1 -> Z1 -> A1 -> Z2 -> A2 -> Z3 -> A3 -> cross_entropy -> J
    W1 -> L2 -> J
    2 paths
    """
    count = count_paths(graph, of, wrt)
    pattern = _comma_names(through)
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


def _comma_names(pattern: Pattern | None) -> Pattern | None:
    """``"A1, A2"`` -> ``["A1", "A2"]`` (as the command line's --through takes them); else unchanged."""
    if not isinstance(pattern, str) or "," not in pattern:
        return pattern
    return [part.strip() for part in pattern.split(",") if part.strip()]
