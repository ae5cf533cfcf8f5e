"""What every command shares: the choices, the argument types, and the one handler that turns
library errors into stderr lines and exit codes (0 ok, 1 spec or data, 2 usage, 3 a worker
process failed, 4 the smoke run's reloaded model disagreed, 130 interrupted, 143 terminated by
SIGTERM)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from taskfit.errors import TaskfitError, Terminated, terminated

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


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """User mistakes -> one stderr line each, exit 1; Ctrl-C -> exit 130. Bugs keep tracebacks."""
    try:
        yield
    except TaskfitError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        stopped = isinstance(exc, Terminated)
        typer.echo("terminated (SIGTERM)" if stopped else "interrupted", err=True)
        raise typer.Exit(EXIT_TERMINATED if stopped else EXIT_INTERRUPTED) from None
    except Exception as exc:
        if not terminated(exc):
            raise
        typer.echo("terminated (SIGTERM)", err=True)
        raise typer.Exit(EXIT_TERMINATED) from None


def say(kind: str, lines: list[str] | tuple[str, ...]) -> None:
    """Warnings and notes go to stderr, one line each: stdout stays the result."""
    for line in lines:
        typer.echo(f"{kind}: {line}", err=True)


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
