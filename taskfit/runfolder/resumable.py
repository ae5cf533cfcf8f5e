"""Whether a run folder can go on (`train --resume`), read before TensorFlow loads: its status
says it stopped, and Keras's checkpoint of a finished epoch is there."""

from __future__ import annotations

import os
from pathlib import Path

from taskfit.config.readable import file_kind
from taskfit.errors import DataError, TaskfitError
from taskfit.runfolder.files import (
    check_format,
    checked_status,
    read_format,
    read_history,
    read_object,
    read_reason,
    read_record,
    read_weights,
    training_process,
)
from taskfit.runfolder.layout import RESUMES_FROM, STATE_SUFFIX, RunFolder
from taskfit.runfolder.opened import load_resolved


def resumable_spec(run_dir: Path, *, workers: bool = False) -> Path:
    """The resolved spec of a run folder that can go on (`workers`: with --workers); an error
    saying why not otherwise."""
    spec = RunFolder(run_dir).spec
    if not spec.is_file():
        raise TaskfitError(
            f"--resume {run_dir}: not a run folder (no spec.resolved.yaml); give a folder that "
            "`taskfit train` wrote"
        )
    check_format(run_dir)
    epochs = load_resolved(spec).spec.training.epochs
    _check_writable(RunFolder(run_dir))
    status = checked_status(run_dir)  # damaged: said, not "no epoch finished"
    if not status:
        read_object(RunFolder(run_dir).status)  # says it is missing
    if status == "completed":
        raise TaskfitError(f"--resume {run_dir}: this run completed; there is nothing to resume")
    process = training_process(run_dir) if status == "running" else None
    if process is not None and process[1] and process[0] != os.getpid():
        raise TaskfitError(
            f"--resume {run_dir}: this run is still training, in process {process[0]} on this "
            f"machine; let it finish, or stop it (Ctrl-C, or kill -TERM {process[0]}) and resume"
        )
    if status == "failed" and "training diverged" in read_reason(run_dir):
        raise TaskfitError(
            f"--resume {run_dir}: this run diverged (see its status.json); carrying on would "
            "diverge again. Fix the spec (a lower learning rate, say) and train it afresh"
        )
    if not has_checkpoint(run_dir):
        _check_no_epoch_finished(RunFolder(run_dir))
        raise TaskfitError(
            f"--resume {run_dir}: no epoch finished before it stopped, so there is nothing to "
            f"carry on from; train again with: taskfit train {spec}"
        )
    written = read_format(run_dir)
    if written < RESUMES_FROM:
        raise TaskfitError(
            f"--resume {run_dir}: its checkpoint was written by an older taskfit (run folder "
            f"format {written}) in a form this one does not read; its model.keras "
            f"still loads, but training cannot carry on. Train again with: "
            f"taskfit train {spec}"
        )
    check_checkpoint(run_dir, epochs)
    on_workers = checkpoint_backend(run_dir) == "jax"
    if on_workers != workers:
        how = "with --workers N" if on_workers else "without --workers"
        where = "on several processes (--workers)" if on_workers else "in one process"
        raise TaskfitError(
            f"--resume {run_dir}: its epochs were trained {where}, and the checkpoint holds "
            f"that model; resume it {how}"
        )
    return spec


def _check_no_epoch_finished(folder: RunFolder) -> None:
    """A run without the checkpoint's metadata finished no epoch, unless its history logs some
    or an epoch's state file is there: then that file is damaged or gone (a DataError naming
    it), which "no epoch finished" would misstate."""
    checkpoint = folder.checkpoint
    if checkpoint.exists() or checkpoint.is_symlink():
        read_object(checkpoint)  # no regular file: says what it is
    logged = len(next(iter(read_history(folder.history).values()), []))
    states = sorted(p.name for p in folder.backup.glob(f"epoch-*{STATE_SUFFIX}"))
    if logged or states:
        found = (
            f"{folder.history.name} logs {logged} epoch(s)" if logged else f"{states[-1]} is there"
        )
        raise DataError(
            f"{checkpoint}: is missing, though {found}; the checkpoint is damaged, so the run "
            "cannot carry on. Train the run afresh (without --resume)"
        )


def _check_writable(folder: RunFolder) -> None:
    """Every file the resumed run writes is a file or not there yet: a folder or a pipe in its
    place would fail the run at its end, after hours of training."""
    for path in (folder.history, folder.status, folder.model, folder.metrics, folder.facts):
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise DataError(
                f"{path}: is {file_kind(path.lstat().st_mode)}, not the file taskfit wrote "
                "there; it is damaged or not what taskfit wrote. Move it away, or train the run "
                "afresh (without --resume)"
            )


def check_checkpoint(run_dir: Path, epochs: int) -> None:
    """The checkpoint reads whole before anything is written: its metadata names an epoch
    before the resolved spec's last (`epochs`) and a state file beside it, and that file and
    early stopping's best weights load (a DataError naming the file otherwise; a failure
    during fit would mark the run failed)."""
    folder = RunFolder(run_dir)
    metadata = read_object(folder.checkpoint)
    epoch, weights = metadata.get("epoch"), metadata.get("weights")
    plain = (
        isinstance(weights, str)
        and weights == Path(weights).name
        and weights.endswith(STATE_SUFFIX)
    )
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0 or not plain:
        raise DataError(
            f"{folder.checkpoint}: does not name a finished epoch and its state file "
            f"(epoch {epoch!r}, weights {weights!r}); it is damaged or not what taskfit wrote. "
            "Train the run afresh (without --resume)"
        )
    read_weights(folder.backup / str(weights))
    if folder.best_weights.exists() or folder.best_weights.is_symlink():
        read_weights(folder.best_weights)
    logged = len(next(iter(read_history(folder.history).values()), []))
    if logged < epoch:  # the resumed history starts from these rows
        raise DataError(
            f"{folder.history}: holds {logged} epoch(s), but the checkpoint says {epoch} "
            "finished; it is damaged or not what taskfit wrote. Train the run afresh "
            "(without --resume)"
        )
    if epoch > epochs:  # a fit from there would run no epoch and log none
        raise DataError(
            f"{folder.spec}: says training.epochs {epochs}, but the checkpoint holds {epoch} "
            "finished epochs, so nothing is left to train; the file is damaged or was edited. "
            "Put back the number of epochs it was trained with, or train the run afresh "
            "(without --resume)"
        )


def checkpoint_backend(run_dir: Path) -> str:
    """The Keras backend that wrote the checkpoint: jax for --workers (a checkpoint written
    before it was recorded is TensorFlow's: workers did not checkpoint then)."""
    backend = read_record(RunFolder(run_dir).checkpoint).get("backend")
    return backend if isinstance(backend, str) else "tensorflow"


def has_checkpoint(run_dir: Path) -> bool:
    return RunFolder(run_dir).checkpoint.is_file()
