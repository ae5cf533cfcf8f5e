"""Label format detection: which row of the table the label column(s) call for.

binary   one column, two values          -> Dense(1, sigmoid) + binary_crossentropy
integer  one column of class ids         -> Dense(k, softmax) + sparse_categorical_crossentropy
onehot   k columns of 0/1 summing to 1   -> Dense(k, softmax) + categorical_crossentropy
real     one numeric column              -> Dense(1) + mse
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from taskfit.csvtable import Table
from taskfit.errors import Problems

MISSING = {"", "na", "nan", "null", "none", "n/a"}


@dataclass(frozen=True)
class Labels:
    format: str  # binary | integer | onehot | real
    columns: tuple[str, ...]
    classes: tuple[
        str, ...
    ] = ()  # class names in output-unit order; for binary: (negative, positive)

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) or None

    def describe(self) -> str:
        if self.format == "real":
            return "real numbers"
        if self.format == "binary":
            negative, positive = self.classes
            return f"two values: {negative}, {positive} (positive class: {positive})"
        names = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
        kind = "one-hot columns" if self.format == "onehot" else "class ids"
        return f"{len(self.classes)} {kind}: {names}"


def number(text: str) -> float | None:
    """The cell as a number, None when it is not one (missing cells are checked apart)."""
    try:
        return float(text)
    except ValueError:
        return None


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING


def _sort_key(value: str) -> tuple[int, float, str]:
    num = number(value)
    return (0, num, "") if num is not None else (1, 0.0, value)


def _lines(table: Table, rows: list[int]) -> str:
    shown = ", ".join(str(table.lines[r]) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def detect_labels(
    task: str, table: Table, label: str | tuple[str, ...], problems: Problems
) -> Labels | None:
    """The label format for `task`, or None with the reasons added to `problems`."""
    if isinstance(label, tuple):
        return _onehot(task, table, label, problems)
    cells = table.cells[label]
    missing = [i for i, c in enumerate(cells) if is_missing(c)]
    if missing:
        problems.add(
            f"column {label}",
            f"has {len(missing)} empty label(s) at CSV line(s) "
            f"{_lines(table, missing)}; fill them or remove those rows",
        )
        return None
    if task == "regression":
        bad = [i for i, c in enumerate(cells) if number(c) is None or not math.isfinite(float(c))]
        if bad:
            problems.add(
                f"column {label}",
                f"a regression label must be a finite number; CSV line "
                f"{table.lines[bad[0]]} has {cells[bad[0]]!r} ({len(bad)} such rows). "
                "For classes use task: binary or multiclass.",
            )
            return None
        return Labels("real", (label,))
    values = sorted(set(cells), key=_sort_key)
    fractions = [v for v in values if (n := number(v)) is not None and not n.is_integer()]
    if fractions:
        problems.add(
            f"column {label}",
            f"has non-integer numbers (e.g. {fractions[0]}); a {task} label holds "
            "classes. For a real-valued label use task: regression.",
        )
        return None
    if len(values) < 2:
        problems.add(
            f"column {label}",
            f"has a single class ({values[0]!r}); "
            "a classifier needs at least two. Check the label column or the file.",
        )
        return None
    if len(values) == 2:  # sorted, so 0/1, false/true and no/yes put the positive class last
        return Labels("binary", (label,), tuple(values))
    return Labels("integer", (label,), tuple(values))


def _onehot(task: str, table: Table, columns: tuple[str, ...], problems: Problems) -> Labels | None:
    before = len(problems.items)
    if task != "multiclass":
        problems.add(
            "data.label",
            f"a list of label columns means one-hot multiclass labels; "
            f"this spec is {task}. Give one column, or use task: multiclass.",
        )
        return None
    if len(columns) < 2:
        problems.add("data.label", "one-hot labels need one column per class (at least two)")
        return None
    for column in columns:
        bad = [i for i, c in enumerate(table.cells[column]) if c not in ("0", "1", "0.0", "1.0")]
        if bad:
            problems.add(
                f"column {column}",
                f"one-hot label columns hold 0 or 1; CSV line "
                f"{table.lines[bad[0]]} has {table.cells[column][bad[0]]!r}",
            )
    if len(problems.items) > before:
        return None
    sums = [sum(float(table.cells[c][i]) for c in columns) for i in range(table.n_rows)]
    bad = [i for i, s in enumerate(sums) if s != 1]
    if bad:
        problems.add(
            "data.label",
            f"one-hot rows must have exactly one 1; CSV line(s) "
            f"{_lines(table, bad)} do not. Fix those rows, or give one class-id column.",
        )
        return None
    return Labels("onehot", columns, columns)
