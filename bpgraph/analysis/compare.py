"""A hand-written backward pass against the graph's (:func:`compare_grads`): where an error enters,
and which usual mistake it looks like."""

from __future__ import annotations

import difflib
import functools
import os
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from .. import notation
from ..autodiff import gradients
from ..errors import GraphError, UnknownNodeError
from ..files import read_npz
from ..graph import Graph, Ref
from ..text import one_line, table
from .explain import backward_steps
from .paths import find_path
from .reports import array_json, by_name, json_ready, norm, readonly, sci
from .terms import cost_terms, term_attribution, term_reach

OK, WRONG, WRONG_SHAPE, NOT_GIVEN = "ok", "wrong", "wrong shape", "not given"
MISSING_TERM, EXTRA_TERM, TRANSPOSED, SCALED, UNRECOGNISED = (
    "missing_term", "extra_term", "transposed", "scaled", "unrecognised")


class Diagnosis(NamedTuple):
    """What a wrong gradient looks like: a ``pattern``, one plain sentence, and the ``term`` or ``factor``."""

    pattern: str
    detail: str
    term: str | None = None
    factor: float | None = None


@dataclass(frozen=True, eq=False)
class GradCheckRow:
    """One node: the user's gradient against the correct one (in the convention read)."""

    name: str
    key: str | None          # the user's key for it ("dW1"), None when not given
    layer: str               # the first part of the node's scope ("layer1"), or ""
    status: str              # ok | wrong | wrong shape | not given
    max_abs_error: float | None
    rel_error: float | None  # max_abs_error / max|correct|; None when the correct one is all 0
    diagnosis: Diagnosis | None
    expected: np.ndarray
    given: np.ndarray | None

    @property
    def difference(self) -> np.ndarray | None:  # yours − correct, when of one shape
        with np.errstate(all="ignore"):
            same = getattr(self.given, "shape", None) == self.expected.shape
            return self.given - self.expected if same else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "layer": self.layer, "status": self.status,
                "shape": list(self.expected.shape), "given_shape": None if self.given is None else
                list(self.given.shape), "max_abs_error": self.max_abs_error, "rel_error": self.rel_error,
                "norms": dict(zip(("yours", "correct", "difference"), map(norm, self.arrays))),
                "diagnosis": self.diagnosis and self.diagnosis._asdict(),
                "hint": getattr(self.diagnosis, "detail", "")}  # the diagnosis in a sentence

    @property
    def arrays(self) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        return self.given, self.expected, self.difference


@dataclass(frozen=True, eq=False)
class EntryPoint:
    """A wrong gradient whose ``consumers`` (the nearest given toward the root) are right; ``symptoms``
    are wrong because of it; ``formula`` is its correct line."""

    row: GradCheckRow
    consumers: tuple[str, ...]
    symptoms: tuple[str, ...]
    formula: str  # "dA2 = W3ᵀ·dZ3", or "" when there is no one line for it

    def to_dict(self) -> dict[str, Any]:
        r, arrays = self.row, zip(("given", "expected", "difference"), self.row.arrays)
        return {"name": r.name, "key": r.key, "consumers": list(self.consumers),
                "symptoms": list(self.symptoms), "diagnosis": r.diagnosis._asdict(), "formula": self.formula,
                "explanation": self.formula,  # the same, under the key readers of this JSON know
                **{k: None if v is None else array_json(v) for k, v in arrays}}


