"""Compile, fit, evaluate, and write the run folder. The only module that drives Keras training.

Flow: check_spec (no TensorFlow) -> arrays -> build_model -> compile -> fit -> evaluate -> save.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taskfit import progress
from taskfit.arrays import (
    Feed,
    Inputs,
    Part,
    Splits,
    split,
    to_part,
)
from taskfit.checking import Checked, check_spec
from taskfit.columns import CATEGORICAL, NUMERIC
from taskfit.errors import SpecError, TaskfitError
from taskfit.keras_setup import import_keras
from taskfit.plan import Head, Plan, plan_summary
from taskfit.runfolder import (
    create_run_dir,
    read_json,
    read_reason,
    read_status,
    save_model,
    write_history,
    write_json,
    write_status,
    write_yaml,
)
from taskfit.table import higher_is_better

SMOKE_ROWS = 256  # a CI smoke run fits one epoch on at most this many training rows


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, float]
    history: dict[str, list[float]]
    model: Any  # keras.Model
    checked: Checked
    seconds: float
    fit_seconds: float
    train_rows: int
    smoke: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; set when early stopping kept an earlier epoch
    log_scaled: tuple[str, ...] = ()  # heavy-tailed numeric columns the model log1p-transforms
    baseline_single: dict[str, Any] | None = None  # head -> multi-task vs trained alone
    status: str = "completed"  # or "interrupted": Ctrl-C stopped it; the best weights were kept
    refit: dict[str, Any] | None = None  # training.refit: its epochs, rows and seconds

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def rate_cuts(self) -> list[tuple[int, float]]:
        """(the 1-based epoch it starts, the rate) for each cut of the rate on a plateau."""
        if self.checked.plan.schedule:  # a schedule moves the rate itself
            return []
        rates = self.history.get("learning_rate", [])
        return [(i + 2, new) for i, (old, new) in enumerate(itertools.pairwise(rates)) if new < old]

    @functools.cached_property
    def notes(self) -> list[str]:
        from taskfit.checking import notes

        found = notes(self.checked)
        if self.log_scaled:
            found.append(f"log1p before scaling (heavy-tailed): {', '.join(self.log_scaled)}")
        return found

    def document(self) -> dict[str, Any]:
        """What `train --json` prints."""
        doc = {
            "run_dir": str(self.run_dir),
            "task": "heads" if self.checked.plan.multi else self.checked.plan.head.task,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "train_rows": self.train_rows,
            "status": self.status,
            "metrics": self.metrics,
            "rows_without_label": len(self.checked.data.missing_rows),
        }
        if self.smoke is not None:
            doc["smoke"] = self.smoke
        if self.warnings:
            doc["warnings"] = self.warnings
        if self.notes:
            doc["notes"] = self.notes
        if self.baseline_single is not None:
            doc["baseline_single"] = self.baseline_single
        if self.refit is not None:
            doc["refit"] = self.refit
        return doc


def train(
    spec_path: str | Path | None,
    overrides: list[str] | None = None,
    output: str | Path = "runs",
    smoke: bool = False,
    verbose: int | str = "auto",
    baseline_single: bool = False,
    resume: str | Path | None = None,
    cluster: Any = None,
) -> RunResult:
    """Train the spec; `verbose` is Keras's (0 silent, 1 bar, 2 a line per epoch, on stderr);
    0 also keeps every other progress display off.
    `baseline_single`: also train each head alone with the same budget, to compare.
    `resume`: a run folder whose training stopped; it carries on from its last finished epoch,
    with its own resolved spec (`spec_path` and `overrides` must then be None).
    `cluster`: a distributed.Cluster; its processes fit the model data-parallel."""
    with progress.quiet(verbose == 0):
        return _train(
            spec_path, overrides, output, smoke, verbose, baseline_single, resume, cluster
        )


def _train(
    spec_path: str | Path | None,
    overrides: list[str] | None,
    output: str | Path,
    smoke: bool,
    verbose: int | str,
    baseline_single: bool,
    resume: str | Path | None,
    cluster: Any,
) -> RunResult:
    started = time.perf_counter()
    if resume is not None:
        spec_path = resumable_spec(Path(resume))
    assert spec_path is not None
    # every user mistake surfaces before TensorFlow
    checked = check_spec(spec_path, overrides, workers=cluster is not None)
    spec, plan = checked.loaded.spec, checked.plan
    if baseline_single and not plan.multi:
        raise SpecError(
            "--baseline-single: compares each head with the multi-task model; this "
            "spec has one task (give `heads`)"
        )
    if cluster is not None:
        from taskfit.distributed import check_distributable

        check_distributable(checked, cluster)
    with progress.step("loading TensorFlow"):
        keras = import_keras()
    seed_everything(keras, spec.training.seed)
    splits = make_splits(checked, smoke)
    if resume is not None:
        run_dir = Path(resume)
    else:
        name = spec.name or Path(spec_path).stem
        run_dir = create_run_dir(Path(output), name + ("-smoke" if smoke else ""))
        # the resolved spec first: a run that fails or is stopped still says what it was
        write_yaml(
            run_dir / "spec.resolved.yaml",
            checked.resolved(),
            header="".join(f"# {line}\n" for line in plan_summary(plan).splitlines()),
        )
    write_status(run_dir, "running")
    saved = False  # model.keras and metrics.json written: the run's result exists
    warnings = list(plan.warnings)
    try:
        if cluster is None:
            fitted = fit_plan(keras, checked, plan, splits, smoke, verbose, run_dir)
        else:
            from taskfit.distributed import fit_with_workers

            with progress.step(f"training on {cluster.count} processes"):
                fitted = fit_with_workers(
                    keras, checked, splits, cluster, Path(spec_path), overrides or [], run_dir
                )
        columns: dict[str, Sequence[float | str]] = {**fitted.history, **fitted.active_losses}
        write_history(run_dir / "history.csv", columns)
        if fitted.diverged:
            raise TrainingError(diverged_message(fitted.diverged, plan))
        if plan.refit and not smoke and not fitted.interrupted:
            fitted, kept_first = refit(keras, checked, splits, fitted, verbose)
            warnings += [kept_first] if kept_first else []
        model = fitted.models.named
        metrics = test_metrics(fitted, plan, splits)
        if not splits.sizes()["test"]:
            warnings.append(
                "the test split is empty, so there are no test metrics and no plots; raise "
                "data.test_fraction"
            )
        metrics |= {f"{head}_weight": w for head, w in fitted.final_weights.items()}
        baseline = None
        if baseline_single and not fitted.interrupted:
            from taskfit.baseline import single_head_baselines

            baseline = single_head_baselines(keras, checked, splits, fitted, metrics, verbose)
        save_model(model, run_dir / "model.keras")
        write_json(run_dir / "metrics.json", metrics)
        saved = True
        write_json(run_dir / "run.json", run_facts(keras, run_dir, fitted, splits, started))
        if not smoke:
            warnings += write_run_plots(run_dir, plan, fitted, model, splits.test_sample())
        if baseline is not None:
            write_json(run_dir / "baseline_single.json", baseline)
        smoke_doc = (
            _reload_matches(keras, model, run_dir, splits.test_sample().x) if smoke else None
        )
        reason = fitted.stop_reason
        if baseline_single and baseline is None and not fitted.interrupted:
            reason = "Ctrl-C while training the single-head baselines; the model is complete"
        status = "interrupted" if reason else "completed"
        if status == "completed":  # nothing left to resume
            shutil.rmtree(run_dir / "backup", ignore_errors=True)
        write_status(run_dir, status, reason)
    except TrainingError as exc:
        write_status(run_dir, "failed", str(exc))
        raise
    except KeyboardInterrupt:
        cut = "after saving the model and metrics" if saved else "before saving a model"
        write_status(run_dir, "interrupted", f"interrupted twice: stopped {cut}")
        raise
    except BaseException as exc:
        write_status(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return RunResult(
        run_dir,
        metrics,
        fitted.history,
        model,
        checked,
        time.perf_counter() - started,
        fitted.seconds,
        splits.sizes()["train"],
        smoke_doc,
        warnings,
        fitted.best_epoch,
        fitted.models.log_scaled,
        baseline,
        status,
        fitted.refit,
    )


@dataclass
class Fitted:
    models: Any  # taskfit.model.Models
    trained: Any  # the keras.Model that was compiled and fit (models.fit, or a wrapper)
    history: dict[str, list[float]]
    active_losses: dict[str, list[str]]  # history.csv columns: the loss in force per epoch
    final_weights: dict[str, float]  # heads: each head's effective loss weight at the end
    best_epoch: int | None  # 1-based; set when early stopping restored an earlier epoch
    seconds: float  # how long model.fit took
    interrupted: bool = False  # Ctrl-C stopped fit; the best weights so far were restored
    diverged: tuple[int, int, float] | None = None  # (epoch, batch, loss) where it went NaN/inf
    processes: int = 1  # how many processes fitted it (train --workers)
    refit: dict[str, Any] | None = None  # the model was refitted: its epochs, rows and seconds

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def stop_reason(self) -> str:
        if not self.interrupted:
            return ""
        kept = f"; kept the weights of epoch {self.best_epoch}" if self.best_epoch else ""
        return f"Ctrl-C after {self.epochs} epoch(s){kept}"


def make_splits(checked: Checked, smoke: bool = False) -> Any:
    """The train, validation and test parts: arrays.Splits in memory, or a stream.StreamSplits
    (data.streaming) that reads the CSV again whenever a part is needed."""
    spec, plan = checked.loaded.spec, checked.plan
    splits: Any
    if checked.data.streamed is not None:
        from taskfit.streamsplits import open_stream

        splits = open_stream(checked, SMOKE_ROWS if smoke else None)
    else:
        labelled = to_part(checked.data, plan)
        splits = split(labelled, spec.data, spec.training.seed, stratify=plan.stratify_by)
    return splits.head(SMOKE_ROWS) if smoke else splits


@dataclass(frozen=True)
class Replay:
    """How a refit fits: `epochs` with no validation split, each at the learning rate the
    first fit logged for it (none logged: the optimizer's own rate or schedule)."""

    epochs: int
    rates: list[float]


def refit(
    keras: Any, checked: Checked, splits: Splits, first: Fitted, verbose: int | str
) -> tuple[Fitted, str]:
    """training.refit: a fresh model (its preprocessing fitted again) on the training and
    validation rows together, for the epochs the first fit kept, at their learning rates. The
    first fit's history, best epoch and curves stay the run's; the refit's model is its result.
    Stopped or diverged, the first fit's model is kept: (it, a warning saying so)."""
    plan = checked.plan
    epochs = first.best_epoch or first.epochs
    rates = [] if plan.schedule else first.history.get("learning_rate", [])[:epochs]
    whole = splits.joined()
    seed_everything(keras, checked.loaded.spec.training.seed)
    with progress.step(f"refitting on train + validation for {epochs} epochs"):
        again = fit_plan(keras, checked, plan, whole, False, verbose, replay=Replay(epochs, rates))
    kept = "kept the model fitted on the training split alone"
    if again.interrupted:
        return first, f"Ctrl-C during the refit on train + validation; {kept}"
    if again.diverged:
        epoch, _, loss = again.diverged
        return first, f"the refit's loss became {loss} in epoch {epoch}; {kept}"
    done = {"epochs": epochs, "rows": whole.sizes()["train"], "seconds": round(again.seconds, 3)}
    return dataclasses.replace(
        first,
        models=again.models,
        trained=again.trained,
        seconds=first.seconds + again.seconds,
        refit=done,
    ), ""


def test_metrics(fitted: Fitted, plan: Plan, splits: Splits) -> dict[str, float]:
    """Keras's evaluate on the test split, under the names it logs; none for an empty split
    (Keras would warn that its "input ran out of data" and return nothing to report)."""
    if splits.sizes()["test"] == 0:
        return {}
    evaluated = fitted.trained
    if fitted.models.members is not None:
        # the loss of the members' mean, as `taskfit evaluate` scores the saved model (training
        # logs the mean of the members' losses)
        import keras

        from taskfit.optim import make_metrics

        evaluated = keras.Model(fitted.models.fit.input, fitted.models.fit.output)
        evaluated.compile(loss=fitted.trained.loss, metrics=make_metrics(plan.head))
    with progress.keras_on_stderr() as verbose:
        metrics = evaluated.evaluate(
            **splits.test_data(fitted.models, plan), verbose=verbose, return_dict=True
        )
    return {k: float(v) for k, v in metrics.items()}


def resumable_spec(run_dir: Path) -> Path:
    """The resolved spec of a run folder that can go on; an error saying why not otherwise."""
    from taskfit.resume import has_checkpoint

    spec = run_dir / "spec.resolved.yaml"
    if not spec.is_file():
        raise TaskfitError(
            f"--resume {run_dir}: not a run folder (no spec.resolved.yaml); give a folder that "
            "`taskfit train` wrote"
        )
    status = read_status(run_dir)
    if status == "completed":
        raise TaskfitError(f"--resume {run_dir}: this run completed; there is nothing to resume")
    if status == "failed" and "training diverged" in read_reason(run_dir):
        raise TaskfitError(
            f"--resume {run_dir}: this run diverged (see its status.json); carrying on would "
            "diverge again. Fix the spec (a lower learning rate, say) and train it afresh"
        )
    if not has_checkpoint(run_dir):
        raise TaskfitError(
            f"--resume {run_dir}: no epoch finished before it stopped, so there is nothing to "
            f"carry on from; train again with: taskfit train {spec}"
        )
    return spec


class TrainingError(TaskfitError):
    """Training itself went wrong in a way the user can fix (a loss that is not a number)."""


def seed_everything(keras: Any, seed: int) -> None:
    """Python, NumPy and TensorFlow seeded, and TensorFlow's ops made deterministic: the same
    spec and seed give the same weights and metrics on this machine."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def diverged_message(where: tuple[int, int, float], plan: Plan) -> str:
    epoch, batch, loss = where
    rate = plan.schedule.params.get("initial_learning_rate") if plan.schedule else None
    rate = rate if rate is not None else plan.optimizer.params.get("learning_rate")
    return (
        f"training diverged: the loss became {loss} in epoch {epoch} (batch {batch}); stopped "
        f"there. Likely causes: a learning rate too high ({plan.optimizer.name} at {rate}; try "
        "10x lower, or the default), a regression target or input on a huge scale, or "
        "extreme values in the data."
    )


def head_std(plan: Plan, head: Head, targets: dict[str, tuple[float, float]]) -> float | None:
    """A regression head among several: its training target's std, which its loss divides by."""
    if not plan.multi or head.task != "regression":
        return None
    return targets[head.name][1]


def compile_plan(keras: Any, checked: Checked, plan: Plan, splits: Feed) -> tuple[Any, ...]:
    """(models, the compiled training model, the heads' weighting callback or None, the losses
    by head): the model built on the training part's statistics, ready to fit."""
    from taskfit.model import build_from_stats
    from taskfit.optim import make_loss, make_metrics, make_optimizer

    view = checked.data
    gaps = frozenset(c.name for c in view.columns if c.kind == NUMERIC and c.missing)
    numeric, categorical = view.of_kind(NUMERIC), view.of_kind(CATEGORICAL)
    stats = splits.feature_stats(plan, numeric, categorical, gaps)
    models = build_from_stats(plan, numeric, categorical, stats)
    losses = {
        head.name: make_loss(head, target_std=head_std(plan, head, stats.targets))
        for head in plan.heads
    }
    # Training compiles its own view of the layers: the saved model (which holds `models.fit`)
    # then carries no compile state, so it loads without taskfit's losses.
    training = keras.Model(models.fit.input, models.fit.output, name="training")
    if plan.multi:
        from taskfit.weighting import compile_heads

        trained, weights = compile_heads(training, plan, make_optimizer(plan), losses)
        return models, trained, weights, losses
    if models.members is not None:
        from taskfit.ensemble import PackedEnsemble

        training = PackedEnsemble(models.members, name="training")
    head = plan.head
    training.compile(
        optimizer=make_optimizer(plan), loss=losses[head.name], metrics=make_metrics(head)
    )
    return models, training, None, losses


def fit_plan(
    keras: Any,
    checked: Checked,
    plan: Plan,
    splits: Feed,
    smoke: bool,
    verbose: int | str,
    run_dir: Path | None = None,
    replay: Replay | None = None,
) -> Fitted:
    """Build, compile and fit `plan` (the checked spec's, or one head of it alone). With
    `run_dir`, every finished epoch is kept there (history.csv and a checkpoint), and a
    checkpoint already there is where training resumes. `replay`: a refit (see `refit`)."""
    from taskfit.guards import StopOnInterrupt, StopOnNonFinite
    from taskfit.losses import LossSchedule, MixedLoss, last_switch
    from taskfit.optim import LearningRateLog
    from taskfit.resume import (
        BACKUP,
        EpochCheckpoint,
        EpochLog,
        ResumableEarlyStopping,
        ResumablePlateau,
        read_history,
    )

    spec = checked.loaded.spec
    models, trained, weights, losses = compile_plan(keras, checked, plan, splits)
    stopping = None if smoke or replay else spec.training.early_stopping
    plateau = stopper = None
    if stopping:
        # Both watch one quantity from the last loss switch. Keras guesses its direction from
        # the compiled metrics, which exist only after the first batch: too late for replaying
        # history on --resume, which runs at the first epoch's start.
        watch: dict[str, Any] = {
            "monitor": stopping.monitor,
            "mode": "max" if higher_is_better(stopping.monitor) else "min",
            "start_from_epoch": last_switch(plan.heads),
        }
        cut = stopping.reduce_lr
        if cut and not plan.schedule:  # a schedule owns the rate: Keras refuses to cut it
            plateau = ResumablePlateau(
                factor=cut.factor, patience=cut.patience, min_lr=cut.min_lr, **watch
            )
        stopper = ResumableEarlyStopping(
            run_dir / BACKUP if run_dir else None,
            patience=stopping.patience,
            min_delta=stopping.min_delta,
            restore_best_weights=stopping.restore_best_weights,
            **watch,
        )
    # the rate in force each epoch, when a schedule or a plateau cut moves it; before EpochLog
    callbacks: list[Any] = [LearningRateLog()] if plan.schedule or plateau else []
    if weights is not None:
        callbacks.append(weights)
    mixed = {
        h.name: (h, losses[h.name]) for h in plan.heads if isinstance(losses[h.name], MixedLoss)
    }
    schedule = LossSchedule(mixed) if mixed else None
    if schedule:
        callbacks.append(schedule)
    if plateau:
        callbacks.append(plateau)
    if stopper:
        callbacks.append(stopper)
    if replay and replay.rates:
        rates = replay.rates
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, _: rates[epoch]))
    nonfinite, interrupt = StopOnNonFinite(), StopOnInterrupt()
    callbacks += [nonfinite, interrupt, *splits.fit_callbacks()]
    active = {}
    if schedule:
        active = {
            ("active_loss" if not plan.multi else f"{name}_active_loss"): described
            for name, described in schedule.active.items()
        }
    log = None
    if run_dir is not None and not smoke:
        resumables: list[Any] = [c for c in (stopper, plateau, weights) if c is not None]
        previous = read_history(run_dir / "history.csv")
        log = EpochLog(run_dir / "history.csv", previous, active, resumables)
        # last: the checkpoint is written once the epoch's history and best weights are
        backup = EpochCheckpoint(
            run_dir / BACKUP, lambda: interrupt.requested or nonfinite.found is not None
        )
        callbacks += [log, backup]
    if run_dir is not None and spec.training.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    class_weight = None
    setting = None if plan.multi else plan.head.class_weight
    if setting is not None:
        counts = splits.class_counts(plan.head.name, max(plan.head.output_units, 2))
        class_weight = class_weights(setting, counts)
    if not trained.built:  # the uncertainty wrapper is built by a first call (checkpoints need it)
        trained(splits.first_rows(models))
    fit_started = time.perf_counter()
    with progress.keras_on_stderr():  # results alone on stdout; progress on stderr
        fitted = trained.fit(
            **splits.fit_data(models, plan, spec.training.batch_size),
            validation_data=splits.validation_data(models, plan),
            epochs=1 if smoke else replay.epochs if replay else spec.training.epochs,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=verbose,
        )
    seconds = time.perf_counter() - fit_started
    history: dict[str, list[float]] = {
        k: [float(v) for v in vs] for k, vs in fitted.history.items()
    }
    if log is not None:  # with the epochs of an earlier attempt, when this one resumed
        columns = log.history()
        history = {k: [float(v) for v in vs] for k, vs in columns.items() if k not in active}
        active = {k: [str(v) for v in columns[k]] for k in active}
    # Keras's EarlyStopping restores the best epoch's weights when training ends, however it ends
    kept = stopper and stopper.restore_best_weights and stopper.best_weights is not None
    return Fitted(
        models,
        trained,
        history,
        active,
        weights.final if weights else {},
        stopper.best_epoch + 1 if stopper and kept else None,
        seconds,
        interrupt.requested,
        nonfinite.found,
    )


