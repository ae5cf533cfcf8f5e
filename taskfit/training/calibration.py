"""Probabilities a user can trust, and the cut that turns them into a class.

Temperature scaling (Guo et al., ICML 2017, "On Calibration of Modern Neural Networks"): one
number per classification head, T, divides the log of the model's probabilities before they are
normalised again: T > 1 softens an overconfident model, T < 1 sharpens a timid one, and the
predicted class never changes (accuracy is untouched). T is chosen on held-out rows (the
validation split, or a bagged run's rows each by the member that never saw it) to minimise
their log loss, and goes into the model (build.with_temperatures), so predict, evaluate, serve
and every export give the calibrated probabilities. A refit run chooses T with the first fit's
model on its validation rows, before the refit trains on them, and gives the refitted model it.

A binary head's `threshold: auto` (or `f1`) is then the cut on the calibrated probability of
the positive class with the best accuracy (or F1) on the same rows (the cut nearest 0.5 among
equals); run.json keeps it and predict, evaluate and serve call classes by it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from taskfit.feed.classes import (
    binary_scores,
    class_ids,
    cumulative_counts,
    predicted_ids,
    probabilities,
)
from taskfit.feed.confidence import (
    expected_calibration_error,
    log_loss,
    temperature_probabilities,
)
from taskfit.feed.splits import Splits
from taskfit.plan.plan import Head, Plan
from taskfit.spec.keys import SINGLE_HEAD, THRESHOLD_CHOICES

if TYPE_CHECKING:
    from taskfit.training.fit import Fitted

T_RANGE = (0.05, 20.0)  # temperatures searched (log-spaced golden section)
KEEP_UNDER = 0.05  # |log T| below this (T within 5% of 1): the model is left as it is
FOLDS = 5  # T is kept only if, fitted on 4 fifths of the held-out rows, it helps on the fifth
# fewer held-out rows choose no T: on wine's 28 validation rows T fell to 0.07-0.24 and the
# test log loss rose threefold, the fifths' check passing on 5 or 6 rows each
MIN_ROWS = 100
SIGN_TEST_Z = 2.0  # a cut of better accuracy than 0.5 must win by this many standard errors
DEFAULT_CUT = 0.5  # Keras's binary accuracy's; a threshold to choose is this until it is


@dataclass
class Calibration:
    """What the held-out rows chose: each classification head's temperature (none where T is
    about 1), each binary head's threshold (as given, or chosen), and what could not be."""

    temperatures: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # the rows T was chosen on (validation, ...), or why none was (run.json's calibrated_on)
    rows: str = ""


def fit_temperature(p: np.ndarray, y: np.ndarray, keep_under: float = KEEP_UNDER) -> float:
    """The temperature of least log loss on (p, y), by golden-section search on log T; 1 when
    |log T| is below `keep_under`."""
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
    return 1.0 if abs(best) < keep_under else float(np.exp(best))


def helps_unseen(p: np.ndarray, y: np.ndarray, folds: int = FOLDS) -> bool:
    """Whether a temperature fitted on some held-out rows lowers the log loss of the others:
    each fifth scored at the T of the other four, against T = 1 (measured on 113-891 test rows
    of six small tables, a T fitted on a few hundred validation rows raised the test log loss
    on two of them)."""
    at = np.arange(len(y)) % folds
    fitted = at_one = 0.0
    for fold in range(folds):
        held, rest = at == fold, at != fold
        if not held.any() or not rest.any():
            return False
        # as found: rounded to 1 within 5% (as `choose` rounds it) a T just past 5% on all the
        # rows, and just inside it on most fifths, failed here (Chem97, 31,022 rows, seed 2)
        t = fit_temperature(p[rest], y[rest], keep_under=0.0)
        fitted += log_loss(temperature_probabilities(p[held], t), y[held]) * held.sum()
        at_one += log_loss(p[held], y[held]) * held.sum()
    return fitted < at_one


def best_threshold(truth: np.ndarray, score: np.ndarray, metric: str) -> float:
    """The cut on `score` (the positive class's probability) whose `score > cut` gives the best
    `metric` (accuracy or f1) on these rows: halfway between neighbouring distinct scores, the
    one nearest 0.5 among equally good cuts. For accuracy, a cut other than 0.5 (where
    calibrated probabilities are best cut) must win a sign test over it: the rows it gets
    newly right less those it gets newly wrong above SIGN_TEST_Z standard errors."""
    tp, fp = cumulative_counts(truth, score)
    positives, n = int(np.sum(truth == 1)), len(truth)
    distinct = np.sort(np.unique(score))[::-1]
    # cut i calls the i + 1 highest distinct scores positive; cut -1 (above them all) none
    tp, fp = np.r_[0, tp], np.r_[0, fp]
    below = np.r_[distinct, 0.0]
    cuts = (np.r_[1.0, distinct] + below) / 2
    fn, tn = positives - tp, n - positives - fp
    if metric == "accuracy":
        value = (tp + tn) / max(n, 1)
    else:
        value = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    best = np.flatnonzero(np.isclose(value, value.max()))
    cut = float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])
    if metric == "accuracy":
        called = score > cut
        moved = called != (score > DEFAULT_CUT)
        gain = np.sum((called == truth) & moved) - np.sum((called != truth) & moved)
        if gain <= SIGN_TEST_Z * np.sqrt(max(moved.sum(), 1)):
            return DEFAULT_CUT
    return cut


