"""`recommend --data`: the task a label column calls for, and why (standard library only)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from taskfit.config.params import suggest
from taskfit.data.csvtable import Table
from taskfit.data.labels import is_missing, number
from taskfit.errors import DataError

MAX_INTEGER_CLASSES = 20  # more distinct integers than this read as a quantity, not classes
MAX_STRING_CLASSES = 100  # more distinct strings than this look like names or ids


def infer_task(table: Table, label: str) -> tuple[str, str]:
    """(task, the reason in words) for a label column."""
    if label not in table.columns:
        raise DataError(
            f"--label: no column {label!r} in {Path(table.path).name}."
            f"{suggest(label, table.columns)} Columns: {', '.join(table.columns)}"
        )
    values = [c for c in table.cells[label] if not is_missing(c)]
    distinct = sorted(set(values))
    shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
    if len(distinct) < 2:
        raise DataError(f"column {label}: has {len(distinct)} distinct value(s); nothing to learn")
    if len(distinct) == 2:
        return "binary", f"2 distinct values: {shown} -> binary"
    numbers = [number(v) for v in distinct]
    if all(n is not None for n in numbers):
        integers = all(n is not None and n.is_integer() for n in numbers)
        if integers and len(distinct) <= MAX_INTEGER_CLASSES:
            return "multiclass", f"{len(distinct)} distinct integers ({shown}) -> multiclass"
        kind = "integers" if integers else "numbers"
        return "regression", f"{len(distinct)} distinct {kind} -> regression"
    if len(distinct) > MAX_STRING_CLASSES:
        raise DataError(
            f"column {label}: has {len(distinct)} distinct text values; too many to be "
            "classes (is it a name or an id?). Pick the label column with --label."
        )
    return "multiclass", f"{len(distinct)} distinct values ({shown}) -> multiclass"


def starter_spec(tasks: dict[str, str], csv_path: Path, spec_path: Path) -> str:
    """A spec `taskfit train` runs as is: one task, or a head per label column (label -> task).
    The CSV path is relative to the spec's folder."""
    source = os.path.relpath(csv_path.resolve(), spec_path.resolve().parent)
    doc: dict[str, Any] = {"data": {"source": source}}
    if len(tasks) == 1:
        ((label, task),) = tasks.items()
        doc = {"task": task, "data": {"source": source, "label": label}}
    else:
        doc["heads"] = {head_name(label): {"task": t, "label": label} for label, t in tasks.items()}
    header = "# Written by taskfit recommend; every other setting comes from the table.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def head_name(label: str) -> str:
    """A label column's name as a head name (letters, digits and _, starting with a letter)."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", label).strip("_")
    return name if name[:1].isalpha() else f"head_{name}"
