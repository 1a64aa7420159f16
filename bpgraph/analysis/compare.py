"""Comparing gradients: two graphs' (:func:`diff_grads`), or a hand-written backward pass
against the graph's (:func:`compare_grads`), with the node where its error enters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..autodiff import gradients
from ..errors import GraphError, UnknownNodeError
from ..graph import Graph, Ref
from ..ops import OPS
from ..text import one_line, table
from .explain import explain
from .reports import array_json, by_name, describe_value, finite, norm, readonly, sci, with_values

OK, WRONG, WRONG_SHAPE, NOT_GIVEN = "ok", "wrong", "wrong shape", "not given"


@dataclass(frozen=True, eq=False)
class DiffRow:
    """How one node's gradient differs between graph a and graph b (``delta`` = a − b)."""

    name: str
    status: str  # "changed" | "unchanged" | "shape differs" | "only in <label>"
    shape: tuple[int, ...]
    norm: float
    max_abs: float
    delta: np.ndarray | None

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return with_values({"name": self.name, "status": self.status, "shape": list(self.shape),
                            "norm": self.norm, "max_abs": self.max_abs}, values, "delta", self.delta)


@dataclass(frozen=True, eq=False)
class GradDiff:
    """Per node, whether ∂root/∂node changed from graph b to graph a, and by how much."""

    root: str
    labels: tuple[str, str]
    atol: float
    rows: tuple[DiffRow, ...]

    @property
    def changed(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "changed"]

    @property
    def unchanged(self) -> list[str]:
        return [r.name for r in self.rows if r.status == "unchanged"]

    def row(self, name: str) -> DiffRow:
        return by_name(self.rows, name)

    def to_dict(self, values: bool = False) -> dict[str, Any]:
        return {"root": self.root, "labels": list(self.labels), "atol": self.atol,
                "changed": self.changed, "rows": [r.to_dict(values) for r in self.rows]}

    def __str__(self) -> str:
        a, b = map(one_line, self.labels)
        rows = [[f"d{r.name}", str(r.shape), r.status, sci(r.norm), sci(r.max_abs)] for r in self.rows]
        return (f"∂{one_line(self.root)}/∂node: {a} − {b}\n"
                + table(["gradient", "shape", "status", "‖change‖", "max |change|"], rows))


def diff_grads(a: Graph, b: Graph, root: str | None = None, *, inputs: bool = False,
               atol: float = 0.0, labels: tuple[str, str] = ("a", "b")) -> GradDiff:
    """Compare the gradients of ``root`` (default: a's last node) in two graphs whose nodes share
    names; a gradient ``changed`` when max|a − b| > ``atol``.  Rows in a's backward order."""
    root_name = a.name_of(a.root_id(root))

    def named_grads(graph: Graph) -> dict[str, np.ndarray]:  # in backward order
        grads = gradients(graph, graph.id_of(root_name), inputs=inputs)
        return {graph.name_of(i): grads[i] for i in sorted(grads, reverse=True)}

    ga, gb = named_grads(a), named_grads(b)
    rows = []
    for name in [*ga, *(n for n in gb if n not in ga)]:
        x, y = ga.get(name), gb.get(name)
        if x is None or y is None:
            only = labels[0] if y is None else labels[1]
            rows.append(DiffRow(name, f"only in {only}", (x if y is None else y).shape, 0.0, 0.0, None))
        elif x.shape != y.shape:
            rows.append(DiffRow(name, "shape differs", x.shape, 0.0, 0.0, None))
        else:
            delta = readonly(np.asarray(x - y))
            max_abs = float(np.max(np.abs(delta), initial=0.0))
            status = "changed" if max_abs > atol or np.isnan(max_abs) else "unchanged"
            rows.append(DiffRow(name, status, x.shape, norm(delta), max_abs, delta))
    return GradDiff(root_name, tuple(labels), atol, tuple(rows))


@dataclass(frozen=True, eq=False)
class GradCheckRow:
    """One node: the user's gradient against the correct one (in the convention read)."""

    name: str
    key: str | None          # the user's key for it ("dW1"), None when not given
    status: str              # ok | wrong | wrong shape | not given
    shape: tuple[int, ...]
    given_shape: tuple[int, ...] | None
    max_abs_error: float | None
    rel_error: float | None  # max_abs_error / max|correct|; None when the correct one is all 0
    hint: str
    expected: np.ndarray
    given: np.ndarray | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "status": self.status, "shape": list(self.shape),
                "given_shape": None if self.given_shape is None else list(self.given_shape),
                "max_abs_error": finite(self.max_abs_error), "rel_error": finite(self.rel_error),
                "hint": self.hint}


