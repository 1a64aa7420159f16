"""Graph -> DOT: pure code that decides what a drawing contains and how each piece looks.

Nothing here runs Graphviz or touches files (that is :mod:`bpgraph.render.backend` and
:mod:`bpgraph.render` respectively); :func:`build` returns a :class:`graphviz.Digraph` whose
``.source`` is the exact DOT text.  The text is deterministic: DOT node ids are the graph's
integer node ids (``g<id>`` for a collapsed group, ``legend_*`` for the legend), everything is
emitted in id order, attributes come in a fixed order (label, id, then the rest sorted) and
numbers have a fixed format.  So the same graph always gives byte-identical DOT and the same
element ids in the SVG (``n<id>`` for nodes, ``e<tail>_<head>`` for edges).

Every piece of user text (node names, scope names, captions) goes through
:func:`bpgraph.text.dot_label_text`, and every label and style value is written as a quoted
string by :func:`bpgraph.text.dot_quote`; captions and cluster labels are marked ``nohtml``.
So ``<...>`` is never read as an HTML-like label, and a name can never end a label, add
attributes or reach the SVG as markup.  (Plain labels, not HTML-like ones, because the embedded WebAssembly Graphviz is
built without HTML-label support.)

Edges are coloured by which cost term's gradient flows back along them (the rule of
:func:`bpgraph.analysis.term_edges`, read from :func:`~bpgraph.analysis.term_reach`); edges
that carry nothing from the root are faded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

import graphviz
import numpy as np

from ..analysis import TermReach, descendants, term_reach
from ..errors import GraphError
from ..text import dot_label_text, dot_quote
from .structure import Topology, topology
from . import collapse as _collapse
from .themes import KIND_TITLES, NODE_KINDS, NodeStyle, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: What a node label can show; ``value`` and ``gradvalue`` only for arrays of at most SMALL elements.
SHOW_ITEMS = ("name", "op", "shape", "value", "grad", "gradvalue")
DEFAULT_SHOW = ("name", "shape")
SMALL = 6
RANKDIRS = ("LR", "TB")

_FAMILY = re.compile(r"([A-Za-z]+)\d+")


# --- text -------------------------------------------------------------------------------------
def label(lines: Iterable[str], end: str = "") -> str:
    """Join escaped lines into one label (``end="\\l"`` left-justifies every line)."""
    lines = list(lines)
    if end:
        return graphviz.nohtml("".join(line + end for line in lines))
    return graphviz.nohtml("\\n".join(lines))


# --- DOT statements ---------------------------------------------------------------------------
# Node and edge statements are written here as text, labels and styles quoted by dot_quote;
# node keys and ids are made from integers (``12``, ``g12``, ``n12``, ``e3_12``), valid DOT
# identifiers as they are.
def style_text(attrs: dict[str, str]) -> str:
    """``key=value ...``, keys sorted, values quoted as labels are (one quoting function)."""
    return " ".join(f"{key}={dot_quote(value)}" for key, value in sorted(attrs.items()))


def node_statement(key: str, ident: str, text: str, styling: str) -> str:
    """One node line of a DOT body: the label made by :func:`label`, the SVG id, the styling."""
    return f"\t{key} [label={dot_quote(text)} id={ident} {styling}]\n"


def edge_statement(tail: str, head: str, styling: str) -> str:
    """One edge line of a DOT digraph body; its SVG id is ``e<tail>_<head>``."""
    return f"\t{tail} -> {head} [id=e{tail}_{head} {styling}]\n"


def fmt_number(x: Any) -> str:
    """A number in at most 4 significant digits (fixed format, so DOT text is reproducible)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return format(float(x), ".4g")


