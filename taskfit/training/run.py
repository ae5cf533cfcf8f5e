"""A whole run: check the spec, make the run folder, fit (here or on several processes), refit,
evaluate on the test split, save, draw, and map every way it can end to the folder's status.

Flow: check_spec (no TensorFlow) -> splits -> fit.fit_plan -> refit -> test metrics -> save.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit import progress
from taskfit.data.columns import identifiers, memorisable
from taskfit.errors import SpecError, TaskfitError, TrainingError
from taskfit.feed.splits import Splits
from taskfit.model.keras_setup import check_backend, import_keras
from taskfit.plan.checking import Checked, check_spec
from taskfit.plan.outputs import logged
from taskfit.plan.plan import Plan, plan_summary
from taskfit.runfolder.files import (
    create_run_dir,
    read_record,
    save_model,
    write_history,
    write_json,
    write_status,
    write_yaml,
)
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import stored_plan
from taskfit.runfolder.planfile import write_plan
from taskfit.runfolder.resumable import resumable_spec
from taskfit.runfolder.status import Saved, status_follows
from taskfit.spec.spec import Overrides, SpecSource, spec_stem
from taskfit.training.fit import (
    Fitted,
    deterministic_ops,
    fit_plan,
    make_splits,
    seed_everything,
    test_metrics,
)
from taskfit.training.outputs import reload_matches, run_facts, write_run_plots
from taskfit.training.refit import refit
from taskfit.training.result import RunResult


def train(
    spec_path: SpecSource | None,
    overrides: Overrides | None = None,
    output: str | Path = "runs",
    *,
    smoke: bool = False,
    verbose: int | str = "auto",
    baseline_single: bool = False,
    resume: str | Path | None = None,
    cluster: Any = None,
    deterministic: bool = False,
) -> RunResult:
    """Train the spec; `verbose` is Keras's (0 silent, 1 bar, 2 a line per epoch, on stderr);
    0 also keeps every other progress display off.
    `deterministic`: TensorFlow's op determinism on for this process (fit.deterministic_ops).
    `baseline_single`: also train each head alone with the same budget, to compare.
    `resume`: a run folder whose training stopped; it carries on from its last finished epoch,
    with its own resolved spec (`spec_path` and `overrides` must then be None).
    `cluster`: a distributed.Cluster; its processes fit the model data-parallel."""
    options = RunOptions(
        Path(output),
        smoke,
        verbose,
        baseline_single,
        Path(resume) if resume else None,
        cluster,
        deterministic,
    )
    from taskfit.errors import signals_interrupt

    with progress.quiet(verbose == 0), signals_interrupt():
        return _train(spec_path, overrides or {}, options)


@dataclass(frozen=True)
class RunOptions:
    """How a run goes beyond its spec (train's keyword arguments)."""

    output: Path
    smoke: bool
    verbose: int | str
    baseline_single: bool
    resume: Path | None
    cluster: Any  # a distributed.Cluster, or None
    deterministic: bool = False


def _train(spec_path: SpecSource | None, overrides: Overrides, options: RunOptions) -> RunResult:
    started = time.perf_counter()
    check_backend()  # before the run folder: a caller's Keras on JAX cannot save this model
    if options.resume is not None:
        spec_path = resumable_spec(options.resume, workers=options.cluster is not None)
    assert spec_path is not None
    checked = _checked(spec_path, overrides, options)  # every mistake before TensorFlow
    if options.resume is not None:  # on with the plan it started with, whatever the table says
        checked = dataclasses.replace(
            checked, plan=stored_plan(options.resume, checked.loaded.spec)
        )
    splits = make_splits(checked, options.smoke)
    run_dir = options.resume or _new_folder(checked, spec_path, options)
    before = read_record(RunFolder(run_dir).status) if options.resume else None
    with (
        status_follows(run_dir, before) as saved,
        _workers(options, (spec_path, overrides), run_dir) as finished,
    ):
        # inside: a SIGTERM that lands just after "running" is written still ends as interrupted
        write_status(run_dir, "running")
        # after the workers start: they start up while this process loads TensorFlow
        with progress.step("loading TensorFlow"):
            keras = import_keras()
        if options.deterministic:
            deterministic_ops()
        seed_everything(keras, checked.loaded.spec.training.seed)
        fitted = _fit(keras, checked, splits, run_dir, finished, options)
        result = _finish(keras, checked, splits, fitted, run_dir, options, started, saved)
    tracking = checked.loaded.spec.training.tracking
    if tracking is not None and tracking.mlflow and not options.smoke:
        from taskfit.tracking.mlflow_log import log_run

        with progress.step("logging the run to MLflow"):
            try:
                result.tracked = log_run(run_dir, tracking)
            except TaskfitError as exc:  # the run folder is whole: a warning, not a failure
                result.warnings += [str(p) for p in exc.problems]
    return result


def _workers(
    options: RunOptions, source: tuple[SpecSource, Overrides], run_dir: Path
) -> contextlib.AbstractContextManager[Any]:
    """The cluster's processes on this machine, started (they read the spec from `source`);
    nothing for a run in this process."""
    if options.cluster is None:
        return contextlib.nullcontext()
    from taskfit.training.distributed import workers_running

    return workers_running(options.cluster, *source, run_dir, smoke=options.smoke)


def _checked(spec_path: SpecSource, overrides: Overrides, options: RunOptions) -> Checked:
    checked = check_spec(spec_path, overrides, workers=options.cluster is not None)
    if options.baseline_single and not checked.plan.multi:
        raise SpecError(
            "--baseline-single: compares each head with the multi-task model; this "
            "spec has one task (give `heads`)"
        )
    if options.cluster is not None:
        from taskfit.training.distributed import check_distributable

        check_distributable(checked, options.cluster)
    return checked


def _new_folder(checked: Checked, spec_path: SpecSource, options: RunOptions) -> Path:
    """The run's own folder, the resolved spec first: a run that fails or is stopped still says
    what it was."""
    name = checked.loaded.spec.name or spec_stem(spec_path)
    run_dir = create_run_dir(options.output, name + ("-smoke" if options.smoke else ""))
    files = RunFolder(run_dir)
    write_yaml(
        files.spec,
        checked.resolved(),
        header="".join(f"# {line}\n" for line in plan_summary(checked.plan).splitlines()),
    )
    write_plan(files.plan, checked.plan)
    return run_dir


def _fit(
    keras: Any,
    checked: Checked,
    splits: Splits,
    run_dir: Path,
    finished: Any,
    options: RunOptions,
) -> Fitted:
    """The fit in this process, or on the cluster's (`finished` waits for them; see
    distributed.workers_running); its history written, a diverged fit an error."""
    plan, cluster = checked.plan, options.cluster
    if cluster is None:
        fitted = fit_plan(
            keras,
            checked,
            plan,
            splits,
            smoke=options.smoke,
            verbose=options.verbose,
            run_dir=run_dir,
        )
    else:
        from taskfit.training.distributed import fit_with_workers

        with progress.step(f"training on {cluster.count} processes"):
            fitted = fit_with_workers(keras, checked, splits, finished, run_dir)
    columns: dict[str, Sequence[float | str]] = {**fitted.history, **fitted.active_losses}
    write_history(RunFolder(run_dir).history, columns)
    if fitted.diverged:
        raise TrainingError(diverged_message(fitted.diverged, plan))
    return fitted


def _finish(
    keras: Any,
    checked: Checked,
    splits: Splits,
    fitted: Fitted,
    run_dir: Path,
    options: RunOptions,
    started: float,
    saved: Saved,
) -> RunResult:
    """Refit, test metrics, the baselines, the saved model and every file after it, status."""
    plan, warnings = checked.plan, [*checked.plan.warnings, *fitted.warnings]
    from taskfit.training.calibration import as_given, calibration_metrics, choose

    found = None  # calibration: chosen on rows the model never saw; a refit trains on them
    refitting = plan.refit and fitted.processes == 1 and not fitted.interrupted
    if refitting and not options.smoke:
        # several processes refit in the workers, as they fitted
        found = choose(fitted, plan, splits)
        found.rows = found.rows and f"{found.rows}, by the first fit (before the refit)"
        fitted, kept_first = refit(keras, checked, splits, fitted, options.verbose)
        warnings += [kept_first] if kept_first else []
    if not fitted.interrupted:
        from taskfit.report.diagnosis import curves_say

        suspects = memorisable(checked.data.columns)
        warnings += curves_say(checked.loaded.spec, fitted.history, suspects)
    from taskfit.model.build import with_temperatures
    from taskfit.training.heldout import estimate_outputs
    from taskfit.training.smearing import smear

    fitted.smearing = smear(fitted, plan, splits)
    if found is None:
        found = as_given(plan) if options.smoke else choose(fitted, plan, splits)
    uncalibrated = fitted.models
    if found.temperatures:
        fitted.models = with_temperatures(fitted.models, plan, found.temperatures)
    fitted.temperatures, fitted.thresholds = found.temperatures, found.thresholds
    fitted.calibrated_on = found.rows
    warnings += found.warnings
    metrics = test_metrics(fitted, plan, splits)
    if splits.estimate is not None and not options.smoke:
        rows, raw = estimate_outputs(uncalibrated, plan, splits)
        metrics |= calibration_metrics(plan, found, rows.y, raw)
    if splits.estimate is None:
        warnings.append(
            "the test split is empty, so there are no test metrics and no plots; raise "
            "data.test_fraction"
        )
    metrics |= {logged(h, "weight", multi=True): w for h, w in fitted.final_weights.items()}
    baseline = None
    if options.baseline_single and not fitted.interrupted:
        from taskfit.training.baseline import single_head_baselines

        baseline = single_head_baselines(keras, checked, splits, fitted, metrics, options.verbose)
    warnings += _save(
        keras, checked, splits, fitted, run_dir, metrics, baseline, started, saved,
        smoke=options.smoke,
    )  # fmt: skip
    smoke = None
    if options.smoke:
        test = splits.held_out_sample().named(fitted.models.numeric)
        smoke = reload_matches(keras, fitted.models.named, run_dir, test)
    lost = options.baseline_single and baseline is None
    return RunResult(
        run_dir=run_dir,
        metrics=metrics,
        history=fitted.history,
        model=fitted.models.named,
        checked=checked,
        seconds=time.perf_counter() - started,
        fit_seconds=fitted.seconds,
        train_rows=splits.sizes()["train"],
        smoke=smoke,
        warnings=warnings,
        best_epoch=fitted.best_epoch,
        log_scaled=fitted.models.log_scaled,
        baseline_single=baseline,
        status=_end_status(run_dir, fitted, baseline_lost=lost),
        refit=fitted.refit,
        smearing=fitted.smearing,
        estimate=splits.estimate,
        stopped_by=fitted.stopped_by,
    )


def _save(
    keras: Any,
    checked: Checked,
    splits: Splits,
    fitted: Fitted,
    run_dir: Path,
    metrics: dict[str, float],
    baseline: dict[str, Any] | None,
    started: float,
    saved: Saved,
    *,
    smoke: bool,
) -> list[str]:
    """The run's result into its folder, the model and metrics first (from then on the run has
    a result, whatever happens after); the plots' warnings, if any (a --smoke run draws none)."""
    files = RunFolder(run_dir)
    save_model(fitted.models.named, files.model)
    write_json(files.metrics, metrics)
    saved.done = True
    suspects = memorisable(checked.data.columns)
    ids = identifiers(checked.data.columns)
    write_json(files.facts, run_facts(keras, run_dir, fitted, splits, started, suspects, ids))
    if baseline is not None:
        write_json(files.baseline, baseline)
    if smoke:
        return []
    return write_run_plots(run_dir, checked.plan, fitted, splits)


def _end_status(run_dir: Path, fitted: Fitted, *, baseline_lost: bool) -> str:
    """completed, or interrupted (Ctrl-C during the fit or the baselines), written."""
    reason = fitted.stop_reason
    if baseline_lost and not fitted.interrupted:
        reason = "Ctrl-C while training the single-head baselines; the model is complete"
    status = "interrupted" if reason else "completed"
    if status == "completed":  # nothing left to resume
        shutil.rmtree(RunFolder(run_dir).backup, ignore_errors=True)
    write_status(run_dir, status, reason)
    return status


def diverged_message(where: tuple[int, int, float], plan: Plan) -> str:
    epoch, batch, loss = where
    at = f"batch {batch}" if batch else "at its end"
    rate = f"{plan.optimizer.name} at {plan.optimizer.params.get('learning_rate')}"
    if plan.schedule:  # the schedule sets the rate, whatever the optimizer's says
        rate = f"the schedule {plan.schedule.name} with {plan.schedule.params}"
    return (
        f"training diverged: the loss became {loss} in epoch {epoch} ({at}); stopped there. "
        f"Likely causes: a learning rate too high ({rate}; try 10x lower, or the default), "
        "a regression target or input on a huge scale, or extreme values in the data."
    )
