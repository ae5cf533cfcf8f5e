"""`data.streaming`: a CSV read in chunks with pyarrow's streaming reader, never whole in memory.

- `check` reads the first SAMPLE_ROWS rows only, to infer the column types and the labels.
- This module reads: the file in typed chunks, each row labelled and assigned its part. Rows
  are split by a hash of their row number and the seed, so every pass (the scan, each epoch,
  the evaluation) puts each row in the same part without holding a list of rows. Classes are
  not stratified (each keeps its share only on average).
- taskfit.streamscan: one pass gathers, from the training rows only, what the model is fitted
  to (means, variances, medians, vocabularies, class counts, the target's scale).
- taskfit.streamsplits: the parts as training reads them; each epoch reads the file again,
  its training rows shuffled through a bounded buffer, so memory stays flat however large the
  file is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.data import SAMPLE_ROWS
from taskfit.errors import DataError
from taskfit.labels import MISSING
from taskfit.plan import Head

BLOCK_BYTES = 2**22  # bytes pyarrow reads per chunk (4 MiB)
TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
PART_NAMES = {code: name for name, code in PARTS.items()}


def row_parts(first: int, n: int, seed: int, test: float, validation: float) -> np.ndarray:
    """Each row's part (TRAIN, VALIDATION, TEST) from a hash of its number and the seed:
    splitmix64, whose top 53 bits are a uniform number in [0, 1). `validation` is a share of
    what the test part leaves, as in the in-memory split."""
    with np.errstate(over="ignore"):
        z = np.arange(first, first + n, dtype=np.uint64) + np.uint64(seed) * np.uint64(
            0x9E3779B97F4A7C15
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    parts = np.full(n, TRAIN, dtype=np.int8)
    parts[u < test + (1 - test) * validation] = VALIDATION
    parts[u < test] = TEST
    return parts


@dataclass(frozen=True)
class Layout:
    """What to read from the file and how: the feature columns by kind and the one label."""

    path: Path
    header: tuple[str, ...]  # every column, as check read them (names stripped)
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    head: Head
    seed: int
    test_fraction: float
    validation_fraction: float

    @property
    def label(self) -> str:
        return self.head.labels.columns[0]


@dataclass
class Chunk:
    first: int  # the row number of its first row (0 = the first data row)
    numeric: np.ndarray  # (rows, numeric columns) float32, NaN for a gap
    categorical: dict[str, np.ndarray]  # column -> (rows, 1) str, "" for a gap
    y: np.ndarray  # targets as the loss takes them
    labelled: np.ndarray  # bool: the row has a label
    parts: np.ndarray

    def take(self, keep: np.ndarray) -> Chunk:
        return Chunk(
            self.first,
            self.numeric[keep],
            {c: v[keep] for c, v in self.categorical.items()},
            self.y[keep],
            self.labelled[keep],
            self.parts[keep],
        )

    def inputs(self, numeric_block: str) -> dict[str, np.ndarray]:
        x: dict[str, np.ndarray] = dict(self.categorical)
        if self.numeric.shape[1]:
            x[numeric_block] = self.numeric
        return x


def chunks(layout: Layout) -> Iterator[Chunk]:
    """The file in chunks, each row typed, labelled and assigned its part."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    head = layout.head
    label_type = pa.float64() if head.task == "regression" else pa.string()
    types = {c: pa.float64() for c in layout.numeric}
    types |= {c: pa.string() for c in layout.categorical}
    types[layout.label] = label_type
    nulls = sorted({v for m in MISSING for v in (m, m.upper(), m.capitalize())})
    convert = pacsv.ConvertOptions(
        column_types=types,
        include_columns=[*layout.numeric, *layout.categorical, layout.label],
        null_values=nulls,
        strings_can_be_null=False,  # category gaps are found below, as in the in-memory path
    )
    where = layout.path.name
    # the header as check read it (stripped names), and quoted cells may hold line breaks
    names = pacsv.ReadOptions(block_size=BLOCK_BYTES, column_names=list(layout.header), skip_rows=1)
    try:
        reader = pacsv.open_csv(
            layout.path,
            read_options=names,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=convert,
        )
        first = 0
        for batch in reader:
            yield _chunk(batch, layout, first, where)
            first += batch.num_rows
    except pa.ArrowInvalid as exc:
        raise DataError(_unreadable(str(exc), layout)) from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{where}: cannot be read: {exc}") from None


