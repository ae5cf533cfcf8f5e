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


def predicted_ids(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Each row's predicted class id from (rows, k) probabilities: the most probable class, or
    for two classes with a threshold, the positive one where its probability is above it (as
    Keras's binary accuracy compares)."""
    if threshold is None or probs.shape[1] != 2:
        return probs.argmax(axis=1)
    return (probs[:, 1] > threshold).astype(int)


def cumulative_counts(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives when everything scoring at least each distinct score (highest
    first) is called positive; tied scores move together."""
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], truth[order] == 1
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tp = np.cumsum(positive)[last_of_tie]
    return tp, last_of_tie + 1 - tp


def binary_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, and F1 of the positive class (0 when nothing is positive on either side)."""
    tp = float(np.sum((predicted == 1) & (truth == 1)))
    wrong = float(np.sum(predicted != truth))
    return {
        "accuracy": float(np.mean(predicted == truth)) if len(truth) else 0.0,
        "f1": 2 * tp / (2 * tp + wrong) if tp else 0.0,
    }
