"""What lets a run survive a crash: each finished epoch is on disk, and `train --resume RUN_DIR`
carries on from the last one.

Per epoch, in this order: the history row (history.csv), the early-stopping state (its best
weights, when they improve), then Keras's own `BackupAndRestore` checkpoint (weights, optimizer
state with its step count and so the learning-rate schedule's position, and the epoch). A kill
between them loses at most the epoch being written: on resume, rows after the checkpoint's epoch
are dropped and that epoch runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import keras

from taskfit.errors import NotResumable
from taskfit.runfolder.files import (
    own_folder,
    read_record,
    read_weights,
    write_history,
    write_json,
    write_weights,
)
from taskfit.runfolder.layout import CHECKPOINT, STATE_SUFFIX

# Resuming needs Keras internals that its public API does not offer: the comparison and the
# counters of EarlyStopping and ReduceLROnPlateau (replayed from history.csv), and the save and
# load steps of BackupAndRestore (made atomic here; Keras's own resume sets the private
# `model._initial_epoch`). pyproject.toml pins Keras to the minor versions tested with them, and
# tests/test_resume.py fails on a Keras that lacks any of them.
KERAS_INTERNALS = {
    keras.callbacks.EarlyStopping: ("_set_monitor_op", "_is_improvement"),
    keras.callbacks.ReduceLROnPlateau: ("_set_monitor_op", "_is_improvement"),
    keras.callbacks.BackupAndRestore: ("_save_model", "_load_model"),
}


class Resumable(Protocol):
    def resume(self, previous: dict[str, list[float | str]]) -> None: ...


class EpochLog(keras.callbacks.Callback):
    """Writes history.csv after every epoch: the rows of an earlier attempt (up to the epoch
    training restarts from), then this attempt's. `extra` adds text columns per epoch (the loss
    in force); `resumables` get the earlier rows once the restart epoch is known."""

    def __init__(
        self,
        path: Path,
        previous: dict[str, list[float | str]],
        extra: dict[str, list[str]] | None = None,
        resumables: list[Resumable] | None = None,
        writes: bool = True,  # False: one process of several, which only reads the earlier rows
    ):
        super().__init__()
        self.path, self.previous, self.writes = path, previous, writes
        self.extra = extra or {}
        self.resumables = resumables or []
        self.rows: dict[str, list[float | str]] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.rows is None:  # the first epoch of this attempt: `epoch` earlier ones are kept
            self.replay(epoch)

    def replay(self, epoch: int) -> None:
        """The earlier attempt's first `epoch` rows kept, the resumables' counters replayed."""
        self.rows = {k: list(v[:epoch]) for k, v in self.previous.items()}
        for item in self.resumables:
            item.resume(self.rows)
        for name, values in self.extra.items():  # text columns restart with the rows
            values[:0] = [str(v) for v in self.rows.get(name, [])]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        assert self.rows is not None
        for name, value in (logs or {}).items():
            self.rows.setdefault(name, []).append(float(value))
        if self.writes:
            write_history(self.path, self.history())

    def history(self) -> dict[str, list[float | str]]:
        columns: dict[str, list[float | str]] = dict(self.rows or {})
        columns.update({k: list(v) for k, v in self.extra.items()})
        return columns


def check_fits(path: Path, saved: list[Any], wanted: list[tuple[tuple[int, ...], str]]) -> None:
    """Each saved array of the shape and kind of the variable it goes into (a TaskfitError
    naming the file otherwise, not Keras's assign failing on text or a wrong shape)."""
    for i, (array, (shape, dtype)) in enumerate(zip(saved, wanted, strict=True)):
        numeric = array.dtype.kind in "biuf"
        if tuple(array.shape) != shape or not numeric:
            raise NotResumable(
                f"{path}: array {i} is {array.dtype} of shape {tuple(array.shape)}, where this "
                f"run's model holds {dtype} of shape {shape}; it is damaged or was not written "
                "for this run (start it afresh without --resume)"
            )


def epochs_to_fit(checkpoint: Path, log: EpochLog, stopper: Any, epochs: int) -> int:
    """`epochs`, or for `--resume` of a run that early stopping had already ended (it was
    stopped while saving its result) the epochs it finished: Keras then fits none more, as the
    uninterrupted run would not have."""
    finished = read_record(checkpoint).get("epoch")
    if stopper is None or not isinstance(finished, int) or finished < 1:
        return epochs
    rows = {k: v[:finished] for k, v in log.previous.items()}
    return finished if stopper.ended(rows) else epochs


def finish_without_epochs(log: EpochLog, stopper: Any, model: Any) -> None:
    """After a fit that ran no epoch: `--resume` of a run whose every epoch had finished (it was
    stopped while saving its result). Keras calls no epoch's callbacks then, so the earlier rows
    are replayed here and the best weights restored, as the end of the fit would have."""
    if log.rows is not None:
        return
    log.replay(model._initial_epoch or 0)  # the checkpoint's epoch, as BackupAndRestore set it
    if stopper is not None and stopper.restore_best_weights and stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping whose state survives a restart: its best weights are saved when they
    improve, and its counters are replayed from the monitored column of the earlier rows."""

    def __init__(self, kept: Path | None, writes: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.kept = kept  # where the best weights are kept (none: not kept)
        self.writes = writes  # False: one process of several, which only reads the best weights

    def resume(self, previous: dict[str, list[float | str]]) -> None:
        values = previous.get(self.monitor, [])
        if not values or self.kept is None or not self.kept.is_file():
            return
        self.wait, self.best, self.best_epoch = self._replayed(values)
        self.best_weights = read_weights(self.kept)
        weights = self.model.weights
        if len(self.best_weights) != len(weights):
            raise NotResumable(
                f"{self.kept}: {len(self.best_weights)} arrays, but this run's model holds "
                f"{len(weights)}; it was not written for this run (start it afresh without "
                "--resume)"
            )
        check_fits(self.kept, self.best_weights, [(tuple(w.shape), str(w.dtype)) for w in weights])

    def ended(self, previous: dict[str, list[float | str]]) -> bool:
        """Whether these rows' last epoch is where this early stopping ends a fit."""
        values = previous.get(self.monitor, [])
        return len(values) > 1 and self._replayed(values)[0] >= self.patience

    def _replayed(self, values: list[float | str]) -> tuple[int, float | None, int]:
        """(wait, best, best_epoch) after these epochs' values, as Keras's own steps leave
        them from on_train_begin's start (no best yet)."""
        self._set_monitor_op()
        wait, best_epoch = 0, 0
        best: float | None = None
        for epoch, value in enumerate(float(v) for v in values):
            if epoch < self.start_from_epoch:
                continue
            wait += 1
            if self._is_improvement(value, best):  # Keras's own comparison
                best, best_epoch, wait = value, epoch, 0
        return wait, best, best_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        improved = self.best_epoch == epoch and self.best_weights is not None
        if improved and self.kept is not None and self.restore_best_weights and self.writes:
            own_folder(self.kept.parent, self.kept.parent.parent)
            write_weights(self.kept, self.best_weights)


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras's ReduceLROnPlateau, watching only from `start_from_epoch` (the last loss switch:
    losses before it are not comparable), whose counters are replayed from the monitored column
    of the earlier rows on a restart (the rate itself is in the checkpoint's optimizer state)."""

    def __init__(self, start_from_epoch: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.start_from_epoch = start_from_epoch

    def resume(self, previous: dict[str, list[float | str]]) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        values = [float(v) for v in previous.get(self.monitor, [])]
        for value in values[self.start_from_epoch :]:  # Keras's own steps, without the cuts
            if self._is_improvement(value, self.best):  # type: ignore[has-type]
                self.best, self.wait = value, 0
            else:
                self.wait += 1
                if self.wait >= self.patience:
                    self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch >= self.start_from_epoch:  # optim.LearningRateLog logs the rate every epoch
            super().on_epoch_end(epoch, logs)


class EpochCheckpoint(keras.callbacks.BackupAndRestore):
    """Keras's checkpoint, skipped for an epoch cut short (Ctrl-C, a loss that is not a number):
    resuming then runs that epoch again instead of counting part of it as done.

    Keras writes its weights file and then its metadata in place, so a kill in between leaves a
    torn weights file, or new weights with the old epoch. Here each epoch's state goes to a new
    file, and the metadata naming that file and its epoch is renamed into place last: a kill at
    any moment leaves the previous checkpoint whole.

    The state is every variable of the training model and its optimizer (the step count, so the
    learning-rate schedule's position, and the moments), in order, as one .npz: on ames (2930
    rows, 73 columns, five members) Keras's save_weights took 0.27-0.37 s an epoch, the .npz
    0.02-0.04 s. The weights are whole in every process of several (replicated), so the writer
    alone reads them; the others write nothing."""

    def __init__(self, folder: Path, cut_short: Callable[[], bool], writes: bool = True):
        super().__init__(folder, delete_checkpoint=False)
        self.folder = folder
        self.cut_short = cut_short
        self.writes = writes  # False: one process of several, which only loads the checkpoint

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.cut_short():
            super().on_epoch_end(epoch, logs)

    def _state(self) -> list[Any]:
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # before the first step
            optimizer.build(self.model.trainable_variables)
        return [*self.model.variables, *(optimizer.variables if optimizer is not None else ())]

    def _save_model(self) -> None:
        if not self.writes:
            return
        own_folder(self.folder, self.folder.parent)
        state = self.folder / f"epoch-{self._current_epoch:04d}{STATE_SUFFIX}"
        write_weights(state, [variable.numpy() for variable in self._state()])
        metadata = {
            "epoch": self._current_epoch,
            "batch": 0,
            "weights": state.name,
            # --workers trains on JAX, one process on TensorFlow: resume the way it began
            "backend": keras.backend.backend(),
        }
        write_json(self.folder / CHECKPOINT, metadata)  # the commit point
        for older in self.folder.glob(f"epoch-*{STATE_SUFFIX}"):
            if older != state:
                older.unlink()

    def _load_model(self) -> None:
        metadata = read_record(self.folder / CHECKPOINT)
        if "weights" not in metadata:
            return
        variables = self._state()
        path = self.folder / metadata["weights"]
        saved = read_weights(path)
        if len(saved) != len(variables):
            raise NotResumable(
                f"{path}: a checkpoint of {len(saved)} arrays, but this run's model and "
                f"optimizer hold {len(variables)}; it was not written for this run (start it "
                "afresh without --resume)"
            )
        check_fits(path, saved, [(tuple(v.shape), str(v.dtype)) for v in variables])
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
        self.model._initial_epoch = metadata["epoch"]  # what Keras's own restore sets
