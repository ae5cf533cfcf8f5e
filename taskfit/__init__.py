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
    from taskfit.training.run import train as run

    return run(spec, overrides, output, verbose=verbose, deterministic=deterministic)


def recommend(task: str, labels: str | None = None) -> dict[str, Any]:
    """The recommendation table's row for a task (and label format) as plain data."""
    from taskfit.recipe.table import recommendation

    return recommendation(task, labels)
