"""The numeric preprocessing rules (log1p of heavy tails, gaps filled and flagged) and the
training statistics they are fitted to. The rules are keras.ops calls: log_scale runs in the
saved model's graph and on each block the statistics are gathered from (taskfit.feed.scan), so
the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taskfit.feed.calendar import Calendar

# The numeric steps are keras.ops calls in the functional graph, not custom layers: Keras saves
# them as its own operations, so `keras.saving.load_model` needs nothing from taskfit.


def log_scale(x: Any, columns: list[int]) -> Any:
    """log1p on the given columns: heavy-tailed counts and amounts become roughly bell-shaped,
    which a standardised MLP input needs (boosting never did)."""
    import keras  # here, not above: reading a table's splits needs no TensorFlow

    mask = np.isin(np.arange(x.shape[-1]), columns)
    # a gap stays NaN for fill_missing: LiteRT's XNNPACK kernels compute log(NaN) as 88.7
    scaled = keras.ops.logical_and(mask, keras.ops.logical_not(keras.ops.isnan(x)))
    return keras.ops.where(scaled, keras.ops.log1p(keras.ops.maximum(x, 0.0)), x)


def fill_missing(x: Any, fill: np.ndarray, indicate: list[int]) -> Any:
    """NaN -> the column's training median, then one 0/1 "was missing" column per `indicate`
    index, so the network can learn from the gap itself."""
    import keras

    gaps = keras.ops.isnan(x)
    filled = keras.ops.where(gaps, fill.astype("float32"), x)
    if not indicate:
        return filled
    flags = keras.ops.cast(keras.ops.take(gaps, indicate, axis=1), "float32")
    return keras.ops.concatenate([filled, flags], axis=1)


def heavy_tailed(matrix: np.ndarray) -> list[int]:
    """Columns that are never negative, reach 100 or more, and are strongly right-skewed
    (skewness > 2) in training: counts and amounts that log1p should tame."""
    chosen = []
    for i in range(matrix.shape[1]):
        v = matrix[:, i][~np.isnan(matrix[:, i])].astype(np.float64)
        if len(v) < 3 or v.min() < 0 or v.max() < 100 or v.std() == 0:
            continue
        if np.mean((v - v.mean()) ** 3) / v.std() ** 3 > 2:
            chosen.append(i)
    return chosen


QUANTILE_LEVELS = np.linspace(0.0, 1.0, 257)  # a bin count's edges are read off this grid


def quantile_edges(quantiles: np.ndarray, bins: int) -> list[np.ndarray]:
    """Each column's bin edges for `bins` bins of equal training share, read off its quantiles
    (QUANTILE_LEVELS x columns): the distinct ones, so a column of few values gets fewer bins."""
    levels = np.linspace(0.0, 1.0, bins + 1)
    return [np.unique(np.interp(levels, QUANTILE_LEVELS, column)) for column in quantiles.T]


Scale = tuple[float, float]  # a regression target's (mean, std) on the training split


@dataclass(frozen=True)
class FeatureStats:
    """What the preprocessing stage and the regression outputs are fitted to, from the training
    rows only, gathered by taskfit.feed.scan in one pass over any source."""

    skewed: tuple[int, ...]  # numeric columns (by position) that go through log1p first
    fill: np.ndarray  # each numeric column's median, after log1p
    indicate: tuple[int, ...]  # numeric columns that get a 0/1 "was missing" column
    mean: np.ndarray  # Normalization: the filled columns, then the indicator columns
    variance: np.ndarray
    vocabularies: dict[str, list[str]]  # categorical column -> its training values, sorted
    # regression head -> its training labels' (mean, std), on the scale it learns them
    targets: dict[str, Scale]
    # date column -> its calendar (its vocabulary is the calendar's, in `vocabularies`)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    # text column -> its TextVectorization, adapted on the training cells (taskfit.feed.text)
    texts: dict[str, Any] = field(default_factory=dict)
    # each filled numeric column's quantiles at QUANTILE_LEVELS (rows x columns), from the
    # training sample: the piecewise-linear embedding's bin edges
    quantiles: np.ndarray | None = None
