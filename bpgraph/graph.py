"""Graph: owns the one networkx.DiGraph that every other module reads.

Each node is an integer id from a counter (so ids, and everything drawn from them, are the
same on every run).  Its attributes are:

``name``      unique human name (``W1``, ``Z1``, ``J``; unnamed results get ``matmul_3``)
``kind``      ``param`` | ``input`` | ``const`` | ``op``
``op``        the op's name in :data:`bpgraph.ops.OPS` (None for leaves)
``operands``  ordered tuple of operand ids: ``x * x`` has ``(x, x)`` while the DiGraph
              keeps a single edge x -> result (edges are for reachability and drawing)
``params``    the op's constant keyword parameters (axis, λ, m, ...)
``value``     the forward value, a read-only numpy array
``grad``      the gradient from the last backward, or None ("no path")
``scope``     ``"layer1/linear"``-style group from :meth:`Graph.scope`, or ``""``
``requires_grad``  whether a gradient is computed for it by default (params and what
              depends on them; inputs only when asked)

Ids grow in recording order and operands are recorded before their results, so increasing
id order is a topological order: no sort is ever needed.
"""

from __future__ import annotations

import cmath
import contextlib
import warnings
from typing import Any, Iterable, Iterator, Mapping, Sequence

import networkx as nx
import numpy as np

from . import ops as _ops
from .errors import GraphError, NonFiniteError, NonFiniteWarning, OpError, UnknownNodeError
from .tensor import Tensor

KINDS = ("param", "input", "const", "op")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def all_finite(a: np.ndarray) -> bool:
    """True unless a float or complex array holds a NaN or an infinity.

    One reduction with no temporary array decides the usual case: a sum is finite only when
    every term is.  Only a sum that overflowed needs the element-wise test.
    """
    if a.dtype.kind not in "fc":
        return True
    total = a.item() if a.size == 1 else np.add.reduce(a, axis=None)
    return cmath.isfinite(total) or bool(np.isfinite(a).all())


