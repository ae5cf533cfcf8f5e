"""Probabilities a user can trust: temperature scaling (Guo et al., ICML 2017, "On Calibration
of Modern Neural Networks"). One number per classification head, T, divides the log of the
model's probabilities before they are normalised again: T > 1 softens an overconfident model,
T < 1 sharpens a timid one, and the predicted class never changes (accuracy is untouched). T
is chosen on held-out rows (the validation split, or a bagged run's rows each by the member that
never saw it) to minimise their log loss, and goes into the model (build.with_temperatures), so
predict, evaluate, serve and every export give the calibrated probabilities.

The expected calibration error (ECE) is the top-label one of Guo et al.: rows binned by the
confidence of their predicted class (15 equal bins), the mean gap between confidence and
accuracy weighted by the bins' rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from taskfit.feed.classes import class_ids, probabilities
from taskfit.feed.splits import Splits
from taskfit.model.build import PROBABILITY_FLOOR as FLOOR  # as the model clips them
from taskfit.plan.plan import Plan

if TYPE_CHECKING:
    from taskfit.training.fit import Fitted

BINS = 15
T_RANGE = (0.05, 20.0)  # temperatures searched (log-spaced golden section)
KEEP_UNDER = 0.05  # |log T| below this (T within 5% of 1): the model is left as it is


def temperature_probabilities(p: np.ndarray, t: float) -> np.ndarray:
    """(rows, k) class probabilities at temperature t: softmax(log p / t)."""
    z = np.log(np.clip(p, FLOOR, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], FLOOR, 1.0))))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    at = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        rows = at == b
        if rows.any():
            gap += rows.sum() * abs((predicted[rows] == y[rows]).mean() - confidence[rows].mean())
    return float(gap / max(len(y), 1))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature of least log loss on (p, y), by golden-section search on log T."""
    low, high = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return log_loss(temperature_probabilities(p, float(np.exp(log_t))), y)

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    best = (low + high) / 2
    return 1.0 if abs(best) < KEEP_UNDER else float(np.exp(best))


def calibrate(fitted: Fitted, plan: Plan, splits: Splits) -> dict[str, float]:
    """Each classification head's temperature, fitted on held-out rows and put into the model
    (head -> T; none for a run without held-out rows, or one refit on them)."""
    from taskfit.model.build import with_temperatures
    from taskfit.training.heldout import held_out_outputs

    heads = [h for h in plan.heads if h.task != "regression"]
    if not heads or fitted.refit or not splits.sizes()["train"]:
        return {}
    if fitted.trained.loss is None:  # learned loss weights: the trained model is its own loss,
        return {}  # which the calibrated model's test metrics would need; not calibrated yet
    if not splits.folds and not splits.sizes()["validation"]:
        return {}  # no rows the weights never saw
    rows, outputs = held_out_outputs(fitted, plan, splits)
    found = {}
    for head in heads:
        t = fit_temperature(probabilities(outputs[head.name]), class_ids(rows.y[head.name]))
        if t != 1.0:
            found[head.name] = t
    if found:
        fitted.models = with_temperatures(fitted.models, plan, found)
    return found


def calibration_metrics(
    plan: Plan, temperatures: dict[str, float], y: dict[str, np.ndarray], raw: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per classification head, on the rows the metrics are on: ECE and log loss with the
    model's probabilities as fitted (`_uncalibrated`) and at its temperature."""
    from taskfit.plan.outputs import logged

    found = {}
    for head in plan.heads:
        if head.task == "regression" or head.name not in raw:
            continue
        labels = class_ids(y[head.name])
        before = probabilities(raw[head.name])
        after = temperature_probabilities(before, temperatures.get(head.name, 1.0))
        for name, p in (("ece_uncalibrated", before), ("ece", after)):
            found[logged(head.name, name, multi=plan.multi)] = expected_calibration_error(p, labels)
        for name, p in (("log_loss_uncalibrated", before), ("log_loss", after)):
            found[logged(head.name, name, multi=plan.multi)] = log_loss(p, labels)
    return found
