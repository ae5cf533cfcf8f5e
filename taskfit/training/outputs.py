"""What a run writes beside its model and metrics: run.json (time, rows, versions), the plots,
and for a --smoke run the check that the saved file predicts what the model in memory does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from taskfit import progress
from taskfit.feed.chunk import Inputs
from taskfit.feed.confidence import output_at_temperature
from taskfit.feed.splits import PLOT_ROWS, Splits
from taskfit.plan.outputs import by_head
from taskfit.plan.plan import Plan
from taskfit.runfolder.files import read_facts
from taskfit.runfolder.layout import RunFolder
from taskfit.training.fit import Fitted
from taskfit.training.heldout import out_of_fold_outputs


def run_facts(
    keras: Any,
    run_dir: Path,
    fitted: Fitted,
    splits: Splits,
    started: float,
    memorisable: dict[str, float] | None = None,
    identifiers: list[str] | None = None,
) -> dict[str, Any]:
    """run.json: how long the run took, on how many rows, with which versions (for `report`).
    A resumed run adds its time to the earlier attempts'."""
    import tensorflow as tf

    from taskfit import __version__

    before = read_facts(run_dir)
    return {
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "seconds": round(before.get("seconds", 0) + time.perf_counter() - started, 3),
        "fit_seconds": round(before.get("fit_seconds", 0) + fitted.seconds, 3),
        "rows": splits.sizes(),
        # training.bagging: the training rows' folds, each a member's validation
        **({"folds": splits.folds} if splits.folds else {}),
        "metrics_on": splits.estimate,  # metrics.json's rows: test, or out-of-fold
        # each regression head's training target (mean, std): evaluate scores a head among
        # several on its standardised target, as training did
        "targets": {name: list(scale) for name, scale in splits.stats.targets.items()},
        # each date column's format as the training rows wrote it: predict says which cells
        # the model's calendar will not find (written otherwise: an unknown day)
        "date_formats": {
            column: {"format": form.name, "padded": list(form.padded)}
            for column, form in splits.columns.dates.items()
        },
        "processes": fitted.processes,
        **({"refit": fitted.refit} if fitted.refit else {}),
        # log-scale heads: the factor their predictions were multiplied by (smearing)
        **({"smearing": fitted.smearing} if fitted.smearing else {}),
        # classification heads: the temperature their probabilities were calibrated at
        **({"temperatures": fitted.temperatures} if fitted.temperatures else {}),
        # the rows that chose them (validation, ...), or why no temperature was chosen
        **({"calibrated_on": fitted.calibrated_on} if fitted.calibrated_on else {}),
        # binary heads with data.threshold: the cut on the positive class's probability
        **({"thresholds": fitted.thresholds} if fitted.thresholds else {}),
        # category columns whose rare values let rows be learned by heart: report names them
        **({"memorisable": memorisable} if memorisable else {}),
        # columns left out as identifiers: predict passes them through beside its predictions
        **({"identifiers": identifiers} if identifiers else {}),
        "versions": {
            "taskfit": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        },
    }


def write_run_plots(run_dir: Path, plan: Plan, fitted: Fitted, splits: Splits) -> list[str]:
    """The learning curves, and each head's plots on the rows of splits.estimate (taskfit.
    report.plots). The model is saved by now: a problem drawing becomes a warning, not a failed
    run."""
    if splits.estimate is None:  # train has said so, with the missing metrics
        return []
    try:
        _draw(run_dir, plan, fitted, splits)
    except Exception as exc:  # the pictures are extra; the result they picture is saved
        return [f"plots: could not be drawn ({type(exc).__name__}: {exc}); the model is saved"]
    return []


def _draw(run_dir: Path, plan: Plan, fitted: Fitted, splits: Splits) -> None:
    from taskfit.model.build import predict_named
    from taskfit.report.plots import TestResult, write_plots

    if splits.estimate == "out-of-fold":
        rows, outputs = out_of_fold_outputs(fitted.models, plan, splits, PLOT_ROWS)
        title = "out-of-fold"  # by the members, which calibration leaves as fitted
        for name, t in fitted.temperatures.items():
            outputs[name] = output_at_temperature(outputs[name], t)
    else:
        rows, title = splits.held_out_sample(), "test split"
        named = predict_named(fitted.models.named, rows.named(fitted.models.numeric))
        outputs = by_head(plan.heads, named)
    tests = [
        TestResult(
            h,
            rows.y[h.name],
            np.asarray(outputs[h.name]),
            title,
            fitted.temperatures.get(h.name),
            fitted.thresholds.get(h.name),
        )
        for h in plan.heads
    ]
    with progress.step("drawing plots"):
        write_plots(run_dir, plan, fitted.history, fitted.active_losses, fitted.best_epoch, tests)


def reload_matches(keras: Any, model: Any, run_dir: Path, x: Inputs) -> dict[str, Any]:
    """The saved .keras file must predict what the in-memory model predicts."""
    from taskfit.model.build import predict_named

    reloaded = keras.saving.load_model(RunFolder(run_dir).model)
    before = _flat(predict_named(model, x))
    after = _flat(predict_named(reloaded, x))
    diff = float(np.max(np.abs(before - after))) if before.size else 0.0
    return {
        "reload_matches": bool(np.allclose(before, after, atol=1e-6)),
        "max_abs_diff": diff,
        "rows": len(before),
    }


def _flat(output: Any) -> np.ndarray:
    """A model's predictions as one matrix (heads side by side, in name order)."""
    if isinstance(output, dict):
        return np.concatenate([np.asarray(output[k]) for k in sorted(output)], axis=1)
    return np.asarray(output)
