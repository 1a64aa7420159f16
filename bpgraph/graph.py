"""Graph: the one store of recorded nodes that every other module reads.

A node is an integer id from a counter (the same on every run) with an attribute dict: ``name``
(unique; :func:`default_name` names the unnamed), ``kind`` (param, input, const, op), ``op``,
``operands`` (ordered, with repeats: ``x * x`` has ``(x, x)``), ``params``, ``value`` (read-only),
``grad`` (from the last backward, or None), ``scope`` (``"layer1/linear"`` or ``""``) and
``requires_grad``.  Operands are recorded before their results, so increasing id order is a
topological order: ancestors, descendants and the backward walk are single passes over the ids.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from types import MappingProxyType
from typing import Any, Callable, Collection, Iterable, Iterator, Mapping, Sequence, TypeVar

import networkx as nx
import numpy as np

from . import ops as _ops
from .errors import GraphError, NonFiniteError, NonFiniteWarning, OpError, UnknownNodeError
from .tensor import Tensor

KINDS = ("param", "input", "const", "op")
_T = TypeVar("_T")
#: How many values derived from its structure a Graph remembers (see Graph.derived).
DERIVED_CACHE = 16

Ref = Tensor | int | str


class Graph:
    """A recorded computation: leaves (params, inputs, consts) and the ops applied to them.

    >>> import numpy as np, bpgraph as bp
    >>> g = bp.Graph()
    >>> w = g.param(np.array([[2.0]]), name="w")
    >>> y = (w * w).named("y")
    >>> g.backward(y)["w"]
    array([[4.]])
    """

    def __init__(self, *, strict: bool = False) -> None:
        self._nodes: dict[int, dict[str, Any]] = {}
        self._by_name: dict[str, int] = {}
        self._scope = ""  # the open scopes joined ("layer1/linear")
        self._derived: dict[str, Any] = {}  # see derived(); emptied when the graph grows
        self._derived_size = 0
        self._with_grad: list[int] = []
        self.strict = strict
        self.meta: dict[str, Any] = {}
        self.grad_root: int | None = None

    # --- read access ------------------------------------------------------------------------
    @property
    def nodes(self) -> Mapping[int, dict[str, Any]]:
        """Node id -> attribute dict, in recording order (read, don't edit)."""
        return MappingProxyType(self._nodes)

    @property
    def nx(self) -> nx.DiGraph:
        """A frozen networkx DiGraph of the graph as it is now, one edge per (operand, result) pair."""
        g = nx.DiGraph()
        g.add_nodes_from((i, dict(attrs)) for i, attrs in self._nodes.items())
        g.add_edges_from((o, i) for i, attrs in self._nodes.items() for o in attrs["operands"])
        return nx.freeze(g)

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the cache of derived values."""
        state = self.__dict__.copy()
        state["_derived"], state["_derived_size"] = {}, 0
        return state

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, ref: object) -> bool:
        if isinstance(ref, str):
            return ref in self._by_name
        if isinstance(ref, Tensor):
            return ref.graph is self
        return isinstance(ref, int) and ref in self._nodes

    def __getitem__(self, name: str | int) -> Tensor:
        return Tensor(self, self.id_of(name))

    def __iter__(self) -> Iterator[Tensor]:
        return (Tensor(self, i) for i in self._nodes)

    @property
    def names(self) -> list[str]:
        """Every node's name, in recording order."""
        return [d["name"] for d in self._nodes.values()]

    @property
    def output(self) -> Tensor:
        """The last recorded node: the default root for backward and drawing."""
        if not self._nodes:
            raise GraphError("the graph is empty: record something first")
        return Tensor(self, len(self._nodes) - 1)

    def id_of(self, ref: Ref) -> int:
        """Resolve a Tensor, node id or node name to a node id (clear error if unknown)."""
        if isinstance(ref, Tensor):
            if ref.graph is not self:
                raise GraphError(f"tensor {ref.name!r} belongs to another graph")
            return ref.id
        if isinstance(ref, str):
            if ref in self._by_name:
                return self._by_name[ref]
            raise UnknownNodeError(ref, self._by_name)
        if isinstance(ref, (int, np.integer)) and int(ref) in self._nodes:
            return int(ref)
        raise UnknownNodeError(str(ref), self._by_name)

    def root_id(self, root: Ref | None = None) -> int:
        """The id of ``root``, or of the last recorded node (the default root) when it is None."""
        return self.output.id if root is None else self.id_of(root)

    def node(self, ref: Ref) -> dict[str, Any]:
        """The attribute dict of a node (treat it as read-only)."""
        return self._nodes[self.id_of(ref)]

    def name_of(self, node_id: int) -> str:
        return self._nodes[node_id]["name"]

    def operands(self, ref: Ref) -> list[Tensor]:
        """The node's operands, in order and with repeats (``x * x`` gives ``[x, x]``)."""
        return [Tensor(self, i) for i in self.node(ref)["operands"]]

    # --- structure, derived from the operands and remembered until the graph grows -----------
    def derived(self, key: str, compute: Callable[[Graph], _T]) -> _T:
        """``compute(self)`` for a value of the structure alone, remembered (the :data:`DERIVED_CACHE`
        used last) until the next node is recorded; share it, don't edit it."""
        if len(self._nodes) != self._derived_size:
            self._derived.clear()
            self._derived_size = len(self._nodes)
        if key in self._derived:
            self._derived[key] = value = self._derived.pop(key)  # now the last one used
            return value
        value = self._derived[key] = compute(self)
        while len(self._derived) > DERIVED_CACHE:
            del self._derived[next(iter(self._derived))]  # the one used longest ago
        return value

    def ancestors(self, ref: Ref) -> set[int]:
        """Ids of every node ``ref`` depends on, including itself: one pass down the ids."""
        start = self.id_of(ref)
        return set(self.derived(f"ancestors {start}", lambda g: frozenset(g._sweep(start, down=True))))

    def descendants(self, ref: Ref) -> set[int]:
        """Ids of every node that depends on ``ref``, including itself: one pass up the ids."""
        start = self.id_of(ref)
        return set(self.derived(f"descendants {start}", lambda g: frozenset(g._sweep(start, down=False))))

    def between(self, of: Ref, wrt: Ref) -> set[int]:
        """Ids on some path from ``wrt`` to ``of``, both included; empty when there is none."""
        return self.ancestors(of) & self.descendants(wrt)

    def _sweep(self, start: int, down: bool) -> set[int]:
        nodes = self._nodes
        marked = {start}
        if down:
            for i in range(start, -1, -1):
                if i in marked:
                    marked.update(nodes[i]["operands"])
        else:
            for i in range(start + 1, len(nodes)):
                if not marked.isdisjoint(nodes[i]["operands"]):
                    marked.add(i)
        return marked

    def successors(self, node_id: int) -> list[int]:
        """Ids of the nodes that use ``node_id`` as an operand, ascending."""
        return self.derived("users", Graph._users)[node_id]

    def _users(self) -> list[list[int]]:
        users: list[list[int]] = [[] for _ in self._nodes]
        for i, attrs in self._nodes.items():
            for o in dict.fromkeys(attrs["operands"]):
                users[o].append(i)
        return users

    # --- recording ----------------------------------------------------------------------------
    def param(self, value: Any, name: str | None = None, *, copy: bool = True) -> Tensor:
        """A trainable leaf (W, b), copied (unless ``copy=False``), stored as float and read-only."""
        arr = _as_array(value, copy)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float64)
        return self._leaf("param", arr, name, requires_grad=True)

    def input(self, value: Any, name: str | None = None, *, requires_grad: bool = False,
              copy: bool = True) -> Tensor:
        """A data leaf (X, Y), read-only, with no gradient unless ``requires_grad``.  ``copy=False`` keeps
        a read-only view of a large array: the graph stays right only while you do not change it."""
        return self._leaf("input", _as_array(value, copy), name, requires_grad)

    def const(self, value: Any, name: str | None = None) -> Tensor:
        """A constant leaf (λ, m, a dropout mask, a literal in an expression)."""
        return self._leaf("const", np.array(value, copy=True), name, requires_grad=False)

    def _leaf(self, kind: str, arr: np.ndarray, name: str | None, requires_grad: bool) -> Tensor:
        if arr.dtype.kind not in "biufc":
            raise GraphError(f"{kind} {name or ''}: values must be numeric, got dtype {arr.dtype}")
        arr.setflags(write=False)
        tensor = self._add(kind, None, (), {}, arr, name, requires_grad)
        if not _ops.all_finite(arr):
            self.warn_or_raise(f"{kind} {tensor.name!r} holds NaN or infinity in its data "
                               f"(at index {_first_nonfinite(arr)}); every result computed from it "
                               "will too")
        return tensor

    def record(self, op: str, operands: Sequence[Any], params: Mapping[str, Any] | None = None,
               name: str | None = None) -> Tensor:
        """Run ``op`` forward on ``operands`` and add its result node. Non-tensors become consts."""
        spec = _ops.OPS.get(op)
        if spec is None:
            raise GraphError(f"unknown op {op!r}; known ops: {', '.join(sorted(_ops.OPS))}")
        if spec.arity is not None and len(operands) != spec.arity:
            raise GraphError(f"{op} takes {spec.arity} operand(s), got {len(operands)}")
        ids = tuple([self._operand_id(o) for o in operands])
        values = [self._nodes[i]["value"] for i in ids]
        params = dict(params or {})
        try:
            with np.errstate(all="ignore"):  # NaN/inf are reported below, naming the node
                out = np.asarray(spec.forward(*values, **params))
                new_nonfinite = not _ops.all_finite(out) and all(_ops.all_finite(v) for v in values)
        except (ValueError, TypeError, IndexError) as exc:
            args = ", ".join(f"{self._nodes[i]['name']} {self._nodes[i]['value'].shape}" for i in ids)
            raise OpError(f"{op}({args}): {exc}") from None
        out.setflags(write=False)
        requires_grad = any(self._nodes[i]["requires_grad"] for i in ids)
        tensor = self._add("op", op, ids, params, out, name, requires_grad)
        if new_nonfinite:
            self._report_nonfinite(tensor.id)
        return tensor

    def _operand_id(self, operand: Any) -> int:
        if isinstance(operand, Tensor):
            if operand.graph is not self:
                raise GraphError(f"tensor {operand.name!r} belongs to another graph; "
                                 "an op can only combine tensors of one graph")
            return operand.id
        return self.const(operand).id

    def _add(self, kind: str, op: str | None, operands: tuple[int, ...], params: dict[str, Any],
             value: np.ndarray, name: str | None, requires_grad: bool) -> Tensor:
        node_id = len(self._nodes)
        if name is None:
            names = [self._nodes[o]["name"] for o in operands]
            name = default_name(kind, op, names, value, node_id, self._by_name)
        else:
            self._check_new_name(name)
        self._nodes[node_id] = {"name": name, "kind": kind, "op": op, "operands": operands,
                                "params": params, "value": value, "grad": None,
                                "scope": self._scope, "requires_grad": requires_grad}
        self._by_name[name] = node_id
        return Tensor(self, node_id)

    def _check_new_name(self, name: Any) -> None:
        if not isinstance(name, str):
            raise GraphError(f"a node name must be a string, got {type(name).__name__}")
        if not name:
            raise GraphError("a node name cannot be empty (it could not be looked up, shown or "
                             "saved); leave name=None for a default such as 'tanh_3'")
        if name in self._by_name:
            raise GraphError(f"the name {name!r} is already taken by node {self._by_name[name]} "
                             f"({self._describe(self._by_name[name])}); choose another name")

    def rename(self, ref: Ref, name: str) -> None:
        """Give a node a new unique name (what :meth:`Tensor.named` calls)."""
        node_id = self.id_of(ref)
        attrs = self._nodes[node_id]
        if attrs["name"] == name:
            return
        self._check_new_name(name)
        del self._by_name[attrs["name"]]
        attrs["name"] = name
        self._by_name[name] = node_id

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Group the nodes recorded inside the block (``with g.scope("layer1"):``); scopes nest."""
        if not isinstance(name, str) or not name or "/" in name:
            raise GraphError(f"a scope name must be non-empty and contain no '/', got {name!r}")
        outer = self._scope
        self._scope = f"{outer}/{name}" if outer else name
        try:
            yield
        finally:
            self._scope = outer

    # --- gradients ------------------------------------------------------------------------------
    def backward(self, root: Ref | None = None, seed: Any = None, *,
                 inputs: bool = False) -> dict[str, np.ndarray]:
        """Backpropagate from ``root`` (default: the last node), store the gradients and return
        ``{name: ∂root/∂node}`` for the params and ops the root depends on (inputs and consts too with
        ``inputs``); the others get ``grad=None``.  Calling it again replaces the gradients."""
        from .autodiff import gradients  # the documented upward hook: autodiff reads graphs

        root_id = self.root_id(root)
        grads = gradients(self, root_id, seed, inputs=inputs)
        for i in self._with_grad:
            self._nodes[i]["grad"] = None
        by_name = {}
        for i in sorted(grads):  # in id order, so the result lists the nodes as recorded
            self._nodes[i]["grad"] = by_name[self._nodes[i]["name"]] = grads[i]
        self._with_grad = list(grads)
        self.grad_root = root_id
        return by_name

    def evaluate(self, order: Iterable[int], overrides: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Recompute the ops in ``order`` (ids, ascending) with some values replaced (for finite
        differences); stored values are not touched."""
        nodes = self._nodes
        values: dict[int, np.ndarray] = dict(overrides)
        with np.errstate(all="ignore"):
            for i in order:
                attrs = nodes[i]
                if i in values or attrs["kind"] != "op":
                    values.setdefault(i, attrs["value"])
                    continue
                args = [values.get(o, nodes[o]["value"]) for o in attrs["operands"]]
                values[i] = np.asarray(_ops.OPS[attrs["op"]].forward(*args, **attrs["params"]))
        return values

    def _repr_svg_(self) -> str:
        """Jupyter shows a graph as its default drawing (SVG, edges coloured by cost term)."""
        from .render import repr_svg  # the documented upward hook: drawing reads graphs

        return repr_svg(self)

    # --- reports ----------------------------------------------------------------------------------
    def _describe(self, node_id: int) -> str:
        attrs = self._nodes[node_id]
        if attrs["kind"] != "op":
            return f"{attrs['kind']} of shape {attrs['value'].shape}"
        args = ", ".join(self._nodes[o]["name"] for o in attrs["operands"])
        return f"{attrs['op']}({args})"

    def _report_nonfinite(self, node_id: int) -> None:
        """Name the node where a NaN/inf value first appears, with its operands there."""
        attrs = self._nodes[node_id]
        out = attrs["value"]
        where = _first_nonfinite(out)
        details = []
        for o in dict.fromkeys(attrs["operands"]):
            name, v = self._nodes[o]["name"], self._nodes[o]["value"]
            try:
                details.append(f"{name}={float(np.broadcast_to(v, out.shape)[where]):.6g}")
            except (ValueError, IndexError, TypeError):
                details.append(f"{name} in [{float(np.min(v)):.6g}, {float(np.max(v)):.6g}]")
        at = f" at index {where}" if where else ""
        self.warn_or_raise(f"non-finite value first appears at node {attrs['name']!r} = "
                           f"{self._describe(node_id)}{at}: {', '.join(details)}")

    def warn_or_raise(self, message: str) -> None:
        """Report a NaN/inf: NonFiniteError in strict mode, else a NonFiniteWarning."""
        if self.strict:
            raise NonFiniteError(message)
        warnings.warn(message, NonFiniteWarning, stacklevel=_levels_to_caller())


