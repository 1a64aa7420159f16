"""The chain rule for one pair: ∂OF/∂WRT split over its paths, and written out as text,
Markdown or LaTeX."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..autodiff import gradients, seed_for
from ..errors import GraphError
from ..graph import Graph, Ref
from ..text import markdown_text, one_line, table, tex_text, width
from .paths import count_paths, no_path_reason, walk
from .reports import describe_value, norm, readonly, sci, with_values

#: Local derivatives per line of a LaTeX chain-rule product (three fit an article's text width).
TEX_FACTORS_PER_LINE = 3


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
    """∂OF/∂WRT split over the paths from WRT to OF: ``count`` is exact, ``paths`` the first
    ``limit`` of them (``capped`` when they do not add up to ``total``; zeros with no path)."""

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
    """Split ∂OF/∂WRT into the contribution of each path from WRT to OF: the seed at OF carried
    back to WRT through the local VJP of each edge.  At most ``limit`` paths are enumerated
    (None: all); ``count`` is exact."""
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


Factor = tuple[str, str, str, int]  # numerator, denominator, op, positions


def _factors(graph: Graph, names: Sequence[str]) -> list[Factor]:
    """The local derivatives along a path, from OF down to WRT."""
    ids = [graph.id_of(n) for n in names]
    users = [graph.nodes[i] for i in ids]
    return [(names[k], names[k - 1], users[k]["op"], users[k]["operands"].count(ids[k - 1]))
            for k in range(len(ids) - 1, 0, -1)]


def explain(graph: Graph, of: Ref, wrt: Ref, *, format: str = "text", seed: Any = None,  # noqa: A002
            limit: int = 20) -> str:
    """The chain rule for ∂OF/∂WRT as a sum over paths of products of local derivatives, as
    ``"text"``, ``"markdown"`` or ``"latex"`` (an amsmath ``aligned`` block): at most ``limit``
    paths, each with its contribution; with no path, one sentence says why ("∂L2/∂A2 = 0: L2
    does not depend on A2; its inputs are W1, W2, W3.")."""
    if format not in ("text", "markdown", "latex"):
        raise GraphError(f"format must be 'text', 'markdown' or 'latex', got {format!r}")
    if limit < 1:
        raise GraphError(f"limit must be at least 1, got {limit}")
    report = path_attribution(graph, of, wrt, seed=seed, limit=limit)
    reason = no_path_reason(graph, of, wrt)
    factors = [_factors(graph, p.nodes) for p in report.paths]
    if format == "latex":
        return _explain_latex(report, reason, factors)
    return _explain_plain(report, reason, factors, md=format == "markdown")


def _local(fs: list[Factor], name: Any) -> str:
    """The local derivatives of one path, each with its op (and positions when several)."""
    return " · ".join(f"∂{name(v)}/∂{name(u)} ({name(op)}{f' ×{n}' if n > 1 else ''})" for v, u, op, n in fs)


def _explain_plain(report: PathReport, reason: str | None, factors: list[list[Factor]], md: bool) -> str:
    """As text, or with ``md`` as Markdown (names escaped, the paths in a table)."""
    name, bold = (markdown_text, "**") if md else (one_line, "")
    of, wrt = name(report.of), name(report.wrt)
    lhs = f"∂{of}/∂{wrt}"
    if reason is not None:
        return f"{bold}{lhs} = 0{bold}: {name(reason)}"
    if not factors[0]:
        return f"{bold}{lhs}{bold} = {describe_value(report.total)}: the seed (a node with respect to itself)"
    products = ["·".join(f"∂{name(v)}/∂{name(u)}" for v, u, _, _ in fs) for fs in factors]
    more = _paths_word(report.count - len(factors), more=True)
    intro = (f"sum over the {_paths_word(report.count)} from {wrt} to {of}, "
             "each a product of local derivatives")
    rows = [(k, " → ".join(map(name, p.nodes)), _local(fs, name), describe_value(p.value))
            for k, (p, fs) in enumerate(zip(report.paths, factors), 1)]
    total = describe_value(report.total)
    if md:
        lines = [f"**{lhs}** = " + " + ".join(products) + (f" + … ({more})" if report.capped else ""), "",
                 f"A {intro}:", "", "| # | path | local derivatives | contribution |", "|---:|---|---|---|"]
        lines += [f"| {k} | {path} | {local} | {value} |" for k, path, local, value in rows]
        return "\n".join(lines + ["", f"Total {lhs}: {total}."])
    pad = " " * width(lhs)
    lines = [f"{lhs} = " + f"\n{pad} + ".join(products)]
    if report.capped:
        lines.append(f"{pad} + … ({more}, not written out)")
    lines.append(f"a {intro} (op in brackets):")
    for k, path, local, value in rows:
        lines += [f"  {k}. {path}", f"     {local}", f"     contributes {value}"]
    return "\n".join(lines + [f"  total {lhs}: {total}"])


def _tex_amount(a: np.ndarray) -> str:
    """A scalar's value, else ‖a‖, as a TeX number (with a power of ten outside [0.001, 10⁴))."""
    x, shown = (float(a.ravel()[0]), "") if a.size == 1 else (norm(a), "\\|\\cdot\\| = ")
    if not np.isfinite(x):
        return shown + tex_text(str(x))
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{shown}{x:.6g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{shown}{mantissa} \\times 10^{{{int(exponent)}}}"


def _tex_partial(v: str, u: str) -> str:
    return f"\\frac{{\\partial {tex_text(v)}}}{{\\partial {tex_text(u)}}}"


def _explain_latex(report: PathReport, reason: str | None, factors: list[list[Factor]]) -> str:
    lhs = _tex_partial(report.of, report.wrt)
    if reason is not None:
        return f"{lhs} = 0 \\quad {tex_text('(' + reason + ')')}"
    if not factors[0]:
        return f"{lhs} = {_tex_amount(report.total)}"
    lines = []
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        fractions = [_tex_partial(v, u) for v, u, _, _ in fs]
        # a long product goes on several lines, so a deep network's path fits a page or a slide
        rows = [" \\cdot ".join(fractions[i:i + TEX_FACTORS_PER_LINE])
                for i in range(0, len(fractions), TEX_FACTORS_PER_LINE)]
        head = f"{lhs} &= " if k == 1 else "&\\quad + "
        lines += [head + rows[0]] + [f"&\\qquad \\cdot {row}" for row in rows[1:]]
        lines[-1] += f" && {tex_text(f'path {k}:')}\\ {_tex_amount(p.value)}"
    if report.capped:
        lines.append(f"&\\quad + \\cdots && {tex_text(_paths_word(report.count - len(factors), more=True))}")
    lines.append(f"& && {tex_text('total:')}\\ {_tex_amount(report.total)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"
