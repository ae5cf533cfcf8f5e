"""Predictions of rows the weights never trained on: a bagged run's training rows, each by the
member held out of it (what smearing is estimated on and the plots draw without a test split)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from taskfit.feed.chunk import TEST, TRAIN, VALIDATION, Chunk
from taskfit.feed.folds import out_of_fold, training_folds
from taskfit.feed.splits import Splits
from taskfit.plan.outputs import by_head
from taskfit.plan.plan import Plan

if TYPE_CHECKING:
    from taskfit.model.build import Models
    from taskfit.training.fit import Fitted

BLOCK = 8192  # rows per call of the model
ROWS = 20_000  # held-out rows a correction (smearing, calibration) is estimated on, at most


def outputs(model: Any, models: Models, plan: Plan, rows: Chunk) -> dict[str, np.ndarray]:
    """Each head's output of a `fit`-input model (the model, or its members) on `rows`, called
    a block at a time (no compiled predict to trace for one use)."""
    inputs = models.pack(rows)
    blocks = [
        by_head(
            plan.heads, model({k: v[at : at + BLOCK] for k, v in inputs.items()}, training=False)
        )
        for at in range(0, len(rows), BLOCK)
    ]
    return {h.name: np.concatenate([np.asarray(b[h.name]) for b in blocks]) for h in plan.heads}


def out_of_fold_outputs(
    models: Models, plan: Plan, splits: Splits, at_most: int | None = None
) -> tuple[Chunk, dict[str, np.ndarray]]:
    """(the first `at_most` training rows of a bagged run, each head's output for each by the
    member that never trained on it)."""
    assert splits.folds and models.members is not None
    rows = splits.part(TRAIN, at_most)
    folds = training_folds(splits, plan.stratify_by)[: len(rows)]
    stacked = outputs(models.members, models, plan, rows)
    return rows, {name: out_of_fold(out, folds) for name, out in stacked.items()}


def held_out_outputs(
    fitted: Fitted, plan: Plan, splits: Splits
) -> tuple[Chunk, dict[str, np.ndarray]]:
    """(rows the weights never trained on, each head's predictions of them): the validation
    rows; a bagged run's training rows, each by the member held out of it; else the training
    rows (at most ROWS)."""
    if splits.folds:
        return out_of_fold_outputs(fitted.models, plan, splits)
    rows = splits.part(VALIDATION if splits.sizes()["validation"] else TRAIN, ROWS)
    return rows, outputs(fitted.models.fit, fitted.models, plan, rows)


def estimate_outputs(
    models: Models, plan: Plan, splits: Splits
) -> tuple[Chunk, dict[str, np.ndarray]]:
    """(the rows the run's metrics are on, each head's output of `models` for them): the test
    split (at most ROWS rows), or a bagged run's rows each by the member held out of it."""
    if splits.estimate == "out-of-fold":
        return out_of_fold_outputs(models, plan, splits, ROWS)
    rows = splits.part(TEST, ROWS)
    return rows, outputs(models.fit, models, plan, rows)
