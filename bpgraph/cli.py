"""The ``bpgraph`` command line: each command is a call into the library plus printing.

Heavy modules (numpy, networkx, graphviz) are imported inside the commands so that
``bpgraph --help`` answers at once.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .cli_support import DEBUG_OPTION, Group, UserError, progress
from .render import FORMATS, THEMES

MODEL_HELP = """MODEL is one of:

\b
  l2-mlp, dropout-mlp, ...  a built-in example (list them: bpgraph examples)
  net.py  or  net.py:fn     your script; its function (default: build) returns a
                            Graph or the root Tensor. This RUNS the script's code,
                            as `python net.py` would.
  graph.json                a graph saved by `bpgraph export` (data only)
"""
#: What ``export`` writes: io's data formats and render's DOT.
EXPORT_FORMATS = ("json", "graphml", "dot")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="bpgraph")
@click.option("--debug", **DEBUG_OPTION)
def cli() -> None:
    """Make backpropagation visible: record, differentiate, query and draw.

    \b
    Start here:
      bpgraph demo                      answer the L2 question, write bpgraph-demo.svg
      bpgraph render l2-mlp -o net.png  draw the seed network as a PNG
      bpgraph paths l2-mlp --of L2 --wrt A2
      bpgraph compare l2-mlp --grads my_grads.npz

    Every command is also a Python function; see the README.
    """
    # NaN/inf reports from the library arrive as warnings: show them as one plain line.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


def model_argument(command: Callable[..., Any]) -> Callable[..., Any]:
    """MODEL plus repeatable --set key=value, loaded into a `Model` passed as `model`."""

    @click.argument("model_spec", metavar="MODEL")
    @click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                  help="Keyword argument for the example/script's build function (repeatable), "
                       "e.g. --set lambd=0.")
    @functools.wraps(command)
    def wrapper(model_spec: str, settings: tuple[str, ...], **kwargs: Any) -> Any:
        from .models import load_model, parse_settings
        return command(model=load_model(model_spec, parse_settings(settings)), **kwargs)

    return wrapper


#: --of ROOT: the node to differentiate; the model's root when it is not given.
root_option = functools.partial(click.option, "--of", default=None, metavar="ROOT")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON (schema in the README).")


def tolerance(below: float = float("inf")) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option callback: a tolerance is a finite number from 0 up to, not including, ``below``."""
    def check(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is not None and not 0 <= value < below:  # NaN too
            limit = "below 1 (from 1 on, it accepts almost anything)" if below == 1 else "finite"
            raise UserError(f"{param.opts[0]} must be at least 0 and {limit}; got {value}")
        return value
    return check


def echo_report(report: Any, as_json: bool, *, exit_if_failed: bool = False) -> None:
    """Print a library report as text, or with --json as its JSON data; exit 1 when asked and it failed."""
    click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True, allow_nan=False) if as_json else str(report))
    if exit_if_failed and not report.ok:
        sys.exit(1)


@cli.command(short_help='List the built-in example networks.')
def examples() -> None:
    """List the built-in example networks (usable wherever a command takes MODEL)."""
    from .examples import EXAMPLES
    width = max(map(len, EXAMPLES))
    for name, example in EXAMPLES.items():
        click.echo(f"{name:<{width}}  {example.summary}")


@cli.command(epilog=MODEL_HELP, short_help='Finite-difference check of every parameter.')
@model_argument
@click.option("--tol", default=1e-6, show_default=True, type=float, callback=tolerance(1),
              help="Largest relative error ‖analytic − numeric‖ / (‖analytic‖ + ‖numeric‖) that passes.")
@click.option("--atol", default=None, type=float, callback=tolerance(),
              help="A parameter also passes when no element differs by more than this "
                   "(for gradients of about 0, whose relative error means nothing). "
                   "Default: 1e-8, or what rounding in the finite differences can explain "
                   "if that is larger.")
