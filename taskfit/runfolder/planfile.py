"""plan.json: the resolved plan of a run, written when the run starts and read by every command
after it, so that a later change to the recipe table cannot change what an old run was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cattrs import BaseValidationError
from cattrs.preconf.json import make_converter

from taskfit.errors import DataError
from taskfit.plan.plan import Plan
from taskfit.plan.verify import plan_problem
from taskfit.recipe.table import load_table
from taskfit.runfolder.files import read_object, write_text

_converter = make_converter()
PLAN_SINCE = 3  # the run folder format that first wrote plan.json (runfolder.layout)
# the settings in recipes/small_tables.yaml (and the code) from their start until plan.json
# named them (format 7): what a format 3-6 plan's `periodic: true` and `clipping: true` mean
FLAGGED = {  # the flag -> the field that names the choice, and the choice `true` meant
    "periodic": ("embedding", "periodic", {"frequencies": 16, "sigma": 0.1, "units": 16}),
    "clipping": ("clipping", "smooth", {"bound": 3.0}),
}


def write_plan(path: Path, plan: Plan) -> None:
    write_text(path, json.dumps(_converter.unstructure(plan), indent=2) + "\n")


def read_plan(path: Path) -> Plan:
    """The plan a run was trained with; a missing or damaged file is an error naming it."""
    doc = read_object(path)
    _flags_named(doc)
    try:
        plan: Plan = _converter.structure(doc, Plan)
    except (ValueError, TypeError, KeyError, BaseValidationError):
        raise DataError(
            f"{path}: holds no plan taskfit wrote (a field missing or of the wrong kind); it is "
            "damaged or not what taskfit wrote; train the run again"
        ) from None
    wrong = plan_problem(plan, load_table())
    if wrong:
        raise DataError(
            f"{path}: {wrong}; taskfit never writes that, so the file is damaged or was edited; "
            "train the run again"
        )
    return plan


def _flags_named(doc: dict[str, Any]) -> None:
    """A format 3-6 plan's flags, as the choices a format 7 plan names."""
    for flag, (field, name, params) in FLAGGED.items():
        value = doc.get(flag)
        if isinstance(value, bool):
            del doc[flag]
            if value:
                doc[field] = {"name": name, "keras_class": name, "params": params}
