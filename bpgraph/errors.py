"""Exceptions bpgraph raises for user mistakes; each message says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from typing import Iterable


class BpgraphError(Exception):
    """Base class: a mistake in the input, reported as one clear message (the CLI exits 2)."""


class UnknownNodeError(BpgraphError, LookupError):
    """A node name that the graph does not have."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = list(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listed = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
        super().__init__(f"no node named {name!r}{hint} (nodes: {listed})")
        self.name = name
        self.suggestions = close


class OpError(BpgraphError, ValueError):
    """An op could not be recorded, usually because its operands' shapes do not fit."""


class GraphError(BpgraphError, ValueError):
    """The graph is used in a way it does not allow (duplicate name, foreign tensor, bad seed...)."""


class NonFiniteError(BpgraphError, FloatingPointError):
    """A value or gradient became NaN or infinite (raised in strict mode)."""


class NonFiniteWarning(RuntimeWarning):
    """A value or gradient became NaN or infinite (the default, non-strict report)."""
