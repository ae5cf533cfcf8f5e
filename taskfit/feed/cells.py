"""The one reading of a CSV's cells into a Block: the missing-cell rule, numbers, categories and
every head's targets, on pyarrow string arrays. The streamed reader hands over each block's
columns; a table in memory hands over its columns whole (taskfit.feed.memory); predict and
evaluate read a new file the same way.

- A cell is missing when, trimmed and lower-cased, it is one of data.labels.MISSING.
- A number is what Python's float() reads; pyarrow's cast is the fast path, and a column it
  refuses is read by float() cell by cell before anything is called an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taskfit.data.columns import too_large
from taskfit.data.dates import DateFormat
from taskfit.data.labels import FEATURE_LIMIT, MISSING, number
from taskfit.errors import DataError
from taskfit.feed.chunk import TRAIN, Block, Chunk, Span
from taskfit.plan.plan import Head

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Where:
    """Where the rows come from, for messages: a row's CSV line, the file's name (None: not
    named), and, for a streamed file, how many rows check read (later rows may surprise)."""

    line: Callable[[int], int]
    file: str | None = None
    checked: int | None = None
    line_name: str = "CSV line"  # csvtable.Table's

    def at(self, row: int) -> str:
        return f"{self.line_name} {self.line(row)}" + (f" of {self.file}" if self.file else "")


@dataclass(frozen=True)
class Columns:
    """Which columns a block holds, by kind, and the heads whose labels it encodes. Date and
    text columns are read as categories are, as strings, so they are among `categorical`;
    `dates` gives each date column's format (its vocabulary is a calendar: taskfit.feed.
    calendar), `texts` names the free-text columns (taskfit.feed.text)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]  # every string column: categories, dates and texts
    heads: tuple[Head, ...]
    dates: Mapping[str, DateFormat] = field(default_factory=dict)
    texts: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c for head in self.heads for c in head.labels.columns)

    @property
    def numbers(self) -> tuple[str, ...]:
        """The columns read as numbers: the numeric features, regression and one-hot labels."""
        labels = [
            c for head in self.heads if head.labels.format in ("real", "onehot")
            for c in head.labels.columns
        ]  # fmt: skip
        return tuple(dict.fromkeys((*self.numeric, *labels)))

    @property
    def read(self) -> tuple[str, ...]:
        """Every column the block needs, each once."""
        return tuple(dict.fromkeys((*self.numeric, *self.categorical, *self.labels)))


def encode(
    columns: Mapping[str, Any],
    wanted: Columns,
    where: Where,
    parts: np.ndarray | None = None,
    first: int = 0,
    span: Span | None = None,
) -> Block:
    """pyarrow string arrays by column name -> a Block (`parts`: each row's part; None: all
    TRAIN, for rows that are not split, such as a file given to evaluate)."""
    numeric = _numeric_matrix(columns, wanted.numeric, where)
    categorical = {c: texts(columns[c]).reshape(-1, 1) for c in wanted.categorical}
    n = len(numeric)
    labelled = np.ones(n, dtype=bool)
    y = {}
    for head in wanted.heads:
        y[head.name], has = targets(head, columns, where)
        labelled &= has
    if parts is None:
        parts = np.full(n, TRAIN, dtype=np.int8)
    return Block(Chunk(numeric, categorical, y), labelled, parts, first, span)


def cells(column: Any) -> Any:
    """Text cells trimmed, a missing marker ("NA", "null", ...) turned into ""."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    gap = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING)))
    return pc.if_else(gap, "", trimmed)


def texts(column: Any) -> np.ndarray:
    """A category column's cells as the numpy strings its input takes ("" for a gap)."""
    return np.asarray(cells(column).to_numpy(zero_copy_only=False), dtype=object)


