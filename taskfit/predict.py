"""`predict` and `evaluate`: a run folder's model on a new CSV, in the user's own terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.arrays import to_inputs, to_targets
from taskfit.keras_setup import import_keras
from taskfit.labels import is_missing
from taskfit.runs import Run, open_run, read_rows


@dataclass
class Predictions:
    columns: list[str]  # header of the output CSV
    rows: list[list[Any]]  # one per input row, in order
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _load(run: Run) -> Any:
    keras = import_keras()
    return keras.saving.load_model(run.folder / "model.keras")


def _inputs(run: Run, table: Any, rows: list[int]) -> dict[str, Any]:
    """The rows' raw columns, as the saved model takes them."""
    from taskfit.model import named_inputs

    return named_inputs(to_inputs(table, run.numeric, run.categorical, rows))


def predict(run_dir: str | Path, csv_path: str | Path) -> Predictions:
    run = open_run(run_dir)
    table, notes = read_rows(run, Path(csv_path), need_label=False)
    inputs = _inputs(run, table, list(range(table.n_rows)))
    output = np.asarray(_load(run).predict(inputs, verbose=0))
    labels = run.plan.labels
    label = run.label_columns[0] if len(run.label_columns) == 1 else "class"
    if run.spec.task == "regression":
        return Predictions([f"predicted_{label}"], [[float(v)] for v in output[:, 0]], notes)
    probs = np.concatenate([1 - output, output], axis=1) if output.shape[1] == 1 else output
    classes = list(labels.classes)
    columns = [f"predicted_{label}", *(f"probability_{c}" for c in classes)]
    rows = [[classes[int(p.argmax())], *(float(v) for v in p)] for p in probs]
    return Predictions(columns, rows, notes)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    rows: int
    left_out: int  # rows without a label
    confusion: dict[str, dict[str, int]] | None  # actual class -> predicted class -> count
    notes: list[str] = field(default_factory=list)


def evaluate(run_dir: str | Path, csv_path: str | Path) -> Evaluation:
    """Test metrics on any labelled CSV, under the names metrics.json uses."""
    from taskfit.optim import make_loss, make_metrics

    run = open_run(run_dir)
    table, notes = read_rows(run, Path(csv_path), need_label=True)
    column = table.cells[run.label_columns[0]]
    rows = [
        i for i in range(table.n_rows) if len(run.label_columns) > 1 or not is_missing(column[i])
    ]
    y = to_targets(table, run.plan, rows)
    model = _load(run)
    model.compile(loss=make_loss(run.plan), metrics=make_metrics(run.plan))
    x = _inputs(run, table, rows)
    metrics = model.evaluate(x, y, verbose=0, return_dict=True)
    confusion = None
    if run.spec.task != "regression":
        output = np.asarray(model.predict(x, verbose=0))
        predicted = (output[:, 0] > 0.5).astype(int) if output.shape[1] == 1 else output.argmax(1)
        actual = y.argmax(1) if y.ndim == 2 else y.astype(int)
        classes = run.plan.labels.classes
        confusion = {a: {p: 0 for p in classes} for a in classes}
        for a, p in zip(actual, predicted, strict=True):
            confusion[classes[a]][classes[p]] += 1
    return Evaluation(
        {k: float(v) for k, v in metrics.items()},
        len(rows),
        table.n_rows - len(rows),
        confusion,
        notes,
    )
