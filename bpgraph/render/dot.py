"""Graph -> DOT: pure code that decides what a drawing contains and how each piece looks.

Nothing here runs Graphviz or touches files: :func:`build` returns a :class:`graphviz.Digraph`
whose ``.source`` is the exact DOT text.  The text is deterministic: DOT node ids are the
graph's integer node ids (``g<id>`` for a collapsed group, ``legend_*`` for the legend),
everything is emitted in id order, attributes come in a fixed order (label, id, then the rest
sorted) and numbers have a fixed format.  So the same graph always gives byte-identical DOT
and the same element ids in the SVG (``n<id>`` for nodes, ``e<tail>_<head>`` for edges).

Every piece of user text (node names, scope names, captions) goes through
:func:`bpgraph.text.dot_label_text`, and every attribute value is written as a quoted string
by :func:`bpgraph.text.dot_quote`, never as an HTML-like label (the embedded WebAssembly
Graphviz has none).  So a name can never end a label, add attributes or reach the SVG as
markup.  Edges are coloured by which cost term's gradient flows back along them (the rule of
:func:`bpgraph.analysis.term_edges`); edges that carry nothing from the root are faded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

import graphviz
import numpy as np

from ..analysis import TermReach, term_reach
from ..autodiff import gradients
from ..text import dot_label_text, dot_quote
from .captions import Frame, describe_terms, highlight_paths, parse_highlight
from .collapse import MAX_NODES, Group, Plan, plan
from .structure import Topology, topology
from .themes import KIND_TITLES, NODE_KINDS, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: What a node label can show; ``value`` and ``gradvalue`` only for arrays of at most SMALL elements.
SHOW_ITEMS = ("name", "op", "shape", "value", "grad", "gradvalue")
DEFAULT_SHOW = ("name", "shape")
SMALL = 6
RANKDIRS = ("LR", "TB")


# --- text -------------------------------------------------------------------------------------
def attr_text(attrs: dict[str, str]) -> str:
    """``key=value ...``, keys sorted, every value quoted by :func:`bpgraph.text.dot_quote`."""
    return " ".join(f"{key}={dot_quote(value)}" for key, value in sorted(attrs.items()))


def statement(head: str, attrs: dict[str, str], *, label: str | None = None, ident: str = "") -> str:
    """One DOT statement ``head [label=... id=... key=value ...]`` (label and id when given);
    ``head`` (a node key or ``tail -> head``) is made by bpgraph from ids and fixed words."""
    lead = ([f"label={dot_quote(label)}"] if label is not None else []) + ([f"id={ident}"] if ident else [])
    return f"\t{head} [{' '.join([*lead, attr_text(attrs)])}]\n"


def fmt_number(x: Any) -> str:
    """A number in at most 4 significant digits (fixed format, so DOT text is reproducible)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return format(float(x), ".4g")


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(20, 211)`` -> ``20×211``; a 0-d array is a ``scalar``."""
    return "×".join(str(n) for n in shape) if shape else "scalar"


def fmt_array(a: np.ndarray) -> str | None:
    """Values of a small array (``[[1, 2], [3, 4]]``, deeper arrays as rows), or None when it
    has more than SMALL."""
    a = np.asarray(a)
    if a.size > SMALL:
        return None
    return _nested(a.reshape(-1, a.shape[-1]).tolist() if a.ndim > 2 else a.tolist())


def _nested(x: Any) -> str:
    return "[" + ", ".join(map(_nested, x)) + "]" if isinstance(x, list) else fmt_number(x)


# --- what the drawing says ------------------------------------------------------------------------
def parse_show(show: str | Iterable[str]) -> tuple[str, ...]:
    """Validate the ``show`` option (one item or several of :data:`SHOW_ITEMS`)."""
    items = (show,) if isinstance(show, str) else tuple(show)
    unknown = [s for s in items if s not in SHOW_ITEMS]
    if unknown:
        raise RenderOptionError(f"cannot show {', '.join(map(repr, unknown))}; "
                                f"choose from: {', '.join(SHOW_ITEMS)}")
    return items


def stored_or_computed_grads(graph: Graph, root_id: int) -> dict[int, np.ndarray]:
    """∂root/∂node for labels: the stored gradients if they are for this root, else computed."""
    if graph.grad_root == root_id:
        return {i: a["grad"] for i, a in graph.nodes.items() if a["grad"] is not None}
    return gradients(graph, root_id)


class Drawing(NamedTuple):
    """The DOT graph plus what a caller may want to know about it."""

    digraph: graphviz.Digraph
    units: int
    notes: tuple[str, ...]


# --- how each piece looks -------------------------------------------------------------------------
class _Context(NamedTuple):
    graph: Graph
    theme: Theme
    show: tuple[str, ...]
    root_name: str
    root_side: np.ndarray  # per node id: does the root depend on it?
    grads: dict[int, np.ndarray] | None
    lit: set[int] | None
    frame: Frame | None


def _label_lines(ctx: _Context, node_id: int) -> tuple[list[str], list[str]]:
    """Escaped label lines as drawn now, and as drawn once every gradient is known (frames)."""
    attrs = ctx.graph.nodes[node_id]
    show = ctx.show
    lines = []
    if "name" in show:
        lines.append(dot_label_text(attrs["name"]))
    if "op" in show and attrs["op"]:
        lines.append(dot_label_text(attrs["op"]))
    if "shape" in show:
        lines.append(fmt_shape(attrs["value"].shape))
    if "value" in show:
        text = fmt_array(attrs["value"])
        if text is not None:
            lines.append("= " + dot_label_text(text))
    if ctx.grads is None or not ("grad" in show or "gradvalue" in show):
        return lines, lines
    d = dot_label_text(f"∂{ctx.root_name}/∂{attrs['name']}")
    grad = ctx.grads.get(node_id)
    final = []
    if grad is None:
        if not ctx.root_side[node_id]:
            final.append(f"{d} = 0 (no path)")
    else:
        if "grad" in show:
            final.append(f"‖{d}‖ = {format(float(np.linalg.norm(grad)), '.3g')}")
        if "gradvalue" in show and fmt_array(grad) is not None:
            final.append(f"{d} = {dot_label_text(fmt_array(grad))}")
    pending = ctx.frame is not None and grad is not None and node_id not in ctx.frame.done
    now = [f"{d} = ?"] if pending else final
    return lines + now, lines + final


def _box_size(theme: Theme, shape: str, lines: list[str]) -> dict[str, str]:
    """A fixed node size that fits ``lines`` generously, so every frame has the same layout."""
    size = theme.fontsize / 72  # inches per em
    widest = max((len(line) for line in lines), default=1)
    width = 0.62 * size * widest + 0.3
    height = 1.3 * size * max(1, len(lines)) + 0.15
    if shape in ("ellipse", "octagon", "doubleoctagon"):
        width, height = width * 1.3, height * 1.25
    return {"fixedsize": "true", "width": format(width, ".2f"), "height": format(height, ".2f")}


def _node_attrs(theme: Theme, kind: str, *, dim: bool = False, lit: bool = False,
                current: bool = False) -> dict[str, str]:
    """How a node of ``kind`` looks: faded when ``dim`` (no gradient from the root, off the
    highlighted paths, or still pending in a frame), bolder when ``lit`` (highlighting is on),
    accented when it is the current frame's node."""
    style = theme.nodes[kind]
    fill, border, font, pen = style.fill, style.border, style.font, style.penwidth
    if dim:
        fill, border, font = theme.faded_fill, theme.faded_text, theme.faded_text
    elif lit:
        pen += 1.0
    if current:
        fill, pen = theme.accent, pen + 2.0
    margin = {"margin": style.margin} if style.margin else {}
    return {"shape": style.shape, "style": style.style, "fillcolor": fill, "color": border,
            "fontcolor": font, "penwidth": fmt_number(pen), **margin}


