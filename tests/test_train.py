"""Real Keras training: the run folder, --json, --smoke; slow tests hold the quality floors."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import helpers
import keras
import numpy as np
import pytest
import yaml
from helpers import uncalibrated, wait_for_epochs
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.spec.spec import load_spec
from taskfit.training.run import train

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
Write = Callable[[str, str], Path]


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    return helpers.tiny_spec(tmp_path, "multiclass", epochs=2, batch_size=8)


@pytest.mark.plots
def test_train_writes_the_run_folder(tiny_spec: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(tiny_spec), "--json", "--output", str(tmp_path / "runs")]
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("tiny-")
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.keras",
        "plan.json",
        "plots",
        "run.json",
        "spec.resolved.yaml",
        "status.json",
    ]
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert uncalibrated(metrics) == {"loss", "accuracy"} and metrics == doc["metrics"]
    with (run_dir / "history.csv").open() as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.output_shape == (None, 3)
    resolved = yaml.safe_load((run_dir / "spec.resolved.yaml").read_text())
    assert resolved["loss"] == "sparse_categorical_crossentropy"
    assert resolved["model"]["output"] == {"units": 3, "activation": "softmax"}
    assert resolved["optimizer"]["learning_rate"] == 0.001
    # the resolved spec is itself a valid spec that names the same data
    assert load_spec(run_dir / "spec.resolved.yaml").spec.data.source == str(
        tiny_spec.parent / "data.csv"
    )


def test_runs_never_share_a_folder(tiny_spec: Path, tmp_path: Path) -> None:
    first = train(tiny_spec, parse_set(["training.epochs=1"]), tmp_path, verbose=0)
    second = train(tiny_spec, parse_set(["training.epochs=1"]), tmp_path, verbose=0)
    assert first.run_dir != second.run_dir
    assert (first.run_dir / "model.keras").exists() and (second.run_dir / "model.keras").exists()


def test_same_seed_same_metrics(tiny_spec: Path, tmp_path: Path) -> None:
    a = train(tiny_spec, None, tmp_path, verbose=0)
    b = train(tiny_spec, None, tmp_path, verbose=0)
    assert a.metrics == b.metrics


def test_bad_output_folder_is_an_error_and_leaves_nothing(tiny_spec: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["train", str(tiny_spec), "--output", str(blocker / "runs")])
    assert result.exit_code == 1
    assert f"error: --output {blocker / 'runs'}: cannot create the folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_spec_errors_stop_train_before_tensorflow_work(write: Write, tmp_path: Path) -> None:
    spec = write(
        "spec.yaml",
        "task: regression\ndata: {source: breast_cancer, label: diagnosis}\n"
        "loss: binary_crossentropy\n",
    )
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "loss: binary_crossentropy belongs to the binary row, not regression" in result.stderr
    assert not (tmp_path / "runs").exists()


def console_script(config: str, output: Path, *args: str) -> list[str]:
    """`taskfit train configs/<config>.yaml --output <output> ...` with the installed script."""
    taskfit = Path(sys.executable).with_name("taskfit")
    spec = ROOT / "configs" / f"{config}.yaml"
    return [str(taskfit), "train", str(spec), "--output", str(output), *args]


def test_smoke_run_as_a_subprocess(tmp_path: Path) -> None:
    """The CI step: the installed console script, one epoch, reload check, one JSON document."""
    result = subprocess.run(
        console_script("binary", tmp_path, "--smoke", "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["smoke"]["reload_matches"] is True
    assert doc["epochs"] == 1 and doc["train_rows"] <= 256
    assert "smoke ok" in result.stderr.strip().splitlines()[-1]
    assert not (Path(doc["run_dir"]) / "plots").exists()  # one epoch: nothing worth drawing


def test_a_smoke_run_fits_its_rows_in_one_eager_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No tracing for a run of one epoch: one training step, run eagerly."""
    import tensorflow as tf

    eager: list[bool] = []
    step = keras.Model.train_step

    def counted(model: keras.Model, data: object) -> object:
        eager.append(tf.executing_eagerly())
        return step(model, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    result = train(ROOT / "configs" / "binary.yaml", None, tmp_path, smoke=True, verbose=0)
    assert result.train_rows > 32 and eager == [True]
    assert result.smoke is not None and result.smoke["reload_matches"]


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        ("binary", {}),
        ("binary", {"model.members": 3, "model.numeric_embedding": "periodic"}),
        ("uncertainty", {}),  # learned head weights: a wrapper model with its own loss
    ],
)
def test_a_fit_traces_its_train_step_once(
    config: str, overrides: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss, metric and optimizer state exist before fit: otherwise TensorFlow traces the
    train step a second time, once its first trace has made them."""
    import tensorflow as tf

    eager: list[bool] = []
    step = keras.Model.train_step

    def counted(model: keras.Model, data: object) -> object:
        eager.append(tf.executing_eagerly())
        return step(model, data)

    monkeypatch.setattr(keras.Model, "train_step", counted)
    epochs = {"training.epochs": 2, "training.refit": False}
    train(ROOT / "configs" / f"{config}.yaml", {**epochs, **overrides}, tmp_path, verbose=0)
    assert eager == [False]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "metric", "floor"),
    [
        # with every default; the other two without the small-table additions (their time).
        # breast_cancer's test split is 113 rows, so a row is 0.9 points: seeds 0-3 of the
        # defaults gave 94.7 / 97.3 / 98.2 / 96.5%
        pytest.param("binary", "accuracy", 0.94, marks=pytest.mark.additions),
        ("multiclass", "accuracy", 0.95),
        ("regression", "mae", 50.0),
    ],
)
def test_quality_floors_on_bundled_data(
    config: str, metric: str, floor: float, tmp_path: Path
) -> None:
    result = train(ROOT / "configs" / f"{config}.yaml", None, tmp_path, verbose=0)
    assert bool(result.checked.plan.additions) == (config == "binary")
    value = result.metrics[metric]
    assert value <= floor if metric == "mae" else value >= floor, result.metrics


def test_ctrl_c_stops_cleanly_keeps_the_best_weights_and_exits_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        console_script(
            "multiclass",
            tmp_path,
            "--set",
            "training.epochs=1000",
            "--set",
            "training.early_stopping.patience=1000",
            # one body: a five-member ensemble only slows the test; the refit stays on (and
            # must not run after Ctrl-C)
            "--set",
            "model.members=1",
            "--set",
            "model.numeric_embedding=none",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = wait_for_epochs(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)  # a loaded machine can be slow to finish the batch
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted"
    assert "Ctrl-C after" in status["reason"] and "kept the weights of epoch" in status["reason"]
    with (run_dir / "history.csv").open() as f:
        epochs = len(list(csv.DictReader(f)))
    assert epochs >= 2  # it stopped at a batch boundary of the epoch Ctrl-C came in
    assert "refit" not in json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.5  # the kept weights are trained ones (10 digits)
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.output_shape == (None, 10)


def test_a_loss_that_is_not_a_number_stops_training_and_says_why(
    write: Write, tmp_path: Path
) -> None:
    spec = write(
        "nan.yaml",
        "task: regression\ndata: {source: diabetes, label: progression}\n"
        "optimizer: {name: sgd, learning_rate: 10.0}\ntraining: {epochs: 50}\n",
    )
    result = runner.invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "error: training diverged: the loss became" in result.stderr
    assert "in epoch 1 (batch" in result.stderr and "sgd at 10.0" in result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "training diverged" in status["reason"]
    assert not (run_dir / "model.keras").exists()  # nothing that looks like a result
    again = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert again.exit_code == 1 and "this run diverged" in again.stderr
    with (run_dir / "history.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 1  # stopped in the first epoch


def test_weights_that_turn_nan_on_the_last_step_fail_the_run(tmp_path: Path) -> None:
    """Every batch's loss was a number (the rate jumps for the last of 3 steps, after its loss
    is taken), the weights after it were not: the run used to end "completed" with a NaN
    model and NaN metrics."""
    jump = "schedule: {name: piecewise_constant, boundaries: [1], values: [0.01, 1.0e+30]}\n"
    spec = helpers.tiny_spec(tmp_path, "binary", epochs=1, extra=jump)
    result = runner.invoke(
        app, ["train", str(spec), "--output", str(tmp_path / "runs"), "--set", "model.members=1"]
    )
    assert result.exit_code == 1, result.output
    assert "the loss became nan in epoch 1 (at its end)" in result.stderr
    assert "the schedule piecewise_constant" in result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
    assert not (run_dir / "model.keras").exists()


def test_same_spec_and_seed_give_the_same_metrics_and_weights(
    tiny_spec: Path, tmp_path: Path
) -> None:
    runs = [
        train(tiny_spec, parse_set(["training.epochs=3"]), tmp_path / str(i), verbose=0)
        for i in (1, 2)
    ]
    first, second = (json.loads((r.run_dir / "metrics.json").read_text()) for r in runs)
    assert first == second
    for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_runs_started_in_the_same_second_never_share_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as real

    from taskfit.runfolder import files as runfolder

    class Frozen(real.datetime):
        @classmethod
        def now(cls, tz: real.tzinfo | None = None) -> Frozen:
            return cls(2026, 11, 25, 12, 0, 0, tzinfo=tz)

    monkeypatch.setattr(runfolder, "datetime", Frozen)
    folders = [runfolder.create_run_dir(tmp_path, "same") for _ in range(3)]
    assert [f.name for f in folders] == [
        "same-20261125T120000Z",
        "same-20261125T120000Z-2",
        "same-20261125T120000Z-3",
    ]


def test_files_in_a_run_folder_are_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while writing leaves the previous file as it was, never a truncated one."""
    from taskfit.runfolder import files as runfolder

    target = tmp_path / "metrics.json"
    runfolder.write_json(target, {"loss": 1.0})

    class HalfWritten:
        def __init__(self, path: Path, mode: str) -> None:
            self.file = open(path, mode)  # noqa: SIM115

        def __enter__(self) -> HalfWritten:
            return self

        def write(self, data: bytes) -> int:
            self.file.write(data[:3])  # half written, then the machine goes away
            raise OSError("disk gone")

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    monkeypatch.setattr(runfolder, "open", HalfWritten, raising=False)
    with pytest.raises(OSError):
        runfolder.write_json(target, {"loss": 2.0})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"loss": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left

    class Crashing:
        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"PK\x03")  # a truncated zip
            raise OSError("disk gone")

    model = tmp_path / "model.keras"
    model.write_bytes(b"the previous model")
    with pytest.raises(OSError):
        runfolder.save_model(Crashing(), model)
    assert model.read_bytes() == b"the previous model"


