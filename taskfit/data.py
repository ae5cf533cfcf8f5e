"""Where the rows come from and what they hold: source, column types, label format.

Standard library only: `check` runs all of it without numpy or TensorFlow, and `train` runs the
very same code, so the two can never disagree about the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskfit.bundled import bundled_datasets
from taskfit.columns import Column, infer_columns
from taskfit.csvtable import Table, read_csv
from taskfit.errors import DataError, Problems
from taskfit.labels import Labels, detect_labels
from taskfit.params import suggest
from taskfit.spec import LoadedSpec


@dataclass(frozen=True)
class DataView:
    """The data as the spec reads it: the table, every column's type, and the labels."""

    source: str  # the bundled name, or the CSV's absolute path
    table: Table
    columns: tuple[Column, ...]  # every column but the label(s), with its kind
    labels: Labels

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.used)

    def of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == kind)

    @property
    def rows(self) -> list[int]:
        """The rows that train and test: those with a label."""
        missing = set(self.labels.missing_rows)
        return [i for i in range(self.table.n_rows) if i not in missing]


def source_path(loaded: LoadedSpec) -> tuple[Path, str]:
    """(the CSV to read, how to name the source in the resolved spec)."""
    source = loaded.spec.data.source
    bundled = bundled_datasets()
    if source in bundled:
        return bundled[source].path, source
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = loaded.base_dir / path
    if not path.exists() and not source.lower().endswith(".csv"):
        hint = suggest(source, bundled)
        raise DataError(
            f"data.source: {source!r} is neither a bundled dataset nor a file.{hint} "
            f"Bundled: {', '.join(bundled)} (taskfit datasets); or give a CSV path."
        )
    return path, str(path.resolve())


def inspect_data(loaded: LoadedSpec) -> DataView:
    """Read the source and check columns and labels against the spec: every problem at once."""
    path, source = source_path(loaded)
    table = read_csv(path)
    data = loaded.spec.data
    problems = Problems()
    label_columns = (data.label,) if isinstance(data.label, str) else data.label
    named = [("label", c) for c in label_columns]
    named += [
        (key, c)
        for key in ("features", "ignore", "numeric", "categorical")
        for c in getattr(data, key) or ()
    ]
    for key, column in named:
        if column not in table.columns:
            problems.add(
                f"data.{key}",
                f"no column {column!r} in {path.name}.{suggest(column, table.columns)} "
                f"Columns: {', '.join(table.columns)}",
            )
        elif key in ("features", "numeric", "categorical") and column in label_columns:
            problems.add(f"data.{key}", f"{column!r} is the label; a label is never an input")
    problems.raise_if_any(DataError)
    columns = infer_columns(table, data, label_columns, problems)
    if not any(c.used for c in columns):
        problems.add("data.features", "no input columns are left; list some in data.features")
    labels = detect_labels(loaded.spec.task, table, data, problems)
    problems.raise_if_any(DataError)
    assert labels is not None
    return DataView(source, table, columns, labels)