def _as_array(value: Any, copy: bool) -> np.ndarray:
    """A copy, or a view: making the leaf's array read-only must not change the caller's object."""
    return np.array(value, copy=True) if copy else np.asarray(value).view()


def _first_nonfinite(a: np.ndarray) -> tuple[int, ...]:
    bad = np.argwhere(~np.isfinite(a))
    return tuple(int(k) for k in bad[0]) if len(bad) else ()


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _levels_to_caller() -> int:
    """The ``stacklevel`` of the first frame outside bpgraph, so a warning points at the user's line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


#: Longer default names are numbered instead (``matmul_6``).
NAME_LIMIT = 24
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_.@+*/-]+")


def default_name(kind: str, op: str | None, operands: list[str], value: np.ndarray, node_id: int,
                 taken: Collection[str]) -> str:
    """A name after the operands, safe to type in a shell (``W3@A2``, ``W3@A2+b3``, ``a*b``, ``Z1.relu``,
    ``W1.T``, ``2``); numbered (``matmul_6``) when too long, ambiguous or taken."""
    name = ""
    if op in _INFIX and _infix_reads_right(op, operands):
        name = _INFIX[op].join(operands)
    elif op == "linear" and all(_plain(n) for n in operands):
        name = f"{operands[0]}@{operands[1]}+{operands[2]}"
    elif len(operands) == 1 and _plain(operands[0]):
        name = f"{operands[0]}.T" if op == "transpose" else f"{operands[0]}.{op}"
    elif kind == "const" and value.size == 1 and value.dtype.kind in "biuf":
        name = f"{value.item():g}"
    if len(name) > NAME_LIMIT or not _SHELL_SAFE.fullmatch(name) or name in taken:
        name = f"{op or kind}_{node_id}"
        while name in taken:
            name += "_"
    return name


def _plain(name: str) -> bool:
    """A name holding no infix operator, so it reads as one operand anywhere."""
    return not any(c in name for c in "+-*/@")


def _infix_reads_right(op: str, names: list[str]) -> bool:
    """Whether ``a<op>b`` written without parentheses reads as this op of these operands."""
    left, right = names
    if op == "add":
        return True
    if op == "sub":
        return "+" not in right and "-" not in right
    return "+" not in left and "-" not in left and _plain(right)
