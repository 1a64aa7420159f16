"""The chain rule for one pair: ∂OF/∂WRT split over its paths, then the backward pass along them line
by line, in the course's notation (``dA2 = W3ᵀ·dZ3``) or as exact partials; as text, Markdown or LaTeX."""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from typing import Any, Collection, NamedTuple, Sequence

import numpy as np

from .. import notation
from ..autodiff import gradients, seed_for
from ..errors import GraphError
from ..graph import Graph, Ref
from ..ops import FUSED, OPS
from ..text import markdown_text, one_line, table, tex_text, width
from .paths import count_paths, find_path, no_path_reason, walk
from .reports import describe_value, norm, readonly, sci, with_values
from .terms import cost_terms

#: Local derivatives per line of a LaTeX chain-rule product (three fit an article's text width).
TEX_FACTORS_PER_LINE = 3
NAME = {"text": one_line, "markdown": markdown_text, "latex": tex_text}
#: How each style writes 1/m·, m· and a minus sign in front of a share.
PREFIX = {"text": ("1/m·", "m·", "−"), "markdown": ("1/m·", "m·", "−"),
          "latex": (r"\frac{1}{m} \cdot ", r"m \cdot ", "-")}
_OVER_M = re.compile(r" \* \(1 / examples\([^()]*\)\)")  # a cost's 1/m, which the course's m· cancels


@dataclass(frozen=True, eq=False)
class PathContribution:
    """One path (WRT first) and its share of ∂OF/∂WRT: the product of the local VJPs along it."""

    nodes: tuple[str, ...]
    value: np.ndarray

    @property
    def norm(self) -> float:
        return norm(self.value)

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return with_values({"path": list(self.nodes), "norm": self.norm}, values, "value", self.value)


@dataclass(frozen=True, eq=False)
class PathReport:
    """∂OF/∂WRT split over the first ``limit`` paths from WRT to OF (``count`` is exact)."""

    of: str
    wrt: str
    total: np.ndarray
    paths: tuple[PathContribution, ...]
    count: int
    limit: int | None

    @property
    def capped(self) -> bool:
        return self.count > len(self.paths)

    def sum(self) -> np.ndarray:
        """The sum of the contributions listed (equals ``total`` unless capped)."""
        return np.asarray(sum((p.value for p in self.paths), np.zeros(self.total.shape, self.total.dtype)))

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return with_values({"of": self.of, "wrt": self.wrt, "count": self.count, "shown": len(self.paths),
                            "capped": self.capped, "total_norm": norm(self.total),
                            "paths": [p.to_dict(values) for p in self.paths]}, values, "total", self.total)

    def __str__(self) -> str:
        head = (f"∂{one_line(self.of)}/∂{one_line(self.wrt)}: {_paths_word(self.count)}"
                + (f", first {len(self.paths)} shown" if self.capped else "")
                + f"; total {describe_value(self.total)}")
        rows = [[str(k), sci(p.norm), " -> ".join(p.nodes)] for k, p in enumerate(self.paths, 1)]
        return head + "\n" + table(["#", "‖contribution‖", "path"], rows)


def path_attribution(graph: Graph, of: Ref, wrt: Ref, *, seed: Any = None,
                     limit: int | None = 1000) -> PathReport:
    """Split ∂OF/∂WRT into each path's contribution (the seed carried back along it), at most ``limit``."""
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    names = graph.name_of(of_id), graph.name_of(wrt_id)
    if not on:  # structurally zero: no seed needed
        return PathReport(*names, readonly(np.zeros(graph.nodes[wrt_id]["value"].shape)), (), 0, limit)
    start = seed_for(graph, of_id, seed)
    total = gradients(graph, of_id, start, inputs=True, within=on)[wrt_id]
    found = tuple(PathContribution(tuple(graph.name_of(i) for i in ids), readonly(value))
                  for ids, value in itertools.islice(walk(graph, of_id, wrt_id, start), limit))
    return PathReport(*names, readonly(total), found, count_paths(graph, of_id, wrt_id), limit)


def _paths_word(n: int, more: bool = False) -> str:
    return f"{n}{' more' if more else ''} path" + ("" if n == 1 else "s")


