"""The sweeps over the ids that a drawing of a big graph cannot do in numpy.

Each op's depth, which cost terms each node feeds, and which it is fed by: every node's answer
needs the answers of its operands (or of its users) first, so along a 100,000-op chain there
is nothing to do in bulk.  In Python they cost about 250 ns a node, several times the Graphviz
layout of the collapsed picture at 100,000 nodes.  So each sweep is written twice, side by
side: as a plain Python loop (the reference, and what small graphs use) and as a few lines of
WebAssembly text that wasmtime (already installed for the embedded Graphviz) compiles to
machine code, used from :data:`KERNEL_MIN_NODES` visited nodes up.  The test suite checks
that both give the same arrays on random graphs.

Connected pieces (:func:`band_pieces`) are a union-find in the same kernel;
their reference is the numpy version in :func:`bpgraph.topology.components`, in rounds that
grow with the logarithm of a piece's length, which small graphs and machines without
wasmtime use.  Gathering the pieces into groups (:func:`runs`) is a counting sort there,
against numpy's sort by label.  Where the kernel cannot be loaded nothing fails: the Python and numpy
versions serve.

Every sweep reads the graph as :class:`bpgraph.topology.Topology` arrays: node i's operands
are ``tails[indptr[i]:indptr[i + 1]]``, and ids are a topological order (operands come first).
"""

from __future__ import annotations

import atexit
import ctypes
import threading
from array import array
from typing import Any, Callable

import numpy as np

#: Graphs with fewer nodes than this sweep in Python: fast enough, and no wasmtime import
#: (about 60 ms) for the small graphs most drawings are.
KERNEL_MIN_NODES = 5000


def _at(base: str, index: str, shift: int) -> str:
    """WebAssembly text for the address of element ``index`` of the array at ``base`` whose
    elements are 2**shift bytes (written out at each use: Cranelift does not inline calls)."""
    return f"(i32.add (local.get ${base}) (i32.shl {index} (i32.const {shift})))"


def _index(base: str, index: str) -> str:
    """WebAssembly text for element ``index`` of the int64 structure array at ``base`` (indptr,
    tails, edge ends: numpy's own int64, copied in without conversion), as an i32."""
    return f"(i32.wrap_i64 (i64.load {_at(base, index, 3)}))"


def _slots(node: str) -> str:
    """Set $k and $end to the first and past-the-last operand slots of ``node``."""
    return (f"(local.set $k {_index('ip', node)})"
            f"(local.set $end {_index('ip', f'(i32.add {node} (i32.const 1))')})")


_I, _K, _O = "(local.get $i)", "(local.get $k)", "(local.get $o)"
_OPERAND = f"(local.set $o {_index('tp', _K)})"
_NEXT_SLOT = "(local.set $k (i32.add (local.get $k) (i32.const 1)))"

def _node_loop(name: str, params: str, enter: str, step: str, leave: str, finish: str = "") -> str:
    """WebAssembly text of an exported function that, for each node i in [start, stop), runs
    ``enter``, then ``step`` for each of its operand slots k (operand $o), then ``leave``; and
    ``finish`` once after the last node."""
    return f"""(func (export "{name}") (param $ip i32) (param $tp i32) (param $v i32) {params}
                                (param $start i32) (param $stop i32)
    (local $i i32) (local $k i32) (local $end i32) (local $o i32) (local $acc i64) (local $x i64)
    (local.set $i (local.get $start))
    (block $done (loop $node
      (br_if $done (i32.ge_u (local.get $i) (local.get $stop)))
      {enter}
      {_slots(_I)}
      (block $last (loop $operand
        (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
        {_OPERAND}
        {step}
        {_NEXT_SLOT}
        (br $operand)))
      {leave}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node)))
    {finish})"""


_LOAD_UNIT = f"(local.set $x (i64.load {_at('unit', _I, 3)}))"
_COUNT = "(i32.wrap_i64 (local.get $acc))"
_KEEP_CROSSING = (f"(if (i64.ne (i64.load {_at('unit', _O, 3)}) (local.get $x)) (then"
                  "(local.set $acc (i64.add (local.get $acc) (i64.const 1)))"
                  f"(i64.store {_at('v', _COUNT, 3)} (i64.extend_i32_u (local.get $o)))"
                  f"(i64.store {_at('v', f'(i32.add {_COUNT} (local.get $slots))', 3)} (i64.extend_i32_u (local.get $i)))))")