@dataclass(frozen=True, eq=False)
class EntryPoint:
    """A wrong gradient whose nearest checked consumers are all correct: where an error enters."""

    name: str
    key: str
    consumers: tuple[str, ...]  # its nearest checked consumers (all ok)
    symptoms: tuple[str, ...]   # wrong nodes whose gradient is computed from it (its wrong ancestors)
    expected: np.ndarray
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "consumers": list(self.consumers),
                "symptoms": list(self.symptoms), "expected": array_json(self.expected),
                "explanation": self.explanation}


@dataclass(frozen=True, eq=False)
class GradComparison:
    """The result of :func:`compare_grads`: a status per node and where the errors enter."""

    root: str
    convention: str  # "exact" or "course"
    m: int | None
    rtol: float
    atol: float
    rows: tuple[GradCheckRow, ...]
    entries: tuple[EntryPoint, ...]
    notes: tuple[str, ...]

    @property
    def first_wrong(self) -> list[str]:
        """Names of the entry points (empty when every given gradient is correct)."""
        return [e.name for e in self.entries]

    @property
    def wrong(self) -> list[str]:
        return [r.name for r in self.rows if r.status in (WRONG, WRONG_SHAPE)]

    @property
    def ok(self) -> bool:
        return not self.wrong

    def row(self, name: str) -> GradCheckRow:
        return by_name(self.rows, name)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "convention": self.convention, "m": self.m, "rtol": self.rtol,
                "atol": self.atol, "ok": self.ok, "first_wrong": self.first_wrong, "wrong": self.wrong,
                "rows": [r.to_dict() for r in self.rows], "entries": [e.to_dict() for e in self.entries],
                "notes": list(self.notes)}

    def __str__(self) -> str:
        rows = [[r.name, r.key or "-", r.status, sci(r.max_abs_error), sci(r.rel_error), r.hint]
                for r in self.rows]
        root = one_line(self.root)
        read = (f"course convention (op nodes: d = m·∂J/∂node with m = {self.m}; leaves exact)"
                if self.convention == "course" else "exact convention (d = ∂J/∂node for every node)")
        lines = [f"your gradients of {root}, read in the {read}; "
                 f"ok when max|yours − correct| <= {self.atol:g} + {self.rtol:g}·max|correct|",
                 table(["node", "your key", "status", "max abs err", "rel err", "hint"], rows), "",
                 *self.notes]
        if self.ok:
            lines.append("every gradient you gave is correct.")
        for e in self.entries:
            key, name = one_line(e.key), one_line(e.name)
            consumers = ", ".join(map(one_line, e.consumers))
            consumers = (f"its nearest checked consumers ({consumers}) are correct" if e.consumers
                         else f"no checked gradient lies between it and {root}")
            expected = np.array2string(e.expected, precision=4, threshold=12, edgeitems=2)
            lines += [f"the error enters at {key} ({name}): {consumers}, but {key} is wrong.",
                      f"  correct {key}, {describe_value(e.expected)}:",
                      "    " + expected.replace("\n", "\n    "), "  " + e.explanation.replace("\n", "\n  ")]
            if e.symptoms:
                keys = ", ".join(one_line(self.row(n).key or n) for n in e.symptoms)
                lines.append(f"  computed from it and wrong as a result: {keys}")
        return "\n".join(lines)


