"""train --workers / --coordinator: data-parallel on the JAX backend, two processes on the
loopback against one process with the same global batch."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import mixed_csv, wait_for_epochs
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.runfolder.files import write_weights
from taskfit.runfolder.layout import FORMAT

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[1]
TASKFIT = str(Path(sys.executable).with_name("taskfit"))
runner = CliRunner()
# 3 epochs of 20 steps, and no validation rows to cut to equal shards: the two runs see the same
# rows
SETTINGS = [
    "--set=training.epochs=3",
    "--set=training.batch_size=16",
    "--set=data.validation_fraction=0",
    "--set=training.early_stopping=null",
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Numbers with gaps and a heavy tail, a one-hot and an embedded category column (JAX
    looks them up before the model), a yes/no label."""
    folder = tmp_path_factory.mktemp("data")
    lines = mixed_csv(400).splitlines()
    rows = [lines[0] + ",shop,visits"] + [
        f"{line},shop {i % 40},{5000 if i % 25 == 0 else i % 9}" for i, line in enumerate(lines[1:])
    ]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    path = folder / "spec.yaml"
    path.write_text("task: binary\ndata: {source: data.csv, label: bought}\n")
    return path


def train(spec: Path, output: Path, *cluster: str) -> Path:
    command = [TASKFIT, "train", str(spec), *SETTINGS, "--json", "--output", str(output), *cluster]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["run_dir"])


def losses(run: Path) -> list[float]:
    with (run / "history.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def assert_same_run(run: Path, reference: Path) -> None:
    """Same batches, summed in another order: equal to float32 rounding."""
    assert losses(run) == pytest.approx(losses(reference), rel=1e-5)
    metrics, expected = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    assert metrics == pytest.approx(expected, abs=1e-5)
    ours, theirs = (
        keras.saving.load_model(r / "model.keras").get_weights() for r in (run, reference)
    )
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs, strict=True)) < 1e-5


