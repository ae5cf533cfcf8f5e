"""The data view -> numpy arrays and a deterministic, seeded train/validation/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskfit.data import DataView
from taskfit.plan import Plan
from taskfit.spec import DataSpec


@dataclass(frozen=True)
class Part:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def head(self, n: int) -> Part:
        return Part(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Splits:
    train: Part
    validation: Part | None
    test: Part


def to_arrays(view: DataView, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 columns; labels as the loss expects them."""
    x = np.array([view.table.cells[c] for c in view.features], dtype=np.float64).T.astype(
        np.float32
    )
    labels = plan.labels
    if labels.format == "real":
        y = np.asarray(view.table.cells[labels.columns[0]], dtype=np.float64).astype(np.float32)
        return x, y
    if labels.format == "onehot":
        cells = [view.table.cells[c] for c in labels.columns]
        return x, np.array(cells, dtype=np.float64).T.astype(np.float32)
    index = {name: i for i, name in enumerate(labels.classes)}
    ids = np.array([index[c] for c in view.table.cells[labels.columns[0]]], dtype=np.int64)
    if plan.onehot_targets:
        return x, np.eye(len(labels.classes), dtype=np.float32)[ids]
    if plan.output_units == 1:  # one sigmoid unit: a float 0/1 target
        return x, ids.astype(np.float32)
    return x, ids


def class_ids(y: np.ndarray) -> np.ndarray:
    return y.argmax(axis=1) if y.ndim == 2 else y


def split(x: np.ndarray, y: np.ndarray, data: DataSpec, seed: int, stratify: bool) -> Splits:
    """Test first, then validation from the rest; each class keeps its share when stratified."""
    rng = np.random.default_rng(seed)
    groups = class_ids(y) if stratify else np.zeros(len(y), dtype=np.int64)
    rest, test = _cut(np.arange(len(y)), groups, data.test_fraction, rng)
    validation = None
    if data.validation_fraction > 0:
        rest, val = _cut(rest, groups, data.validation_fraction, rng)
        validation = Part(x[val], y[val])
    return Splits(Part(x[rest], y[rest]), validation, Part(x[test], y[test]))


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
