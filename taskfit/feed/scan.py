"""One pass over a source: what the model is fitted to, from the training rows only (exact means
and variances merged block by block, medians from a uniform sample of RESERVOIR rows,
vocabularies, date calendars, each classification head's class counts, each regression head's
target scale), and how many rows each part holds. Data in memory is one block; a streamed file,
many."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from taskfit.data.targets import DOMAIN, in_domain
from taskfit.errors import DataError
from taskfit.feed.calendar import fit_calendar
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import PARTS, TEST, TRAIN, VALIDATION, Chunk, Span
from taskfit.feed.classes import class_ids
from taskfit.feed.source import Source
from taskfit.feed.stats import QUANTILE_LEVELS, FeatureStats, heavy_tailed, log_scale
from taskfit.feed.text import fit_text

RESERVOIR = 100_000  # training rows kept (a uniform sample) for the numeric medians
FIRST_ROWS = 8  # training rows kept to build the model before fit


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged block by block (Chan et al.)."""

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


class Accumulator:
    """FeatureStats, gathered block by block."""

    def __init__(self, columns: Columns, sample: np.ndarray, seed: int):
        self.columns = columns
        width = len(columns.numeric)
        self.skewed = heavy_tailed(sample) if width and len(sample) else []
        self.moments = Moments.empty(width)
        self.gaps = np.zeros(width)  # training gaps per numeric column
        self.anywhere = np.zeros(width, dtype=bool)  # a gap in any row: the column's indicator
        self.keys = np.empty(0)
        self.reservoir = np.empty((0, width), dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.vocab: dict[str, Counter[str]] = {c: Counter() for c in columns.categorical}
        self.targets = {h.name: Moments.empty(1) for h in columns.heads if h.task == "regression"}
        self.scales = {h.name: (h.target_transform, h.labels.columns[0]) for h in columns.heads}
        self.counts = {
            h.name: np.zeros(max(h.output_units, 2), dtype=np.int64)
            for h in columns.heads
            if h.task != "regression"
        }
        self.rows = 0

    def seen(self, rows: Chunk) -> None:
        """Any rows, of any part (a gap anywhere gives its column an indicator)."""
        self.anywhere |= np.isnan(rows.numeric).any(axis=0)

    def add(self, train: Chunk) -> None:
        """Training rows."""
        self.rows += len(train)
        values = train.numeric
        if self.skewed:  # the saved model's own rule, run on the block
            values = np.asarray(log_scale(values, self.skewed))
        self.moments.add(values)
        self.gaps += np.isnan(values).sum(axis=0)
        self.keys, self.reservoir = _bottom_k(
            self.keys, self.reservoir, self.rng.random(len(values)), values
        )
        for column, cells in train.categorical.items():
            self.vocab[column].update(cells.ravel().tolist())
        for name, moments in self.targets.items():
            moments.add(learned_scale(train.y[name], *self.scales[name]).reshape(-1, 1))
        for name, counts in self.counts.items():
            counts += np.bincount(class_ids(train.y[name]), minlength=len(counts))

    def result(self) -> FeatureStats:
        fill = np.array(
            [np.nanmedian(c) if (~np.isnan(c)).any() else 0.0 for c in self.reservoir.T],
            dtype=np.float32,
        )
        sample = np.where(np.isnan(self.reservoir), fill, self.reservoir)
        quantiles = np.quantile(sample, QUANTILE_LEVELS, axis=0) if len(sample) else None
        filled = self.moments.with_constant(fill.astype(np.float64), self.gaps)
        indicate = tuple(int(i) for i in np.flatnonzero(self.anywhere))
        share = self.gaps[list(indicate)] / max(self.rows, 1)  # an indicator's mean: the gaps
        mean = np.concatenate([filled.mean, share]).astype(np.float32)
        variance = np.concatenate([filled.variance, share * (1 - share)])
        # a column constant in training gets variance 1: Keras would divide by ~1e-7 and turn
        # any other value at test time into ~1e7
        variance = np.where(variance > 1e-12, variance, 1.0).astype(np.float32)
        targets = {
            name: (float(m.mean[0]), float(np.sqrt(m.variance[0])) or 1.0)
            for name, m in self.targets.items()
        }
        dates, texts = self.columns.dates, self.columns.texts
        calendars = {c: fit_calendar(form, self.vocab[c]) for c, form in dates.items()}
        encoders = {c: fit_text(c, self.vocab[c]) for c in texts}
        lookups = [c for c in self.vocab if c not in dates and c not in texts]
        vocabularies = {c: sorted(self.vocab[c]) for c in lookups}
        vocabularies |= {c: calendar.vocabulary for c, calendar in calendars.items()}
        return FeatureStats(
            tuple(self.skewed),
            fill,
            indicate,
            mean,
            variance,
            vocabularies,
            targets,
            calendars,
            encoders,
            quantiles,
        )


@dataclass(frozen=True)
class Scan:
    """One pass over the source: what the model is fitted to, and how big each part is."""

    stats: FeatureStats
    sizes: dict[str, int]  # labelled rows per part
    without_label: int
    class_counts: dict[str, np.ndarray]  # classification head -> training rows per class
    first: Chunk  # a few training rows, to build the model before fit
    # a streamed file's blocks, each with its labelled rows per part (train, validation,
    # test), so that a process of several reads only its own (None: in memory, or some rows
    # have no span)
    spans: tuple[Span, ...] | None = None
    span_rows: np.ndarray | None = None


def scan(
    source: Source, columns: Columns, seed: int, *, validation: bool, enough: int | None = None
) -> Scan:
    """`validation`: the split has a validation part. `enough` (a --smoke run): stop reading
    once every part has that many rows."""
    wanted = [TRAIN, TEST] + ([VALIDATION] if validation else [])
    gathered = Accumulator(columns, source.sample(), seed)
    sizes = Counter[int]()
    without_label = 0
    first: Chunk | None = None
    spans: list[Span | None] = []
    span_rows: list[np.ndarray] = []
    for block in source.blocks():
        gathered.seen(block.rows)
        without_label += int((~block.labelled).sum())
        parts = block.parts[block.labelled]
        sizes.update(parts.tolist())
        spans.append(block.span)
        span_rows.append(np.bincount(parts, minlength=3))
        if enough is not None and first is not None and all(sizes[p] >= enough for p in wanted):
            break
        train = block.part(TRAIN)
        if not len(train):
            continue
        first = first or train.head(FIRST_ROWS)
        gathered.add(train)
    if first is None:
        raise DataError(f"{source.name}: no labelled rows fall in the training part")
    part_sizes = {name: sizes[code] for name, code in PARTS.items()}
    found = Scan(gathered.result(), part_sizes, without_label, dict(gathered.counts), first)
    known = tuple(span for span in spans if span is not None)
    if source.in_memory or len(known) < len(spans):
        return found
    return replace(found, spans=known, span_rows=np.array(span_rows))


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


def learned_scale(labels: np.ndarray, transform: str, label: str) -> np.ndarray:
    """A regression head's labels on the scale it learns them (taskfit.data.targets). A streamed
    file's transform is chosen on its first rows; a later label outside its domain stops the
    scan here, before any NaN reaches the target's statistics."""
    values = labels.astype(np.float64)
    if transform == "none":
        return values
    if len(values) and not in_domain(transform, float(values.min())):
        raise DataError(
            f"column {label}: goes down to {values.min():g} in the training rows, but "
            f"{transform} (its target_transform) needs {DOMAIN[transform]}. Set "
            "target_transform: none (or log1p for labels of 0 and above)"
        )
    return getattr(np, transform)(values)


def feature_stats(
    columns: Columns, train: Chunk, gaps: frozenset[str] = frozenset()
) -> FeatureStats:
    """One chunk's statistics, for a model built on arrays (`gaps`: the numeric columns with a
    gap anywhere in the data)."""
    gathered = Accumulator(columns, train.numeric, seed=0)
    gathered.anywhere = np.isin(np.array(columns.numeric, dtype=object), list(gaps))
    gathered.add(train)
    return gathered.result()
