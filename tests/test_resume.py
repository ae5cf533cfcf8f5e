"""A run killed mid-training carries on with `train --resume` as if nothing had happened."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import wait_for_epochs
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.errors import Terminated
from taskfit.training.run import train

Write = Callable[[str, str], Path]
runner = CliRunner()
# A learning-rate schedule (its position lives in the optimizer's step count) and early stopping
# that could stop but does not (its best weights and counters must survive the kill).
SPEC = (
    "task: regression\n"
    "data: {source: diabetes, label: progression}\n"
    "schedule: {name: exponential_decay, initial_learning_rate: 0.003, decay_steps: 50,"
    " decay_rate: 0.7}\n"
    # a packed ensemble's checkpoint; the layers and additions given, as the in-process runs
    # here go without the small-table defaults (conftest) and the killed subprocess with them
    "model: {layers: [{units: 64}, {units: 32}], members: 2, numeric_embedding: periodic,"
    " numeric_clipping: smooth}\n"
    "training: {epochs: 12, early_stopping: {patience: 100}, refit: false, bagging: true}\n"
)


def epochs(run_dir: Path) -> list[str]:
    with (run_dir / "history.csv").open() as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def status(run_dir: Path) -> str:
    return str(json.loads((run_dir / "status.json").read_text())["status"])


def test_a_killed_run_resumes_from_its_last_epoch(write: Write, tmp_path: Path) -> None:
    spec = write("spec.yaml", SPEC)
    whole = train(spec, output=tmp_path / "whole", verbose=0)
    assert whole.checked.plan.members == 2 and whole.checked.plan.periodic

    taskfit = Path(sys.executable).with_name("taskfit")
    command = [str(taskfit), "train", str(spec), "--output", str(tmp_path / "killed")]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL, text=True)
    run_dir = wait_for_epochs(tmp_path / "killed", 6, proc)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: a crash
    proc.wait(timeout=30)
    assert status(run_dir) == "running"
    said = runner.invoke(app, ["report", str(run_dir)])
    assert f"running (but its process {proc.pid} is gone: killed or crashed" in said.stdout
    done = epochs(run_dir)
    assert 5 <= len(done) <= 7 and not (run_dir / "model.keras").exists()

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_dir"] == str(run_dir) and doc["epochs"] == 12
    assert epochs(run_dir) == [str(i) for i in range(1, 13)]  # every epoch exactly once
    assert status(run_dir) == "completed"
    assert not (run_dir / "backup").exists()
    # Same split, weights, optimizer state and schedule position: the same result. Keras's
    # checkpoint holds everything the next epochs read, and op determinism is on, so here the
    # figures match to the last digit; the tolerance only allows for float summation order.
    assert doc["metrics"] == pytest.approx(whole.metrics, rel=1e-4)
    with (whole.run_dir / "history.csv").open() as a, (run_dir / "history.csv").open() as b:
        whole_rows, resumed_rows = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [float(r["val_loss"]) for r in resumed_rows] == pytest.approx(
        [float(r["val_loss"]) for r in whole_rows], rel=1e-4
    )


@pytest.mark.parametrize(
    ("step", "said"),
    [("save_model", "before saving a model"), ("write_run_plots", "after saving the model")],
)
def test_a_run_stopped_while_saving_its_result_resumes_to_it(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, said: str
) -> None:
    """SIGTERM after the last epoch, before model.keras is written (or after it, before the
    plots and the final status): --resume fits no epoch but saves what the uninterrupted run
    saves (the history replayed, the best weights kept)."""
    import taskfit.training.run

    spec = write("spec.yaml", SPEC.replace("patience: 100", "patience: 3"))
    whole = train(spec, output=tmp_path / "whole", verbose=0)

    def stopped(*args: object) -> None:
        raise Terminated()

    with monkeypatch.context() as patched:
        patched.setattr(taskfit.training.run, step, stopped)
        with pytest.raises(Terminated):
            train(spec, output=tmp_path / "stopped", verbose=0)
    (run_dir,) = (tmp_path / "stopped").iterdir()
    record = json.loads((run_dir / "status.json").read_text())
    assert record["status"] == "interrupted" and said in record["reason"]
    if step == "save_model":
        assert not (run_dir / "model.keras").exists()
        export = runner.invoke(
            app,
            ["export", str(run_dir), "--format", "savedmodel", "--output", str(tmp_path / "sm")],
        )
        assert export.exit_code == 1
        assert "holds no model.keras; its training is interrupted (SIGTERM: stopped before" in (
            export.stderr
        )
        assert f"`taskfit train --resume {run_dir}` carries on" in export.stderr

    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert status(run_dir) == "completed" and (run_dir / "model.keras").is_file()
    assert epochs(run_dir) == epochs(whole.run_dir)  # no epoch ran again, none was lost
    assert doc["best_epoch"] == whole.best_epoch
    assert doc["metrics"] == pytest.approx(whole.metrics, rel=1e-4)


def test_resume_refuses_what_it_cannot_carry_on(write: Write, tmp_path: Path) -> None:
    spec = write("spec.yaml", SPEC.replace("epochs: 12", "epochs: 1"))
    done = train(spec, output=tmp_path / "runs", verbose=0)
    completed = runner.invoke(app, ["train", "--resume", str(done.run_dir)])
    assert completed.exit_code == 1
    assert "this run completed; there is nothing to resume" in completed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "spec.resolved.yaml").write_text((done.run_dir / "spec.resolved.yaml").read_text())
    (empty / "status.json").write_text('{"status": "running"}')
    never = runner.invoke(app, ["train", "--resume", str(empty)])
    assert never.exit_code == 1 and "no epoch finished before it stopped" in never.stderr
    not_a_run = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert not_a_run.exit_code == 1 and "not a run folder" in not_a_run.stderr
    both = runner.invoke(app, ["train", str(spec), "--resume", str(done.run_dir)])
    assert both.exit_code == 2


def test_a_crash_while_checkpointing_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras's own BackupAndRestore writes in place: killed mid-write, its weights file is torn
    (resume then fails: "bad object header"). Here the previous epoch's checkpoint survives a
    kill while the next epoch's state is written."""
    import keras
    import numpy as np

    from taskfit.training import resume
    from taskfit.training.resume import EpochCheckpoint

    def model() -> keras.Model:
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        m.optimizer.build(m.trainable_variables)  # as after a first training step
        return m

    first = model()
    saving = EpochCheckpoint(tmp_path / "backup", lambda: False)
    saving.set_model(first)
    saving.on_epoch_end(0)  # epoch 1 checkpointed
    kept = [w.copy() for w in first.get_weights()]

    def torn(path: Path, weights: object) -> None:
        path.write_bytes(b"PK\x03\x04")  # the first bytes of an .npz (a zip), then the kill
        raise OSError("killed")

    first.set_weights([w + 1 for w in kept])
    monkeypatch.setattr(resume, "write_weights", torn)
    with pytest.raises(OSError, match="killed"):
        saving.on_epoch_end(1)  # epoch 2 dies half-written

    second = model()
    loading = EpochCheckpoint(tmp_path / "backup", lambda: False)
    loading.set_model(second)
    loading.on_train_begin()
    assert second._initial_epoch == 1
    for got, want in zip(second.get_weights(), kept, strict=True):
        np.testing.assert_array_equal(got, want)


def test_this_keras_has_every_internal_that_resuming_uses(tmp_path: Path) -> None:
    """A Keras outside pyproject's pin, or one that renamed an internal, fails here by name."""
    import importlib.metadata

    import keras
    from packaging.requirements import Requirement

    from taskfit.training.resume import KERAS_INTERNALS

    (pinned,) = [
        r
        for r in map(Requirement, importlib.metadata.requires("taskfit") or [])
        if r.name == "keras"
    ]
    assert keras.__version__ in pinned.specifier, f"Keras {keras.__version__} is untested"
    missing = [
        f"{owner.__name__}.{name}"
        for owner, names in KERAS_INTERNALS.items()
        for name in names
        if not callable(getattr(owner, name, None))
    ]
    assert not missing, f"Keras {keras.__version__} lacks {missing}"
    backup = keras.callbacks.BackupAndRestore(tmp_path)
    assert hasattr(backup, "_current_epoch") and hasattr(backup, "_weights_path")
