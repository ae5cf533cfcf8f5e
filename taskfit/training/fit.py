"""One fit: build the model on the training part's statistics, compile it, assemble the
callbacks and run Keras's `fit`; then the test metrics. `run` drives a whole run around it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskfit import progress
from taskfit.feed.splits import Splits, open_splits
from taskfit.model.build import Models
from taskfit.plan.checking import Checked
from taskfit.plan.plan import Plan
from taskfit.training import feeding

if TYPE_CHECKING:
    from taskfit.training.callbacks import FitCallbacks

SMOKE_ROWS = 256  # a CI smoke run fits one epoch on at most this many training rows


@dataclass
class Fitted:
    models: Models
    trained: Any  # the keras.Model that was compiled and fit (models.fit, or a wrapper)
    history: dict[str, list[float]]
    active_losses: dict[str, list[str]]  # history.csv columns: the loss in force per epoch
    final_weights: dict[str, float]  # heads: each head's effective loss weight at the end
    best_epoch: int | None  # 1-based; set when early stopping restored an earlier epoch
    seconds: float  # how long model.fit took
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped fit; the best weights were restored
    diverged: tuple[int, int, float] | None = None  # (epoch, batch, loss) where it went NaN/inf
    processes: int = 1  # how many processes fitted it (train --workers)
    refit: dict[str, Any] | None = None  # the model was refitted: its epochs, rows and seconds
    warnings: list[str] = field(default_factory=list)  # for the run's (a refit that was cut)
    smearing: dict[str, float] = field(default_factory=dict)  # log-scale head -> its factor
    stopped_by: str = ""  # what interrupted it: "Ctrl-C" or "SIGTERM"
    temperatures: dict[str, float] = field(default_factory=dict)  # calibrated head -> its T
    thresholds: dict[str, float] = field(default_factory=dict)  # binary head -> its cut
    calibrated_on: str = ""  # the rows that chose the temperatures, or why there were none

    @property
    def epochs(self) -> int:
        return len(next(iter(self.history.values()), []))

    @property
    def stop_reason(self) -> str:
        if not self.interrupted:
            return ""
        kept = f"; kept the weights of epoch {self.best_epoch}" if self.best_epoch else ""
        return f"{self.stopped_by or 'Ctrl-C'} after {self.epochs} epoch(s){kept}"


def make_splits(checked: Checked, smoke: bool = False, processes: int = 1) -> Splits:
    """The train, validation and test parts of the checked data (in memory or streamed), at
    most SMOKE_ROWS rows each for a --smoke run."""
    enough = SMOKE_ROWS if smoke else None
    return open_splits(checked.data, checked.plan, checked.loaded.spec, enough, processes)


@dataclass(frozen=True)
class Replay:
    """How a refit fits: `epochs` with no validation split, each at the learning rate the
    first fit logged for it (none logged: the optimizer's own rate or schedule)."""

    epochs: int
    rates: list[float]


# A test split of at most this many evaluation batches is scored eagerly: tracing a test step for
# the saved model's view, used once, took most of test_metrics' 0.56 s on HMDA's 476 test rows
# (cProfile), against 0.13 s eagerly; the metrics were the same to the last digit.
EAGER_TEST_STEPS = 4


def test_metrics(fitted: Fitted, plan: Plan, splits: Splits) -> dict[str, float]:
    """Keras's evaluate on the rows of splits.estimate, under the names it logs: the test
    split; without one, a bagged run's training rows, each scored by the member held out of it
    (the weights as saved, after smearing); none for neither (Keras would warn that its "input
    ran out of data" and return nothing to report)."""
    if splits.estimate is None:
        return {}
    if splits.estimate == "out-of-fold":
        x, y, weights = feeding.validation_data(fitted.models, plan, splits)
        with progress.keras_on_stderr() as verbose:
            metrics = fitted.trained.evaluate(
                x, y, sample_weight=weights, batch_size=feeding.evaluation_batch(),
                verbose=verbose, return_dict=True,
            )  # fmt: skip
        return {k: float(v) for k, v in metrics.items()}
    evaluated = fitted.trained
    if fitted.models.members is not None or fitted.temperatures:
        steps = feeding.steps_of(splits.sizes()["test"], feeding.evaluation_batch())
        evaluated = _as_saved(fitted, plan, eagerly=steps <= EAGER_TEST_STEPS)
    with progress.keras_on_stderr() as verbose:
        metrics = evaluated.evaluate(
            **feeding.test_data(fitted.models, plan, splits), verbose=verbose, return_dict=True
        )
    return {k: float(v) for k, v in metrics.items()}


def _as_saved(fitted: Fitted, plan: Plan, *, eagerly: bool) -> Any:
    """The saved model's view, compiled as `taskfit evaluate` scores it: the loss of the
    members' mean (training logs the mean of the members' losses), at the heads' temperatures,
    each head's loss weighed by its final weight (learned weights without the uncertainty
    method's log-variance term)."""
    import keras

    from taskfit.model.optim import compiled_metrics
    from taskfit.plan.outputs import keras_form

    trained = fitted.trained
    losses = getattr(trained, "head_losses", None)  # the uncertainty wrapper's, by head
    weights = {h.name: fitted.final_weights.get(h.name, h.weight) for h in plan.heads}
    evaluated = keras.Model(fitted.models.fit.input, fitted.models.fit.output)
    evaluated.compile(
        loss=trained.loss if losses is None else keras_form(plan.heads, losses),
        loss_weights=keras_form(plan.heads, weights) if plan.multi else None,
        metrics=compiled_metrics(plan.heads),
        run_eagerly=trained.run_eagerly or eagerly,
    )
    return evaluated


def deterministic_ops() -> None:
    """TensorFlow's op determinism on: the same spec and seed then give the same weights. It
    holds for the whole process, and TensorFlow's public API cannot switch it off again, so
    only a caller who asks gets it (train's and tune's `deterministic`; the CLI asks)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def seed_everything(keras: Any, seed: int) -> None:
    """Python, NumPy and TensorFlow seeded (Keras's one call for it). With TensorFlow's op
    determinism on (run.train's `deterministic`), the same spec and seed give the same weights
    and metrics on this machine."""
    keras.utils.set_random_seed(seed)


def compile_plan(keras: Any, plan: Plan, splits: Splits) -> tuple[Any, ...]:
    """(models, the compiled training model, the heads' weighting callback or None, the losses
    by head): the model built on the training part's statistics, ready to fit."""
    from taskfit.model.build import build_from_stats
    from taskfit.model.losses import hold_loss_state
    from taskfit.model.optim import make_losses, make_optimizer
    from taskfit.model.sharing import training_view
    from taskfit.model.weighting import compile_heads

    stats = splits.stats
    columns = splits.columns
    models = build_from_stats(plan, columns.numeric, columns.categorical, stats)
    losses = make_losses(plan, stats.targets)
    # Training compiles its own view of the layers: the saved model (which holds `models.fit`)
    # then carries no compile state, so it loads without taskfit's losses.
    training = keras.Model(models.fit.input, models.fit.output, name="training")
    if models.members is not None:
        from taskfit.model.ensemble import PackedEnsemble

        training = PackedEnsemble(models.members, name="training")
    training = training_view(training, models.fit, plan)
    steps = feeding.steps_of(splits.sizes()["train"], plan.batch_size)
    trained, weights = compile_heads(
        training, plan, make_optimizer(plan), losses, steps_per_execution(steps)
    )
    hold_loss_state(trained, losses, weights.variables if weights else ())
    return models, trained, weights, losses


def steps_per_execution(steps: int) -> int:
    """Steps a compiled call for an epoch of `steps`: the largest divisor of `steps` up to the
    table's steps_per_execution, so that every epoch ends where a call ends (an in-memory
    table's rows come as one stream for the whole fit, which a call would otherwise read on
    into the next epoch)."""
    from taskfit.recipe.table import load_table

    most = load_table().fitting.steps_per_execution
    return max(d for d in range(1, min(most, steps) + 1) if steps % d == 0)


def fit_plan(
    keras: Any,
    checked: Checked,
    plan: Plan,
    splits: Splits,
    *,
    smoke: bool = False,
    verbose: int | str = 0,
    run_dir: Path | None = None,
    writer: bool = True,
    replay: Replay | None = None,
) -> Fitted:
    """Build, compile and fit `plan` (the checked spec's, or one head of it alone). With
    `run_dir`, every finished epoch is kept there (history.csv and a checkpoint; by the
    `writer`, one process of several), and a checkpoint already there is where training
    resumes. `replay`: a refit (see `refit`)."""
    from taskfit.model.sharing import GATE_ROWS, sharing_log
    from taskfit.training.callbacks import make_callbacks

    spec = checked.loaded.spec
    models, trained, weights, losses = compile_plan(keras, plan, splits)
    sharing = sharing_log(models.fit, plan, lambda: models.pack(splits.first().head(GATE_ROWS)))
    # A smoke run's few steps cost less eagerly: tracing the train and test steps took 4-6 s
    # on breast cancer (2 cores), one eager step 0.2 s (see _batch_size).
    trained.run_eagerly = smoke
    batch_size = _batch_size(plan, splits, smoke)
    trained.steps_per_execution = steps_per_execution(
        feeding.steps_of(splits.sizes()["train"], batch_size)
    )
    made = make_callbacks(
        keras,
        plan=plan,
        spec=spec,
        losses=losses,
        weights=weights,
        sharing=sharing,
        feed=feeding.fit_callbacks(splits),
        run_dir=run_dir,
        smoke=smoke,
        rates=replay.rates if replay else None,
        writer=writer,
        validated=bool(splits.folds or splits.sizes()["validation"]),
    )
    if not trained.built:  # the uncertainty wrapper is built by a first call (checkpoints need it)
        trained(feeding.first_rows(models, splits))
    _build_compile_state(trained, models, plan, splits)
    fit_started = time.perf_counter()
    with progress.keras_on_stderr():  # results alone on stdout; progress on stderr
        fitted = trained.fit(
            **feeding.fit_data(models, plan, splits, batch_size, _class_weight(plan, splits)),
            validation_data=feeding.validation_feed(models, plan, splits),
            validation_batch_size=feeding.evaluation_batch(),
            epochs=_epochs(spec, made, run_dir, smoke, replay),
            callbacks=made.callbacks,
            verbose=verbose,
        )
    seconds = time.perf_counter() - fit_started
    if made.log is not None:
        from taskfit.training.resume import finish_without_epochs

        finish_without_epochs(made.log, made.stopper, trained)
    history, active = _history(fitted.history, made)
    # Keras's EarlyStopping restores the best epoch's weights when training ends, however it ends
    stopper = made.stopper
    kept = stopper and stopper.restore_best_weights and stopper.best_weights is not None
    return Fitted(
        models=models,
        trained=trained,
        history=history,
        active_losses=active,
        final_weights=weights.final if weights else {},
        best_epoch=stopper.best_epoch + 1 if stopper and kept else None,
        seconds=seconds,
        interrupted=made.interrupt.requested,
        stopped_by=made.interrupt.signal,
        diverged=made.nonfinite.found,
    )


def _epochs(
    spec: Any, made: FitCallbacks, run_dir: Path | None, smoke: bool, replay: Replay | None
) -> int:
    """Keras fit's `epochs`: one for a smoke run, a refit's own, else training.epochs (less
    on `--resume` of a run early stopping had ended)."""
    if smoke:
        return 1
    if replay:
        return replay.epochs
    if made.log is None or run_dir is None:
        return int(spec.training.epochs)
    from taskfit.runfolder.layout import RunFolder
    from taskfit.training.resume import epochs_to_fit

    checkpoint = RunFolder(run_dir).checkpoint
    return epochs_to_fit(checkpoint, made.log, made.stopper, spec.training.epochs)


def _build_compile_state(trained: Any, models: Any, plan: Plan, splits: Splits) -> None:
    """The loss, metric and optimizer variables made before fit. On TensorFlow without a
    distribution strategy Keras makes them inside the first trace of the train step, and a
    tf.function that creates variables is traced twice: on penguins (344 rows) the second trace
    was 2-3 s of a 20 s fit. Keras's own build step (JAX runs it on every fit) is private; on a
    Keras without it the step is traced twice again, nothing else changes."""
    build = getattr(trained, "_symbolic_build", None)
    if build is not None and not trained.run_eagerly:
        first = splits.first()
        build(data_batch=(models.pack(first), feeding.fit_targets(plan, first.y)))


def _batch_size(plan: Plan, splits: Splits, smoke: bool) -> int:
    """The plan's batch size; a smoke run's rows in one step (an eager step costs about the
    same on 32 rows as on 256), except across processes, whose global batch must split."""
    if smoke and splits.shard is None:
        return max(plan.batch_size, SMOKE_ROWS)
    return plan.batch_size


def _history(
    logged: dict[str, list[Any]], made: FitCallbacks
) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """(every epoch's logged numbers, the loss in force per epoch): this fit's, or with a
    resumed run the earlier attempts' epochs too (history.csv as the epoch log kept it)."""
    if made.log is None:
        return {k: [float(v) for v in vs] for k, vs in logged.items()}, made.active
    columns = made.log.history()
    history = {k: [float(v) for v in vs] for k, vs in columns.items() if k not in made.active}
    return history, {k: [str(v) for v in columns[k]] for k in made.active}


def _class_weight(plan: Plan, splits: Splits) -> dict[int, float] | None:
    """training.class_weight (one task only), from the training rows per class."""
    setting = None if plan.multi else plan.head.class_weight
    if setting is None:
        return None
    return class_weights(setting, splits.class_counts(plan.head.name))


def class_weights(setting: str | dict[int, float], counts: np.ndarray) -> dict[int, float]:
    """Keras's class_weight: "balanced" weighs each class by n / (k * its count in training),
    from the training rows per class."""
    if isinstance(setting, dict):
        return setting
    present = counts > 0
    n = int(counts.sum())
    return {int(c): float(n / (present.sum() * counts[c])) for c in np.flatnonzero(present)}
