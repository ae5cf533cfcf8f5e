"""plan.json: the resolved plan of a run, written when the run starts and read by every command
after it, so that a later change to the recipe table cannot change what an old run was."""

from __future__ import annotations

import json
from pathlib import Path

from cattrs import BaseValidationError
from cattrs.preconf.json import make_converter

from taskfit.errors import DataError
from taskfit.plan.plan import Plan
from taskfit.recipe.table import load_table
from taskfit.runfolder.files import read_object, write_text

_converter = make_converter()
PLAN_SINCE = 3  # the run folder format that first wrote plan.json (runfolder.layout)


def write_plan(path: Path, plan: Plan) -> None:
    write_text(path, json.dumps(_converter.unstructure(plan), indent=2) + "\n")


def read_plan(path: Path) -> Plan:
    """The plan a run was trained with; a missing or damaged file is an error naming it."""
    doc = read_object(path)
    try:
        plan: Plan = _converter.structure(doc, Plan)
    except (ValueError, TypeError, KeyError, BaseValidationError):
        raise DataError(
            f"{path}: holds no plan taskfit wrote (a field missing or of the wrong kind); it is "
            "damaged or not what taskfit wrote; train the run again"
        ) from None
    wrong = _disagreement(plan)
    if wrong:
        raise DataError(
            f"{path}: {wrong}, which taskfit never writes; it is damaged or not what taskfit "
            "wrote; train the run again"
        )
    return plan


def _disagreement(plan: Plan) -> str:
    """What in a plan contradicts itself (a binary head with three classes), or ""."""
    names = [h.name for h in plan.heads]
    if not names or len(set(names)) < len(names):
        return "names no heads" if not names else "names a head twice"
    if plan.members < 1 or plan.batch_size < 1:
        return f"gives {plan.members} members and batch size {plan.batch_size}"
    for head in plan.heads:
        classes = head.labels.classes
        if head.task not in load_table().recipes:
            return f"gives the head {head.name} the task {head.task!r}"
        n = len(set(classes))
        fits = {"binary": n == 2, "multiclass": n >= 2, "regression": n == 0}[head.task]
        if not fits or n < len(classes):
            return f"gives the {head.task} head {head.name} the classes {list(classes)}"
        units = {"binary": (1, 2), "regression": (1,)}.get(head.task, (len(classes),))
        if head.output_units not in units:
            return f"gives the {head.task} head {head.name} {head.output_units} output units"
    return ""