class Step(NamedTuple):
    """One line of a backward pass: ``node``'s gradient as the shares (user id, text) its users send."""

    node: int
    lhs: str
    parts: tuple[tuple[int, str], ...]
    notes: tuple[str, ...] = ()

    @property
    def rhs(self) -> str:
        return " + ".join(text for _, text in self.parts)

    def __str__(self) -> str:
        return f"{self.lhs} = {self.rhs}"


def backward_steps(graph: Graph, of: Ref, within: Collection[int], *, course: bool = False,
                   style: str = "text", only: int | None = None) -> list[Step]:
    """The backward pass from OF over ``within`` (or ``only`` one node), a line per node from the op
    table's formulas; ``course``: dZ, dA are m·∂OF/∂node, cost terms and a fused sigmoid get no line."""
    nodes, of_id, show, last = graph.nodes, graph.id_of(of), NAME[style], min(within, default=None)
    (over_m, times_m, minus), terms = PREFIX[style], cost_terms(graph, of_id)
    top = set().union(*(graph.between(of_id, t) for t in terms)) if course else {of_id}
    signs = {of_id: 1.0}  # ∂OF/∂node down the chain of + and − above the terms
    for i in sorted(top - set(terms), reverse=True):
        for k, o in enumerate(nodes[i]["operands"]):
            signs[o] = signs.get(o, 0.0) + signs[i] * (-1.0 if nodes[i]["op"] == "sub" and k else 1.0)

    name = graph.name_of

    def fused(u: int) -> int | None:  # the cross-entropy term that takes u = sigmoid(Z) straight to Z
        t = graph.successors(u)[0] if course and len(graph.successors(u)) == 1 else None
        fuse = t in terms and (nodes[t]["op"], nodes[t]["operands"].index(u), nodes[u]["op"]) in FUSED
        return t if fuse else None

    def share(u: int, p: int, scale: int) -> str:  # scale: 1 when the line is m·∂OF/∂node
        attrs, term = nodes[u], fused(u)
        if term is not None:  # m·∂J/∂Z = m·(1/m)·(A − Y)
            (a, y), expr, scale = nodes[term]["operands"], "a - y", scale - 1
            text = f"{show(name(a))} {minus} {show(name(y))}"
        else:
            spec, operands = OPS[attrs["op"]], [name(o) for o in attrs["operands"]]
            expr, root, upstream = spec.vjp_formulas[0 if spec.variadic else p], name(of_id), None
            if course and u in top:  # a cost term: its share with g = ∂term/∂term = 1
                root, term = name(u), u
            elif course:
                upstream, scale = f"d{name(u)}", scale - 1
            if scale == 1 and _OVER_M.search(expr):
                expr, scale = _OVER_M.sub("", expr, count=1), 0
            slots = {spec.slots[0]: operands[p]} if spec.variadic else dict(zip(spec.slots, operands))
            text = notation.render(expr, {"out": name(u), **slots}, style, root=root, upstream=upstream,
                                   params=attrs["params"], scalar_out=spec.scalar)
        sign, tree = signs.get(term, 1.0), notation.parse(expr)
        prefix = minus * (sign == -1) + (f"{sign:g}·" if abs(sign) != 1 else "")
        prefix += over_m if scale == -1 else times_m if scale == 1 else ""
        if prefix and isinstance(getattr(tree, "op", None), (ast.Add, ast.Sub, ast.USub)):
            text = rf"\left({text}\right)" if style == "latex" else f"({text})"
        return prefix + text

    steps, arrow = [], r" \rightarrow " if style == "latex" else " → "
    for n in sorted(set(within) - {of_id}, reverse=True) if only is None else [only]:
        if course and (n in top or n != last and fused(n) is not None):
            continue
        scale = int(course and nodes[n]["kind"] == "op")
        parts = tuple((u, share(u, p, scale)) for u in graph.successors(n) if u in within
                      for p, o in enumerate(nodes[u]["operands"]) if o == n)
        notes = []
        for u, text in parts if len(parts) > 1 else ():  # a cost term's own share: by the short path
            path = [name(n), *find_path(graph, of_id, u)] if u in terms and u != of_id else []
            notes += [tex_text(f"(the {name(u)} share: ") + arrow.join(map(tex_text, path)) + r"\text{)}"
                      if style == "latex" else f"{text} is {show(name(u))}'s share: it arrives by the short "
                      f"path {arrow.join(map(show, path))}"] * bool(path)
        lhs = notation.gradient(name(of_id), name(n), style, f"d{name(n)}" if course else None)
        steps.append(Step(n, lhs, parts, tuple(notes)))
    return steps


