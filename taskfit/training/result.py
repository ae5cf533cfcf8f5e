"""What `train` returns: the run folder, the model, its history and metrics, and what the
CLI and `train --json` say about the run."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskfit.data.columns import IGNORED
from taskfit.plan.checking import Checked


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
    baseline_single: dict[str, Any] | None = None  # head -> multi-task vs trained alone
    status: str = "completed"  # or "interrupted": Ctrl-C stopped it; the best weights were kept
    refit: dict[str, Any] | None = None  # training.refit: its epochs, rows and seconds
    smearing: dict[str, float] = field(default_factory=dict)  # log-scale head -> its factor
    # the rows `metrics` are on (feed.splits.Splits.estimate): test, or out-of-fold
    estimate: str | None = "test"
    stopped_by: str = ""  # an interrupted run's signal: "Ctrl-C" or "SIGTERM"
    tracked: str | None = None  # training.tracking.mlflow: the MLflow run it was logged to

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def rate_cuts(self) -> list[tuple[int, float]]:
        """(the 1-based epoch it starts, the rate) for each cut of the rate on a plateau."""
        if self.checked.plan.schedule:  # a schedule moves the rate itself
            return []
        rates = self.history.get("learning_rate", [])
        return [(i + 2, new) for i, (old, new) in enumerate(itertools.pairwise(rates)) if new < old]

    @functools.cached_property
    def notes(self) -> list[str]:
        from taskfit.plan.checking import notes

        found = notes(self.checked)
        # what `check` shows in its tables, said here too (train --json has no tables)
        for column in self.checked.data.columns:
            if column.kind == IGNORED and column.note:
                found.append(f"column {column.name}: left out ({column.note})")
        for head in self.checked.plan.heads:
            labels = head.labels
            if labels.format == "binary" and labels.positive_default:
                found.append(
                    f"{labels.columns[0]}: the positive class is {labels.classes[1]} (default; "
                    f"set {labels.key}.positive to change)"
                )
        if self.log_scaled:
            found.append(f"log1p before scaling (heavy-tailed): {', '.join(self.log_scaled)}")
        return found

    def document(self) -> dict[str, Any]:
        """What `train --json` prints."""
        doc = {
            "run_dir": str(self.run_dir),
            "task": "heads" if self.checked.plan.multi else self.checked.plan.head.task,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "train_rows": self.train_rows,
            "status": self.status,
            "metrics": self.metrics,
            "metrics_on": self.estimate,
            "rows_without_label": len(self.checked.data.missing_rows),
        }
        if self.smoke is not None:
            doc["smoke"] = self.smoke
        if self.tracked is not None:
            doc["mlflow_run"] = self.tracked
        if self.warnings:
            doc["warnings"] = self.warnings
        if self.notes:
            doc["notes"] = self.notes
        if self.baseline_single is not None:
            doc["baseline_single"] = self.baseline_single
        if self.refit is not None:
            doc["refit"] = self.refit
        if self.smearing:
            doc["smearing"] = self.smearing
        return doc
