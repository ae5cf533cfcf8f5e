"""`data.streaming`: a CSV read in chunks with pyarrow's streaming reader, never whole in memory.

- `check` reads the first SAMPLE_ROWS rows only, to infer the column types and the labels.
- One pass (`scan`) gathers, from the training rows only, what the model is fitted to: each
  numeric column's mean and variance (exact, merged chunk by chunk) and its median (from a
  uniform sample of up to RESERVOIR training rows), each category column's vocabulary, the
  class counts or the regression target's mean and std. The same pass counts every part.
- Rows are split by a hash of their row number and the seed, so every pass (the scan, each
  epoch, the evaluation) puts each row in the same part without holding a list of rows.
  Classes are not stratified (each keeps its share only on average).
- Each epoch reads the file again; training rows are shuffled through a buffer of at most
  SHUFFLE_ROWS rows, so memory stays flat however large the file is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.data import SAMPLE_ROWS
from taskfit.errors import DataError
from taskfit.labels import MISSING
from taskfit.plan import Head, Plan

BLOCK_BYTES = 2**22  # bytes pyarrow reads per chunk (4 MiB)
RESERVOIR = 100_000  # training rows kept (a uniform sample) for the numeric medians
SHUFFLE_ROWS = 65_536  # training rows the shuffle buffer holds at most
PLOT_ROWS = 10_000  # test rows kept in memory for the plots
TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}


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


def _text(column: Any) -> np.ndarray:
    """Category cells trimmed, a missing marker ("NA", "null", ...) turned into ""."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    gap = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING)))
    return np.asarray(pc.if_else(gap, "", trimmed).to_numpy(zero_copy_only=False), dtype=object)


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

    cells = _text(column)
    known = pa.array(list(head.labels.classes), type=pa.string())
    found = pc.index_in(pa.array(cells, type=pa.string()), value_set=known)
    ids = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    labelled = cells != ""
    unknown = np.flatnonzero(labelled & (ids < 0))
    if len(unknown):
        i = unknown[0]
        raise DataError(
            f"column {head.labels.columns[0]}: CSV line {first + i + 2} of {where} has "
            f"{cells[i]!r}, not among the classes found in the first {SAMPLE_ROWS} rows "
            f"({', '.join(head.labels.classes)}); list every class in data.classes"
        )
    ids = np.where(labelled, ids, 0)
    if head.onehot_targets:
        return np.eye(len(head.labels.classes), dtype=np.float32)[ids], labelled
    if head.output_units == 1:
        return ids.astype(np.float32), labelled
    return ids, labelled


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, width: int) -> Moments:
        return cls(np.zeros(width), np.zeros(width), np.zeros(width))

    def add(self, values: np.ndarray) -> None:
        """A (rows, width) block; NaN cells are left out of their column."""
        present = ~np.isnan(values)
        n = present.sum(axis=0).astype(np.float64)
        safe = np.where(present, values, 0.0).astype(np.float64)
        mean = np.divide(safe.sum(axis=0), n, out=np.zeros_like(n), where=n > 0)
        m2 = (np.where(present, values - mean, 0.0) ** 2).sum(axis=0)
        total = self.n + n
        delta = mean - self.mean
        share = np.divide(n, total, out=np.zeros_like(n), where=total > 0)
        self.mean = self.mean + delta * share
        self.m2 = self.m2 + m2 + delta**2 * self.n * share
        self.n = total

    def with_constant(self, value: np.ndarray, count: np.ndarray) -> Moments:
        """These moments plus `count` cells equal to `value` (gaps filled with the median)."""
        total = self.n + count
        delta = value - self.mean
        share = np.divide(count, total, out=np.zeros_like(total), where=total > 0)
        return Moments(total, self.mean + delta * share, self.m2 + delta**2 * self.n * share)

    @property
    def variance(self) -> np.ndarray:
        return np.divide(self.m2, self.n, out=np.zeros_like(self.n), where=self.n > 0)


