"""The command line: parse, call the library, render. One handler maps errors to exit codes.

Imports stay light: TensorFlow loads only inside `train`, so --help, recommend, check and
datasets answer at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from taskfit import progress
from taskfit.cli.overrides import parse_set
from taskfit.errors import TaskfitError

app = typer.Typer(
    name="taskfit",
    help="A YAML task spec becomes the right Keras model: output layer, loss and metrics from one "
    "recommendation table, then trained and saved.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: formatting it with rich costs a tenth of a second
)

EXIT_DATA = 1
EXIT_INTERRUPTED = 130


class Task(StrEnum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


class LabelFormat(StrEnum):
    integer = "integer"
    onehot = "onehot"


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """User mistakes -> one stderr line each, exit 1; Ctrl-C -> exit 130. Bugs keep tracebacks."""
    try:
        yield
    except TaskfitError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def say(kind: str, lines: list[str] | tuple[str, ...]) -> None:
    """Warnings and notes go to stderr, one line each: stdout stays the result."""
    for line in lines:
        typer.echo(f"{kind}: {line}", err=True)


def _print_version(asked: bool) -> None:
    if asked:
        from taskfit import __version__

        typer.echo(f"taskfit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="print taskfit's version and exit",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """The options before a command."""


SpecArg = Annotated[Path, typer.Argument(help="the task spec (YAML)", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a spec key: --set training.epochs=3 (repeatable)"),
]


@app.command()
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
) -> None:
    """Print the table row for a task (or for a CSV's label): output layer, losses, metrics."""
    from taskfit.cli.render import dump, print_table, recommendation_table
    from taskfit.recipe.table import recommendation

    if (task is None) == (data is None) or (data is not None) != bool(label):
        _usage("give --task, or --data with --label")
    if labels is not None and task != Task.multiclass:
        _usage(f"--labels applies to multiclass only; {task or 'an inferred task'} has one format")
    if write is not None and data is None:
        _usage("--write goes with --data and --label")
    chosen = {"": task.value} if task else {}
    if data is not None and label:
        with handled():
            chosen = _infer_and_write(data, label, write)
    rows = {name: recommendation(t, labels.value if labels else None) for name, t in chosen.items()}
    if fmt == Format.table:
        for row in rows.values():
            print_table(recommendation_table(row))
    elif len(rows) == 1:
        typer.echo(dump(next(iter(rows.values())), fmt.value), nl=False)
    else:  # several labels: one row per head, keyed by label column
        typer.echo(dump({"heads": rows}, fmt.value), nl=False)


def _infer_and_write(data: Path, labels: list[str], write: Path | None) -> dict[str, str]:
    """Label column -> its inferred task (the reasons on stderr); with `write`, a starter spec."""
    from taskfit.data.csvtable import read_csv
    from taskfit.data.infer import infer_task, starter_spec
    from taskfit.runfolder.files import save_text

    table = read_csv(data)
    tasks = {}
    for label in labels:
        task, why = infer_task(table, label)
        typer.echo(f"{label}: {why}", err=True)
        tasks[label] = task
    if write is not None:
        if write.exists():
            raise TaskfitError(f"--write {write}: exists already; choose another path")
        save_text(write, starter_spec(tasks, data, write), "--write")
        typer.echo(f"wrote {write}; train it with: taskfit train {write}", err=True)
    return tasks


def _usage(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
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


@app.command()
def train(
    spec: Annotated[
        Path | None, typer.Argument(help="the task spec (YAML)", show_default=False)
    ] = None,
    overrides: SetOpt = None,
    output: Annotated[Path, typer.Option(help="folder the run folders go in")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    smoke: Annotated[
        bool,
        typer.Option(help="CI smoke run: one epoch on a small slice, save, reload, compare"),
    ] = False,
    baseline_single: Annotated[
        bool,
        typer.Option(help="heads: also train each head alone (same budget) and compare"),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="a run folder that stopped: carry on from its last finished epoch"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="data-parallel on N processes of this machine (needs JAX)"),
    ] = None,
    coordinator: Annotated[
        str | None,
        typer.Option(help="several machines: HOST:PORT of process 0 (with the next two)"),
    ] = None,
    process_id: Annotated[int | None, typer.Option(min=0, help="this machine's process")] = None,
    num_processes: Annotated[int | None, typer.Option(min=1, help="processes in all")] = None,
) -> None:
    """Train, evaluate on the test split and write a run folder."""
    from taskfit.training.run import train as run_training

    if baseline_single and smoke:
        _usage("--baseline-single and --smoke do not go together")
    if (spec is None) == (resume is None):
        _usage("give a spec to train, or --resume RUN_DIR to carry on with a stopped run")
    if resume is not None and (overrides or smoke or baseline_single):
        _usage(
            "--resume carries on with the run's own spec: no --set, --smoke or --baseline-single"
        )
    cluster = _cluster(workers, coordinator, process_id, num_processes)
    if cluster is not None and (smoke or resume or baseline_single):
        _usage(
            "--workers and the cluster options train afresh: no --smoke, --resume or "
            "--baseline-single"
        )
    if cluster is not None and cluster.process_id:  # another machine's process 0 writes the run
        assert spec is not None
        from taskfit.training.distributed import serve

        with handled():
            serve(cluster, spec, parse_set(overrides))
        typer.echo(
            f"process {cluster.process_id} of {cluster.count} finished; process 0 writes the "
            "run folder",
            err=True,
        )
        return
    with handled(), progress.quiet(as_json or smoke):
        result = run_training(
            spec,
            parse_set(overrides),
            output,
            smoke=smoke,
            verbose=progress.keras_verbose(),
            baseline_single=baseline_single,
            resume=resume,
            cluster=cluster,
            deterministic=True,
        )
    say("warning", result.warnings)
    say("note", result.notes)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    if smoke:
        ok = bool(result.smoke and result.smoke["reload_matches"])
        typer.echo(
            f"smoke {'ok' if ok else 'FAILED'}: {result.train_rows} rows, 1 epoch, test "
            f"{metrics}, reload {'matches' if ok else 'differs'}, {result.seconds:.1f} s "
            f"({result.run_dir})",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps(result.document(), indent=2))
    elif not smoke:
        budget = result.checked.loaded.spec.training.epochs
        if result.best_epoch and result.epochs < budget:
            typer.echo(
                f"early stopping: {result.epochs} of {budget} epochs run; kept the weights of "
                f"epoch {result.best_epoch}",
                err=True,
            )
        elif result.best_epoch and result.best_epoch < result.epochs:
            typer.echo(
                f"all {budget} epochs run; kept the weights of epoch {result.best_epoch}, the best "
                "on the monitored quantity",
                err=True,
            )
        if result.refit:
            typer.echo(
                f"refit on train + validation: a fresh model, {result.refit['epochs']} epochs on "
                f"{result.refit['rows']} rows; the test metrics are its",
                err=True,
            )
        if result.rate_cuts:
            cuts = ", ".join(f"{rate:.3g} from epoch {epoch}" for epoch, rate in result.rate_cuts)
            typer.echo(f"learning rate cut on a plateau: {cuts}", err=True)
        if metrics:
            typer.echo(f"test {metrics}")
        if result.baseline_single is not None:
            from taskfit.cli.render import baseline_text

            typer.echo(baseline_text(result.baseline_single), nl=False)
        typer.echo(f"run folder: {result.run_dir}")
    if smoke and not (result.smoke and result.smoke["reload_matches"]):
        raise typer.Exit(EXIT_DATA)
    if result.status == "interrupted":
        typer.echo(f"interrupted: kept what was learned so far in {result.run_dir}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)


def _cluster(
    workers: int | None, coordinator: str | None, process_id: int | None, count: int | None
) -> Any:
    """--workers N, or all three of --coordinator, --process-id and --num-processes."""
    several = (coordinator, process_id, count)
    if workers is None and all(v is None for v in several):
        return None
    from taskfit.training.distributed import Cluster, local_cluster

    if workers is not None:
        if any(v is not None for v in several):
            _usage(
                "--workers runs every process here; the cluster options are for several machines"
            )
        return local_cluster(workers)
    if coordinator is None or process_id is None or count is None:
        _usage(
            "several machines need all of --coordinator HOST:PORT, --process-id and --num-processes"
        )
    assert coordinator is not None and process_id is not None and count is not None
    if process_id >= count:
        _usage(f"--process-id {process_id}: processes are numbered 0 to {count - 1}")
    return Cluster(coordinator, count, process_id)


RunArg = Annotated[Path, typer.Argument(help="a run folder written by `taskfit train`")]
CsvArg = Annotated[Path, typer.Argument(help="a CSV with the columns the model was trained on")]


@app.command()
def predict(
    run: RunArg,
    data: CsvArg,
    output: Annotated[
        Path | None, typer.Option(help="write the predictions here (CSV) instead of stdout")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Predict each row of a CSV: the class and its probabilities, or the value."""
    from taskfit.data.csvtable import csv_text
    from taskfit.inference.predict import predict as run_predict

    with handled(), progress.quiet(as_json):
        result = run_predict(run, data)
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


@app.command()
def evaluate(
    run: RunArg,
    data: CsvArg,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Test metrics of a run's model on any labelled CSV (the names metrics.json uses)."""
    from taskfit.cli.render import confusion_text
    from taskfit.inference.predict import evaluate as run_evaluate
    from taskfit.spec.spec import SINGLE_HEAD

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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
def tune(
    spec: SpecArg,
    trials: Annotated[int, typer.Option(min=1, help="how many settings to try")] = 10,
    overrides: SetOpt = None,
    output: Annotated[Path, typer.Option(help="folder the tune folder goes in")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Search the table's advice (optimizer, learning rate, schedule, width, dropout, loss) with
    KerasTuner, scoring each trial on the validation split; trial 1 is the spec as written.
    Writes trials.csv and best.yaml (train it with taskfit train)."""
    from taskfit.training.tune import tune as run_tune

    with handled(), progress.quiet(as_json):
        tuned = run_tune(spec, trials, parse_set(overrides), output, deterministic=True)
    if as_json:
        typer.echo(json.dumps(tuned.document(), indent=2))
        return
    from taskfit.cli.render import print_table, tune_table

    print_table(tune_table(tuned))
    best = tuned.folder / "best.yaml"
    typer.echo(f"best: trial {tuned.best.number}; train it with: taskfit train {best}")


class ExportFormat(StrEnum):
    savedmodel = "savedmodel"
    tflite = "tflite"
    onnx = "onnx"


@app.command()
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
) -> None:
    """Export a run's model, preprocessing included, for serving without taskfit: a TensorFlow
    SavedModel folder, a TFLite file or an ONNX file. Inputs: one per column (numbers float32,
    NaN = missing; categories strings, "" = missing), named as the column in lower case with
    other characters as "_". Outputs: "output", or one per head."""
    from taskfit.inference.export import export as run_export
    from taskfit.inference.export import input_names
    from taskfit.runfolder.opened import open_run

    with handled(), progress.step(f"exporting as {fmt.value}"):
        written = run_export(run, fmt.value, output)
        opened = open_run(run)
    names = input_names([*opened.numeric, *opened.categorical])
    renamed = {column: name for column, name in names.items() if column != name}
    if renamed:
        pairs = ", ".join(f"{column} -> {name}" for column, name in renamed.items())
        typer.echo(f"note: input names: {pairs}", err=True)
    typer.echo(f"exported {fmt.value}: {written}")


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: complete and check spec keys)."""
    from taskfit.spec.spec import spec_schema

    typer.echo(json.dumps(spec_schema(), indent=2))


def main() -> None:
    app()
