"""The data view -> model inputs (one array per column) and targets, and a deterministic,
seeded train/validation/test split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from taskfit.data.columns import CATEGORICAL, NUMERIC
from taskfit.data.csvtable import Table
from taskfit.data.labels import is_missing, number
from taskfit.data.view import DataView
from taskfit.errors import DataError
from taskfit.plan.plan import Head, Plan
from taskfit.spec.spec import DataSpec

Inputs = dict[str, np.ndarray]  # column -> (rows, 1): float32 (NaN where empty) or str ("" empty)
Targets = dict[str, np.ndarray]  # head name -> what its loss takes (one task: one head)


@dataclass(frozen=True)
class Part:
    x: Inputs
    y: Targets

    def __len__(self) -> int:
        return len(next(iter(self.y.values())))

    @property
    def target(self) -> np.ndarray:
        """The targets of a single-task part (its one head)."""
        (only,) = self.y.values()
        return only

    def take(self, rows: np.ndarray | slice) -> Part:
        return Part(
            {k: v[rows] for k, v in self.x.items()}, {k: v[rows] for k, v in self.y.items()}
        )

    def head(self, n: int) -> Part:
        return self.take(slice(0, n))

    def join(self, other: Part) -> Part:
        """This part's rows, then the other's."""
        return Part(
            {k: np.concatenate([v, other.x[k]]) for k, v in self.x.items()},
            {k: np.concatenate([v, other.y[k]]) for k, v in self.y.items()},
        )


class Feed(Protocol):
    """What fitting reads of the parts: Splits (in memory), stream.StreamSplits (a streamed
    CSV) and distributed.ShardedSplits (one process's share) provide it."""

    def feature_stats(
        self,
        plan: Plan,
        numeric: tuple[str, ...],
        categorical: tuple[str, ...],
        gaps: frozenset[str],
    ) -> Any: ...

    def class_counts(self, head: str, n_classes: int) -> np.ndarray: ...

    def first_rows(self, models: Any) -> dict[str, Any]: ...

    def fit_data(self, models: Any, plan: Plan, batch_size: int) -> dict[str, Any]: ...

    def validation_data(self, models: Any, plan: Plan) -> Any: ...

    def fit_callbacks(self) -> list[Any]: ...


@dataclass(frozen=True)
class Splits:
    """The three parts in memory. Training reads them only through the methods below, which a
    streamed CSV (taskfit.feed.stream.StreamSplits) provides as well."""

    train: Part
    validation: Part | None
    test: Part

    def head(self, n: int) -> Splits:
        """At most n rows of each part (a --smoke run)."""
        validation = self.validation.head(n) if self.validation else None
        return Splits(self.train.head(n), validation, self.test.head(n))

    def joined(self) -> Splits:
        """The training and validation rows as one training part (a refit)."""
        if self.validation is None:
            return self
        return Splits(self.train.join(self.validation), None, self.test)

    def sizes(self) -> dict[str, int]:
        validation = len(self.validation) if self.validation else 0
        return {"train": len(self.train), "validation": validation, "test": len(self.test)}

    def feature_stats(
        self,
        plan: Plan,
        numeric: tuple[str, ...],
        categorical: tuple[str, ...],
        gaps: frozenset[str],
    ) -> Any:
        """taskfit.model.build.FeatureStats of the training part."""
        from taskfit.feed.stats import feature_stats

        return feature_stats(plan, numeric, categorical, self.train, gaps)

    def class_counts(self, head: str, n_classes: int) -> np.ndarray:
        """Training rows per class of a classification head."""
        return np.bincount(class_ids(self.train.y[head]), minlength=n_classes)

    def fit_data(self, models: Any, plan: Plan, batch_size: int) -> dict[str, Any]:
        """Keras fit's x, y (and batch_size) for the training part."""
        y = fit_targets(plan, self.train.y)
        return {"x": models.pack(self.train.x), "y": y, "batch_size": batch_size}

    def fit_callbacks(self) -> list[Any]:
        """Keras callbacks the parts need while fitting (none: Keras shuffles arrays itself)."""
        return []

    def validation_data(self, models: Any, plan: Plan) -> Any:
        if not self.validation:
            return None
        return models.pack(self.validation.x), fit_targets(plan, self.validation.y)

    def test_data(self, models: Any, plan: Plan) -> dict[str, Any]:
        """Keras evaluate's x and y for the test part."""
        return {"x": models.pack(self.test.x), "y": fit_targets(plan, self.test.y)}

    def first_rows(self, models: Any) -> dict[str, Any]:
        """A row of inputs, to build a model before fit (its checkpoint needs the weights)."""
        return {name: values[:1] for name, values in models.pack(self.train.x).items()}

    def test_sample(self) -> Part:
        """Test rows held in memory, for the plots."""
        return self.test


def numeric_column(table: Table, column: str, rows: list[int]) -> np.ndarray:
    cells = table.cells[column]
    values = [np.nan if is_missing(cells[i]) else number(cells[i]) for i in rows]
    return np.array(values, dtype=np.float32).reshape(-1, 1)


def categorical_column(table: Table, column: str, rows: list[int]) -> np.ndarray:
    cells = table.cells[column]
    values = ["" if is_missing(cells[i]) else cells[i] for i in rows]
    return np.array(values, dtype=str).reshape(-1, 1)


def to_inputs(
    table: Table, numeric: tuple[str, ...], categorical: tuple[str, ...], rows: list[int]
) -> Inputs:
    """The model's raw inputs, keyed by column name, for the given rows."""
    inputs = {c: numeric_column(table, c, rows) for c in numeric}
    inputs.update({c: categorical_column(table, c, rows) for c in categorical})
    return inputs


def to_targets(table: Table, plan: Plan, rows: list[int]) -> Targets:
    """Every head's targets, by head name."""
    return {head.name: head_targets(table, head, rows) for head in plan.heads}


def head_targets(table: Table, head: Head, rows: list[int]) -> np.ndarray:
    """Labels as the loss expects them: floats, class ids, or one-hot rows. A label the plan does
    not know (a new file given to `evaluate`) is an error naming the CSV line."""
    labels = head.labels
    if labels.format == "onehot":
        cells = [[table.cells[c][i] for i in rows] for c in labels.columns]
        return np.array(cells, dtype=np.float64).T.astype(np.float32)
    name = labels.columns[0]
    column = table.cells[name]
    if labels.format == "real":
        bad = next((i for i in rows if number(column[i]) is None), None)
        if bad is not None:
            raise DataError(
                f"column {name}: CSV line {table.lines[bad]} has {column[bad]!r}; "
                "a regression label must be a number"
            )
        return np.array([float(column[i]) for i in rows], dtype=np.float32)
    index = {c: i for i, c in enumerate(labels.classes)}
    unknown = next((i for i in rows if column[i] not in index), None)
    if unknown is not None:
        raise DataError(
            f"column {name}: CSV line {table.lines[unknown]} has "
            f"{column[unknown]!r}, not one of the classes the model knows "
            f"({', '.join(labels.classes)})"
        )
    ids = np.array([index[column[i]] for i in rows], dtype=np.int64)
    if head.onehot_targets:
        return np.eye(len(labels.classes), dtype=np.float32)[ids]
    if head.output_units == 1:  # one sigmoid unit: a float 0/1 target
        return ids.astype(np.float32)
    return ids


def to_part(view: DataView, plan: Plan) -> Part:
    """Every labelled row: inputs and every head's targets."""
    rows = view.rows
    x = to_inputs(view.table, view.of_kind(NUMERIC), view.of_kind(CATEGORICAL), rows)
    return Part(x, to_targets(view.table, plan, rows))


def fit_targets(plan: Plan, y: Targets) -> np.ndarray | Targets:
    """What Keras's fit takes: the one head's array, or the dict keyed by head name."""
    return y if plan.multi else y[plan.head.name]


def class_ids(y: np.ndarray) -> np.ndarray:
    """Targets (class ids, 0/1 floats or one-hot rows) -> integer class ids."""
    return y.argmax(axis=1) if y.ndim == 2 else y.astype(int)


def confusion_counts(actual: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """k x k counts: actual class ids down, predicted across."""
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (actual, predicted), 1)
    return counts


def probabilities(output: np.ndarray) -> np.ndarray:
    """A classifier's output with one column per class: a sigmoid's p becomes (1 - p, p)."""
    return np.concatenate([1 - output, output], axis=1) if output.shape[1] == 1 else output


def split(data: Part, spec: DataSpec, seed: int, stratify: str | None) -> Splits:
    """Test first, then validation from the rest; each class of the `stratify` head keeps its
    share in every part."""
    rng = np.random.default_rng(seed)
    n = len(data)
    groups = class_ids(data.y[stratify]) if stratify else np.zeros(n, dtype=np.int64)
    rest, test = _cut(np.arange(n), groups, spec.test_fraction, rng)
    validation = None
    if spec.validation_fraction > 0:
        rest, val = _cut(rest, groups, spec.validation_fraction, rng)
        validation = data.take(val)
    return Splits(data.take(rest), validation, data.take(test))


def _cut(
    rows: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    keep, take = [], []
    for group in np.unique(groups[rows]):
        members = rng.permutation(rows[groups[rows] == group])
        n = round(len(members) * fraction)
        take.append(members[:n])
        keep.append(members[n:])
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(take))