@dataclass
class Scan:
    """One pass over the file: what the model is fitted to, and how big each part is."""

    stats: Any  # taskfit.model.FeatureStats
    sizes: dict[str, int]  # labelled rows per part
    without_label: int
    class_counts: np.ndarray | None
    first: Chunk  # a few training rows, to build the model before fit


def scan(
    layout: Layout, plan: Plan, sample: np.ndarray, seed: int, enough: int | None = None
) -> Scan:
    """`sample`: the first rows' numeric matrix, which decides the heavy-tailed columns (as the
    check's sample decided the column types). `enough` (a --smoke run): stop reading once every
    part has that many rows."""
    wanted = [TRAIN, TEST] + ([VALIDATION] if layout.validation_fraction > 0 else [])
    from taskfit.model import FeatureStats, heavy_tailed

    width = len(layout.numeric)
    skewed = heavy_tailed(sample) if width else []
    moments = Moments.empty(width)
    gaps = np.zeros(width)  # training gaps per numeric column
    anywhere = np.zeros(width, dtype=bool)  # a gap in any part: the column gets an indicator
    keys = np.empty(0)
    reservoir = np.empty((0, width), dtype=np.float32)
    rng = np.random.default_rng(seed)
    vocab: dict[str, Counter[str]] = {c: Counter() for c in layout.categorical}
    sizes = Counter[int]()
    without_label = 0
    target = Moments.empty(1)
    classes = len(layout.head.labels.classes)
    counts = np.zeros(max(classes, 2), dtype=np.int64)
    first: Chunk | None = None
    for chunk in chunks(layout):
        anywhere |= np.isnan(chunk.numeric).any(axis=0)
        without_label += int((~chunk.labelled).sum())
        chunk = chunk.take(chunk.labelled)
        sizes.update(chunk.parts.tolist())
        if enough is not None and first is not None and all(sizes[p] >= enough for p in wanted):
            break
        train = chunk.take(chunk.parts == TRAIN)
        if not len(train.y):
            continue
        first = first or train.take(np.arange(min(8, len(train.y))))
        values = _log1p(train.numeric, skewed)
        moments.add(values)
        gaps += np.isnan(values).sum(axis=0)
        keys, reservoir = _bottom_k(keys, reservoir, rng.random(len(values)), values)
        for column, cells in train.categorical.items():
            vocab[column].update(cells.ravel().tolist())
        if layout.head.task == "regression":
            target.add(train.y.reshape(-1, 1).astype(np.float64))
        else:
            ids = train.y.argmax(axis=1) if train.y.ndim == 2 else train.y.astype(int)
            counts += np.bincount(ids, minlength=len(counts))
    if first is None:
        raise DataError(f"{layout.path.name}: no labelled rows fall in the training part")
    fill = np.array(
        [np.nanmedian(c) if (~np.isnan(c)).any() else 0.0 for c in reservoir.T], dtype=np.float32
    )
    filled = moments.with_constant(fill.astype(np.float64), gaps)
    indicate = tuple(int(i) for i in np.flatnonzero(anywhere))
    share = gaps[list(indicate)] / sizes[TRAIN]  # each indicator's mean: the share of gaps
    mean = np.concatenate([filled.mean, share]).astype(np.float32)
    variance = np.concatenate([filled.variance, share * (1 - share)])
    variance = np.where(variance > 1e-12, variance, 1.0).astype(np.float32)
    targets = {}
    if layout.head.task == "regression":
        std = float(np.sqrt(target.variance[0])) or 1.0
        targets[layout.head.name] = (float(target.mean[0]), std)
    stats = FeatureStats(
        tuple(skewed),
        fill,
        indicate,
        mean,
        variance,
        {c: sorted(v) for c, v in vocab.items()},
        targets,
    )
    part_sizes = {name: sizes[code] for name, code in PARTS.items()}
    class_counts = None if layout.head.task == "regression" else counts
    return Scan(stats, part_sizes, without_label, class_counts, first)


