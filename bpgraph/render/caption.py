"""What a drawing says in words: a caption line per cost term on what its gradient reaches, and the
notes and paths of a highlight.  Pure; :mod:`bpgraph.render.dot` puts them on the picture."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..analysis import term_reach
from .structure import topology
from .themes import RenderOptionError

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: The caption describes at most MAX_TERMS cost terms, then gives a count.
MAX_TERMS = 12


def describe_terms(graph: Graph, root: Tensor | int | str | None = None) -> list[str]:
    """A line per cost term (the first MAX_TERMS, then a count) saying which parameters its gradient reaches,
    and through what: ``L2's gradient reaches only W1, W2, W3: no path from L2 through any Z or A``."""
    nodes = graph.nodes
    reach = term_reach(graph, graph.root_id(root))
    terms, reached = reach.terms, len(reach.feeds)  # nodes past the root and terms feed nothing
    topo = topology(graph)
    is_param, is_op = topo.is_kind("param")[:reached], topo.is_op[:reached]
    all_params = np.count_nonzero(reach.root_side & is_param)
    lines = []
    for k, term in enumerate(terms[:MAX_TERMS]):
        name = nodes[term]["name"]
        into = (reach.feeds >> k & 1).astype(bool)  # term k and its ancestors
        params = np.flatnonzero(into & is_param).tolist()
        between = np.count_nonzero(into & is_op) - bool(is_op[term])
        names = [nodes[i]["name"] for i in params]
        names = names[:6] + [f"… ({len(names)} in all)"] if len(names) > 8 else names
        reach_text = ("only " if len(params) < all_params else "") + ", ".join(names)
        if not params:
            lines.append(f"{name}'s gradient reaches no parameter")
        elif between:
            lines.append(f"{name}'s gradient reaches {reach_text} through {between} intermediate result"
                         + ("" if between == 1 else "s"))
        else:  # name the ops it does not pass through: neither its ancestors nor after it
            unrelated = np.zeros(topo.size, dtype=bool)
            unrelated[:reached] = into
            unrelated[[*graph.descendants(term), *terms]] = True
            others = [nodes[i]["name"] for i in np.flatnonzero(topo.is_op & ~unrelated).tolist()]
            lines.append(f"{name}'s gradient reaches {reach_text}"
                         + (f": no path from {name} through {_families(others)}" if others else ""))
    return lines + ([f"… and {len(terms) - MAX_TERMS:,} more cost terms"] if len(terms) > MAX_TERMS else [])


def _families(names: Sequence[str]) -> str:
    """``Z1, A1, Z2, cross_entropy`` -> ``any Z or A, or cross_entropy``; many -> a count."""
    matches = [re.fullmatch(r"([A-Za-z]+)\d+", n) for n in names]
    prefixes = list(dict.fromkeys(m.group(1) for m in matches if m))
    others = [n for n, m in zip(names, matches) if not m]
    if len(prefixes) + len(others) > 4:
        return f"any of {len(names)} intermediate results"
    return ", or ".join((["any " + " or ".join(prefixes)] if prefixes else []) + others)


def highlight_paths(graph: Graph, pairs: Iterable[tuple[Tensor | int | str, Tensor | int | str]]
                    ) -> tuple[set[int], set[tuple[int, int]], list[str]]:
    """Nodes and edges on every path carrying ∂OF/∂WRT for the ``(of, wrt)`` pairs, and a note on each;
    with no path, the pair's two ends (their ids stay in ``nodes``)."""
    nodes: set[int] = set()
    edges: set[tuple[int, int]] = set()
    notes = []
    for of, wrt in pairs:
        between = graph.between(of, wrt)
        of_name, wrt_name = graph.name_of(graph.id_of(of)), graph.name_of(graph.id_of(wrt))
        notes.append(f"highlighted: every path carrying ∂{of_name}/∂{wrt_name}" if between else
                     f"no path from {wrt_name} to {of_name}: ∂{of_name}/∂{wrt_name} = 0 structurally")
        nodes |= between or {graph.id_of(of), graph.id_of(wrt)}
        edges |= {(u, v) for v in between for u in graph.nodes[v]["operands"] if u in between}
    return nodes, edges, notes


def parse_highlight(highlight: Any) -> list[tuple[Any, Any]]:
    """Check the ``highlight`` option: one ``(of, wrt)`` pair, several, or None."""
    items = [] if highlight is None else list(highlight)
    items = [tuple(items)] if len(items) == 2 and not isinstance(items[0], (tuple, list)) else items
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise RenderOptionError(f"highlight takes (of, wrt) pairs such as ('J', 'W1'), got {item!r}")
    return [tuple(item) for item in items]