def _node_statement(ctx: _Context, node_id: int, kind: str) -> str:
    """A node drawn as itself (see :func:`_node_attrs` for when it is faded or lit)."""
    frame, lit = ctx.frame, ctx.lit
    pending = frame is not None and ctx.grads is not None and node_id in ctx.grads and node_id not in frame.done
    dim = not ctx.root_side[node_id] or (lit is not None and node_id not in lit) or pending
    label, final = _label_lines(ctx, node_id)
    attrs = _node_attrs(ctx.theme, kind, dim=dim, lit=lit is not None,
                        current=frame is not None and node_id == frame.current)
    if frame is not None:
        attrs.update(_box_size(ctx.theme, attrs["shape"], final))
    return statement(str(node_id), attrs, label="\\n".join(label), ident=f"n{node_id}")


def _group_statement(ctx: _Context, group: Group) -> str:
    """A collapsed group: faded when the root depends on none of its members, or when none
    is on a highlighted path."""
    members = group.members.tolist()
    faded = not ctx.root_side[group.members].any() or (ctx.lit is not None and ctx.lit.isdisjoint(members))
    ops = f" · {dot_label_text(', '.join(group.ops))}" if group.ops else ""
    text = f"{dot_label_text(group.title)}\\n{len(members):,} nodes{ops}"
    return statement(group.key, _node_attrs(ctx.theme, "group", dim=faded), label=text, ident=group.key)