def _user_grads(graph: Graph,
                source: Mapping[str, Any] | str | os.PathLike) -> dict[int, tuple[str, np.ndarray]]:
    """Node id -> (key, array) from a dict or an .npz; ``dW1`` and ``W1`` name W1 (an exact name wins)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as handle:  # .npz and .npy files begin so
                numpy_file = handle.read(6).startswith((b"PK\x03\x04", b"\x93NUMPY"))
            data = np.load(path, allow_pickle=False) if numpy_file else None
        except (OSError, ValueError) as exc:
            raise GraphError(f"cannot read gradients from {path!r}: {exc}; "
                             "pass a dict or an .npz written by numpy.savez") from None
        if data is None:
            raise GraphError(f"{path!r} is not an .npz file: save your gradients with "
                             "numpy.savez(path, dW1=..., db1=...) and pass that file")
        if not hasattr(data, "files"):
            raise GraphError(f"{path!r} holds one array, not named gradients: "
                             "save them with numpy.savez(path, dW1=..., db1=...)")
        with data:
            source = {k: data[k] for k in data.files}
    if not isinstance(source, Mapping):
        raise GraphError(f"user_grads must be a dict of name -> array or a path to an .npz, "
                         f"got {type(source).__name__}")
    arrays = {}
    for key, value in source.items():
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number):
            raise GraphError(f"gradient {key!r} must be numeric, got dtype {arr.dtype}")
        arrays[str(key)] = arr
    out: dict[int, tuple[str, np.ndarray]] = {}
    for key, arr in arrays.items():
        name = key[1:] if key not in graph and key.startswith("d") else key
        if name not in graph:
            known = [f"d{n}" for n in graph.names] if key.startswith("d") else graph.names
            raise UnknownNodeError(key, known)
        node_id = graph.id_of(name)
        if node_id in out:
            raise GraphError(f"gradients {out[node_id][0]!r} and {key!r} both name node {name!r}; "
                             "give it once")
        out[node_id] = (key, arr)
    return out


def _close(given: np.ndarray, expected: np.ndarray, rtol: float,
           atol: float) -> tuple[bool, float, float | None]:
    """(ok, max abs error, relative error) for two arrays of one shape."""
    with np.errstate(all="ignore"):
        max_abs = float(np.max(np.abs(given.astype(np.float64) - expected), initial=0.0))
        scale = float(np.max(np.abs(expected), initial=0.0))
    ok = bool(max_abs <= atol + rtol * scale)  # False for NaN
    return ok, max_abs, (max_abs / scale if scale else None)


def _hint(given: np.ndarray, expected: np.ndarray, alt: np.ndarray | None, alt_name: str,
          rtol: float, atol: float) -> str:
    """The likely mistake behind a wrong gradient: a transpose, the ``alt`` convention, a sign."""
    if given.shape != expected.shape:
        text = f"expected shape {expected.shape}, got {given.shape}"
        if given.ndim >= 2 and given.shape == expected.shape[::-1]:
            same = _close(given.T, expected, rtol, atol)[0]
            return f"looks transposed: {text}" + ("; its transpose is correct" if same else "")
        if given.size == expected.size:
            same = _close(given.reshape(expected.shape), expected, rtol, atol)[0]
            return text + ("; the values are correct once reshaped" if same else "")
        return text
    if alt is not None and _close(given, alt, rtol, atol)[0]:
        return f"matches the {alt_name} convention instead"
    if np.any(expected) and _close(-given, expected, rtol, atol)[0]:
        return "sign flipped"
    return ""


def compare_grads(graph: Graph, root: Ref | None, user_grads: Mapping[str, Any] | str | os.PathLike, *,
                  convention: str = "auto", m: int | None = None, rtol: float = 1e-7,
                  atol: float = 1e-12, seed: Any = None) -> GradComparison:
    """Check a hand-written backward pass (a dict or ``.npz`` keyed ``dW1`` or ``W1``) against the
    graph's: a node is ok when max|yours − correct| <= atol + rtol·max|correct|.  ``exact`` expects
    ∂root/∂node, ``course`` m·∂root/∂node at op nodes (dZ = A − Y; m from ``m=`` or graph.meta),
    ``auto`` whichever matches more (exact on a tie).  An error enters at a wrong node whose
    nearest checked consumers toward the root are all ok."""
    if convention not in ("auto", "exact", "course"):
        raise GraphError(f"convention must be 'auto', 'exact' or 'course', got {convention!r}")
    root_id = graph.root_id(root)
    given = _user_grads(graph, user_grads)
    exact = gradients(graph, root_id, seed, inputs=True)
    nodes = graph.nodes
    m = graph.meta.get("m") if m is None else m
    m = None if m is None else int(m)
    if convention == "course" and m is None:
        raise GraphError("the course convention needs m, the number of examples: pass m=... "
                         "(graph.meta has no 'm')")

    def reference(node_id: int, conv: str) -> np.ndarray:
        value = exact.get(node_id)
        if value is None:  # structurally zero: the root does not depend on this node
            value = np.zeros(nodes[node_id]["value"].shape)
        return m * value if conv == "course" and nodes[node_id]["kind"] == "op" else value

    notes = ()
    if convention == "auto" and m is None:
        convention, notes = "exact", ("course convention not tried: m is unknown (pass m=...)",)
    elif convention == "auto":
        score = {c: sum(_close(arr, reference(i, c), rtol, atol)[0] for i, (_, arr) in given.items()
                        if arr.shape == nodes[i]["value"].shape) for c in ("exact", "course")}
        convention = "course" if score["course"] > score["exact"] else "exact"
    other = {"exact": "course", "course": "exact"}[convention]
    rows: dict[int, GradCheckRow] = {}
    wanted = {i for i in exact if nodes[i]["requires_grad"] and i != root_id} | set(given)
    for i in sorted(wanted, reverse=True):
        name, expected = nodes[i]["name"], readonly(reference(i, convention))
        key, arr = given.get(i, (None, None))
        status, max_abs, rel, hint = NOT_GIVEN, None, None, ""
        if arr is not None and arr.shape != expected.shape:
            status, hint = WRONG_SHAPE, _hint(arr, expected, None, other, rtol, atol)
        elif arr is not None:
            ok, max_abs, rel = _close(arr, expected, rtol, atol)
            status = OK if ok else WRONG
            if not ok:
                hint = _hint(arr, expected, None if m is None else reference(i, other), other, rtol, atol)
            if not ok and i not in exact:
                zero = f"{nodes[root_id]['name']} does not depend on {name}: it is 0"
                hint = f"{hint}; {zero}" if hint else zero
        rows[i] = GradCheckRow(name, key, status, expected.shape, None if arr is None else arr.shape,
                               max_abs, rel, hint, expected, arr)
    course_m = m if convention == "course" else None
    return GradComparison(nodes[root_id]["name"], convention, course_m, rtol, atol, tuple(rows.values()),
                          _entry_points(graph, root_id, rows, course_m, seed), notes)


def _entry_points(graph: Graph, root_id: int, rows: Mapping[int, GradCheckRow], course_m: int | None,
                  seed: Any) -> tuple[EntryPoint, ...]:
    """The wrong checked nodes whose nearest checked consumers (toward the root) are all ok."""
    checked = {i for i, r in rows.items() if r.status != NOT_GIVEN}
    wrong = {i for i in checked if rows[i].status in (WRONG, WRONG_SHAPE)}
    entries = []
    for i in sorted(wrong, reverse=True):
        # walk up the ids from i toward the root, through unchecked nodes only
        reached, nearest = {i}, set()
        for j in sorted(graph.between(root_id, i) - {i}):
            if not reached.isdisjoint(graph.nodes[j]["operands"]):
                (nearest if j in checked else reached).add(j)
        if nearest & wrong:
            continue
        symptoms = sorted((graph.ancestors(i) - {i}) & wrong, reverse=True)
        entries.append(EntryPoint(
            rows[i].name, rows[i].key, tuple(rows[c].name for c in sorted(nearest, reverse=True)),
            tuple(rows[s].name for s in symptoms), rows[i].expected,
            _entry_explanation(graph, root_id, i, rows, course_m, seed)))
    return tuple(entries)


def _entry_explanation(graph: Graph, root_id: int, node_id: int, rows: Mapping[int, GradCheckRow],
                       course_m: int | None, seed: Any) -> str:
    """The one-step chain rule at the entry point, then its full sum over paths."""
    def shown(i: int) -> str:
        return one_line(graph.name_of(i))

    root, name = shown(root_id), shown(node_id)
    on = graph.between(root_id, node_id)
    users = [u for u in graph.successors(node_id) if u in on]
    if not users:
        return explain(graph, root_id, node_id, seed=seed, limit=4)
    terms = " + ".join(f"∂{root}/∂{shown(u)}·∂{shown(u)}/∂{name}" for u in users)
    lines = [f"chain rule, one step: ∂{root}/∂{name} = {terms}"]
    for u in users:
        attrs = graph.nodes[u]
        args = ", ".join(shown(o) for o in attrs["operands"])
        row = rows.get(u)
        state = f"your {one_line(row.key)} is {row.status}" if row is not None and row.key else "not given"
        lines.append(f"  where {shown(u)} = {attrs['op']}({args}) = {OPS[attrs['op']].formula}; {state}")
    if course_m is not None and graph.nodes[node_id]["kind"] == "op":
        lines.append(f"  (course convention: d{name} = {course_m}·∂{root}/∂{name})")
    lines.append(explain(graph, root_id, node_id, seed=seed, limit=4))
    return "\n".join(lines)