@root_option(help="Node to differentiate (default: the model's root).")
def check(model: Any, tol: float, atol: float | None, of: str | None) -> None:
    """Check every parameter's gradient against central finite differences.

    Exits 1 when any parameter fails. Example: bpgraph check l2-mlp --tol 1e-7
    """
    from .fdcheck import gradcheck
    with progress("checking gradients by finite differences..."):
        report = gradcheck(model.graph, model.root_id(of), tol=tol, atol=atol)
    echo_report(report, False, exit_if_failed=True)


@cli.command(epilog=MODEL_HELP, short_help="Paths that carry ∂OF/∂WRT (or 'no path').")
@model_argument
@click.option("--of", required=True, metavar="NODE", help="The node whose gradient travels (e.g. J or L2).")
@click.option("--wrt", required=True, metavar="NODE", help="The node it reaches (e.g. W1 or A2).")
@click.option("--through", default=None, metavar="PATTERN",
              help="Only ask whether a path passes through a node matching PATTERN: a glob on "
                   "names (A*), kind:param, or names separated by commas.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1),
              help="List at most this many paths.")
@click.option("--count", is_flag=True, help="Print only the exact number of paths (never enumerates).")
@json_option
def paths(model: Any, of: str, wrt: str, through: str | None, limit: int, count: bool, as_json: bool) -> None:
    """List the paths that carry ∂OF/∂WRT: the forward paths from WRT to OF.

    \b
    Examples:
      bpgraph paths l2-mlp --of J --wrt W1       two paths: through the network, and via L2
      bpgraph paths l2-mlp --of L2 --wrt A2      no path, so ∂L2/∂A2 = 0
      bpgraph paths l2-mlp --of J --wrt W1 --through 'A*'
      bpgraph paths l2-mlp --of J --wrt X --count
    """
    from .analysis import paths_report
    echo_report(paths_report(model.graph, of, wrt, through=through, limit=limit, count_only=count), as_json)


@cli.command(epilog=MODEL_HELP, short_help='Every gradient, optionally split by cost term.')
@model_argument
@root_option(help="Node to differentiate (default: the model's root).")
@click.option("--by-term", is_flag=True,
              help="Split every gradient into the cost terms of ROOT (e.g. cross_entropy, L2).")
@json_option
def grads(model: Any, of: str | None, by_term: bool, as_json: bool) -> None:
    """Table of every gradient: node, shape, norm, and with --by-term each term's share.

    A term shows `no path` when the node cannot influence it (structurally zero).

    \b
    Example: bpgraph grads l2-mlp --by-term
    """
    from .analysis import term_attribution
    root = model.root_id(of)
    report = term_attribution(model.graph, root, terms=None if by_term else [root])
    echo_report(report, as_json)
    if by_term and not as_json and report.terms == (report.root,):
        click.echo(f"note: {report.root} is not a sum of cost terms (no + or - at the root): "
                   "nothing to split", err=True)


@cli.command(epilog=MODEL_HELP, short_help='The chain rule for ∂OF/∂WRT, path by path.')
@model_argument
@click.option("--of", required=True, metavar="NODE", help="The node being differentiated (e.g. J).")
@click.option("--wrt", required=True, metavar="NODE", help="The node it is differentiated with respect to.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "latex"]), default="text",
              show_default=True, help="latex gives an aligned block for a math environment (needs amsmath).")
@click.option("--convention", type=click.Choice(["course", "exact"]), default=None,
              help="course: dZ3 = A3 − Y, dA2 = W3ᵀ·dZ3 (dZ, dA are m·∂J/∂Z, m·∂J/∂A); exact: ∂J/∂A2 = "
                   "W3ᵀ·∂J/∂Z3. Default: course for the built-in examples, exact otherwise.")
def explain(model: Any, of: str, wrt: str, fmt: str, convention: str | None) -> None:
    """Write out the chain rule for ∂OF/∂WRT as a sum over paths, with each path's value,
    then the backward pass along those paths one gradient per line.

    \b
    Examples:
      bpgraph explain l2-mlp --of J --wrt W1         dW1 = 1/m·dZ1·Xᵀ + λ/m·W1, and how
      bpgraph explain l2-mlp --of L2 --wrt A2        ∂L2/∂A2 = 0, and why
      bpgraph explain l2-mlp --of J --wrt W1 --format latex > dJdW1.tex
    """
    from .analysis import explain as explain_pair
    click.echo(explain_pair(model.graph, of, wrt, format=fmt, convention=convention or "auto"))


