"""Engine speed: bpgraph's record + backward of the seed network against hand-written numpy.

The network is the course's LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID with
J = cross_entropy + L2 (λ = 0.7).  The baseline is the course's own numpy forward and
backward pass (dZ3 = A3 - Y, dW = dZ·Aᵀ/m + λ/m·W, ...).  bpgraph builds the same network
through its public API the way a user does (g.input, g.param, bp.linear, bp.relu, ...)
and calls ``g.backward``.  Columns:

numpy       the hand-written forward + backward (the baseline, ratio 1.00)
bpgraph     arrays given with ``copy=False`` (``g.input(X, copy=False)``, ``g.param(W,
            copy=False)``): the graph keeps read-only views of them, as numpy does
bp+copy     every default: X, Y and the parameters are copied into the graph, which
            protects what it shows from later changes to those arrays (a W -= lr·dW)
autograd    HIPS autograd's value_and_grad, when installed
torch       PyTorch, CPU, one thread, when installed

Every implementation's J and dW, db are checked against the hand-written ones before
anything is timed.  Timing runs in interleaved rounds (each round times every column once,
so a slow spell on a shared machine hits them all); a cell is the fastest round and its
ratio to the fastest numpy round, and the last column is the median over rounds of the
paired ratio bpgraph / numpy (the same round), with the spread between rounds.

    python benchmarks/bench_engine.py                       # course, medium, large
    python benchmarks/bench_engine.py --sizes course,medium --rounds 5
    python benchmarks/bench_engine.py --quick               # course only, 3 rounds, numpy + bpgraph
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import bpgraph as bp

LAMBD = 0.7
Params = dict[str, np.ndarray]
Result = tuple[float, Params]
Step = Callable[[np.ndarray, np.ndarray, Params], Result]


@dataclass(frozen=True)
class Size:
    layers: tuple[int, ...]
    m: int
    rounds: int  # default number of timing rounds


SIZES = {
    "course": Size((2, 20, 3, 1), 211, 41),
    "medium": Size((784, 128, 64, 1), 1024, 21),
    "large": Size((4096, 1024, 1024, 1), 4096, 9),
}
#: What the issue asks of bpgraph / numpy at each size.
GOALS = {"course": 3.0, "medium": 1.10, "large": 1.05}


def make_problem(size: Size, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Params]:
    """Random data X (features, m), labels Y (1, m) and He-initialised W1..WL, b1..bL."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (size.layers[0], size.m))
    Y = (rng.random((1, size.m)) < 0.5).astype(np.float64)
    params = {}
    for l in range(1, len(size.layers)):
        fan_in = size.layers[l - 1]
        params[f"W{l}"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), (size.layers[l], fan_in))
        params[f"b{l}"] = rng.normal(0.0, 0.1, (size.layers[l], 1))
    return X, Y, params


def _depth(params: Params) -> int:
    return len(params) // 2


# --- the implementations -------------------------------------------------------------------
def numpy_step(X: np.ndarray, Y: np.ndarray, params: Params) -> Result:
    """The course's hand-written forward pass, cost with L2, and backward pass with L2."""
    L, m = _depth(params), X.shape[1]
    A = {0: X}
    for l in range(1, L + 1):
        Z = np.dot(params[f"W{l}"], A[l - 1]) + params[f"b{l}"]
        A[l] = 1 / (1 + np.exp(-Z)) if l == L else np.maximum(0, Z)
    AL = A[L]
    cross_entropy = 1.0 / m * np.nansum(np.multiply(-np.log(AL), Y) + np.multiply(-np.log(1 - AL), 1 - Y))
    l2 = LAMBD / (2 * m) * sum(np.sum(np.square(params[f"W{l}"])) for l in range(1, L + 1))
    grads = {}
    dZ = AL - Y
    for l in range(L, 0, -1):
        W = params[f"W{l}"]
        grads[f"W{l}"] = 1.0 / m * np.dot(dZ, A[l - 1].T) + LAMBD / m * W
        grads[f"b{l}"] = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = np.dot(W.T, dZ)
            dZ = np.multiply(dA, np.int64(A[l - 1] > 0))
    return float(cross_entropy + l2), grads


def bpgraph_step(X: np.ndarray, Y: np.ndarray, params: Params, *, copy: bool = False) -> Result:
    """Record the seed network with bpgraph's public API and backpropagate from J."""
    L, m = _depth(params), X.shape[1]
    g = bp.Graph()
    A = g.input(X, name="X", copy=copy)
    labels = g.input(Y, name="Y", copy=copy)
    weights = []
    for l in range(1, L + 1):
        with g.scope(f"layer{l}"):
            W = g.param(params[f"W{l}"], name=f"W{l}", copy=copy)
            b = g.param(params[f"b{l}"], name=f"b{l}", copy=copy)
            Z = bp.linear(W, A, b, name=f"Z{l}")
            A = bp.sigmoid(Z, name=f"A{l}") if l == L else bp.relu(Z, name=f"A{l}")
        weights.append(W)
    with g.scope("cost"):
        ce = bp.binary_cross_entropy(A, labels, name="cross_entropy")
        l2 = bp.l2_penalty(weights, LAMBD, m, name="L2")
        J = (ce + l2).named("J")
    grads = g.backward(J)
    return float(J.value), {k: grads[k] for k in params}


