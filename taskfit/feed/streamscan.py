"""data.streaming's one pass: what the model is fitted to, from the training rows only (exact
means and variances merged chunk by chunk, medians from a uniform sample of RESERVOIR rows,
vocabularies, class counts or the target's scale), and how many rows each part holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from taskfit.errors import DataError
from taskfit.feed import stream
from taskfit.feed.stream import PARTS, TEST, TRAIN, VALIDATION, Chunk, Layout, Span
from taskfit.plan.plan import Plan

RESERVOIR = 100_000  # training rows kept (a uniform sample) for the numeric medians


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

    stats: Any  # taskfit.model.build.FeatureStats
    sizes: dict[str, int]  # labelled rows per part
    without_label: int
    class_counts: np.ndarray | None
    first: Chunk  # a few training rows, to build the model before fit
    # the file's blocks, each with its labelled rows per part (train, validation, test), so
    # that a process of several reads only its own (None: some rows have no span)
    spans: tuple[Span, ...] | None = None
    span_rows: np.ndarray | None = None


def scan(
    layout: Layout, plan: Plan, sample: np.ndarray, seed: int, enough: int | None = None
) -> Scan:
    """`sample`: the first rows' numeric matrix, which decides the heavy-tailed columns (as the
    check's sample decided the column types). `enough` (a --smoke run): stop reading once every
    part has that many rows."""
    wanted = [TRAIN, TEST] + ([VALIDATION] if layout.validation_fraction > 0 else [])
    from taskfit.feed.stats import FeatureStats, heavy_tailed

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
    spans: list[Span | None] = []
    span_rows: list[np.ndarray] = []
    for chunk in stream.chunks(layout):
        anywhere |= np.isnan(chunk.numeric).any(axis=0)
        without_label += int((~chunk.labelled).sum())
        chunk = chunk.take(chunk.labelled)
        sizes.update(chunk.parts.tolist())
        spans.append(chunk.span)
        span_rows.append(np.bincount(chunk.parts, minlength=3))
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
    known = [span for span in spans if span is not None]
    if len(known) < len(spans):
        return Scan(stats, part_sizes, without_label, class_counts, first)
    return Scan(
        stats, part_sizes, without_label, class_counts, first, tuple(known), np.array(span_rows)
    )


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