@cli.command(epilog=MODEL_HELP, short_help='Which gradients change between two builds.')
@click.argument("model_spec", metavar="MODEL")
@click.argument("other_spec", metavar="[OTHER]", required=False)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Settings of the first build (repeatable).")
@click.option("--vs", "vs_settings", multiple=True, metavar="KEY=VALUE",
              help="Settings of the second build, on top of --set (repeatable).")
@root_option(help="Node to differentiate in both (default: the root).")
@json_option
def diff(model_spec: str, other_spec: str | None, settings: tuple[str, ...], vs_settings: tuple[str, ...],
         of: str | None, as_json: bool) -> None:
    """Compare the gradients of two builds node by node: which changed, and by how much.

    \b
    Examples:
      bpgraph diff l2-mlp --set lambd=0.7 --vs lambd=0   only dW1, dW2, dW3 change
      bpgraph diff before.json after.json
    """
    from .analysis import diff_grads
    from .models import load_model, parse_settings
    first = parse_settings(settings)
    if other_spec is None and not vs_settings:
        raise UserError("give a second MODEL or --vs KEY=VALUE "
                        "(e.g. bpgraph diff l2-mlp --set lambd=0.7 --vs lambd=0)")
    a = load_model(model_spec, first)
    second = {**(first if other_spec is None else {}), **parse_settings(vs_settings)}
    b = load_model(other_spec or model_spec, second)
    labels = (" ".join(settings) or model_spec, " ".join(vs_settings) or other_spec or model_spec)
    echo_report(diff_grads(a.graph, b.graph, of or a.graph.name_of(a.root), labels=labels), as_json)


@cli.command(epilog=MODEL_HELP, short_help='Check hand-derived gradients, find the error.')
@model_argument
@click.option("--grads", "grads_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Your gradients as .npz: keys dW1, db1, dA2, ... (or W1, b1, A2).")
@root_option(help="The cost your gradients are of (default: the root).")
@click.option("--convention", type=click.Choice(["auto", "exact", "course"]), default="auto",
              show_default=True, help="course: your dA, dZ are m·∂J/∂A (dZ3 = A3 - Y); exact: true partial "
                                      "derivatives; auto: whichever matches more of them.")
@click.option("--rtol", default=1e-7, show_default=True, type=float, callback=tolerance(1),
              help="Relative tolerance, below 1.")
@click.option("--atol", default=1e-12, show_default=True, type=float, callback=tolerance(),
              help="Absolute tolerance.")
@json_option
def compare(model: Any, grads_file: str, of: str | None, convention: str, rtol: float, atol: float,
            as_json: bool) -> None:
    """Check your hand-derived gradients: where an error enters, and which usual mistake it
    looks like (a cost term missing or extra, a transpose, a factor such as m).

    Exits 0 when every given gradient agrees, 1 when any is wrong. Keys are matched ignoring
    case; keys that name no gradient of MODEL (dA0, cache) are listed and ignored.

    \b
    Make the file in your notebook, then compare:
      np.savez("my_grads.npz", dW1=dW1, db1=db1, dA2=dA2, dZ2=dZ2, ...)
      bpgraph compare l2-mlp --grads my_grads.npz
    """
    from .analysis import compare_grads
    report = compare_grads(model.graph, model.root_id(of), grads_file, convention=convention, rtol=rtol,
                           atol=atol)
    echo_report(report, as_json, exit_if_failed=True)


@cli.command(epilog=MODEL_HELP, short_help='Draw the graph: SVG, PNG, PDF, DOT or an interactive HTML page.')
@model_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file; its extension picks the format (default: MODEL.svg here; "
                   "- writes to standard output, SVG unless --format says otherwise).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format when the file name does not say it.")