@dataclass(frozen=True, eq=False)
class GradComparison:
    """A status per node, where the errors enter, and the keys ignored because they name no node."""

    root: str
    convention: str  # "exact" or "course"
    m: int | None
    rtol: float
    atol: float
    rows: tuple[GradCheckRow, ...]
    entries: tuple[EntryPoint, ...]
    notes: tuple[str, ...]
    ignored: tuple[str, ...] = ()

    @property
    def first_wrong(self) -> list[str]:
        return [e.row.name for e in self.entries]

    @property
    def wrong(self) -> list[str]:
        return [r.name for r in self.rows if r.status in (WRONG, WRONG_SHAPE)]

    @property
    def ok(self) -> bool:
        return not self.wrong

    def row(self, name: str) -> GradCheckRow:
        return by_name(self.rows, name)

    def to_dict(self) -> dict[str, Any]:
        return json_ready({"root": self.root, "convention": self.convention, "m": self.m, "rtol": self.rtol,
                           "atol": self.atol, "ok": self.ok, "first_wrong": self.first_wrong,
                           "wrong": self.wrong, "rows": [r.to_dict() for r in self.rows],
                           "entries": [e.to_dict() for e in self.entries], "notes": list(self.notes),
                           "ignored": list(self.ignored)})

    def __str__(self) -> str:
        root, key = one_line(self.root), lambda r: one_line(r.key or f"d{r.name}")  # noqa: E731
        rows = [[key(r), one_line(r.layer) or "-", r.status, *map(sci, map(norm, r.arrays))]
                for r in self.rows]
        head = ["gradient", "layer", "status", "‖yours‖", "‖correct‖", "‖yours − correct‖"]
        lines = [f"your gradients of {root} against the correct ones, in the {self.convention} convention",
                 table(head, rows), "",
                 f"course convention (m = {self.m}): dZ, dA are m·∂{root}/∂Z, m·∂{root}/∂A; dW, db are "
                 f"∂{root}/∂W, ∂{root}/∂b." if self.m else f"exact convention: dX is ∂{root}/∂X for every X.",
                 f"a gradient is ok when max|yours − correct| ≤ {self.atol:g} + {self.rtol:g}·max|correct|.",
                 *self.notes] + ["every gradient you gave is correct."] * self.ok
        for e in self.entries:
            r, right = e.row, ", ".join(key(self.row(c)) for c in e.consumers)
            head = f"the error enters at {key(r)} ({one_line(r.name)}):"  # then its diagnosis, wrapped
            body = textwrap.wrap(r.diagnosis.detail + ".", 100, initial_indent=" " * (len(head) + 1),
                                 subsequent_indent="  ", break_long_words=False)
            lines += [head + body[0][len(head):], *body[1:]]
            lines += [f"  correct: {e.formula}" + f"  (from your {right}, which you have right)" * bool(right)
                      ] * bool(e.formula)
            lines += [f"  {label}: " + np.array2string(a, precision=4, separator=", ").replace("\n", "")
                      for label, a in zip(("your value", "correct value", "difference"), r.arrays)
                      if a is not None and a.size <= 8]
            keys = ", ".join(key(self.row(n)) for n in e.symptoms)
            lines += [f"  computed from it and wrong as a result: {keys}"] * bool(keys)
        return "\n".join(lines)


def _suggest(key: str, known: list[str]) -> list[str]:
    """Up to three names close to ``key``, those close when case is ignored first."""
    lower = {k.lower(): k for k in known}
    close = [lower[c] for c in difflib.get_close_matches(key.lower(), list(lower), n=3, cutoff=0.5)]
    return (close + [c for c in difflib.get_close_matches(key, known, n=3, cutoff=0.5) if c not in close])[:3]


