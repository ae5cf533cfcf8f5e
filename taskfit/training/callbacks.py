"""The Keras callbacks of one fit, built in one place from the plan and the fit's options, in the
order they must run: the rate logged before the epoch's row is written, the early-stopping state
before the checkpoint, the checkpoint last."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskfit.plan.outputs import logged
from taskfit.recipe.table import higher_is_better
from taskfit.runfolder.layout import TEXT_COLUMN, RunFolder

if TYPE_CHECKING:
    from taskfit.plan.plan import Plan
    from taskfit.spec.keys import Spec
    from taskfit.training.guards import StopOnInterrupt, StopOnNonFinite
    from taskfit.training.resume import EpochLog, ResumableEarlyStopping, ResumablePlateau


@dataclass
class FitCallbacks:
    callbacks: list[Any]  # for Keras's fit, in order
    interrupt: StopOnInterrupt
    nonfinite: StopOnNonFinite
    stopper: ResumableEarlyStopping | None = None
    log: EpochLog | None = None  # history.csv, when the fit keeps its epochs in a run folder
    # history.csv's text columns: the loss in force each epoch, when a loss changes
    active: dict[str, list[str]] = field(default_factory=dict)


def make_callbacks(
    keras: Any,
    *,
    plan: Plan,
    spec: Spec,
    losses: dict[str, Any],
    weights: Any,
    feed: list[Any],
    sharing: Any = None,
    run_dir: Path | None,
    smoke: bool,
    rates: list[float] | None,
    writer: bool = True,
    validated: bool = True,
) -> FitCallbacks:
    """`weights`: the heads' weighting callback (or None); `sharing`: the log of what the heads'
    sharing does (taskfit.model.sharing.SharingLog, or None); `feed`: the data's own callbacks;
    `rates`: a refit's learning rate per epoch (a refit neither stops early nor checkpoints);
    `writer`: this process writes the run folder's epochs (one process of several only reads
    them, to resume); `validated`: the fit has validation rows (without, nothing watches a
    val_ quantity: train's note says so, and Keras would warn each epoch)."""
    from taskfit.model.losses import LossSchedule, MixedLoss
    from taskfit.model.optim import LearningRateLog
    from taskfit.training.guards import StopOnInterrupt, StopOnNonFinite

    watching = spec.training.early_stopping
    unwatched = watching is not None and watching.monitor.startswith("val_") and not validated
    off = smoke or rates is not None or unwatched
    plateau, stopper = _stopping(plan, spec, run_dir, off=off, writer=writer)
    # the rate in force each epoch, when a schedule or a plateau cut moves it; before EpochLog
    callbacks: list[Any] = [LearningRateLog()] if plan.schedule or plateau else []
    mixed = {
        h.name: (h, losses[h.name]) for h in plan.heads if isinstance(losses[h.name], MixedLoss)
    }
    schedule = LossSchedule(mixed) if mixed else None
    callbacks += [c for c in (weights, sharing, schedule, plateau, stopper) if c is not None]
    if rates:
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch, _: rates[epoch]))
    made = FitCallbacks(callbacks, StopOnInterrupt(), StopOnNonFinite(), stopper)
    callbacks += [made.nonfinite, made.interrupt, *feed]
    if schedule:
        made.active = {
            logged(name, TEXT_COLUMN, multi=plan.multi): described
            for name, described in schedule.active.items()
        }
    if run_dir is not None and not smoke:
        resumables = [c for c in (stopper, plateau, weights) if c is not None]
        _keep_epochs(made, RunFolder(run_dir), resumables, writer)
    if run_dir is not None and spec.training.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(RunFolder(run_dir).tensorboard)))
    return made


def _stopping(
    plan: Plan, spec: Spec, run_dir: Path | None, *, off: bool, writer: bool
) -> tuple[ResumablePlateau | None, ResumableEarlyStopping | None]:
    """Early stopping and the plateau cut of training.early_stopping (none when `off`); only
    the `writer` keeps the best weights in the run folder."""
    from taskfit.model.losses import last_switch
    from taskfit.training.resume import ResumableEarlyStopping, ResumablePlateau

    stopping = None if off else spec.training.early_stopping
    if not stopping:
        return None, None
    # Both watch one quantity from the last loss switch. Keras guesses its direction from the
    # compiled metrics, which exist only after the first batch: too late for replaying history
    # on --resume, which runs at the first epoch's start.
    watch: dict[str, Any] = {
        "monitor": stopping.monitor,
        "mode": "max" if higher_is_better(stopping.monitor) else "min",
        "start_from_epoch": last_switch(plan.heads),
    }
    plateau, cut = None, stopping.reduce_lr
    if cut and not plan.schedule:  # a schedule owns the rate: Keras refuses to cut it
        plateau = ResumablePlateau(
            factor=cut.factor, patience=cut.patience, min_lr=cut.min_lr, **watch
        )
    stopper = ResumableEarlyStopping(
        RunFolder(run_dir).best_weights if run_dir else None,
        writes=writer,
        patience=stopping.patience,
        min_delta=stopping.min_delta,
        restore_best_weights=stopping.restore_best_weights,
        **watch,
    )
    return plateau, stopper


def _keep_epochs(
    made: FitCallbacks, folder: RunFolder, resumables: list[Any], writer: bool
) -> None:
    """history.csv after every epoch (an earlier attempt's rows first, on --resume), then the
    checkpoint, written once the epoch's history and best weights are (by the writer alone)."""
    from taskfit.runfolder.files import read_history
    from taskfit.training.resume import EpochCheckpoint, EpochLog

    previous = read_history(folder.history)
    made.log = EpochLog(folder.history, previous, made.active, resumables, writes=writer)
    interrupt, nonfinite = made.interrupt, made.nonfinite
    backup = EpochCheckpoint(
        folder.backup, lambda: interrupt.requested or nonfinite.found is not None, writes=writer
    )
    made.callbacks += [made.log, backup]
