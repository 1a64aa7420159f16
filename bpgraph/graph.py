"""Graph: owns the one networkx.DiGraph that every other module reads.

Each node is an integer id from a counter (so ids, and everything drawn from them, are the
same on every run).  Its attributes are:

``name``      unique human name (``W1``, ``Z1``, ``J``; unnamed results get ``matmul_3``)
``kind``      ``param`` | ``input`` | ``const`` | ``op``
``op``        the op's name in :data:`bpgraph.ops.OPS` (None for leaves)
``operands``  ordered tuple of operand ids: ``x * x`` has ``(x, x)`` while the DiGraph
              keeps a single edge x -> result (edges are for reachability and drawing)
``params``    the op's constant keyword parameters (axis, λ, m, ...); every node without
              any shares one read-only empty dict, :data:`NO_PARAMS`
``value``     the forward value, a read-only numpy array
``grad``      the gradient from the last backward, or None ("no path")
``scope``     ``"layer1/linear"``-style group from :meth:`Graph.scope`, or ``""``
``requires_grad``  whether a gradient is computed for it by default (params and what
              depends on them; inputs only when asked)

Ids grow in recording order and operands are recorded before their results, so increasing
id order is a topological order: no sort is ever needed.

Recording is the hot path (a small network records a node every few microseconds), so a
node is only an attribute dict in :attr:`Graph.nodes` (a read-only proxy of a plain dict)
when it is recorded; the DiGraph gets the nodes and edges recorded since it was last used
when :attr:`Graph.nx` or :meth:`Graph.successors` next asks for it, in one pass written
straight into its adjacency dicts (what ``add_node``/``add_edge`` would do); the DiGraph itself
is made then too.  Recording and backward never need the edges: operands are on the nodes.
(Three dicts per node fewer while recording also means far less work for Python's garbage
collector on large graphs.)  The same goes for the flat columns (:class:`_Columns`) that a
drawing reads as numpy arrays instead of every node dict: they are copied from the node
dicts in bulk (every 4,096 nodes, and when a drawing asks), so recording writes one dict
per node and nothing else.
"""

from __future__ import annotations

import cmath
import contextlib
import itertools
import os
import sys
import threading
import warnings
from array import array
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, NoReturn, Sequence, TypeVar

import networkx as nx
import numpy as np

from . import ops as _ops
from .errors import GraphError, NonFiniteError, NonFiniteWarning, OpError, UnknownNodeError
from .tensor import Tensor

KINDS = ("param", "input", "const", "op")
_T = TypeVar("_T")
#: How many ancestor sets a Graph remembers (see Graph.ancestors).
ANCESTOR_CACHE = 8
#: How many values derived from its structure a Graph remembers (see Graph.derived).
DERIVED_CACHE = 16


class _Errstate:
    """``np.errstate`` behind the ``set``/``reset`` interface of a context variable."""

    def set(self, settings: dict[str, str]) -> Any:
        state = np.errstate(**settings)
        state.__enter__()
        return state

    def reset(self, state: Any) -> None:
        state.__exit__(None, None, None)


def _fp_state() -> tuple[Any, Any]:
    """``(switch, ignore)``: ``token = switch.set(ignore)`` silences numpy's floating-point
    warnings until ``switch.reset(token)``, as ``with np.errstate(all="ignore")`` does.

    ``np.errstate`` builds its settings anew on every entry, which costs more than a small op;
    numpy 2 keeps them in a context variable, so they are built once here and only swapped
    in and out (thread-safe, like errstate).  Anywhere that variable is missing or does not
    act as expected, this falls back to ``np.errstate`` itself.
    """
    try:
        from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

        ignore = _make_extobj(all="ignore")
        token = _extobj_contextvar.set(ignore)
        try:
            works = set(np.geterr().values()) == {"ignore"}
        finally:
            _extobj_contextvar.reset(token)
        if works:
            return _extobj_contextvar, ignore
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    return _Errstate(), {"all": "ignore"}


FP_STATE, FP_IGNORE = _fp_state()


def _view(value: Any) -> np.ndarray:
    """``value`` as an array without copying it, but never the caller's own array object: the
    leaf makes what it keeps read-only, and that must not change the caller's array."""
    arr = np.asarray(value)
    return arr.view() if arr is value else arr


