"""Cost terms: which terms of a summed cost (J = cross_entropy + L2) reach each node and edge,
and each term's share of every gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple

import numpy as np

from ..autodiff import gradients
from ..errors import GraphError, UnknownNodeError
from ..graph import Graph, Ref
from ..text import one_line, table
from .paths import no_path_reason
from .reports import array_json, by_name, describe_value, json_ready, norm, readonly, sci, with_values

NO_PATH, ZERO, NONZERO = "no path", "zero", "nonzero"
OTHER = "(other)"


def cost_terms(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None) -> list[int]:
    """The operands of the root's chain of ``add``/``sub`` ops (or ``terms``), in recording order."""
    if terms is not None:
        return sorted({graph.id_of(t) for t in terms})
    found, stack = set(), [graph.root_id(root)]
    while stack:
        node_id = stack.pop()
        if graph.nodes[node_id]["op"] in ("add", "sub"):
            stack.extend(graph.nodes[node_id]["operands"])
        else:
            found.add(node_id)
    return sorted(found)


class TermReach(NamedTuple):
    """Bit k of ``feeds[i]``: node i is term k or feeds it; of ``fed_by[i]``: it is term k or depends
    on it; ``root_side[i]``: the root depends on node i.  Read-only arrays by id, up to the last of the
    root and its terms (later nodes feed nothing)."""

    terms: tuple[int, ...]
    feeds: np.ndarray
    fed_by: np.ndarray
    root_side: np.ndarray

    def mask(self, u: int, v: int) -> int:
        """The terms whose gradient flows back along the edge u -> v (see :func:`term_edges`)."""
        return int(self.masks(np.array([u]), np.array([v]))[0])

    def masks(self, tails: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """:meth:`mask` of every edge ``tails[k] -> heads[k]`` at once."""
        inside = heads < len(self.feeds)
        u, v = tails[inside], heads[inside]
        out = np.zeros(len(heads), dtype=self.feeds.dtype)
        out[inside] = self.feeds[v] | np.where(self.root_side[v], self.fed_by[u], 0)
        return out

    def names(self, graph: Graph, mask: int) -> tuple[str, ...]:
        return tuple(graph.name_of(t) for k, t in enumerate(self.terms) if mask >> k & 1)


def term_reach(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None) -> TermReach:
    """The :class:`TermReach` of ``root``'s cost terms, in two linear passes, remembered."""
    root_id = graph.root_id(root)
    term_ids = cost_terms(graph, root_id, terms)

    def compute(g: Graph) -> TermReach:
        # down from the root: what feeds each term and the root; up from the first term: what each feeds
        nodes, top = g.nodes, max([root_id, *term_ids])
        feeds, root_side = [0] * (top + 1), [False] * (top + 1)
        root_side[root_id] = True
        for k, t in enumerate(term_ids):
            feeds[t] |= 1 << k
        fed_by = feeds.copy()
        for i in range(top, -1, -1):
            if feeds[i] or root_side[i]:
                for o in nodes[i]["operands"]:
                    feeds[o] |= feeds[i]
                    root_side[o] |= root_side[i]
        for i in range(term_ids[0] if term_ids else top + 1, top + 1):
            for o in nodes[i]["operands"]:
                fed_by[i] |= fed_by[o]
        dtype = np.int64 if len(term_ids) < 62 else object  # int64 up to 61 terms, Python ints beyond
        arrays = np.array(feeds, dtype=dtype), np.array(fed_by, dtype=dtype), np.array(root_side, dtype=bool)
        return TermReach(tuple(term_ids), *map(readonly, arrays))

    return graph.derived(f"term_reach {root_id} {term_ids}", compute)


def term_edges(graph: Graph, root: Ref | None = None,
               terms: Iterable[Ref] | None = None) -> dict[tuple[int, int], tuple[str, ...]]:
    """Edge (u, v) -> names of the terms whose gradient it carries; edges left out carry none."""
    reach = term_reach(graph, root, terms)
    edges = [(u, v) for v in range(len(reach.feeds)) for u in dict.fromkeys(graph.nodes[v]["operands"])]
    tails, heads = np.array(edges, dtype=np.int64).reshape(-1, 2).T
    masks = reach.masks(tails, heads).tolist()
    names = {mask: reach.names(graph, mask) for mask in set(masks)}
    return {edge: names[mask] for edge, mask in zip(edges, masks) if mask}


@dataclass(frozen=True, eq=False)
class TermCell:
    """One term's share of one node's gradient: ``no path``, ``zero`` (numerically) or ``nonzero``."""

    term: str
    status: str
    norm: float
    value: np.ndarray | None  # None exactly when status is "no path"

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return with_values({"term": self.term, "status": self.status, "norm": self.norm},
                           values, "value", self.value)


@dataclass(frozen=True, eq=False)
class TermRow:
    """A node's full gradient and each term's share of it."""

    name: str
    kind: str
    shape: tuple[int, ...]
    grad: np.ndarray
    cells: tuple[TermCell, ...]

    @property
    def norm(self) -> float:
        return norm(self.grad)

    def cell(self, term: str) -> TermCell:
        return by_name(self.cells, term, "term")

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "shape": list(self.shape), "norm": self.norm,
               "terms": [c.to_dict(values) for c in self.cells]}
        return with_values(out, values, "grad", self.grad)


