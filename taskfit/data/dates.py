"""Date columns: which cells are dates, in which of the common formats, and every day of a range
written as the column writes its dates. Standard library only (`check` detects dates).

A date column reaches the model as a category does, through a lookup of its string: the
vocabulary is every day of a calendar around the training dates, each written in the column's
format (taskfit.feed.calendar gives each day its features). So the saved model and every export
take the raw string and need no string parsing, which TFLite's built-in ops do not have.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Tried in this order; the first under which every cell is a real day wins. Month first before
# day first: "03/04/2024" is 4 March in the US; a day above 12 in front rules that reading out.
FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
)
FIELDS = {"%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})",
          "%b": r"(?P<b>[A-Za-z]{3})"}  # fmt: skip
# The time after a date ("2024-03-15 10:22", "2024-03-15T10:22:05Z", "3/15/2024 0:00 AM"). One
# time in every cell (midnight) leaves a date; a time of day cannot be looked up as a day is,
# so a column of those is left out with a note rather than made a category.
TIME_OF_DAY = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?( ?(Z|[AP]M|[+-]\d{2}:?\d{2}))?$")


@dataclass(frozen=True)
class DateFormat:
    """One of FORMATS, with how the column pads its month and day numbers ("03" or "3"): the
    calendar writes each day in every way the training cells do."""

    name: str
    padded: tuple[bool, ...] = (True,)  # the zero-padding styles seen: True "03", False "3"

    @property
    def pattern(self) -> re.Pattern[str]:
        return _pattern(self.name)

    def parse(self, cell: str) -> dt.date | None:
        """The day a cell names in this format, or None. The cell as it is: the model looks the
        raw string up, so " 2024-03-15" is no date."""
        found = self.pattern.fullmatch(cell)
        if found is None:
            return None
        fields = found.groupdict()
        month = _month(fields)
        try:
            return dt.date(int(fields["Y"]), month, int(fields["d"])) if month else None
        except ValueError:  # 31 April, 29 February of a common year
            return None

    def write(self, day: dt.date) -> list[str]:
        """The day in this format, once per padding style (in order)."""
        written = []
        for pad in self.padded:
            text = self.name
            for code, value in (("%m", day.month), ("%d", day.day)):
                text = text.replace(code, f"{value:02d}" if pad else str(value))
            text = text.replace("%Y", f"{day.year:04d}").replace("%b", MONTHS[day.month - 1])
            written.append(text)
        return list(dict.fromkeys(written))


def detect_format(cells: list[str]) -> DateFormat | None:
    """The format every cell (the column's present cells) is a date in, or None. A date
    followed by one time that every cell shares ("2021-02-01T00:00:00Z", "9/30/1990 0:00") is
    a date too: its format holds that time as text."""
    if not cells:
        return None
    for name in [*FORMATS, *_with_constant_time(cells)]:
        form = DateFormat(name)
        if all(form.parse(c) is not None for c in cells):
            return DateFormat(name, _padding(form, cells))
    return None


def _with_constant_time(cells: list[str]) -> list[str]:
    """The formats of FORMATS followed by the time part of the first cell, when every cell ends
    in it (a date exported as a datetime at midnight)."""
    found = TIME_OF_DAY.search(cells[0])
    if found is None or not all(c.endswith(found.group()) for c in cells):
        return []
    return [name + found.group() for name in FORMATS]


def examples() -> str:
    """15 March 2024 in each of FORMATS, for messages."""
    day = dt.date(2024, 3, 15)
    return "; ".join(DateFormat(name).write(day)[0] for name in FORMATS)


def is_date(cell: str) -> bool:
    """A date in any of FORMATS."""
    return any(DateFormat(name).parse(cell) is not None for name in FORMATS)


def first_not_a_date(cells: Iterable[str]) -> int | None:
    """The position of the first cell that is no date in any of FORMATS."""
    return next((i for i, cell in enumerate(cells) if not is_date(cell)), None)


def is_datetime(cells: list[str]) -> bool:
    """Every cell a date in FORMATS with a time of day after it."""

    def dated(cell: str) -> bool:
        time = TIME_OF_DAY.search(cell)
        return time is not None and is_date(cell[: time.start()])

    return bool(cells) and all(dated(c) for c in cells)


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    text = re.escape(name)
    for code, group in FIELDS.items():
        text = text.replace(re.escape(code), group)
    return re.compile(text)  # month names as written: "Mar" (a lookup is case-sensitive)


def _month(fields: dict[str, str]) -> int | None:
    if "b" in fields:
        return MONTHS.index(fields["b"]) + 1 if fields["b"] in MONTHS else None
    month = int(fields["m"])
    return month if 1 <= month <= 12 else None


def _padding(form: DateFormat, cells: list[str]) -> tuple[bool, ...]:
    """Which padding styles the cells use: a one-digit month or day says unpadded, a leading
    zero padded; neither seen (every month and day above 9), padded."""
    if "%m" not in form.name and "%d" not in form.name:
        return (True,)
    styles = set()
    for cell in cells:
        fields = form.pattern.fullmatch(cell)
        assert fields is not None  # detect_format parsed every cell
        for code in ("m", "d"):
            value = fields.groupdict().get(code)
            if value is not None and (len(value) == 1 or value.startswith("0")):
                styles.add(len(value) == 2)
    return tuple(sorted(styles, reverse=True)) or (True,)