@functools.lru_cache(maxsize=1024)  # a graph has few distinct shapes
def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(20, 211)`` -> ``20×211``; a 0-d array is a ``scalar``."""
    return "×".join(str(n) for n in shape) if shape else "scalar"


def fmt_array(a: np.ndarray) -> str | None:
    """Values of a small array (``[[1, 2], [3, 4]]``), or None when it has more than SMALL."""
    a = np.asarray(a)
    if a.size > SMALL:
        return None
    if a.ndim == 0:
        return fmt_number(a.item())
    if a.ndim == 1:
        return "[" + ", ".join(fmt_number(x) for x in a.tolist()) + "]"
    rows = a.reshape(-1, a.shape[-1])
    return "[" + ", ".join("[" + ", ".join(fmt_number(x) for x in row) + "]"
                           for row in rows.tolist()) + "]"


def _fmt_float(x: float) -> str:
    return format(x, ".3g")


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


# --- what the drawing says ------------------------------------------------------------------------
def default_root(graph: Graph) -> int:
    """The last recorded node: the default root for colouring and frames."""
    if not len(graph):
        raise GraphError("the graph is empty: record something first")
    return max(graph.nodes)


def describe_terms(graph: Graph, root: Tensor | int | str | None = None) -> list[str]:
    """One line per cost term saying which parameters its gradient reaches, and through what.

    For the seed network this gives ``L2's gradient reaches only W1, W2, W3: no path from
    L2 through any Z or A``. Computed from the graph, so it is true for whatever is drawn.
    """
    nodes = graph.nodes
    root_id = default_root(graph) if root is None else graph.id_of(root)
    reach = term_reach(graph, root_id)
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
        unrelated[list(descendants(graph, term))] = True
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
        between = descendants(graph, wrt_id) & graph.ancestors(of_id)
        of_name, wrt_name = graph.name_of(of_id), graph.name_of(wrt_id)
        if not between:
            notes.append(f"no path from {wrt_name} to {of_name}: ∂{of_name}/∂{wrt_name} = 0 structurally")
            continue
        notes.append(f"highlighted: every path carrying ∂{of_name}/∂{wrt_name}")
        nodes |= between
        edges |= {(u, v) for v in between for u in graph.nodes[v]["operands"] if u in between}
    return nodes, edges, notes


def _pairs(highlight: Any) -> list[tuple[Any, Any]]:
    if highlight is None:
        return []
    items = list(highlight)
    if len(items) == 2 and not isinstance(items[0], (tuple, list)):
        items = [tuple(items)]
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise RenderOptionError(f"highlight takes (of, wrt) pairs such as ('J', 'W1'), got {item!r}")
    return [tuple(item) for item in items]


def parse_show(show: str | Iterable[str]) -> tuple[str, ...]:
    """Validate the ``show`` option (one item or several of :data:`SHOW_ITEMS`)."""
    items = (show,) if isinstance(show, str) else tuple(show)
    unknown = [s for s in items if s not in SHOW_ITEMS]
    if unknown:
        raise RenderOptionError(f"cannot show {', '.join(map(repr, unknown))}; "
                                f"choose from: {', '.join(SHOW_ITEMS)}")
    return items


@dataclass(frozen=True)
class Frame:
    """One backward step: ``current`` just got its complete gradient via ``delivered`` edges."""

    step: int
    total: int
    current: int
    done: frozenset[int]
    delivered: frozenset[tuple[int, int]]


class Drawing(NamedTuple):
    """The DOT graph plus what a caller may want to know about it."""

    digraph: graphviz.Digraph
    units: int
    notes: tuple[str, ...]


def stored_or_computed_grads(graph: Graph, root_id: int) -> dict[int, np.ndarray]:
    """∂root/∂node for labels: the stored gradients if they are for this root, else computed."""
    if getattr(graph, "grad_root", None) == root_id:
        return {i: a["grad"] for i, a in graph.nodes.items() if a["grad"] is not None}
    from ..autodiff import gradients

    return gradients(graph, root_id)


# --- building the DOT graph ---------------------------------------------------------------------
class _Context(NamedTuple):
    graph: Graph
    theme: Theme
    show: tuple[str, ...]
    root: int
    root_name: str
    kind_of: dict[int, str]
    root_side: np.ndarray  # per node id: does the root depend on it?
    grads: dict[int, np.ndarray] | None
    lit: set[int] | None
    frame: Frame | None
    styles: dict[tuple[Any, ...], str]  # node styling text by node state (see _node_styling)


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
            final.append(f"‖{d}‖ = {_fmt_float(float(np.linalg.norm(grad)))}")
        if "gradvalue" in show and fmt_array(grad) is not None:
            final.append(f"{d} = {dot_label_text(fmt_array(grad))}")
    pending = ctx.frame is not None and grad is not None and node_id not in ctx.frame.done
    now = [f"{d} = ?"] if pending else final
    return lines + now, lines + final


def _box_size(ctx: _Context, shape: str, lines: list[str]) -> dict[str, str]:
    """A fixed node size that fits ``lines`` generously, so every frame has the same layout."""
    size = ctx.theme.fontsize / 72  # inches per em
    widest = max((len(line) for line in lines), default=1)
    width = 0.62 * size * widest + 0.3
    height = 1.3 * size * max(1, len(lines)) + 0.15
    if shape in ("ellipse", "octagon", "doubleoctagon"):
        width, height = width * 1.3, height * 1.25
    return {"fixedsize": "true", "width": format(width, ".2f"), "height": format(height, ".2f")}


def _margin(style: NodeStyle) -> dict[str, str]:
    """The node kind's own label margin, when it has one."""
    return {"margin": style.margin} if style.margin else {}