def _edge_attrs(theme: Theme, terms: Sequence[int], lit: bool | None = None, delivered: bool = False,
                pending: bool = False) -> dict[str, str]:
    """Colour by term (parallel colours when several), fade carriers of nothing, then emphasis."""
    faded_pen = max(1.0, theme.edge_penwidth * 0.55)
    if terms:
        looks = [theme.term_look(t) for t in terms]
        colours = [colour for colour, _ in looks]
        style = looks[0][1] if len(terms) == 1 else "solid"
        pen = theme.edge_penwidth
    else:
        colours, style, pen = [theme.faded_edge], "solid", faded_pen
    if lit is True:
        pen *= 1.8
        if not terms:
            colours = [theme.text]
    elif lit is False or pending:
        colours, pen = [theme.faded_edge], faded_pen
    if delivered:
        pen *= 2.0
        if not terms:
            colours = [theme.accent]
    return {"color": ":".join(colours), "style": style, "penwidth": fmt_number(round(pen, 2))}


def _legend(theme: Theme, kinds: set[str], term_names: list[str], both: bool, faded: bool,
            root_name: str) -> graphviz.Digraph:
    """A cluster with one sample node per kind drawn and one sample arrow per edge meaning.

    Invisible edges chain the samples into two rows, node kinds and edge meanings (two
    columns with ``rankdir=TB``), so the legend stays narrower than the picture.
    """
    small = fmt_number(theme.small_fontsize)
    attrs = {"id": "legend", "label": "legend", "style": "rounded", "color": theme.cluster_border,
             "fontcolor": theme.text, "fontsize": fmt_number(theme.small_fontsize + 1)}
    lines = [f"\t{attr_text(attrs)}\n"]
    kinds_row = [f"legend_{kind}" for kind in NODE_KINDS if kind in kinds]
    for key in kinds_row:
        kind = key.removeprefix("legend_")
        lines.append(statement(key, {**_node_attrs(theme, kind), "fontsize": small}, label=KIND_TITLES[kind]))
    samples = [(f"gradient of {name}", [k]) for k, name in enumerate(term_names)]
    if both:
        samples.append(("both terms" if len(term_names) == 2 else "several terms", list(range(len(term_names)))))
    if faded:
        samples.append((f"no gradient from {root_name}", []))
    for k, (text, terms) in enumerate(samples):
        lines.append(statement(f"legend_e{k}", {"shape": "point", "width": "0.06", "color": theme.text}, label=""))
        lines.append(statement(f"legend_t{k}", {"shape": "plaintext", "fontcolor": theme.text, "fontsize": small},
                               label=dot_label_text(text)))
        lines.append(statement(f"legend_e{k} -> legend_t{k}", _edge_attrs(theme, terms)))
    edges_row = [(f"legend_e{k}", f"legend_t{k}") for k in range(len(samples))]
    for row in ([(key, key) for key in kinds_row], edges_row):
        for (_, last), (first, _) in zip(row, row[1:]):
            lines.append(statement(f"{last} -> {first}", {"style": "invis"}))
    return graphviz.Digraph(name="cluster_legend", body=lines)


