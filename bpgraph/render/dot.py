"""Graph -> DOT, pure and deterministic: ids are the graph's node ids (``g<id>`` for a group; ``n<id>``
and ``e<tail>_<head>`` in the SVG), everything in id order.  Every value is quoted by
:func:`bpgraph.text.dot_quote`, never an HTML-like label, so a name cannot end a label or reach the SVG
as markup.  Edges take the colours of the cost terms whose gradient they carry; arrows point forward."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

import numpy as np

from ..analysis import TermReach, term_reach
from ..autodiff import gradients
from ..text import dot_label_text, dot_quote
from .caption import MAX_TERMS, describe_terms, highlight_paths, parse_highlight
from .collapse import MAX_NODES, Group, Plan, plan
from .structure import Topology, op_depths, scope_depths, topology
from .themes import KIND_TITLES, RenderOptionError, Theme, get_theme

if TYPE_CHECKING:
    from ..graph import Graph
    from ..tensor import Tensor

#: What a node label can show; ``value`` and ``gradvalue`` only for arrays of at most SMALL elements.
SHOW_ITEMS = ("name", "op", "shape", "value", "grad", "gradvalue")
DEFAULT_SHOW = ("name", "shape")
SMALL = 6
RANKDIRS = ("LR", "TB")
RANKSEP = "0.4"  # inches; a theme may set its own
#: Names are drawn cut to MAX_NAME escaped characters (ending in …), clusters nested at most
#: MAX_NESTING deep (``dot`` time grows with the cube of their depth), the caption at most MAX_STRING
#: characters long (Graphviz 2.43 refuses 16,384).
MAX_NAME, MAX_NESTING, MAX_STRING = 2000, 20, 16_000
DIRECTION = "arrows: the forward pass; gradients flow back against them"
NO_GRADIENT = "no gradient computed"
SMALL_GRAPH = 12  # units below which the legend shows the edge meanings only (it would take over a sixth)


# --- text -------------------------------------------------------------------------------------
def attr_text(attrs: dict[str, str]) -> str:
    """``key=value ...``, keys sorted, every value quoted."""
    return " ".join(f"{key}={dot_quote(value)}" for key, value in sorted(attrs.items()))


def statement(head: str, attrs: dict[str, str], *, label: str | None = None, ident: str = "") -> str:
    """``head [label=... id=... key=value ...]``; ``head`` is made of ids and fixed words only."""
    lead = ([f"label={dot_quote(label)}"] if label is not None else []) + ([f"id={ident}"] if ident else [])
    return f"\t{head} [{' '.join([*lead, attr_text(attrs)])}]\n"


def label_text(text: str) -> str:
    """``text`` escaped for a DOT label, cut to at most MAX_NAME escaped characters (ending in …)."""
    escaped = dot_label_text(text)
    while len(escaped) > MAX_NAME:  # escapes make some characters longer: shrink until it fits
        text = text[:len(text) * MAX_NAME // len(escaped) - 1]
        escaped = dot_label_text(text + "…")
    return escaped


def fmt_number(x: Any) -> str:
    """A number in at most 4 significant digits (a fixed format, so DOT text is reproducible)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    return str(int(x)) if isinstance(x, (int, np.integer)) else format(float(x), ".4g")


def fmt_array(a: np.ndarray) -> str | None:
    """Values of an array of at most SMALL elements (deeper than 2-D as rows), else None."""
    def nested(x: Any) -> str:
        return "[" + ", ".join(map(nested, x)) + "]" if isinstance(x, list) else fmt_number(x)

    a = np.asarray(a)
    if a.size > SMALL:
        return None
    return nested(a.reshape(-1, a.shape[-1]).tolist() if a.ndim > 2 else a.tolist())


# --- what the drawing shows ---------------------------------------------------------------------
def term_looks(graph: Graph, terms: Sequence[int]) -> list[int]:
    """Each term's look (:meth:`Theme.term_look`): its place among the last node's cost terms, so a term
    keeps its colour whatever the root."""
    everyone = term_reach(graph, graph.root_id(None)).terms
    return [everyone.index(t) if t in everyone else len(everyone) + k for k, t in enumerate(terms)]


def stored_or_computed_grads(graph: Graph, root_id: int) -> dict[int, np.ndarray]:
    """∂root/∂node for labels: the stored gradients if they are for this root, else computed."""
    if graph.grad_root == root_id:
        return {i: a["grad"] for i, a in graph.nodes.items() if a["grad"] is not None}
    return gradients(graph, root_id)