def _user_grads(graph: Graph, source: Mapping[str, Any] | str | os.PathLike
                ) -> tuple[dict[int, tuple[str, np.ndarray]], list[str]]:
    """Node id -> (key, array) from a dict or an .npz, and the keys that name no node: ``dW1``, ``W1``
    and, when no name matches exactly, ``dw1`` and ``w1`` name W1."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:  # .npz and .npy files begin so
                start = handle.read(6)
        except OSError as exc:
            raise GraphError(f"cannot read gradients from {path!r}: {exc}; "
                             "pass a dict or an .npz written by numpy.savez") from None
        if not start.startswith(b"PK\x03\x04"):
            what = "holds one array, not named gradients" if start == b"\x93NUMPY" else "is not an .npz file"
            raise GraphError(f"{path!r} {what}: save your gradients with numpy.savez(path, dW1=..., db1=...) "
                             "and pass that file")
        source = read_npz(path)  # bounded: no pickles, sizes checked before anything is inflated
    if not isinstance(source, Mapping):
        raise GraphError(f"user_grads must be a dict of name -> array or a path to an .npz, "
                         f"got {type(source).__name__}")
    by_lower: dict[str, list[str]] = {}
    for n in graph.names:
        by_lower.setdefault(n.lower(), []).append(n)
    out: dict[int, tuple[str, np.ndarray]] = {}
    ignored = []
    for key, value in source.items():
        key, arr = str(key), np.asarray(value)
        low = key.lower()
        name = key if key in graph else key[1:] if key[:1] == "d" and key[1:] in graph else None
        found = [name] if name else by_lower.get(low) or by_lower.get(low[1:] if low[:1] == "d" else "") or []
        if len(found) > 1:
            raise GraphError(f"gradient {key!r} could name {' or '.join(map(repr, found))}: write the case")
        if not found:
            ignored.append(key)
        elif not np.issubdtype(arr.dtype, np.number):
            raise GraphError(f"gradient {key!r} must be numeric, got dtype {arr.dtype}")
        elif (node_id := graph.id_of(found[0])) in out:
            raise GraphError(f"gradients {out[node_id][0]!r} and {key!r} both name node {found[0]!r}; "
                             "give it once")
        else:
            out[node_id] = (key, arr)
    if ignored and not out:  # nothing to compare: the keys are probably not gradients of this graph
        known = [f"d{n}" for n in graph.names] if ignored[0][:1] in "dD" else graph.names
        error, close = UnknownNodeError(ignored[0], known), _suggest(ignored[0], known)
        error.suggestions, hint = close, f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        error.args = (f"no node named {ignored[0]!r}{hint} (gradients are named after nodes: dW1 or W1)",)
        raise error
    return out, ignored


def _close(given: np.ndarray, expected: np.ndarray, rtol: float,
           atol: float) -> tuple[bool, float, float | None]:
    """(ok, max abs error, relative error) for two arrays of one shape; NaN is never ok."""
    with np.errstate(all="ignore"):
        max_abs = float(np.max(np.abs(given - expected), initial=0.0))
        scale = float(np.max(np.abs(expected), initial=0.0))
    return bool(max_abs <= atol + rtol * scale), max_abs, (max_abs / scale if scale else None)


def compare_grads(graph: Graph, root: Ref | None, user_grads: Mapping[str, Any] | str | os.PathLike, *,
                  convention: str = "auto", m: int | None = None, rtol: float = 1e-7,
                  atol: float = 1e-12, seed: Any = None) -> GradComparison:
    """Check a hand-written backward pass (a dict or ``.npz`` keyed ``dW1`` or ``W1``) against the graph's:
    ok when max|yours − correct| <= atol + rtol·max|correct|.  ``course`` expects m·∂root/∂node for ops
    (m from ``m=`` or graph.meta), ``exact`` ∂root/∂node, ``auto`` whichever matches more."""
    if convention not in ("auto", "exact", "course"):
        raise GraphError(f"convention must be 'auto', 'exact' or 'course', got {convention!r}")
    if not (0 <= rtol < 1 and 0 <= atol < np.inf):
        raise GraphError(f"tolerances must be finite and at least 0, and rtol below 1 (from 1 on, zeros pass "
                         f"for any gradient); got rtol={rtol}, atol={atol}")
    root_id, nodes = graph.root_id(root), graph.nodes
    given, ignored = _user_grads(graph, user_grads)
    exact = gradients(graph, root_id, seed, inputs=True)
    m = None if m is None and graph.meta.get("m") is None else int(graph.meta["m"] if m is None else m)
    if convention == "course" and m is None:
        raise GraphError("the course convention needs m, the number of examples: pass m=... "
                         "(graph.meta has no 'm')")

    def reference(node_id: int, conv: str) -> np.ndarray:  # zeros where the root does not depend on it
        value = exact[node_id] if node_id in exact else np.zeros(nodes[node_id]["value"].shape)
        return m * value if conv == "course" and nodes[node_id]["kind"] == "op" else value

    largest = max((float(np.max(np.abs(reference(i, "exact")), initial=0)) for i in given), default=0.0)
    if 0 < largest <= atol and atol > 1e-12:  # never refuse the default
        raise GraphError(f"atol={atol:g} is at least the largest correct value given ({largest:.3g}), so all "
                         "zeros would pass; use a smaller atol")
    near = [_suggest(k, [f"d{n}" for n in graph.names])[:1] for k in ignored]
    notes = [", ".join(k + "".join(f" (did you mean {c}?)" for c in n) for k, n in zip(ignored, near))
             + ": ignored, as no gradient of this graph has that name"] * bool(ignored)
    if convention == "auto" and m is None:
        convention = "exact"
        notes.append("course convention not tried: m is unknown (pass m=...)")
    elif convention == "auto":
        score = {c: sum(_close(arr, reference(i, c), rtol, atol)[0] for i, (_, arr) in given.items()
                        if arr.shape == nodes[i]["value"].shape) for c in ("exact", "course")}
        convention = "course" if score["course"] > score["exact"] else "exact"
    course_m, real = m if convention == "course" else None, not any(map(np.iscomplexobj, exact.values()))
    term_rows = functools.cache(lambda: {r.name: r for r in term_attribution(graph, root_id, seed=seed,
                                                                             inputs=True).rows})
    rows: dict[int, GradCheckRow] = {}
    wanted = {i for i in exact if nodes[i]["requires_grad"] and i != root_id} | set(given)
    for i in sorted(wanted, reverse=True):
        expected, (key, arr) = readonly(reference(i, convention)), given.get(i, (None, None))
        status, max_abs, rel, diagnosis = NOT_GIVEN if arr is None else WRONG_SHAPE, None, None, None
        if arr is not None and arr.shape == expected.shape:
            ok, max_abs, rel = _close(arr, expected, rtol, atol)
            status = OK if ok and not (real and np.iscomplexobj(arr)) else WRONG
        if status in (WRONG, WRONG_SHAPE):
            diagnosis = _diagnose(graph, root_id, i, key, arr, expected, term_rows, m, course_m,
                                  lambda a, b: _close(a, b, max(rtol, 1e-6), atol)[0])
        rows[i] = GradCheckRow(nodes[i]["name"], key, nodes[i]["scope"].split("/")[0], status, max_abs, rel,
                               diagnosis, expected, arr)
    return GradComparison(nodes[root_id]["name"], convention, course_m, rtol, atol, tuple(rows.values()),
                          _entry_points(graph, root_id, rows, course_m), tuple(notes), tuple(ignored))


def _diagnose(graph: Graph, root_id: int, i: int, key: str, given: np.ndarray, expected: np.ndarray,
              term_rows: Callable[[], dict[str, Any]], m: int | None, course_m: int | None,
              close: Callable[[np.ndarray, np.ndarray], bool]) -> Diagnosis:
    """The usual mistake a wrong gradient looks like: complex or non-finite values, a transpose, a
    factor, a cost term's share missing or twice, a term that cannot be there."""
    name, key, op = graph.name_of(i), one_line(key), graph.nodes[i]["kind"] == "op"
    if np.iscomplexobj(given) and not np.iscomplexobj(expected):
        return Diagnosis(UNRECOGNISED, f"your {key} holds complex numbers, but this graph is real")
    if given.ndim == 2 and given.shape == expected.shape[::-1] and close(given.T, expected):
        return Diagnosis(TRANSPOSED, f"your {key} is the transpose of the correct one")
    if given.shape != expected.shape:
        same = given.size == expected.size and close(given.reshape(expected.shape), expected)
        return Diagnosis(UNRECOGNISED, f"your {key} has shape {given.shape}, the correct one {expected.shape}"
                         + "; the values are right once reshaped" * same)
    if not np.isfinite(given).all():
        where = tuple(int(k) for k in np.argwhere(~np.isfinite(given))[0])
        return Diagnosis(UNRECOGNISED, f"your {key} holds NaN or infinity (first at index {where})")
    diff, size = given - expected, np.vdot(expected, expected).real
    factor = np.vdot(expected, given).real / size if size else 0.0
    if factor and abs(factor - 1) > 1e-6 and close(given, factor * expected):
        named = {**({m: "m", 1 / m: "1/m", -m: "−m", -1 / m: "−1/m"} if m else {}), -1: "−1", 2: "2", .5: "½"}
        value, word = next(((v, w) for v, w in named.items() if abs(factor - v) <= 1e-6 * abs(v)),
                           (factor, f"{factor:.4g}"))
        other = {"1/m": f"exact convention (∂{one_line(graph.name_of(root_id))}/∂{one_line(name)})",
                 "m": "course's convention"}.get(word) if op and (word == "1/m") == bool(course_m) else None
        why = "; the sign is flipped" if value == -1 else f"; it matches the {other} instead" if other else ""
        word += f" (= {value:.4g})" * ("m" in word)
        return Diagnosis(SCALED, f"your {key} is {word} times the correct one{why}", factor=float(value))
    row = term_rows().get(name)
    cells = [c for c in getattr(row, "cells", ()) if c.value is not None and np.any(c.value)]
    for cell in cells:  # yours − correct is minus a term's share (it is missing) or the share again
        for sign, pattern, verb in ((-1, MISSING_TERM, "lacks"), (1, EXTRA_TERM, "counts twice")):
            if close(sign * diff, cell.value * (m if course_m and op else 1)):
                text = f"your {key} {verb} the {one_line(cell.term)} cost term's share"
                return Diagnosis(pattern, text + _share_text(graph, root_id, i, cell.term, course_m), cell.term)
    for t in (t for t in cost_terms(graph, root_id) if i not in graph.ancestors(t)):
        like, term = np.any(expected) and _term_like(graph, t, diff, close), one_line(graph.name_of(t))
        why = f"{term} does not depend on {one_line(name)}, so no {term} term belongs in {key}"
        if like or not np.any(expected):
            why = f"yours − correct = {like}, which looks like a term of {term}, but {why}" if like else (
                f"{why}: the correct {key} is 0")
            return Diagnosis(EXTRA_TERM, why, graph.name_of(t))
    where = np.unravel_index(np.argmax(np.abs(diff)), diff.shape)
    return Diagnosis(UNRECOGNISED, f"yours − correct has norm {norm(diff):.3e} and is largest at index "
                     f"{tuple(map(int, where))} ({diff[where]:+.3g}); not a usual mistake (a cost term "
                     "missing or extra, a transpose, a factor)")


