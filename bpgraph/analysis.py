"""Pure queries on a recorded graph: cost terms, reachability and which gradient flows where.

Everything here reads the graph and returns plain data; nothing is drawn or stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .graph import Graph
    from .tensor import Tensor



def descendants(graph: Graph, ref: Tensor | int | str) -> set[int]:
    """Ids of every node that depends on ``ref``, including itself (iterative)."""
    start = graph.id_of(ref)
    seen = {start}
    stack = [start]
    while stack:
        for user in graph.successors(stack.pop()):
            if user not in seen:
                seen.add(user)
                stack.append(user)
    return seen


def cost_terms(graph: Graph, root: Tensor | int | str | None = None,
               terms: Iterable[Tensor | int | str] | None = None) -> list[int]:
    """The terms of a root that is a sum (J = cross_entropy + L2 gives [cross_entropy, L2]).

    Found by unfolding the root's chain of ``add``/``sub`` ops; a root that is not a sum is
    its own single term. ``terms`` names them explicitly instead. Ids in recording order.
    """
    if terms is not None:
        return sorted({graph.id_of(t) for t in terms})
    root_id = graph.output.id if root is None else graph.id_of(root)
    found: set[int] = set()
    stack = [root_id]
    nodes = graph.nodes
    while stack:
        node_id = stack.pop()
        attrs = nodes[node_id]
        if attrs["op"] in ("add", "sub"):
            stack.extend(attrs["operands"])
        else:
            found.add(node_id)
    return sorted(found)


def term_edges(graph: Graph, root: Tensor | int | str | None = None,
               terms: Iterable[Tensor | int | str] | None = None) -> dict[tuple[int, int], tuple[str, ...]]:
    """For every edge that carries part of ∂root/∂(something), the names of the terms it carries.

    An edge u -> v carries term t's gradient when it lies on a path into t (v is t or one of
    its ancestors) or on the path from t up to the root. Edges missing from the result carry
    nothing from this root: that is how a drawing shows "no path".
    """
    root_id = graph.output.id if root is None else graph.id_of(root)
    root_side = graph.ancestors(root_id)
    carried: dict[tuple[int, int], list[str]] = {}
    for term in cost_terms(graph, root_id, terms):
        name = graph.name_of(term)
        into_term = graph.ancestors(term)
        above_term = descendants(graph, term) & root_side
        for v in into_term | above_term:
            for u in set(graph.nodes[v]["operands"]):
                if v in into_term or u in above_term:
                    carried.setdefault((u, v), []).append(name)
    return {edge: tuple(names) for edge, names in sorted(carried.items())}