_LOAD_ACC = f"(local.set $acc (i64.load {_at('v', _I, 3)}))"
_STORE_ACC = f"(i64.store {_at('v', _I, 3)} (local.get $acc))"
_LONGEST_STEP = (f"(local.set $x (i64.add (i64.load {_at('v', _O, 3)}) (i64.load {_at('add', _O, 3)})))"
                 "(if (i64.gt_s (local.get $x) (local.get $acc)) (then (local.set $acc (local.get $x))))")
_OR_UP_STEP = f"(local.set $acc (i64.or (local.get $acc) (i64.load {_at('v', _O, 3)})))"

# Functions over i32 byte offsets into the module's memory: indptr ($ip) and tails ($tp) are
# int64 arrays read as i32, values ($v, $add, $p) i64.  Each is the loop of the Python function
# of the same name below (band_pieces: of the numpy rounds in bpgraph.topology.components).
_WAT = f"""
(module
  (memory (export "memory") 1)

  ;; for i in [start, stop): v[i] = max(v[i], max over operands o of v[o] + add[o])
  {_node_loop('longest', '(param $add i32)', _LOAD_ACC, _LONGEST_STEP, _STORE_ACC)}

  ;; for i from top down to 0: each operand o of i gets v[o] |= v[i]
  (func (export "or_down") (param $ip i32) (param $tp i32) (param $v i32) (param $top i32)
    (local $i i32) (local $k i32) (local $end i32) (local $o i32) (local $bits i64)
    (local.set $i (i32.add (local.get $top) (i32.const 1)))
    (block $done (loop $node
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (local.set $bits (i64.load {_at('v', _I, 3)}))
      (if (i64.ne (local.get $bits) (i64.const 0)) (then
        {_slots(_I)}
        (block $last (loop $operand
          (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
          {_OPERAND}
          (i64.store {_at('v', _O, 3)} (i64.or (i64.load {_at('v', _O, 3)}) (local.get $bits)))
          {_NEXT_SLOT}
          (br $operand)))))
      (br $node))))

  ;; for i in [start, stop): v[i] |= v[o] for each operand o of i
  {_node_loop('or_up', '', _LOAD_ACC, _OR_UP_STEP, _STORE_ACC)}

  ;; the edges whose operand lies in another unit than its node (by the int64 unit of each
  ;; node), in slot order: their count c in v[0], operands in v[1..c], nodes from v[1 + slots]
  {_node_loop('crossing', '(param $unit i32) (param $slots i32)', _LOAD_UNIT, _KEEP_CROSSING, '',
              "(i64.store (local.get $v) (local.get $acc))")}

  ;; The root of x in the parent array at $p, halving the path on the way.
  (func $find (param $p i32) (param $x i32) (result i32)
    (local $up i32)
    (block $done (loop $climb
      (local.set $up (i32.wrap_i64 (i64.load {_at('p', '(local.get $x)', 3)})))
      (br_if $done (i32.eq (local.get $up) (local.get $x)))
      (local.set $up (i32.wrap_i64 (i64.load {_at('p', '(local.get $up)', 3)})))
      (i64.store {_at('p', '(local.get $x)', 3)} (i64.extend_i32_u (local.get $up)))
      (local.set $x (local.get $up))
      (br $climb)))
    (local.get $x))

  ;; Hook the larger of the roots of x and y under the smaller.
  (func $union (param $p i32) (param $x i32) (param $y i32)
    (local.set $x (call $find (local.get $p) (local.get $x)))
    (local.set $y (call $find (local.get $p) (local.get $y)))
    (if (i32.lt_u (local.get $x) (local.get $y))
      (then (i64.store {_at('p', '(local.get $y)', 3)} (i64.extend_i32_u (local.get $x)))))
    (if (i32.lt_u (local.get $y) (local.get $x))
      (then (i64.store {_at('p', '(local.get $x)', 3)} (i64.extend_i32_u (local.get $y))))))

  ;; Every node takes its root, the smallest id of its piece (a parent is never larger than its
  ;; child, so one pass up the ids does it).
  (func $flatten (param $p i32) (param $size i32)
    (local $i i32)
    (block $flat (loop $node
      (br_if $flat (i32.ge_u (local.get $i) (local.get $size)))
      (i64.store {_at('p', _I, 3)} (i64.load {_at('p', f"(i32.wrap_i64 (i64.load {_at('p', _I, 3)}))", 3)}))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node))))

  ;; pieces of the graph's own edges: op i joins operand o when both are marked in $mark (a
  ;; byte per node) and have the same $band; then the extra pairs x[j] -- y[j]; into parents p.
  ;; Nodes come up the ids, so when i is reached nothing points at it yet: it starts as its
  ;; own root $r, and each joined operand costs one find, not the two of a union.
  (func (export "band_pieces") (param $ip i32) (param $tp i32) (param $p i32) (param $band i32)
                               (param $mark i32) (param $x i32) (param $y i32) (param $size i32) (param $pairs i32)
    (local $i i32) (local $k i32) (local $end i32) (local $o i32) (local $b i64) (local $r i32) (local $up i32)
    (block $done (loop $node
      (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
      (i64.store {_at('p', _I, 3)} (i64.extend_i32_u (local.get $i)))
      (if (i32.load8_u {_at('mark', _I, 0)}) (then
        (local.set $b (i64.load {_at('band', _I, 3)}))
        (local.set $r (local.get $i))
        {_slots(_I)}
        (block $last (loop $operand
          (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
          {_OPERAND}
          (if (i32.and (i32.load8_u {_at('mark', _O, 0)})
                       (i64.eq (i64.load {_at('band', _O, 3)}) (local.get $b)))
            (then
              ;; $o becomes its root, halving the path ($find, written out: calls are not inlined)
              (block $found (loop $climb
                (local.set $up (i32.wrap_i64 (i64.load {_at('p', _O, 3)})))
                (br_if $found (i32.eq (local.get $up) (local.get $o)))
                (local.set $up (i32.wrap_i64 (i64.load {_at('p', '(local.get $up)', 3)})))
                (i64.store {_at('p', _O, 3)} (i64.extend_i32_u (local.get $up)))
                (local.set $o (local.get $up))
                (br $climb)))
              ;; hook the larger root under the smaller; $r stays the root of i
              (if (i32.lt_u (local.get $o) (local.get $r))
                (then (i64.store {_at('p', '(local.get $r)', 3)} (i64.extend_i32_u (local.get $o)))
                      (local.set $r (local.get $o))))
              (if (i32.lt_u (local.get $r) (local.get $o))
                (then (i64.store {_at('p', _O, 3)} (i64.extend_i32_u (local.get $r)))))))
          {_NEXT_SLOT}
          (br $operand)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node)))
    (local.set $k (i32.const 0))
    (block $extra (loop $pair
      (br_if $extra (i32.ge_u (local.get $k) (local.get $pairs)))
      (call $union (local.get $p) {_index('x', _K)} {_index('y', _K)})
      {_NEXT_SLOT}
      (br $pair)))
    (call $flatten (local.get $p) (local.get $size)))

  ;; Gather the nodes marked in $mark into runs by $label (a node id): run r is the r-th
  ;; label met going up the ids, so runs come in order of their smallest member.  Into $out,
  ;; `size` int64s each: room for the run of each node (an i32, -1 when unmarked), the
  ;; members run after run (ascending in each), the run bounds (one more), each run's
  ;; smallest $depth of its nodes at depth 0 or more, and largest; then, `width` per run, how
  ;; many of its nodes have each $code from 0 to width - 1.  $slot: room for `size` int64s.
  ;; Returns the number of runs.
  (func (export "runs") (param $ip i32) (param $tp i32) (param $out i32) (param $label i32) (param $mark i32)
                        (param $depth i32) (param $code i32) (param $slot i32) (param $size i32) (param $width i32)
                        (result i32)
    (local $i i32) (local $l i32) (local $r i32) (local $d i64) (local $count i32)
    (local $members i32) (local $bounds i32) (local $lo i32) (local $hi i32) (local $at i32) (local $counts i32)
    (local.set $members (i32.add (local.get $out) (i32.shl (local.get $size) (i32.const 3))))
    (local.set $bounds (i32.add (local.get $members) (i32.shl (local.get $size) (i32.const 3))))
    (local.set $lo (i32.add (local.get $bounds) (i32.shl (i32.add (local.get $size) (i32.const 1)) (i32.const 3))))
    (local.set $hi (i32.add (local.get $lo) (i32.shl (local.get $size) (i32.const 3))))
    (local.set $counts (i32.add (local.get $hi) (i32.shl (local.get $size) (i32.const 3))))
    (memory.fill (local.get $slot) (i32.const 0) (i32.shl (local.get $size) (i32.const 3)))
    ;; each marked node's run (slot[label] holds run + 1 once the label is met), the run sizes
    ;; (in bounds[r + 1]) and depth ranges
    (block $done (loop $node
      (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
      (if (i32.load8_u {_at('mark', _I, 0)})
        (then
          (local.set $l {_index('label', _I)})
          (local.set $r (i32.wrap_i64 (i64.load {_at('slot', '(local.get $l)', 3)})))
          (if (i32.eqz (local.get $r))
            (then
              (local.set $r (local.get $count))
              (local.set $count (i32.add (local.get $count) (i32.const 1)))
              (i64.store {_at('slot', '(local.get $l)', 3)} (i64.extend_i32_u (local.get $count)))
              (i64.store {_at('bounds', '(i32.add (local.get $r) (i32.const 1))', 3)} (i64.const 0))
              (i64.store {_at('lo', '(local.get $r)', 3)} (i64.const 0x7fffffffffffffff))
              (i64.store {_at('hi', '(local.get $r)', 3)} (i64.const -1))
              (memory.fill {_at('counts', '(i32.mul (local.get $r) (local.get $width))', 3)} (i32.const 0)
                           (i32.shl (local.get $width) (i32.const 3))))
            (else (local.set $r (i32.sub (local.get $r) (i32.const 1)))))
          (i32.store {_at('out', _I, 2)} (local.get $r))
          (local.set $at {_at('bounds', '(i32.add (local.get $r) (i32.const 1))', 3)})
          (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.const 1)))
          (local.set $d (i64.load {_at('depth', _I, 3)}))
          (if (i32.and (i64.ge_s (local.get $d) (i64.const 0))
                       (i64.lt_s (local.get $d) (i64.load {_at('lo', '(local.get $r)', 3)})))
            (then (i64.store {_at('lo', '(local.get $r)', 3)} (local.get $d))))
          (if (i64.gt_s (local.get $d) (i64.load {_at('hi', '(local.get $r)', 3)}))
            (then (i64.store {_at('hi', '(local.get $r)', 3)} (local.get $d))))
          (local.set $d (i64.load {_at('code', _I, 3)}))
          (if (i32.and (i32.ne (local.get $width) (i32.const 0)) (i64.ge_s (local.get $d) (i64.const 0)))
            (then
              (local.set $at {_at('counts', '(i32.add (i32.mul (local.get $r) (local.get $width)) (i32.wrap_i64 (local.get $d)))', 3)})
              (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.const 1))))))
        (else (i32.store {_at('out', _I, 2)} (i32.const -1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node)))
    ;; sizes to bounds, and each run's next free place (in slot[r], no longer needed by label)
    (i64.store (local.get $bounds) (i64.const 0))
    (local.set $r (i32.const 0))
    (block $summed (loop $run
      (br_if $summed (i32.ge_u (local.get $r) (local.get $count)))
      (local.set $d (i64.load {_at('bounds', '(local.get $r)', 3)}))
      (i64.store {_at('slot', '(local.get $r)', 3)} (local.get $d))
      (local.set $at {_at('bounds', '(i32.add (local.get $r) (i32.const 1))', 3)})
      (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (local.get $d)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $run)))
    ;; each member to its run's next place, up the ids
    (local.set $i (i32.const 0))
    (block $placed (loop $member
      (br_if $placed (i32.ge_u (local.get $i) (local.get $size)))
      (local.set $r (i32.load {_at('out', _I, 2)}))
      (if (i32.ge_s (local.get $r) (i32.const 0))
        (then
          (local.set $at {_at('slot', '(local.get $r)', 3)})
          (i64.store {_at('members', '(i32.wrap_i64 (i64.load (local.get $at)))', 3)} (i64.extend_i32_u (local.get $i)))
          (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $member)))
    (local.get $count))
)
"""


