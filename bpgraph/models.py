"""Turn a MODEL argument into a graph (a built-in example, a user's script, a saved graph), as every
CLI command does first:

>>> from bpgraph.models import load_model
>>> load_model("l2-mlp", {"lambd": 0}).graph.meta["lambd"]
0.0
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .errors import BpgraphError
from .examples import EXAMPLES
from .graph import Graph
from .tensor import Tensor

#: The simple types a setting is checked against (named by the annotation, else the default's type).
KINDS = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}


class ModelError(BpgraphError):
    """The MODEL argument, its settings or the user's build function could not be used."""


class Model(NamedTuple):
    graph: Graph
    root: int  # the default node to differentiate: the returned tensor, or the last node

    def root_id(self, of: str | None = None) -> int:
        """The id of node ``of``, or the model's own root when it is None."""
        return self.root if of is None else self.graph.id_of(of)


def parse_settings(pairs: Iterable[str]) -> dict[str, Any]:
    """``["lambd=0", "layers=(2,5,1)", "name=abc"]`` -> keyword arguments (Python literals, else strings)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = (part.strip() for part in pair.partition("="))
        if not sep or not key.isidentifier():
            raise ModelError(f"--set expects key=value with a Python name as key, got {pair!r} "
                             "(example: --set lambd=0)")
        try:
            settings[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            settings[key] = raw
    return settings


def load_model(spec: str, settings: dict[str, Any] | None = None) -> Model:
    """Build the graph named by ``spec``: a built-in example, a ``.py`` file's ``build`` function
    (``file.py:other`` picks another; this runs the file), or a ``.json`` graph (data only)."""
    settings = dict(settings or {})
    if spec in EXAMPLES:
        return _call_builder(EXAMPLES[spec].build, settings, f"example {spec!r}")
    head, sep, tail = spec.rpartition(":")
    if not (sep and head.endswith(".py") and tail.isidentifier()):
        head, tail = spec, "build"
    if head.endswith(".py"):
        return _load_script(Path(head), tail, settings)
    if spec.endswith(".json"):
        if settings:
            raise ModelError("--set/--vs apply to examples and scripts; a .json graph is fixed data")
        if not Path(spec).is_file():
            raise ModelError(f"no such file: {spec}")
        from .io import load_json

        graph = load_json(spec)
        return Model(graph, graph.root_id(graph.meta["root"] if graph.meta.get("root") in graph else None))
    close = difflib.get_close_matches(spec, list(EXAMPLES), n=2)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ModelError(f"MODEL {spec!r} is not a built-in example ({', '.join(EXAMPLES)}), "
                     f"a .py file or a .json graph.{hint}")


def _load_script(path: Path, function: str, settings: dict[str, Any]) -> Model:
    """Import a user's .py file (this runs its code, like ``python file.py``) and call ``function``."""
    if not path.is_file():
        raise ModelError(f"no such file: {path}")
    name = f"_bpgraph_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py path always has a source loader
    sys.modules[name] = module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise ModelError(f"importing {path} called sys.exit({exc.code!r}); a model script must not exit") from exc
    except Exception as exc:
        raise ModelError(f"importing {path} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    build = getattr(module, function, None)
    if not callable(build):
        found = [n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == name]
        hint = f"; functions in it: {', '.join(found)}" if found else ""
        raise ModelError(f"{path} has no function {function!r}{hint} (use {path}:NAME to pick one)")
    return _call_builder(build, settings, f"{path}:{function}()")


def _expects(p: inspect.Parameter) -> tuple[str, str]:
    """The type a setting should have (the one its annotation names, else its default's) and the default."""
    named = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    default = "" if p.default is p.empty else f" (default {p.default!r})"
    return named if named in KINDS or p.default in (None, p.empty) else type(p.default).__name__, default


def _call_builder(build: Any, settings: dict[str, Any], label: str) -> Model:
    """Call a build function with ``settings`` of the types it expects; it returns a Graph or a Tensor."""
    try:
        parameters = inspect.signature(build).parameters
        inspect.signature(build).bind(**settings)
    except TypeError:
        raise ModelError(f"{label} does not take {', '.join(sorted(settings))}; "
                         f"it accepts: {', '.join(parameters) or 'no settings'}") from None
    except ValueError:
        parameters = {}  # builtins without a signature: let the call decide
    for key, value in settings.items():
        want, default = _expects(parameters[key]) if key in parameters else ("", "")
        fits = isinstance(value, KINDS.get(want, object)) and (want != "bool") != isinstance(value, bool)
        if want in KINDS and not fits:
            comma = isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value)
            raise ModelError(f"--set {key}: the value became {type(value).__name__} {value!r}, but {label} "
                             f"expects {'a number' if want == 'float' else want} for {key}{default}"
                             + (f"; for a decimal write --set {key}={value[0]}.{value[1]}" if comma else ""))
    try:
        result = build(**settings)
    except BpgraphError as exc:
        raise ModelError(f"{label} failed: {exc}") from exc
    except Exception as exc:  # the user's code: report it in one line, keep the cause for --debug
        raise ModelError(f"{label} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, Tensor):
        return Model(result.graph, result.id)
    if isinstance(result, Graph):
        return Model(result, result.root_id())
    raise ModelError(f"{label} must return a bpgraph Graph or the root Tensor, got {type(result).__name__}")