# --- building the DOT graph ---------------------------------------------------------------------
def build(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
          rankdir: str = "LR", show: str | Iterable[str] = DEFAULT_SHOW, highlight: Any = None,
          collapse: Iterable[str] = (), max_nodes: int = MAX_NODES,
          caption: str | bool | None = None, legend: bool = True,
          frame: Frame | None = None, notes: Sequence[str] = ()) -> Drawing:
    """The DOT graph for ``graph`` (see :func:`bpgraph.render.to_dot` for the options).

    ``frame`` draws one backward step (its caption comes in ``caption``); ``notes`` are extra
    caption lines.
    """
    theme = get_theme(theme)
    if rankdir not in RANKDIRS:
        raise RenderOptionError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    show = parse_show(show)
    nodes = graph.nodes
    root_id = graph.root_id(root)
    root_name = nodes[root_id]["name"]
    reach = term_reach(graph, root_id)
    terms = reach.terms
    pairs = parse_highlight(highlight)
    lit_nodes, lit_edges, path_notes = highlight_paths(graph, pairs) if pairs else (None, None, [])
    layout = plan(graph, collapse, max_nodes, keep={root_id, *terms})
    topo = topology(graph)
    wants_grads = frame is not None or "grad" in show or "gradvalue" in show
    root_side = np.zeros(len(graph), dtype=bool)
    root_side[:len(reach.root_side)] = reach.root_side
    ctx = _Context(graph, theme, show, root_name, root_side,
                   stored_or_computed_grads(graph, root_id) if wants_grads else None, lit_nodes, frame)

    graph_attrs = {"rankdir": rankdir, "bgcolor": theme.background, "fontname": theme.fontname,
                   "fontsize": fmt_number(theme.fontsize), "fontcolor": theme.text,
                   "labelloc": "t", "labeljust": "l", "nodesep": "0.25", "ranksep": "0.4",
                   "pad": "0.2", "outputorder": "edgesfirst", **theme.graph_attrs}
    lines = _caption_lines(graph, root_id, caption) + path_notes + list(layout.notes) + list(notes)
    if lines:  # split names that hold newlines too, so every caption line is left-justified
        graph_attrs["label"] = "".join(dot_label_text(part) + "\\l" for t in lines for part in t.split("\n"))
    digraph = graphviz.Digraph(name="bpgraph")
    digraph.body += [statement("graph", graph_attrs),
                     statement("node", {"fontname": theme.fontname, "fontsize": fmt_number(theme.fontsize),
                                        "fontcolor": theme.text, "margin": "0.1,0.04", "height": "0.3"}),
                     statement("edge", {"arrowsize": "0.7", "color": theme.text})]

    # units in id order: a visible node, or a group drawn at its smallest member
    unit, drawn_at = _units(layout)
    term_ids = set(terms)
    kind_of = {i: "root" if i == root_id else "term" if i in term_ids else topo.kind(i) for i, k in drawn_at if k < 0}
    unit_lines = [_group_statement(ctx, layout.groups[k]) if k >= 0 else _node_statement(ctx, i, kind_of[i])
                  for i, k in drawn_at]
    if any(topo.scope_names):  # a group sits in its scope's parent
        scopes = [layout.groups[k].scope.rpartition("/")[0] if k >= 0 else topo.scope(i) for i, k in drawn_at]
        _add_clusters(digraph, theme, unit_lines, scopes)
    else:
        digraph.body += unit_lines

    # edges between units; a repeated operand or several edges between two units draw once
    keys = [layout.groups[k].key if k >= 0 else str(i) for i, k in drawn_at]
    pending = set() if frame is None or ctx.grads is None else set(ctx.grads) - frame.done
    edges = _merged_edges(topo, unit, reach, lit_edges, frame.delivered if frame else frozenset(), pending)
    looks = {meaning: _edge_attrs(theme, [k for k in range(len(terms)) if meaning[0] >> k & 1], *meaning[1:])
             for meaning in set(edges.values())}
    digraph.body += [statement(f"{keys[t]} -> {keys[h]}", looks[meaning], ident=f"e{keys[t]}_{keys[h]}")
                     for (t, h), meaning in edges.items()]

    if legend:
        masks = {meaning[0] for meaning in edges.values()}
        digraph.subgraph(_legend(theme, set(kind_of.values()) | ({"group"} if layout.groups else set()),
                                 [nodes[t]["name"] for t in terms],
                                 any(mask & (mask - 1) for mask in masks),  # two bits or more
                                 0 in masks, root_name))
    return Drawing(digraph, layout.units, layout.notes + tuple(notes))


