"""`check`: the spec, the data and the table, all validated without TensorFlow."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.columns import CATEGORICAL, NUMERIC
from taskfit.data import DataView, inspect_data
from taskfit.plan import Plan, make_plan
from taskfit.schema import as_data
from taskfit.spec import LoadedSpec, load_spec


@dataclass(frozen=True)
class Checked:
    loaded: LoadedSpec
    data: DataView
    plan: Plan

    def resolved(self) -> dict[str, Any]:
        """The spec with every default, inferred column type and table choice filled in;
        loadable as a spec again (spec.resolved.yaml)."""
        plan, data = self.plan, self.data
        doc: dict[str, Any] = as_data(self.loaded.spec)
        doc["data"].update(
            source=data.source,
            features=list(data.features),
            numeric=list(data.of_kind(NUMERIC)),
            categorical=list(data.of_kind(CATEGORICAL)),
        )
        if plan.labels.format in ("binary", "integer"):
            doc["data"]["classes"] = list(plan.labels.classes)
        if plan.labels.format == "binary":
            doc["data"]["positive"] = plan.labels.classes[1]
        doc["model"]["layers"] = as_data(plan.layers)
        doc["model"]["output"] = {"units": plan.output_units, "activation": plan.output_activation}
        doc["loss"] = plan.loss.as_yaml()
        doc["optimizer"] = plan.optimizer.as_yaml()
        doc["schedule"] = plan.schedule.as_yaml() if plan.schedule else None
        doc["metrics"] = list(plan.metrics)
        return doc


SKEWED = 0.2  # a class under this share of the labels gets a note


def notes(checked: Checked) -> list[str]:
    """What the user should know about the data before trusting the result."""
    data, labels = checked.data, checked.plan.labels
    out = []
    if labels.missing_rows:
        out.append(f"{len(labels.missing_rows)} rows have no {labels.columns[0]} label: left out")
    if labels.format in ("binary", "integer") and checked.loaded.spec.training.class_weight is None:
        column = data.table.cells[labels.columns[0]]
        counts = Counter(column[i] for i in data.rows)
        rare = [c for c in labels.classes if counts[c] < SKEWED * len(data.rows)]
        if rare:
            shares = ", ".join(f"{c} {counts[c] / len(data.rows):.0%}" for c in rare)
            focal = "binary" if labels.format == "binary" else "categorical"
            out.append(
                f"skewed classes ({shares} of the labels): consider "
                f"training.class_weight: balanced, or loss: {focal}_focal_crossentropy"
            )
    return out


def check_spec(path: str | Path, overrides: list[str] | None = None) -> Checked:
    """Everything `train` validates before it loads TensorFlow; raises TaskfitError."""
    loaded = load_spec(path, overrides)
    data = inspect_data(loaded)
    return Checked(loaded, data, make_plan(loaded.spec, data.labels))
