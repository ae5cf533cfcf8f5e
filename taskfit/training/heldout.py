"""Predictions of rows the weights never trained on: a bagged run's training rows, each by the
member held out of it (what smearing is estimated on and the plots draw without a test split)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from taskfit.feed.chunk import TRAIN, Chunk
from taskfit.feed.folds import out_of_fold, training_folds
from taskfit.feed.splits import Splits
from taskfit.plan.outputs import by_head
from taskfit.plan.plan import Plan

if TYPE_CHECKING:
    from taskfit.model.build import Models

BLOCK = 8192  # rows per call of the model


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