def floats(column: Any) -> tuple[np.ndarray, int | None]:
    """(float64 values, NaN for a gap; the first row that is not a number, or None). A column
    pyarrow has read as numbers already (see taskfit.feed.stream) is taken as it is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_floating(column.type):
        return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False), None

    present = cells(column)
    nulled = pc.if_else(pc.equal(present, ""), pa.scalar(None, pa.string()), present)
    try:
        return pc.cast(nulled, pa.float64()).to_numpy(zero_copy_only=False), None
    except pa.ArrowInvalid:  # pyarrow reads less than float() does ("1_000"), or a bad cell
        read = [number(c) if c else math.nan for c in present.to_pylist()]
        bad = next((i for i, v in enumerate(read) if v is None), None)
        return np.array([math.nan if v is None else v for v in read], dtype=np.float64), bad


def _numeric_matrix(columns: Mapping[str, Any], names: Sequence[str], where: Where) -> np.ndarray:
    n = len(columns[names[0]]) if names else _rows(columns)
    # column by column into a column-major block: contiguous writes, 4x faster than row-major
    matrix = np.empty((n, len(names)), dtype=np.float32, order="F")
    for j, name in enumerate(names):
        values, bad = floats(columns[name])
        if bad is not None:
            cell = cells(columns[name])[bad].as_py()
            row = (
                f"a row of {where.file} after the first rows check reads"
                if where.checked is not None
                else where.at(bad)
            )
            raise DataError(
                f"column {name}: {row} has {cell!r}, not a number; fix the cell, or list "
                f"{name} in data.categorical"
            )
        size = np.abs(np.nan_to_num(values))
        infinite = np.flatnonzero(size > FLOAT32_MAX)
        if len(infinite):
            raise DataError(
                f"column {name}: {where.at(int(infinite[0]))} is infinite or beyond a 32-bit "
                "float (3.4e38); use an empty cell for a missing value"
            )
        too_big = np.flatnonzero(size > FEATURE_LIMIT)
        if len(too_big):
            cell = cells(columns[name])[int(too_big[0])].as_py()
            raise DataError(f"column {name}: {too_large(cell, where.at(int(too_big[0])))}")
        matrix[:, j] = values
    return matrix


def _rows(columns: Mapping[str, Any]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def targets(head: Head, columns: Mapping[str, Any], where: Where) -> tuple[np.ndarray, np.ndarray]:
    """(the head's targets as its loss takes them, which rows have its label); a class the
    model does not know is an error naming the row."""
    labels = head.labels
    if labels.format == "onehot":
        read = [floats(columns[c])[0] for c in labels.columns]
        matrix = np.stack(read, axis=1)
        labelled = ~np.isnan(matrix).any(axis=1)
        return np.nan_to_num(matrix).astype(np.float32), labelled
    name = labels.columns[0]
    if labels.format == "real":
        values, bad = floats(columns[name])
        if bad is not None:
            cell = cells(columns[name])[bad].as_py()
            row = f"a row of {where.file}" if where.checked is not None else where.at(bad)
            raise DataError(
                f"column {name}: {row} has {cell!r}; a regression label must be a number"
            )
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            raise DataError(
                f"column {name}: {where.at(int(infinite[0]))} is infinite; a regression label "
                "must be a finite number"
            )
        labelled = ~np.isnan(values)
        return np.where(labelled, values, 0.0).astype(np.float32), labelled
    ids, labelled = _class_ids(head, columns[name], where)
    if head.onehot_targets:
        return np.eye(len(labels.classes), dtype=np.float32)[ids], labelled
    if head.output_units == 1:  # one sigmoid unit: a float 0/1 target
        return ids.astype(np.float32), labelled
    return ids, labelled


def _class_ids(head: Head, column: Any, where: Where) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    labels = head.labels
    present = cells(column)
    known = pa.array(list(labels.classes), type=pa.string())
    ids = pc.index_in(present, value_set=known).fill_null(-1).to_numpy().astype(np.int64)
    labelled = pc.not_equal(present, "").to_numpy(zero_copy_only=False)
    unknown = np.flatnonzero(labelled & (ids < 0))
    if len(unknown):
        i = int(unknown[0])
        listed = ", ".join(labels.classes)
        found = (
            f"not among the classes found in the first {where.checked} rows ({listed}); list "
            "every class in data.classes"
            if where.checked is not None
            else f"not one of the classes the model knows ({listed})"
        )
        raise DataError(
            f"column {labels.columns[0]}: {where.at(i)} has {present[i].as_py()!r}, {found}"
        )
    return np.where(labelled, ids, 0), labelled