def _caption_lines(graph: Graph, root_id: int, caption: str | bool | None) -> list[str]:
    if caption is None or caption is True:
        return describe_terms(graph, root_id)
    if caption is False or caption == "":
        return []
    return str(caption).split("\n")


def _units(layout: Plan) -> tuple[list[int], list[tuple[int, int]]]:
    """Each node's unit (its place in drawing order), and where each unit is drawn: ``(id,
    group)`` for a group at its smallest member, ``(id, -1)`` for a node drawn as itself."""
    unit: list[int] = []
    drawn_at: list[tuple[int, int]] = []
    group_unit: dict[int, int] = {}
    for i, k in enumerate(layout.group_of.tolist()):
        n = group_unit.setdefault(k, len(drawn_at)) if k >= 0 else len(drawn_at)
        if n == len(drawn_at):  # a node drawn as itself, or the smallest member of a group
            drawn_at.append((i, k))
        unit.append(n)
    return unit, drawn_at


def _merged_edges(topo: Topology, unit: list[int], reach: TermReach, lit_edges: set[tuple[int, int]] | None,
                  delivered: frozenset[tuple[int, int]], pending: set[int]
                  ) -> dict[tuple[int, int], tuple[int, bool | None, bool, bool]]:
    """Per pair of units joined by at least one edge, in drawing order, what it means:
    ``(terms mask, lit, delivered, pending head)``, each flag true when any of the pair's
    edges has it (``lit`` is None without highlighted paths)."""
    merged: dict[tuple[int, int], tuple[int, bool | None, bool, bool]] = {}
    masks = reach.masks(topo.tails, topo.heads).tolist()
    for u, v, mask in zip(topo.tails.tolist(), topo.heads.tolist(), masks):
        pair = (unit[u], unit[v])
        if pair[0] == pair[1]:
            continue
        terms, lit, sent, waiting = merged.get(pair, (0, None if lit_edges is None else False, False, False))
        merged[pair] = (terms | mask, None if lit_edges is None else lit or (u, v) in lit_edges,
                        sent or (u, v) in delivered, waiting or v in pending)
    return dict(sorted(merged.items()))


def _add_clusters(digraph: graphviz.Digraph, theme: Theme, lines: list[str], scopes: list[str]) -> None:
    """Write node statements, each scope's nodes (``scopes[k]`` is the scope of ``lines[k]``)
    inside a (nested) ``cluster_<k>`` subgraph."""
    paths: dict[str, None] = {}  # in order of first appearance, so clusters follow the recording
    for scope in scopes:
        chain = []
        while scope and scope not in paths:
            chain.append(scope)
            scope = scope.rpartition("/")[0]
        paths.update(dict.fromkeys(reversed(chain)))
    clusters: dict[str, graphviz.Digraph] = {"": digraph}
    for k, path in enumerate(paths):
        attrs = {"id": f"cluster{k}", "label": dot_label_text(path.rpartition("/")[2]),
                 "labeljust": "r",  # top right: edges into a cluster arrive at its left
                 "style": "rounded,filled", "color": theme.cluster_border, "fillcolor": theme.cluster_fill,
                 "fontcolor": theme.text, "fontsize": fmt_number(theme.small_fontsize + 1)}
        clusters[path] = graphviz.Digraph(name=f"cluster_{k}", body=[f"\t{attr_text(attrs)}\n"])
    for line, scope in zip(lines, scopes):
        clusters[scope].body.append(line)
    for path in sorted(paths, key=lambda p: -p.count("/")):  # the deepest first, into their parents
        clusters[path.rpartition("/")[0]].subgraph(clusters[path])