@dataclass(frozen=True, eq=False)
class TermReport:
    """Every node's gradient of ``root`` split by cost term, in backward order; ``(other)`` ends the terms
    when a gradient avoids them all; ``seeds`` are ∂root/∂term (1 for ``+``, -1 for ``-``)."""

    root: str
    terms: tuple[str, ...]
    seeds: Mapping[str, np.ndarray]
    rows: tuple[TermRow, ...]

    def row(self, name: str) -> TermRow:
        return by_name(self.rows, name)

    def reached_by(self, term: str) -> list[str]:
        """Names of the nodes this term's gradient reaches (status not ``no path``), backward order."""
        if term not in self.terms:
            raise UnknownNodeError(term, self.terms)
        return [r.name for r in self.rows if r.cell(term).status != NO_PATH]

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return json_ready({"root": self.root, "terms": list(self.terms),
                           "seeds": {t: array_json(s) for t, s in self.seeds.items()},
                           "rows": [r.to_dict(values) for r in self.rows]})

    def __str__(self) -> str:
        root = one_line(self.root)
        head = ["node", "shape", f"‖∂{root}/∂node‖"]
        if self.terms == (self.root,):  # not split (`bpgraph grads` without --by-term): one column
            rows = [[r.name, str(r.shape), sci(r.norm)] for r in self.rows]
            title = f"∂{root}/∂node for every node below {root} that gets a gradient (norms)"
            return title + "\n" + table(head, rows)
        shown = {NO_PATH: "no path", ZERO: "0"}
        rows = [[r.name, str(r.shape), sci(r.norm), *(shown.get(c.status) or sci(c.norm) for c in r.cells)]
                for r in self.rows]
        seeds = ", ".join(f"∂{root}/∂{one_line(t)} = {describe_value(s)}" for t, s in self.seeds.items())
        return (f"∂{root}/∂node split by term ({seeds}); each cell is the norm of that term's share, "
                "'no path' when the term does not depend on the node\n" + table([*head, *self.terms], rows))


def term_attribution(graph: Graph, root: Ref | None = None, terms: Iterable[Ref] | None = None, *,
                     seed: Any = None, inputs: bool = False) -> TermReport:
    """Split every node's gradient of ``root`` into its cost terms' shares (term t's: seeded with
    ∂root/∂t, so they add up); the add chain above the terms gets no row."""
    root_id = graph.root_id(root)
    term_ids = cost_terms(graph, root_id, terms)
    if stray := sorted(set(term_ids) - graph.ancestors(root_id)):
        raise GraphError(f"{graph.name_of(stray[0])!r} is not a term of {graph.name_of(root_id)!r}: "
                         f"{no_path_reason(graph, root_id, stray[0])}")
    term_set = set(term_ids)
    full = gradients(graph, root_id, seed, inputs=inputs)
    rest = gradients(graph, root_id, seed, inputs=inputs, stop=term_set)
    shares = {t: gradients(graph, t, rest[t], inputs=inputs) if t in rest else {} for t in term_ids}
    after = set().union(*(graph.descendants(t) for t in term_ids))
    before = set().union(*(graph.ancestors(t) - {t} for t in term_ids))
    row_ids = [i for i in sorted(full, reverse=True) if i not in after or i in before]
    names = [graph.name_of(t) for t in term_ids]
    has_other = any(i in rest and i not in term_set for i in row_ids)

    def cell(term: str, v: np.ndarray | None) -> TermCell:
        return TermCell(term, NO_PATH, 0.0, None) if v is None else TermCell(
            term, NONZERO if np.any(v != 0) else ZERO, norm(v), readonly(v))

    rows = []
    for i in row_ids:
        cells = [cell(name, shares[t].get(i)) for t, name in zip(term_ids, names)]
        cells += [cell(OTHER, None if i in term_set else rest.get(i))] * has_other
        attrs = graph.nodes[i]
        rows.append(TermRow(attrs["name"], attrs["kind"], attrs["value"].shape, full[i], tuple(cells)))
    seeds = {graph.name_of(t): readonly(rest[t]) for t in term_ids if t in rest}
    names += [OTHER] if has_other else []
    return TermReport(graph.name_of(root_id), tuple(names), seeds, tuple(rows))
