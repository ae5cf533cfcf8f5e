"""Progress on stderr for the long steps: reading a big CSV, loading TensorFlow, training,
evaluating, drawing plots. Shown only when stderr is a terminal and the command prints no JSON,
so CI logs and piped output stay clean; training alone also logs a line per epoch to a stderr
that is a file (fit_verbose). rich loads only when something is shown."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

BIG_CSV = 32 * 2**20  # bytes: a file this size takes seconds to read; smaller ones get no bar

# Set only inside a `quiet` block, for that block's thread or task alone (a context variable,
# as decimal's context is): a library call leaves no switch behind.
_quiet: ContextVar[bool] = ContextVar("taskfit_quiet", default=False)


@contextlib.contextmanager
def quiet(flag: bool = True) -> Iterator[None]:
    """Nothing shown within the block when `flag` (the CLI's --json, the API's verbose=0)."""
    token = _quiet.set(_quiet.get() or flag)
    try:
        yield
    finally:
        _quiet.reset(token)


def shown() -> bool:
    return not _quiet.get() and sys.stderr.isatty()


def keras_verbose() -> int:
    """Keras's verbose for evaluate and predict: a bar when shown, else silent."""
    return 1 if shown() else 0


def fit_verbose() -> int:
    """Keras's verbose for `train`'s fit: a bar on a terminal; when stderr is a file or a pipe
    (a CI log, nohup), a line per epoch, so a run of minutes is not minutes of silence; none
    in a quiet block (--json, --smoke, the API's verbose=0)."""
    if _quiet.get():
        return 0
    return 1 if sys.stderr.isatty() else 2


@contextlib.contextmanager
def keras_on_stderr() -> Iterator[int]:
    """Keras prints its bars to stdout, which holds the command's result: send them to stderr.
    Yields keras_verbose()."""
    with contextlib.redirect_stdout(sys.stderr):
        yield keras_verbose()


def announce(text: str) -> None:
    """One plain line on stderr before a step that shows Keras's own bars (a spinner around
    them would print their carriage returns raw); none in a quiet block."""
    if not _quiet.get():
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(text: str) -> Iterator[None]:
    """A spinner with `text` while the block runs (gone when it ends)."""
    if not shown():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield


@contextlib.contextmanager
def open_csv(path: Path) -> Iterator[TextIO]:
    """The CSV opened for the csv module; a big one shows how much of it has been read."""
    if not shown() or path.stat().st_size < BIG_CSV:
        with path.open(newline="", encoding="utf-8-sig") as f:
            yield f
        return
    import rich.progress
    from rich.console import Console

    with rich.progress.open(
        path,
        "r",
        newline="",
        encoding="utf-8-sig",
        description=f"reading {path.name}",
        console=Console(stderr=True),
        transient=True,
    ) as f:
        yield f