def _share_text(graph: Graph, root_id: int, i: int, term: str, course_m: int | None) -> str:
    """The share's formula and, when the term reads the node, its short path."""
    if term not in graph:
        return ""
    reach, t = term_reach(graph, root_id), graph.id_of(term)
    steps = backward_steps(graph, root_id, graph.between(root_id, i), course=course_m is not None, only=i)
    parts = [text for step in steps for u, text in step.parts
             if reach.names(graph, reach.mask(i, u)) == (term,)]
    path = [graph.name_of(i), *find_path(graph, root_id, t)] if t in graph.successors(i) else []
    return f" {' + '.join(parts)}" * bool(parts) + (
        f", which arrives by the short path {' → '.join(map(one_line, path))}" if path else "")


def _term_like(graph: Graph, term: int, diff: np.ndarray, close: Callable[[np.ndarray, np.ndarray], bool]
               ) -> str | None:
    """``diff`` as c·W, c·W·Q or c·Wᵀ·Q for a weight W the term reads and a node (or ones) Q, if it is."""
    nodes, params = graph.nodes, graph.nodes[term]["params"]
    for w in dict.fromkeys(nodes[term]["operands"]):
        W, label = nodes[w]["value"], one_line(nodes[w]["name"])
        found = [(label, W)]
        for mark, M in (("", W), ("ᵀ", W.T)) if W.ndim == 2 == diff.ndim and diff.shape[0] in W.shape else ():
            inner = (M.shape[1], diff.shape[1])
            found += [(f"{label}{mark}·{one_line(a['name'])}", M @ a["value"]) for a in nodes.values()
                      if a["value"].shape == inner] + [(f"{label}{mark}·1", M @ np.ones(inner))]
        for text, V in found:
            size = np.vdot(V, V).real if V.shape == diff.shape else 0
            c = np.vdot(V, diff).real / size if size else 0.0
            if c and close(diff, c * V):
                per_m = params.get("lambd", 0) / params.get("m", 1)
                return ("λ/m" if per_m and abs(c - per_m) <= 1e-9 * abs(per_m) else f"{c:.4g}") + f"·{text}"
    return None


