"""Compile, fit, evaluate, and write the run folder. The only module that drives Keras training.

Flow: check_spec (no TensorFlow) -> arrays -> build_model -> compile -> fit -> evaluate -> save.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.arrays import Inputs, Splits, split, to_part
from taskfit.checking import Checked, check_spec
from taskfit.columns import CATEGORICAL, NUMERIC
from taskfit.keras_setup import import_keras
from taskfit.plan import plan_summary
from taskfit.runfolder import (
    create_run_dir,
    remove_run_dir,
    write_history,
    write_json,
    write_yaml,
)

SMOKE_ROWS = 256  # a CI smoke run fits one epoch on at most this many training rows


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, float]
    history: dict[str, list[float]]
    model: Any  # keras.Model
    checked: Checked
    seconds: float
    fit_seconds: float
    train_rows: int
    smoke: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; set when early stopping kept an earlier epoch
    log_scaled: tuple[str, ...] = ()  # heavy-tailed numeric columns the model log1p-transforms

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @functools.cached_property
    def notes(self) -> list[str]:
        from taskfit.checking import notes

        found = notes(self.checked)
        if self.log_scaled:
            found.append(f"log1p before scaling (heavy-tailed): {', '.join(self.log_scaled)}")
        return found

    def document(self) -> dict[str, Any]:
        """What `train --json` prints."""
        doc = {
            "run_dir": str(self.run_dir),
            "task": self.checked.plan.task,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "train_rows": self.train_rows,
            "metrics": self.metrics,
            "rows_without_label": len(self.checked.plan.labels.missing_rows),
        }
        if self.smoke is not None:
            doc["smoke"] = self.smoke
        if self.warnings:
            doc["warnings"] = self.warnings
        if self.notes:
            doc["notes"] = self.notes
        return doc


def train(
    spec_path: str | Path,
    overrides: list[str] | None = None,
    output: str | Path = "runs",
    smoke: bool = False,
    verbose: int | str = "auto",
) -> RunResult:
    """Train the spec; `verbose` is Keras's (0 silent, 1 bar, 2 a line per epoch, on stderr)."""
    started = time.perf_counter()
    checked = check_spec(spec_path, overrides)  # every user mistake surfaces before TensorFlow
    spec, plan = checked.loaded.spec, checked.plan
    keras = import_keras()
    keras.utils.set_random_seed(spec.training.seed)
    labelled = to_part(checked.data, plan)
    splits = split(labelled, spec.data, spec.training.seed, stratify=plan.task != "regression")
    if smoke:
        splits = Splits(
            splits.train.head(SMOKE_ROWS),
            splits.validation.head(SMOKE_ROWS) if splits.validation else None,
            splits.test.head(SMOKE_ROWS),
        )
    name = spec.name or Path(spec_path).stem
    run_dir = create_run_dir(Path(output), name + ("-smoke" if smoke else ""))
    try:
        models, history, best_epoch, fit_seconds = _fit(keras, checked, splits, smoke, verbose)
        model = models.named
        with contextlib.redirect_stdout(sys.stderr):
            metrics = models.fit.evaluate(
                models.pack(splits.test.x), splits.test.y, verbose=0, return_dict=True
            )
        metrics = {k: float(v) for k, v in metrics.items()}
        model.save(run_dir / "model.keras")
        write_yaml(
            run_dir / "spec.resolved.yaml",
            checked.resolved(),
            header="".join(f"# {line}\n" for line in plan_summary(plan).splitlines()),
        )
        write_history(run_dir / "history.csv", history)
        write_json(run_dir / "metrics.json", metrics)
        smoke_doc = _reload_matches(keras, model, run_dir, splits.test.x) if smoke else None
    except BaseException:
        remove_run_dir(run_dir)  # nothing half-written left behind
        raise
    return RunResult(
        run_dir,
        metrics,
        history,
        model,
        checked,
        time.perf_counter() - started,
        fit_seconds,
        len(splits.train),
        smoke_doc,
        list(plan.warnings),
        best_epoch,
        models.log_scaled,
    )


def _fit(
    keras: Any, checked: Checked, splits: Splits, smoke: bool, verbose: int | str
) -> tuple[Any, dict[str, list[float]], int | None, float]:
    """Build, compile and fit: the models, the history, the epoch early stopping kept (if it
    restored one), and the seconds `model.fit` took."""
    from taskfit.model import build_model
    from taskfit.optim import make_loss, make_metrics, make_optimizer

    spec, plan = checked.loaded.spec, checked.plan
    view = checked.data
    gaps = frozenset(c.name for c in view.columns if c.kind == NUMERIC and c.missing)
    models = build_model(plan, view.of_kind(NUMERIC), view.of_kind(CATEGORICAL), splits.train, gaps)
    model = models.fit
    model.compile(optimizer=make_optimizer(plan), loss=make_loss(plan), metrics=make_metrics(plan))
    stopping = spec.training.early_stopping
    stopper = None
    if stopping and not smoke:
        stopper = keras.callbacks.EarlyStopping(
            monitor=stopping.monitor,
            patience=stopping.patience,
            min_delta=stopping.min_delta,
            restore_best_weights=stopping.restore_best_weights,
        )
    validation = (
        (models.pack(splits.validation.x), splits.validation.y) if splits.validation else None
    )
    fit_started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # results alone on stdout; progress on stderr
        fitted = model.fit(
            models.pack(splits.train.x),
            splits.train.y,
            validation_data=validation,
            epochs=1 if smoke else spec.training.epochs,
            batch_size=spec.training.batch_size,
            callbacks=[stopper] if stopper else [],
            class_weight=class_weights(plan.class_weight, splits.train.y, plan.output_units),
            verbose=verbose,
        )
    fit_seconds = time.perf_counter() - fit_started
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    kept = stopper and stopper.restore_best_weights and stopper.stopped_epoch > 0
    best_epoch = stopper.best_epoch + 1 if stopper and kept else None
    return models, history, best_epoch, fit_seconds


def class_weights(
    setting: str | dict[int, float] | None, y: np.ndarray, n_classes: int
) -> dict[int, float] | None:
    """Keras's class_weight: "balanced" weighs each class by n / (k * its count in training)."""
    if setting is None or isinstance(setting, dict):
        return setting
    ids = y.argmax(axis=1) if y.ndim == 2 else y.astype(int)
    counts = np.bincount(ids, minlength=max(n_classes, 2))
    present = counts > 0
    return {int(c): float(len(ids) / (present.sum() * counts[c])) for c in np.flatnonzero(present)}


def _reload_matches(keras: Any, model: Any, run_dir: Path, x: Inputs) -> dict[str, Any]:
    """The saved .keras file must predict what the in-memory model predicts."""
    from taskfit.model import named_inputs

    reloaded = keras.saving.load_model(run_dir / "model.keras")
    before = model.predict(named_inputs(x), verbose=0)
    after = reloaded.predict(named_inputs(x), verbose=0)
    diff = float(np.max(np.abs(before - after))) if before.size else 0.0
    return {
        "reload_matches": bool(np.allclose(before, after, atol=1e-6)),
        "max_abs_diff": diff,
        "rows": len(before),
    }
