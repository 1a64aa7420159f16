"""Scaling: how recording, backward, path counting and drawing grow with the graph.

Two graph shapes of small arrays (so the engine's bookkeeping, not numpy, is what's timed):

chain    x -> tanh -> tanh -> ... -> sum        (one path; as deep as it is long)
layered  8 parameters, then layers of 8 nodes, each the ``maximum`` of two nodes of the layer
         before (so every node has fan-in 2 and the number of paths grows exponentially)

For 1k, 10k and 100k nodes it prints time per node of record, backward, filling the
networkx graph (done on first use of ``g.nx`` or ``successors``), ``count_paths`` and DOT
generation (``bpgraph.render.to_dot``), the ratio of time per node at the largest size
to the smallest (paired in rounds with the same ratio of a reference that has no engine: the
same numpy ops with one plain dict per node and a backward written out by hand, which is what
this machine charges for size alone), tracemalloc's bookkeeping bytes per node (array memory
excluded), Graphviz layout times with and without automatic collapsing, and the start-up
time of ``bpgraph --help``.  What a module that is not there cannot measure is printed as ``n/a``.

    python benchmarks/bench_scale.py
    python benchmarks/bench_scale.py --sizes 1000,10000 --no-layout
    python benchmarks/bench_scale.py --quick        # 200 nodes, one run of each: a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import re
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import bpgraph as bp

WIDTH = 8          # nodes per layer of the layered graph
ELEMENTS = 4       # every value is a small vector of this many float64s
NUMPY_DOMAIN = np.lib.tracemalloc_domain  # numpy traces array data under this domain
#: What the issue asks.
GOALS = {"ratio": 1.5, "seconds_100k": 3.0, "bytes_per_node": 2048, "dot_share": 0.10, "help_seconds": 0.5,
         "render_dot": 10.0, "render_wasm": 20.0}
#: Fewest paired rounds behind a ratio that is a goal: on this shared VM single rounds vary by
#: a third, and a median of three moves with one slow spell.
PAIRED_ROUNDS = 7


# --- the graphs ------------------------------------------------------------------------------
def chain(n: int) -> tuple[bp.Graph, bp.Tensor, bp.Tensor]:
    """A chain of ``n`` nodes: one parameter, n-2 tanh ops and a final sum (the root)."""
    g = bp.Graph()
    x = g.param(np.linspace(-1.0, 1.0, ELEMENTS), name="x")
    y = x
    for _ in range(n - 2):
        y = bp.tanh(y)
    return g, bp.sum(y), x


def layered(n: int) -> tuple[bp.Graph, bp.Tensor, bp.Tensor]:
    """About ``n`` nodes in layers of WIDTH; node i of a layer is maximum(prev[i], prev[i+1])."""
    g = bp.Graph()
    rng = np.random.default_rng(0)
    layer = [g.param(rng.normal(size=ELEMENTS), name=f"p{i}") for i in range(WIDTH)]
    first = layer[0]
    for _ in range((n - WIDTH - 1) // WIDTH):
        layer = [bp.maximum(layer[i], layer[(i + 1) % WIDTH]) for i in range(WIDTH)]
    return g, bp.sum(layer[0]), first


def fanout(n: int) -> tuple[bp.Graph, bp.Tensor, bp.Tensor]:
    """One parameter fanning out into n/3 products that Python's ``sum`` adds one by one (a
    micrograd-style neuron): long edges from the parameter across every rank of the adds."""
    g = bp.Graph()
    x = g.param(np.linspace(-1.0, 1.0, ELEMENTS), name="x")
    return g, bp.sum(sum(x * float(k) for k in range(1, max(n // 3, 2)))), x


def variadic(n: int) -> tuple[bp.Graph, bp.Tensor, bp.Tensor]:
    """One l2_penalty node reading n - 1 weights."""
    g = bp.Graph()
    weights = [g.param(np.full(ELEMENTS, k % 5 + 1.0), name=f"W{k}") for k in range(n - 1)]
    return g, bp.l2_penalty(weights, lambd=0.7, m=100), weights[0]


def nested(n: int) -> tuple[bp.Graph, bp.Tensor, bp.Tensor]:
    """A chain of n tanh ops, each one scope deeper than the one before (n scopes deep)."""
    g = bp.Graph()
    x = g.param(np.linspace(-1.0, 1.0, ELEMENTS), name="x")
    y = x
    with contextlib.ExitStack() as scopes:
        for k in range(n - 2):
            scopes.enter_context(g.scope(f"s{k}"))
            y = bp.tanh(y)
    return g, bp.sum(y), x


SHAPES: dict[str, Callable[[int], tuple[bp.Graph, bp.Tensor, bp.Tensor]]] = {
    "chain": chain, "layered": layered, "fanout": fanout, "variadic": variadic, "nested": nested}


# --- the platform's own scaling: the same ops with the least bookkeeping a recorder can have --
_SHARED: dict[str, Any] = {}  # one params dict for every node, as bpgraph.graph.NO_PARAMS


def _node(op: str, operands: tuple[int, ...], value: np.ndarray, nodes: list[dict[str, Any]]) -> int:
    """Append a node dict with bpgraph's nine attributes (what a networkx attribute dict holds)."""
    nodes.append({"name": f"{op}_{len(nodes)}", "kind": "op", "op": op, "operands": operands,
                  "params": _SHARED, "value": value, "grad": None, "scope": "", "requires_grad": True})
    return len(nodes) - 1


