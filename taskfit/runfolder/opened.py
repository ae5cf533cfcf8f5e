"""A finished run folder, read back for `predict` and `evaluate` (standard library only).

spec.resolved.yaml says what the user asked, with every default filled in (the feature columns
and their types, the labels and their classes); plan.json every choice the table made for it;
model.keras holds the weights and the preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskfit.data.csvtable import Table, read_csv
from taskfit.data.dates import DateFormat, is_date
from taskfit.data.labels import Labels, is_missing, not_finite
from taskfit.data.view import label_specs
from taskfit.errors import DataError, Problems, SpecError
from taskfit.plan.make import make_plan
from taskfit.plan.plan import Plan
from taskfit.runfolder.files import (
    check_format,
    checked_status,
    read_facts,
    read_format,
    read_reason,
    read_status,
)
from taskfit.runfolder.layout import RunFolder, TuneFolder
from taskfit.runfolder.planfile import PLAN_SINCE, read_plan
from taskfit.spec.keys import THRESHOLD_RANGE, Spec
from taskfit.spec.spec import LoadedSpec, load_spec


@dataclass(frozen=True)
class Run:
    folder: Path
    spec: Spec
    plan: Plan
    # binary heads with data.threshold: the cut on the positive class's probability (run.json)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.spec.data.numeric

    @property
    def categorical(self) -> tuple[str, ...]:
        """The string inputs: categories, dates and texts (each encoded inside the model)."""
        data = self.spec.data
        return (*data.categorical, *data.dates, *data.text)

    @property
    def label_columns(self) -> tuple[str, ...]:
        return tuple(c for head in self.plan.heads for c in head.labels.columns)


def open_run(folder: str | Path, need_model: bool = True) -> Run:
    """A run folder; `need_model=False` also opens one whose training never saved a model
    (killed, failed), which `report` describes."""
    folder = Path(folder)
    files = RunFolder(folder)
    resolved = files.spec
    not_a_tune_folder(folder)
    if need_model and resolved.is_file() and not files.model.exists():
        _no_model_yet(files)
    if (need_model and not files.model.is_file()) or not resolved.is_file():
        needs = f"{files.model.name} and {resolved.name}" if need_model else resolved.name
        raise DataError(
            f"{folder}: not a run folder (it needs {needs}); give a folder that `taskfit train` "
            "wrote"
        )
    check_format(folder)
    checked_status(folder)  # a damaged status.json is said, as report says it
    spec = load_resolved(resolved).spec
    plan = stored_plan(folder, spec)
    return Run(folder, spec, plan, read_thresholds(files, plan) if need_model else {})


def not_a_tune_folder(folder: Path) -> None:
    """A `taskfit tune` folder given where a run folder goes: said as such, with the fix."""
    tune = TuneFolder(folder)
    if not RunFolder(folder).spec.exists() and tune.record.is_file():
        raise DataError(
            f"{folder}: is a `taskfit tune` folder, not a run; train its best trial with "
            f"`taskfit train {tune.best}`, then use that run"
        )


def _no_model_yet(files: RunFolder) -> None:
    """A run folder whose training saved no model: what its status says of it, and the fix."""
    status, reason = read_status(files.path), read_reason(files.path)
    if status not in ("running", "interrupted", "failed"):
        return  # not a run's status: "not a run folder", below
    why = f" ({reason})" if reason else ""
    resume = f"`taskfit train --resume {files.path}` carries on from its last finished epoch"
    if status == "failed" or not files.checkpoint.is_file():
        fix = "no epoch of it is kept: train it again"
    elif status == "running":
        fix = f"wait for it to finish; if its process is gone, {resume}"
    else:
        fix = resume
    raise DataError(
        f"{files.path}: holds no {files.model.name}; its training is {status}{why}; {fix}"
    )


def read_thresholds(files: RunFolder, plan: Plan) -> dict[str, float]:
    """Each binary head's threshold as training settled it (run.json): a head whose plan has
    one must find a number between 0 and 1 there, or its classes would silently be cut at 0.5."""
    asked = [h.name for h in plan.heads if h.threshold is not None]
    if not asked:
        return {}
    found = read_facts(files.path).get("thresholds")
    found = found if isinstance(found, dict) else {}
    # Param.check lets null through (a key may be unset); a kept threshold may not be
    bad = [n for n in asked if found.get(n) is None or THRESHOLD_RANGE.check(found[n])]
    if bad:
        raise DataError(
            f"{files.facts}: holds no threshold between 0 and 1 for {', '.join(bad)} (the spec "
            "sets data.threshold); it is damaged or not what taskfit wrote; train the run again"
        )
    return {name: float(found[name]) for name in asked}


def load_resolved(path: Path) -> LoadedSpec:
    """A run's spec.resolved.yaml, checked as any spec is; what is wrong with a damaged one is
    said on one line (taskfit wrote it whole, so one problem is enough to know)."""
    try:
        return load_spec(path)
    except SpecError as exc:
        if len(exc.problems) == 1:
            raise
        first = exc.problems[0]
        raise SpecError(
            f"{path}: is not the spec taskfit wrote ({len(exc.problems)} problems, the first: "
            f"{first.where}: {first.message}); it is damaged: train the run again"
        ) from None


def stored_plan(folder: Path, spec: Spec) -> Plan:
    """The plan the run was trained with: plan.json, or for a folder written before it (format
    1 or 2) the plan the resolved spec gives with this taskfit's table."""
    files = RunFolder(folder)
    if read_format(folder) >= PLAN_SINCE or files.plan.exists():
        plan = read_plan(files.plan)
        _check_plan_fits_spec(files, plan, _labels(spec))
        return plan
    return make_plan(spec, _labels(spec))


