"""The chain rule for one pair: ∂OF/∂WRT split over its paths, and written out as text,
Markdown or LaTeX."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..autodiff import gradients, seed_for
from ..errors import GraphError
from ..text import markdown_text, one_line, table, tex_text, width
from .paths import count_paths, no_path_reason, walk
from .reports import describe_value, norm, readonly, sci, with_values

if TYPE_CHECKING:
    from ..graph import Graph, Ref

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
    """∂OF/∂WRT split over the paths from WRT to OF.

    ``count`` is the exact number of paths; ``paths`` the first ``limit`` of them, so
    ``capped`` says whether they add up to ``total`` (zeros in WRT's shape with no path).
    """

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
    """Split ∂OF/∂WRT into the contribution of each path from WRT to OF.

    A path's contribution carries the seed at OF back to WRT through the local VJP of each of
    its edges.  At most ``limit`` paths are enumerated (None: all); ``count`` is exact.
    """
    of_id, wrt_id = graph.id_of(of), graph.id_of(wrt)
    on = graph.between(of_id, wrt_id)
    of_name, wrt_name = graph.name_of(of_id), graph.name_of(wrt_id)
    if not on:  # structurally zero: no seed needed
        zero = readonly(np.zeros(graph.nodes[wrt_id]["value"].shape))
        return PathReport(of_name, wrt_name, zero, (), 0, limit)
    start = seed_for(graph, of_id, seed)
    total = gradients(graph, of_id, start, inputs=True, within=on)[wrt_id]
    found = tuple(PathContribution(tuple(graph.name_of(i) for i in ids), readonly(value))
                  for ids, value in itertools.islice(walk(graph, of_id, wrt_id, on, start), limit))
    return PathReport(of_name, wrt_name, readonly(total), found, count_paths(graph, of_id, wrt_id), limit)


def _paths_word(n: int, more: bool = False) -> str:
    """'1 path', '3 paths'; with ``more``: '1 more path', '3 more paths'."""
    return f"{n}{' more' if more else ''} path" + ("" if n == 1 else "s")


Factor = tuple[str, str, str, int]  # numerator, denominator, op, positions


def _factors(graph: Graph, ids: Sequence[int]) -> list[Factor]:
    """Local factors of a path, from OF down to WRT."""
    out = []
    for k in range(len(ids) - 1, 0, -1):
        user, operand = graph.nodes[ids[k]], ids[k - 1]
        out.append((user["name"], graph.name_of(operand), user["op"], user["operands"].count(operand)))
    return out


def explain(graph: Graph, of: Ref, wrt: Ref, *, format: str = "text", seed: Any = None,  # noqa: A002
            limit: int = 20) -> str:
    """The chain rule for ∂OF/∂WRT as a sum over paths of products of local derivatives.

    ``format``: ``"text"``, ``"markdown"`` or ``"latex"`` (an amsmath ``aligned`` block).  Each
    of at most ``limit`` paths is written with its contribution; with no path, one sentence
    says why: "∂L2/∂A2 = 0: L2 does not depend on A2; its inputs are W1, W2, W3."
    """
    writers = {"text": _explain_text, "markdown": _explain_markdown, "latex": _explain_latex}
    if format not in writers:
        raise GraphError(f"format must be 'text', 'markdown' or 'latex', got {format!r}")
    if limit < 1:
        raise GraphError(f"limit must be at least 1, got {limit}")
    report = path_attribution(graph, of, wrt, seed=seed, limit=limit)
    factors = [_factors(graph, [graph.id_of(n) for n in p.nodes]) for p in report.paths]
    return writers[format](report, no_path_reason(graph, of, wrt), factors)


def _local(fs: list[Factor], name: Any) -> str:
    """The local derivatives of one path, each with its op (and positions when several)."""
    return " · ".join(f"∂{name(v)}/∂{name(u)} ({name(op)}{f' ×{n}' if n > 1 else ''})"
                      for v, u, op, n in fs)


def _explain_text(report: PathReport, reason: str | None, factors: list[list[Factor]]) -> str:
    of, wrt = one_line(report.of), one_line(report.wrt)
    lhs = f"∂{of}/∂{wrt}"
    if reason is not None:
        return f"{lhs} = 0: {one_line(reason)}"
    if not factors[0]:
        return f"{lhs} = {describe_value(report.total)}: the seed (a node with respect to itself)"
    products = ["·".join(f"∂{one_line(v)}/∂{one_line(u)}" for v, u, _, _ in fs) for fs in factors]
    pad = " " * width(lhs)
    lines = [f"{lhs} = " + f"\n{pad} + ".join(products)]
    if report.capped:
        lines.append(f"{pad} + … ({_paths_word(report.count - len(factors), more=True)}, not written out)")
    lines.append(f"a sum over the {_paths_word(report.count)} from {wrt} to {of}, "
                 "each a product of local derivatives (op in brackets):")
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        lines += [f"  {k}. {' → '.join(map(one_line, p.nodes))}", f"     {_local(fs, one_line)}",
                  f"     contributes {describe_value(p.value)}"]
    lines.append(f"  total {lhs}: {describe_value(report.total)}")
    return "\n".join(lines)


def _explain_markdown(report: PathReport, reason: str | None, factors: list[list[Factor]]) -> str:
    md = markdown_text
    of, wrt = md(report.of), md(report.wrt)
    lhs = f"∂{of}/∂{wrt}"
    if reason is not None:
        return f"**{lhs} = 0**: {md(reason)}"
    if not factors[0]:
        return f"**{lhs}** = {describe_value(report.total)}: the seed (a node with respect to itself)"
    products = ["·".join(f"∂{md(v)}/∂{md(u)}" for v, u, _, _ in fs) for fs in factors]
    more = f" + … ({_paths_word(report.count - len(factors), more=True)})" if report.capped else ""
    lines = [f"**{lhs}** = " + " + ".join(products) + more, "",
             f"A sum over the {_paths_word(report.count)} from {wrt} to {of}, each a product of local derivatives:",
             "", "| # | path | local derivatives | contribution |", "|---:|---|---|---|"]
    for k, (p, fs) in enumerate(zip(report.paths, factors), 1):
        path = " → ".join(md(n) for n in p.nodes)
        lines.append(f"| {k} | {path} | {_local(fs, md)} | {describe_value(p.value)} |")
    lines += ["", f"Total {lhs}: {describe_value(report.total)}."]
    return "\n".join(lines)


def _tex_number(x: float) -> str:
    if not np.isfinite(x):
        return tex_text(str(x))
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.6g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{mantissa} \\times 10^{{{int(exponent)}}}"


def _tex_amount(a: np.ndarray) -> str:
    return _tex_number(float(a.ravel()[0])) if a.size == 1 else f"\\|\\cdot\\| = {_tex_number(norm(a))}"


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
