"""The plain Keras a user would write by hand for one bundled dataset; bench_speed.py times it.

The model is the usual plain Keras one (binary 64-32-1 sigmoid, multiclass 128-64-10 softmax,
regression 64-32-1 linear) with taskfit's normalization: training-split mean and variance, a
constant column given variance 1, and for regression a fixed Rescaling to the label's units.
The split copies taskfit.feed.memory.split_table (bench_speed.py checks the two agree) rather than
importing it, so that this script loads nothing but numpy and Keras.

    python bench/handwritten.py breast_cancer diagnosis binary --output /tmp/out

Prints one JSON line last on stdout: wall (in-process) and fit seconds, train rows, epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = Path(__file__).resolve().parent.parent / "taskfit" / "data" / "datasets"
HIDDEN = {"binary": (64, 32), "multiclass": (128, 64), "regression": (64, 32)}


def load(dataset: str, label: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    path = DATASETS / f"{dataset}.csv"
    header = path.open().readline().strip().split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    column = header.index(label)
    x = np.delete(table, column, axis=1).astype(np.float32)
    y = table[:, column]
    return x, (y.astype(np.int64) if task == "multiclass" else y.astype(np.float32))


def split_rows(
    y: np.ndarray, seed: int, stratify: bool, test: float = 0.2, validation: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test row indices: taskfit.feed.memory.split_table's algorithm, line for
    line."""
    rng = np.random.default_rng(seed)
    groups = y.astype(np.int64) if stratify else np.zeros(len(y), dtype=np.int64)
    rest, test_rows = _cut(np.arange(len(y)), groups, test, rng)
    train_rows, validation_rows = _cut(rest, groups, validation, rng)
    return train_rows, validation_rows, test_rows


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


def build(keras: Any, task: str, x_train: np.ndarray, y_train: np.ndarray) -> Any:
    mean, variance = x_train.mean(axis=0), x_train.var(axis=0)
    variance = np.where(variance > 1e-12, variance, 1.0)
    layers = [
        keras.Input(shape=(x_train.shape[1],)),
        keras.layers.Normalization(mean=mean, variance=variance),
    ]
    layers += [keras.layers.Dense(units, activation="relu") for units in HIDDEN[task]]
    if task == "binary":
        layers.append(keras.layers.Dense(1, activation="sigmoid"))
    elif task == "multiclass":
        layers.append(keras.layers.Dense(int(y_train.max()) + 1, activation="softmax"))
    else:
        layers.append(keras.layers.Dense(1))
        std = float(y_train.std()) or 1.0
        layers.append(keras.layers.Rescaling(scale=std, offset=float(y_train.mean())))
    return keras.Sequential(layers)


def compile_args(task: str) -> dict[str, Any]:
    if task == "binary":
        return {"loss": "binary_crossentropy", "metrics": ["accuracy"]}
    if task == "multiclass":
        return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    return {"loss": "mse", "metrics": ["mae"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(args.seed)
    x, y = load(args.dataset, args.label, args.task)
    train, validation, test = split_rows(y, args.seed, stratify=args.task != "regression")
    model = build(keras, args.task, x[train], y[train])
    model.compile(optimizer="adam", **compile_args(args.task))
    fit_started = time.perf_counter()
    history = model.fit(
        x[train],
        y[train],
        validation_data=(x[validation], y[validation]),
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=0,  # taskfit --json into a pipe is silent too: neither side pays for progress
    )
    fit_seconds = time.perf_counter() - fit_started
    metrics = model.evaluate(x[test], y[test], verbose=0, return_dict=True)
    model.save(Path(args.output) / "model.keras")
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "fit_seconds": round(fit_seconds, 3),
        "train_rows": len(train),
        "epochs": len(history.history["loss"]),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("label")
    parser.add_argument("task", choices=sorted(HIDDEN))
    parser.add_argument("--output", required=True, help="folder for model.keras")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    result = run(parser.parse_args())
    print(json.dumps(result), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
