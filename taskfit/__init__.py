"""taskfit: a YAML task spec becomes the right Keras model, trained.

    import taskfit
    run = taskfit.train("spec.yaml", overrides={"training.epochs": 5})
    run.model, run.history, run.metrics, run.run_dir
    taskfit.recommend("regression")["loss"]          # the table's row as data: 'mse'

The command line is a thin layer over these. The package root imports nothing heavy:
TensorFlow loads only when a model is built or fitted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

# TensorFlow reads this once, when it is first imported, from whichever taskfit module that is:
# set here, every import path is covered. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if TYPE_CHECKING:
    from taskfit.training.result import RunResult

__version__ = "0.1.0"
__all__ = ["recommend", "train"]


def train(
    spec: str | Path | Mapping[str, Any],
    overrides: dict[str, Any] | None = None,
    output: str | Path = "runs",
    *,
    verbose: int | str = 0,
    deterministic: bool = False,
) -> RunResult:
    """Train a spec file, or a spec given as data ({"task": ..., "data": {...}}, its relative
    paths relative to the working directory), as `taskfit train` does; returns the model,
    history, metrics and run folder. `overrides` maps dotted keys to values
    ({"training.epochs": 5}, like --set); `verbose` is Keras's (0: silent). `deterministic=True`
    switches TensorFlow's op determinism on for this process (as `taskfit train` does), so the
    same spec and seed give the same weights; TensorFlow cannot switch it off again. Bad input
    raises taskfit.errors.TaskfitError."""
    _check_arguments(spec, overrides, output, verbose, deterministic)
    from taskfit.training.run import train as run

    return run(spec, overrides, output, verbose=verbose, deterministic=deterministic)


def recommend(task: str, labels: str | None = None) -> dict[str, Any]:
    """The recommendation table's row for a task (and label format) as plain data."""
    from taskfit.recipe.table import recommendation

    return recommendation(task, labels)


def _check_arguments(
    spec: object, overrides: object, output: object, verbose: object, deterministic: object
) -> None:
    """train's arguments of the kinds it takes (a SpecError naming each that is not), before
    they reach code that would fail on them with Python's own error."""
    from taskfit.config.params import show
    from taskfit.errors import Problem, SpecError

    problems = []

    def expect(name: str, ok: bool, what: str, value: object) -> None:
        if not ok:
            problems.append(Problem(name, f"must be {what}. Got {show(value)} instead."))

    paths = (str, os.PathLike)
    expect("spec", isinstance(spec, (*paths, Mapping)), "a spec file's path or a dict", spec)
    expect("overrides", overrides is None or isinstance(overrides, Mapping), "a dict", overrides)
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            expect("overrides", isinstance(key, str), "keyed by dotted names", key)
            if not _acyclic(value):
                problems.append(Problem(f"overrides[{key!r}]", "holds itself; give plain data"))
    expect("output", isinstance(output, paths), "a folder's path", output)
    given = not isinstance(verbose, bool) and verbose in (0, 1, 2, "auto")
    expect("verbose", given, "0, 1, 2 or 'auto' (Keras's)", verbose)
    expect("deterministic", isinstance(deterministic, bool), "true or false", deterministic)
    if problems:
        raise SpecError(problems)


def _acyclic(value: object, seen: frozenset[int] = frozenset()) -> bool:
    """Whether a list or dict holds no list or dict that holds itself (json.dumps would fail)."""
    if not isinstance(value, (list, tuple, dict, set)):
        return True
    if id(value) in seen:
        return False
    inner = value.values() if isinstance(value, dict) else value
    return all(_acyclic(item, seen | {id(value)}) for item in inner)
