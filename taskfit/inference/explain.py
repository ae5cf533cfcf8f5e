"""`taskfit explain`: which columns a run's model relies on.

Permutation importance (Breiman 2001; scikit-learn's `permutation_importance`): each input
column's values are shuffled among the rows, breaking its link to the label while keeping its
distribution, and the model is scored again; the column's importance is how much worse the score
gets, averaged over repeats (with their spread). The score is each head's loss as the user reads
it: log loss for a classifier, RMSE in the label's units for a regression head. A column the
model ignores scores about 0.

For one row, sampling Shapley values (Strumbelj and Kononenko, 2014, "Explaining prediction
models and individual predictions with feature contributions"): over random orders of the
columns and random rows of the data as the background, a column's contribution is the change in
the prediction when its value is switched from the background row's to the explained row's, the
columns before it in the order already switched. The contributions add up exactly to the row's
prediction minus the mean prediction on the background rows drawn. Model-agnostic: the model is
only called, in one batch of all the rows the orders make.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.errors import DataError
from taskfit.feed.chunk import Chunk
from taskfit.feed.classes import class_ids, probabilities
from taskfit.feed.confidence import log_loss
from taskfit.inference.predict import Predictor, labelled_rows
from taskfit.plan.plan import Head
from taskfit.runfolder.opened import Run, read_rows

Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Importance:
    head: str
    score: str  # what got worse: "log loss" or "RMSE"
    baseline: float  # the score on the rows as they are
    columns: dict[str, tuple[float, float]]  # column -> (mean increase, std over repeats)

    def ranked(self) -> list[tuple[str, float, float]]:
        return sorted(((c, m, s) for c, (m, s) in self.columns.items()), key=lambda r: -r[1])


@dataclass(frozen=True)
class Explained:
    rows: int
    on: str  # which rows: "the test split" or the CSV's name
    repeats: int
    heads: list[Importance]

    def document(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "on": self.on,
            "repeats": self.repeats,
            "heads": {
                h.head: {
                    "score": h.score,
                    "baseline": h.baseline,
                    "importance": [{"column": c, "mean": m, "std": s} for c, m, s in h.ranked()],
                }
                for h in self.heads
            },
        }


def explain_run(
    run_dir: str | Path, csv_path: Path | None, repeats: int = 5
) -> tuple[Explained, list[Path]]:
    """Permutation importance of a run's columns; its plots and explain.json (which report.html
    shows) are written into the run folder."""
    from taskfit.report.plots import write_importance
    from taskfit.runfolder.files import write_json
    from taskfit.runfolder.layout import RunFolder

    predictor = Predictor.load(
        run_dir, traced=True
    )  # the model is called 1 + columns x repeats times
    rows, on = explained_rows(predictor, csv_path)
    explained = permutation_importance(predictor, rows, on, repeats)
    run = predictor.run
    written = [
        write_importance(run.folder, run.plan, h.head, h.ranked(), h.score, on)
        for h in explained.heads
    ]
    write_json(RunFolder(run.folder).explained, explained.document())
    return explained, written


def explain_row(run_dir: str | Path, csv_path: Path | None, index: int) -> list[RowContributions]:
    predictor = Predictor.load(run_dir)
    rows, _ = explained_rows(predictor, csv_path)
    return row_contributions(predictor, rows, index)


def explained_rows(predictor: Predictor, csv_path: Path | None) -> tuple[Chunk, str]:
    """The labelled rows to explain on: the CSV's, or else the run's test split, drawn again
    from its data as training drew it."""
    run = predictor.run
    if csv_path is not None:
        table, _ = read_rows(run, csv_path, need_label=True)
        rows, _ = labelled_rows(run, table, csv_path.name)
        return rows, csv_path.name
    rows = test_split(run)
    if len(rows) == 0:
        raise DataError(
            f"{run.folder}: this run has no test split (a bagged run's metrics are "
            "out-of-fold: every labelled row trained the saved model); give labelled rows it "
            f"never saw: taskfit explain {run.folder} holdout.csv"
        )
    return rows, "the test split"


def test_split(run: Run) -> Chunk:
    from taskfit.feed.splits import open_splits
    from taskfit.plan.checking import check_spec
    from taskfit.runfolder.layout import RunFolder

    checked = check_spec(RunFolder(run.folder).spec)
    return open_splits(checked.data, run.plan, run.spec).test


def score(head: Head, y: np.ndarray, output: np.ndarray) -> float:
    if head.task == "regression":
        return float(np.sqrt(np.mean((output[:, 0] - y.reshape(len(y), -1)[:, 0]) ** 2)))
    return log_loss(probabilities(output), class_ids(y))


def permutation_importance(
    predictor: Predictor, rows: Chunk, on: str, repeats: int = 5, seed: int = 0
) -> Explained:
    run = predictor.run
    heads = run.plan.heads
    x = rows.named(run.numeric)
    base = predictor.outputs(x)
    baseline = {h.name: score(h, rows.y[h.name], base[h.name]) for h in heads}
    rng = np.random.default_rng(seed)
    increases: dict[str, dict[str, list[float]]] = {h.name: {} for h in heads}
    for column in x:
        for _ in range(repeats):
            shuffled = dict(x)
            shuffled[column] = x[column][rng.permutation(len(rows))]
            outputs = predictor.outputs(shuffled)
            for h in heads:
                worse = score(h, rows.y[h.name], outputs[h.name]) - baseline[h.name]
                increases[h.name].setdefault(column, []).append(worse)
    return Explained(
        len(rows),
        on,
        repeats,
        [
            Importance(
                h.name,
                "RMSE" if h.task == "regression" else "log loss",
                baseline[h.name],
                {c: (float(np.mean(v)), float(np.std(v))) for c, v in increases[h.name].items()},
            )
            for h in heads
        ],
    )


@dataclass(frozen=True)
class RowContributions:
    row: int
    head: str
    explains: str  # what the numbers are in: "probability of yes", or the label's units
    prediction: float
    background: float  # the mean prediction over the background rows drawn
    columns: dict[str, float]  # column -> contribution; they sum to prediction - background


def row_contributions(
    predictor: Predictor, rows: Chunk, index: int, samples: int = 64, seed: int = 0
) -> list[RowContributions]:
    """Sampling Shapley values of row `index` of `rows` (the others are the background)."""
    if not 0 <= index < len(rows):
        raise DataError(f"--row {index}: the rows explained are 0 to {len(rows) - 1}")
    run = predictor.run
    x = rows.named(run.numeric)
    names = list(x)
    rng = np.random.default_rng(seed)
    n, d = len(rows), len(names)
    # for each sample: an order of the columns and a background row; d + 1 rows each, the
    # k-th with the first k columns of the order switched to the explained row's values
    built = {c: np.repeat(x[c][rng.integers(0, n, samples)], d + 1, axis=0) for c in names}
    orders = [rng.permutation(d) for _ in range(samples)]
    for s, order in enumerate(orders):
        for k in range(1, d + 1):
            for j in order[:k]:
                built[names[j]][s * (d + 1) + k] = x[names[j]][index]
    outputs = predictor.outputs(built)
    found = []
    for head in run.plan.heads:
        value, what = _explained_value(head, outputs[head.name], x, predictor, index)
        steps = value.reshape(samples, d + 1)
        gains = np.zeros(d)
        for s, order in enumerate(orders):
            gains[order] += np.diff(steps[s])
        found.append(
            RowContributions(
                index,
                head.name,
                what,
                float(np.mean(steps[:, -1])),
                float(np.mean(steps[:, 0])),
                {names[j]: float(gains[j] / samples) for j in range(d)},
            )
        )
    return found


def _explained_value(
    head: Head, output: np.ndarray, x: Inputs, predictor: Predictor, index: int
) -> tuple[np.ndarray, str]:
    """The number explained for each built row: a regression head's value, or the probability
    of the class the model predicts for the row explained."""
    if head.task == "regression":
        return output[:, 0], "the predicted value"
    row = predictor.outputs({c: v[index : index + 1] for c, v in x.items()})[head.name]
    chosen = int(probabilities(row)[0].argmax())
    return probabilities(output)[:, chosen], f"probability of {head.labels.classes[chosen]}"
