"""Class ids, probabilities and confusion counts from targets and classifier outputs."""

from __future__ import annotations

import numpy as np


def class_ids(y: np.ndarray) -> np.ndarray:
    """Targets (class ids, 0/1 floats or one-hot rows) -> integer class ids."""
    return y.argmax(axis=1) if y.ndim == 2 else y.astype(int)


def confusion_counts(actual: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """k x k counts: actual class ids down, predicted across."""
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (actual, predicted), 1)
    return counts


def probabilities(output: np.ndarray) -> np.ndarray:
    """A classifier's output with one column per class: a sigmoid's p becomes (1 - p, p)."""
    return np.concatenate([1 - output, output], axis=1) if output.shape[1] == 1 else output