def all_finite(a: np.ndarray) -> bool:
    """True unless a float or complex array holds a NaN or an infinity.

    One pass with no temporary array decides the usual case: a sum of squares (a BLAS dot
    product, numpy's fastest reduction) is finite only when every term is, and so is a plain
    sum, used for arrays that are not contiguous.  Only a total that overflowed needs the
    element-wise test.
    """
    if a.dtype.kind not in "fc":
        return True
    if a.size == 1:
        return cmath.isfinite(a.item())
    token = FP_STATE.set(FP_IGNORE)  # an overflow here is an answer, not something to warn about
    try:
        if a.flags.c_contiguous:
            flat = a.ravel()  # a view
            total = flat.dot(flat)
        else:
            total = np.add.reduce(a, axis=None)
    finally:
        FP_STATE.reset(token)
    return cmath.isfinite(total) or bool(np.isfinite(a).all())


class _NoParams(dict):
    """The type of :data:`NO_PARAMS`: an empty dict that refuses to change.

    Most nodes have no params (every leaf, ``tanh``, ``maximum``, ...).  A fresh ``{}`` for
    each would be one more object per node for Python's cyclic garbage collector to count:
    its collections run after every 700 such objects, and a third fewer of them is a third
    fewer full collections while a 100,000-node graph is recorded, each of which walks every
    node so far.  Shared, it must not change: ``g.nodes[i]["params"]["axis"] = 0`` would
    edit every node at once, so it raises instead.  It pickles and copies as itself.
    """

    __slots__ = ()

    def __init__(self) -> None:  # no items, not even through dict.__init__
        super().__init__()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a node's params are read-only (this node has none); "
                        "record a new op to use other params")

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse

    def __reduce__(self) -> tuple[Callable[[], _NoParams], tuple[()]]:
        return _no_params, ()


def _no_params() -> _NoParams:
    """What a pickled NO_PARAMS loads as (pickles name this function: keep it)."""
    return NO_PARAMS


#: The ``params`` of every node that has none (see :class:`_NoParams`).
NO_PARAMS = _NoParams()


class _Scope:
    """What :meth:`Graph.scope` returns (a small class: a generator-based one costs microseconds)."""

    __slots__ = ("_graph", "_name")

    def __init__(self, graph: Graph, name: str) -> None:
        self._graph, self._name = graph, name

    def __enter__(self) -> None:
        if not self._name or "/" in self._name:
            raise GraphError(f"a scope name must be non-empty and contain no '/', got {self._name!r}")
        graph = self._graph
        outer = graph._scope  # the path is kept joined: built here, not for every node recorded
        graph._scope = f"{outer}/{self._name}" if outer else self._name

    def __exit__(self, *exc_info: object) -> None:
        graph = self._graph
        graph._scope = graph._scope.rpartition("/")[0]  # no scope name holds a "/"


