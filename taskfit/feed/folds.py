"""k-fold bagging's rows (training.bagging): the fold of each training row, and the weights that
hold each member out of its own fold. The members are one network (taskfit.model.ensemble), so
the k fits of k-fold bagging (AutoGluon's, Erickson et al. 2020) cost one: in training a
member's loss weighs the rows of its own fold 0, in validation it weighs only those rows."""

from __future__ import annotations

import numpy as np

from taskfit.feed.chunk import TRAIN
from taskfit.feed.classes import class_ids
from taskfit.feed.splits import Splits

FOLD_STREAM = 7  # the folds' own random stream beside the seed (the split draws from the seed)


def fold_of_rows(groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each row's fold in [0, k): the rows of every group (a class; one group for regression)
    shuffled, then dealt over the folds in turn, each group starting where the last ended: the
    folds differ by at most one row in size, and each holds every class in proportion."""
    rng = np.random.default_rng([seed, FOLD_STREAM])
    folds = np.empty(len(groups), dtype=np.int64)
    dealt = 0
    for group in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == group))
        folds[rows] = (dealt + np.arange(len(rows))) % k
        dealt += len(rows)
    return folds


def training_folds(splits: Splits, stratify_by: str | None) -> np.ndarray:
    """The fold of each row of the training part, in proportion to `stratify_by`'s classes."""
    train = splits.part(TRAIN)
    if stratify_by is None:
        groups = np.zeros(len(train), dtype=np.int64)
    else:
        groups = class_ids(train.y[stratify_by])
    return fold_of_rows(groups, splits.folds, splits.seed)


def member_weights(
    folds: np.ndarray, k: int, held_out: bool, row_weights: np.ndarray | None = None
) -> np.ndarray:
    """(rows, k) weights of each member's loss. Training (`held_out` false): member j weighs
    the rows outside fold j by k / (k - 1), so its loss is the mean over its own rows, as one
    member's alone would be. Validation: member j weighs the rows of fold j by k, so the mean
    of the members' losses is the mean out-of-fold loss. `row_weights`: each row's class
    weight on top (training.class_weight)."""
    own = folds[:, None] == np.arange(k)[None, :]
    weights = own * float(k) if held_out else ~own * (k / (k - 1))
    if row_weights is not None:
        weights = weights * row_weights[:, None]
    return weights.astype(np.float32)


def out_of_fold(stacked: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Every row's prediction by the member that never trained on it: `stacked` is (rows,
    members, ...) as the members model outputs it."""
    return stacked[np.arange(len(folds)), folds]
