"""A date column's calendar: every day from YEARS_BEFORE years before its earliest training date
to YEARS_AFTER years after its latest, as the column writes it, with each day's features. The
model looks a cell up in it as it looks up a category (the row for a cell not in it, a gap or a
day out of range, is all zeros), so the features are the same numbers in training, in the saved
model and in every export.

The features: the elapsed time (days, standardised over the training rows), and month, day of
week and day of year each as a point on a circle (sin, cos), so December sits next to January;
and each day's recurring slots (SLOTS), for which the model learns a vector of its own.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np

from taskfit.data.dates import DateFormat

# Later days are what a saved model predicts on; earlier ones appear when a table is extended
# back. Each further year costs 365 looked-up strings per padding style.
YEARS_BEFORE, YEARS_AFTER = 10, 30
FEATURES = (
    "elapsed",
    "month_sin",
    "month_cos",
    "weekday_sin",
    "weekday_cos",
    "yearday_sin",
    "yearday_cos",
    "known",  # 1 for a day in the calendar, 0 for the lookup's "not found" row
)


# Days the model learns a vector for, as holidays recur: the same day of the year (1 January,
# 4 July, 25 December), and the same weekday of a month's same week (the fourth Thursday of
# November, the first Monday of September). 0: a cell not found.
SLOTS = {"day_of_year": 1 + 366, "weekday_of_month": 1 + 12 * 5 * 7}


@dataclass(frozen=True)
class Calendar:
    vocabulary: list[str]  # every day as written, sorted (as category vocabularies are)
    table: np.ndarray  # (1 + len(vocabulary), FEATURES) float32; row 0 for a cell not found
    slots: np.ndarray  # (1 + len(vocabulary), SLOTS) each day's slot of each kind, as float32


def fit_calendar(form: DateFormat, counts: Counter[str]) -> Calendar:
    """The calendar around the training cells (cell -> rows), its elapsed time standardised
    over those rows."""
    days = Counter[dt.date]()
    for cell, n in counts.items():
        day = form.parse(cell)
        if day is not None:
            days[day] += n
    if not days:  # every training cell empty: nothing to place a calendar around
        none = np.zeros((1, len(FEATURES)), dtype=np.float32)
        return Calendar([], none, np.zeros((1, len(SLOTS)), dtype=np.float32))
    ordinals = np.array([d.toordinal() for d in days], dtype=np.float64)
    weights = np.array(list(days.values()), dtype=np.float64)
    mean = float(np.average(ordinals, weights=weights))
    std = float(np.sqrt(np.average((ordinals - mean) ** 2, weights=weights))) or 1.0
    first = dt.date(max(min(days).year - YEARS_BEFORE, 1), 1, 1)
    last = dt.date(min(max(days).year + YEARS_AFTER, 9999), 12, 31)
    span = np.arange(first.toordinal(), last.toordinal() + 1)
    calendar = [dt.date.fromordinal(int(o)) for o in span]
    written = sorted((text, i) for i, day in enumerate(calendar) for text in form.write(day))
    rows = np.array([i for _, i in written])
    features = _features(calendar, (span - mean) / std)
    table = np.concatenate([np.zeros((1, len(FEATURES))), features[rows]]).astype(np.float32)
    slots = np.concatenate([np.zeros((1, len(SLOTS))), _slots(calendar)[rows]]).astype(np.float32)
    return Calendar([text for text, _ in written], table, slots)


def _slots(days: list[dt.date]) -> np.ndarray:
    leap = [dt.date(2000, d.month, d.day).timetuple().tm_yday for d in days]  # 29 Feb: its own
    nth = [1 + ((d.month - 1) * 5 + (d.day - 1) // 7) * 7 + d.weekday() for d in days]
    return np.stack([leap, nth], axis=1)


def _features(days: list[dt.date], elapsed: np.ndarray) -> np.ndarray:
    month = np.array([d.month - 1 for d in days]) / 12
    weekday = np.array([d.weekday() for d in days]) / 7
    yearday = np.array([d.timetuple().tm_yday - 1 for d in days]) / 366
    turns = [2 * np.pi * f for f in (month, weekday, yearday)]
    circles = [part for t in turns for part in (np.sin(t), np.cos(t))]
    return np.stack([elapsed, *circles, np.ones(len(days))], axis=1)
