"""`check`: the spec, the data and the table, all validated without TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskfit.data import DataView, inspect_data
from taskfit.plan import Plan, make_plan
from taskfit.spec import LoadedSpec, load_spec


@dataclass(frozen=True)
class Checked:
    loaded: LoadedSpec
    data: DataView
    plan: Plan


def check_spec(path: str | Path, overrides: list[str] | None = None) -> Checked:
    """Everything `train` validates before it loads TensorFlow; raises TaskfitError."""
    loaded = load_spec(path, overrides)
    data = inspect_data(loaded)
    return Checked(loaded, data, make_plan(loaded.spec, data.labels))
