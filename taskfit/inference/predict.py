"""`predict` and `evaluate`: a run folder's model on a new CSV, in the user's own terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskfit import progress
from taskfit.data.csvtable import Table
from taskfit.errors import DataError
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import Chunk, Inputs
from taskfit.feed.classes import class_ids, confusion_counts, predicted_ids, probabilities
from taskfit.feed.memory import encode_table
from taskfit.model.keras_setup import load_saved_model
from taskfit.plan.names import input_name
from taskfit.plan.outputs import by_head, keras_form, logged
from taskfit.plan.plan import Head
from taskfit.runfolder.files import read_facts, read_record
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import Run, open_run, read_rows
from taskfit.spec.keys import SINGLE_HEAD
from taskfit.training.calibration import probability_scores


@dataclass
class Predictions:
    columns: list[str]  # header of the output CSV
    rows: list[list[Any]]  # one per input row, in order
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def load_run_model(run: Run) -> Any:
    """The run's model.keras, checked against the run's other files: the columns
    spec.resolved.yaml names are its inputs, and each head of plan.json has an output of its
    size. A folder whose files disagree (one edited or swapped) is a DataError, not a Keras
    traceback or predictions under the wrong classes."""
    files = RunFolder(run.folder)
    with progress.step("loading TensorFlow and the model"):
        model = load_saved_model(files.model)
    takes = [i.name for i in model.inputs]
    named = [input_name(c) for c in (*run.numeric, *run.categorical)]
    if sorted(takes) != sorted(named):
        raise DataError(
            f"{files.model}: takes the columns {', '.join(takes)}, but {files.spec.name} names "
            f"{', '.join(named) or 'none'}; the run folder's files do not belong together (one "
            "was edited or replaced). Train the run again"
        )
    strings = {input_name(c) for c in run.categorical}  # categories, dates, texts: as text
    swapped = [i.name for i in model.inputs if (i.dtype == "string") != (i.name in strings)]
    if swapped:
        kind = "a number" if swapped[0] in strings else "text"
        raise DataError(
            f"{files.model}: takes {swapped[0]} as {kind}, but {files.spec.name} says "
            "otherwise; the run folder's files do not belong "
            "together (one was edited or replaced). Train the run again"
        )
    outputs = by_head(run.plan.heads, model.output)
    for head in run.plan.heads:
        units = outputs[head.name].shape[-1] if head.name in outputs else None
        if units != head.output_units:
            raise DataError(
                f"{files.model}: has {f'{units} output units' if units else 'no output'} for "
                f"{head.name}, but {files.plan.name} gives it {head.output_units}; the run "
                "folder's files do not belong together (one was edited or replaced). Train the "
                "run again"
            )
    return model


def encoded_rows(run: Run, table: Table, with_labels: bool) -> tuple[Chunk, int]:
    """(the rows, encoded as in training; with the labels: only the rows that have every
    head's label) and how many rows were left out for want of a label."""
    heads = run.plan.heads if with_labels else ()
    block = encode_table(table, Columns(run.numeric, run.categorical, heads))
    return block.rows.take(block.labelled), int((~block.labelled).sum())


def labelled_rows(run: Run, table: Table, name: str) -> tuple[Chunk, int]:
    """encoded_rows with the labels, for evaluate and explain: a CSV without a labelled row
    is a DataError (scores on no rows would be NaN)."""
    labelled, left_out = encoded_rows(run, table, with_labels=True)
    if len(labelled) == 0:
        raise DataError(
            f"{name}: none of its {table.n_rows} rows has every label "
            f"({', '.join(run.label_columns)}); scores need labelled rows. Give rows with "
            "labels, or use taskfit predict"
        )
    return labelled, left_out


def _inputs(run: Run, rows: Chunk) -> dict[str, Any]:
    """The rows' raw columns, as the saved model takes them."""
    from taskfit.model.build import named_inputs

    return named_inputs(rows.named(run.numeric))


def predict(run_dir: str | Path, csv_path: str | Path, keep: Sequence[str] = ()) -> Predictions:
    """Each row's predictions, after the columns `keep` names and the identifier columns
    training left out (run.json), passed through from the CSV so results join back by key."""
    run = open_run(run_dir)
    table, notes = read_rows(run, Path(csv_path), need_label=False, passed=keep)
    kept = passed_through(run, table, keep)
    predictions = Predictor(run, load_run_model(run)).predict(table)
    written = set(predictions.columns)
    if asked := [c for c in keep if c in written]:
        raise DataError(
            f"--keep {asked[0]}: predict writes a column of that name itself; rename that "
            f"column of {Path(csv_path).name}, or leave it out of --keep"
        )
    if same := [c for c in kept if c in written]:  # an identifier column named as an output
        notes.append(
            f"identifier columns not passed through, as predict writes columns of those "
            f"names: {', '.join(same)}"
        )
        kept = [c for c in kept if c not in written]
    predictions.columns[:0] = kept
    for i, row in enumerate(predictions.rows):
        row[:0] = [table.cells[c][i] for c in kept]
    predictions.notes[:0] = notes
    return predictions


def passed_through(run: Run, table: Table, keep: Sequence[str]) -> list[str]:
    """--keep's columns (each must be in the CSV) and the run's identifier columns the CSV has,
    in the CSV's order, none twice."""
    missing = [c for c in keep if c not in table.columns]
    if missing:
        raise DataError(
            f"--keep {', '.join(missing)}: not a column of {Path(table.path).name}; its columns: "
            f"{', '.join(table.columns)}"
        )
    found = read_facts(run.folder).get("identifiers")
    ids = [c for c in found if isinstance(c, str)] if isinstance(found, list) else []
    wanted = set(keep) | {c for c in ids if c in table.columns}
    return [c for c in table.columns if c in wanted]


@dataclass(frozen=True)
class Predictor:
    """A run's model, loaded once, predicting checked rows (`predict` on a CSV, `serve` on
    each batch of requests)."""

    run: Run
    model: Any
    call: Any = None  # how the model is called: eagerly (None), or build.traced_call's graph

    @classmethod
    def load(cls, run_dir: str | Path, traced: bool = False) -> Predictor:
        """`traced`: for many calls (a server), the forward pass as one graph."""
        from taskfit.model.build import traced_call

        run = open_run(run_dir)
        model = load_run_model(run)
        return cls(run, model, traced_call(model) if traced else None)

    def outputs(self, x: Inputs) -> dict[str, Any]:
        """Head name -> the model's output on raw columns by name (predict_named's)."""
        from taskfit.model.build import predict_named

        return by_head(self.run.plan.heads, predict_named(self.model, x, self.call))

    def predict(self, table: Table) -> Predictions:
        """The rows' predictions in the columns of predict's CSV: per head the predicted class
        and each class's probability, or the value in the label's units."""
        run = self.run
        read, _ = encoded_rows(run, table, with_labels=False)
        outputs = self.outputs(read.named(run.numeric))
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
            columns += [
                logged(head.name, f"probability_{c}", multi=multi) for c in head.labels.classes
            ]
            predicted = classes[predicted_ids(probs, run.thresholds.get(head.name))]
            values.append(np.concatenate([predicted[:, None], probs], axis=1))
        rows = [
            [v if isinstance(v, str) else float(v) for v in row]
            for row in np.concatenate(values, axis=1).tolist()
        ]
        return Predictions(columns, rows)


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
    labelled, left_out = labelled_rows(run, table, Path(csv_path).name)
    y = labelled.y
    from taskfit.model.build import PREDICT_ROWS

    model = load_run_model(run)
    # One block of rows costs less eagerly than tracing Keras's test step first (on 50 rows
    # evaluate took 3.4 s beyond import keras with the tracing)
    _compile_for_evaluation(run, model, eager=len(labelled) <= PREDICT_ROWS)
    x = _inputs(run, labelled)
    with progress.keras_on_stderr() as verbose:
        target = keras_form(run.plan.heads, y)
        metrics = model.evaluate(
            x, target, batch_size=PREDICT_ROWS, verbose=verbose, return_dict=True
        )
    outputs = Predictor(run, model).outputs(labelled.named(run.numeric))
    classifiers = [head for head in run.plan.heads if head.task != "regression"]
    confusion = {
        head.name: confusion_matrix(head, y[head.name], outputs[head.name], run.thresholds)
        for head in classifiers
    }
    for head in classifiers:
        said = probability_scores(
            class_ids(y[head.name]),
            probabilities(outputs[head.name]),
            run.thresholds.get(head.name),
        )
        metrics |= {logged(head.name, k, multi=run.plan.multi): v for k, v in said.items()}
        notes += _undefined_auc(run, head, y[head.name], metrics)
    return Evaluation(
        {k: float(v) for k, v in metrics.items()},
        len(labelled),
        left_out,
        confusion,
        notes,
    )


def _undefined_auc(run: Run, head: Head, y: np.ndarray, metrics: dict[str, Any]) -> list[str]:
    """AUC ranks one class's rows against the other's: on rows of one class it is undefined
    (Keras says 0), so it is left out of `metrics`, with a note."""
    present = np.unique(class_ids(y))
    name = logged(head.name, "auc", multi=run.plan.multi)
    if len(present) > 1 or metrics.pop(name, None) is None:
        return []
    only = head.labels.classes[int(present[0])]
    return [
        f"{name}: left out; every labelled row is of class {only}, and AUC needs rows of both "
        "classes"
    ]


def _compile_for_evaluation(run: Run, model: Any, eager: bool) -> None:
    """Compiled as the model trained, with each head's loss in force at the end of training.
    With several heads, `loss` weighs them by their final weights in metrics.json."""
    from taskfit.model.optim import compiled_metrics, make_losses

    heads = run.plan.heads
    files = RunFolder(run.folder)
    trained = read_record(files.metrics)
    weights = {h.name: trained.get(logged(h.name, "weight", multi=True), h.weight) for h in heads}
    model.compile(
        loss=keras_form(heads, make_losses(run.plan, _target_scales(run, model), stage=-1)),
        loss_weights=keras_form(heads, weights),
        metrics=compiled_metrics(heads),
        run_eagerly=eager,
    )


def _target_scales(run: Run, model: Any) -> dict[str, tuple[float, float]]:
    """Each regression head's training target (mean, std), from run.json. A folder written
    before run.json held them (format 1 or 2) has them only in the model: the Rescaling after
    each regression head of several, named as the head."""
    facts = read_facts(run.folder)
    if "targets" in facts:
        return {name: (float(m), float(s)) for name, (m, s) in facts["targets"].items()}
    if not run.plan.multi:
        return {}
    body = model.get_layer("preprocess_and_body")
    return {
        h.name: (float(body.get_layer(h.name).offset), float(body.get_layer(h.name).scale))
        for h in run.plan.heads
        if h.task == "regression"
    }


def confusion_matrix(
    head: Head, y: np.ndarray, output: np.ndarray, thresholds: dict[str, float]
) -> dict[str, dict[str, int]]:
    """Actual class -> predicted class -> count (a binary head cut at its threshold)."""
    classes = head.labels.classes
    predicted = predicted_ids(probabilities(output), thresholds.get(head.name))
    counts = confusion_counts(class_ids(y), predicted, len(classes))
    return {
        a: {p: int(n) for p, n in zip(classes, row, strict=True)}
        for a, row in zip(classes, counts, strict=True)
    }
