"""Where the rows come from and what they hold: source, feature columns, label format.

Standard library only: `check` runs all of it without numpy or TensorFlow, and `train` runs the
very same code, so the two can never disagree about the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from taskfit.bundled import bundled_datasets
from taskfit.csvtable import Table, read_csv
from taskfit.errors import DataError, Problems
from taskfit.labels import Labels, detect_labels, is_missing, number
from taskfit.params import suggest
from taskfit.spec import LoadedSpec


@dataclass(frozen=True)
class DataView:
    """The data as the spec reads it: the table, the chosen feature columns and the labels."""

    source: str  # the bundled name, or the CSV's absolute path
    table: Table
    features: tuple[str, ...]
    labels: Labels


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
    named = [("data.label", c) for c in label_columns] + [
        ("data.features", c) for c in data.features or ()
    ]
    named += [("data.ignore", c) for c in data.ignore]
    for key, column in named:
        if column not in table.columns:
            problems.add(
                key,
                f"no column {column!r} in {path.name}.{suggest(column, table.columns)} "
                f"Columns: {', '.join(table.columns)}",
            )
    problems.raise_if_any(DataError)
    used = set(label_columns) | set(data.ignore)
    features = data.features or tuple(c for c in table.columns if c not in used)
    for column in features:
        if column in label_columns:
            problems.add("data.features", f"{column!r} is the label; a label is never an input")
    if not features:
        problems.add("data.features", "no input columns are left; list some in data.features")
    for column in features:
        _check_numeric(table, column, problems)
    labels = detect_labels(loaded.spec.task, table, data.label, problems)
    problems.raise_if_any(DataError)
    assert labels is not None
    return DataView(source, table, tuple(features), labels)


def _check_numeric(table: Table, column: str, problems: Problems) -> None:
    """Features must be finite numbers (categorical and missing values come in a later release)."""
    for i, cell in enumerate(table.cells[column]):
        value = number(cell)
        if is_missing(cell):
            problems.add(
                f"column {column}",
                f"is empty at CSV line {table.lines[i]}; fill the "
                "missing values or add the column to data.ignore",
            )
            return
        if value is None:
            problems.add(
                f"column {column}",
                f"is not numeric: CSV line {table.lines[i]} has "
                f"{cell!r}. Add it to data.ignore, or encode it as numbers.",
            )
            return
        if not math.isfinite(value):
            problems.add(
                f"column {column}",
                f"has {cell!r} at CSV line {table.lines[i]}; features must be finite numbers",
            )
            return
