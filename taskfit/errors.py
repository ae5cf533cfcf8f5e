"""The errors a user can cause. The CLI turns each into stderr lines and an exit code."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec or its data, located as precisely as we can."""

    where: str  # a dotted spec path (`model.layers[1].units`), a CSV column, or a file
    message: str  # what was given, what was expected, how to fix it
    line: int | None = None  # 1-based line in the YAML file or CSV, when known
    source: str | None = None  # the file the line refers to

    def __str__(self) -> str:
        place = self.where
        if self.source and self.line:
            place = f"{self.source}:{self.line}: {self.where}"
        elif self.line:
            place = f"line {self.line}: {self.where}"
        elif self.source:  # a key the file lacks, or the whole file: still say which file
            place = f"{self.source}: {self.where}" if self.where else self.source
        return f"{place}: {self.message}" if place else self.message


def shown(value: object) -> str:
    """A value as an error message quotes it: its repr, cut to 40 characters (a damaged file
    may hold a number of a thousand digits, or a long string)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


class TaskfitError(Exception):
    """A mistake in the user's input: reported, never a traceback. Exit code 1."""

    exit_code = 1

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SpecError(TaskfitError):
    """The YAML spec (or a --set override) is invalid."""


class DataError(TaskfitError):
    """The data file does not fit the spec or the recommendation table."""


class TrainingError(TaskfitError):
    """Training itself went wrong in a way the user can fix (a loss that is not a number)."""


class NotResumable(TaskfitError):
    """--resume found the run's saved state unfit to carry on from (a checkpoint of other
    arrays): nothing was trained, and the run folder keeps the status it had."""


class Problems:
    """Collects every problem so the user sees them all at once, then fails once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(
        self, where: str, message: str, line: int | None = None, source: str | None = None
    ) -> None:
        self.items.append(Problem(where, message, line, source))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, kind: type[TaskfitError] = SpecError) -> None:
        if self.items:
            raise kind(self.items)


class Terminated(KeyboardInterrupt):
    """SIGTERM outside fit, or a second one (taskfit.training.guards): unwinds as Ctrl-C does,
    so the run folder's status says what happened, temporary files go, and the command exits
    143."""


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM (Terminated) behind `exc`, or None: a signal's exception can
    surface inside any code, and some wraps it (a class body's __set_name__ makes it a
    RuntimeError; a TensorFlow scope left by it raises its own RuntimeError)."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# set once the signal arrived: its exception may be swallowed where Python cannot raise it (a
# finalizer, some C code), and the command line still ends as interrupted or terminated
RECEIVED = {signal.SIGINT: threading.Event(), signal.SIGTERM: threading.Event()}


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """For the block, SIGTERM raises Terminated as SIGINT raises KeyboardInterrupt, and both
    are recorded in RECEIVED: every command runs in it (Python's default would end the process
    at SIGTERM, leaving status.json at "running" or an export's scratch folder behind)."""

    raised = {signal.SIGTERM: Terminated, signal.SIGINT: KeyboardInterrupt}

    def interrupt(signum: int, frame: FrameType | None) -> None:
        RECEIVED[signal.Signals(signum)].set()
        raise raised[signal.Signals(signum)]()

    try:
        previous = {number: signal.signal(number, interrupt) for number in raised}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
