"""Label format detection: which row of the table the label column(s) call for.

binary   one column, two values          -> Dense(1, sigmoid) + binary_crossentropy
integer  one column of class ids         -> Dense(k, softmax) + sparse_categorical_crossentropy
onehot   k columns of 0/1 summing to 1   -> Dense(k, softmax) + categorical_crossentropy
real     one numeric column              -> Dense(1) + mse

Class labels may be any values (0/1, yes/no, strings, any integers): they are kept as the CSV
spells them, in output-unit order, and every output uses those names.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from taskfit.data.csvtable import Table
from taskfit.data.targets import TargetShape
from taskfit.errors import Problems

MISSING = {"", "na", "nan", "null", "none", "n/a"}
# How YAML's true/false (`positive: yes` loads as true) may be spelled in a CSV.
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "y", "t", "1"}, {"false", "no", "n", "f", "0"}


LARGEST_LABEL = 1e18  # squared, 1e36: within float32's 3.4e38, which Keras computes losses in


@dataclass(frozen=True)
class LabelSpec:
    """What the spec says about one label: `data` for a single task, `heads.<name>` for a head."""

    label: str | tuple[str, ...]
    positive: str | int | bool | None = None
    classes: tuple[str | int, ...] | None = None
    key: str = "data"  # where these keys live in the spec, for messages


@dataclass(frozen=True)
class Labels:
    format: str  # binary | integer | onehot | real
    columns: tuple[str, ...]
    classes: tuple[str, ...] = ()  # output-unit order; binary: (negative, positive)
    missing_rows: tuple[int, ...] = ()  # rows without a label: left out of training
    positive_default: bool = False  # binary: the positive class was chosen by taskfit
    key: str = "data"  # the spec section that names this label
    shape: TargetShape | None = None  # real: what the target-transform rule reads of the values

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) or None

    def describe(self) -> str:
        if self.format == "real":
            return "real numbers"
        if self.format == "binary":
            negative, positive = self.classes
            how = f" (default; set {self.key}.positive to change)" if self.positive_default else ""
            return f"two values: {negative}, {positive} (positive class: {positive}{how})"
        names = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
        kind = "one-hot columns" if self.format == "onehot" else "classes"
        return f"{len(self.classes)} {kind}: {names}"


def number(text: str) -> float | None:
    """The cell as a number, None when it is not one (missing cells are checked apart)."""
    try:
        return float(text)
    except ValueError:
        return None


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING


# A numeric feature's largest size: the model standardises each column by its variance, kept
# in float32 (3.4e38), so the values' squares must fit there; a column of 3e38 had an infinite
# variance and reached the model as zeros.
FEATURE_LIMIT = math.sqrt(3.4028234663852886e38)  # 1.8e19


def beyond_feature_limit(cells: list[str]) -> list[int]:
    """Rows whose cell is a number too large for a feature (FEATURE_LIMIT)."""
    return [
        i
        for i, c in enumerate(cells)
        if not is_missing(c) and (n := number(c)) is not None and math.isfinite(n)
        and abs(n) > FEATURE_LIMIT
    ]  # fmt: skip


def not_finite(cells: list[str]) -> list[int]:
    """Rows whose cell is present but not a finite number (text, inf, -inf)."""
    return [
        i
        for i, c in enumerate(cells)
        if not is_missing(c) and ((n := number(c)) is None or not math.isfinite(n))
    ]


def same_label(spec_value: str | int | bool, cell: str) -> bool:
    """A label value from the spec (YAML-typed) against a CSV cell."""
    if isinstance(spec_value, bool):
        return cell.strip().lower() in (TRUE_WORDS if spec_value else FALSE_WORDS)
    if isinstance(spec_value, int) and (n := number(cell)) is not None:
        return n == spec_value
    return cell == str(spec_value)


def _sort_key(value: str) -> tuple[int, float, str]:
    num = number(value)
    return (0, num, "") if num is not None else (1, 0.0, value.lower())


def _lines(table: Table, rows: list[int]) -> str:
    shown = ", ".join(str(table.lines[r]) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def detect_labels(task: str, table: Table, data: LabelSpec, problems: Problems) -> Labels | None:
    """The label format for `task`, or None with the reasons added to `problems`."""
    labels = _detect(task, table, data, problems)
    return dataclasses.replace(labels, key=data.key) if labels else None


def _detect(task: str, table: Table, data: LabelSpec, problems: Problems) -> Labels | None:
    if not isinstance(data.label, str):
        return _onehot(task, table, data.label, data.key, problems)
    label = data.label
    cells = table.cells[label]
    missing = tuple(i for i, c in enumerate(cells) if is_missing(c))
    present = [c for c in cells if not is_missing(c)]
    if not present:
        problems.add(f"column {label}", "has no labels at all; every row is empty")
        return None
    if task == "regression":
        bad = not_finite(cells)
        if bad:
            problems.add(
                f"column {label}",
                f"a regression label must be a finite number; CSV line {table.lines[bad[0]]} "
                f"has {cells[bad[0]]!r} ({len(bad)} such rows). For classes use task: binary "
                "or multiclass.",
            )
            return None
        numbers = [float(c) for c in present]
        largest = max(abs(v) for v in numbers)
        if largest > LARGEST_LABEL:
            problems.add(
                f"column {label}",
                f"holds {largest:.3g}: the loss in the label's units would overflow float32 "
                f"(a squared error above 3.4e38). Rescale the label (say, divide it by "
                f"{10 ** (len(str(int(largest))) - 6):.0e}) before training",
            )
            return None
        return Labels("real", (label,), missing_rows=missing, shape=TargetShape.of(numbers))
    values = sorted(set(present), key=_sort_key)
    fractions = [v for v in values if (n := number(v)) is not None and not n.is_integer()]
    if fractions:
        problems.add(
            f"column {label}",
            f"has non-integer numbers (e.g. {fractions[0]}); a {task} label holds classes. "
            "For a real-valued label use task: regression.",
        )
        return None
    if data.classes is not None:
        return _declared_classes(task, table, data, values, missing, problems)
    if len(values) < 2:
        problems.add(
            f"column {label}",
            f"has a single class ({values[0]!r}); a classifier needs at least two. "
            "Check the label column or the file.",
        )
        return None
    if len(values) == 2:
        return _binary(table, data, values, missing, problems)
    return Labels("integer", (label,), tuple(values), missing)


def _binary(
    table: Table, data: LabelSpec, values: list[str], missing: tuple[int, ...], problems: Problems
) -> Labels | None:
    label = str(data.label)
    if data.positive is not None:
        chosen = [v for v in values if same_label(data.positive, v)]
        if len(chosen) != 1:
            problems.add(
                f"{data.key}.positive",
                f"{data.positive!r} is not one of the label's two values "
                f"({', '.join(values)}); name one of them",
            )
            return None
        positive = chosen[0]
        negative = next(v for v in values if v != positive)
        return Labels("binary", (label,), (negative, positive), missing)
    # sorted order puts the positive class last for 0/1, false/true and no/yes
    return Labels("binary", (label,), tuple(values), missing, positive_default=True)


def _declared_classes(
    task: str,
    table: Table,
    data: LabelSpec,
    values: list[str],
    missing: tuple[int, ...],
    problems: Problems,
) -> Labels | None:
    declared = data.classes or ()
    names: list[str] = []
    for value in declared:
        match = [v for v in values if same_label(value, v)]
        name = match[0] if match else str(value)
        if name in names:  # a class twice would be two output units for one class
            problems.add(f"{data.key}.classes", f"lists {value!r} twice; name each class once")
            return None
        names.append(name)
    unknown = [v for v in values if v not in names]
    if unknown:
        cells = table.cells[str(data.label)]
        row = next(i for i, c in enumerate(cells) if c == unknown[0])
        problems.add(
            f"{data.key}.classes",
            f"does not list {unknown[0]!r} (CSV line {table.lines[row]}); "
            f"add every label value, or leave {data.key}.classes out",
        )
        return None
    if task == "binary":
        if len(names) != 2:
            problems.add(f"{data.key}.classes", f"a binary task has two classes. Got {len(names)}.")
            return None
        # classes give (negative, positive); a positive naming the first would be ignored
        if data.positive is not None and not same_label(data.positive, names[1]):
            problems.add(
                f"{data.key}.positive",
                f"{data.positive!r} is not the second of {data.key}.classes ({', '.join(names)}), "
                "which is the positive class; give one of the two keys, or put it second",
            )
            return None
        return Labels("binary", (str(data.label),), tuple(names), missing)
    return Labels("integer", (str(data.label),), tuple(names), missing)


def _onehot(
    task: str, table: Table, columns: tuple[str, ...], key: str, problems: Problems
) -> Labels | None:
    before = len(problems.items)
    if task != "multiclass":
        problems.add(
            f"{key}.label",
            f"a list of label columns means one-hot multiclass labels; this spec is {task}. "
            "Give one column, or use task: multiclass.",
        )
        return None
    if len(columns) < 2:
        problems.add(f"{key}.label", "one-hot labels need one column per class (at least two)")
        return None
    for column in columns:
        bad = [i for i, c in enumerate(table.cells[column]) if c not in ("0", "1", "0.0", "1.0")]
        if bad:
            problems.add(
                f"column {column}",
                f"one-hot label columns hold 0 or 1; CSV line {table.lines[bad[0]]} has "
                f"{table.cells[column][bad[0]]!r}",
            )
    if len(problems.items) > before:
        return None
    sums = [sum(float(table.cells[c][i]) for c in columns) for i in range(table.n_rows)]
    bad = [i for i, s in enumerate(sums) if s != 1]
    if bad:
        problems.add(
            f"{key}.label",
            f"one-hot rows must have exactly one 1; CSV line(s) {_lines(table, bad)} do not. "
            "Fix those rows, or give one class-id column.",
        )
        return None
    return Labels("onehot", columns, columns)
