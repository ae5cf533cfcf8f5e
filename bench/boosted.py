"""CatBoost or LightGBM with its defaults on one CSV, as a user would run it; bench_speed.py times
it as a whole process.

The CSV is read and split as bench/handwritten.py does (taskfit's split: test 0.2, then
validation 0.2 of the rest, stratified for classes). Boosting with its defaults needs no
early-stopping split, so the model fits on train + validation and scores the test rows, then is
saved. CatBoost gets its categorical columns as `cat_features` (a gap as the text "missing");
LightGBM gets them as pandas `category` columns with the fitting rows' categories. Nothing else is
set but the logging: CatBoost's verbose off (its training files go to the output folder), LightGBM's
verbosity -1; thread counts are the libraries' own.

    python bench/boosted.py --model catboost ames.csv Sale_Price regression --output /tmp/out

Prints one JSON line last on stdout: wall (in-process) and fit seconds, rows, the test score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from handwritten import Table, read_table, score, split_rows


def catboost_model(task: str, categorical: list[str], output: Path) -> tuple[Any, str]:
    import catboost

    kind = catboost.CatBoostRegressor if task == "regression" else catboost.CatBoostClassifier
    model = kind(cat_features=categorical, verbose=False, train_dir=str(output / "catboost"))
    return model, catboost.__version__


def lightgbm_model(task: str) -> tuple[Any, str]:
    import lightgbm

    kind = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
    return kind(verbosity=-1), lightgbm.__version__


def features(model: str, table: Table, fit_rows: np.ndarray, rows: np.ndarray) -> Any:
    """The rows' features in the form the library takes its categories in."""
    import pandas as pd

    x = table.x.iloc[rows].copy()
    for c in table.categorical:
        if model == "catboost":
            x[c] = x[c].fillna("missing")
        else:
            known = sorted(table.x[c].iloc[fit_rows].dropna().unique())
            x[c] = pd.Categorical(x[c], categories=known)
    return x


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    table = read_table(Path(args.csv), args.label, args.task, args.positive, args.ignore)
    train, validation, test = split_rows(table.y, args.seed, stratify=args.task != "regression")
    fit_rows = np.concatenate([train, validation])
    if args.model == "catboost":
        model, version = catboost_model(args.task, list(table.categorical), output)
    else:
        model, version = lightgbm_model(args.task)
    x_fit = features(args.model, table, fit_rows, fit_rows)
    x_test = features(args.model, table, fit_rows, test)
    fit_started = time.perf_counter()
    model.fit(x_fit, table.y[fit_rows])
    fit_seconds = time.perf_counter() - fit_started
    predicted = np.asarray(model.predict(x_test)).reshape(-1)
    if args.model == "catboost":
        model.save_model(str(output / "model.cbm"))
        trees = int(model.tree_count_)
    else:
        model.booster_.save_model(str(output / "model.txt"))
        trees = int(model.booster_.num_trees())
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "fit_seconds": round(fit_seconds, 3),
        "fit_rows": len(fit_rows),
        "trees": trees,
        "metric": "RMSE" if args.task == "regression" else "accuracy",
        "score": score(args.task, table.y[test], predicted),
        "model": args.model,
        "version": version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["catboost", "lightgbm"], required=True)
    parser.add_argument("csv")
    parser.add_argument("label")
    parser.add_argument("task", choices=["binary", "multiclass", "regression"])
    parser.add_argument("--output", required=True, help="folder for the saved model")
    parser.add_argument("--positive", help="binary: the positive class's label value")
    parser.add_argument("--ignore", nargs="*", default=[], help="columns to leave out")
    parser.add_argument("--seed", type=int, default=0, help="the split's")
    result = run(parser.parse_args())
    print(json.dumps(result), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