class Step(NamedTuple):
    """One backward step: ``node``'s gradient is complete, delivered along ``delivered`` edges."""

    node: int
    delivered: tuple[tuple[int, int], ...]


class Frame(NamedTuple):
    """Backward step ``step`` of ``total`` as drawn: ``current`` just got its complete gradient via
    ``delivered`` edges; the gradients of smaller ids are still pending (steps go by decreasing id)."""

    step: int
    total: int
    current: int
    delivered: tuple[tuple[int, int], ...]


def backward_steps(graph: Graph, root: Tensor | int | str | None = None) -> list[Step]:
    """The backward pass of ``root``: a step per node as its gradient becomes complete, the root first."""
    root_id = graph.root_id(root)
    grads = stored_or_computed_grads(graph, root_id)
    return [Step(i, tuple((i, user) for user in sorted(graph.successors(i)) if user in grads))
            for i in sorted(grads, reverse=True)]


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
    pending: set[int]  # in a frame: nodes whose gradient is not complete yet
    no_path: set[int]  # ends of a highlighted pair with no path between them
    spine: set[int]  # the chain laid on one line


def _label_lines(ctx: _Context, node_id: int) -> tuple[list[str], list[str]]:
    """Escaped label lines as drawn now, and as drawn once every gradient is known (frames)."""
    attrs, show = ctx.graph.nodes[node_id], ctx.show
    shape, value = attrs["value"].shape, fmt_array(attrs["value"])
    lines = [label_text(attrs["name"])] if "name" in show else []
    lines += [dot_label_text(attrs["op"])] if "op" in show and attrs["op"] else []
    lines += ["×".join(map(str, shape)) if shape else "scalar"] if "shape" in show else []
    lines += ["= " + dot_label_text(value)] if "value" in show and value is not None else []
    if ctx.grads is None or not ("grad" in show or "gradvalue" in show):
        return lines, lines
    d = label_text(f"∂{ctx.root_name}/∂{attrs['name']}")
    grad = ctx.grads.get(node_id)
    final = [f"{d} = 0 (no path)"] if grad is None and not ctx.root_side[node_id] else []
    if grad is not None and "grad" in show:
        final.append(f"‖{d}‖ = {format(float(np.linalg.norm(grad)), '.3g')}")
    if grad is not None and "gradvalue" in show and fmt_array(grad) is not None:
        final.append(f"{d} = {dot_label_text(fmt_array(grad))}")
    return lines + ([f"{d} = ?"] if node_id in ctx.pending else final), lines + final


def _node_attrs(theme: Theme, kind: str, *, dim: bool = False, lit: bool = False,
                current: bool = False) -> dict[str, str]:
    """How a node of ``kind`` looks: faded, bolder when highlighting is on, or the current frame's."""
    style = theme.nodes[kind]
    fill, border, font, pen = style.fill, style.border, style.font, style.penwidth
    if dim:
        fill, border, font = theme.faded_fill, theme.faded_text, theme.faded_text
    pen += 1.0 if lit and not dim else 0.0
    if current:
        fill, pen = theme.accent, pen + 2.0
    margin = {"margin": style.margin} if style.margin else {}
    return {"shape": style.shape, "style": style.style, "fillcolor": fill, "color": border,
            "fontcolor": font, "penwidth": fmt_number(pen), **margin}