@click.option("--theme", type=click.Choice(THEMES), default="light", show_default=True,
              help="light, dark, slides and slides-dark (16:9, text of 24 px or more on a 1920×1080 slide) "
                   "or print (grayscale).")
@click.option("--rankdir", type=click.Choice(["LR", "TB"]), default="LR", show_default=True,
              help="Draw left to right or top to bottom.")
@click.option("--show", multiple=True, metavar="ITEMS",
              help="What labels hold, comma-separated: name, shape, op, value, grad, gradvalue "
                   "(default: name,shape).")
@root_option(help="Whose gradient the colours trace (default: the root).")
@click.option("--highlight", multiple=True, metavar="OF:WRT",
              help="Keep the paths carrying ∂OF/∂WRT bright and dim the rest (repeatable), e.g. J:W1.")
@click.option("--collapse", multiple=True, metavar="SCOPE", help="Draw a scope as one node (repeatable).")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None,
              help="Write one picture per backward step and slides.html, a deck that steps through them "
                   "(with -o, the drawing as well).")
@click.option("--frames-format", type=click.Choice(["svg", "png"]), default="svg", show_default=True,
              help="The frames' format (the deck shows them as SVG either way).")
@click.option("--dpi", type=click.FloatRange(min=10, max=2400), default=None,
              help="PNG resolution (default 150).")
@click.option("--engine", type=click.Choice(["auto", "system", "wasm"]), default="auto", show_default=True,
              help="system: the installed `dot`; wasm: the embedded Graphviz; auto: system if present.")
def render(model: Any, output: str | None, fmt: str | None, theme: str, rankdir: str, show: tuple[str, ...],
           of: str | None, highlight: tuple[str, ...], collapse: tuple[str, ...], frames_dir: str | None,
           frames_format: str, dpi: float | None, engine: str) -> None:
    """Draw MODEL with Graphviz, edges coloured by the cost term whose gradient they carry.

    \b
    Examples:
      bpgraph render l2-mlp -o l2.svg
      bpgraph render l2-mlp -o l2.html               click a node to see its paths
      bpgraph render l2-mlp -o slide.png --theme slides --dpi 200
      bpgraph render l2-mlp -o paper.pdf --theme print --rankdir TB
      bpgraph render l2-mlp --highlight J:W1 --show name,shape,grad
      bpgraph render l2-mlp --frames backward/       then open backward/slides.html
    """
    from .render import to_dot, write_frames
    graph, root = model.graph, model.root_id(of)
    graph.backward(root)
    example = graph.meta.get("example")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(example).stem if isinstance(example, str) else "")
    target = Path(output or f"{stem.strip('._-')[:100] or 'graph'}.{fmt or 'svg'}")
    pairs = [value.partition(":") for value in highlight]
    for of_, sep, wrt in pairs:
        if not (of_ and sep and wrt):
            raise UserError(f"--highlight expects OF:WRT, e.g. --highlight J:W1; got {of_ + sep + wrt!r}")
    options: dict[str, Any] = {"theme": theme, "rankdir": rankdir, "collapse": list(collapse),
                               "highlight": [(of_, wrt) for of_, _, wrt in pairs] or None}
    if show:  # repeated or comma-separated: ("name,shape", "grad") -> [name, shape, grad]
        options["show"] = [part.strip() for value in show for part in value.split(",") if part.strip()]
    if output or fmt or not frames_dir:  # --frames alone writes only the frames
        diagram = to_dot(graph, root, **options)
        with progress(f"laying out {diagram.units:,} nodes with Graphviz..."):
            diagram.save(target, fmt or ("svg" if output == "-" else None), dpi=dpi, engine=engine)
        for note in diagram.drawn.notes:  # the diagram drawn: a retry or a lower dpi adds notes
            click.echo(f"note: {note}", err=True)
        echo_wrote(target)
    if frames_dir:
        with progress("rendering one frame per backward step..."):
            files = write_frames(graph, frames_dir, root, theme=theme, rankdir=rankdir, engine=engine,
                                 fmt=frames_format)
        click.echo(f"wrote {len(files) - 1} frames and {Path(frames_dir) / 'slides.html'}")


