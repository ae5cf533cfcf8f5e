"""The Keras a user would write by hand; bench_speed.py times it as a whole process.

Two modes. With a bundled dataset's name, the same network as taskfit's on the same split with
fixed epochs, for the fit-throughput comparison: the usual plain Keras model (binary 64-32-1
sigmoid, multiclass 128-64-10 softmax, regression 64-32-1 linear) with taskfit's normalization
(training-split mean and variance, a constant column given variance 1, and for regression a fixed
Rescaling to the label's units).

With --csv, what a careful user writes for a CSV of their own: pandas reads it, scikit-learn's
median imputer (with gap indicators) and StandardScaler for the numbers and OneHotEncoder
(handle_unknown="ignore") for the rest in a ColumnTransformer, one Dense 64-32 relu network with
the task's output layer, Adam, batch 32, at most 100 epochs with EarlyStopping(patience=10,
restore_best_weights=True) on the validation split; then it predicts the test rows and saves the
model and its preprocessing. A regression target is standardised for the fit (a raw target in the
hundreds of thousands would not converge in 100 epochs, and the side would be timed for a
network that never stops early).

Both modes split as taskfit.feed.memory.split_table does (test 0.2, then validation 0.2 of the
rest, stratified for classes; bench_speed.py checks that the two agree), with a copy rather than
an import, so that this script loads nothing of taskfit's.

    python bench/handwritten.py breast_cancer diagnosis binary --output /tmp/out
    python bench/handwritten.py --csv ames.csv Sale_Price regression --output /tmp/out

Prints one JSON line last on stdout: wall (in-process) and fit seconds, train rows, epochs, and in
--csv mode the test score (accuracy or RMSE).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    """Bundled mode: taskfit's network, fixed epochs, no early stopping."""
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(args.seed)
    x, y = load(args.source, args.label, args.task)
    train, validation, test = split_rows(y, args.seed, stratify=args.task != "regression")
    model = build(keras, args.task, x[train], y[train])
    model.compile(optimizer="adam", **compile_args(args.task))
    fit_started = time.perf_counter()
    history = model.fit(
        x[train],
        y[train],
        validation_data=(x[validation], y[validation]),
        epochs=args.epochs or 20,
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


@dataclass
class Table:
    """A CSV read as a user would: the feature frame with its numeric and other columns, and the
    targets (0/1 for binary with 1 the positive class, class ids in sorted order for multiclass,
    the values for regression), in the CSV's order of labelled rows."""

    x: Any  # pandas.DataFrame
    y: np.ndarray
    numeric: list[str]
    categorical: list[str]
    classes: list[str]


def read_table(
    csv: Path, label: str, task: str, positive: str | None = None, ignore: Sequence[str] = ()
) -> Table:
    """pandas' reading of the CSV; rows without a label are dropped, as taskfit drops them."""
    import pandas as pd

    frame = pd.read_csv(csv)
    frame = frame[frame[label].notna()].reset_index(drop=True)
    x = frame.drop(columns=[label, *ignore])
    numeric = list(x.select_dtypes(include="number").columns)
    categorical = [c for c in x.columns if c not in numeric]
    for c in categorical:  # text, booleans, mixed: all as text, NaN for a gap
        x[c] = x[c].astype(str).where(x[c].notna()).astype(object)
    if task == "regression":
        return Table(x, frame[label].to_numpy(np.float64), numeric, categorical, [])
    values = frame[label].astype(str)
    classes = sorted(values.unique(), key=_label_order)
    if task == "binary":
        if len(classes) != 2:
            raise SystemExit(f"{label}: {len(classes)} values, a binary label has two")
        chosen = classes[1] if positive is None else positive  # taskfit's default: the second
        if chosen not in classes:
            raise SystemExit(f"{label}: positive class {chosen!r} is not one of {classes}")
        classes = [c for c in classes if c != chosen] + [chosen]
    codes = values.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    return Table(x, codes, numeric, categorical, classes)


def _label_order(value: str) -> tuple[int, float, str]:
    """taskfit's order of label values: numbers by value first, then text ignoring case."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value.lower())


def score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy from class ids, RMSE from values."""
    if task == "regression":
        return float(np.sqrt(np.mean((predicted.astype(np.float64) - y) ** 2)))
    return float(np.mean(predicted == y))


def preprocessor(numeric: list[str], categorical: list[str]) -> Any:
    """Median-impute (with gap indicators) and standardise numbers; one-hot the rest, a gap as a
    category of its own and an unseen category as all zeros."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", categories, categorical)],
        sparse_threshold=0.0,
    )


def mlp(keras: Any, task: str, width: int, classes: int) -> Any:
    """Dense 64-32 relu and the task's output layer and loss."""
    stack = [
        keras.Input(shape=(width,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
    ]
    if task == "binary":
        stack.append(keras.layers.Dense(1, activation="sigmoid"))
        loss = "binary_crossentropy"
    elif task == "multiclass":
        stack.append(keras.layers.Dense(classes, activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    else:
        stack.append(keras.layers.Dense(1))
        loss = "mse"
    model = keras.Sequential(stack)
    model.compile(optimizer="adam", loss=loss)
    return model


def run_csv(args: argparse.Namespace) -> dict[str, Any]:
    """--csv mode: the careful user's script, from reading the CSV to the saved model."""
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    table = read_table(Path(args.source), args.label, args.task, args.positive, args.ignore)
    train, validation, test = split_rows(table.y, args.seed, stratify=args.task != "regression")
    prep = preprocessor(table.numeric, table.categorical)
    x_train = prep.fit_transform(table.x.iloc[train]).astype(np.float32)
    x_validation = prep.transform(table.x.iloc[validation]).astype(np.float32)
    x_test = prep.transform(table.x.iloc[test]).astype(np.float32)
    y = table.y.astype(np.float32 if args.task != "multiclass" else np.int64)
    center, scale = 0.0, 1.0
    if args.task == "regression":
        center, scale = float(y[train].mean()), float(y[train].std()) or 1.0
        y = (y - center) / scale
    keras.utils.set_random_seed(args.seed)
    model = mlp(keras, args.task, x_train.shape[1], len(table.classes))
    stopper = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
    fit_started = time.perf_counter()
    history = model.fit(
        x_train,
        y[train],
        validation_data=(x_validation, y[validation]),
        epochs=args.epochs or 100,
        batch_size=args.batch_size,
        callbacks=[stopper],
        verbose=0,
    )
    fit_seconds = time.perf_counter() - fit_started
    output = model.predict(x_test, verbose=0)
    if args.task == "binary":
        predicted = (output.reshape(-1) > 0.5).astype(np.int64)
    elif args.task == "multiclass":
        predicted = output.argmax(axis=1)
    else:
        predicted = output.reshape(-1) * scale + center
    folder = Path(args.output)
    model.save(folder / "model.keras")
    with (folder / "preprocessing.pkl").open("wb") as file:
        pickle.dump({"columns": prep, "center": center, "scale": scale}, file)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "fit_seconds": round(fit_seconds, 3),
        "train_rows": len(train),
        "epochs": len(history.history["loss"]),
        "features": int(x_train.shape[1]),
        "metric": "RMSE" if args.task == "regression" else "accuracy",
        "score": score(args.task, table.y[test], predicted),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a bundled dataset's name, or with --csv a CSV file")
    parser.add_argument("label")
    parser.add_argument("task", choices=sorted(HIDDEN))
    parser.add_argument("--csv", action="store_true", help="source is a CSV: the user's script")
    parser.add_argument("--output", required=True, help="folder for the saved model")
    parser.add_argument("--epochs", type=int, help="default: 20; with --csv at most 100")
    parser.add_argument("--patience", type=int, default=10, help="--csv: early stopping")
    parser.add_argument("--positive", help="--csv, binary: the positive class's label value")
    parser.add_argument("--ignore", nargs="*", default=[], help="--csv: columns to leave out")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    Path(args.output).mkdir(parents=True, exist_ok=True)
    result = run_csv(args) if args.csv else run(args)
    print(json.dumps(result), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