def _unit_statement(ctx: _Context, node_id: int, kind: str, group: Group | None) -> str:
    """A node, faded when the root does not depend on it, it is not lit or still pending; or a group,
    faded when that holds for all its members."""
    lit = ctx.lit
    if group is not None:
        members = group.members.tolist()
        faded = not ctx.root_side[group.members].any() or (lit is not None and lit.isdisjoint(members))
        ops = f" · {dot_label_text(', '.join(group.ops))}" if group.ops else ""
        text = f"{label_text(group.title)}\\n{len(members):,} nodes{ops}"
        return statement(group.key, _node_attrs(ctx.theme, "group", dim=faded), label=text, ident=group.key)
    dim = not ctx.root_side[node_id] or (lit is not None and node_id not in lit) or node_id in ctx.pending
    label, final = _label_lines(ctx, node_id)
    attrs = _node_attrs(ctx.theme, kind, dim=dim, lit=lit is not None,
                        current=ctx.frame is not None and node_id == ctx.frame.current)
    if node_id in ctx.spine:
        attrs["group"] = "spine"
    if node_id in ctx.no_path:
        attrs.update(color=ctx.theme.text, xlabel="no path", fontcolor=ctx.theme.text)
    if ctx.frame is not None:  # a fixed size that fits the final label: every frame has one layout
        em = ctx.theme.fontsize / 72  # inches
        width = 0.56 * em * max((len(line) for line in final), default=1) + 0.2
        height = 1.3 * em * max(1, len(final)) + 0.15
        if attrs["shape"] in ("ellipse", "octagon", "doubleoctagon", "cylinder"):
            width, height = width * 1.15, height * (1.6 if attrs["shape"] == "cylinder" else 1.25)
        attrs.update(fixedsize="true", width=format(width, ".2f"), height=format(height, ".2f"))
    return statement(str(node_id), attrs, label="\\n".join(label), ident=f"n{node_id}")


def _edge_attrs(theme: Theme, looks: Sequence[int], lit: bool | None = None, delivered: bool = False,
                pending: bool = False, data: bool = False) -> dict[str, str]:
    """Colour by term look (parallel colours when several), fade carriers of nothing, dot the edges out
    of data (no gradient is computed for it), then emphasis."""
    faded_pen = max(1.0, theme.edge_penwidth * 0.55)
    pairs = [theme.term_look(k) for k in looks]
    colours = list(dict.fromkeys(colour for colour, _ in pairs)) or [theme.faded_edge]
    style = pairs[0][1] if len(pairs) == 1 else "solid"
    pen = theme.edge_penwidth if looks else faded_pen
    if data:
        colours, style = [theme.faded_text], "dotted"
    if lit is True:
        pen, colours = pen * 1.8, colours if looks or data else [theme.text]
    elif lit is False or pending:
        colours, pen = [theme.faded_edge], faded_pen
    if delivered:
        pen, colours = pen * 2.0, colours if looks else [theme.accent]
    return {"color": ":".join(colours), "style": style, "penwidth": fmt_number(round(pen, 2))}


