"""What a drawing says in words: its caption, and the notes on highlighted paths.

The caption states what each cost term's gradient reaches (:func:`describe_terms`), or in a
backward-pass frame which gradient the step completes (:func:`frame_caption`).  Everything
here is computed from the graph, so it is true for whatever is drawn; the words are plain
text, escaped for DOT by :mod:`bpgraph.render.dot`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..analysis import term_reach
from .structure import topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

_FAMILY = re.compile(r"([A-Za-z]+)\d+")


def describe_terms(graph: Graph, root: Tensor | int | str | None = None) -> list[str]:
    """One line per cost term saying which parameters its gradient reaches, and through what.

    For the seed network this gives ``L2's gradient reaches only W1, W2, W3: no path from
    L2 through any Z or A``. Computed from the graph, so it is true for whatever is drawn.
    """
    nodes = graph.nodes
    reach = term_reach(graph, graph.root_id(root))
    terms, reached = reach.terms, len(reach.feeds)  # nodes past the root and terms feed nothing
    topo = topology(graph)
    is_param, is_op = topo.is_kind("param")[:reached], topo.is_op[:reached]
    all_params = np.count_nonzero(reach.root_side & is_param)
    lines = []
    for k, term in enumerate(terms):
        name = nodes[term]["name"]
        into = (reach.feeds >> k & 1).astype(bool)  # term k and its ancestors
        params = np.flatnonzero(into & is_param).tolist()
        between = np.count_nonzero(into & is_op) - bool(is_op[term])
        if not params:
            lines.append(f"{name}'s gradient reaches no parameter")
            continue
        reach_text = ("only " if len(params) < all_params else "") + _names([nodes[i]["name"] for i in params])
        if between:
            plural = "" if between == 1 else "s"
            lines.append(f"{name}'s gradient reaches {reach_text} through {between} intermediate result{plural}")
            continue
        unrelated = np.zeros(topo.size, dtype=bool)
        unrelated[:reached] = into
        unrelated[list(graph.descendants(term))] = True
        unrelated[list(terms)] = True
        others = [nodes[i]["name"] for i in np.flatnonzero(topo.is_op & ~unrelated).tolist()]
        tail = f": no path from {name} through {_families(others)}" if others else ""
        lines.append(f"{name}'s gradient reaches {reach_text}{tail}")
    return lines


def highlight_paths(graph: Graph, pairs: Iterable[tuple[Tensor | int | str, Tensor | int | str]]
                    ) -> tuple[set[int], set[tuple[int, int]], list[str]]:
    """Nodes and edges on every path that carries ∂OF/∂WRT, for each ``(of, wrt)`` pair.

    A node is on such a path when it depends on WRT and OF depends on it; an edge when both
    ends are on the same pair's paths. Pairs without any path get a note (the derivative is
    structurally zero).
    """
    nodes: set[int] = set()
    edges: set[tuple[int, int]] = set()
    notes = []
    for of, wrt in pairs:
        of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
        between = graph.between(of_id, wrt_id)
        of_name, wrt_name = graph.name_of(of_id), graph.name_of(wrt_id)
        if not between:
            notes.append(f"no path from {wrt_name} to {of_name}: ∂{of_name}/∂{wrt_name} = 0 structurally")
            continue
        notes.append(f"highlighted: every path carrying ∂{of_name}/∂{wrt_name}")
        nodes |= between
        edges |= {(u, v) for v in between for u in graph.nodes[v]["operands"] if u in between}
    return nodes, edges, notes


def parse_highlight(highlight: Any) -> list[tuple[Any, Any]]:
    """Validate the ``highlight`` option: one ``(of, wrt)`` pair, several, or None."""
    if highlight is None:
        return []
    items = list(highlight)
    if len(items) == 2 and not isinstance(items[0], (tuple, list)):
        items = [tuple(items)]
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise RenderOptionError(f"highlight takes (of, wrt) pairs such as ('J', 'W1'), got {item!r}")
    return [tuple(item) for item in items]


def _names(names: Sequence[str], limit: int = 8) -> str:
    if len(names) > limit:
        return ", ".join(names[:limit - 2]) + f", … ({len(names)} in all)"
    return ", ".join(names)


def _families(names: Sequence[str]) -> str:
    """``Z1, A1, Z2, cross_entropy`` -> ``any Z or A, or cross_entropy``; many -> a count."""
    matches = [_FAMILY.fullmatch(n) for n in names]
    prefixes = list(dict.fromkeys(m.group(1) for m in matches if m))
    others = [n for n, m in zip(names, matches) if not m]
    if len(prefixes) + len(others) > 4:
        return f"any of {len(names)} intermediate results"
    parts = (["any " + " or ".join(prefixes)] if prefixes else []) + others
    return ", or ".join(parts)


@dataclass(frozen=True)
class Frame:
    """One backward step: ``current`` just got its complete gradient via ``delivered`` edges."""

    step: int
    total: int
    current: int
    done: frozenset[int]
    delivered: frozenset[tuple[int, int]]


def frame_caption(graph: Graph, root_id: int, frame: Frame) -> str:
    """What one backward step does: whose gradient it completes, and which users delivered it."""
    nodes = graph.nodes
    root, current = nodes[root_id]["name"], nodes[frame.current]["name"]
    head = f"step {frame.step} of {frame.total}: "
    if frame.current == root_id:
        return head + f"start at the root, ∂{root}/∂{root} = 1"
    users = ", ".join(nodes[v]["name"] for _, v in sorted(frame.delivered))
    return head + f"∂{root}/∂{current} is complete, delivered by {users}"
