"""One self-contained HTML page to explore a drawing: click a node to see its gradient's paths.

The page holds the Graphviz SVG, the graph's data as JSON and ``assets/explorer.js``; it loads nothing
from a network.  Names reach it only as escaped SVG text and as JSON that cannot close its script
element, and the script puts them into the page as text, never as markup."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import string
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis import NO_PATH, ZERO, TermRow, backward_steps, no_path_reason, term_attribution, term_reach
from ..analysis.reports import describe_value
from ..ops import OPS
from ..text import one_line
from .dot import backward_steps as frame_steps, stored_or_computed_grads, term_looks
from .themes import KIND_TITLES, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from .diagram import Diagram

ASSETS = resources.files("bpgraph.render") / "assets"
#: The page; its ``$`` fields are filled with escaped text, the JSON data and the shipped assets.
PAGE = string.Template((ASSETS / "explorer.html").read_text("utf-8"))
SCRIPT = (ASSETS / "explorer.js").read_text("utf-8")
STYLE = (ASSETS / "explorer.css").read_text("utf-8")
#: What the panel says of data the root depends on: the drawing's "no gradient computed".
NOT_COMPUTED = "not computed (bpgraph computes the gradient of data only when asked: inputs=True)"
#: A no-path reason lists the term's inputs: cut it to this many characters (a page has one per node and term).
MAX_REASON = 240
#: Characters that could end the JSON's script element, as JSON escapes (ensure_ascii escapes U+2028/9).
JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def explorer_page(diagram: Diagram, svg: str) -> str:
    """The page for ``diagram`` (as drawn) around its rendered ``svg``."""
    data = explorer_data(diagram)
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":")).translate(JSON_ESCAPES)
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return PAGE.substitute(title=html.escape(f"bpgraph explorer: {one_line(data['root'])}"),
                           script_hash=f"sha256-{digest}", style=STYLE, svg=svg[svg.find("<svg"):], data=text,
                           script=SCRIPT)


def explorer_data(diagram: Diagram) -> dict[str, Any]:
    """What the page's script needs, JSON-ready: per node its text for the panel and the term bits
    that trace its paths, the drawing's units, the collapsed groups, the backward steps and the colours."""
    graph = diagram.graph
    root = graph.root_id(diagram.root)
    reach = term_reach(graph, root)
    theme = get_theme(diagram.options.get("theme", "light"))
    grads = stored_or_computed_grads(graph, root)  # the drawing's: data gets none unless computed
    rows = {row.name: row for row in term_attribution(graph, root).rows}
    course = "m" in graph.meta  # as explain's "auto": the course's dZ = m·∂J/∂Z needs m
    notations = (False, True) if course else (False,)  # exact, then the course's
    lines = [{s.node: str(s) for s in backward_steps(graph, root, set(grads), course=c)} for c in notations]
    layout = diagram.plan  # the collapse the picture was drawn with
    upstream = graph.ancestors(root)  # the nodes the root depends on
    group_of = layout.group_of.tolist()
    nodes = []
    for i, attrs in graph.nodes.items():
        kind = "root" if i == root else "term" if i in reach.terms else attrs["kind"]
        on = i < len(reach.feeds)
        feeds = int(reach.feeds[i]) if on else 0
        nodes.append({
            "name": attrs["name"], "kind": KIND_TITLES.get(kind, kind), "op": attrs["op"] or "",
            "args": list(attrs["operands"]), "shape": "×".join(map(str, attrs["value"].shape)) or "scalar",
            "value": describe_value(attrs["value"]),
            "formula": OPS[attrs["op"]].formula if attrs["op"] else "",
            "grad": describe_value(grads[i]) if i in grads else NOT_COMPUTED if i in upstream else None,
            "terms": [term_cell(graph, rows.get(attrs["name"]), t, k, i, feeds, grads)
                      for k, t in enumerate(reach.terms)],
            "lines": list(dict.fromkeys(ls[i] for ls in lines if i in ls)),
            "unit": layout.groups[group_of[i]].key if group_of[i] >= 0 else str(i),
            "feeds": bits(feeds), "fedBy": bits(int(reach.fed_by[i]) if on else 0),
            "rootSide": bool(on and reach.root_side[i]),
        })
    return {"root": graph.name_of(root), "course": course, "nodes": nodes,
            "terms": [{"name": graph.name_of(t), "id": t, "color": theme.term_look(look)[0]}
                      for t, look in zip(reach.terms, term_looks(graph, reach.terms))],
            "groups": {g.key: {"title": g.title, "members": g.members.tolist(), "ops": list(g.ops)}
                       for g in layout.groups},
            "steps": [{"node": s.node, "users": [u for _, u in s.delivered]} for s in frame_steps(graph, root)],
            "notes": list(diagram.notes),
            "theme": {"bg": "white" if theme.background in ("transparent", "none") else theme.background,
                      "text": theme.text, "accent": theme.accent, "panel": theme.faded_fill,
                      "border": theme.cluster_border, "muted": theme.faded_text}}


def term_cell(graph: Graph, row: TermRow | None, term: int, k: int, node: int, feeds: int,
              grads: dict[int, np.ndarray]) -> dict[str, str]:
    """One term's share of one node's gradient, for the panel: its value, 0, or no path and why."""
    if row is None and feeds >> k & 1 and node in grads:  # the term itself: its share is ∂root/∂term
        return {"status": "seed", "text": describe_value(grads[node])}
    cell = None if row is None else row.cell(graph.name_of(term))
    if cell is None or cell.status == NO_PATH:
        reason = no_path_reason(graph, term, node)
        if reason is None:  # a path exists, but this data's gradient is not computed
            return {"status": "not computed", "text": NOT_COMPUTED}
        return {"status": NO_PATH, "text": reason if len(reason) <= MAX_REASON else reason[:MAX_REASON] + "…"}
    if cell.status == ZERO:
        return {"status": ZERO, "text": "0 (a path exists, the share is zero here)"}
    return {"status": cell.status, "text": describe_value(cell.value)}


def bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask``: which cost terms, by index."""
    return [k for k in range(mask.bit_length()) if mask >> k & 1]