def run_facts(
    keras: Any, run_dir: Path, fitted: Fitted, splits: Splits, started: float
) -> dict[str, Any]:
    """run.json: how long the run took, on how many rows, with which versions (for `report`).
    A resumed run adds its time to the earlier attempts'."""
    import tensorflow as tf

    from taskfit import __version__

    before = read_json(run_dir / "run.json") or {}
    return {
        "epochs": fitted.epochs,
        "best_epoch": fitted.best_epoch,
        "seconds": round(before.get("seconds", 0) + time.perf_counter() - started, 3),
        "fit_seconds": round(before.get("fit_seconds", 0) + fitted.seconds, 3),
        "rows": splits.sizes(),
        "processes": fitted.processes,
        **({"refit": fitted.refit} if fitted.refit else {}),
        "versions": {
            "taskfit": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        },
    }


def write_run_plots(run_dir: Path, plan: Plan, fitted: Fitted, model: Any, test: Part) -> list[str]:
    """The learning curves, and each head's plots on the test split (taskfit.plots). The model
    is saved by now: a problem drawing becomes a warning, not a failed run."""
    if len(test) == 0:  # train has said so, with the missing metrics
        return []
    try:
        _draw(run_dir, plan, fitted, model, test)
    except Exception as exc:  # the pictures are extra; the result they picture is saved
        return [f"plots: could not be drawn ({type(exc).__name__}: {exc}); the model is saved"]
    return []


