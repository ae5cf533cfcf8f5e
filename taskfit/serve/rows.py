"""A request's rows, as JSON gives them (one object, or a list of objects, by column name), into
the table `predict` reads from a CSV: the same checks, the same encoding, the same model."""

from __future__ import annotations

from typing import Any

from taskfit.data.csvtable import Table
from taskfit.errors import DataError, Problems

MAX_ROWS = 10_000  # a request's rows; more go in several requests (or `taskfit predict`)


def request_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a request body: one row (an object) or a list of them; a DataError saying
    what was given otherwise."""
    rows = [body] if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        given = "an empty list" if rows == [] else f"a JSON {_kind(body)}"
        raise DataError(
            f"the body is {given}; give one row as an object by column name, "
            '{"age": 41, "plan": "basic"}, or a list of such objects'
        )
    if len(rows) > MAX_ROWS:
        raise DataError(
            f"the body holds {len(rows)} rows; a request takes at most {MAX_ROWS}: send them "
            "in several requests, or use taskfit predict on a CSV"
        )
    problems = Problems()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.add(f"row {i}", f"is a JSON {_kind(row)}, not an object by column name")
    problems.raise_if_any(DataError)
    return rows


def as_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Table:
    """The rows as a CSV would hold them: every cell a string, null an empty cell. Each of
    `columns` (the model's inputs) must be in every row; other keys are kept, as a CSV's
    other columns are (predict notes them)."""
    problems = Problems()
    named = list(dict.fromkeys(key for row in rows for key in row))
    for i, row in enumerate(rows):
        absent = [c for c in columns if c not in row]
        if absent and any(c in named for c in absent):  # a column no row has: check_rows says
            problems.add(
                f"row {i}",
                f"has no {', '.join(absent)}; every row needs each input column (null for a "
                "value not known)",
            )
        for column, value in row.items():
            if not _unicode(column):
                problems.add(
                    f"row {i}",
                    "a column name holds a lone surrogate escape (\\ud800-\\udfff), which is "
                    "no character; send the text as UTF-8",
                )
            elif isinstance(value, dict | list):
                problems.add(
                    f"row {i}",
                    f"column {column} is a JSON {_kind(value)}; give a number, a string or null",
                )
            elif isinstance(value, str) and not _unicode(value):
                problems.add(
                    f"row {i}",
                    f"column {column} holds a lone surrogate escape (\\ud800-\\udfff), which "
                    "is no character; send the text as UTF-8",
                )
    problems.raise_if_any(DataError)
    cells = {c: [_cell(row.get(c)) for row in rows] for c in named}
    return Table("the request", tuple(named), cells, list(range(len(rows))), line_name="row")


def _unicode(text: str) -> bool:
    """JSON's \\ud800 escapes a half of a UTF-16 pair: Python keeps it, UTF-8 cannot hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cell(value: Any) -> str:
    """What a CSV cell would hold: a number as Python writes it, null as an empty cell."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _kind(value: Any) -> str:
    kinds = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")
