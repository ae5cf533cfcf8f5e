"""One process of a `train --workers` cluster (KERAS_BACKEND=jax): `python -m
taskfit.training.worker JOB`, started by taskfit.training.distributed, which says how the
processes train together."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from taskfit.plan.checking import Checked
from taskfit.runfolder.layout import RunFolder
from taskfit.training.distributed import FIT_FILE, WEIGHTS_FILE


def worker(job: dict[str, Any]) -> None:
    """One process of the cluster (KERAS_BACKEND=jax, set by whoever started it)."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=job["coordinator"],
        num_processes=job["count"],
        process_id=job["process_id"],
        initialization_timeout=300,
    )
    from taskfit.model.keras_setup import import_keras
    from taskfit.plan.checking import check_spec

    keras = import_keras("jax")
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    )
    checked = check_spec(job["spec"], job["overrides"], workers=True)
    # a process on another machine has no run folder: it keeps its epochs in a scratch one,
    # which it only reads (saving the weights is a step every process takes; see resume.py)
    writer = job["process_id"] == 0 and job["run_dir"] is not None
    with contextlib.ExitStack() as stack:
        folder = job["run_dir"] or stack.enter_context(tempfile.TemporaryDirectory())
        _work(keras, job, checked, Path(folder), writer)


def _work(keras: Any, job: dict[str, Any], checked: Checked, run_dir: Path, writer: bool) -> None:
    """One process's fit (and refit); process 0 writes the result where the parent reads it."""
    import jax

    from taskfit.runfolder.planfile import read_plan
    from taskfit.training.fit import fit_plan, make_splits

    files = RunFolder(run_dir)
    if files.plan.is_file():  # the plan the run folder keeps, as the process that made it
        checked = dataclasses.replace(checked, plan=read_plan(files.plan))
    seed = checked.loaded.spec.training.seed
    keras.utils.set_random_seed(seed)
    smoke = job["smoke"]
    whole = make_splits(checked, smoke, processes=job["count"])
    splits = whole.sharded(job["process_id"], job["count"])
    started = time.perf_counter()
    fitted = fit_plan(
        keras, checked, checked.plan, splits, smoke=smoke, run_dir=run_dir, writer=writer
    )
    if checked.plan.refit and not smoke and not fitted.interrupted and not fitted.diverged:
        from taskfit.training.refit import refit

        fitted, kept_first = refit(keras, checked, splits, fitted, 0)
        fitted.warnings.extend([kept_first] if kept_first else [])
    if job["out"] is None:
        return
    from taskfit.runfolder.files import write_json, write_weights

    folder = Path(job["out"])
    folder.mkdir(exist_ok=True)
    # replicated: every process holds the weights whole
    write_weights(folder / WEIGHTS_FILE, fitted.models.fit.get_weights())
    doc = {
        "history": fitted.history,
        "best_epoch": fitted.best_epoch,
        "seconds": time.perf_counter() - started,
        "interrupted": fitted.interrupted,
        "stopped_by": fitted.stopped_by,
        "diverged": list(fitted.diverged) if fitted.diverged else None,
        "active_losses": fitted.active_losses,
        "final_weights": fitted.final_weights,
        "refit": fitted.refit,
        "warnings": fitted.warnings,
        "processes": job["count"],
        "jax": jax.__version__,
    }
    write_json(folder / FIT_FILE, doc)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