def _legend(theme: Theme, kinds: set[str], samples: list[tuple[str, dict[str, str]]], title: str,
            rankdir: str, ranksep: float) -> list[str]:
    """A cluster: a sample node per kind drawn, then the edge meanings in one column (so the legend stays
    about as wide as the drawing), each arrow starting inside an invisible node long enough for 3 dashes."""
    small = fmt_number(theme.small_fontsize)
    attrs = {"id": "legend", "label": label_text(title), "style": "rounded,filled", "color": theme.cluster_border,
             "fillcolor": theme.cluster_fill, "fontcolor": theme.text, "fontsize": small}
    shown = [kind for kind in KIND_TITLES if kind in kinds]
    row, starts = [f"legend_{kind}" for kind in shown], [f"legend_s{k}" for k in range(len(samples))]
    lines = [f"\t{attr_text(attrs)}\n"]
    lines += [statement(f"legend_{kind}", {**_node_attrs(theme, kind), "fontsize": small},
                        label=KIND_TITLES[kind]) for kind in shown]
    plain = {"shape": "plaintext", "fontcolor": theme.text, "fontsize": small}
    lines += [statement(f"legend_t{k}", {**plain, "group": f"legend{k}"}, label=label_text(text))
              for k, (text, _) in enumerate(samples)]
    # points: three periods of a dashed line (finish_svg widens Graphviz's 5,2 with the pen) and the arrowhead
    length = 3 * 7 * max(1.0, theme.edge_penwidth / 1.5) + 10 * theme.arrowsize - 72 * ranksep
    long, short = format(max(0.01, length / 36), ".2f"), "0.01"
    start = {"shape": "none", "fixedsize": "true", "width": long if rankdir == "LR" else short,
             "height": short if rankdir == "LR" else long}
    lines += [statement(name, {**start, "group": f"legend{k}"}, label="") for k, name in enumerate(starts)]
    lines += [statement(f"{a} -> {b}", {"style": "invis"}) for a, b in zip(row, [*row[1:], starts[len(starts) // 2]])]
    if len(starts) > 1:  # in one rank, in order (left to right in TB; in LR a flat edge's tail is drawn below)
        lines.append(f"\t{{rank=same; {' -> '.join(starts[::-1] if rankdir == 'LR' else starts)} [style=invis]}}\n")
    lines += [statement(f"{start} -> legend_t{k}", {**look, "tailclip": "false"})
              for k, (start, (_, look)) in enumerate(zip(starts, samples))]
    return ["\tsubgraph cluster_legend {\n", *("\t" + line for line in lines), "\t}\n"]


def _samples(theme: Theme, names: list[str], look_of: list[int], meanings: set[tuple[Any, ...]],
             root_name: str, frame: bool) -> list[tuple[str, dict[str, str]]]:
    """The legend's edge meanings with their looks: each term's gradient (the first MAX_TERMS), several
    at once, none from the root, none computed (data); in a frame, the steps' three states instead."""
    if frame:
        look = look_of[:1]
        return [("just delivered", _edge_attrs(theme, look, delivered=True)),
                ("already delivered", _edge_attrs(theme, look)),
                ("still pending", _edge_attrs(theme, look, pending=True))]
    masks = {meaning[0] for meaning in meanings if not meaning[4]}
    samples = [(f"gradient of {name}", _edge_attrs(theme, [k])) for name, k in zip(names[:MAX_TERMS], look_of)]
    if any(mask & (mask - 1) for mask in masks):  # two bits or more
        label = "both terms" if len(names) == 2 else "several terms"
        samples.append((label, _edge_attrs(theme, look_of[:MAX_TERMS])))
    if 0 in masks:
        samples.append((f"no gradient from {root_name}", _edge_attrs(theme, [])))
    if any(meaning[4] for meaning in meanings):
        samples.append((NO_GRADIENT, _edge_attrs(theme, [], data=True)))
    return samples


def _weight(ctx: _Context, tail: int, head: int, kept: set[int]) -> dict[str, str]:
    """Without scope boxes: operands held beside the chain node they feed, and a term off the chain
    pulling nothing, so it takes its own row next to its operands."""
    if not ctx.spine or tail in ctx.spine:
        return {}
    return {"weight": "0"} if tail in kept else {"weight": "4"} if head in ctx.spine else {}


def _spine(graph: Graph, root_id: int) -> list[int]:
    """The longest chain of ops into the root, from the data (or leaf) that starts it: laid on one line."""
    depth, chain = op_depths(graph), [root_id]
    kinds = {"input": 2, "const": 1}
    while graph.nodes[chain[-1]]["operands"]:
        operands = graph.nodes[chain[-1]]["operands"]
        chain.append(max(operands, key=lambda o: (depth[o], kinds.get(graph.nodes[o]["kind"], 0), -o)))
    return chain


# --- building the DOT graph ---------------------------------------------------------------------
def build(graph: Graph, root: Tensor | int | str | None = None, *, theme: str | Theme = "light",
          rankdir: str = "LR", show: str | Iterable[str] = DEFAULT_SHOW, highlight: Any = None,
          collapse: Iterable[str] = (), max_nodes: int = MAX_NODES,
          caption: str | bool | None = None, legend: bool = True, frame: Frame | None = None,
          notes: Sequence[str] = ()) -> tuple[str, Plan, tuple[str, ...]]:
    """The DOT text, the collapse plan it draws and its notes; ``frame`` draws one backward step, ``notes``
    add caption lines, the other options are :func:`bpgraph.render.to_dot`'s."""
    theme = get_theme(theme)
    if rankdir not in RANKDIRS:
        raise RenderOptionError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    show = (show,) if isinstance(show, str) else tuple(show)
    unknown = [s for s in show if s not in SHOW_ITEMS]
    if unknown:
        raise RenderOptionError(f"cannot show {', '.join(map(repr, unknown))}; "
                                f"choose from: {', '.join(SHOW_ITEMS)}")
    root_id = graph.root_id(root)
    root_name = graph.name_of(root_id)
    reach = term_reach(graph, root_id)
    terms, kept = reach.terms, {root_id, *reach.terms}
    pairs = parse_highlight(highlight)
    lit_nodes, lit_edges, path_notes = highlight_paths(graph, pairs) if pairs else (None, None, [])
    few = len(terms) <= max(MAX_TERMS, max_nodes // 10)  # else terms may merge: too many to draw alone
    layout = plan(graph, collapse, max_nodes, keep=kept if few else {root_id})
    topo = topology(graph)
    wants_grads = frame is not None or "grad" in show or "gradvalue" in show
    grads = stored_or_computed_grads(graph, root_id) if wants_grads else None
    pending = {i for i in grads if i < frame.current} if frame else set()
    root_side = np.zeros(len(graph), dtype=bool)
    root_side[:len(reach.root_side)] = reach.root_side
    no_path = {graph.id_of(end) for of, wrt in pairs if not graph.between(of, wrt) for end in (of, wrt)}
    # without scope boxes, the last node's longest chain is laid on one line, whatever the root
    spine = set() if theme.clusters else set(_spine(graph, graph.root_id(None)))
    ctx = _Context(graph, theme, show, root_name, root_side, grads, lit_nodes, frame, pending, no_path, spine)
    look_of = term_looks(graph, terms)

    # units in id order: a node drawn as itself, or a group drawn at (and named after) its smallest member
    at = layout.at()
    drawn = [(i, k) for i, k in enumerate(layout.group_of.tolist()) if at[i] == i]
    kind_of = {i: "root" if i == root_id else "term" if i in kept else topo.kind(i)
               for i, k in drawn if k < 0}
    body = [_unit_statement(ctx, i, kind_of.get(i, "group"), layout.groups[k] if k >= 0 else None)
            for i, k in drawn]
    notes = [*layout.notes, *notes]
    if theme.clusters and any(topo.scope_names):  # a group sits in its scope's parent
        scopes = [layout.groups[k].cluster if k >= 0 else topo.scope(i) for i, k in drawn]
        if max(s.count("/") for s in scopes) >= MAX_NESTING:
            scopes = ["/".join(s.split("/", MAX_NESTING)[:MAX_NESTING]) for s in scopes]
            notes.append(f"scopes nested more than {MAX_NESTING} deep are drawn inside their "
                         f"{MAX_NESTING}th-level scope")
        body = _cluster_lines(theme, body, scopes)
    if grads is not None and "gradvalue" in show:
        large = sum(fmt_array(g) is None for g in grads.values())
        if large:
            notes.append(f"gradvalue shows arrays of at most {SMALL} elements; {large} larger gradients "
                         "show only their norm (with grad); see every value with bpgraph grads MODEL --json "
                         "or g.backward() in Python")
    if max(map(len, [*graph.names, *topo.scope_names])) > MAX_NAME:
        notes.append(f"names longer than {MAX_NAME} characters are drawn cut short, ending in …")

    # edges between units; a repeated operand or several edges between two units draw once
    key = {i: layout.groups[k].key if k >= 0 else str(i) for i, k in drawn}
    stored = graph.grad_root == root_id  # then a leaf's stored gradient counts as computed
    no_grad = [a["kind"] in ("input", "const") and not a["requires_grad"] and not (stored and a["grad"] is not None)
               for a in graph.nodes.values()]
    edges = _merged_edges(topo, at, reach, lit_edges, frame.delivered if frame else (), pending, no_grad)
    looks = {meaning: _edge_attrs(theme, [look_of[k] for k in range(len(terms)) if meaning[0] >> k & 1],
                                  *meaning[1:]) for meaning in set(edges.values())}
    body += [statement(f"{key[t]} -> {key[h]}", {**looks[meaning], **_weight(ctx, t, h, kept)},
                       ident=f"e{key[t]}_{key[h]}") for (t, h), meaning in edges.items()]
    if legend:
        kinds = set(kind_of.values()) | ({"group"} if layout.groups else set())
        samples = _samples(theme, [graph.name_of(t) for t in terms], look_of, set(edges.values()), root_name,
                           frame is not None)
        some = f" ({MAX_TERMS} of {len(terms):,} terms)" if len(terms) > MAX_TERMS else ""
        small = layout.units < SMALL_GRAPH  # a few nodes: their names and the caption say enough
        title = "" if small else f"legend{some} · gradients flow against the arrows"
        body += _legend(theme, set() if small else kinds, samples, title, rankdir,
                        float(theme.graph_attrs.get("ranksep", RANKSEP)))

    graph_attrs = {"rankdir": rankdir, "bgcolor": theme.background, "fontname": theme.fontname,
                   "fontsize": fmt_number(theme.fontsize), "fontcolor": theme.text,
                   "labelloc": "t", "labeljust": "l", "nodesep": "0.25", "ranksep": RANKSEP,
                   "pad": "0.2", "outputorder": "edgesfirst", **theme.graph_attrs,
                   **({"id": "slide"} if frame else {})}
    lines = [*describe_terms(graph, root_id), DIRECTION] if caption is None or caption is True else \
        [] if caption is False or caption == "" else [str(caption)]
    # every caption line left-justified (names holding newlines split too), as many as MAX_STRING holds
    parts = [label_text(part) + "\\l" for line in lines + path_notes + notes for part in line.split("\n")]
    kept_parts = sum(size <= MAX_STRING for size in itertools.accumulate(map(len, parts)))
    more = [f"… and {len(parts) - kept_parts:,} more lines\\l"] if kept_parts < len(parts) else []
    if parts:
        graph_attrs["label"] = "".join(parts[:kept_parts] + more)
    node_attrs = {"fontname": theme.fontname, "fontsize": fmt_number(theme.fontsize), "fontcolor": theme.text,
                  "margin": "0.1,0.04", "height": "0.3"}
    head = [statement("graph", graph_attrs), statement("node", node_attrs),
            statement("edge", {"arrowsize": fmt_number(theme.arrowsize), "color": theme.text})]
    return "".join(["digraph bpgraph {\n", *head, *body, "}\n"]), layout, tuple(notes)


def _merged_edges(topo: Topology, at: list[int], reach: TermReach, lit_edges: set[tuple[int, int]] | None,
                  delivered: tuple[tuple[int, int], ...], pending: set[int], no_grad: list[bool]
                  ) -> dict[tuple[int, int], tuple[int, bool | None, bool, bool, bool]]:
    """Per pair of units joined by an edge (``at``: where each node is drawn), in drawing order: ``(terms mask,
    lit or None, delivered, pending head, out of a leaf with no computed gradient)``, or'ed over the pair's
    edges."""
    merged: dict[tuple[int, int], tuple[int, bool | None, bool, bool, bool]] = {}
    masks = reach.masks(topo.tails, topo.heads).tolist()
    first = (0, None if lit_edges is None else False, False, False, True)
    for u, v, mask in zip(topo.tails.tolist(), topo.heads.tolist(), masks):
        pair = (at[u], at[v])
        if pair[0] != pair[1]:
            terms, lit, sent, waiting, data = merged.get(pair, first)
            merged[pair] = (terms | mask, None if lit_edges is None else lit or (u, v) in lit_edges,
                            sent or (u, v) in delivered, waiting or v in pending, data and no_grad[u])
    return dict(sorted(merged.items()))


def _cluster_lines(theme: Theme, lines: list[str], scopes: list[str]) -> list[str]:
    """``lines``, each inside the (nested) ``cluster_<k>`` subgraph of its scope ``scopes[k]``: one per
    scope and parent, numbered in order of first appearance, its lines before its sub-clusters."""
    paths = list(scope_depths(scopes))  # "" first, every scope after its parent
    number = {path: k - 1 for k, path in enumerate(paths)}
    own: dict[str, list[str]] = {path: [] for path in paths}
    inner: dict[str, list[str]] = {path: [] for path in paths}
    for path in paths[1:]:
        inner[path.rpartition("/")[0]].append(path)
    for line, scope in zip(lines, scopes):
        own[scope].append(line)
    body = own[""]
    stack: list[tuple[str | None, str]] = [(path, "\t") for path in reversed(inner[""])]
    while stack:  # depth first, without recursion; indented at most 8 tabs, so text stays linear
        path, pad = stack.pop()
        if path is None:
            body.append(f"{pad}}}\n")
            continue
        attrs = {"id": f"cluster{number[path]}", "label": label_text(path.rpartition("/")[2]),
                 "labeljust": "r",  # top right: edges into a cluster arrive at its left
                 "style": "rounded,filled", "color": theme.cluster_border, "fillcolor": theme.cluster_fill,
                 "fontcolor": theme.text, "fontsize": fmt_number(theme.small_fontsize + 1)}
        body += [f"{pad}subgraph cluster_{number[path]} {{\n", f"{pad}\t{attr_text(attrs)}\n"]
        body += [pad + line for line in own[path]]
        stack += [(None, pad), *((child, pad + "\t" * (len(pad) < 8)) for child in reversed(inner[path]))]
    return body