def as_given(plan: Plan) -> Calibration:
    """No temperature, and each binary head's threshold as the spec gives it: its number, or
    for one to choose (auto, f1) DEFAULT_CUT, until held-out rows choose it."""
    return Calibration(
        thresholds={
            h.name: DEFAULT_CUT if isinstance(h.threshold, str) else float(h.threshold)
            for h in plan.heads
            if h.threshold is not None
        }
    )


def choose(fitted: Fitted, plan: Plan, splits: Splits) -> Calibration:
    """The temperatures and thresholds of `fitted`'s model, on rows its weights never saw."""
    from taskfit.training.heldout import held_out_outputs

    found = as_given(plan)
    heads = [h for h in plan.heads if h.task != "regression"]
    asked = [h for h in heads if isinstance(h.threshold, str)]
    unseen = bool(splits.folds) or bool(splits.sizes()["validation"])
    if not heads or fitted.refit or not unseen or not splits.sizes()["train"]:
        found.warnings += [_no_rows(h) for h in asked]
        found.rows = "none: no held-out rows" if heads else ""
        return found
    rows, outputs = held_out_outputs(fitted, plan, splits)
    # a bagged run's held-out rows are each predicted by one member, the saved model predicts
    # the members' mean, which is less sure: a T fitted on the one over-softens the other
    # (measured: hpc_data T 1.33 out-of-fold, 1.06 best on the test split), so it keeps none
    fits = not splits.folds and len(rows) >= MIN_ROWS
    found.rows = BAGGED if splits.folds else "validation"
    if not splits.folds and not fits:
        found.rows = f"none: {len(rows)} validation rows, fewer than {MIN_ROWS}"
    for head in heads:
        p, y = probabilities(outputs[head.name]), class_ids(rows.y[head.name])
        t = fit_temperature(p, y) if fits else 1.0
        if t != 1.0 and helps_unseen(p, y):
            found.temperatures[head.name] = t
        t = found.temperatures.get(head.name, 1.0)
        if isinstance(head.threshold, str):
            score = temperature_probabilities(p, t)[:, 1]
            metric = THRESHOLD_CHOICES[head.threshold]
            found.thresholds[head.name] = best_threshold(y, score, metric)
    return found


BAGGED = "none: a bagged run's held-out rows are each predicted by one member, not the mean"


def _no_rows(head: Head) -> str:
    where = "data" if head.name == SINGLE_HEAD else f"heads.{head.name}"
    return (
        f"{where}.threshold: {head.threshold} found no held-out rows to choose it on; classes "
        f"are cut at {DEFAULT_CUT}"
    )


def calibration_metrics(
    plan: Plan, found: Calibration, y: dict[str, np.ndarray], raw: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per classification head, on the rows the metrics are on (`raw`: the model's outputs
    before calibration): ECE and log loss, also as fitted (`_uncalibrated`) where a temperature
    changed them; for a head with a threshold, it and the accuracy and F1 at it."""
    from taskfit.plan.outputs import logged

    metrics: dict[str, float] = {}
    for head in plan.heads:
        if head.task == "regression" or head.name not in raw:
            continue
        before = probabilities(raw[head.name])
        t, labels = found.temperatures.get(head.name), class_ids(y[head.name])
        said = probability_scores(
            labels,
            temperature_probabilities(before, t) if t else before,
            found.thresholds.get(head.name),
        )
        if t:
            said["ece_uncalibrated"] = expected_calibration_error(before, labels)
            said["log_loss_uncalibrated"] = log_loss(before, labels)
        metrics |= {logged(head.name, k, multi=plan.multi): v for k, v in said.items()}
    return metrics


def probability_scores(
    labels: np.ndarray, p: np.ndarray, threshold: float | None
) -> dict[str, float]:
    """ECE and log loss of (rows, k) probabilities; with a threshold, it and the accuracy and
    F1 of the classes it cuts (what metrics.json and `taskfit evaluate` report)."""
    said = {"ece": expected_calibration_error(p, labels), "log_loss": log_loss(p, labels)}
    if threshold is not None:
        scores = binary_scores(labels, predicted_ids(p, threshold))
        said |= {"threshold": threshold} | {f"{k}_at_threshold": v for k, v in scores.items()}
    return said