def reference_chain(n: int) -> list[dict[str, Any]]:
    """The chain's numpy ops, one dict per node, and its backward written out by hand."""
    nodes: list[dict[str, Any]] = []
    node = _node("param", (), np.linspace(-1.0, 1.0, ELEMENTS), nodes)
    for _ in range(n - 2):
        node = _node("tanh", (node,), np.tanh(nodes[node]["value"]), nodes)
    grad = np.ones(ELEMENTS)
    for attrs in reversed(nodes[1:]):
        attrs["grad"] = grad
        grad = grad * (1 - attrs["value"] * attrs["value"])
    nodes[0]["grad"] = grad
    return nodes


def reference_layered(n: int) -> list[dict[str, Any]]:
    """The layered graph's numpy ops, one dict per node, and its backward written out by hand."""
    nodes: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    layer = [_node("param", (), rng.normal(size=ELEMENTS), nodes) for _ in range(WIDTH)]
    for _ in range((n - WIDTH - 1) // WIDTH):
        layer = [_node("maximum", (layer[i], layer[(i + 1) % WIDTH]),
                       np.maximum(nodes[layer[i]]["value"], nodes[layer[(i + 1) % WIDTH]]["value"]), nodes)
                 for i in range(WIDTH)]
    grads: list[np.ndarray | None] = [None] * len(nodes)
    grads[layer[0]] = np.ones(ELEMENTS)
    for i in range(len(nodes) - 1, -1, -1):
        grad = grads[i]
        if grad is None:
            continue
        nodes[i]["grad"] = grad
        if not nodes[i]["operands"]:
            continue
        a, b = nodes[i]["operands"]
        left, right = nodes[a]["value"], nodes[b]["value"]
        for operand, part in ((a, grad * (left >= right)), (b, grad * (left < right))):
            grads[operand] = part if grads[operand] is None else grads[operand] + part
    return nodes


#: What ``paired_scaling`` times beside the engine: the platform's own 100k/1k scaling.
REFERENCES: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "chain": reference_chain, "layered": reference_layered}


# --- optional pieces (written by other modules; absent ones are reported, not fatal) --------
def optional(module: str, attr: str) -> tuple[Any, str]:
    """``(object, "")`` when ``bpgraph.<module>.<attr>`` exists, else ``(None, reason)``."""
    try:
        return getattr(importlib.import_module(f"bpgraph.{module}"), attr), ""
    except (ImportError, AttributeError) as exc:
        return None, f"n/a: bpgraph.{module}.{attr} not available ({type(exc).__name__}: {exc})"


