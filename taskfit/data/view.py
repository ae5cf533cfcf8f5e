"""Where the rows come from and what they hold: source, column types, label format.

Standard library only: `check` runs all of it without numpy or TensorFlow, and `train` runs the
very same code, so the two can never disagree about the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskfit.config.params import suggest
from taskfit.data.bundled import bundled_datasets
from taskfit.data.columns import DECLARED, Column, infer_columns
from taskfit.data.csvtable import Table, read_csv
from taskfit.data.labels import Labels, LabelSpec, detect_labels
from taskfit.errors import DataError, Problems
from taskfit.spec.keys import SINGLE_HEAD, Spec
from taskfit.spec.spec import LoadedSpec


@dataclass(frozen=True)
class DataView:
    """The data as the spec reads it: the table, every column's type, and the labels."""

    source: str  # the bundled name, or the CSV's absolute path
    table: Table
    columns: tuple[Column, ...]  # every column but the label(s), with its kind
    labels: dict[str, Labels]  # head name -> its labels (one task: one head, SINGLE_HEAD)
    streamed: Path | None = None  # data.streaming: the CSV, of which `table` holds the first rows

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.used)

    def of_kind(self, kind: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == kind)

    @property
    def rows(self) -> list[int]:
        """The rows that train and test: those with every head's label."""
        missing = set(self.missing_rows)
        return [i for i in range(self.table.n_rows) if i not in missing]

    @property
    def missing_rows(self) -> tuple[int, ...]:
        """Rows left out because some head's label is empty."""
        return tuple(sorted({i for labels in self.labels.values() for i in labels.missing_rows}))


def source_path(loaded: LoadedSpec) -> tuple[Path, str]:
    """(the CSV to read, how to name the source in the resolved spec)."""
    source = loaded.spec.data.source
    bundled = bundled_datasets()
    if source in bundled:
        return bundled[source].path, source
    try:
        path = Path(source).expanduser()
        if not path.is_absolute():
            path = loaded.base_dir / path
        exists, resolved = path.exists(), str(path.resolve())
    except (OSError, RuntimeError, ValueError) as exc:  # ~nobody/, a NUL, a name too long
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).rstrip(".")
        raise DataError(
            f"data.source: {source!r} is not a usable path ({reason}); give a bundled "
            "dataset's name (taskfit datasets) or a CSV path relative to the spec file"
        ) from None
    if not exists and not source.lower().endswith(".csv"):
        hint = suggest(source, bundled)
        raise DataError(
            f"data.source: {source!r} is neither a bundled dataset nor a file.{hint} "
            f"Bundled: {', '.join(bundled)} (taskfit datasets); or give a CSV path."
        )
    return path, resolved


def label_specs(spec: Spec) -> dict[str, tuple[str, LabelSpec]]:
    """Head name -> (task, what the spec says about its label)."""
    if spec.heads is None:
        data = spec.data
        assert spec.task is not None and data.label is not None  # the spec loader checked
        return {SINGLE_HEAD: (spec.task, LabelSpec(data.label, data.positive, data.classes))}
    return {
        name: (head.task, LabelSpec(head.label, head.positive, head.classes, f"heads.{name}"))
        for name, head in spec.heads.items()
    }


SAMPLE_ROWS = 20_000  # rows read of a streamed CSV (data.streaming) to infer types and labels
# Streaming turns itself on above this size: in memory a CSV takes about ten times its size
# (every cell held as text) and minutes to parse; streamed, memory stays flat.
AUTO_BYTES = 2**28  # 256 MiB


def streaming_wanted(spec: Spec, path: Path) -> bool:
    """`data.streaming` as set; unset, on for a file over AUTO_BYTES."""
    if spec.data.streaming is not None:
        return spec.data.streaming
    try:
        return path.stat().st_size > AUTO_BYTES
    except OSError:  # read_csv says what is wrong with the path
        return False


def inspect_data(loaded: LoadedSpec) -> DataView:
    """Read the source and check columns and labels against the spec: every problem at once."""
    path, source = source_path(loaded)
    data = loaded.spec.data
    streaming = streaming_wanted(loaded.spec, path)
    table = read_csv(path, max_rows=SAMPLE_ROWS if streaming else None)
    problems = Problems()
    heads = label_specs(loaded.spec)
    named = [
        (f"{s.key}.label", c)
        for _, s in heads.values()
        for c in ((s.label,) if isinstance(s.label, str) else s.label)
    ]
    label_columns = tuple(c for _, c in named)
    named += [
        (f"data.{key}", c)
        for key in ("features", "ignore", *DECLARED.values())
        for c in getattr(data, key) or ()
    ]
    for key, column in named:
        if column not in table.columns:
            problems.add(
                key,
                f"no column {column!r} in {path.name}.{suggest(column, table.columns)} "
                f"Columns: {', '.join(table.columns)}",
            )
        elif not key.endswith(".label") and key != "data.ignore" and column in label_columns:
            problems.add(key, f"{column!r} is a label; a label is never an input")
    problems.raise_if_any(DataError)
    columns = infer_columns(table, data, label_columns, problems)
    if not columns:
        problems.add(
            "data.features",
            f"no input columns: {path.name} has only the label column(s); add feature columns",
        )
    elif not any(c.used for c in columns):
        # Say why each column was left out: data.features alone does not bring back an
        # identifier (data.numeric / data.categorical do).
        why = ", ".join(f"{c.name} ({c.note or 'left out'})" for c in columns)
        problems.add(
            "data.features",
            f"no input columns are left: {why}. Keep one: an identifier by listing it in "
            "data.numeric or data.categorical, an ignored one by taking it out of data.ignore",
        )
    labels = {name: detect_labels(task, table, s, problems) for name, (task, s) in heads.items()}
    problems.raise_if_any(DataError)
    found = {name: found for name, found in labels.items() if found is not None}
    return DataView(source, table, columns, found, path if streaming else None)