def _unreadable(message: str, layout: Layout) -> str:
    """pyarrow's parse error, with the column named (pyarrow counts them from 0) and the fix."""
    where = layout.path.name
    found = re.search(r"CSV column #(\d+)", message)
    if found is None:
        return f"{where}: is not a readable CSV: {message}"
    column = layout.header[int(found.group(1))]
    value = re.search(r"invalid value '([^']*)'", message)
    cell = f" has {value.group(1)!r}" if value else " has a cell that is not a number"
    if column == layout.label:
        return f"column {column}: a row of {where}{cell}; a regression label must be a number"
    return (
        f"column {column}: a row of {where} after the first rows check reads{cell}, not a "
        f"number; fix the cell, or list {column} in data.categorical"
    )


def _chunk(batch: Any, layout: Layout, first: int, where: str) -> Chunk:
    n = batch.num_rows
    numeric = np.empty((n, len(layout.numeric)), dtype=np.float32)
    for j, column in enumerate(layout.numeric):
        values = batch.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.flatnonzero(np.isinf(values))
        if len(bad):
            raise DataError(
                f"column {column}: CSV line {first + bad[0] + 2} of {where} is infinite; "
                "use an empty cell for a missing value"
            )
        numeric[:, j] = values
    categorical = {c: _text(batch.column(c)).reshape(-1, 1) for c in layout.categorical}
    y, labelled = _targets(batch.column(layout.label), layout.head, first, where)
    parts = row_parts(first, n, layout.seed, layout.test_fraction, layout.validation_fraction)
    return Chunk(first, numeric, categorical, y, labelled, parts)


def _cells(column: Any) -> Any:
    """Text cells trimmed, a missing marker ("NA", "null", ...) turned into "" (pyarrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    gap = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING)))
    return pc.if_else(gap, "", trimmed)


def _text(column: Any) -> np.ndarray:
    """_cells as the numpy strings a category input takes."""
    return np.asarray(_cells(column).to_numpy(zero_copy_only=False), dtype=object)


def _targets(column: Any, head: Head, first: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, which rows have a label); a class the check did not see is an error."""
    if head.task == "regression":
        y = column.to_numpy(zero_copy_only=False).astype(np.float32)
        bad = np.flatnonzero(np.isinf(y))
        if len(bad):
            raise DataError(
                f"column {head.labels.columns[0]}: CSV line {first + bad[0] + 2} of {where} is "
                "infinite; a regression label must be a finite number"
            )
        return y, ~np.isnan(y)
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = _cells(column)
    known = pa.array(list(head.labels.classes), type=pa.string())
    ids = pc.index_in(cells, value_set=known).fill_null(-1).to_numpy().astype(np.int64)
    labelled = pc.not_equal(cells, "").to_numpy(zero_copy_only=False)
    unknown = np.flatnonzero(labelled & (ids < 0))
    if len(unknown):
        i = int(unknown[0])
        raise DataError(
            f"column {head.labels.columns[0]}: CSV line {first + i + 2} of {where} has "
            f"{cells[i].as_py()!r}, not among the classes found in the first {SAMPLE_ROWS} rows "
            f"({', '.join(head.labels.classes)}); list every class in data.classes"
        )
    ids = np.where(labelled, ids, 0)
    if head.onehot_targets:
        return np.eye(len(head.labels.classes), dtype=np.float32)[ids], labelled
    if head.output_units == 1:
        return ids.astype(np.float32), labelled
    return ids, labelled


def concat_chunks(a: Chunk, b: Chunk) -> Chunk:
    return Chunk(
        a.first,
        np.concatenate([a.numeric, b.numeric]),
        {c: np.concatenate([a.categorical[c], b.categorical[c]]) for c in a.categorical},
        np.concatenate([a.y, b.y]),
        np.concatenate([a.labelled, b.labelled]),
        np.concatenate([a.parts, b.parts]),
    )
