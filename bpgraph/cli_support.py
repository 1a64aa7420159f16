"""How every bpgraph command runs: mistakes and library errors as one line on stderr (exit 2; full
tracebacks with ``--debug``), and a note on a terminal when a step takes a while.  Heavy modules
stay out, so that ``bpgraph --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Iterator

import click


class UserError(click.ClickException):
    """A mistake in the command's input: one message on stderr, exit status 2."""

    exit_code = 2


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["bpgraph.debug"] = True  # meta is shared by the group's context and the command's


#: --debug, taken by the group and by every command (where people type it when an error suggests it).
DEBUG_OPTION = {"is_flag": True, "expose_value": False, "callback": _remember_debug,
                "help": "Show full Python tracebacks for errors."}


class Command(click.Command):
    """A bpgraph command: it takes ``--debug`` too (``bpgraph render net.py --debug``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(["--debug"], **DEBUG_OPTION))


class Group(click.Group):
    """Turns bpgraph's own errors into one-line messages (tracebacks only with --debug)."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import BpgraphError  # cheap: no numpy

        try:
            return super().invoke(ctx)
        except (BpgraphError, OSError) as exc:  # OutputError, GraphFileError, ... and plain OS errors
            if ctx.meta.get("bpgraph.debug"):
                raise
            raise UserError(str(exc)) from exc


#: Seconds a command may run before it says on stderr what it is still doing.
PROGRESS_DELAY = 1.0


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """After about a second, say on stderr what is still running (only when it is a terminal)."""
    timer = threading.Timer(PROGRESS_DELAY, lambda: click.echo(message, err=True))
    timer.daemon = True
    if sys.stderr.isatty():
        timer.start()
    try:
        yield
    finally:
        timer.cancel()