def median_of(fn: Callable[[], Any], samples: int) -> tuple[float, Any]:
    """Median wall time of ``samples`` calls, and the last result.

    A median (not a minimum) so that sizes timed a different number of times compare fairly.
    """
    times, result = [], None
    for _ in range(samples):
        result = None  # free the previous result (a whole graph) before the clock starts
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def samples_for(n: int, repeat: int, cap: int = 100) -> int:
    """Small graphs are timed more often (about 100,000 nodes' worth, at most ``cap`` times),
    large ones ``repeat`` times."""
    return max(repeat, min(cap, 100_000 // n))


# --- measurements -----------------------------------------------------------------------------
def time_engine(shape: str, n: int, repeat: int, cap: int = 100) -> dict[str, Any]:
    """Seconds for record, backward, count_paths and DOT generation of one graph."""
    build = SHAPES[shape]
    build(2 * WIDTH + 2)[0].backward()  # the first calls' imports and caches are not timed
    samples = samples_for(n, repeat, cap)
    t_record, (g, root, leaf) = median_of(lambda: build(n), samples)
    t_backward, _ = median_of(lambda: g.backward(root), samples)
    start = time.perf_counter()
    g.nx  # the networkx DiGraph is filled on first use (count_paths and drawing need it)
    t_sync = time.perf_counter() - start
    row: dict[str, Any] = {"nodes": len(g), "record": t_record, "backward": t_backward,
                           "nx": t_sync, "graph": (g, root, leaf)}
    count_paths, why = optional("analysis", "count_paths")
    if count_paths is None:
        row["count_paths"] = why
    else:
        row["count_paths"], paths = median_of(lambda: count_paths(g, root, leaf), samples)
        row["paths"] = paths
    to_dot, why = optional("render", "to_dot")
    if to_dot is None:
        row["dot"] = why
    else:
        def dot_text() -> Any:
            first_drawing(g)
            return _drawn(to_dot, g, root)

        row["dot"], row["diagram"] = median_of(dot_text, min(samples, 10))
    return row


def first_drawing(g: bp.Graph) -> None:
    """Forget what the graph remembers between drawings (ancestor sets, its structure as
    arrays, term reach, collapse plans), so the next drawing is timed as a first one."""
    g._derived.clear()


def whole_graph_passes(g: bp.Graph, root: bp.Tensor) -> None:
    """The part of DOT generation that reads every node whatever is drawn: the graph's
    structure as arrays, which cost terms each edge carries, the collapse plan and the
    caption (to_dot does these, then writes one statement per drawn node and edge)."""
    from bpgraph.analysis import term_reach
    from bpgraph.render import collapse, describe_terms

    reach = term_reach(g, root)
    collapse.plan(g, (), collapse.MAX_NODES, keep={root.id, *reach.terms})
    describe_terms(g, root)


def one_read(g: bp.Graph) -> None:
    """The least any drawing that looks at every node must do: read each node's operands
    once (a list of 100,000 references, no work per node)."""
    [attrs["operands"] for attrs in g.nodes.values()]


def bookkeeping_bytes(shape: str, n: int) -> dict[str, float]:
    """tracemalloc bytes per node of the graph, with array data and array headers taken out.

    Also returns how the traced array data compares with the bytes of the values (and
    gradients) the nodes hold: 1.00 means no hidden copies are kept.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        g, root, _ = SHAPES[shape](n)
        recorded = tracemalloc.take_snapshot()
        g.backward(root)
        after = tracemalloc.take_snapshot()
        g.nx  # the networkx graph, filled on first use
        with_nx = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    def split(snapshot: tracemalloc.Snapshot) -> tuple[int, int]:
        data = sum(s.size for s in snapshot.filter_traces([tracemalloc.DomainFilter(True, NUMPY_DOMAIN)])
                   .statistics("filename"))
        rest = sum(s.size for s in snapshot.filter_traces([tracemalloc.DomainFilter(False, NUMPY_DOMAIN)])
                   .statistics("filename"))
        return data, rest

    def arrays(key: str) -> tuple[int, int]:
        held = {id(a): a for a in (attrs[key] for attrs in g.nodes.values()) if a is not None}
        data = sum(a.nbytes for a in held.values() if a.base is None)
        headers = sum(sys.getsizeof(a) - (a.nbytes if a.base is None else 0) for a in held.values())
        return data, headers

    data0, rest0 = split(before)
    data1, rest1 = split(recorded)
    data2, rest2 = split(after)
    _, rest3 = split(with_nx)
    value_data, value_headers = arrays("value")
    grad_data, grad_headers = arrays("grad")
    nodes = len(g)
    return {
        "nodes": nodes,
        "recorded": (rest1 - rest0 - value_headers) / nodes,
        "after_backward": (rest2 - rest0 - value_headers - grad_headers) / nodes,
        "with_nx": (rest3 - rest0 - value_headers - grad_headers) / nodes,
        "value_data_ratio": (data1 - data0) / max(value_data, 1),
        "grad_data_ratio": (data2 - data1) / max(grad_data, 1),
    }


def layout_seconds(diagram: Any, timeout: float | None = None) -> str:
    """Seconds of the system Graphviz ``dot`` laying out ``diagram`` to SVG, as text.

    Without a timeout this is ``Diagram.render_bytes("svg", engine="system")``; with one, the
    same ``dot -Tsvg`` runs as a subprocess that is stopped after ``timeout`` seconds.
    """
    start = time.perf_counter()
    try:
        if timeout is None:
            diagram.render_bytes("svg", engine="system")
        else:
            dot = shutil.which("dot")
            if dot is None:
                return "n/a: no dot program"
            subprocess.run([dot, "-Tsvg"], input=diagram.source.encode(), capture_output=True,
                           timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (stopped)"
    except Exception as exc:  # the backend's own errors say why a layout failed
        return f"failed: {type(exc).__name__}: {str(exc)[:80]}"
    return f"{time.perf_counter() - start:.3f} s"


def dot_against_layout(g: bp.Graph, root: bp.Tensor, rounds: int) -> dict[str, Any]:
    """DOT generation and the system ``dot`` layout of the same drawing, timed in paired rounds.

    Each round makes the DOT text (``to_dot`` + ``.source``) as a first drawing, then again
    (what the graph remembers between drawings is reused: another theme, highlight or
    frame), runs the whole-graph passes on their own, reads every node once, and lays the
    drawing out to SVG.  Shares are medians of per-round ratios, so a slow spell of this
    shared VM hits both sides of a ratio alike.
    """
    from bpgraph.render import to_dot

    times: dict[str, list[float]] = {"dot": [], "again": [], "passes": [], "read": [], "layout": []}

    def timed(key: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = fn()
        times[key].append(time.perf_counter() - start)
        return result

    diagram = None
    for _ in range(rounds):
        diagram = None
        first_drawing(g)
        diagram = timed("dot", lambda: _drawn(to_dot, g, root))
        timed("again", lambda: _drawn(to_dot, g, root))
        first_drawing(g)
        timed("passes", lambda: whole_graph_passes(g, root))
        timed("read", lambda: one_read(g))
        timed("layout", lambda: diagram.render_bytes("svg", engine="system"))
    med = statistics.median
    shares = {key: [t / layout for t, layout in zip(times[key], times["layout"])]
              for key in ("dot", "again", "passes", "read")}
    return {**{key: med(values) for key, values in times.items()},
            **{f"{key}_share": med(values) for key, values in shares.items()},
            "shares": (min(shares["dot"]), max(shares["dot"])), "units": diagram.units, "rounds": rounds}


def uncollapsed_drawing(to_dot: Callable[..., Any], g: bp.Graph, root: bp.Tensor, rounds: int) -> tuple[float, Any]:
    """Median seconds of ``rounds`` first drawings of every node (no collapsing), and the last.

    A single timing of 5-50 ms is at the mercy of one garbage collection or slow spell (one
    such took 55 ms instead of 6 once); the layout it is compared with is timed once, being
    long enough (0.1 s to minutes) to be steady.
    """
    times, whole = [], None
    for _ in range(rounds):
        whole = None
        first_drawing(g)
        start = time.perf_counter()
        whole = _drawn(to_dot, g, root, max_nodes=len(g) + 1)
        times.append(time.perf_counter() - start)
    return statistics.median(times), whole


def _drawn(to_dot: Callable[..., Any], g: bp.Graph, root: bp.Tensor, **options: Any) -> Any:
    """``to_dot(g, root, **options)`` with its DOT text made (the text is what a layout reads)."""
    diagram = to_dot(g, root, **options)
    diagram.source
    return diagram


def startup_times(repeat: int) -> dict[str, tuple[float, float] | str]:
    """Best and median wall time of fresh processes: ``bpgraph --help`` and references."""
    script = Path(sys.executable).with_name("bpgraph")
    help_cmd = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "bpgraph", "--help"]
    commands = {f"{'bpgraph' if script.exists() else 'python -m bpgraph'} --help": help_cmd,
                "python -c 'import bpgraph'": [sys.executable, "-c", "import bpgraph"],
                "python -c 'import numpy, networkx'": [sys.executable, "-c", "import numpy, networkx"],
                "python -c pass (interpreter alone)": [sys.executable, "-c", "pass"]}
    out: dict[str, tuple[float, float] | str] = {}
    for label, cmd in commands.items():
        times, done = [], None
        for _ in range(max(repeat, 1)):
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        if done is not None and done.returncode == 0:
            out[label] = (min(times), statistics.median(times))
        else:
            out[label] = f"n/a: exit {done.returncode}: {done.stderr.strip()[-120:]}"
    return out


def _seconds(text: str) -> float | None:
    """The seconds in :func:`layout_seconds`'s text (a lower bound when it was stopped)."""
    match = re.search(r"([0-9.]+) s", text)
    return float(match.group(1)) if match else None


def _cell(value: Any, nodes: int) -> str:
    if isinstance(value, str):
        return "n/a"
    return f"{value / nodes * 1e6:8.2f}"


def paired_scaling(shape: str, small: int, large: int, rounds: int, cap: int) -> dict[str, Any]:
    """Record + backward time per node at ``large`` over that at ``small``, in paired rounds.

    Each round times one ``large`` graph between two halves of a batch of ``small`` ones
    (small, large, small: the small graphs' median then spans the time the large one took, so
    a slow spell of the VM that starts or ends within a round lands on both sides of its
    ratio); reported is the median ratio over rounds and its range.  (The table above times
    each size on its own.)

    The same round times :data:`REFERENCES`' recorder too: the same numpy ops with one plain
    dict per node and a hand-written backward, no engine.  What a node costs more at
    ``large`` than at ``small`` there (cache and TLB misses, page faults, the garbage
    collector's walks over the dicts) is what this machine charges any design that keeps a
    dict and arrays per node; ``extra`` is that difference in seconds, for both.
    """
    build, reference = SHAPES[shape], REFERENCES[shape]

    def per_node(n: int) -> float:
        g = root = None
        start = time.perf_counter()
        g, root, _ = build(n)
        g.backward(root)
        return (time.perf_counter() - start) / len(g)

    def reference_per_node(n: int) -> float:
        start = time.perf_counter()
        nodes = reference(n)
        return (time.perf_counter() - start) / len(nodes)

    half = max(samples_for(small, 3, cap) // 2, 1)
    timings: dict[str, list[tuple[float, float]]] = {"engine": [], "reference": []}
    for _ in range(rounds):
        for key, timed in (("engine", per_node), ("reference", reference_per_node)):
            before = [timed(small) for _ in range(half)]
            large_time = timed(large)
            after = [timed(small) for _ in range(half)]
            timings[key].append((statistics.median(before + after), large_time))
    result: dict[str, Any] = {"rounds": rounds}
    for key, pairs in timings.items():
        ratios = [b / a for a, b in pairs]
        prefix = "" if key == "engine" else "reference_"
        result[f"{prefix}ratio"] = statistics.median(ratios)
        result[f"{prefix}range"] = (min(ratios), max(ratios))
        result[f"{prefix}extra"] = statistics.median(b - a for a, b in pairs)
    return result


def _per_node(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return None if isinstance(value, str) or value is None else value / row["nodes"]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every measurement and print the tables; returns the raw numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated node counts")
    parser.add_argument("--shapes", default="chain,layered", help="comma-separated: chain, layered, fanout, variadic, nested")
    parser.add_argument("--repeat", type=int, default=3,
                        help="median of at least this many runs per timing (small graphs get more)")
    parser.add_argument("--no-layout", action="store_true", help="skip the Graphviz layout timings")
    parser.add_argument("--full-layout-max", type=int, default=100000,
                        help="largest graph laid out without collapsing (default 100000 nodes; see --full-timeout)")
    parser.add_argument("--full-timeout", type=float, default=60.0,
                        help="stop an uncollapsed layout above 2,000 nodes after this many seconds")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200 nodes, one run of each (overrides --sizes, --repeat)")
    args = parser.parse_args(argv)
    cap, rounds = 100, max(args.repeat, PAIRED_ROUNDS)
    if args.quick:
        args.sizes, args.repeat, cap, rounds = "200", 1, 1, 1
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if not sizes or min(sizes) < 2 * WIDTH + 2 or not shapes or any(s not in SHAPES for s in shapes):
        parser.error(f"sizes must be at least {2 * WIDTH + 2}; shapes among {', '.join(SHAPES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    results: dict[str, Any] = {"engine": {}, "memory": {}, "layout": {}, "ratios": {}}
    print(f"time per node in microseconds (median of {args.repeat} runs, more for small graphs: "
          f"{', '.join(f'{samples_for(n, args.repeat, cap)} at {n:,}' for n in sizes)}); "
          "ratio = time per node at the largest size / at the smallest")
    print(f"{'shape':<9}{'nodes':>8}{'record':>10}{'backward':>10}{'rec+bwd':>10}{'rec+bwd s':>11}"
          f"{'nx graph':>10}{'count_paths':>13}{'DOT gen':>10}")
    notes = set()
    keys = ("record", "backward", "rec+bwd", "nx", "count_paths", "dot")
    for shape in shapes:
        for n in sizes:
            row = time_engine(shape, n, args.repeat, cap)
            row["rec+bwd"] = row["record"] + row["backward"]
            results["engine"][(shape, n)] = row
            nodes = row["nodes"]
            print(f"{shape:<9}{nodes:>8,}{_cell(row['record'], nodes):>10}{_cell(row['backward'], nodes):>10}"
                  f"{_cell(row['rec+bwd'], nodes):>10}{row['rec+bwd']:>11.3f}{_cell(row['nx'], nodes):>10}"
                  f"{_cell(row['count_paths'], nodes):>13}{_cell(row['dot'], nodes):>10}", flush=True)
            notes.update(v for v in (row["count_paths"], row["dot"]) if isinstance(v, str))
            # keep no graph alive (a diagram holds its graph): every later timing, the paired
            # rounds above all, then runs with no other graph for the garbage collector to walk
            row.pop("graph")
            if "diagram" in row:
                row["units"] = row.pop("diagram").units
        small, large = results["engine"][(shape, sizes[0])], results["engine"][(shape, sizes[-1])]
        ratios = {}
        for key in keys:
            a, b = _per_node(small, key), _per_node(large, key)
            ratios[key] = None if a is None or b is None else b / a
        results["ratios"][shape] = ratios
        print(f"{shape:<9}{'ratio':>8}" + "".join(
            f"{'n/a' if ratios[k] is None else format(ratios[k], '.2f'):>{w}}"
            for k, w in zip(keys, (10, 10, 10, 21, 13, 10))))
        if len(sizes) > 1 and shape in REFERENCES:
            paired = results["ratios"][shape]["paired"] = paired_scaling(
                shape, sizes[0], sizes[-1], rounds, cap)
            low, high = paired["range"]
            ref_low, ref_high = paired["reference_range"]
            print(f"{shape:<9}{'paired':>8}{'':>20}{paired['ratio']:>10.2f}  "
                  f"(rec+bwd per node, {paired['rounds']} paired rounds: {low:.2f}-{high:.2f}; "
                  f"{paired['extra'] * 1e6:.2f} us more a node at {sizes[-1]:,})\n"
                  f"{shape:<9}{'ref':>8}{'':>20}{paired['reference_ratio']:>10.2f}  "
                  f"(no engine: numpy ops, a dict per node, backward by hand; same rounds: "
                  f"{ref_low:.2f}-{ref_high:.2f}; {paired['reference_extra'] * 1e6:.2f} us more a node)",
                  flush=True)
    for note in sorted(notes):
        print("  " + note)

    print("\nbookkeeping per node (tracemalloc; array data and ndarray headers excluded); "
          "array data / values held = 1.00 means no hidden copies")
    print(f"{'shape':<9}{'nodes':>8}{'recorded':>12}{'+backward':>12}{'+nx graph':>12}{'data / values':>16}"
          f"{'/ grads':>10}")
    for shape in shapes:
        mem = bookkeeping_bytes(shape, sizes[0] if len(sizes) == 1 else sizes[1])
        results["memory"][shape] = mem
        print(f"{shape:<9}{mem['nodes']:>8,}{mem['recorded']:>10.0f} B{mem['after_backward']:>10.0f} B"
              f"{mem['with_nx']:>10.0f} B{mem['value_data_ratio']:>16.2f}{mem['grad_data_ratio']:>10.2f}")

    to_dot, why = optional("render", "to_dot")
    if args.no_layout:
        pass
    elif to_dot is None:
        print(f"\nGraphviz layout: {why}")
    else:
        print("\nGraphviz layout to SVG with the system dot (Diagram.render_bytes('svg', engine='system')), "
              "with automatic collapsing (to_dot's default max_nodes) and without (max_nodes above the "
              "node count).  DOT generation as a share of the layout of the same drawing, median of "
              f"{rounds} paired rounds [min-max]: as a first drawing; drawn again (the graph remembers its "
              "arrays, term reach and plan); the whole-graph passes alone; one read of every node.")
        for shape in shapes:
            for n in sizes:
                row = results["engine"][(shape, n)]
                if "units" not in row:
                    continue
                g, root, _ = SHAPES[shape](n)
                try:
                    paired = dot_against_layout(g, root, rounds)
                except Exception as exc:  # the backend's own errors say why a layout failed
                    collapsed = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                else:
                    row["collapsed"] = paired
                    low, high = paired["shares"]
                    collapsed = (f"layout {paired['layout']:.3f} s; DOT gen {paired['dot']:.3f} s = "
                                 f"{paired['dot_share']:.1%} [{low:.1%}-{high:.1%}], again {paired['again']:.3f} s"
                                 f" = {paired['again_share']:.1%}; passes {paired['passes_share']:.1%}; "
                                 f"one read {paired['read_share']:.1%}")
                if row["nodes"] > args.full_layout_max:
                    full = f"not attempted above {args.full_layout_max:,} nodes"
                else:
                    gen, whole = uncollapsed_drawing(to_dot, g, root, rounds)
                    full = layout_seconds(whole, None if row["nodes"] <= 2000 else args.full_timeout)
                    seconds = _seconds(full)
                    row["full_share"] = (gen / seconds, full.startswith(">")) if seconds else None
                    full = (f"layout {full}; DOT gen {gen:.3f} s"
                            + (f" = {'< ' if full.startswith('>') else ''}{gen / seconds:.1%}" if seconds else ""))
                results["layout"][(shape, n)] = (collapsed, full)
                print(f"{shape:<9}{row['nodes']:>8,}  collapsed to {row['units']:,} nodes: {collapsed}\n"
                      f"{'':<19}uncollapsed: {full}", flush=True)

    print(f"\nstart-up (fresh process; fastest and median of {args.repeat})")
    results["startup"] = startup_times(args.repeat)
    for label, value in results["startup"].items():
        cell = value if isinstance(value, str) else f"{value[0]:.3f} s (median {value[1]:.3f} s)"
        print(f"  {label:<38}{cell}")

    print("\ngoals:")
    for shape in shapes:
        ratio = results["ratios"][shape]["rec+bwd"]
        largest = results["engine"][(shape, sizes[-1])]
        smallest = results["engine"][(shape, sizes[0])]["nodes"]
        paired = results["ratios"][shape].get("paired")
        print(f"  {shape}: rec+bwd per node at {largest['nodes']:,} / at {smallest:,} = {ratio:.2f}"
              + (f", paired rounds {paired['ratio']:.2f}" if paired else "")
              + f" (goal <= {GOALS['ratio']}); rec+bwd of {largest['nodes']:,} nodes {largest['rec+bwd']:.2f} s"
              + (f" (goal < {GOALS['seconds_100k']:.0f} s at 100k)" if largest["nodes"] >= 99_000 else "")
              + f"; bookkeeping {results['memory'][shape]['with_nx']:.0f} B/node with the networkx graph (goal < 2 KB)")
        rows = [results["engine"][(shape, n)] for n in sizes]
        drawn = [(row["nodes"], row["collapsed"]) for row in rows if "collapsed" in row]
        if drawn:
            print(f"  {shape}: DOT generation / layout of the same drawing (goal < {GOALS['dot_share']:.0%}): "
                  "collapsed, first drawing " + ", ".join(f"{nodes:,}: {c['dot_share']:.1%}" for nodes, c in drawn)
                  + "; drawn again " + ", ".join(f"{nodes:,}: {c['again_share']:.1%}" for nodes, c in drawn)
                  + "; uncollapsed " + (", ".join(
                      f"{row['nodes']:,}: {'< ' if row['full_share'][1] else ''}{row['full_share'][0]:.1%}"
                      for row in rows if row.get("full_share")) or "not laid out"))
        if not args.no_layout and to_dot is not None:
            times = {engine: render_seconds(shape, sizes[-1], engine) for engine in ("system", "wasm")}
            print(f"  {shape}: record + draw collapsed + render SVG of {largest['nodes']:,} nodes: "
                  f"system dot {times['system']}, embedded Graphviz {times['wasm']} "
                  f"(goals < {GOALS['render_dot']:.0f} s and < {GOALS['render_wasm']:.0f} s at 100k)")
    return results


def render_seconds(shape: str, n: int, engine: str) -> str:
    """Wall time of building the graph, drawing it collapsed and rendering SVG with ``engine``."""
    from bpgraph.render import to_dot

    start = time.perf_counter()
    try:
        g, root, _ = SHAPES[shape](n)
        to_dot(g, root).render_bytes("svg", engine=engine)
    except Exception as exc:  # report, don't stop the benchmark
        return f"failed: {str(exc).splitlines()[0][:80]}"
    return f"{time.perf_counter() - start:.2f} s"


if __name__ == "__main__":
    main()
