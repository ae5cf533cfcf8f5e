"""How far a classifier's probabilities can be trusted: log loss, the expected calibration
error and its reliability bins, and probabilities at a temperature (taskfit.training.
calibration chooses it; the saved model applies it with Keras's own operations).

The expected calibration error (ECE) is the top-label one of Guo et al. (ICML 2017, "On
Calibration of Modern Neural Networks"): rows binned by the confidence of their predicted class
(15 equal bins), the mean gap between confidence and accuracy weighted by the bins' rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 15
FLOOR = 1e-7  # probabilities are clipped to this before a log, here and in the saved model


def temperature_probabilities(p: np.ndarray, t: float) -> np.ndarray:
    """(rows, k) class probabilities at temperature t: softmax(log p / t). At 1 / t it undoes
    itself: the saved model's calibrated output gives back the probabilities as fitted."""
    z = np.log(np.clip(p, FLOOR, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def output_at_temperature(output: np.ndarray, t: float) -> np.ndarray:
    """A classifier's output (one sigmoid unit, or a probability per class) at temperature t,
    in the same shape."""
    if output.shape[1] != 1:
        return temperature_probabilities(output, t)
    both = np.concatenate([1 - output, output], axis=1)
    return temperature_probabilities(both, t)[:, 1:]


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], FLOOR, 1.0))))


@dataclass(frozen=True)
class Reliability:
    """Rows binned by the confidence of their predicted class: per bin with rows, the mean
    confidence, the share predicted right and the row count (what a reliability diagram draws)."""

    confidence: np.ndarray
    accuracy: np.ndarray
    rows: np.ndarray

    @property
    def error(self) -> float:
        """The expected calibration error: the bins' gaps weighted by their rows."""
        gaps = np.abs(self.accuracy - self.confidence)
        return float((gaps * self.rows).sum() / max(self.rows.sum(), 1))


def reliability(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> Reliability:
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    at = np.minimum((confidence * bins).astype(int), bins - 1)
    used = [b for b in range(bins) if (at == b).any()]
    return Reliability(
        np.array([confidence[at == b].mean() for b in used]),
        np.array([(predicted[at == b] == y[at == b]).mean() for b in used]),
        np.array([(at == b).sum() for b in used]),
    )


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    return reliability(p, y, bins).error