def _node_styling(theme: Theme, kind: str, dim: bool, lit: bool, current: bool,
                  box: tuple[tuple[str, str], ...] = ()) -> str:
    """The quoted styling of a node of ``kind``: faded when ``dim`` (no gradient from the root,
    off the highlighted paths, or still pending in a frame), bolder when on a highlighted path,
    accented when it is the current frame's node; ``box`` fixes its size (frames)."""
    style = theme.nodes[kind]
    fill, border, font, pen = style.fill, style.border, style.font, style.penwidth
    if dim:
        fill, border, font = theme.faded_fill, theme.faded_text, theme.faded_text
    elif lit:
        pen += 1.0
    if current:
        fill, pen = theme.accent, pen + 2.0
    return style_text({"shape": style.shape, "style": style.style, "fillcolor": fill, "color": border,
                       "fontcolor": font, "penwidth": fmt_number(pen), **_margin(style), **dict(box)})


def _styling(ctx: _Context, state: tuple[Any, ...]) -> str:
    """:func:`_node_styling` of ``state``; nodes drawn alike share one text, made once per drawing."""
    styling = ctx.styles.get(state)
    if styling is None:
        styling = ctx.styles[state] = _node_styling(ctx.theme, *state)
    return styling


def _node_lines(ctx: _Context, ids: list[int]) -> list[str]:
    """The node statements of the nodes ``ids``, each drawn as itself: faded when the root
    does not depend on it, when it is off the highlighted paths, or when its gradient is still
    pending in a frame.  One loop, since a drawing of 1,000 nodes is mostly this."""
    kind_of, lit, frame, grads = ctx.kind_of, ctx.lit, ctx.frame, ctx.grads
    pending = set() if frame is None or grads is None else set(grads) - frame.done
    current = None if frame is None else frame.current
    lines = []
    for node_id, reached in zip(ids, ctx.root_side[ids].tolist()):
        kind = kind_of[node_id]
        dim = not reached or (lit is not None and node_id not in lit) or node_id in pending
        label, final = _label_lines(ctx, node_id)
        box = () if frame is None else tuple(_box_size(ctx, ctx.theme.nodes[kind].shape, final).items())
        styling = _styling(ctx, (kind, dim, lit is not None, node_id == current, box))
        lines.append(node_statement(str(node_id), f"n{node_id}", "\\n".join(label), styling))
    return lines


def _group_lines(ctx: _Context, groups: _collapse.Groups, keys: list[str], reached: list[bool]) -> list[str]:
    """Each collapsed group's node statement, keyed ``keys[k]``; ``reached[k]`` when the root
    depends on a member of group k.

    A big drawing is mostly groups (1,500 of them for a 100,000-node graph), so this is one
    loop over the plan's columns, with the few distinct op lists and sizes written once.
    """
    lit = ctx.lit
    styling = {faded: _styling(ctx, ("group", faded, False, False, ())) for faded in (False, True)}
    op_lists = {ops: f" · {dot_label_text(', '.join(ops))}" if ops else "" for ops in set(groups.ops)}
    sizes = groups.sizes.tolist()
    counted = {size: f"{size:,} nodes" for size in set(sizes)}  # a handful of sizes; "{:,}" is slow
    bounds = groups.bounds.tolist()
    lines = []
    for k, (key, title, scope, ops, size, hit) in enumerate(zip(keys, groups.titles, groups.scopes,
                                                                groups.ops, sizes, reached)):
        faded = not hit or (lit is not None and lit.isdisjoint(groups.members[bounds[k]:bounds[k + 1]].tolist()))
        title = dot_label_text(title) if scope else title  # bands are titled by bpgraph
        lines.append(node_statement(key, key, f"{title}\\n{counted[size]}{op_lists[ops]}", styling[faded]))
    return lines


