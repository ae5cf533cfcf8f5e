"""What every command shares: the choices, the argument types, and the one handler that turns
library errors into stderr lines and exit codes (0 ok, 1 spec or data, 2 usage, 3 a worker
process failed, 4 the smoke run's reloaded model disagreed, 130 interrupted, 143 terminated by
SIGTERM)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from taskfit.errors import RECEIVED, TaskfitError, Terminated, interruption, signals_interrupt

EXIT_SMOKE = 4  # the saved model, loaded again, predicts otherwise: a fault of the install

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


class Task(StrEnum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


class LabelFormat(StrEnum):
    integer = "integer"
    onehot = "onehot"


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


STOP_SAID = threading.Event()  # a command said it was interrupted or terminated


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """User mistakes -> one stderr line each, exit 1; Ctrl-C -> exit 130. Bugs keep tracebacks."""
    try:
        yield
    except TaskfitError as exc:
        for problem in exc.problems:  # one line each, whatever a name it quotes holds
            typer.echo(f"error: {one_line(str(problem))}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        _stop(exc)
    except Exception as exc:  # a signal's exception that some code wrapped in its own
        signalled = interruption(exc)
        if signalled is None:
            raise
        _stop(signalled)


def _stop(signalled: KeyboardInterrupt) -> NoReturn:
    """The command stopped by Ctrl-C (130) or SIGTERM (143), said once."""
    stopped = isinstance(signalled, Terminated)
    typer.echo("terminated (SIGTERM)" if stopped else "interrupted", err=True)
    STOP_SAID.set()
    raise typer.Exit(EXIT_TERMINATED if stopped else EXIT_INTERRUPTED) from None


# a write that failed for the place it went, not for taskfit: a full disk, a closed pipe, a
# folder made read-only or immutable under a running command
OUTPUT_FAILED = {errno.ENOSPC, errno.EDQUOT, errno.EPIPE, errno.EIO, errno.EBADF, errno.EACCES,
                 errno.EPERM, errno.EROFS}  # fmt: skip


def run_app(app: typer.Typer) -> None:
    """The app, whose results must reach stdout: with stdout closed, or a write to it (or to
    any file) failing for want of space or a reader, one `error:` line and exit 1, never a
    traceback or a silent 0 with the results gone."""
    if sys.stdout is None:  # started with its descriptor closed (>&-)
        typer.echo(
            "error: standard output is closed; taskfit writes its results there. Send it to a "
            "file (> out.txt) or to /dev/null",
            err=True,
        )
        sys.exit(1)
    sys.unraisablehook = _quiet_interrupts
    try:
        with signals_interrupt():  # SIGTERM unwinds as Ctrl-C does: cleaned up, exit 143
            app()  # typer ends with SystemExit, whatever happened
    except Terminated:  # raised outside typer's reach
        RECEIVED[signal.SIGTERM].set()
        _signalled(None)
    except SystemExit as exc:
        # outside a command's own handling (its imports, its last output) typer takes the
        # signal's exception for a Ctrl-C: 130, unsaid; in a finalizer Python swallows it: 0
        _signalled(exc.code)
        raise
    except OSError as exc:  # taskfit's own files name themselves (runfolder.files._staged)
        _output_failed(exc, to_stdout=_echoing(exc) or exc.filename is None)
    finally:  # flushed here, where a failure is caught, not at Python's exit
        try:
            sys.stdout.flush()
        except OSError as exc:
            _output_failed(exc, to_stdout=True)


def _signalled(code: object) -> None:
    """A command that ended with `code` after SIGTERM or Ctrl-C arrived ends as terminated
    (143) or interrupted (130), said on stderr, unless it said so itself or failed first."""
    if STOP_SAID.is_set() or code == 1 or not any(e.is_set() for e in RECEIVED.values()):
        return
    if RECEIVED[signal.SIGTERM].is_set():
        typer.echo("terminated (SIGTERM)", err=True)
        sys.exit(EXIT_TERMINATED)
    typer.echo("interrupted", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _quiet_interrupts(unraisable: Any) -> None:
    """Python's hook for an exception it cannot raise (in a finalizer): a Ctrl-C or SIGTERM
    landing there is no error to print (run_app ends the command as interrupted or
    terminated); any other goes to Python's own hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def _output_failed(exc: OSError, to_stdout: bool) -> None:
    if exc.errno not in OUTPUT_FAILED:
        raise exc
    if to_stdout:
        _stdout_to_devnull()
    where = "standard output" if to_stdout else exc.filename or "a file it was writing"
    typer.echo(f"error: {where}: cannot be written ({exc.strerror})", err=True)
    sys.exit(1)


def _echoing(exc: BaseException) -> bool:
    """Whether `exc` came from writing a result to stdout (click's echo, which typer's is)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any(f.name == "echo" and "click" in f.filename for f in frames)


def _stdout_to_devnull() -> None:
    """What Python's docs advise after a failed write to stdout (signal module, "Note on
    SIGPIPE"): point it at /dev/null, so the flush at exit does not fail once more."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# control characters written as escapes: a file, column or cell may hold a line break or a
# NUL, which would cut the line or make a terminal or grep take stderr for binary
ESCAPED = {c: repr(chr(c))[1:-1] for c in [*range(32), 127] if chr(c) != "\t"}


def one_line(text: str) -> str:
    """`text` on one line: its line breaks written as \\n, other control characters (a NUL)
    escaped too."""
    return text.translate(ESCAPED)


def say(kind: str, lines: list[str] | tuple[str, ...]) -> None:
    """Warnings and notes go to stderr, one line each: stdout stays the result."""
    for line in lines:
        typer.echo(f"{kind}: {one_line(line)}", err=True)


SpecArg = Annotated[Path, typer.Argument(help="the task spec (YAML)", show_default=False)]


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a spec key: --set training.epochs=3 (repeatable)"),
]


def usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


RunArg = Annotated[Path, typer.Argument(help="a run folder written by `taskfit train`")]


CsvArg = Annotated[Path, typer.Argument(help="a CSV with the columns the model was trained on")]