def _entry_points(graph: Graph, root_id: int, rows: Mapping[int, GradCheckRow],
                  course_m: int | None) -> tuple[EntryPoint, ...]:
    """The wrong given gradients whose nearest given consumers (toward the root) are all ok."""
    checked = {i for i, r in rows.items() if r.status != NOT_GIVEN}
    wrong = {i for i in checked if rows[i].status in (WRONG, WRONG_SHAPE)}
    entries = []
    for i in sorted(wrong, reverse=True):
        reached, nearest, on = {i}, set(), graph.between(root_id, i)  # up the ids, through the ones not given
        for j in sorted(on - {i}):
            if not reached.isdisjoint(graph.nodes[j]["operands"]):
                (nearest if j in checked else reached).add(j)
        if nearest & wrong:
            continue
        name, step = graph.name_of(i), backward_steps(graph, root_id, on, course=course_m is not None, only=i)
        lhs = notation.gradient(graph.name_of(root_id), name, "text", f"d{name}" if course_m else None)
        symptoms = sorted((graph.ancestors(i) - {i}) & wrong, reverse=True)
        entries.append(EntryPoint(rows[i], tuple(rows[c].name for c in sorted(nearest, reverse=True)),
                                  tuple(rows[s].name for s in symptoms),
                                  str(step[0]) if step and step[0].parts else "" if on else f"{lhs} = 0"))
    return tuple(entries)