def _draw(run_dir: Path, plan: Plan, fitted: Fitted, model: Any, test: Part) -> None:
    from taskfit.model import named_inputs
    from taskfit.plots import TestResult, write_plots

    with progress.keras_on_stderr() as verbose:
        output = model.predict(named_inputs(test.x), verbose=verbose)
    by_head = output if plan.multi else {plan.head.name: output}
    tests = [TestResult(h, test.y[h.name], np.asarray(by_head[h.name])) for h in plan.heads]
    with progress.step("drawing plots"):
        write_plots(run_dir, plan, fitted.history, fitted.active_losses, fitted.best_epoch, tests)


def class_weights(setting: str | dict[int, float], counts: np.ndarray) -> dict[int, float]:
    """Keras's class_weight: "balanced" weighs each class by n / (k * its count in training),
    from the training rows per class."""
    if isinstance(setting, dict):
        return setting
    present = counts > 0
    n = int(counts.sum())
    return {int(c): float(n / (present.sum() * counts[c])) for c in np.flatnonzero(present)}


def _reload_matches(keras: Any, model: Any, run_dir: Path, x: Inputs) -> dict[str, Any]:
    """The saved .keras file must predict what the in-memory model predicts."""
    from taskfit.model import named_inputs

    reloaded = keras.saving.load_model(run_dir / "model.keras")
    before = _flat(model.predict(named_inputs(x), verbose=0))
    after = _flat(reloaded.predict(named_inputs(x), verbose=0))
    diff = float(np.max(np.abs(before - after))) if before.size else 0.0
    return {
        "reload_matches": bool(np.allclose(before, after, atol=1e-6)),
        "max_abs_diff": diff,
        "rows": len(before),
    }


def _flat(output: Any) -> np.ndarray:
    """A model's predictions as one matrix (heads side by side, in name order)."""
    if isinstance(output, dict):
        return np.concatenate([np.asarray(output[k]) for k in sorted(output)], axis=1)
    return np.asarray(output)
