"""`train --workers N` (one machine) and `--coordinator HOST:PORT --process-id I
--num-processes N` (several): data-parallel training on Keras's own distribution API.

tf.distribute's multi-worker strategy fails under Keras 3 (keras-team/keras#20585), so the
workers run Keras on the JAX backend: `jax.distributed.initialize` joins them (gloo collectives
on CPU) and `keras.distribution.DataParallel` keeps one copy of the weights per process, the
gradients summed across them every step.

- Every process reads the whole training split (the statistics the model is built on, its
  vocabularies and class counts are then the same everywhere) and feeds only its share of it
  (taskfit.training.feeding says how).
- JAX has no string tensors: the workers look categories up before the model (the ids
  StringLookup would give) and the model takes the ids; the layers after the lookup, and so the
  weights, are the same.
- Process 0 writes each finished epoch into the run folder (history.csv, the checkpoint) and
  at the end the weights; the workers exit, and this process (TensorFlow) loads the weights
  into the same model, evaluates the test split and saves the run folder as a one-process run
  would (its model takes the raw strings again).
- `--resume` of a stopped `--workers` run: every process on this machine loads process 0's
  checkpoint and replays history.csv, then goes on from the next epoch. The checkpoint holds
  the JAX model (category ids in), so such a run resumes with `--workers` again; on several
  machines only process 0's has it, so cluster runs do not resume.

A loss schedule's mix and dwa's weights are variables the loss reads; they are held as the
training model's state (taskfit.model.losses.LossState), so the compiled JAX step reads their
values of each epoch. A refit runs in the workers too, on every process's share of train +
validation.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taskfit.errors import Problem, SpecError, TaskfitError, Terminated
from taskfit.plan.checking import Checked
from taskfit.runfolder.files import read_weights
from taskfit.runfolder.layout import RunFolder
from taskfit.spec.spec import Overrides, SpecSource

if TYPE_CHECKING:  # both import Keras: the CLI reads the cluster options without it
    from taskfit.feed.splits import Splits
    from taskfit.training.fit import Fitted


@dataclass(frozen=True)
class Cluster:
    coordinator: str  # host:port of process 0
    count: int  # processes in all
    process_id: int | None = None  # None: this machine runs all of them (--workers)


def local_cluster(workers: int) -> Cluster:
    """N processes on this machine, joined through a free port on the loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Cluster(f"127.0.0.1:{port}", workers)


def _installed(package: str) -> bool:
    """Whether `package` is installed, asked of its distribution's metadata: the CLI's process
    keeps JAX out of its imports (taskfit.cli.app.main), so the import system says no."""
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def check_distributable(checked: Checked, cluster: Cluster) -> None:
    """Everything --workers cannot do yet, before any process starts."""
    if not _installed("jax"):
        raise TaskfitError(
            "--workers/--num-processes: needs JAX, which is not installed; pip install "
            '"taskfit[distributed]"'
        )
    batch_size = checked.plan.batch_size
    given = checked.loaded.spec.training.batch_size is not None
    problems = []
    weighting = checked.plan.weighting.name
    if weighting in ("pcgrad", "gradnorm"):
        problems.append(
            f"loss_weighting: {weighting} takes each head's gradient apart with TensorFlow's "
            "GradientTape, and the workers train on JAX; train in one process, or use fixed, "
            "uncertainty or dwa"
        )
    if batch_size % cluster.count:
        what = "training.batch_size" if given else "the default batch size (training.batch_size)"
        problems.append(
            f"{what} {batch_size} must divide into the {cluster.count} processes' equal "
            f"slices; give a training.batch_size that is a multiple of {cluster.count}"
        )
    if problems:
        flag = "--workers" if cluster.process_id is None else "--num-processes"
        raise SpecError([Problem(flag, p) for p in problems])


Result = tuple[dict[str, Any], list[np.ndarray]] | None
# what process 0 leaves in the run folder's workers folder for this process to read
FIT_FILE = "fit.json"  # the history and how the fit ended
WEIGHTS_FILE = "weights.npz"  # the trained weights, in models.fit's order


def run_workers(
    cluster: Cluster, spec: SpecSource, overrides: Overrides, out: Path | None, smoke: bool = False
) -> Result:
    """Start this machine's worker processes and wait for them (see workers_running)."""
    with workers_running(cluster, spec, overrides, out, smoke) as finished:
        return finished()


