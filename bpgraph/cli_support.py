"""How every bpgraph command runs: errors as one line on stderr (exit 2; tracebacks with ``--debug``),
SIGINT and SIGTERM stopping it cleanly (exit 130, 143), a note when a step takes a while.  No heavy
imports, so that ``bpgraph --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Iterator

import click

#: Added to a one-line error whose cause is someone else's exception (a script's, say).
DEBUG_HINT = "(run with --debug for the traceback)"


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


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised in the main thread, so that it cleans up as for Ctrl-C."""


def _stop(signum: int, _frame: Any) -> None:
    raise Stopped(signum)


class Group(click.Group):
    """Turns bpgraph's errors into one-line messages, and signals into a clean stop."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import BpgraphError  # cheap: no numpy

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _stop) if main else None
        try:
            return super().invoke(ctx)
        except (BpgraphError, OSError) as exc:  # OutputError, GraphFileError, ... and plain OS errors
            if ctx.meta.get("bpgraph.debug"):
                raise
            message = str(exc).removesuffix(f" {DEBUG_HINT}")
            foreign = exc.__cause__ is not None and not isinstance(exc.__cause__, (BpgraphError, OSError))
            raise UserError(f"{message} {DEBUG_HINT}" if foreign else message) from exc
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Stopped)
            signum = exc.args[0] if isinstance(exc, Stopped) else signal.SIGINT
            click.echo(f"\nstopped by {signal.Signals(signum).name}", err=True)
            raise SystemExit(128 + signum) from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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
