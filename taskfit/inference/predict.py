"""`predict` and `evaluate`: a run folder's model on a new CSV, in the user's own terms."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskfit import progress
from taskfit.data.csvtable import Table
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import Chunk
from taskfit.feed.classes import class_ids, confusion_counts, probabilities
from taskfit.feed.memory import encode_table
from taskfit.model.keras_setup import import_keras
from taskfit.plan.plan import Head, logged
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import Run, open_run, read_rows
from taskfit.spec.spec import SINGLE_HEAD


@dataclass
class Predictions:
    columns: list[str]  # header of the output CSV
    rows: list[list[Any]]  # one per input row, in order
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _load(run: Run) -> Any:
    with progress.step("loading TensorFlow and the model"):
        keras = import_keras()
        return keras.saving.load_model(RunFolder(run.folder).model)


def _read(run: Run, table: Table, with_labels: bool) -> tuple[Chunk, int]:
    """(the rows, encoded as in training; with the labels: only the rows that have every
    head's label) and how many rows were left out for want of a label."""
    heads = run.plan.heads if with_labels else ()
    block = encode_table(table, Columns(run.numeric, run.categorical, heads))
    return block.rows.take(block.labelled), int((~block.labelled).sum())


def _inputs(run: Run, rows: Chunk) -> dict[str, Any]:
    """The rows' raw columns, as the saved model takes them."""
    from taskfit.model.build import named_inputs

    return named_inputs(rows.named(run.numeric))


def _by_head(run: Run, output: Any) -> dict[str, np.ndarray]:
    """The model's output as head name -> array (one task: its one head)."""
    if run.plan.multi:
        return {name: np.asarray(v) for name, v in output.items()}
    return {run.plan.head.name: np.asarray(output)}


def predict(run_dir: str | Path, csv_path: str | Path) -> Predictions:
    run = open_run(run_dir)
    table, notes = read_rows(run, Path(csv_path), need_label=False)
    read, _ = _read(run, table, with_labels=False)
    inputs = _inputs(run, read)
    model = _load(run)
    with progress.keras_on_stderr() as verbose:
        outputs = _by_head(run, model.predict(inputs, verbose=verbose))
    columns: list[str] = []
    values: list[np.ndarray] = []  # per head: a (rows, k) block of the output CSV
    for head in run.plan.heads:
        output = outputs[head.name]
        columns.append(f"predicted_{_label_name(head)}")
        if head.task == "regression":
            values.append(output[:, :1].astype(object))
            continue
        probs = probabilities(output)
        classes = np.array(head.labels.classes, dtype=object)
        multi = run.plan.multi
        columns += [logged(head.name, f"probability_{c}", multi=multi) for c in head.labels.classes]
        values.append(np.concatenate([classes[probs.argmax(1)][:, None], probs], axis=1))
    rows = [
        [v if isinstance(v, str) else float(v) for v in row]
        for row in np.concatenate(values, axis=1).tolist()
    ]
    return Predictions(columns, rows, notes)


def _label_name(head: Head) -> str:
    """The label column's name; one-hot labels have none of their own."""
    if len(head.labels.columns) == 1:
        return head.labels.columns[0]
    return head.name if head.name != SINGLE_HEAD else "class"


@dataclass
class Evaluation:
    metrics: dict[str, float]
    rows: int
    left_out: int  # rows without a label
    # head -> actual class -> predicted class -> count, for each classification head
    confusion: dict[str, dict[str, dict[str, int]]]
    notes: list[str] = field(default_factory=list)


def evaluate(run_dir: str | Path, csv_path: str | Path) -> Evaluation:
    """Test metrics on any labelled CSV, under the names metrics.json uses. Each head's loss is
    the one in force at the end of training; with several heads `loss` weighs them by the final
    weights in metrics.json (for uncertainty weighting without its log-variance term)."""
    run = open_run(run_dir)
    table, notes = read_rows(run, Path(csv_path), need_label=True)
    labelled, left_out = _read(run, table, with_labels=True)
    y = labelled.y
    model = _load(run)
    _compile_for_evaluation(run, model)
    x = _inputs(run, labelled)
    with progress.keras_on_stderr() as verbose:
        target = y if run.plan.multi else y[SINGLE_HEAD]
        metrics = model.evaluate(x, target, verbose=verbose, return_dict=True)
        outputs = _by_head(run, model.predict(x, verbose=verbose))
    confusion = {
        head.name: confusion_matrix(head, y[head.name], outputs[head.name])
        for head in run.plan.heads
        if head.task != "regression"
    }
    return Evaluation(
        {k: float(v) for k, v in metrics.items()},
        len(labelled),
        left_out,
        confusion,
        notes,
    )


def _compile_for_evaluation(run: Run, model: Any) -> None:
    from taskfit.model.optim import make_loss, make_metrics

    plan = run.plan
    if not plan.multi:
        model.compile(loss=make_loss(plan.head, stage=-1), metrics=make_metrics(plan.head))
        return
    trained = json.loads(RunFolder(run.folder).metrics.read_text())
    body = model.get_layer("preprocess_and_body")

    def std(head: Head) -> float | None:  # the Rescaling after a regression head holds it
        return float(body.get_layer(head.name).scale) if head.task == "regression" else None

    model.compile(
        loss={h.name: make_loss(h, stage=-1, target_std=std(h)) for h in plan.heads},
        loss_weights={
            h.name: trained.get(logged(h.name, "weight", multi=True), h.weight) for h in plan.heads
        },
        metrics={h.name: make_metrics(h) for h in plan.heads},
    )


def confusion_matrix(head: Head, y: np.ndarray, output: np.ndarray) -> dict[str, dict[str, int]]:
    """Actual class -> predicted class -> count."""
    classes = head.labels.classes
    counts = confusion_counts(class_ids(y), probabilities(output).argmax(1), len(classes))
    return {
        a: {p: int(n) for p, n in zip(classes, row, strict=True)}
        for a, row in zip(classes, counts, strict=True)
    }
