"""The commands that train: train (here, on several processes, or resumed) and tune."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from taskfit import progress
from taskfit.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_SMOKE,
    EXIT_TERMINATED,
    SetOpt,
    SpecArg,
    handled,
    say,
    usage,
)
from taskfit.cli.overrides import parse_set


# Over 60 lines with its signature, which is typer's declaration of the command's twelve options
# (where the help text lives); the body is about 35.
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
    mlflow: Annotated[
        str | None,
        typer.Option(help="log the run to this MLflow tracking URI (training.tracking.mlflow)"),
    ] = None,
) -> None:
    """Train, score on the test split (a bagged small table: out-of-fold) and write a run folder."""
    from taskfit.training.run import train as run_training

    if mlflow is not None:
        if resume is not None:
            usage("--mlflow goes with a spec; a resumed run keeps its own (training.tracking)")
        overrides = [*(overrides or []), f"training.tracking.mlflow={mlflow}"]
    machines = (workers, coordinator, process_id, num_processes)
    cluster = _flags(
        spec, overrides, smoke=smoke, baseline=baseline_single, resume=resume, machines=machines
    )
    if cluster is not None and cluster.process_id:  # another machine's process 0 writes the run
        assert spec is not None
        from taskfit.training.distributed import serve

        with handled():
            serve(cluster, spec, parse_set(overrides), smoke=smoke)
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
            verbose=progress.fit_verbose(),
            baseline_single=baseline_single,
            resume=resume,
            cluster=cluster,
            deterministic=True,
        )
    say("warning", result.warnings)
    say("note", result.notes)
    _tell(result, smoke=smoke, as_json=as_json)
    if smoke and not (result.smoke and result.smoke["reload_matches"]):
        raise typer.Exit(EXIT_SMOKE)
    if result.status == "interrupted":
        by = f" ({result.stopped_by})" if result.stopped_by else ""
        typer.echo(f"interrupted{by}: kept what was learned so far in {result.run_dir}", err=True)
        raise typer.Exit(EXIT_TERMINATED if result.stopped_by == "SIGTERM" else EXIT_INTERRUPTED)


def _flags(
    spec: Path | None,
    overrides: list[str] | None,
    *,
    smoke: bool,
    baseline: bool,
    resume: Path | None,
    machines: tuple[int | None, str | None, int | None, int | None],
) -> Any:
    """The flags that do not go together are a usage error; the cluster they name, or None."""
    if baseline and smoke:
        usage("--baseline-single and --smoke do not go together")
    if (spec is None) == (resume is None):
        usage("give a spec to train, or --resume RUN_DIR to carry on with a stopped run")
    if resume is not None and (overrides or smoke or baseline):
        usage("--resume carries on with the run's own spec: no --set, --smoke or --baseline-single")
    cluster = _cluster(*machines)
    if cluster is not None and cluster.process_id is not None and resume:
        usage(
            "--resume goes on with --workers on this machine: the other machines of a cluster "
            "have no checkpoint to start from, so a cluster run trains afresh"
        )
    return cluster


def _tell(result: Any, *, smoke: bool, as_json: bool) -> None:
    """The result: one JSON document, or a few lines (the metrics and folder on stdout, how
    training ended on stderr); a smoke run's one line on stderr."""
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    if smoke:
        ok = bool(result.smoke and result.smoke["reload_matches"])
        typer.echo(
            f"smoke {'ok' if ok else 'FAILED'}: {result.train_rows} rows, 1 epoch, "
            f"{result.estimate} {metrics}, reload {'matches' if ok else 'differs'}, "
            f"{result.seconds:.1f} s ({result.run_dir})",
            err=True,
        )
    if as_json:
        typer.echo(json.dumps(result.document(), indent=2))
    elif not smoke:
        budget = result.checked.loaded.spec.training.epochs
        if result.best_epoch and result.epochs < budget:
            why = f"stopped by {result.stopped_by}" if result.stopped_by else "early stopping"
            typer.echo(
                f"{why}: {result.epochs} of {budget} epochs run; kept the weights of "
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
        plan = result.checked.plan
        if plan.bagging:
            typer.echo(
                f"bagged: {result.train_rows} rows in {plan.members} folds, each member trained "
                "on all but its own; the val_ figures are every row scored by the member that "
                "never saw it",
                err=True,
            )
        if result.rate_cuts:
            cuts = ", ".join(f"{rate:.3g} from epoch {epoch}" for epoch, rate in result.rate_cuts)
            typer.echo(f"learning rate cut on a plateau: {cuts}", err=True)
        for head in result.checked.plan.heads:
            if head.target_transform != "none":
                label = head.labels.columns[0]
                factor = result.smearing.get(head.name)
                smeared = f"; predictions x {factor:.4g} for the bias of exp" if factor else ""
                typer.echo(
                    f"{label} learned as its {head.target_transform}: the loss is on that scale, "
                    f"the other metrics in {label}'s units{smeared}",
                    err=True,
                )
        if metrics:
            typer.echo(f"{result.estimate} {metrics}")
        if result.baseline_single is not None:
            from taskfit.cli.render import baseline_text

            typer.echo(baseline_text(result.baseline_single), nl=False)
        if result.tracked is not None:
            tracking = result.checked.loaded.spec.training.tracking
            typer.echo(f"logged to MLflow run {result.tracked} at {tracking.mlflow}", err=True)
        typer.echo(f"run folder: {result.run_dir}")


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
            usage("--workers runs every process here; the cluster options are for several machines")
        return local_cluster(workers)
    if coordinator is None or process_id is None or count is None:
        usage(
            "several machines need all of --coordinator HOST:PORT, --process-id and --num-processes"
        )
    assert coordinator is not None and process_id is not None and count is not None
    if process_id >= count:
        usage(f"--process-id {process_id}: processes are numbered 0 to {count - 1}")
    _check_address(coordinator)
    return Cluster(coordinator, count, process_id)


def _check_address(coordinator: str) -> None:
    """--coordinator is HOST:PORT, checked here: JAX took `nohost` for an IndexError, port -1 for
    a crash and port 99999 for a wait with no end, each after the run folder was made."""
    host, colon, port = coordinator.rpartition(":")  # [::1]:1234, an IPv6 host, keeps its colons
    plain = re.fullmatch(r"\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+", host)  # one name, or [IPv6]
    if colon and plain and re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535:
        return
    usage(
        f"--coordinator {coordinator!r}: expected HOST:PORT, process 0's host name or address "
        "and a port from 1 to 65535, e.g. 10.0.0.1:1234"
    )


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
    from taskfit.runfolder.layout import TuneFolder

    print_table(tune_table(tuned))
    best = TuneFolder(tuned.folder).best
    typer.echo(f"best: trial {tuned.best.number}; train it with: taskfit train {best}")
