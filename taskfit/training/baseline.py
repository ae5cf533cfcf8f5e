"""`train --baseline-single`: does sharing help? Each head trained alone, same budget, compared.

Multi-task learning can hurt a head (negative transfer, Ruder 2017). Each head is trained
alone with the same split, seed, trunk and head layers, optimizer, epochs and early stopping,
and its test metric is set beside the multi-task model's. The verdict is a paired comparison on
the test rows: per row, correct or not (classification) or the absolute error (regression) of
each model; the difference is clear when its mean is more than twice its standard error and
the metric moves by at least 1 accuracy point (classification) or 1% of the error (regression).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from taskfit.feed.chunk import TEST
from taskfit.feed.classes import class_ids, probabilities
from taskfit.feed.splits import Splits
from taskfit.plan.checking import Checked
from taskfit.plan.outputs import by_head, logged
from taskfit.plan.plan import HARD_SHARING, Head
from taskfit.recipe.table import higher_is_better

if TYPE_CHECKING:
    from taskfit.training.fit import Fitted

CLEAR = 2.0  # standard errors: about a 95% two-sided test
SMALLEST = 1.0  # accuracy points or % of the error: less is no difference worth a verdict


def head_metric(head: Head) -> str:
    """The metric a head is judged by: its first table metric (accuracy, mae)."""
    return head.metrics[0] if head.metrics else "loss"


def row_scores(head: Head, y: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per test row, higher is better: 1/0 for a right/wrong class, minus the absolute error."""
    if head.task == "regression":
        return -np.abs(output.reshape(-1) - y.reshape(-1))
    return (probabilities(output).argmax(axis=1) == class_ids(y)).astype(float)


def verdict(multi: np.ndarray, single: np.ndarray, gain: float = SMALLEST) -> str:
    """helps / hurts / no clear difference, from per-row scores: the mean paired difference
    against its standard error (a row both models get equally right says nothing), and the
    metric's `gain` (points or %) against the smallest difference worth a verdict."""
    diff = multi - single
    mean = float(diff.mean())
    error = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    if mean == 0.0 or abs(mean) <= CLEAR * error or abs(gain) < SMALLEST:
        return "no clear difference"
    return "helps" if mean > 0 else "hurts"


def difference(metric: str, multi: float, single: float) -> tuple[float, str]:
    """The metric's difference, better when > 0: accuracy points, or % of the error alone."""
    if higher_is_better(metric):
        return (multi - single) * 100.0, "points"
    return ((single - multi) / abs(single) * 100.0 if single else 0.0), "%"


def single_head_baselines(
    keras: Any,
    checked: Checked,
    splits: Splits,
    multi: Fitted,
    multi_metrics: dict[str, float],
    verbose: int | str,
) -> dict[str, dict[str, Any]] | None:
    """Head -> its metric in the multi-task model and trained alone, the difference, a verdict;
    None when Ctrl-C stopped a baseline."""
    from taskfit.training.fit import fit_plan, test_metrics

    test = splits.part(TEST)  # in memory: the paired verdict needs every test row
    test_x = multi.models.pack(test)
    multi_outputs = by_head(checked.plan.heads, multi.trained.predict(test_x, verbose=0))

    plan = checked.plan
    fixed = dataclasses.replace(plan.weighting, name="fixed", keras_class="fixed", params={})
    seed = checked.loaded.spec.training.seed
    found = {}
    for head in plan.heads:
        one = dataclasses.replace(plan, heads=(dataclasses.replace(head, weight=1.0),))
        one = dataclasses.replace(one, weighting=fixed, sharing=HARD_SHARING)
        own = splits.alone(head.name)
        keras.utils.set_random_seed(seed)
        fitted = fit_plan(keras, checked, one, own, verbose=verbose)
        if fitted.interrupted:  # Ctrl-C: half-trained baselines would mislead
            return None
        single = test_metrics(fitted, one, own)
        single_output = by_head(one.heads, fitted.trained.predict(test_x, verbose=0))[head.name]
        metric = head_metric(head)
        multi_value = multi_metrics[logged(head.name, metric, multi=True)]
        single_value = single[logged(head.name, metric, multi=False)]
        gain, unit = difference(metric, multi_value, single_value)
        y = test.y[head.name]
        found[head.name] = {
            "metric": metric,
            "multi_task": multi_value,
            "single_task": single_value,
            "difference": round(gain, 3),
            "unit": unit,
            "verdict": verdict(
                row_scores(head, y, np.asarray(multi_outputs[head.name])),
                row_scores(head, y, np.asarray(single_output)),
                gain,
            ),
        }
    return found