def _log1p(values: np.ndarray, skewed: list[int]) -> np.ndarray:
    """model.log_scale on a numpy block: log1p of the skewed columns, gaps left NaN."""
    out = values.copy()
    cols = out[:, skewed]
    out[:, skewed] = np.where(np.isnan(cols), cols, np.log1p(np.maximum(cols, 0)))
    return out


def _bottom_k(
    keys: np.ndarray, rows: np.ndarray, new_keys: np.ndarray, new_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform sample without replacement of every row seen: the RESERVOIR rows with the
    smallest random keys."""
    keys = np.concatenate([keys, new_keys])
    rows = np.concatenate([rows, new_rows])
    if len(keys) <= RESERVOIR:
        return keys, rows
    keep = np.argpartition(keys, RESERVOIR)[:RESERVOIR]
    return keys[keep], rows[keep]


@dataclass
class StreamSplits:
    """The three parts of a streamed CSV, with the methods training reads arrays.Splits by."""

    layout: Layout
    scanned: Scan
    limit: int | None = None  # rows per part (a --smoke run)
    epochs_started: list[int] = field(default_factory=lambda: [0])

    def head(self, n: int) -> StreamSplits:
        return replace(self, limit=n)

    def sizes(self) -> dict[str, int]:
        if self.limit is None:
            return dict(self.scanned.sizes)
        return {k: min(v, self.limit) for k, v in self.scanned.sizes.items()}

    def feature_stats(self, *args: Any) -> Any:
        return self.scanned.stats

    def class_counts(self, head: str, n_classes: int) -> np.ndarray:
        assert self.scanned.class_counts is not None
        return self.scanned.class_counts

    def first_rows(self, models: Any) -> dict[str, Any]:
        return _tensors(self.scanned.first.inputs(_block()), self.layout)

    def fit_data(self, models: Any, plan: Plan, batch_size: int) -> dict[str, Any]:
        # shuffled here, through the bounded buffer (Keras cannot shuffle a dataset)
        return {"x": self._dataset(TRAIN, batch_size, shuffle=True), "shuffle": False}

    def validation_data(self, models: Any, plan: Plan) -> Any:
        if not self.scanned.sizes["validation"]:
            return None
        return self._dataset(VALIDATION, 1024, shuffle=False)

    def test_data(self, models: Any, plan: Plan) -> dict[str, Any]:
        return {"x": self._dataset(TEST, 1024, shuffle=False)}

    def test_sample(self) -> Any:
        """Up to PLOT_ROWS test rows as an arrays.Part (column name -> (rows, 1))."""
        from taskfit.arrays import Part

        taken: list[Chunk] = []
        count = 0
        for chunk in self._rows(TEST):
            taken.append(chunk)
            count += len(chunk.y)
            if count >= PLOT_ROWS:
                break
        if not taken:
            empty = {c: np.empty((0, 1), dtype=np.float32) for c in self.layout.numeric}
            empty |= {c: np.empty((0, 1), dtype=object) for c in self.layout.categorical}
            return Part(empty, {self.layout.head.name: np.empty(0, dtype=np.float32)})
        numeric = np.concatenate([c.numeric for c in taken])[:PLOT_ROWS]
        x = {c: numeric[:, [j]] for j, c in enumerate(self.layout.numeric)}
        for column in self.layout.categorical:
            x[column] = np.concatenate([c.categorical[column] for c in taken])[:PLOT_ROWS]
        y = np.concatenate([c.y for c in taken])[:PLOT_ROWS]
        return Part(x, {self.layout.head.name: y})

    def _rows(self, part: int) -> Iterator[Chunk]:
        """The labelled rows of one part, chunk by chunk (at most `limit` in all)."""
        left = self.limit
        for chunk in chunks(self.layout):
            chunk = chunk.take(chunk.labelled & (chunk.parts == part))
            if left is not None:
                chunk = chunk.take(np.arange(min(left, len(chunk.y))))
                left -= len(chunk.y)
            if len(chunk.y):
                yield chunk
            if left == 0:
                return

    def _batches(self, part: int, batch_size: int, shuffle: bool) -> Iterator[Any]:
        block = _block()
        rng = np.random.default_rng([self.layout.seed, self.epochs_started[0]])
        if shuffle:
            self.epochs_started[0] += 1
        buffered: Chunk | None = None
        for chunk in self._rows(part):
            buffered = chunk if buffered is None else _concat(buffered, chunk)
            if shuffle and len(buffered.y) <= SHUFFLE_ROWS:
                continue
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered.y)))
            ready = len(buffered.y) - (SHUFFLE_ROWS if shuffle else 0)
            ready -= ready % batch_size
            for start in range(0, ready, batch_size):
                batch = buffered.take(np.arange(start, start + batch_size))
                yield batch.inputs(block), batch.y
            buffered = buffered.take(np.arange(ready, len(buffered.y)))
        if buffered is not None and len(buffered.y):
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered.y)))
            for start in range(0, len(buffered.y), batch_size):
                batch = buffered.take(np.arange(start, min(start + batch_size, len(buffered.y))))
                yield batch.inputs(block), batch.y

    def _dataset(self, part: int, batch_size: int, shuffle: bool) -> Any:
        import tensorflow as tf

        block = _block()
        signature: dict[str, Any] = {
            c: tf.TensorSpec((None, 1), tf.string) for c in self.layout.categorical
        }
        if self.layout.numeric:
            signature[block] = tf.TensorSpec((None, len(self.layout.numeric)), tf.float32)
        head = self.layout.head
        y_shape = (None, len(head.labels.classes)) if head.onehot_targets else (None,)
        y_type = tf.int64 if head.task != "regression" and head.output_units > 1 else tf.float32
        if head.onehot_targets:
            y_type = tf.float32
        rows = self.sizes()[next(k for k, v in PARTS.items() if v == part)]
        dataset = tf.data.Dataset.from_generator(
            lambda: self._batches(part, batch_size, shuffle),
            output_signature=(signature, tf.TensorSpec(y_shape, y_type)),
        )
        # the scan counted the rows: Keras then knows each epoch's steps
        batches = -(-rows // batch_size)
        return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(2)


def _block() -> str:
    from taskfit.model import NUMERIC_BLOCK

    return NUMERIC_BLOCK


def _tensors(x: dict[str, np.ndarray], layout: Layout) -> dict[str, Any]:
    import tensorflow as tf

    return {k: tf.constant(v.astype(str)) if k in layout.categorical else v for k, v in x.items()}


def _concat(a: Chunk, b: Chunk) -> Chunk:
    return Chunk(
        a.first,
        np.concatenate([a.numeric, b.numeric]),
        {c: np.concatenate([a.categorical[c], b.categorical[c]]) for c in a.categorical},
        np.concatenate([a.y, b.y]),
        np.concatenate([a.labelled, b.labelled]),
        np.concatenate([a.parts, b.parts]),
    )


def open_stream(checked: Any, enough: int | None = None) -> StreamSplits:
    """The checked spec's CSV as a stream: one scan (up to `enough` rows a part, for a --smoke
    run), then parts read on demand."""
    from taskfit.arrays import to_inputs
    from taskfit.columns import CATEGORICAL, NUMERIC

    plan, data, spec = checked.plan, checked.data, checked.loaded.spec
    if plan.multi or plan.head.labels.format == "onehot":
        raise DataError(
            "data.streaming: reads one label column for now; a spec with heads or one-hot label "
            "columns needs the data in memory (data.streaming: false)"
        )
    numeric = data.of_kind(NUMERIC)
    layout = Layout(
        data.streamed,
        data.table.columns,
        numeric,
        data.of_kind(CATEGORICAL),
        plan.head,
        spec.training.seed,
        spec.data.test_fraction,
        spec.data.validation_fraction,
    )
    first = to_inputs(data.table, numeric, (), list(range(data.table.n_rows)))
    sample = np.concatenate([first[c] for c in numeric], axis=1) if numeric else np.empty((0, 0))
    return StreamSplits(layout, scan(layout, plan, sample, spec.training.seed, enough))