def _edge_attrs(theme: Theme, terms: Sequence[int], lit: bool | None, delivered: bool,
                pending: bool) -> dict[str, str]:
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
    columns with ``rankdir=TB``), so the legend stays narrower than the picture.  Its
    statements are written as ``Digraph.node`` and ``edge`` would write them, without their
    checks of every argument (half a millisecond a drawing, a twentieth of a small one).
    """
    legend = graphviz.Digraph(name="cluster_legend")
    legend.attr(id="legend", label="legend", style="rounded", color=theme.cluster_border,
                fontcolor=theme.text, fontsize=fmt_number(theme.small_fontsize + 1))
    small = fmt_number(theme.small_fontsize)
    kinds_row: list[tuple[str, str]] = []  # (first, last) node of each sample
    edges_row: list[tuple[str, str]] = []
    lines = legend.body
    for kind in NODE_KINDS:
        if kind in kinds:
            style = theme.nodes[kind]
            lines.append(_sample_node(f"legend_{kind}", KIND_TITLES[kind], {
                "shape": style.shape, "style": style.style, "fillcolor": style.fill, "color": style.border,
                "fontcolor": style.font, "penwidth": fmt_number(style.penwidth), "fontsize": small, **_margin(style)}))
            kinds_row.append((f"legend_{kind}", f"legend_{kind}"))
    samples = [(f"gradient of {name}", [k]) for k, name in enumerate(term_names)]
    if both:
        samples.append(("both terms" if len(term_names) == 2 else "several terms",
                        list(range(len(term_names)))))
    if faded:
        samples.append((f"no gradient from {root_name}", []))
    for k, (text, terms) in enumerate(samples):
        lines.append(_sample_node(f"legend_e{k}", "", {"shape": "point", "width": "0.06", "color": theme.text}))
        lines.append(_sample_node(f"legend_t{k}", label([dot_label_text(text)]),
                                  {"shape": "plaintext", "fontcolor": theme.text, "fontsize": small}))
        lines.append(_sample_edge(f"legend_e{k}", f"legend_t{k}", _edge_attrs(theme, terms, None, False, False)))
        edges_row.append((f"legend_e{k}", f"legend_t{k}"))
    for row in (kinds_row, edges_row):
        for (_, last), (first, _) in zip(row, row[1:]):
            lines.append(_sample_edge(last, first, {"style": "invis"}))
    return legend


def _sample_node(key: str, text: str, attrs: dict[str, str]) -> str:
    """A legend node statement (``key`` is made by bpgraph: a DOT identifier)."""
    return f"\t{key} [label={dot_quote(text)} {style_text(attrs)}]\n"


def _sample_edge(tail: str, head: str, attrs: dict[str, str]) -> str:
    """A legend edge statement between two sample nodes."""
    return f"\t{tail} -> {head} [{style_text(attrs)}]\n"


def build(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
          rankdir: str = "LR", show: str | Iterable[str] = DEFAULT_SHOW, highlight: Any = None,
          collapse: Iterable[str] = (), max_nodes: int = _collapse.MAX_NODES,
          caption: str | bool | None = None, legend: bool = True,
          frame: Frame | None = None, notes: Sequence[str] = ()) -> Drawing:
    """The DOT graph for ``graph`` (see :func:`bpgraph.render.to_dot` for the options).

    ``frame`` draws one backward step instead of the caption; ``notes`` are extra caption lines.
    """
    theme = get_theme(theme)
    if rankdir not in RANKDIRS:
        raise RenderOptionError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    show = parse_show(show)
    nodes = graph.nodes
    root_id = default_root(graph) if root is None else graph.id_of(root)
    root_name = nodes[root_id]["name"]
    reach = term_reach(graph, root_id)
    terms = reach.terms
    term_names = [nodes[t]["name"] for t in terms]
    lit_nodes, lit_edges, path_notes = None, None, []
    pairs = _pairs(highlight)
    if pairs:
        lit_nodes, lit_edges, path_notes = highlight_paths(graph, pairs)
    plan = _collapse.plan(graph, collapse, max_nodes, keep={root_id, *terms})
    topo = topology(graph)
    wants_grads = frame is not None or "grad" in show or "gradvalue" in show
    term_ids = set(terms)
    kind_of = {i: "root" if i == root_id else "term" if i in term_ids else topo.kind(i)
               for i in np.flatnonzero(plan.group_of < 0).tolist()}
    root_side = np.zeros(len(graph), dtype=bool)
    root_side[:len(reach.root_side)] = reach.root_side
    ctx = _Context(graph, theme, show, root_id, root_name, kind_of, root_side,
                   stored_or_computed_grads(graph, root_id) if wants_grads else None,
                   lit_nodes, frame, {})

    digraph = graphviz.Digraph(name="bpgraph")
    graph_attrs = {"rankdir": rankdir, "bgcolor": theme.background, "fontname": theme.fontname,
                   "fontsize": fmt_number(theme.fontsize), "fontcolor": theme.text,
                   "labelloc": "t", "labeljust": "l", "nodesep": "0.25", "ranksep": "0.4",
                   "pad": "0.2", "outputorder": "edgesfirst", **theme.graph_attrs}
    lines = _caption_lines(graph, root_id, caption, frame) + path_notes + list(plan.notes) + list(notes)
    if lines:  # split names that hold newlines too, so every caption line is left-justified
        graph_attrs["label"] = label((dot_label_text(part) for t in lines for part in t.split("\n")),
                                     end="\\l")
    digraph.attr("graph", **graph_attrs)
    digraph.attr("node", fontname=theme.fontname, fontsize=fmt_number(theme.fontsize),
                 fontcolor=theme.text, margin="0.1,0.04", height="0.3")
    digraph.attr("edge", arrowsize="0.7", color=theme.text)

    # units in id order: a visible node, or a group placed at its smallest member
    unit, starts = _units(plan)
    groups = plan.groups
    reached = (np.bincount(plan.group_of[root_side & (plan.group_of >= 0)], minlength=len(groups)) > 0).tolist()
    group_keys = [_collapse.group_key(first) for first in groups.firsts.tolist()]
    group_lines = _group_lines(ctx, groups, group_keys, reached)
    drawn_at = list(zip(starts.tolist(), plan.group_of[starts].tolist()))  # (id, group or -1) per unit
    own = iter(_node_lines(ctx, [i for i, k in drawn_at if k < 0]))
    lines = [group_lines[k] if k >= 0 else next(own) for _, k in drawn_at]
    keys = [group_keys[k] if k >= 0 else str(i) for i, k in drawn_at]  # what edges name each unit by
    if any(topo.scope_names):
        group_scopes = [scope.rpartition("/")[0] for scope in groups.scopes]  # a scope's group sits in its parent
        _emit_clustered(digraph, theme, lines, [group_scopes[k] if k >= 0 else topo.scope(i) for i, k in drawn_at])
    else:  # no scopes: no clusters
        digraph.body += lines

    # edges between units; a repeated operand or several edges between two units draw once
    pending = (None if frame is None or ctx.grads is None
               else [v for v in ctx.grads if v not in frame.done])
    styles: dict[tuple[Any, ...], str] = {}  # edges share a handful of styles
    masks: set[int] = set()
    tails, heads, meanings = _merged_edges(topo, unit, reach, lit_edges,
                                           None if frame is None else frame.delivered, pending)
    for meaning in set(meanings):
        mask = meaning[0]
        masks.add(mask)
        carried = [k for k in range(len(terms)) if mask >> k & 1]
        styles[meaning] = style_text(_edge_attrs(theme, carried, *meaning[1:]))
    digraph.body += [edge_statement(keys[t], keys[h], styles[m]) for t, h, m in zip(tails, heads, meanings)]

    if legend:
        drawn_kinds = set(kind_of.values()) | ({"group"} if plan.groups else set())
        digraph.subgraph(_legend(theme, drawn_kinds, term_names,
                                 any(mask & (mask - 1) for mask in masks),  # two bits or more
                                 0 in masks, root_name))
    return Drawing(digraph, plan.units, plan.notes + tuple(notes))


def _units(plan: _collapse.Plan) -> tuple[np.ndarray, np.ndarray]:
    """Each node's unit (its index in drawing order) and the id each unit is drawn at: a node
    drawn as itself, or a group at its smallest member."""
    grouped = plan.group_of >= 0
    first = plan.groups.firsts
    is_start = ~grouped  # the ids units are drawn at: ungrouped nodes and each group's first
    is_start[first] = True
    unit = np.cumsum(is_start)  # a start's place among the starts, plus one
    unit -= 1
    unit[grouped] = unit[first][plan.group_of[grouped]]
    return unit, np.flatnonzero(is_start)


def _merged_edges(topo: Topology, unit: np.ndarray, reach: TermReach,
                  lit_edges: set[tuple[int, int]] | None, delivered: Iterable[tuple[int, int]] | None,
                  pending: list[int] | None) -> tuple[list[int], list[int], list[tuple[int, bool | None, bool, bool]]]:
    """Tail units, head units and meanings ``(terms mask, lit, delivered, pending head)``, one
    per pair of units joined by at least one edge, in drawing order; each flag is true when any
    of the pair's edges has it, and ``lit`` is None without highlighted paths."""
    size = topo.size
    cross = unit[topo.tails] != unit[topo.heads]
    tails, heads = topo.tails[cross], topo.heads[cross]
    if not tails.size:
        return [], [], []
    pairs = unit[tails] * size + unit[heads]
    order = np.argsort(pairs, kind="stable")
    pairs, tails, heads = pairs[order], tails[order], heads[order]
    starts = np.flatnonzero(np.diff(pairs, prepend=-1))

    def any_of(edges: Iterable[tuple[int, int]] | None) -> list[bool]:
        if edges is None:
            return [False] * starts.size
        codes = np.fromiter((u * size + v for u, v in edges), dtype=np.int64)
        return np.logical_or.reduceat(np.isin(tails * size + heads, codes), starts).tolist()

    waiting = np.zeros(size, dtype=bool)
    if pending is not None:
        waiting[pending] = True
    masks = np.bitwise_or.reduceat(reach.masks(tails, heads), starts).tolist()
    lit = any_of(lit_edges) if lit_edges is not None else [None] * starts.size
    meanings = list(zip(masks, lit, any_of(delivered), np.logical_or.reduceat(waiting[heads], starts).tolist()))
    ends = pairs[starts]
    return (ends // size).tolist(), (ends % size).tolist(), meanings


def _caption_lines(graph: Graph, root_id: int, caption: str | bool | None,
                   frame: Frame | None) -> list[str]:
    if frame is not None:
        return [frame_caption(graph, root_id, frame)]
    if caption is None or caption is True:
        return describe_terms(graph, root_id)
    if caption is False or caption == "":
        return []
    return str(caption).split("\n")


def frame_caption(graph: Graph, root_id: int, frame: Frame) -> str:
    nodes = graph.nodes
    root, current = nodes[root_id]["name"], nodes[frame.current]["name"]
    head = f"step {frame.step} of {frame.total}: "
    if frame.current == root_id:
        return head + f"start at the root, ∂{root}/∂{root} = 1"
    users = ", ".join(nodes[v]["name"] for _, v in sorted(frame.delivered))
    return head + f"∂{root}/∂{current} is complete, delivered by {users}"


def _emit_clustered(digraph: graphviz.Digraph, theme: Theme, lines: list[str], scopes: list[str]) -> None:
    """Write node statements, each scope's nodes (``scopes[k]`` is the scope of ``lines[k]``)
    inside a (nested) ``cluster_<k>`` subgraph."""
    paths: dict[str, None] = {}  # in order of first appearance, so clusters follow the recording
    for scope in scopes:
        chain = []
        while scope and scope not in paths:
            chain.append(scope)
            scope = scope.rpartition("/")[0]
        paths.update(dict.fromkeys(reversed(chain)))
    ordered = list(paths)
    clusters: dict[str, graphviz.Digraph] = {"": digraph}
    for k, path in enumerate(ordered):
        cluster = graphviz.Digraph(name=f"cluster_{k}")
        cluster.attr(id=f"cluster{k}", label=label([dot_label_text(path.rpartition("/")[2])]),
                     labeljust="r",  # top right: edges into a cluster arrive at its left
                     style="rounded,filled", color=theme.cluster_border, fillcolor=theme.cluster_fill,
                     fontcolor=theme.text, fontsize=fmt_number(theme.small_fontsize + 1))
        clusters[path] = cluster
    for line, scope in zip(lines, scopes):
        clusters[scope].body.append(line)
    for path in sorted(ordered, key=lambda p: -p.count("/")):
        clusters[path.rpartition("/")[0]].subgraph(clusters[path])
