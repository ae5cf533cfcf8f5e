"""`taskfit compare RUN_DIR ...`: several runs side by side, their key settings and test metrics,
the best value of each metric marked. No TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskfit.errors import DataError
from taskfit.plan.plan import additions_text
from taskfit.recipe.table import higher_is_better
from taskfit.runfolder.files import (
    check_format,
    checked_status,
    count_epochs,
    read_facts,
    read_metrics,
)
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import load_resolved, not_a_tune_folder


@dataclass(frozen=True)
class Compared:
    runs: list[dict[str, Any]]  # one per run: folder, settings, metrics
    metrics: list[str]  # every metric any run has, in first-seen order
    best: dict[str, str]  # metric -> the folder with the best value
    # every other spec key whose value is not the same in all runs -> each run's, readable
    differs: dict[str, list[str]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"runs": self.runs, "best": self.best, "differs": self.differs}


# spec keys the settings above already show, in their own words
SHOWN: tuple[str, ...] = (
    *("task", "heads", "data.source", "model.layers", "model.members", "loss", "optimizer"),
    *("schedule", "training.batch_size", "training.seed", "model.numeric_embedding"),
    *("model.ensemble", "model.numeric_clipping", "training.refit", "training.bagging"),
    "data.target_transform",
)


def spec_items(doc: Any, prefix: str = "") -> dict[str, Any]:
    """A resolved spec as dotted keys -> values (a list is one value)."""
    if not isinstance(doc, dict):
        return {prefix: doc}
    found: dict[str, Any] = {}
    for key, value in doc.items():
        found |= spec_items(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def readable(value: Any) -> str:
    """A spec value as a person writes it: huber(delta=2.0), a, b, none."""
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(readable(v) for v in value) or "(none)"
    if isinstance(value, dict):
        rest = ", ".join(f"{k}={readable(v)}" for k, v in value.items() if k != "name")
        return f"{value['name']}({rest})" if "name" in value else rest
    return str(value).lower() if isinstance(value, bool) else str(value)


def name_of(choice: Any) -> Any:
    """A table choice's name, as a resolved spec writes it: `adam` or {name: adam, ...}."""
    return choice.get("name") if isinstance(choice, dict) else choice


def settings(spec: dict[str, Any]) -> dict[str, Any]:
    """The choices that tell runs apart, from a resolved spec."""
    heads = spec.get("heads")
    optimizer = spec.get("optimizer")
    name = name_of(optimizer)
    rate = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
    model, training = spec.get("model", {}), spec.get("training", {})
    layers = model.get("layers") or []
    added = additions_text(
        model.get("members") or 1,
        name_of(model.get("numeric_embedding")) or "none",
        bool(training.get("refit")),
        model.get("ensemble") or "packed",
        bagging=bool(training.get("bagging")),
        clipping=name_of(model.get("numeric_clipping")) == "smooth",
    )
    data = spec.get("data", {})
    if heads:
        scales = [
            f"{n}: {h['target_transform']}" for n, h in heads.items() if "target_transform" in h
        ]
        target = ", ".join(scales) or "none"
    else:
        target = data.get("target_transform") or "none"
    return {
        "task": "heads: " + ", ".join(heads) if heads else spec.get("task"),
        "data": Path(str(spec.get("data", {}).get("source", ""))).name,
        "layers": "-".join(str(layer.get("units")) for layer in layers) or "(none)",
        "additions": ", ".join(added) or "none",
        "loss": "per head" if heads else readable(spec.get("loss")),
        "target": target,  # the scale regression labels were learned on
        "optimizer": f"{name} {rate}" if rate is not None else str(name),
        "schedule": name_of(spec.get("schedule")),
        "batch_size": training.get("batch_size"),
        "seed": training.get("seed"),
    }


def read_run(folder: Path) -> dict[str, Any]:
    files = RunFolder(folder)
    spec_path, metrics_path = files.spec, files.metrics
    not_a_tune_folder(folder)
    if not spec_path.is_file() or not metrics_path.is_file():
        raise DataError(
            f"{folder}: not a finished run folder (it needs spec.resolved.yaml and "
            "metrics.json); give folders that `taskfit train` wrote"
        )
    check_format(folder)
    spec = load_resolved(spec_path).raw  # checked: a damaged one is named, not a crash
    return {
        "run_dir": str(folder),
        "spec": spec,
        "status": checked_status(folder) or "unknown",
        "epochs": count_epochs(folder) or 0,
        **settings(spec),
        # run.json's; runs from before bagging were all on their test split
        "metrics_on": read_facts(folder).get("metrics_on") or "test",
        "metrics": read_metrics(metrics_path),
    }


def compare_runs(folders: list[Path]) -> Compared:
    runs = [read_run(folder) for folder in folders]
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in run["metrics"] if m not in metrics and not m.endswith("_weight")]
    best = {}
    for metric in metrics:
        having = [r for r in runs if metric in r["metrics"]]
        if len(having) < 2:
            continue
        if metric.endswith("loss") and len({r["target"] for r in having}) > 1:
            continue  # a loss on the log scale and one in the label's units do not compare
        if len({r["metrics_on"] for r in having}) > 1:
            continue  # a test split's figure and out-of-fold ones are on other rows
        pick = max if higher_is_better(metric) else min
        best[metric] = pick(having, key=lambda r: r["metrics"][metric])["run_dir"]
    items = [spec_items(run.pop("spec")) for run in runs]
    keys = list(dict.fromkeys(k for found in items for k in found))
    differs = {
        key: [readable(found.get(key)) for found in items]
        for key in keys
        if not key.startswith(SHOWN) and len({readable(found.get(key)) for found in items}) > 1
    }
    return Compared(runs, metrics, best, differs)