def bpgraph_copy_step(X: np.ndarray, Y: np.ndarray, params: Params) -> Result:
    """The same with every default: X, Y, W and b are copied into the graph."""
    return bpgraph_step(X, Y, params, copy=True)


def autograd_step_factory() -> Step | None:
    """HIPS autograd's value_and_grad of the same cost, or None when it is not installed."""
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None

    def cost(params: Params, X: np.ndarray, Y: np.ndarray) -> float:
        L, m = _depth(params), X.shape[1]
        A = X
        for l in range(1, L + 1):
            Z = anp.dot(params[f"W{l}"], A) + params[f"b{l}"]
            A = 1 / (1 + anp.exp(-Z)) if l == L else anp.maximum(0, Z)
        ce = -anp.sum(Y * anp.log(A) + (1 - Y) * anp.log(1 - A)) / m
        return ce + LAMBD / (2 * m) * sum(anp.sum(params[f"W{l}"] ** 2) for l in range(1, L + 1))

    value_and_grad = autograd.value_and_grad(cost)

    def step(X: np.ndarray, Y: np.ndarray, params: Params) -> Result:
        value, grads = value_and_grad(params, X, Y)
        return float(value), grads

    return step


def torch_step_factory() -> Step | None:
    """PyTorch (CPU, one thread, float64) forward + backward, or None when not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def step(X: np.ndarray, Y: np.ndarray, params: Params) -> Result:
        L, m = _depth(params), X.shape[1]
        leaves = {k: torch.from_numpy(v).requires_grad_() for k, v in params.items()}
        A, labels = torch.from_numpy(X), torch.from_numpy(Y)
        for l in range(1, L + 1):
            Z = leaves[f"W{l}"] @ A + leaves[f"b{l}"]
            A = torch.sigmoid(Z) if l == L else torch.relu(Z)
        ce = torch.nn.functional.binary_cross_entropy(A, labels, reduction="sum") / m
        J = ce + LAMBD / (2 * m) * sum((leaves[f"W{l}"] ** 2).sum() for l in range(1, L + 1))
        J.backward()
        return float(J.detach()), {k: v.grad.numpy() for k, v in leaves.items()}

    return step


def implementations(others: bool) -> tuple[dict[str, Step], list[str]]:
    """The columns to time, and a note for each optional one that is not installed."""
    impls: dict[str, Step] = {"numpy": numpy_step, "bpgraph": bpgraph_step, "bp+copy": bpgraph_copy_step}
    notes = []
    if others:
        for label, factory, how in (("autograd", autograd_step_factory, "pip install autograd"),
                                    ("torch", torch_step_factory, "pip install torch")):
            step = factory()
            if step is None:
                notes.append(f"note: {label} is not installed, its column is skipped ({how})")
            else:
                impls[label] = step
    return impls, notes


# --- checking and timing -------------------------------------------------------------------
def check_against(reference: Result, result: Result, label: str) -> float:
    """Raise AssertionError unless J and every dW, db agree with the hand-written ones.

    Returns the largest relative error found.
    """
    (J_ref, g_ref), (J, grads) = reference, result
    if not np.isclose(J, J_ref, rtol=1e-10, atol=0):
        raise AssertionError(f"{label}: J = {J!r}, hand-written numpy gives {J_ref!r}")
    worst = abs(J - J_ref) / abs(J_ref)
    for name, expected in g_ref.items():
        err = np.linalg.norm(grads[name] - expected) / max(np.linalg.norm(expected), 1e-300)
        if err > 1e-9:
            raise AssertionError(f"{label}: d{name} differs from the hand-written one (rel. error {err:.2e})")
        worst = max(worst, err)
    return float(worst)


def calls_per_sample(step: Callable[[], object], target: float = 0.05) -> int:
    """How many calls make one timing sample last about ``target`` seconds (at least 1)."""
    start = time.perf_counter()
    step()
    once = time.perf_counter() - start
    return max(1, int(target / max(once, 1e-7)))


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed_rounds(steps: dict[str, Callable[[], object]], rounds: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call of each step in each of ``rounds`` interleaved rounds, and page faults per call.

    Page faults are reported because on a VM each costs microseconds: memory the allocator
    hands back to the system between calls is faulted in again on the next one.
    """
    numbers = {label: calls_per_sample(step) for label, step in steps.items()}
    times: dict[str, list[float]] = {label: [] for label in steps}
    faults = {label: 0.0 for label in steps}
    for _ in range(rounds):
        for label, step in steps.items():
            n = numbers[label]
            faults_before, start = _minor_faults(), time.perf_counter()
            for _ in range(n):
                step()
            times[label].append((time.perf_counter() - start) / n)
            faults[label] += (_minor_faults() - faults_before) / n / rounds
    return times, faults