class _Columns:
    """Each node's structure again, as flat arrays: operand ids node after node, where each
    node's operands end, its kind and a code for its op; plus the ids where the scope changed.

    A drawing of a big graph reads every node's structure; from these it is a few numpy views
    (:func:`bpgraph.topology.topology`) instead of a Python pass over 100,000 attribute dicts.
    They are a cache of the node dicts, which stay the one source of truth.  :meth:`catch_up`
    appends the nodes recorded since it last ran, in a few C-speed passes over their dicts
    (about 0.6 µs a node): when a drawing asks, and every 4,096 nodes while recording, so
    that the first drawing of a big graph does not pay for every node at once (for 100,000
    nodes that took 60-110 ms, against 15-25 ms for the rest of a first drawing).  A small
    graph recorded and dropped in a training loop never pays for the columns at all.
    """

    __slots__ = ("tails", "ends", "kinds", "op_codes", "op_names", "scope_marks")

    def __init__(self) -> None:
        self.tails = array("q")  # every node's operands, node after node
        self.ends = array("q", [0])  # node i's operands are tails[ends[i]:ends[i+1]]
        self.kinds = array("b")  # node i's kind is KINDS[kinds[i]]
        self.op_codes = array("h")  # node i's op is the op_codes[i]-th key of op_names
        self.op_names: dict[str | None, int] = {}  # op name (None for a leaf) -> its code
        self.scope_marks: list[tuple[int, str]] = []  # (first node id, scope) each time it changed

    def __setstate__(self, state: object) -> None:
        """What unpickling a graph saved by an older bpgraph (which pickled its columns) calls
        first; the graph then replaces these columns with empty ones anyway."""
        self.__init__()

    def catch_up(self, nodes: Mapping[int, dict[str, Any]]) -> None:
        """Append the nodes recorded since the last call (ids ``len(ends) - 1`` on).

        Each field is read by one ``map`` of an ``itemgetter`` (no Python step per node, and
        no new container either: making 100,000 tuples would wake the garbage collector).
        An array a numpy view still holds cannot grow, so it is copied once first (the old
        views keep the old one, which is what they describe).  Two threads drawing one graph
        must not both append the same nodes: one lock serves every graph.
        """
        with _CATCHING_UP:
            start = len(self.ends) - 1  # ends grows last: it says how far the others are right
            self._drop_beyond(start)
            if start >= len(nodes):
                return
            new = list(map(nodes.__getitem__, range(start, len(nodes))))
            ops, operands = list(map(_OP, new)), list(map(_OPERANDS, new))
            names = self.op_names
            for op in dict.fromkeys(ops):
                if op not in names:
                    names[op] = len(names)
            marks, scope, node_id = [], self.scope_marks[-1][1] if self.scope_marks else "", start
            for next_scope, run in itertools.groupby(map(_SCOPE, new)):
                if next_scope != scope:
                    marks.append((node_id, next_scope))
                scope, node_id = next_scope, node_id + len(list(run))
            count = len(new)
            ends = np.cumsum(np.fromiter(map(len, operands), np.int64, count))
            ends += len(self.tails)
            self._extend("kinds", np.fromiter(map(_KIND_CODES.__getitem__, map(_KIND, new)), np.int8, count))
            self._extend("op_codes", np.fromiter(map(names.__getitem__, ops), np.int16, count))
            tails = itertools.chain.from_iterable(operands)
            self._extend("tails", np.fromiter(tails, np.int64, int(ends[-1]) - len(self.tails)))
            self.scope_marks.extend(marks)
            self._extend("ends", ends)  # now these nodes count as caught up

    def _extend(self, name: str, values: np.ndarray) -> None:
        """Append ``values`` (of the column's item type) to one column, whole or not at all."""
        column = getattr(self, name)
        data = memoryview(values).cast("B")  # numpy's fromiter fills faster than array() does
        try:
            column.frombytes(data)
        except BufferError:  # a view of it is still alive
            column = array(column.typecode, column)
            column.frombytes(data)
            setattr(self, name, column)

    def _drop_beyond(self, count: int) -> None:
        """Cut the columns back to the first ``count`` nodes: what a catch-up that was stopped
        half-way (Ctrl-C, no memory) may have appended past ``ends``.  A slice is a new array,
        so views of the old one stay valid."""
        for name, length in (("kinds", count), ("op_codes", count), ("tails", self.ends[-1])):
            column = getattr(self, name)
            if len(column) > length:
                setattr(self, name, column[:length])
        while self.scope_marks and self.scope_marks[-1][0] >= count:
            self.scope_marks.pop()