@cli.command(epilog=MODEL_HELP, short_help='Save the graph as JSON, GraphML or DOT.')
@model_argument
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write (- for standard output, JSON unless --format says otherwise).")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="Default: from the extension (.json, .graphml, .dot).")
@click.option("--grads/--no-grads", default=False, help="Include gradients (∂ROOT/∂node) in JSON/GraphML.")
@click.option("--values/--no-values", default=True, show_default=True,
              help="Include values (JSON needs them to be loaded back).")
def export(model: Any, output: str, fmt: str | None, grads: bool, values: bool) -> None:
    """Save MODEL's graph: JSON (loadable, versioned), GraphML (for other tools) or DOT.

    \b
    Examples:
      bpgraph export l2-mlp -o l2.json --grads
      bpgraph render l2.json -o l2.svg              a saved graph is a MODEL too
      bpgraph export l2-mlp -o l2.graphml
    """
    from . import io
    from .render import EXTENSIONS, to_dot
    suffix = Path(output).suffix.lower()  # the extension names one of io's data formats, DOT or a picture
    named = {**io.EXTENSIONS, **EXTENSIONS}.get(suffix)
    if named is not None and named not in EXPORT_FORMATS:
        raise UserError(f"export writes the graph as data (.json, .graphml or .dot); for a "
                        f"{suffix[1:].upper()} picture use: bpgraph render MODEL -o {output}")
    if fmt is not None and named is not None and fmt != named:
        raise UserError(f"the file name {output!r} says {named} but --format asks for {fmt}; "
                        "change the extension or leave --format out")
    if fmt is None and named is None and output != "-":
        raise UserError(f"cannot tell the format of {output!r}; use .json, .graphml or .dot, "
                        "or pass --format")
    fmt, graph = fmt or named or "json", model.graph
    if grads:
        graph.backward(model.root)
    graph.meta.setdefault("root", graph.name_of(model.root))
    if fmt == "dot":
        to_dot(graph, model.root).save(output, "dot")
    else:
        (io.save_json if fmt == "json" else io.save_graphml)(graph, output, values=values, grads=grads)
    echo_wrote(output)


@cli.command(short_help='Answer the L2 question and draw the seed net.')
@click.option("-o", "--output", default="bpgraph-demo.svg", show_default=True,
              type=click.Path(dir_okay=False),
              help="Where to draw the seed network; the extension picks svg, png, pdf or dot.")
@click.option("--theme", type=click.Choice(THEMES), default="light", show_default=True,
              help="light, dark, slides, slides-dark or print.")
@click.option("--lambd", default=0.7, show_default=True, type=float, help="The regularisation strength λ.")
def demo(output: str, theme: str, lambd: float) -> None:
    """Answer the seed question on the built-in l2-mlp network, and draw it.

    Why does adding L2 = λ/(2m)·Σ‖W‖² change only dW1, dW2, dW3, and what is ∂L2/∂A2?
    Prints the per-term table, ∂L2/∂A2 = 0 with its reason, and the λ-diff; writes the
    diagram (works without a system Graphviz: an embedded one is used).
    """
    from .demo import seed_answer
    from .examples import l2_mlp
    from .render import to_dot
    graph = l2_mlp(lambd=lambd)
    graph.backward("J")
    to_dot(graph, "J", theme=theme).save(output)  # first: a file that cannot be written fails at once
    click.echo(seed_answer(lambd))
    click.echo(f"\nDiagram: {output}. Arrows point forward; gradients flow back against them: the solid "
               "blue edges carry cross_entropy's gradient, the dashed orange ones L2's (only to W1, W2, W3), "
               "the dotted gray ones leave data, for which no gradient is computed.")


def echo_wrote(path: str | Path) -> None:
    """Say which file was written; nothing when it was standard output, which holds the data itself."""
    if str(path) != "-":
        click.echo(f"wrote {path}")


def main() -> None:
    """Entry point of the ``bpgraph`` console script."""
    cli(prog_name="bpgraph")
