"""The commands on a trained run: predict, evaluate, compare, report, export."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from taskfit import progress
from taskfit.cli.common import CsvArg, RunArg, handled, say


def predict(
    run: RunArg,
    data: CsvArg,
    output: Annotated[
        Path | None, typer.Option(help="write the predictions here (CSV) instead of stdout")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="let --output replace a file that exists")
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(help="pass this column of the CSV through to the output (repeatable)"),
    ] = None,
) -> None:
    """Predict each row of a CSV: the class and its probabilities, or the value. Identifier
    columns (left out of training) and --keep's columns come first, so rows join back."""
    from taskfit.data.csvtable import csv_text
    from taskfit.inference.predict import predict as run_predict
    from taskfit.runfolder.files import check_output

    with handled(), progress.quiet(as_json):
        if output is not None:  # before anything is computed
            check_output(output, "--output", force, reads=(data,))
        result = run_predict(run, data, keep or ())
    say("note", result.notes)
    if as_json:
        typer.echo(json.dumps({"predictions": result.records()}, indent=2))
        return
    text = csv_text(result.columns, result.rows)
    if output is None:
        typer.echo(text, nl=False)
        return
    with handled():
        from taskfit.runfolder.files import save_text

        save_text(output, text, "--output")
    typer.echo(f"wrote {len(result.rows)} predictions to {output}", err=True)


def explain(
    run: RunArg,
    data: Annotated[
        Path | None,
        typer.Argument(help="labelled rows the model never trained on (default: its test split)"),
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, max=100, help="shuffles per column")] = 5,
    row: Annotated[
        int | None, typer.Option(min=0, help="explain this row (0-based) of the rows instead")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Which columns the model relies on: permutation importance per input column (and its
    spread over repeats); --row N: each column's contribution to one row's prediction."""
    from taskfit.cli.render import contributions_table, importance_tables, print_table
    from taskfit.inference.explain import explain_row, explain_run

    with handled(), progress.quiet(as_json):
        if row is not None:
            found = explain_row(run, data, row)
            if as_json:
                typer.echo(json.dumps({"row": row, "heads": [vars(f) for f in found]}, indent=2))
            else:
                for table in contributions_table(found):
                    print_table(table)
            return
        explained, written = explain_run(run, data, repeats)
    if as_json:
        typer.echo(json.dumps(explained.document(), indent=2))
        return
    for table in importance_tables(explained):
        print_table(table)
    typer.echo(f"plots: {', '.join(str(p) for p in written)}", err=True)


def evaluate(
    run: RunArg,
    data: CsvArg,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Test metrics of a run's model on any labelled CSV (the names metrics.json uses)."""
    from taskfit.cli.render import confusion_text
    from taskfit.inference.predict import evaluate as run_evaluate
    from taskfit.spec.keys import SINGLE_HEAD

    with handled(), progress.quiet(as_json):
        result = run_evaluate(run, data)
    say("note", result.notes)
    if result.left_out:
        typer.echo(f"note: {result.left_out} rows have no label: left out", err=True)
    if as_json:
        confusion: Any = result.confusion
        if set(confusion) <= {SINGLE_HEAD}:  # one task: the matrix itself (or null)
            confusion = confusion.get(SINGLE_HEAD)
        doc = {"rows": result.rows, "metrics": result.metrics, "confusion": confusion}
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(
        ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()) + f" ({result.rows} rows)"
    )
    for head, confusion in result.confusion.items():
        if len(result.confusion) > 1 or head != SINGLE_HEAD:
            typer.echo(f"\n{head}:")
        typer.echo(confusion_text(confusion), nl=False)


def compare(
    runs: Annotated[list[Path], typer.Argument(help="run folders written by `taskfit train`")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Several runs side by side: key settings and test metrics, the best of each marked (*)."""
    from taskfit.report.compare import compare_runs

    with handled():
        result = compare_runs(runs)
    if as_json:
        typer.echo(json.dumps(result.document(), indent=2))
        return
    from taskfit.cli.render import compare_table, print_table

    print_table(compare_table(result))


def report(run: RunArg) -> None:
    """Summarise a run (spec, the table's choices, test metrics, epochs, time) and write
    report.html in its folder: the same with every plot, one file that opens offline."""
    from taskfit.cli.render import print_table, report_tables
    from taskfit.report.report import read_report, write_html

    with handled():
        summary = read_report(run)
        for table in report_tables(summary):
            print_table(table)
        path = write_html(summary)
    typer.echo(f"report: {path}")


class ExportFormat(StrEnum):
    savedmodel = "savedmodel"
    tflite = "tflite"
    onnx = "onnx"


def export(
    run: RunArg,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", help='onnx needs: pip install "taskfit[onnx]"'),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            help="where to write; default RUN_DIR/export/ (savedmodel/, model.tflite, "
            "model.onnx). An earlier export there is replaced"
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="let --output replace an earlier export there")
    ] = False,
) -> None:
    """Export a run's model, preprocessing included, for serving without taskfit: a TensorFlow
    SavedModel folder, a TFLite file or an ONNX file. Inputs: one per column (numbers float32,
    NaN = missing; categories strings, "" = missing), named as the column in lower case with
    other characters as "_". Outputs: "output", or one per head."""
    from taskfit.inference.export import export as run_export
    from taskfit.inference.export import input_names
    from taskfit.runfolder.opened import open_run

    with handled(), progress.step(f"exporting as {fmt.value}"):
        written = run_export(run, fmt.value, output, force)
        opened = open_run(run)
    names = input_names([*opened.numeric, *opened.categorical])
    renamed = {column: name for column, name in names.items() if column != name}
    if renamed:
        pairs = ", ".join(f"{column} -> {name}" for column, name in renamed.items())
        typer.echo(f"note: input names: {pairs}", err=True)
    typer.echo(f"exported {fmt.value}: {written}")