@pytest.fixture(scope="module")
def reference(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(spec, tmp_path_factory.mktemp("one"), "--workers", "1")


@pytest.mark.slow
@pytest.mark.workers
def test_two_workers_match_one_process_with_the_same_global_batch(
    spec: Path, reference: Path, tmp_path: Path
) -> None:
    run = train(spec, tmp_path, "--workers", "2")
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    assert not (run / ".workers").exists()  # the weights live in model.keras
    assert_same_run(run, reference)
    assert "on 2 processes (train --workers)" in runner.invoke(app, ["report", str(run)]).stdout


@pytest.mark.slow
@pytest.mark.workers
def test_two_machines_on_the_loopback(spec: Path, reference: Path, tmp_path: Path) -> None:
    """docs/distributed.md's two-machine command lines, both on this machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    second = subprocess.Popen(
        [TASKFIT, "train", str(spec), *SETTINGS, "--output",
         str(tmp_path / "second"), *cluster, "--process-id", "1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run = train(spec, tmp_path / "first", *cluster, "--process-id", "0")
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    assert "process 1 of 2 finished; process 0 writes the run folder" in err
    assert not (tmp_path / "second").exists()
    assert_same_run(run, reference)


@pytest.fixture(scope="module")
def streamed_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A streamed CSV of 3000 rows (about 90 KB: cut into blocks of about 6 KB for two
    processes); the id column is a feature here, so that a test can tell the rows apart."""
    folder = tmp_path_factory.mktemp("streamed")
    lines = mixed_csv(3000).splitlines()
    rows = [lines[0] + ",shop"] + [f"{line},shop {i % 40}" for i, line in enumerate(lines[1:])]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    path = folder / "spec.yaml"
    path.write_text(
        "task: binary\ndata: {source: data.csv, label: bought, streaming: true, numeric: [id]}\n"
    )
    return path


def test_each_process_of_a_streamed_run_reads_only_its_own_blocks(
    streamed_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process i of 2 reads every other block the scan found, and no other; both take the
    same number of whole batches and validation rows; no row is fed twice."""
    from taskfit.data.columns import NUMERIC
    from taskfit.feed import stream
    from taskfit.feed.chunk import TRAIN, Chunk
    from taskfit.plan.checking import check_spec
    from taskfit.training import feeding
    from taskfit.training.fit import make_splits

    checked = check_spec(streamed_spec)
    numeric = checked.data.of_kind(NUMERIC)
    read: list[int] = []
    real = stream._reread

    def recording(path: Path, spans: list[stream.Span]):  # type: ignore[no-untyped-def]
        read.extend(span.offset for span in spans)
        yield from real(path, spans)

    monkeypatch.setattr(stream, "_reread", recording)

    class Unpacked:  # the columns as named() gives them, so the ids can be read back
        def pack(self, rows: Chunk) -> dict[str, np.ndarray]:
            return rows.named(numeric)

    fed, offsets, steps, validation = [], [], [], []
    for process in (0, 1):
        shard = make_splits(checked, processes=2).sharded(process, 2)
        spans = shard.scanned.spans
        assert len(spans) >= 2 * stream.SHARE_BLOCKS
        read.clear()
        feed = feeding.fit_data(Unpacked(), checked.plan, shard, 32)["x"]  # type: ignore[arg-type]
        batches = [feed[k] for k in range(len(feed))]
        assert all(len(y) == 16 for _, y in batches)  # the local half of each global batch
        offsets.append(set(read))
        assert offsets[-1] == {span.offset for span in spans[process::2]}
        fed.append([int(v) for x, _ in batches for v in x["id"].ravel()])
        steps.append(len(feed))
        rows = feeding.validation_data(Unpacked(), checked.plan, shard)  # type: ignore[arg-type]
        validation.append(sum(len(rows[k][1]) for k in range(len(rows))))
    assert steps[0] == steps[1] and validation[0] == validation[1] > 0
    assert not offsets[0] & offsets[1]
    ids = fed[0] + fed[1]
    assert len(ids) == len(set(ids))  # no row twice, in one process or across both
    whole = make_splits(checked)  # one process: every training row
    train = {
        int(v)
        for batch in whole.batches(TRAIN, 1024, shuffle=False)
        for v in batch.named(numeric)["id"].ravel()
    }
    assert set(ids) <= train and len(ids) > 0.9 * len(train)


@pytest.mark.slow
@pytest.mark.workers
def test_a_streamed_run_on_two_workers_learns_like_one_process(
    streamed_spec: Path, tmp_path: Path
) -> None:
    """Each process reads its own blocks, so the batches differ from one process's: the
    result matches statistically (stated tolerance: test accuracy within 2 points, test loss
    within 30%)."""
    settings = ["--set=training.epochs=5", "--set=training.batch_size=32", "--json"]
    settings.append("--set=training.early_stopping=null")
    runs = {}
    for name, cluster in {"one": [], "two": ["--workers", "2"]}.items():
        command = [
            TASKFIT,
            "train",
            str(streamed_spec),
            *settings,
            "--output",
            str(tmp_path / name),
        ]
        done = subprocess.run([*command, *cluster], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs[name] = json.loads(done.stdout)
    one, two = runs["one"]["metrics"], runs["two"]["metrics"]
    assert json.loads((Path(runs["two"]["run_dir"]) / "run.json").read_text())["processes"] == 2
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.02
    # the loss of the model as fitted: each run's calibration then sharpens a near-separable
    # table's probabilities by its own temperature, which near 0 loss moves the figure far
    fitted = "log_loss_uncalibrated" if "log_loss_uncalibrated" in one else "loss"
    assert two[fitted] == pytest.approx(one[fitted], rel=0.3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2", "--process-id", "0"], "--workers runs every process here"),
        (["--coordinator", "h:1", "--num-processes", "2"], "several machines need all of"),
        (
            ["--coordinator", "h:1", "--process-id", "2", "--num-processes", "2"],
            "--process-id 2: processes are numbered 0 to 1",
        ),
    ],
)
def test_cluster_options_are_checked(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", str(ROOT / "configs" / "binary.yaml"), *args])
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.slow
@pytest.mark.workers
def test_a_killed_workers_run_resumes_on_two_workers_as_if_never_stopped(
    spec: Path, reference: Path, tmp_path: Path
) -> None:
    """SIGKILL to the whole process group (this process and both workers) after epoch 1 of 3;
    `--resume --workers 2` goes on from process 0's checkpoint and ends with the losses and
    weights of an uninterrupted run (one process with the same global batch, which two
    uninterrupted ones match: test_two_workers_match_one_process_with_the_same_global_batch)."""
    command = [TASKFIT, "train", str(spec), *SETTINGS, "--workers", "2"]
    proc = subprocess.Popen(
        [*command, "--output", str(tmp_path / "killed")],
        stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    run = wait_for_epochs(tmp_path / "killed", 1, proc)
    checkpoint = run / "backup" / "training_metadata.json"  # written after history.csv's row
    while not checkpoint.exists() and proc.poll() is None:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 1 <= len(losses(run)) < 3 and not (run / "model.keras").exists()

    alone = runner.invoke(app, ["train", "--resume", str(run)])
    assert alone.exit_code == 1, alone.output
    assert "trained on several processes (--workers), and the checkpoint holds" in alone.stderr
    cluster = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    refused = runner.invoke(app, ["train", "--resume", str(run), *cluster])
    assert refused.exit_code == 2 and "no checkpoint to start from" in refused.stderr

    resumed = runner.invoke(app, ["train", "--resume", str(run), "--workers", "2", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert history(run)["epoch"] == ["1", "2", "3"]
    assert_same_run(run, reference)
    assert not (run / "backup").exists()


def test_a_one_process_run_is_not_resumed_on_workers(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    (folder / "backup").mkdir(parents=True)
    (folder / "spec.resolved.yaml").write_text(
        "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"
    )
    (folder / "status.json").write_text(json.dumps({"status": "running", "format": FORMAT}))
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n")
    write_weights(folder / "backup" / "epoch-0001.npz", [np.zeros(2)])
    (folder / "backup" / "training_metadata.json").write_text(
        '{"epoch": 1, "batch": 0, "weights": "epoch-0001.npz"}'
    )
    result = runner.invoke(app, ["train", "--resume", str(folder), "--workers", "2"])
    assert result.exit_code == 1, result.output
    assert "its epochs were trained in one process" in result.stderr
    assert "resume it without --workers" in result.stderr


def test_a_batch_that_does_not_divide_among_the_workers_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.csv").write_text(mixed_csv(60))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: binary\ndata: {source: data.csv, label: bought, streaming: true}\n"
        "training: {batch_size: 33}\n"
    )
    result = runner.invoke(
        app, ["train", str(spec), "--workers", "2", "--output", str(tmp_path / "runs")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert (
        "--workers: training.batch_size 33 must divide into the 2 processes' equal slices"
        in result.stderr
    ), result.stderr
    assert not (tmp_path / "runs").exists()
    for process in ("0", "1"):  # the flag named is the one given
        cluster = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", process]
        result = runner.invoke(
            app, ["train", str(spec), *cluster, "--output", str(tmp_path / "runs")]
        )
        assert result.exit_code == 1 and "--num-processes: training.batch_size 33" in result.stderr
    assert not (tmp_path / "runs").exists()


def history(run: Path) -> dict[str, list[str]]:
    with (run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: [row[k] for row in rows] for k in rows[0]}


@pytest.fixture(scope="module")
def heads_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two heads under dwa weights, one of them with a loss schedule: both are variables the
    loss reads, which the compiled JAX step must see change."""
    folder = tmp_path_factory.mktemp("heads")
    (folder / "data.csv").write_text(mixed_csv(400))
    path = folder / "spec.yaml"
    path.write_text(
        "data: {source: data.csv}\nheads:\n"
        "  bought: {task: binary, label: bought, loss: {schedule: [{loss: binary_crossentropy, "
        "until_epoch: 1}, {loss: binary_focal_crossentropy}]}}\n"
        "  age: {task: regression, label: age}\nloss_weighting: {name: dwa}\n"
    )
    return path


@pytest.mark.slow
@pytest.mark.workers
def test_loss_schedules_and_learned_weights_on_two_workers_match_one_process(
    heads_spec: Path, tmp_path: Path
) -> None:
    one = train(heads_spec, tmp_path / "one", "--workers", "1")
    two = train(heads_spec, tmp_path / "two", "--workers", "2", "--baseline-single")
    assert_same_run(two, one)
    seen = history(two)
    assert seen["bought_active_loss"] == [
        "binary_crossentropy", "binary_focal_crossentropy", "binary_focal_crossentropy"
    ]  # fmt: skip
    # the step weighed the heads by dwa's weights of each epoch (not the 1.0 it was traced
    # with): the logged total is their weighted sum
    weights = [float(w) for w in seen["bought_weight"]]
    assert weights[2] != pytest.approx(1.0, abs=1e-4)
    for epoch in range(3):
        total = sum(
            float(seen[f"{h}_weight"][epoch]) * float(seen[f"{h}_loss"][epoch])
            for h in ("bought", "age")
        )
        assert float(seen["loss"][epoch]) == pytest.approx(total, rel=1e-4)
    baseline = json.loads((two / "baseline_single.json").read_text())
    assert set(baseline) == {"bought", "age"}


@pytest.mark.slow
@pytest.mark.workers
@pytest.mark.parametrize("sharing", ["soft", "mmoe"])
def test_soft_sharing_and_experts_on_two_workers_match_one_process(
    sharing: str, heads_spec: Path, tmp_path: Path
) -> None:
    """The soft penalty (an add_loss the JAX step must collect) and the experts' gates train
    on the workers as in one process, and log the same penalty and gate weights."""
    setting = ("--set", f"model.sharing={sharing}")
    one = train(heads_spec, tmp_path / "one", "--workers", "1", *setting)
    two = train(heads_spec, tmp_path / "two", "--workers", "2", *setting)
    assert_same_run(two, one)
    column = "sharing_penalty" if sharing == "soft" else "bought_gate_1"
    logged = [float(v) for v in history(two)[column]]
    assert logged == pytest.approx([float(v) for v in history(one)[column]], rel=1e-4)
    if sharing == "soft":
        # the total the workers minimised holds the penalty (the total is the epoch's mean,
        # the penalty its value at the end: a little lower, as the towers drew together)
        seen = history(two)
        weighted = [
            float(seen[f"{h}_loss"][0]) * float(seen[f"{h}_weight"][0]) for h in ("bought", "age")
        ]
        assert float(seen["loss"][0]) - sum(weighted) == pytest.approx(logged[0], rel=0.1)


@pytest.mark.slow
@pytest.mark.workers
def test_the_small_table_additions_and_a_smoke_run_on_two_workers(
    spec: Path, tmp_path: Path
) -> None:
    """Two members, the periodic embedding and a refit, fitted and refitted by the workers."""
    additions = [
        "--set=model.members=2",
        "--set=model.numeric_embedding=periodic",
        "--set=training.refit=true",
        "--set=training.epochs=3",
    ]
    command = [TASKFIT, "train", str(spec), *additions, "--json", "--workers", "2"]
    done = subprocess.run(
        [*command, "--output", str(tmp_path / "runs")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    run = Path(doc["run_dir"])
    facts = json.loads((run / "run.json").read_text())
    assert facts["processes"] == 2
    assert doc["refit"]["rows"] == facts["rows"]["train"] + facts["rows"]["validation"]
    model = keras.saving.load_model(run / "model.keras")
    assert {"periodic", "members_mean"} <= {
        layer.name for layer in model.get_layer("preprocess_and_body").layers
    }
    smoke = subprocess.run(
        [TASKFIT, "train", str(spec), "--smoke", "--workers", "2", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert smoke.returncode == 0, smoke.stderr
    assert "smoke ok:" in smoke.stderr and "reload matches" in smoke.stderr


def test_without_jax_the_message_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "jax":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    result = runner.invoke(app, ["train", str(ROOT / "configs" / "binary.yaml"), "--workers", "2"])
    assert result.exit_code == 1
    assert 'needs JAX, which is not installed; pip install "taskfit[distributed]"' in result.stderr


def test_a_worker_that_dies_stops_the_others_and_says_which(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process 1 is killed once training runs: the parent stops process 0 at once (not after
    JAX's heartbeat timeout), names process 1 and the signal, and leaves no worker behind."""
    import threading

    from taskfit.training import distributed

    real_popen = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def recording(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    def kill_the_second() -> None:
        while len(started) < 2:
            threading.Event().wait(0.05)
        threading.Event().wait(8)  # well into start-up or training
        started[1].kill()

    monkeypatch.setattr(distributed.subprocess, "Popen", recording)
    threading.Thread(target=kill_the_second, daemon=True).start()
    cluster = distributed.local_cluster(2)
    with pytest.raises(
        distributed.TrainingFailed, match="worker process 1 of 2 was stopped by signal SIGKILL"
    ):
        distributed.run_workers(cluster, spec, parse_set(["training.epochs=200"]), tmp_path)
    assert all(p.poll() is not None for p in started)


def test_a_share_smaller_than_one_local_batch_is_a_clear_error(streamed_spec: Path) -> None:
    from taskfit.errors import TaskfitError
    from taskfit.plan.checking import check_spec
    from taskfit.training import feeding
    from taskfit.training.fit import make_splits

    checked = check_spec(streamed_spec)
    shard = make_splits(checked, processes=2).sharded(0, 2)
    with pytest.raises(TaskfitError, match="fewer than its 5000 of each batch; use fewer"):
        feeding.fit_data(None, checked.plan, shard, 10000)  # type: ignore[arg-type]