def test_tensorboard_logs_go_in_the_run_folder(tiny_spec: Path, tmp_path: Path) -> None:
    result = train(
        tiny_spec,
        parse_set(["training.tensorboard=true", "training.epochs=2"]),
        tmp_path,
        verbose=0,
    )
    events = list((result.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} == {"train", "validation"}


def test_tensorboard_without_its_package_is_refused_by_check(
    tiny_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    result = runner.invoke(app, ["check", str(tiny_spec), "--set", "training.tensorboard=true"])
    assert result.exit_code == 1
    assert "pip install 'taskfit[tensorboard]'" in result.stderr


def learning_rates(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open() as f:
        return [float(row["learning_rate"]) for row in csv.DictReader(f)]


def test_a_plateau_cuts_the_learning_rate_and_history_shows_it(tmp_path: Path) -> None:
    """At a rate too small to move val_loss by Keras's min_delta, nothing improves after the
    first epoch: with patience 1 every later epoch ends with a cut (logged: the rate in force)."""
    spec = helpers.tiny_spec(
        tmp_path, "binary", epochs=4, extra="optimizer: {name: adam, learning_rate: 1.0e-9}\n"
    )
    cut = "training.early_stopping.reduce_lr"
    overrides = [f"{cut}.patience=1", f"{cut}.factor=0.5", f"{cut}.min_lr=0"]
    sets = [f"--set={o}" for o in overrides]
    result = runner.invoke(app, ["train", str(spec), *sets, "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "learning rate cut on a plateau: 5e-10 from epoch 3, 2.5e-10 from epoch 4" in (
        result.stderr
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert learning_rates(run_dir) == pytest.approx([1e-9, 1e-9, 5e-10, 2.5e-10], rel=1e-5)
    resolved = yaml.safe_load((run_dir / "spec.resolved.yaml").read_text())
    assert resolved["training"]["early_stopping"]["reduce_lr"] == {
        "factor": 0.5, "patience": 1, "min_lr": 0.0
    }  # fmt: skip


@pytest.mark.parametrize("monitor", ["val_accuracy", "val_auc"])
def test_a_plateau_on_a_metric_where_more_is_better(tmp_path: Path, monitor: str) -> None:
    """Keras learns a metric's direction only after the first batch; taskfit tells it up front
    (a traceback before the first epoch, once). Accuracy frozen at a rate of 1e-9 is a plateau."""
    spec = helpers.tiny_spec(
        tmp_path, "binary", epochs=3, extra="optimizer: {name: adam, learning_rate: 1.0e-9}\n"
    )
    sets = [f"--set=training.early_stopping.monitor={monitor}"]
    sets += [f"--set=training.early_stopping.reduce_lr.{k}" for k in ("patience=1", "min_lr=0")]
    result = runner.invoke(app, ["train", str(spec), *sets, "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert learning_rates(run_dir) == pytest.approx([1e-9, 1e-9, 3e-10], rel=1e-5)


def test_a_schedule_owns_the_rate_and_no_plateau_cuts_it(tmp_path: Path) -> None:
    """Keras cannot set the rate of a schedule: with one, the plateau rule stays off (it would
    cut, and fail, at epoch 2 here)."""
    spec = helpers.tiny_spec(
        tmp_path,
        "binary",
        epochs=3,
        extra="schedule: {name: exponential_decay, initial_learning_rate: 1.0e-9, "
        "decay_steps: 1000, decay_rate: 0.9}\n",
    )
    overrides = parse_set(["training.early_stopping.reduce_lr.patience=1"])
    result = train(spec, overrides, tmp_path / "runs", verbose=0)
    rates = learning_rates(result.run_dir)
    assert len(rates) == 3 and rates[-1] == pytest.approx(1e-9, rel=0.01)  # decays by steps only


@pytest.mark.parametrize("patience", [0, 2])
@pytest.mark.parametrize(
    ("monitor", "mode", "sign"), [("val_loss", "min", 1), ("val_auc", "max", -1)]
)
def test_a_resumed_plateau_counts_as_the_uninterrupted_one(
    patience: int, monitor: str, mode: str, sign: int
) -> None:
    """Replaying the earlier rows leaves the counters where Keras's own epochs left them, for a
    quantity where more is better too (replayed before any metric is built)."""
    from taskfit.training.resume import ResumablePlateau

    values = [sign * v for v in (1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.9, 0.91)]

    def plateau() -> ResumablePlateau:
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        callback = ResumablePlateau(
            monitor=monitor, mode=mode, patience=patience, factor=0.5, start_from_epoch=1
        )
        callback.set_model(model)
        callback.on_train_begin()
        return callback

    live, replayed = plateau(), plateau()
    for epoch, value in enumerate(values):
        live.on_epoch_end(epoch, {monitor: value})
    assert float(live.model.optimizer.learning_rate) < 1e-3  # the values hold a plateau
    replayed.resume({monitor: values})
    assert (replayed.wait, replayed.best) == (live.wait, live.best)


@pytest.mark.parametrize(
    ("patience", "said"),
    [
        (1, "early stopping: 2 of 4 epochs run; kept the weights of epoch 1"),
        (10, "all 4 epochs run; kept the weights of epoch 1, the best on the monitored quantity"),
    ],
)
def test_the_output_says_whether_training_stopped_early(
    tmp_path: Path, patience: int, said: str
) -> None:
    """At a rate of 1e-9 val_loss never improves by min_delta after epoch 1."""
    spec = helpers.tiny_spec(
        tmp_path, "binary", epochs=4, extra="optimizer: {name: adam, learning_rate: 1.0e-9}\n"
    )
    stopping = "--set=training.early_stopping"
    sets = [f"{stopping}.patience={patience}", f"{stopping}.min_delta=0.01"]
    result = runner.invoke(app, ["train", str(spec), *sets, "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert said in result.stderr
    assert ("early stopping:" in result.stderr) == (patience == 1)