def explain(graph: Graph, of: Ref, wrt: Ref, *, format: str = "text", convention: str = "auto",  # noqa: A002
            seed: Any = None, limit: int = 20) -> str:
    """The chain rule for ∂OF/∂WRT: a sum over (at most ``limit``) paths of products of local
    derivatives, then the backward pass along them, as text, markdown or latex; with no path, why
    and what it means for WRT's gradient ("∂L2/∂A2 = 0, so the L2 share of dA2 is 0; ...")."""
    if format not in NAME or convention not in ("auto", "course", "exact") or limit < 1:
        raise GraphError(f"format must be 'text', 'markdown' or 'latex', convention 'auto', 'course' or "
                         f"'exact' and limit at least 1; got {format!r}, {convention!r} and {limit}")
    course = convention == "course" or convention == "auto" and "m" in graph.meta
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    reason = no_path_reason(graph, of_id, wrt_id)
    if reason is not None:
        return _explain_zero(graph, of_id, wrt_id, reason, course, format)
    report = path_attribution(graph, of_id, wrt_id, seed=seed, limit=limit)
    steps = backward_steps(graph, of_id, graph.between(of_id, wrt_id), course=course, style=format)
    if len(steps) > 2 * limit:  # the first lines and WRT's own
        steps = [*steps[:2 * limit - 1], None, steps[-1]]
    factors = [_factors(graph, p.nodes) for p in report.paths]
    if format == "latex":
        return _explain_latex(report, factors, steps)
    return _explain_plain(report, factors, steps, course, md=format == "markdown")


def _explain_zero(graph: Graph, of_id: int, wrt_id: int, reason: str, course: bool, style: str) -> str:
    """∂OF/∂WRT = 0 and why; for a cost term OF, WRT's full gradient without OF's share."""
    of, wrt, root, show = graph.name_of(of_id), graph.name_of(wrt_id), graph.root_id(), NAME[style]
    lhs, why = notation.gradient(of, wrt, style), tex_text(f"({reason})")
    head = {"text": f"{lhs} = 0: {one_line(reason)}", "markdown": f"**{lhs} = 0**: {markdown_text(reason)}",
            "latex": f"{lhs} = 0 \\quad {why}"}[style]
    term = of_id != root and of_id in cost_terms(graph, root) and wrt_id in graph.ancestors(root)
    step = backward_steps(graph, root, graph.between(root, wrt_id), course=course, style=style,
                          only=wrt_id) if term else []
    if not step or not step[0].parts:
        return head
    grad = f"d{wrt}" if course else notation.gradient(graph.name_of(root), wrt)
    if style == "latex":
        note = tex_text(f"(the {of} share of {grad} is 0, exactly as without {of})")
        return (f"\\begin{{aligned}}\n{lhs} &= 0 && {why} \\\\\n{step[0].lhs} &= {step[0].rhs} && {note}"
                "\n\\end{aligned}")
    return (f"{head} {lhs} = 0, so the {show(of)} share of {show(grad)} is 0; {step[0]} exactly as "
            f"without {show(of)}.")


Factor = tuple[str, str, str, int]  # numerator, denominator, op, positions


def _factors(graph: Graph, names: Sequence[str]) -> list[Factor]:
    """The local derivatives along a path, from OF down to WRT."""
    ids = [graph.id_of(n) for n in names]
    users = [graph.nodes[i] for i in ids]
    return [(names[k], names[k - 1], users[k]["op"], users[k]["operands"].count(ids[k - 1]))
            for k in range(len(ids) - 1, 0, -1)]


