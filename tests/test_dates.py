"""Date columns: detected in the common formats, looked up in a calendar inside the saved model,
and the same features in training, in the saved model and for a day the training rows lack."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest

from taskfit.data.columns import DATE, IGNORED
from taskfit.data.dates import DateFormat, detect_format
from taskfit.data.labels import Labels
from taskfit.data.view import inspect_data
from taskfit.errors import DataError
from taskfit.feed.calendar import FEATURES, SLOTS, YEARS_AFTER, fit_calendar
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import Chunk
from taskfit.feed.scan import feature_stats
from taskfit.model.build import build_from_stats, named_inputs
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.spec.spec import load_spec, parse_spec


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")


@pytest.mark.parametrize(
    ("cells", "name", "padded"),
    [
        (["2024-03-15", "2023-12-01"], "%Y-%m-%d", (True,)),
        (["3/15/2024", "12/1/2023"], "%m/%d/%Y", (False,)),
        (["03/15/2024", "12/01/2023"], "%m/%d/%Y", (True,)),
        (["03/04/2024", "3/4/2024"], "%m/%d/%Y", (True, False)),
        (["15/03/2024", "01/12/2023"], "%d/%m/%Y", (True,)),  # a day above 12 comes first
        (["15.03.2024"], "%d.%m.%Y", (True,)),
        (["15-Mar-2024", "1-Dec-2023"], "%d-%b-%Y", (False,)),
        (["Mar 15, 2024"], "%b %d, %Y", (True,)),
        # a datetime at midnight in every cell is a date, its time kept as text
        (["2021-02-01T00:00:00Z", "2021-03-11T00:00:00Z"], "%Y-%m-%dT00:00:00Z", (True,)),
        (["9/30/1990 0:00:00", "10/3/2016 0:00:00"], "%m/%d/%Y 0:00:00", (False,)),
    ],
)
def test_each_common_format_is_detected_with_its_padding(
    cells: list[str], name: str, padded: tuple[bool, ...]
) -> None:
    form = detect_format(cells)
    assert form == DateFormat(name, padded)
    for cell in cells:  # the calendar writes every training cell as the cell is written
        day = form.parse(cell)
        assert day is not None and cell in form.write(day)


@pytest.mark.parametrize(
    "cells",
    [
        ["2024-02-30"],  # no such day
        ["2024-03-15", "15/03/2024"],  # two formats in one column
        ["13/13/2024"],
        ["March 2024"],
        ["MAR 15, 2024"],  # a lookup is case-sensitive: only the month names as written
        [" 2024-03-15"],  # nor does it strip: the calendar holds no day with a space before
    ],
)
def test_cells_that_are_not_days_in_one_format_are_no_date_column(cells: list[str]) -> None:
    assert detect_format(cells) is None


def test_the_calendar_spans_the_training_days_and_places_each_on_its_cycles() -> None:
    form = DateFormat("%Y-%m-%d")
    counts = Counter({"2020-01-06": 3, "2020-12-28": 1, "2021-06-30": 2})
    calendar = fit_calendar(form, counts)
    assert calendar.vocabulary == sorted(calendar.vocabulary)
    assert calendar.vocabulary[0] == "2010-01-01"
    assert calendar.vocabulary[-1] == f"{2021 + YEARS_AFTER}-12-31"
    features = dict(zip(FEATURES, calendar.table.T, strict=True))
    assert not calendar.table[0].any()  # the row for a cell not in the calendar

    def row(cell: str) -> int:
        return 1 + calendar.vocabulary.index(cell)

    # the elapsed time is standardised over the training rows (each counted as often as seen)
    trained = [row(c) for c, n in counts.items() for _ in range(n)]
    assert abs(features["elapsed"][trained].mean()) < 1e-5
    assert abs(features["elapsed"][trained].std() - 1) < 1e-4
    assert (features["known"][1:] == 1).all()
    # both Mondays at the same point of the week; late December next to early January
    monday, monday_later = row("2020-01-06"), row("2020-12-28")
    for part in ("weekday_sin", "weekday_cos"):
        assert features[part][monday] == pytest.approx(features[part][monday_later], abs=1e-6)
    january, december = calendar.table[row("2020-01-01")], calendar.table[row("2019-12-31")]
    assert np.abs(january[5:7] - december[5:7]).max() < 0.05  # day of year
    assert np.abs(january[1:3] - calendar.table[row("2020-07-01")][1:3]).max() > 1.9  # month


def test_a_date_column_is_typed_as_dates_and_a_datetime_one_is_left_out(tmp_path: Path) -> None:
    rows = [
        [
            f"{1 + i % 12}/{1 + i % 28}/{2020 + i % 3}",
            f"3/{1 + i % 9}/2024 {i % 24}:15",
            i % 7,
            i % 2,
        ]
        for i in range(40)
    ]
    write_csv(tmp_path / "data.csv", ["sold_on", "stamp", "x", "y"], rows)
    (tmp_path / "spec.yaml").write_text("task: binary\ndata: {source: data.csv, label: y}\n")
    columns = {c.name: c for c in inspect_data(load_spec(tmp_path / "spec.yaml")).columns}
    assert columns["sold_on"].kind == DATE
    assert columns["sold_on"].note == "dates, %m/%d/%Y"
    assert columns["stamp"].kind == IGNORED and "date and time" in columns["stamp"].note
    resolved = check_spec(tmp_path / "spec.yaml").resolved()["data"]
    assert resolved["dates"] == ["sold_on"] and "sold_on" not in resolved["categorical"]


def test_a_declared_date_column_that_holds_no_dates_names_the_line(tmp_path: Path) -> None:
    rows = [
        ["2024-01-02", "a", 1],
        ["2024-01-03", "b", 0],
        ["soon", "c", 1],
        ["2024-01-05", "a", 0],
    ]
    write_csv(tmp_path / "data.csv", ["when", "shop", "y"], rows)
    (tmp_path / "spec.yaml").write_text(
        "task: binary\ndata: {source: data.csv, label: y, dates: [when, shop], "
        "categorical: [shop]}\n"
    )
    with pytest.raises(DataError) as error:
        inspect_data(load_spec(tmp_path / "spec.yaml"))
    message = str(error.value)
    assert "data.dates: 'when': CSV line 4 has 'soon'" in message
    assert "data.categorical: 'shop' is also in data.dates" in message
    assert "(formats read: 2024-03-15; 2024/03/15; 03/15/2024;" in message  # by example


def date_rows() -> tuple[Columns, Chunk]:
    days = [dt.date(2021, 1, 1) + dt.timedelta(days=9 * i) for i in range(60)]
    cells = np.array([[f"{d.month}/{d.day}/{d.year}"] for d in days])
    chunk = Chunk(np.zeros((60, 0), dtype=np.float32), {"sold_on": cells}, {})
    form = detect_format(cells.ravel().tolist())
    assert form is not None
    return Columns((), ("sold_on",), (), {"sold_on": form}), chunk


def test_the_saved_model_looks_a_date_string_up_as_training_did(tmp_path: Path) -> None:
    columns, chunk = date_rows()
    text = "task: regression\ndata: {source: x, label: y}\nmodel: {layers: [{units: 4}]}\n"
    plan = make_plan(parse_spec(text, Path(".")).spec, {"output": Labels("real", ("y",))})
    chunk = Chunk(chunk.numeric, chunk.categorical, {"output": np.arange(60.0).reshape(-1, 1)})
    stats = feature_stats(columns, chunk)
    models = build_from_stats(plan, (), ("sold_on",), stats)
    features = models.fit.get_layer("sold_on_calendar")
    assert not features.trainable
    trained = models.fit.predict(models.pack(chunk), verbose=0)
    models.named.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")  # nothing from taskfit
    raw = {"sold_on": chunk.categorical["sold_on"]}
    np.testing.assert_allclose(reloaded.predict(named_inputs(raw), verbose=0), trained, rtol=1e-6)
    # a day the training rows lack is in the calendar; a cell that is no date reads as a gap
    unseen = {"sold_on": np.array([["2/2/2021"], ["7/4/2040"], ["soon"], [""]])}
    looked_up = reloaded.predict(named_inputs(unseen), verbose=0)
    assert not np.allclose(looked_up[0], looked_up[1])
    np.testing.assert_allclose(looked_up[2], looked_up[3])


def predict_notes(folder: Path, rows: list[list[object]]) -> list[str]:
    """What predict notes of these rows (columns when, x) for a run of a date column `when`
    whose folder is `folder`."""
    from taskfit.runfolder.opened import Run, read_rows

    text = "task: binary\ndata: {source: x.csv, label: y, numeric: [x], dates: [when]}\n"
    spec = parse_spec(text, folder).spec
    plan = make_plan(spec, {"output": Labels("binary", ("y",), ("0", "1"))})
    write_csv(folder / "new.csv", ["when", "x"], rows)
    return read_rows(Run(folder, spec, plan), folder / "new.csv", need_label=False)[1]


def test_predict_notes_the_cells_of_a_date_column_that_are_no_date(tmp_path: Path) -> None:
    notes = predict_notes(tmp_path, [["2024-01-02", 1], ["", 2], ["soon", 3], ["later", 4]])
    assert notes == [
        "column when: 2 cells are no date (CSV line 4: 'soon'); the model reads each as an "
        "unknown day, as it does an empty cell"
    ]


def test_recurring_days_share_a_slot_the_model_learns_a_vector_for() -> None:
    calendar = fit_calendar(DateFormat("%Y-%m-%d"), Counter({"2020-06-01": 1, "2021-06-01": 1}))
    kinds = list(SLOTS)

    def slot(cell: str, kind: str) -> float:
        return float(calendar.slots[1 + calendar.vocabulary.index(cell), kinds.index(kind)])

    assert slot("2020-07-04", "day_of_year") == slot("2021-07-04", "day_of_year")
    assert slot("2020-03-01", "day_of_year") == slot("2021-03-01", "day_of_year")  # leap or not
    assert slot("2020-07-04", "day_of_year") != slot("2020-07-05", "day_of_year")
    # Thanksgiving: the fourth Thursday of November
    assert slot("2020-11-26", "weekday_of_month") == slot("2021-11-25", "weekday_of_month")
    assert slot("2020-11-26", "weekday_of_month") != slot("2020-11-19", "weekday_of_month")
    assert not calendar.slots[0].any()  # a cell not found: slot 0 of each
    used = {kind: {slot(c, kind) for c in calendar.vocabulary} for kind in kinds}
    assert {kind: (min(v), max(v)) for kind, v in used.items()} == {
        kind: (1, count - 1) for kind, count in SLOTS.items()
    }


def test_predict_notes_dates_written_otherwise_than_the_training_rows(tmp_path: Path) -> None:
    """run.json keeps the training rows' format: a date in another format (or padding) is
    not in the model's calendar, and predict says so."""
    import json

    facts = {"date_formats": {"when": {"format": "%Y-%m-%d", "padded": [True]}}}
    (tmp_path / "run.json").write_text(json.dumps(facts))
    rows = [["2024-01-02", 1], ["02/01/2024", 2], ["2024-1-2", 3], ["", 4]]
    notes = predict_notes(tmp_path, rows)
    assert notes == [
        "column when: 2 cells are no date written as the training rows wrote theirs "
        "(%Y-%m-%d) (CSV line 3: '02/01/2024'); the model reads each as an unknown day, as it "
        "does an empty cell"
    ]
