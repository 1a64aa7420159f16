"""The three sweeps over the ids that a drawing of a big graph cannot do in numpy.

Each op's depth, which cost terms each node feeds, and which it is fed by: every node's answer
needs the answers of its operands (or of its users) first, so along a 100,000-op chain there
is nothing to do in bulk.  In Python they cost about 250 ns a node, several times the Graphviz
layout of the collapsed picture at 100,000 nodes.  So each sweep is written twice, side by
side: as a plain Python loop (the reference, and what small graphs use) and as a few lines of
WebAssembly text that wasmtime (already installed for the embedded Graphviz) compiles to
machine code, used from :data:`KERNEL_MIN_NODES` nodes up.  The test suite checks that both
give the same arrays on random graphs.

Every sweep reads the graph as :class:`bpgraph.topology.Topology` arrays: node i's operands
are ``tails[indptr[i]:indptr[i + 1]]``, and ids are a topological order (operands come first).
"""

from __future__ import annotations

import atexit
import ctypes
import threading
import numpy as np

#: Graphs with fewer nodes than this sweep in Python: fast enough, and no wasmtime import
#: (about 60 ms) for the small graphs most drawings are.
KERNEL_MIN_NODES = 5000

# Three functions over i32 offsets into the module's memory: indptr and tails are i32 arrays,
# values i64.  Each is the loop of the Python function of the same name below.
_WAT = r"""
(module
  (memory (export "memory") 1)

  ;; Address of element $i of the array at $base with 2^$shift-byte elements.
  (func $at (param $base i32) (param $i i32) (param $shift i32) (result i32)
    (i32.add (local.get $base) (i32.shl (local.get $i) (local.get $shift))))

  ;; for i in [start, stop): v[i] = max(v[i], max over operands o of v[o] + add[o])
  (func (export "longest") (param $ip i32) (param $tp i32) (param $v i32) (param $add i32)
                           (param $start i32) (param $stop i32)
    (local $i i32) (local $k i32) (local $end i32) (local $o i32) (local $best i64) (local $x i64)
    (local.set $i (local.get $start))
    (block $done (loop $node
      (br_if $done (i32.ge_u (local.get $i) (local.get $stop)))
      (local.set $best (i64.load (call $at (local.get $v) (local.get $i) (i32.const 3))))
      (local.set $k (i32.load (call $at (local.get $ip) (local.get $i) (i32.const 2))))
      (local.set $end (i32.load (call $at (local.get $ip) (i32.add (local.get $i) (i32.const 1)) (i32.const 2))))
      (block $last (loop $operand
        (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $o (i32.load (call $at (local.get $tp) (local.get $k) (i32.const 2))))
        (local.set $x (i64.add (i64.load (call $at (local.get $v) (local.get $o) (i32.const 3)))
                               (i64.load (call $at (local.get $add) (local.get $o) (i32.const 3)))))
        (if (i64.gt_s (local.get $x) (local.get $best)) (then (local.set $best (local.get $x))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $operand)))
      (i64.store (call $at (local.get $v) (local.get $i) (i32.const 3)) (local.get $best))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node))))

  ;; for i from top down to 0: each operand o of i gets v[o] |= v[i]
  (func (export "or_down") (param $ip i32) (param $tp i32) (param $v i32) (param $top i32)
    (local $i i32) (local $k i32) (local $end i32) (local $a i32) (local $bits i64)
    (local.set $i (i32.add (local.get $top) (i32.const 1)))
    (block $done (loop $node
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (local.set $bits (i64.load (call $at (local.get $v) (local.get $i) (i32.const 3))))
      (if (i64.ne (local.get $bits) (i64.const 0)) (then
        (local.set $k (i32.load (call $at (local.get $ip) (local.get $i) (i32.const 2))))
        (local.set $end (i32.load (call $at (local.get $ip) (i32.add (local.get $i) (i32.const 1)) (i32.const 2))))
        (block $last (loop $operand
          (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
          (local.set $a (call $at (local.get $v) (i32.load (call $at (local.get $tp) (local.get $k) (i32.const 2)))
                              (i32.const 3)))
          (i64.store (local.get $a) (i64.or (i64.load (local.get $a)) (local.get $bits)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $operand)))))
      (br $node))))

  ;; for i in [start, stop): v[i] |= v[o] for each operand o of i
  (func (export "or_up") (param $ip i32) (param $tp i32) (param $v i32) (param $start i32) (param $stop i32)
    (local $i i32) (local $k i32) (local $end i32) (local $bits i64)
    (local.set $i (local.get $start))
    (block $done (loop $node
      (br_if $done (i32.ge_u (local.get $i) (local.get $stop)))
      (local.set $bits (i64.load (call $at (local.get $v) (local.get $i) (i32.const 3))))
      (local.set $k (i32.load (call $at (local.get $ip) (local.get $i) (i32.const 2))))
      (local.set $end (i32.load (call $at (local.get $ip) (i32.add (local.get $i) (i32.const 1)) (i32.const 2))))
      (block $last (loop $operand
        (br_if $last (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $bits (i64.or (local.get $bits)
          (i64.load (call $at (local.get $v) (i32.load (call $at (local.get $tp) (local.get $k) (i32.const 2)))
                          (i32.const 3)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $operand)))
      (i64.store (call $at (local.get $v) (local.get $i) (i32.const 3)) (local.get $bits))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $node))))
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
class _Kernel:
    """One wasmtime instance of :data:`_WAT`, its memory grown to fit the largest graph so far."""

    def __init__(self) -> None:
        import wasmtime  # imported only for big graphs: about 60 ms

        self.store = wasmtime.Store()
        instance = wasmtime.Instance(self.store, wasmtime.Module(self.store.engine, _WAT), [])
        exports = instance.exports(self.store)
        self.memory = exports["memory"]
        self.functions = {name: exports[name] for name in _PYTHON}
        self.lock = threading.Lock()  # a wasmtime Store is not for two threads at once

    def run(self, name: str, arrays: list[np.ndarray], scalars: tuple[int, ...]) -> np.ndarray:
        """Copy ``arrays`` in (int32 indptr and tails, then int64 ones), run ``name``, and
        return the first int64 array as it is afterwards (the one the sweep writes)."""
        offsets, size = [], 0
        for a in arrays:
            size = -(-size // 8) * 8
            offsets.append(size)
            size += a.nbytes
        with self.lock:
            pages = -(-size // 65536)
            if self.memory.size(self.store) < pages:
                self.memory.grow(self.store, pages - self.memory.size(self.store))
            base = ctypes.addressof(self.memory.data_ptr(self.store).contents)
            memory = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(base))
            for a, at in zip(arrays, offsets):
                memory[at:at + a.nbytes] = a.view(np.uint8)
            self.functions[name](self.store, *offsets, *scalars)
            at = offsets[2]
            return memory[at:at + arrays[2].nbytes].view(np.int64).copy()


_kernel: _Kernel | None = None
_kernel_failed = False


def _get_kernel() -> _Kernel | None:
    """The compiled kernel, or None where wasmtime cannot be loaded (the Python loops serve)."""
    global _kernel, _kernel_failed
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
           bounds: tuple[int, ...], kernel: bool | None) -> np.ndarray:
    """Run sweep ``name`` over integer ``arrays`` (the first is the one it writes) with integer
    ``bounds``; returns that first array, new (int64, or object for masks past 63 bits, which
    only the Python loops take).  ``kernel`` forces the choice (the tests compare
    both); by default the compiled one is used from :data:`KERNEL_MIN_NODES` nodes up, where
    it can be loaded."""
    dtype = object if any(np.asarray(a).dtype == object for a in arrays) else np.int64  # over 63 bits
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    size = len(arrays[0])
    wanted = kernel if kernel is not None else size >= KERNEL_MIN_NODES
    compiled = _get_kernel() if wanted and dtype is np.int64 else None
    if compiled is not None and len(tails) < 2**28 and size < 2**28:  # i32 byte offsets
        offsets32 = [np.asarray(indptr, dtype=np.int32), np.asarray(tails, dtype=np.int32)]
        return compiled.run(name, offsets32 + arrays, bounds)
    lists = [a.tolist() for a in arrays]
    _PYTHON[name](indptr.tolist(), tails.tolist(), *lists, *bounds)
    return np.array(lists[0], dtype=dtype)


def longest(indptr: np.ndarray, tails: np.ndarray, base: np.ndarray, add: np.ndarray,
            start: int = 0, *, kernel: bool | None = None) -> np.ndarray:
    """For each node from ``start`` on: the largest of ``base[i]`` and, over its operands o,
    ``result[o] + add[o]``.  Nodes before ``start`` keep ``base``.  (An op's depth: base 0 for
    ops and -1 for leaves, add 1.)"""
    return _sweep("longest", indptr, tails, [base, add], (int(start), len(base)), kernel)


def or_down(indptr: np.ndarray, tails: np.ndarray, bits: np.ndarray, top: int, *,
            kernel: bool | None = None) -> np.ndarray:
    """``bits`` ORed from every node at or below ``top`` into its operands, from ``top`` down:
    afterwards node i holds the bits of every node it feeds (and its own)."""
    return _sweep("or_down", indptr, tails, [bits], (int(top),), kernel)


def or_up(indptr: np.ndarray, tails: np.ndarray, bits: np.ndarray, start: int, stop: int, *,
          kernel: bool | None = None) -> np.ndarray:
    """Each node in ``[start, stop)``, in id order, ORs in its operands' bits: afterwards node i
    holds the bits of every node in that range it depends on (and its own)."""
    return _sweep("or_up", indptr, tails, [bits], (int(start), int(stop)), kernel)
