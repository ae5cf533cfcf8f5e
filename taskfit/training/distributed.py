"""`train --workers N` (one machine) and `--coordinator HOST:PORT --process-id I
--num-processes N` (several): data-parallel training on Keras's own distribution API.

tf.distribute's multi-worker strategy fails under Keras 3 (keras-team/keras#20585), so the
workers run Keras on the JAX backend: `jax.distributed.initialize` joins them (gloo collectives
on CPU) and `keras.distribution.DataParallel` keeps one copy of the weights per process, the
gradients summed across them every step.

- Data in memory: every process reads the whole training split (the statistics the model is
  built on, its vocabularies and class counts are then the same everywhere) and feeds only
  its slice of each global batch: every epoch the seed draws one permutation of the training
  rows; global batch k is rows [k*B, (k+1)*B) of it and process i takes the i-th of its N
  equal slices. A run on N processes then sees the same batches as one process with the same
  global batch; the results differ only by the order floats are summed in. The last partial
  batch of an epoch is dropped (every process must take the same number of steps).
  Validation: each process takes every N-th row of the split, cut to equal lengths (the
  metrics Keras logs are over all of them, the same on every process, so early stopping
  stops every process at the same epoch).
- data.streaming (StreamShard): every process scans the whole file once (the same
  statistics everywhere, and the file's blocks of rows with each one's rows per part); then
  each epoch it reads only its own blocks, every N-th, shuffled through the bounded buffer,
  and takes as many local batches (and validation rows) as the smallest share holds. The
  batches differ from one process's, so the result matches a one-process run statistically.
- JAX has no string tensors: the workers look categories up before the model (the ids
  StringLookup would give) and the model takes the ids; the layers after the lookup, and so the
  weights, are the same.
- Process 0 writes the weights and history; the workers exit, and this process (TensorFlow)
  loads the weights into the same model, evaluates the test split and saves the run folder as
  a one-process run would (its model takes the raw strings again).

Not yet (refused with a message): a loss schedule and learned loss weights (their variables
are not part of the compiled JAX step).
"""

from __future__ import annotations

import contextlib
import importlib.util
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.errors import Problem, SpecError, TaskfitError
from taskfit.runfolder.files import read_weights
from taskfit.spec.spec import Overrides, SpecSource

WORKER_FILES = ".workers"  # inside the run folder: process 0's weights and history


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


def check_distributable(checked: Any, cluster: Cluster) -> None:
    """Everything --workers cannot do yet, before any process starts."""
    if importlib.util.find_spec("jax") is None:
        raise TaskfitError(
            "--workers/--num-processes: needs JAX, which is not installed; pip install "
            '"taskfit[distributed]"'
        )
    spec, plan = checked.loaded.spec, checked.plan
    problems = []
    if any(head.loss.form == "schedule" for head in plan.heads):
        problems.append("a loss schedule cannot change the loss of a compiled JAX step yet")
    if plan.multi and plan.weighting.name != "fixed":
        problems.append(f"loss_weighting {plan.weighting.name}: learned weights are not yet "
                        "part of the compiled JAX step; use fixed weights")  # fmt: skip
    if plan.additions:
        problems.append(
            f"{', '.join(plan.additions)}: not yet fitted across processes; set "
            "model.members: 1, model.numeric_embedding: none and training.refit: false"
        )
    if spec.training.batch_size % cluster.count:
        problems.append(
            f"training.batch_size {spec.training.batch_size} must divide into the "
            f"{cluster.count} processes' equal slices; give a multiple of {cluster.count}"
        )
    if problems:
        flag = "--workers" if cluster.process_id is None else "--num-processes"
        raise SpecError([Problem(flag, p) for p in problems])


class Shard:
    """One process's view of the parts: what is fitted to the whole training split (the same
    in every process) comes from `splits`; what it feeds, its subclass decides."""

    splits: Any

    def feature_stats(self, *args: Any) -> Any:
        return self.splits.feature_stats(*args)

    def class_counts(self, head: str, n_classes: int) -> np.ndarray:
        counts: np.ndarray = self.splits.class_counts(head, n_classes)
        return counts


class ShardedSplits(Shard):
    """arrays.Splits as one process of N sees it (see the module docstring)."""

    def __init__(self, splits: Any, process: int, count: int, seed: int):
        self.splits, self.process, self.count, self.seed = splits, process, count, seed

    def first_rows(self, models: Any) -> dict[str, Any]:
        return dict(self.splits.first_rows(models))

    def fit_data(self, models: Any, plan: Any, batch_size: int) -> dict[str, Any]:
        from taskfit.feed.arrays import fit_targets

        train = self.splits.train
        x, y = models.pack(train.x), fit_targets(plan, train.y)
        feed = global_batches(x, y, batch_size, self.process, self.count, self.seed)
        return {"x": feed, "shuffle": False}

    def fit_callbacks(self) -> list[Any]:
        return []  # the global batches reshuffle themselves at each epoch's end

    def validation_data(self, models: Any, plan: Any) -> Any:
        from taskfit.feed.arrays import fit_targets

        part = self.splits.validation
        if not part:
            return None
        equal = len(part) - len(part) % self.count
        mine = part.take(np.arange(equal)[self.process :: self.count])
        return models.pack(mine.x), fit_targets(plan, mine.y)


