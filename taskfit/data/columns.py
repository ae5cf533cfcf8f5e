"""Column types: numeric, categorical, date, free text, or left out (identifiers, constants,
near-unique names), inferred from the cells and overridable with data.numeric,
data.categorical, data.dates, data.text and data.ignore. Standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from taskfit.data.csvtable import Table
from taskfit.data.dates import (
    FORMATS,
    DateFormat,
    detect_format,
    examples,
    first_not_a_date,
    is_datetime,
)
from taskfit.data.labels import (
    FEATURE_LIMIT,
    beyond_feature_limit,
    is_missing,
    not_finite,
    number,
)
from taskfit.errors import Problems
from taskfit.spec.keys import DataSpec

NUMERIC, CATEGORICAL, DATE, TEXT = "numeric", "categorical", "date", "text"
IGNORED = "ignored"
# each kind a spec can declare -> its data.* key (DataSpec's field)
DECLARED = {NUMERIC: "numeric", CATEGORICAL: "categorical", DATE: "dates", TEXT: "text"}
# A text column with more distinct values than this share of its rows is left out: as a category
# most values would name one or two rows, which the network learns by heart (a date or free-text
# column typed as categories overfit by epoch 3 on a 2000-row table); from this many rows on
NEAR_UNIQUE, NEAR_UNIQUE_ROWS = 0.5, 20
# such a column with this many words a cell on average is free text (reviews, descriptions,
# titles: TF-IDF inside the model); with fewer it names things (people, addresses) and is left out
TEXT_WORDS = 3.0
# A category column where this share of the rows hold a value seen at most RARE times lets the
# network tell those rows apart and learn their labels by heart (an embedding row each)
RARE, MEMORISABLE = 2, 0.25
ID_NAME = re.compile(r"(^|[_\s])(id|key|uuid|index|rownames?)$", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # numeric | categorical | date | text | ignored
    missing: int
    distinct: int
    note: str = ""  # why this kind, when it is not plain inference
    date_format: DateFormat | None = None  # a date column's format
    rare: float = 0.0  # the share of its present cells holding a value seen at most RARE times

    @property
    def used(self) -> bool:
        return self.kind != IGNORED


def infer_columns(
    table: Table, data: DataSpec, label_columns: tuple[str, ...], problems: Problems
) -> tuple[Column, ...]:
    """Every column but the label(s), with its kind; infinity and declared-numeric strings are
    problems naming the column and the CSV line."""
    declared = {kind: set(getattr(data, key)) for kind, key in DECLARED.items()}
    kinds = list(DECLARED)
    for i, kind in enumerate(kinds):
        for other in kinds[i + 1 :]:
            for both in sorted(declared[kind] & declared[other]):
                problems.add(
                    f"data.{DECLARED[kind]}",
                    f"{both!r} is also in data.{DECLARED[other]}; keep it in one",
                )
    chosen = set(data.features) if data.features is not None else None
    columns = []
    for name in table.columns:
        if name in label_columns:
            continue
        cells = table.cells[name]
        present = [c for c in cells if not is_missing(c)]
        missing, distinct = len(cells) - len(present), len(set(present))
        column = Column(name, IGNORED, missing, distinct)
        if name in data.ignore:
            column = Column(name, IGNORED, missing, distinct, "data.ignore")
        elif chosen is not None and name not in chosen:
            column = Column(name, IGNORED, missing, distinct, "not in data.features")
        elif distinct <= 1:
            column = Column(name, IGNORED, missing, distinct, "constant: one value")
        elif name in declared[CATEGORICAL]:
            column = Column(name, CATEGORICAL, missing, distinct, "data.categorical")
        elif name in declared[DATE]:
            column = _declared_date(table, name, present, missing, distinct, problems)
        elif name in declared[TEXT]:
            column = Column(name, TEXT, missing, distinct, "data.text")
        else:
            column = _infer(
                table, name, present, missing, distinct, name in declared[NUMERIC], problems
            )
        if column.kind == CATEGORICAL:
            column = replace(column, rare=_rare_share(present))
        columns.append(column)
    return tuple(columns)


def too_large(cell: str, at: str) -> str:
    """What is wrong with a feature cell (`at`: where it is) beyond FEATURE_LIMIT, and the fix."""
    return (
        f"has {cell!r} at {at}, beyond {FEATURE_LIMIT:.2g} in size: the model "
        "standardises each column by its variance, which float32 could not hold. Rescale the "
        "column (divide it by a power of ten), or empty that cell"
    )


IDENTIFIER = "identifier"  # the note of a column left out as one


def identifiers(columns: tuple[Column, ...]) -> list[str]:
    """The columns left out as identifiers: `predict` passes them through to its output."""
    return [c.name for c in columns if c.kind == IGNORED and c.note.startswith(IDENTIFIER)]


def memorisable(columns: tuple[Column, ...]) -> dict[str, float]:
    """Category columns whose rare values let the model learn rows by heart -> that share."""
    return {c.name: c.rare for c in columns if c.kind == CATEGORICAL and c.rare >= MEMORISABLE}


def _rare_share(present: list[str]) -> float:
    counts = Counter(present)
    return sum(n for n in counts.values() if n <= RARE) / len(present) if present else 0.0


def _infer(
    table: Table,
    name: str,
    present: list[str],
    missing: int,
    distinct: int,
    declared: bool,
    problems: Problems,
) -> Column:
    values = [number(c) for c in present]
    if all(v is not None for v in values):
        bad = next(iter(not_finite(table.cells[name])), None)  # every cell parses: an infinity
        if bad is not None:
            problems.add(
                f"column {name}",
                f"has {table.cells[name][bad]!r} at CSV line "
                f"{table.lines[bad]}; numbers must be finite. Fix or empty that cell.",
            )
        if bad is None and any(v is not None and abs(v) > FEATURE_LIMIT for v in values):
            huge = beyond_feature_limit(table.cells[name])[0]
            at = f"CSV line {table.lines[huge]}"
            problems.add(f"column {name}", too_large(table.cells[name][huge], at))
        if not declared and _is_row_number(name, values, missing):
            return Column(name, IGNORED, missing, distinct, f"{IDENTIFIER}: one integer per row")
        note = "data.numeric" if declared else ""
        return Column(name, NUMERIC, missing, distinct, note)
    if declared:
        i = next(
            i for i, c in enumerate(table.cells[name]) if not is_missing(c) and number(c) is None
        )
        problems.add(
            "data.numeric",
            f"{name!r} is not numeric: CSV line {table.lines[i]} has "
            f"{table.cells[name][i]!r}. Remove it from data.numeric.",
        )
        return Column(name, IGNORED, missing, distinct)
    form = detect_format(present)
    if form is not None:
        return Column(name, DATE, missing, distinct, f"dates, {form.name}", form)
    if is_datetime(present):
        return Column(
            name,
            IGNORED,
            missing,
            distinct,
            "date and time: only plain dates (no time of day) become features",
        )
    near_unique = distinct > NEAR_UNIQUE * len(present) and len(present) >= NEAR_UNIQUE_ROWS
    words = sum(len(c.split()) for c in present) / len(present) if near_unique else 0.0
    if words >= TEXT_WORDS:
        return Column(name, TEXT, missing, distinct, f"free text, {words:.1f} words a cell")
    if distinct == len(present) and missing == 0 and len(present) > 2:
        return Column(name, IGNORED, missing, distinct, f"{IDENTIFIER}: unique per row")
    if near_unique:
        return Column(
            name,
            IGNORED,
            missing,
            distinct,
            f"near-unique text: {distinct} values in {len(present)} rows would let the model "
            "learn rows by heart (list it in data.categorical or data.text to keep it)",
        )
    return Column(name, CATEGORICAL, missing, distinct)


def _declared_date(
    table: Table, name: str, present: list[str], missing: int, distinct: int, problems: Problems
) -> Column:
    form = detect_format(present)
    if form is None:
        cells = table.cells[name]
        rows = [i for i, c in enumerate(cells) if not is_missing(c)]
        at = first_not_a_date(cells[i] for i in rows)
        bad = rows[at] if at is not None else _mixed(cells, rows)
        problems.add(
            "data.dates",
            f"{name!r}: CSV line {table.lines[bad]} has {cells[bad]!r}, which is no date in "
            f"one format shared by the column (formats read: {examples()}). Fix the "
            "cell, or take the column out of data.dates",
        )
        return Column(name, IGNORED, missing, distinct)
    return Column(name, DATE, missing, distinct, f"data.dates, {form.name}", form)


def _mixed(cells: list[str], rows: list[int]) -> int:
    """Every cell is a date in some format, but no one format reads them all: the first cell
    that the first cell's format does not read."""
    form = next(f for f in map(DateFormat, FORMATS) if f.parse(cells[rows[0]]))
    return next(i for i in rows if form.parse(cells[i]) is None)


def _is_row_number(name: str, values: list[float | None], missing: int) -> bool:
    """An integer column unique per row that counts rows, or is named like an id."""
    if missing or len(values) < 3 or not all(v is not None and v.is_integer() for v in values):
        return False
    if len(set(values)) != len(values):
        return False
    ordered = sorted(v for v in values if v is not None)
    consecutive = ordered[-1] - ordered[0] == len(ordered) - 1
    return consecutive or bool(ID_NAME.search(name))