def _check_plan_fits_spec(files: RunFolder, plan: Plan, said: dict[str, Labels]) -> None:
    """plan.json's heads and spec.resolved.yaml's labels, both written by the run from one
    spec: a head, label column or class list that differs means one of them was edited."""
    listed = {name for name, labels in said.items() if labels.classes}  # a spec may not list them
    found = {h.name: (h.labels.columns, h.labels.classes * (h.name in listed)) for h in plan.heads}
    wanted = {name: (labels.columns, labels.classes) for name, labels in said.items()}
    if plan.multi or len(said) > 1:
        differ = sorted(n for n in found.keys() | wanted.keys() if found.get(n) != wanted.get(n))
    else:  # one head: its name is taskfit's own
        differ = [plan.heads[0].name] if [*found.values()] != [*wanted.values()] else []
    if differ:
        name = differ[0]
        columns, classes = found.get(name, ((), ()))
        raise DataError(
            f"{files.plan}: its head {name} has the label {', '.join(columns) or 'none'}"
            f"{f' and the classes {list(classes)}' if classes else ''}, which is not what "
            f"{files.spec.name} says; one of them was edited. Train the run again"
        )


def _labels(spec: Spec) -> dict[str, Labels]:
    """Each head's labels as the resolved spec records them (no data needed)."""
    found = {}
    for name, (task, said) in label_specs(spec).items():
        if not isinstance(said.label, str):
            found[name] = Labels("onehot", said.label, said.label, key=said.key)
        elif task == "regression":
            found[name] = Labels("real", (said.label,), key=said.key)
        else:
            classes = tuple(str(c) for c in said.classes or ())
            kind = "binary" if task == "binary" else "integer"
            found[name] = Labels(kind, (said.label,), classes, key=said.key)
    return found


def read_rows(
    run: Run, path: Path, need_label: bool, passed: Sequence[str] = ()
) -> tuple[Table, list[str]]:
    """The CSV, checked against the run's columns (check_rows), and the notes for the user
    (first: a run that did not complete, whose model is what it saved before it ended).
    `passed`: columns predict passes through (--keep), which no note calls ignored."""
    table = read_csv(path)
    notes = check_rows(run, table, need_label, path.name, passed)
    return table, [*ended_early(run), *notes]


def ended_early(run: Run) -> list[str]:
    """A note when the run's training did not complete (failed, interrupted), or none."""
    status = read_status(run.folder)
    if status not in ("failed", "interrupted"):
        return []
    reason = read_reason(run.folder)
    said = f" ({reason})" if reason else ""
    return [
        f"{run.folder.name}: training {status}{said}; its model is the one saved before it "
        "ended (taskfit train --resume, or a new run, gives a finished one)"
    ]


def check_rows(
    run: Run, table: Table, need_label: bool, source: str, passed: Sequence[str] = ()
) -> list[str]:
    """Rows (a CSV's, or a request's) checked against the run's columns; notes for the user
    (ignored extra columns, cells of a date column that are no date). `source` names where the
    rows came from; table.line_name says what locates a row there ("CSV line", "row").

    A missing feature column, a non-numeric or infinite cell in a numeric column, or (when
    `need_label`) a missing label column is an error naming the column and the row.
    """
    problems = Problems()
    features = (*run.numeric, *run.categorical)
    wanted = features + (run.label_columns if need_label else ())
    for column in wanted:
        if column not in table.columns:
            kind = "label" if column in run.label_columns else "input"
            problems.add(
                f"column {column}",
                f"is missing from {source}; the model needs this "
                f"{kind} column. Columns there: {', '.join(table.columns) or '(none)'}; the "
                f"model's columns: {', '.join(wanted)}",
            )
    problems.raise_if_any(DataError)
    for column in run.numeric:
        bad = not_finite(table.cells[column])
        if bad:
            cell = table.cells[column][bad[0]]
            problems.add(
                f"column {column}",
                f"is numeric in this model; {table.line_name} {table.lines[bad[0]]} has {cell!r}",
            )
    problems.raise_if_any(DataError)
    used = {*features, *run.label_columns, *passed}
    extra = [c for c in table.columns if c not in used]
    notes = [f"ignored columns the model does not use: {', '.join(extra)}"] if extra else []
    formats = read_facts(run.folder).get("date_formats", {}) if run.spec.data.dates else {}
    notes += [_not_dates(table, column, formats.get(column)) for column in run.spec.data.dates]
    return [n for n in notes if n]


def _not_dates(table: Table, column: str, trained: dict[str, Any] | None) -> str:
    """A note on the cells of a date column that are no date, or a date written otherwise
    than the training rows wrote theirs (`trained`: run.json's record of that; a run from
    before it has none): the model's calendar holds the days as written in training, so it
    reads each such cell as an unknown day, as it does an empty cell. "" when there is none."""
    form = DateFormat(trained["format"], tuple(trained["padded"])) if trained else None
    cells = table.cells[column]
    bad = [i for i, c in enumerate(cells) if not is_missing(c) and not _written(c, form)]
    if not bad:
        return ""
    some = "1 cell is" if len(bad) == 1 else f"{len(bad)} cells are"
    how = f" written as the training rows wrote theirs ({form.name})" if form else ""
    return (
        f"column {column}: {some} no date{how} ({table.line_name} {table.lines[bad[0]]}: "
        f"{cells[bad[0]]!r}); the model reads each as an unknown day, as it does an empty cell"
    )


def _written(cell: str, form: DateFormat | None) -> bool:
    """A date, and one the training format writes so (a calendar entry), when known."""
    if form is None:
        return is_date(cell)
    day = form.parse(cell)
    return day is not None and cell in form.write(day)
