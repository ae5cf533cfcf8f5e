"""plan.json: the resolved plan of a run, written when the run starts and read by every command
after it, so that a later change to the recipe table cannot change what an old run was."""

from __future__ import annotations

import json
from pathlib import Path

from cattrs import BaseValidationError
from cattrs.preconf.json import make_converter

from taskfit.errors import DataError
from taskfit.plan.plan import Plan
from taskfit.runfolder.files import write_text

_converter = make_converter()


def write_plan(path: Path, plan: Plan) -> None:
    write_text(path, json.dumps(_converter.unstructure(plan), indent=2) + "\n")


def read_plan(path: Path) -> Plan:
    """The plan a run was trained with; a damaged file is an error naming it."""
    try:
        plan: Plan = _converter.structure(json.loads(path.read_text(encoding="utf-8")), Plan)
    except (OSError, ValueError, TypeError, KeyError, BaseValidationError) as exc:
        raise DataError(
            f"{path}: not a plan taskfit wrote ({type(exc).__name__}); train the run again"
        ) from None
    return plan