class StreamShard(Shard):
    """A streamed CSV (streamsplits.StreamSplits) as one process of N reads it: only its own
    blocks of the file, every N-th of those the scan found. Its training rows go through the
    same bounded shuffle buffer; every process takes as many local batches per epoch as the
    smallest share holds, and as many validation rows."""

    def __init__(self, splits: Any, process: int, count: int):
        from taskfit.feed.stream import TRAIN, VALIDATION

        scanned = splits.scanned
        if scanned.spans is None:
            raise TaskfitError(
                f'{splits.layout.path.name}: a quote inside an unquoted cell (such as 12") '
                "keeps the file from being cut into blocks for several processes; quote that "
                "cell, or train in one process"
            )
        self.splits, self.process, self.count = splits, process, count
        shares = [scanned.span_rows[i::count].sum(axis=0) for i in range(count)]
        self.train_rows = min(int(share[TRAIN]) for share in shares)
        self.validation_rows = min(int(share[VALIDATION]) for share in shares)
        self.mine = replace(splits, spans=scanned.spans[process::count])

    def first_rows(self, models: Any) -> dict[str, Any]:
        from taskfit.feed.stream import named

        return dict(models.pack(named(self.splits.scanned.first, self.splits.layout)))

    def fit_callbacks(self) -> list[Any]:
        return list(self.mine.fit_callbacks())  # tells the shuffle the epoch

    def fit_data(self, models: Any, plan: Any, batch_size: int) -> dict[str, Any]:
        from taskfit.feed.stream import TRAIN

        local = batch_size // self.count
        steps = self.train_rows // local  # whole batches only, the same count everywhere
        if not steps:
            raise TaskfitError(
                f"{self.splits.layout.path.name}: the smallest process's share holds "
                f"{self.train_rows} training rows, fewer than its {local} of each batch; use "
                "fewer processes or a smaller training.batch_size"
            )
        return {"x": self._feed(models, self.mine, TRAIN, local, steps), "shuffle": False}

    def validation_data(self, models: Any, plan: Any) -> Any:
        from taskfit.feed.stream import VALIDATION

        if not self.validation_rows:
            return None
        equal = replace(self.mine, limit=self.validation_rows)
        steps = -(-self.validation_rows // VALIDATION_BATCH)
        return self._feed(models, equal, VALIDATION, VALIDATION_BATCH, steps)

    def _feed(self, models: Any, source: Any, part: int, size: int, steps: int) -> Any:
        """`steps` batches of `source`'s rows of `part` (training ones shuffled), packed for
        the model (categories as the ids JAX takes)."""
        from taskfit.feed.stream import TRAIN, named

        layout = self.splits.layout

        def packed() -> Any:
            for batch in source.batches(part, size, shuffle=part == TRAIN):
                yield models.pack(named(batch, layout)), batch.y

        return sequential_batches(packed, steps)


VALIDATION_BATCH = 1024  # validation rows per process and step, when streamed


def sequential_batches(batches: Any, steps: int) -> Any:
    """A keras.utils.PyDataset of `steps` items drawn in order from a new `batches()` each
    epoch (a stream cannot jump to batch k: asking out of order starts it again)."""
    import keras

    class Sequential(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.stream: Any = None
            self.next = 0

        def __len__(self) -> int:
            return steps

        def __getitem__(self, k: int) -> Any:
            if self.stream is None or k != self.next:
                self.stream = batches()
                for _ in range(k):
                    next(self.stream)
            self.next = k + 1
            return next(self.stream)

        def on_epoch_end(self) -> None:
            self.stream = None

    return Sequential()


def global_batches(
    x: dict[str, Any], y: Any, batch: int, process: int, count: int, seed: int
) -> Any:
    """A keras.utils.PyDataset: this process's slice of each global batch, a new permutation of
    the rows each epoch."""
    import keras

    rows = len(next(iter(x.values())))
    local = batch // count

    def take(values: Any, rows: np.ndarray) -> Any:
        if isinstance(values, dict):
            return {k: v[rows] for k, v in values.items()}
        return values[rows]

    class GlobalBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(rows)

        def __len__(self) -> int:
            return rows // batch  # whole global batches only

        def __getitem__(self, k: int) -> tuple[Any, Any]:
            mine = self.order[k * batch : (k + 1) * batch][process * local : (process + 1) * local]
            return take(x, mine), take(y, mine)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(rows)

    return GlobalBatches()


def run_workers(
    cluster: Cluster, spec: SpecSource, overrides: Overrides, out: Path | None
) -> tuple[dict[str, Any], list[np.ndarray]] | None:
    """Start this machine's worker processes and wait for them. Returns process 0's history and
    weights when process 0 is among them (written under `out`), else None."""
    ids = list(range(cluster.count)) if cluster.process_id is None else [cluster.process_id]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    workers: dict[int, tuple[subprocess.Popen[bytes], Any]] = {}
    stop_on_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as logs:
        try:
            for i in ids:
                job = {
                    "spec": dict(spec) if isinstance(spec, Mapping) else str(spec),
                    "overrides": overrides,
                    "coordinator": cluster.coordinator,
                    "process_id": i,
                    "count": cluster.count,
                    "out": str(out / WORKER_FILES) if out is not None and i == 0 else None,
                }
                # a file, not a pipe: a chatty worker never blocks; the ExitStack closes it
                log = logs.enter_context(tempfile.TemporaryFile())
                command = [sys.executable, "-m", "taskfit.training.distributed", json.dumps(job)]
                popen = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
                workers[i] = popen, log
            failure = _first_failure(workers)
        finally:  # however this ends, no worker outlives it
            signal.signal(signal.SIGTERM, stop_on_sigterm)
            for popen, _ in workers.values():
                if popen.poll() is None:
                    popen.kill()
                    popen.wait()
    if failure is not None:
        raise TrainingFailed(f"worker process {failure[0]} of {cluster.count} {failure[1]}")
    if out is None or 0 not in ids:
        return None
    folder = out / WORKER_FILES
    doc = json.loads((folder / "fit.json").read_text(encoding="utf-8"))
    return doc, read_weights(folder / "weights.npz")


class TrainingFailed(TaskfitError):
    """A worker process ended with an error (its message included)."""


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
    raise SystemExit(128 + signum)  # unwinds through run_workers, which stops the workers


def serve(cluster: Cluster, spec: Path, overrides: Overrides) -> None:
    """A machine other than process 0's: check the spec, then run its one worker."""
    from taskfit.plan.checking import check_spec

    check_distributable(check_spec(spec, overrides, workers=True), cluster)
    run_workers(cluster, spec, overrides, None)


def fit_with_workers(
    keras: Any,
    checked: Any,
    splits: Any,
    cluster: Cluster,
    spec: SpecSource,
    overrides: Overrides,
    run_dir: Path,
) -> Any:
    """training.Fitted for `checked`, fitted by the cluster's processes."""
    result = run_workers(cluster, spec, overrides, run_dir)
    assert result is not None  # this machine runs process 0
    doc, weights = result
    shutil.rmtree(run_dir / WORKER_FILES, ignore_errors=True)  # model.keras will hold them
    return fitted_from_workers(keras, checked, splits, doc, weights)


def fitted_from_workers(
    keras: Any, checked: Any, splits: Any, doc: dict[str, Any], weights: list[np.ndarray]
) -> Any:
    """The workers' result as training.Fitted: the same model built here (TensorFlow), holding
    the weights process 0 saved, compiled for the test evaluation."""
    from taskfit.training.fit import Fitted, compile_plan

    models, trained, _, _ = compile_plan(keras, checked, checked.plan, splits)
    models.fit.set_weights(weights)
    return Fitted(
        models,
        trained,
        {k: [float(v) for v in vs] for k, vs in doc["history"].items()},
        {},
        {},
        doc["best_epoch"],
        doc["seconds"],
        doc["interrupted"],
        tuple(doc["diverged"]) if doc["diverged"] else None,
        processes=doc["processes"],
    )


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
    from taskfit.feed.streamsplits import open_stream
    from taskfit.model.keras_setup import import_keras
    from taskfit.plan.checking import check_spec
    from taskfit.training.fit import fit_plan, make_splits

    keras = import_keras()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    )
    checked = check_spec(job["spec"], job["overrides"], workers=True)
    seed = checked.loaded.spec.training.seed
    keras.utils.set_random_seed(seed)
    splits: Any
    if checked.data.streamed is not None:
        whole = open_stream(checked, processes=job["count"])
        splits = StreamShard(whole, job["process_id"], job["count"])
    else:
        splits = ShardedSplits(make_splits(checked), job["process_id"], job["count"], seed)
    started = time.perf_counter()
    fitted = fit_plan(keras, checked, checked.plan, splits)
    if job["out"] is None:
        return
    from taskfit.runfolder.files import write_json, write_weights

    folder = Path(job["out"])
    folder.mkdir(exist_ok=True)
    # replicated: every process holds the weights whole
    write_weights(folder / "weights.npz", fitted.models.fit.get_weights())
    doc = {
        "history": fitted.history,
        "best_epoch": fitted.best_epoch,
        "seconds": time.perf_counter() - started,
        "interrupted": fitted.interrupted,
        "diverged": list(fitted.diverged) if fitted.diverged else None,
        "processes": job["count"],
        "jax": jax.__version__,
    }
    write_json(folder / "fit.json", doc)


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