_OP, _KIND = itemgetter("op"), itemgetter("kind")
_OPERANDS, _SCOPE = itemgetter("operands"), itemgetter("scope")
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
_CATCH_UP_MASK = 4095  # recording catches the columns up whenever node_id & this == this
_NOT_RESTORED = ("_uses", "_columns", "_scopes")  # see Graph.__setstate__
_CATCHING_UP = threading.Lock()  # see _Columns.catch_up: one for all graphs (a Graph must pickle)


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
        self._g: nx.DiGraph | None = None  # made by _sync, then holds the nodes [0, self._synced)
        self._synced = 0
        self._nodes: dict[int, dict[str, Any]] = {}  # id -> attributes (the same dicts as the DiGraph's)
        self._nodes_view = MappingProxyType(self._nodes)
        self._ancestors: dict[int, frozenset[int]] = {}  # see ancestors()
        self._derived: dict[str, Any] = {}  # see derived()
        self._derived_size = 0
        self._by_name: dict[str, int] = {}
        self._scope = ""  # the open scopes' path ("layer1/linear"), kept up to date by _Scope
        self._with_grad: list[int] = []
        self._columns = _Columns()  # the structure again, as flat arrays: see bpgraph.topology
        self.strict = strict
        self.meta: dict[str, Any] = {}
        self.grad_root: int | None = None

    # --- read access ------------------------------------------------------------------------
    @property
    def nx(self) -> nx.DiGraph:
        """A read-only view of the underlying networkx DiGraph (node id -> attributes).

        It holds every node recorded so far; nodes recorded later join it the next time
        ``nx`` (or :meth:`successors`) is used.
        """
        self._sync()
        return self._g.copy(as_view=True)

    def _sync(self) -> None:
        """Add the nodes and edges recorded since the last call to the DiGraph.

        Written straight into its dicts, as ``DiGraph.add_node``/``add_edge`` leave them:
        the node's attribute dict is the one in :attr:`nodes`, and each edge has one data
        dict shared by ``_succ[u][v]`` and ``_pred[v][u]`` (a repeated operand is one edge).
        """
        g = self._g
        if g is None:  # made when first asked for: an empty DiGraph costs about 5 µs, a few leaves' worth
            g = self._g = nx.DiGraph()
        nodes, start, end = self._nodes, self._synced, len(self._nodes)
        if start == end:
            return
        node, succ, pred = g._node, g._succ, g._pred
        for i in range(start, end):
            attrs = nodes[i]
            node[i] = attrs
            succ[i] = {}
            preds = pred[i] = {}
            for o in attrs["operands"]:
                if o not in preds:
                    preds[o] = succ[o][i] = {}
        self._synced = end
        cache = getattr(g, "__networkx_cache__", None)
        if cache:
            cache.clear()

    @property
    def nodes(self) -> Mapping[int, dict[str, Any]]:
        """Node id -> attribute dict, in recording order (read, don't edit)."""
        return self._nodes_view

    def __getstate__(self) -> dict[str, Any]:
        """The node dicts and what recording keeps; not the caches (the columns among them)
        nor the read-only proxy, which cannot be pickled or deep-copied."""
        state = self.__dict__.copy()
        for cache in ("_nodes_view", "_ancestors", "_derived", "_derived_size", "_columns"):
            del state[cache]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Older versions also pickled use counts, the columns and a list of the open scopes: the
        # first two are made anew instead, the last is in ``_scope`` already.
        self.__dict__.update((key, value) for key, value in state.items() if key not in _NOT_RESTORED)
        self._nodes_view = MappingProxyType(self._nodes)
        self._ancestors = {}
        self._derived, self._derived_size = {}, 0
        self._columns = _Columns()

    def uses(self, ref: Tensor | int | str) -> int:
        """How many operand slots hold ``ref`` (``y = x * x`` uses x twice).

        Counted for every node at once, in one numpy pass over the operand column (some 30 µs
        at 10,000 nodes), and remembered until the graph grows.
        """
        from .topology import use_counts  # topology reads this module

        node_id = self.id_of(ref)
        return int(use_counts(self)[node_id])

    def successors(self, node_id: int) -> Iterator[int]:
        """Ids of the nodes that use ``node_id`` as an operand."""
        g = self._g
        if g is None or self._synced != len(self._nodes):
            self._sync()
            g = self._g
        return iter(g._succ[node_id])

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
        if isinstance(ref, (int, np.integer)) and int(ref) in self._nodes:
            return int(ref)
        raise UnknownNodeError(str(ref), self._by_name)

    def node(self, ref: Tensor | int | str) -> dict[str, Any]:
        """The attribute dict of a node (treat it as read-only)."""
        return self._nodes[self.id_of(ref)]

    def name_of(self, node_id: int) -> str:
        return self._nodes[node_id]["name"]

    def operands(self, ref: Tensor | int | str) -> list[Tensor]:
        """The node's operands, in order and with repeats (``x * x`` gives ``[x, x]``)."""
        return [Tensor(self, i) for i in self.node(ref)["operands"]]

    def ancestors(self, ref: Tensor | int | str) -> set[int]:
        """Ids of every node ``ref`` depends on, including itself (iterative).

        A node's ancestors never change once it is recorded, so the last few answers are kept
        (a drawing asks for the root's several times); each call returns its own set.
        """
        start = self.id_of(ref)
        known = self._ancestors.get(start)
        if known is None:
            known = self._ancestors[start] = frozenset(self._find_ancestors(start))
            if len(self._ancestors) > ANCESTOR_CACHE:
                del self._ancestors[next(iter(self._ancestors))]  # the oldest answer
        return set(known)

    def derived(self, key: str, compute: Callable[[Graph], _T]) -> _T:
        """``compute(self)``, remembered until the next node is recorded.

        For values that depend only on the graph's structure (operands, kinds, ops, scopes),
        which recording new nodes is the only way to change (node dicts are read-only to
        callers).  The :data:`DERIVED_CACHE` answers used last are kept, all for the current
        number of nodes; share them, don't edit them.
        """
        size = len(self._nodes)
        if size != self._derived_size:
            self._derived.clear()
            self._derived_size = size
        if key in self._derived:
            value = self._derived[key] = self._derived.pop(key)  # now the last one used
            return value
        value = compute(self)
        self._derived[key] = value
        while len(self._derived) > DERIVED_CACHE:
            del self._derived[next(iter(self._derived))]  # the one used longest ago
        return value

    def _find_ancestors(self, start: int) -> Iterator[int]:
        nodes = self._nodes
        # One pass down the ids (a topological order): a node is marked once every user
        # below ``start`` has been seen, so no stack and no set lookups are needed.
        marked = bytearray(start + 1)
        marked[start] = 1
        for i in range(start, -1, -1):
            if marked[i]:
                for o in nodes[i]["operands"]:
                    marked[o] = 1
        return itertools.compress(range(start + 1), marked)

    # --- recording ----------------------------------------------------------------------------
    def param(self, value: Any, name: str | None = None, *, copy: bool = True) -> Tensor:
        """A trainable leaf (W, b). Values are copied, stored as float and made read-only.

        ``copy=False`` keeps a read-only view of ``value`` instead of a copy (see :meth:`input`).
        """
        arr = np.array(value, copy=True) if copy else _view(value)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float64)
        return self._leaf("param", arr, name, requires_grad=True)

    def input(self, value: Any, name: str | None = None, *, requires_grad: bool = False,
              copy: bool = True) -> Tensor:
        """A data leaf (X, Y). Copied and read-only; no gradient unless ``requires_grad``.

        ``copy=False`` skips the copy (for a large data set): the node keeps a read-only view
        of your array, so the graph stays right only while you do not change that array.
        """
        arr = np.array(value, copy=True) if copy else _view(value)
        return self._leaf("input", arr, name, requires_grad)

    def const(self, value: Any, name: str | None = None) -> Tensor:
        """A constant leaf (λ, m, a dropout mask, a literal in an expression)."""
        return self._leaf("const", np.array(value, copy=True), name, requires_grad=False)

    def _leaf(self, kind: str, arr: np.ndarray, name: str | None, requires_grad: bool) -> Tensor:
        if arr.dtype.kind not in "biufc" and (arr.dtype == object or not np.issubdtype(arr.dtype, np.number)):
            raise GraphError(f"{kind} {name or ''}: values must be numeric, got dtype {arr.dtype}")
        arr.setflags(False)  # write=False (positional: the keyword alone costs ~0.1 µs)
        return self._add(kind, None, (), NO_PARAMS, arr, name, requires_grad)

    def record(self, op: str, operands: Sequence[Any], params: Mapping[str, Any] | None = None,
               name: str | None = None) -> Tensor:
        """Run ``op`` forward on ``operands`` and add its result node. Non-tensors become consts."""
        spec = _ops.OPS.get(op)
        if spec is None:
            raise GraphError(f"unknown op {op!r}; known ops: {', '.join(sorted(_ops.OPS))}")
        arity = spec.arity
        if arity is not None and len(operands) != arity:
            raise GraphError(f"{op} takes {arity} operand(s), got {len(operands)}")
        nodes = self._nodes
        ids, values, requires_grad = [], [], False
        for o in operands:  # a plain loop: this is the hot path of recording
            i = o.id if type(o) is Tensor and o.graph is self else self._operand_id(o)
            attrs = nodes[i]
            ids.append(i)
            values.append(attrs["value"])
            if attrs["requires_grad"]:
                requires_grad = True
        params = dict(params) if params else NO_PARAMS
        token = FP_STATE.set(FP_IGNORE)  # NaN/inf are reported below, naming the node
        try:
            out = spec.forward(*values, **params)
        except (ValueError, TypeError, IndexError) as exc:
            args = ", ".join(f"{nodes[i]['name']} {nodes[i]['value'].shape}" for i in ids)
            raise OpError(f"{op}({args}): {exc}") from None
        finally:
            FP_STATE.reset(token)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        out.setflags(False)  # write=False, positional as in _leaf
        tensor = self._add("op", op, tuple(ids), params, out, name, requires_grad)
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
        nodes = self._nodes
        node_id = len(nodes)
        if name is None:
            name = self._default_name(op or kind, node_id)
        elif type(name) is not str or not name or name in self._by_name:
            self._check_new_name(name)
        nodes[node_id] = {"name": name, "kind": kind, "op": op, "operands": operands, "params": params,
                          "value": value, "grad": None, "scope": self._scope,
                          "requires_grad": requires_grad}  # the DiGraph gets it in _sync
        self._by_name[name] = node_id
        if node_id & _CATCH_UP_MASK == _CATCH_UP_MASK:  # every 4,096 nodes: see _Columns
            self._columns.catch_up(nodes)
        return Tensor(self, node_id)

    def _default_name(self, base: str, node_id: int) -> str:
        name = f"{base}_{node_id}"
        while name in self._by_name:
            name += "'"
        return name

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str):
            raise GraphError(f"a node name must be a string, got {type(name).__name__}")
        if not name:
            raise GraphError("a node name cannot be empty (it could not be looked up, shown or "
                             "saved); leave name=None for a default such as 'tanh_3'")
        if name in self._by_name:
            raise GraphError(f"the name {name!r} is already taken by node {self._by_name[name]} "
                             f"({self._describe(self._by_name[name])}); choose another name")

    def rename(self, ref: Tensor | int | str, name: str) -> None:
        """Give a node a new unique name (what :meth:`Tensor.named` calls)."""
        node_id = self.id_of(ref)
        attrs = self._nodes[node_id]
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
        return _Scope(self, name)

    # --- gradients ------------------------------------------------------------------------------
    def backward(self, root: Tensor | int | str | None = None, seed: Any = None, *,
                 inputs: bool = False) -> dict[str, np.ndarray]:
        """Backpropagate from ``root`` (default: the last node) and store the gradients.

        Returns ``{name: ∂root/∂node}`` for every node the root depends on that needs a
        gradient: params and the ops computed from them; inputs and consts too when
        ``inputs=True``.  Nodes the root does not depend on get no entry and ``grad=None``.
        Calling it again replaces the previous gradients (nothing piles up).
        """
        root_id = self.output.id if root is None else self.id_of(root)
        grads = _autodiff.gradients(self, root_id, seed, inputs=inputs)
        nodes = self._nodes
        for i in self._with_grad:
            nodes[i]["grad"] = None
        by_name = {}
        for i in sorted(grads):  # in id order, so the result lists the nodes as recorded
            attrs = nodes[i]
            attrs["grad"] = by_name[attrs["name"]] = grads[i]
        self._with_grad = list(grads)
        self.grad_root = root_id
        return by_name

    # --- replaying the forward pass -------------------------------------------------------------
    def evaluate(self, order: Iterable[int], overrides: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Recompute the ops in ``order`` (ids, ascending) with some leaf values replaced.

        Used by finite differences and by :meth:`replay`; stored values are not touched.
        """
        nodes = self._nodes
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
        nodes = self._nodes
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
        attrs = self._nodes[node_id]
        if attrs["kind"] != "op":
            return f"{attrs['kind']} of shape {attrs['value'].shape}"
        args = ", ".join(self._nodes[o]["name"] for o in attrs["operands"])
        return f"{attrs['op']}({args})"

    def _report_nonfinite(self, node_id: int) -> None:
        """Name the node where a NaN/inf value first appears, with its operands there."""
        attrs = self._nodes[node_id]
        out = attrs["value"]
        bad = np.argwhere(~np.isfinite(out))
        where = tuple(int(k) for k in bad[0]) if len(bad) else ()
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


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _levels_to_caller() -> int:
    """The ``stacklevel`` of the first frame outside bpgraph, seen from the caller of this.

    A warning should point at the user's line (``bp.log(A3)``, ``x / y``, ``g.backward(J)``),
    and how many bpgraph frames lie in between depends on the path taken (an op helper, an
    operator, backward), so they are counted rather than fixed.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


# autodiff uses all_finite from this module: import it once this module is complete (a
# function-level import would cost microseconds on every backward).
from . import autodiff as _autodiff  # noqa: E402
