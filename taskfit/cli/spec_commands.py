"""The commands before training: recommend, check, datasets, schema. None loads TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from taskfit import progress
from taskfit.cli.common import (
    Format,
    LabelFormat,
    SetOpt,
    SpecArg,
    Task,
    handled,
    one_line,
    say,
    usage,
)
from taskfit.cli.overrides import parse_set
from taskfit.errors import TaskfitError


def recommend(
    task: Annotated[Task | None, typer.Option(help="the kind of label")] = None,
    labels: Annotated[
        LabelFormat | None,
        typer.Option(help="multiclass only: integer class ids or one-hot columns"),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="a CSV: infer the task from its label")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(help="with --data: the label column; repeat it for a spec with heads"),
    ] = None,
    write: Annotated[
        Path | None, typer.Option(help="with --data: write a starter spec that trains as is")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="how to print the row")] = Format.table,
    heads: Annotated[
        bool, typer.Option("--heads", help="also the weightings and sharings for several heads")
    ] = False,
) -> None:
    """Print the table row for a task (or for a CSV's label): output layer, losses, metrics."""
    from taskfit.cli.render import dump, print_table, recommendation_table, terminal_width
    from taskfit.recipe.table import recommendation

    if (task is None) == (data is None) or (data is not None) != bool(label):
        usage("give --task, or --data with --label")
    if labels is not None and task != Task.multiclass:
        usage(f"--labels applies to multiclass only; {task or 'an inferred task'} has one format")
    if write is not None and data is None:
        usage("--write goes with --data and --label")
    chosen = {"": task.value} if task else {}
    if data is not None and label:
        with handled():
            chosen = _infer_and_write(data, label, write, to_stdout=fmt == Format.table)
    rows = {name: recommendation(t, labels.value if labels else None) for name, t in chosen.items()}
    if fmt == Format.table:
        for row in rows.values():
            shown = recommendation_table(row, len(rows) > 1 or heads, terminal_width())
            print_table(shown)
    elif len(rows) == 1:
        typer.echo(dump(next(iter(rows.values())), fmt.value), nl=False)
    else:  # several labels: one row per head, keyed by label column
        typer.echo(dump({"heads": rows}, fmt.value), nl=False)


def _infer_and_write(
    data: Path, labels: list[str], write: Path | None, to_stdout: bool
) -> dict[str, str]:
    """Label column -> its inferred task, with what was found said (on stdout before the table;
    on stderr when stdout holds one JSON or YAML document); with `write`, a starter spec."""
    from taskfit.data.csvtable import read_csv
    from taskfit.data.infer import infer_task, starter_spec
    from taskfit.runfolder.files import check_output, save_text

    table = read_csv(data)
    tasks, found = {}, []
    for label in labels:
        task, why = infer_task(table, label)
        found.append(f"{label}: {why}")
        tasks[label] = task
    if write is not None:
        if write.exists() or write.is_symlink():  # a link to nothing is still the user's
            raise TaskfitError(f"--write {write}: exists already; choose another path")
        check_output(write, "--write", force=False)  # not into a run folder
        save_text(write, starter_spec(tasks, data, write), "--write")
    for line in found:  # once nothing can fail: a refused command prints nothing on stdout
        typer.echo(one_line(line), err=not to_stdout)
    if write is not None:
        typer.echo(f"wrote {write}; train it with: taskfit train {write}", err=True)
    return tasks


def check(
    spec: SpecArg,
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Validate the spec and the data against the table, without training. All problems at once."""
    from taskfit.cli.render import check_document, check_text
    from taskfit.plan.checking import check_spec, notes

    with handled(), progress.quiet(as_json):
        checked = check_spec(spec, parse_set(overrides))
    say("warning", checked.plan.warnings)
    say("note", notes(checked))
    if as_json:
        typer.echo(json.dumps(check_document(checked), indent=2))
    else:
        typer.echo(f"ok: {spec}\n{check_text(checked)}", nl=False)


def datasets(
    fmt: Annotated[Format, typer.Option("--format", help="how to print the list")] = Format.table,
) -> None:
    """List the bundled datasets with their task and shape."""
    from taskfit.data.bundled import bundled_datasets

    rows = [
        {
            "name": d.name,
            "task": d.task,
            "label": d.label,
            "rows": d.rows,
            "features": d.features,
            "classes": d.classes,
        }
        for d in bundled_datasets().values()
    ]
    if fmt == Format.table:
        from taskfit.cli.render import print_table, rows_table

        print_table(rows_table("bundled datasets", list(rows[0]), [list(r.values()) for r in rows]))
    else:
        from taskfit.cli.render import dump

        typer.echo(dump(rows, fmt.value), nl=False)


def schema() -> None:
    """Print the spec's JSON Schema (for editors: complete and check spec keys)."""
    from taskfit.spec.spec import spec_schema

    typer.echo(json.dumps(spec_schema(), indent=2))