# --- the reference loops ------------------------------------------------------------------
def _longest_py(indptr: list[int], tails: list[int], v: list[int], add: list[int], start: int, stop: int) -> None:
    for i in range(start, stop):
        best = v[i]
        for o in tails[indptr[i]:indptr[i + 1]]:  # a plain loop: several times faster than max() here
            x = v[o] + add[o]
            if x > best:
                best = x
        v[i] = best


def _or_down_py(indptr: list[int], tails: list[int], v: list[int], top: int) -> None:
    for i in range(top, -1, -1):
        bits = v[i]
        if bits:
            for o in tails[indptr[i]:indptr[i + 1]]:
                v[o] |= bits


def _or_up_py(indptr: list[int], tails: list[int], v: list[int], start: int, stop: int) -> None:
    for i in range(start, stop):
        bits = v[i]
        for o in tails[indptr[i]:indptr[i + 1]]:
            bits |= v[o]
        v[i] = bits


_PYTHON = {"longest": _longest_py, "or_down": _or_down_py, "or_up": _or_up_py}


# --- running a sweep ----------------------------------------------------------------------
def _copied(out: np.ndarray, _: Any) -> np.ndarray:
    """What :meth:`_Kernel.run` returns by default: the written array, copied out."""
    return out.copy()


class _Kernel:
    """One wasmtime instance of :data:`_WAT`, its memory grown to fit the largest graph so far.

    WebAssembly memory never shrinks, so the process keeps what the largest drawing needed:
    about 110 bytes per node (22 MB after a 200,000-node graph, a tenth of what the graph
    itself holds), mostly the room :func:`runs` writes its runs into.
    """

    def __init__(self) -> None:
        import wasmtime  # imported only for big graphs: about 60 ms

        self.store = wasmtime.Store()
        instance = wasmtime.Instance(self.store, wasmtime.Module(self.store.engine, _WAT), [])
        exports = instance.exports(self.store)
        self.memory = exports["memory"]
        names = (*_PYTHON, "band_pieces", "crossing", "runs")
        self.functions = {name: _caller(self.store, exports[name]) for name in names}
        try:
            self.functions["or_up"](0, 0, 0, 0, 0)  # a sweep over no node: can this wasmtime be called so?
        except Exception:
            self.functions = {name: _caller(self.store, exports[name], fast=False) for name in names}
        self.lock = threading.Lock()  # a wasmtime Store is not for two threads at once
        self.structure: tuple[np.ndarray, np.ndarray] | None = None  # what memory holds first
        self.view: np.ndarray | None = None  # see _view
        self.view_at = (0, 0)
        self.offsets = (0, 0)

    def run(self, name: str, structure: tuple[np.ndarray, np.ndarray], values: list[np.ndarray | int],
            bounds: tuple[int, ...], take: Callable[[np.ndarray, Any], Any] = _copied) -> Any:
        """Copy ``structure`` in as int64 (indptr and tails) and
        the contiguous ``values`` after it, run ``name``, and return ``take(out, result)``:
        ``out`` is ``values[0]`` as int64, as it is afterwards (the array the sweep writes;
        given as a length, it is only room that the kernel fills itself), a view of the
        kernel's memory that ``take`` copies what it needs from; ``result`` is what ``name``
        returns.

        A read-only structure stays in memory: when the same arrays come again, as a drawing's
        several sweeps over one topology do, they are not converted and copied again.
        """
        with self.lock:
            known = self.structure is not None and all(a is b for a, b in zip(structure, self.structure))
            if not known:
                ends = [np.ascontiguousarray(a, dtype=np.int64) for a in structure]
                self._fit(ends[0].nbytes + ends[1].nbytes)
                memory = self._view()
                memory[:ends[0].nbytes] = ends[0].view(np.uint8)
                memory[ends[0].nbytes:ends[0].nbytes + ends[1].nbytes] = ends[1].view(np.uint8)
                # kept for next time only when read-only all the way down (as Topology's arrays,
                # and the append-only columns they view): nobody can change them
                fixed = all(isinstance(a, np.ndarray) and not a.flags.writeable
                            and (a.flags.owndata or isinstance(getattr(a.base, "obj", None), array))
                            for a in structure)
                self.structure, self.offsets = (structure if fixed else None), (0, ends[0].nbytes)
            at = self.offsets[1] + len(structure[1]) * 8
            offsets, sizes = [], [8 * a if isinstance(a, int) else a.nbytes for a in values]
            for size in sizes:
                offsets.append(at)
                at += -(-size // 8) * 8
            self._fit(at)
            memory = self._view()
            for a, start in zip(values, offsets):
                if not isinstance(a, int):
                    memory[start:start + a.nbytes] = a.reshape(-1).view(np.uint8)
            result = self.functions[name](*self.offsets, *offsets, *bounds)
            return take(memory[offsets[0]:offsets[0] + sizes[0]].view(np.int64), result)

    def _fit(self, size: int) -> None:
        pages = -(-size // 65536)
        if self.memory.size(self.store) < pages:
            self.memory.grow(self.store, pages - self.memory.size(self.store))

    def _view(self) -> np.ndarray:
        """The module's memory as bytes (made again only when growing has moved or resized it)."""
        base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
        size = self.memory.data_len(self.store)
        if self.view is None or self.view_at != (base, size):
            self.view = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(base))
            self.view_at = (base, size)
        return self.view


def _caller(store: Any, func: Any, fast: bool = True) -> Callable[..., Any]:
    """``func`` as a Python function of its i32 arguments: :func:`_unchecked` where that can
    be made (and ``fast``), else the binding's call."""
    return (_unchecked(store, func) if fast else None) or (lambda *args: func(store, *args))


def _unchecked(store: Any, func: Any) -> Callable[..., Any] | None:
    """A call of ``func`` through wasmtime's C entry point for unchecked calls, or None where
    it cannot be reached (another wasmtime version).  The Python binding's own call looks the
    function's type up again and converts every argument on every call, about 12 µs an
    argument, 0.1 ms a sweep, a tenth of the first drawing of a 10,000-node graph."""
    try:
        from wasmtime import _ffi as ffi

        kind = func.type(store)
        params, results = len(kind.params), len(kind.results)
        values = (ffi.wasmtime_val_raw_t * max(params, results, 1))()
        unchecked, target, context = ffi.wasmtime_func_call_unchecked, ctypes.byref(func._func), store._context
    except Exception:  # not this binding's layout
        return None

    def call(*args: int) -> int | None:
        if len(args) != params:  # unchecked: a missing argument would be the last call's
            raise TypeError(f"a sweep of {params} arguments was given {len(args)}")
        for k, arg in enumerate(args):
            values[k].i32 = arg
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = unchecked(context(), target, values, len(values), ctypes.byref(trap))
        if error or trap:  # a bug in a sweep: free these, and let the binding's call say what it was
            if error:
                ffi.wasmtime_error_delete(error)
            if trap:
                ffi.wasm_trap_delete(trap)
            return func(store, *args)
        return values[0].i32 if results else None

    return call


def _fits(first: np.ndarray, second: np.ndarray, *values: np.ndarray | int) -> bool:
    """Whether the kernel's memory can hold an int64 structure and these values (an int: that
    many int64s) with i32 byte offsets: 2 GiB, some 50 million nodes; larger graphs sweep in
    Python."""
    room = sum(8 * v if isinstance(v, int) else 8 * len(v) for v in values)
    return 8 * (len(first) + len(second)) + room + 8 * len(values) < 2**31


_kernel: _Kernel | None = None
_kernel_failed = False


_making = threading.Lock()


def _get_kernel() -> _Kernel | None:
    """The compiled kernel, or None where wasmtime cannot be loaded (the Python loops serve)."""
    global _kernel, _kernel_failed
    if _kernel is None and not _kernel_failed:
        with _making:  # one kernel, even when two threads draw their first big graph at once
            if _kernel is None and not _kernel_failed:
                try:
                    _kernel = _Kernel()
                except Exception:  # no wasmtime, or no executable memory here: fall back, never fail
                    _kernel_failed = True
                else:
                    atexit.register(_drop_kernel)  # while wasmtime can still free it, not at teardown
    return _kernel


def _drop_kernel() -> None:
    global _kernel
    _kernel = None


def _sweep(name: str, indptr: np.ndarray, tails: np.ndarray, arrays: list[np.ndarray],
           bounds: tuple[int, ...], work: int, kernel: bool | None) -> np.ndarray:
    """Run sweep ``name`` over integer ``arrays`` (the first is the one it writes) with integer
    ``bounds``; returns that first array, new (int64, or object for masks past 63 bits, which
    only the Python loops take).  ``work`` is how many nodes it visits: by default the
    compiled kernel is used from :data:`KERNEL_MIN_NODES` of them up, where it can be
    loaded; ``kernel`` forces the choice (the tests compare both)."""
    dtype = object if any(np.asarray(a).dtype == object for a in arrays) else np.int64  # over 63 bits
    arrays = [np.ascontiguousarray(a, dtype=dtype) for a in arrays]  # the kernel copies bytes
    size = len(arrays[0])
    wanted = kernel if kernel is not None else work >= KERNEL_MIN_NODES
    compiled = _get_kernel() if wanted and dtype is np.int64 else None
    if compiled is not None and _fits(indptr, tails, *arrays):
        return compiled.run(name, (indptr, tails), arrays, bounds)
    if 8 * work < size:  # a short stretch of a big graph (terms come last): index, don't convert
        arrays = [a.copy() for a in arrays]
        _PYTHON[name](indptr, tails, *arrays, *bounds)
        return arrays[0]
    lists = [a.tolist() for a in arrays]
    _PYTHON[name](indptr.tolist(), tails.tolist(), *lists, *bounds)
    return np.array(lists[0], dtype=dtype)


def longest(indptr: np.ndarray, tails: np.ndarray, base: np.ndarray, add: np.ndarray,
            start: int = 0, *, kernel: bool | None = None) -> np.ndarray:
    """For each node from ``start`` on: the largest of ``base[i]`` and, over its operands o,
    ``result[o] + add[o]``.  Nodes before ``start`` keep ``base``.  (An op's depth: base 0 for
    ops and -1 for leaves, add 1.)"""
    return _sweep("longest", indptr, tails, [base, add], (int(start), len(base)), len(base) - int(start), kernel)


def or_down(indptr: np.ndarray, tails: np.ndarray, bits: np.ndarray, top: int, *,
            kernel: bool | None = None) -> np.ndarray:
    """``bits`` ORed from every node at or below ``top`` into its operands, from ``top`` down:
    afterwards node i holds the bits of every node it feeds (and its own)."""
    return _sweep("or_down", indptr, tails, [bits], (int(top),), int(top) + 1, kernel)


def or_up(indptr: np.ndarray, tails: np.ndarray, bits: np.ndarray, start: int, stop: int, *,
          kernel: bool | None = None) -> np.ndarray:
    """Each node in ``[start, stop)``, in id order, ORs in its operands' bits: afterwards node i
    holds the bits of every node in that range it depends on (and its own)."""
    return _sweep("or_up", indptr, tails, [bits], (int(start), int(stop)), int(stop) - int(start), kernel)


def _kernel_pass(name: str, indptr: np.ndarray, tails: np.ndarray, values: list[np.ndarray | int],
                 bounds: tuple[int, ...], take: Callable[[np.ndarray, Any], Any] = _copied) -> Any:
    """:meth:`_Kernel.run` of a pass that has no Python loop beside it: None below
    :data:`KERNEL_MIN_NODES` nodes, past what the kernel's memory can hold, or where the
    kernel cannot be loaded (the caller then does the same in numpy)."""
    if len(indptr) - 1 < KERNEL_MIN_NODES or not _fits(indptr, tails, *values):
        return None
    compiled = _get_kernel()
    if compiled is None:
        return None
    return compiled.run(name, (indptr, tails), values, bounds, take)


def band_pieces(indptr: np.ndarray, tails: np.ndarray, band: np.ndarray, mark: np.ndarray,
                pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """For each node, the smallest id of its piece when every marked op is joined to each
    marked operand of the same ``band``, and ``pairs[0][j]`` to ``pairs[1][j]``: one kernel
    pass over the graph's own edges, so no array of the joining edges is made.  None where
    below :data:`KERNEL_MIN_NODES` nodes or where the kernel cannot be loaded (the caller then
    joins the edges in numpy, :func:`bpgraph.topology.components`)."""
    size = len(band)
    arrays = [np.ascontiguousarray(band, dtype=np.int64), np.ascontiguousarray(mark, dtype=np.uint8),
              *(np.ascontiguousarray(a, dtype=np.int64) for a in pairs)]
    return _kernel_pass("band_pieces", indptr, tails, [size, *arrays], (size, len(pairs[0])))


def crossing(indptr: np.ndarray, tails: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The edges, as ``(tails, heads)`` in slot order, whose operand lies in another unit than
    its node (``unit`` per node).  One kernel pass, without a mask and two gathers the size of
    the edges; None where :func:`band_pieces` would be (the caller compares ``unit[tails]``
    and ``unit[heads]``)."""
    size, slots = len(unit), len(tails)
    unit = np.ascontiguousarray(unit, dtype=np.int64)
    room = 1 + 2 * slots  # the kernel's output: see "crossing" in _WAT

    def take(out: np.ndarray, _: Any) -> tuple[np.ndarray, np.ndarray]:
        count = int(out[0])
        return out[1:1 + count].copy(), out[1 + slots:1 + slots + count].copy()

    return _kernel_pass("crossing", indptr, tails, [room, unit], (slots, 0, size), take)


def runs(indptr: np.ndarray, tails: np.ndarray, label: np.ndarray, mark: np.ndarray, depth: np.ndarray,
         code: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None:
    """The nodes marked in ``mark`` gathered by ``label`` (a node id each), in runs ordered by
    their smallest member: ``(members, bounds, lows, highs, counts)``, run r holding
    ``members[bounds[r]:bounds[r + 1]]`` (ascending), its smallest ``depth`` of 0 or more,
    its largest, and ``counts[r * width + c]`` of its nodes with ``code`` c (codes below 0
    are not counted; with more than 8 codes counts is None, and the caller counts).

    One kernel pass and a counting sort; None where :func:`band_pieces` would be, or where a
    label is not a node id (the caller sorts by label in numpy).  The graph's edges are not
    read: they are passed so that the kernel keeps the structure it holds for the drawing's
    other sweeps."""
    size = len(label)
    if not size or label.min() < 0 or label.max() >= size:  # not node ids (bands merged outright)
        return None
    width = width if width <= 8 else 0  # a table of runs x codes, as big as the graph x width
    arrays = [np.ascontiguousarray(label, dtype=np.int64), np.ascontiguousarray(mark, dtype=np.uint8),
              np.ascontiguousarray(depth, dtype=np.int64), np.ascontiguousarray(code, dtype=np.int64)]
    room = (5 + width) * size + 1  # the kernel's output: see "runs" in _WAT

    def take(out: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        bounds = out[2 * size:2 * size + count + 1].copy()
        lows, highs, counts = 3 * size + 1, 4 * size + 1, 5 * size + 1
        return (out[size:size + int(bounds[-1])].copy(), bounds, out[lows:lows + count].copy(),
                out[highs:highs + count].copy(), out[counts:counts + count * width].copy() if width else None)

    return _kernel_pass("runs", indptr, tails, [room, *arrays, size], (size, width), take)