def _format_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


@dataclass
class SizeResult:
    times: dict[str, list[float]]   # seconds per call, one entry per round
    faults: dict[str, float]        # minor page faults per call
    errors: dict[str, float]        # largest relative error against the hand-written gradients

    def best(self, label: str) -> float:
        return min(self.times[label])

    def ratio(self, label: str) -> float:
        """Fastest round of ``label`` over the fastest numpy round."""
        return self.best(label) / self.best("numpy")

    def paired(self, label: str) -> list[float]:
        """Per-round ratios ``label`` / numpy (the same round), sorted."""
        return sorted(t / n for t, n in zip(self.times[label], self.times["numpy"]))


def bench_size(name: str, size: Size, rounds: int, impls: dict[str, Step]) -> SizeResult:
    """Check and time every implementation at one size."""
    X, Y, params = make_problem(size)
    reference = numpy_step(X, Y, params)
    steps, errors = {}, {}
    for label, step in impls.items():
        errors[label] = check_against(reference, step(X, Y, params), f"{label} at {name} size")
        steps[label] = (lambda s=step: s(X, Y, params))
    times, faults = timed_rounds(steps, rounds)
    return SizeResult(times, faults, errors)


def environment() -> str:
    threads = [f"{k}={v}" for k, v in sorted(os.environ.items())
               if k.startswith(("MALLOC_", "OPENBLAS_", "OMP_", "MKL_"))]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
            f"load average {load}; {', '.join(threads) or 'no BLAS/malloc environment settings'}")


def main(argv: Sequence[str] | None = None) -> dict[str, SizeResult]:
    """Print the table; returns {size: SizeResult}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="course,medium,large",
                        help="comma-separated sizes among: " + ", ".join(SIZES))
    parser.add_argument("--rounds", type=int, default=None,
                        help="timing rounds per size (default: 41 course, 21 medium, 9 large)")
    parser.add_argument("--numpy-only", action="store_true",
                        help="compare bpgraph with numpy only (skip autograd and PyTorch)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: course size, 3 rounds, numpy-only (overrides the others)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.numpy_only = "course", args.rounds or 3, True
    names = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SIZES]
    if unknown or not names:
        parser.error(f"unknown size(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SIZES)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")

    impls, notes = implementations(not args.numpy_only)
    for note in notes:
        print(note)
    columns = list(impls)
    print(f"seed network, J = cross_entropy + L2 (λ = {LAMBD}), float64: record/forward + backward per call")
    print(f"environment: {environment()}")
    print("cells: fastest round (ratio to the fastest numpy round); last column: median over rounds of "
          "the paired ratio bpgraph/numpy [min-max]")
    width = 19
    print(f"{'size':<8}{'layers, m':<24}" + "".join(f"{c:>{width}}" for c in columns)
          + f"{'bpgraph/numpy':>26}{'goal':>8}")
    results: dict[str, SizeResult] = {}
    for name in names:
        size = SIZES[name]
        rounds = args.rounds or size.rounds
        res = bench_size(name, size, rounds, impls)
        results[name] = res
        cells = [f"{_format_seconds(res.best(c))} ({res.ratio(c):.2f}{'x' if c != 'numpy' else ''})"
                 for c in columns]
        paired = res.paired("bpgraph")
        spread = f"{statistics.median(paired):.2f}x [{paired[0]:.2f}-{paired[-1]:.2f}]"
        shape = f"{list(size.layers)}, {size.m}".replace(" ", "")
        print(f"{name:<8}{shape:<24}" + "".join(f"{c:>{width}}" for c in cells)
              + f"{spread:>26}{'<= ' + format(GOALS[name], '.2f'):>8}", flush=True)
    print(f"\nrounds: {', '.join(f'{n} {args.rounds or SIZES[n].rounds}' for n in names)}; "
          "minor page faults per call: "
          + "; ".join(f"{n}: " + ", ".join(f"{c} {r.faults[c]:,.0f}" for c in columns) for n, r in results.items()))
    for name, res in results.items():
        worst = ", ".join(f"{c} {e:.1e}" for c, e in res.errors.items())
        print(f"gradient check passed at {name} size (J, dW, db vs hand-written; largest rel. error: {worst})")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