def _explain_plain(report: PathReport, factors: list[list[Factor]], steps: list[Step | None], course: bool,
                   md: bool) -> str:
    """As text, or with ``md`` as Markdown (names escaped, the paths in a table)."""
    name, bold = (markdown_text, "**") if md else (one_line, "")
    of, wrt = name(report.of), name(report.wrt)
    title = (f"backward along these paths, in the course's notation (dZ = m·∂{of}/∂Z, dW = ∂{of}/∂W):"
             if course else "backward along these paths, node by node (exact partial derivatives):")
    lhs = f"∂{of}/∂{wrt}"
    if not factors[0]:
        return f"{bold}{lhs}{bold} = {describe_value(report.total)}: the seed (a node with respect to itself)"
    products = ["·".join(f"∂{name(v)}/∂{name(u)}" for v, u, _, _ in fs) for fs in factors]
    more = _paths_word(report.count - len(factors), more=True)
    intro = (f"sum over the {_paths_word(report.count)} from {wrt} to {of}, "
             "each a product of local derivatives")
    rows = [(k, " → ".join(map(name, p.nodes)), " · ".join(
        f"∂{name(v)}/∂{name(u)} ({name(op)}{f' ×{n}' if n > 1 else ''})" for v, u, op, n in fs),
        describe_value(p.value)) for k, (p, fs) in enumerate(zip(report.paths, factors), 1)]
    total = describe_value(report.total)
    if md:
        lines = [f"**{lhs}** = " + " + ".join(products) + (f" + … ({more})" if report.capped else ""), "",
                 f"A {intro}:", "", "| # | path | local derivatives | contribution |", "|---:|---|---|---|"]
        lines += [f"| {k} | {path} | {local} | {value} |" for k, path, local, value in rows]
        lines += ["", f"Total {lhs}: {total}.", "", title[0].upper() + title[1:], ""]
        return "\n".join(lines + [" — ".join([f"- {s or '…'}", *getattr(s, "notes", ())]) for s in steps])
    pad = " " * width(lhs)
    lines = [f"{lhs} = " + f"\n{pad} + ".join(products)]
    if report.capped:
        lines.append(f"{pad} + … ({more}, not written out)")
    lines.append(f"a {intro} (op in brackets):")
    for k, path, local, value in rows:
        lines += [f"  {k}. {path}", f"     {local}", f"     contributes {value}"]
    lines += [f"  total {lhs}: {total}", title]
    for step in steps:
        lines += [f"  {step or '…'}", *(" " * (5 + width(step.lhs)) + n for n in getattr(step, "notes", ()))]
    return "\n".join(lines)


def _tex_amount(a: np.ndarray) -> str:
    """A scalar's value, else ‖a‖, as a TeX number (with a power of ten outside [0.001, 10⁴))."""
    x, shown = (float(a.ravel()[0]), "") if a.size == 1 else (norm(a), "\\|\\cdot\\| = ")
    if not np.isfinite(x):
        return shown + tex_text(str(x))
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{shown}{x:.6g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{shown}{mantissa} \\times 10^{{{int(exponent)}}}"


def _explain_latex(report: PathReport, factors: list[list[Factor]], steps: list[Step | None]) -> str:
    lhs = notation.gradient(report.of, report.wrt, "latex")
    if not factors[0]:
        return f"{lhs} = {_tex_amount(report.total)}"
    lines = []
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        fractions = [notation.gradient(v, u, "latex") for v, u, _, _ in fs]
        # a long product goes on several lines, so a deep network's path fits a page or a slide
        rows = [" \\cdot ".join(fractions[i:i + TEX_FACTORS_PER_LINE])
                for i in range(0, len(fractions), TEX_FACTORS_PER_LINE)]
        head = f"{lhs} &= " if k == 1 else "&\\quad + "
        lines += [head + rows[0]] + [f"&\\qquad \\cdot {row}" for row in rows[1:]]
        lines[-1] += f" && {tex_text(f'path {k}:')}\\ {_tex_amount(p.value)}"
    if report.capped:
        lines.append(f"&\\quad + \\cdots && {tex_text(_paths_word(report.count - len(factors), more=True))}")
    lines.append(f"& && {tex_text('total:')}\\ {_tex_amount(report.total)}")
    backward = [row for step in steps for row in ([f"{step.lhs} &= {step.rhs}", *(
        f"&\\qquad {note}" for note in step.notes)] if step else ["&\\quad \\vdots"])]
    blocks = ["\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}" for rows in (lines, backward)
              if rows]  # two blocks, so that neither one's columns widen the other's
    joined = "\\begin{gathered}\n" + " \\\\[1ex]\n".join(blocks) + "\n\\end{gathered}"
    return joined if backward else blocks[0]