@contextlib.contextmanager
def workers_running(
    cluster: Cluster, spec: SpecSource, overrides: Overrides, out: Path | None, smoke: bool = False
) -> Iterator[Callable[[], Result]]:
    """This machine's worker processes, started; the block gets a function that waits for them
    and returns process 0's history and weights when process 0 is among them (written under
    `out`), else None. The block can load TensorFlow meanwhile (seconds the workers spend
    starting up); however it ends, no worker outlives it."""
    ids = list(range(cluster.count)) if cluster.process_id is None else [cluster.process_id]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    workers: dict[int, tuple[subprocess.Popen[bytes], Any]] = {}
    stop_on_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def finished() -> Result:
        failure = _first_failure(workers)
        if failure is not None:
            raise TrainingFailed(f"worker process {failure[0]} of {cluster.count} {failure[1]}")
        if out is None or 0 not in ids:
            return None
        folder = RunFolder(out).workers
        doc = json.loads((folder / FIT_FILE).read_text(encoding="utf-8"))
        return doc, read_weights(folder / WEIGHTS_FILE)

    with contextlib.ExitStack() as logs:
        try:
            for i in ids:
                job = {
                    "spec": dict(spec) if isinstance(spec, Mapping) else str(spec),
                    "overrides": overrides,
                    "coordinator": cluster.coordinator,
                    "process_id": i,
                    "count": cluster.count,
                    "smoke": smoke,
                    "out": str(RunFolder(out).workers) if out is not None and i == 0 else None,
                    # every process on this machine reads the run folder's epochs (to resume);
                    # process 0 writes them
                    "run_dir": str(out) if out is not None else None,
                }
                # a file, not a pipe: a chatty worker never blocks; the ExitStack closes it
                log = logs.enter_context(tempfile.TemporaryFile())
                command = [sys.executable, "-m", "taskfit.training.worker", json.dumps(job)]
                popen = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
                workers[i] = popen, log
            yield finished
        finally:
            signal.signal(signal.SIGTERM, stop_on_sigterm)
            for popen, _ in workers.values():
                if popen.poll() is None:
                    popen.kill()
                    popen.wait()


class TrainingFailed(TaskfitError):
    """A worker process ended with an error (its message included): not a mistake in the spec,
    so its own exit code, 3, lets a script tell the two apart."""

    exit_code = 3


def _first_failure(
    workers: dict[int, tuple[subprocess.Popen[bytes], Any]],
) -> tuple[int, str] | None:
    """Wait for every worker; the first to fail (process id, what happened), else None. The
    others would wait for it in their next collective until JAX's timeout, so the caller
    stops them at once."""
    while True:
        running = False
        for i, (popen, log) in workers.items():
            code = popen.poll()
            if code is None:
                running = True
            elif code != 0:
                return i, _what_happened(code, log)
        if not running:
            return None
        time.sleep(0.1)


def _what_happened(code: int, log: Any) -> str:
    if code < 0:
        return f"was stopped by signal {signal.Signals(-code).name}"
    log.seek(0)
    lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return f"failed: {(errors or lines or ['exit code ' + str(code)])[-1].strip()}"


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()  # unwinds through workers_running, which stops the workers


def serve(cluster: Cluster, spec: Path, overrides: Overrides, smoke: bool = False) -> None:
    """A machine other than process 0's: check the spec, then run its one worker."""
    from taskfit.plan.checking import check_spec

    check_distributable(check_spec(spec, overrides, workers=True), cluster)
    run_workers(cluster, spec, overrides, None, smoke=smoke)


def fit_with_workers(
    keras: Any, checked: Checked, splits: Splits, finished: Callable[[], Result], run_dir: Path
) -> Fitted:
    """training.Fitted for `checked`, fitted (and refitted) by the cluster's processes, which
    `finished` waits for (see workers_running)."""
    result = finished()
    assert result is not None  # this machine runs process 0
    doc, weights = result
    shutil.rmtree(RunFolder(run_dir).workers, ignore_errors=True)  # model.keras will hold them
    return fitted_from_workers(keras, checked, splits, doc, weights)


def fitted_from_workers(
    keras: Any, checked: Checked, splits: Splits, doc: dict[str, Any], weights: list[np.ndarray]
) -> Fitted:
    """The workers' result as training.Fitted: the same model built here (TensorFlow), holding
    the weights process 0 saved, compiled for the test evaluation."""
    from taskfit.training.fit import Fitted, compile_plan

    models, trained, _, _ = compile_plan(keras, checked.plan, splits)
    models.fit.set_weights(weights)
    return Fitted(
        models,
        trained,
        {k: [float(v) for v in vs] for k, vs in doc["history"].items()},
        doc["active_losses"],
        doc["final_weights"],
        doc["best_epoch"],
        doc["seconds"],
        doc["interrupted"],
        tuple(doc["diverged"]) if doc["diverged"] else None,
        processes=doc["processes"],
        refit=doc["refit"],
        warnings=doc["warnings"],
        stopped_by=doc.get("stopped_by", ""),
    )