@np.errstate(all="ignore")  # NaN/inf are reported by record itself, naming the node
def _forward(spec: _ops.Op, values: list[np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return np.asarray(spec.forward(*values, **params))


class _Scope:
    """What :meth:`Graph.scope` returns (a small class: a generator-based one costs microseconds)."""

    __slots__ = ("_scopes", "_name")

    def __init__(self, scopes: list[str], name: str) -> None:
        self._scopes, self._name = scopes, name

    def __enter__(self) -> None:
        if not self._name or "/" in self._name:
            raise GraphError(f"a scope name must be non-empty and contain no '/', got {self._name!r}")
        self._scopes.append(self._name)

    def __exit__(self, *exc_info: object) -> None:
        self._scopes.pop()


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
        self._g = nx.DiGraph()
        self._by_name: dict[str, int] = {}
        self._scopes: list[str] = []
        self._with_grad: list[int] = []
        self.strict = strict
        self.meta: dict[str, Any] = {}
        self.grad_root: int | None = None

    # --- read access ------------------------------------------------------------------------
    @property
    def nx(self) -> nx.DiGraph:
        """A read-only view of the underlying networkx DiGraph (node id -> attributes)."""
        return self._g.copy(as_view=True)

    @property
    def nodes(self) -> Mapping[int, dict[str, Any]]:
        """Node id -> attribute dict, in recording order (read, don't edit)."""
        return self._g.nodes

    def successors(self, node_id: int) -> Iterator[int]:
        """Ids of the nodes that use ``node_id`` as an operand."""
        return iter(self._g.succ[node_id])

    def __len__(self) -> int:
        return len(self._g)

    def __contains__(self, ref: object) -> bool:
        if isinstance(ref, str):
            return ref in self._by_name
        if isinstance(ref, Tensor):
            return ref.graph is self
        return isinstance(ref, int) and ref in self._g

    def __getitem__(self, name: str | int) -> Tensor:
        return Tensor(self, self.id_of(name))

    def __iter__(self) -> Iterator[Tensor]:
        return (Tensor(self, i) for i in self._g)

    @property
    def names(self) -> list[str]:
        """Every node's name, in recording order."""
        return [d["name"] for d in self._g.nodes.values()]

    @property
    def output(self) -> Tensor:
        """The last recorded node: the default root for backward and drawing."""
        if not len(self._g):
            raise GraphError("the graph is empty: record something first")
        return Tensor(self, len(self._g) - 1)

    def id_of(self, ref: Tensor | int | str) -> int:
        """Resolve a Tensor, node id or node name to a node id (clear error if unknown)."""
        if isinstance(ref, Tensor):
            if ref.graph is not self:
                raise GraphError(f"tensor {ref.name!r} belongs to another graph")
            return ref.id
        if isinstance(ref, str):
            try:
                return self._by_name[ref]
            except KeyError:
                raise UnknownNodeError(ref, self._by_name) from None
        if isinstance(ref, (int, np.integer)) and int(ref) in self._g:
            return int(ref)
        raise UnknownNodeError(str(ref), self._by_name)

    def node(self, ref: Tensor | int | str) -> dict[str, Any]:
        """The attribute dict of a node (treat it as read-only)."""
        return self._g.nodes[self.id_of(ref)]

    def name_of(self, node_id: int) -> str:
        return self._g.nodes[node_id]["name"]

    def operands(self, ref: Tensor | int | str) -> list[Tensor]:
        """The node's operands, in order and with repeats (``x * x`` gives ``[x, x]``)."""
        return [Tensor(self, i) for i in self.node(ref)["operands"]]

    def ancestors(self, ref: Tensor | int | str) -> set[int]:
        """Ids of every node ``ref`` depends on, including itself (iterative)."""
        start = self.id_of(ref)
        seen = {start}
        stack = [start]
        nodes = self._g.nodes
        while stack:
            for o in nodes[stack.pop()]["operands"]:
                if o not in seen:
                    seen.add(o)
                    stack.append(o)
        return seen

    # --- recording ----------------------------------------------------------------------------
    def param(self, value: Any, name: str | None = None) -> Tensor:
        """A trainable leaf (W, b). Values are copied, stored as float and made read-only."""
        arr = np.array(value, copy=True)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float64)
        return self._leaf("param", arr, name, requires_grad=True)

    def input(self, value: Any, name: str | None = None, *, requires_grad: bool = False) -> Tensor:
        """A data leaf (X, Y). Copied and read-only; no gradient unless ``requires_grad``."""
        return self._leaf("input", np.array(value, copy=True), name, requires_grad)

    def const(self, value: Any, name: str | None = None) -> Tensor:
        """A constant leaf (λ, m, a dropout mask, a literal in an expression)."""
        return self._leaf("const", np.array(value, copy=True), name, requires_grad=False)

    def _leaf(self, kind: str, arr: np.ndarray, name: str | None, requires_grad: bool) -> Tensor:
        if arr.dtype.kind not in "biufc" and (arr.dtype == object or not np.issubdtype(arr.dtype, np.number)):
            raise GraphError(f"{kind} {name or ''}: values must be numeric, got dtype {arr.dtype}")
        return self._add(kind, None, (), {}, _readonly(arr), name, requires_grad)

    def record(self, op: str, operands: Sequence[Any], params: Mapping[str, Any] | None = None,
               name: str | None = None) -> Tensor:
        """Run ``op`` forward on ``operands`` and add its result node. Non-tensors become consts."""
        spec = _ops.OPS.get(op)
        if spec is None:
            raise GraphError(f"unknown op {op!r}; known ops: {', '.join(sorted(_ops.OPS))}")
        if spec.arity is not None and len(operands) != spec.arity:
            raise GraphError(f"{op} takes {spec.arity} operand(s), got {len(operands)}")
        ids = tuple([self._operand_id(o) for o in operands])
        params = dict(params or {})
        nodes = self._g.nodes
        operand_attrs = [nodes[i] for i in ids]
        values = [attrs["value"] for attrs in operand_attrs]
        try:
            out = _forward(spec, values, params)
        except (ValueError, TypeError, IndexError) as exc:
            args = ", ".join(f"{nodes[i]['name']} {nodes[i]['value'].shape}" for i in ids)
            raise OpError(f"{op}({args}): {exc}") from None
        requires_grad = any([attrs["requires_grad"] for attrs in operand_attrs])
        tensor = self._add("op", op, ids, params, _readonly(out), name, requires_grad)
        checked = not (spec.keeps_finite and out.dtype.kind == "f")
        if checked and not all_finite(out) and all(all_finite(v) for v in values):
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
        node_id = len(self._g)
        if name is None:
            name = self._default_name(op or kind, node_id)
        else:
            self._check_new_name(name)
        self._g.add_node(node_id, name=name, kind=kind, op=op, operands=operands, params=params,
                         value=value, grad=None, scope="/".join(self._scopes),
                         requires_grad=requires_grad)
        for o in operands:
            self._g.add_edge(o, node_id)
        self._by_name[name] = node_id
        return Tensor(self, node_id)

    def _default_name(self, base: str, node_id: int) -> str:
        name = f"{base}_{node_id}"
        while name in self._by_name:
            name += "'"
        return name

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise GraphError(f"a node name must be a string, got {type(name).__name__}")
        if name in self._by_name:
            raise GraphError(f"the name {name!r} is already taken by node {self._by_name[name]} "
                             f"({self._describe(self._by_name[name])}); choose another name")

    def rename(self, ref: Tensor | int | str, name: str) -> None:
        """Give a node a new unique name (what :meth:`Tensor.named` calls)."""
        node_id = self.id_of(ref)
        attrs = self._g.nodes[node_id]
        if attrs["name"] == name:
            return
        self._check_new_name(name)
        del self._by_name[attrs["name"]]
        attrs["name"] = name
        self._by_name[name] = node_id

    def scope(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Group the nodes recorded inside the block (``with g.scope("layer1"):``).

        Scopes nest (``layer1/linear``); renderers draw them as clusters and can collapse them.
        """
        return _Scope(self._scopes, name)

    # --- gradients ------------------------------------------------------------------------------
    def backward(self, root: Tensor | int | str | None = None, seed: Any = None, *,
                 inputs: bool = False) -> dict[str, np.ndarray]:
        """Backpropagate from ``root`` (default: the last node) and store the gradients.

        Returns ``{name: ∂root/∂node}`` for every node the root depends on that needs a
        gradient: params and the ops computed from them; inputs and consts too when
        ``inputs=True``.  Nodes the root does not depend on get no entry and ``grad=None``.
        Calling it again replaces the previous gradients (nothing piles up).
        """
        from .autodiff import gradients  # autodiff imports graph's names; keep the edge one-way

        root_id = self.output.id if root is None else self.id_of(root)
        grads = gradients(self, root_id, seed, inputs=inputs)
        nodes = self._g.nodes
        for i in self._with_grad:
            nodes[i]["grad"] = None
        for i, grad in grads.items():
            nodes[i]["grad"] = grad
        self._with_grad = list(grads)
        self.grad_root = root_id
        return {nodes[i]["name"]: grads[i] for i in sorted(grads)}

    # --- replaying the forward pass -------------------------------------------------------------
    def evaluate(self, order: Iterable[int], overrides: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Recompute the ops in ``order`` (ids, ascending) with some leaf values replaced.

        Used by finite differences and by :meth:`replay`; stored values are not touched.
        """
        nodes = self._g.nodes
        values: dict[int, np.ndarray] = dict(overrides)
        with np.errstate(all="ignore"):
            for i in order:
                if i in values:
                    continue
                attrs = nodes[i]
                if attrs["kind"] != "op":
                    values[i] = attrs["value"]
                    continue
                args = [values[o] if o in values else nodes[o]["value"] for o in attrs["operands"]]
                values[i] = np.asarray(_ops.OPS[attrs["op"]].forward(*args, **attrs["params"]))
        return values

    def replay(self, rtol: float = 1e-12) -> None:
        """Recompute every op from its operands and check it matches the stored value.

        Proves that the values follow from the recorded ops (after loading a file, say);
        raises GraphError naming the first node that disagrees.
        """
        nodes = self._g.nodes
        with np.errstate(all="ignore"):
            for i, attrs in nodes.items():
                if attrs["kind"] != "op":
                    continue
                args = [nodes[o]["value"] for o in attrs["operands"]]
                fresh = np.asarray(_ops.OPS[attrs["op"]].forward(*args, **attrs["params"]))
                stored = attrs["value"]
                if fresh.shape != stored.shape or not np.allclose(fresh, stored, rtol=rtol, atol=0,
                                                                  equal_nan=True):
                    raise GraphError(f"replay: node {attrs['name']!r} ({self._describe(i)}) holds a value "
                                     f"that does not follow from its operands; first mismatching node")

    def _repr_svg_(self) -> str:
        """Jupyter shows a graph as its default drawing (SVG, edges coloured by cost term)."""
        from .render import repr_svg

        return repr_svg(self)

    # --- reports ----------------------------------------------------------------------------------
    def _describe(self, node_id: int) -> str:
        attrs = self._g.nodes[node_id]
        if attrs["kind"] != "op":
            return f"{attrs['kind']} of shape {attrs['value'].shape}"
        args = ", ".join(self._g.nodes[o]["name"] for o in attrs["operands"])
        return f"{attrs['op']}({args})"

    def _report_nonfinite(self, node_id: int) -> None:
        """Name the node where a NaN/inf value first appears, with its operands there."""
        attrs = self._g.nodes[node_id]
        out = attrs["value"]
        bad = np.argwhere(~np.isfinite(out))
        where = tuple(int(k) for k in bad[0]) if len(bad) else ()
        details = []
        for o in dict.fromkeys(attrs["operands"]):
            name, v = self._g.nodes[o]["name"], self._g.nodes[o]["value"]
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
        warnings.warn(message, NonFiniteWarning, stacklevel=4)
