"""taskfit runs Keras on TensorFlow whatever KERAS_BACKEND says (taskfit/model/keras_setup.py):
the command line sets it, a Python caller already on another backend is told."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import NO_ADDITIONS, TASKFIT, mixed_csv

SPEC = "task: binary\ndata: {source: data.csv, label: bought, categorical: [plan]}\n"


def on_jax() -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": "jax"}


@pytest.mark.slow
def test_the_command_line_trains_and_predicts_with_jax_in_the_shell(tmp_path: Path) -> None:
    """KERAS_BACKEND=jax in the shell once broke predict (a traceback) and train's plots; a
    category column goes through the saved model's string lookups."""
    (tmp_path / "data.csv").write_text(mixed_csv())
    (tmp_path / "spec.yaml").write_text(SPEC)
    runs = tmp_path / "runs"
    trained = subprocess.run(
        [*TASKFIT, "train", str(tmp_path / "spec.yaml"), "--output", str(runs),
         "--set", "training.epochs=2", *NO_ADDITIONS],
        capture_output=True, text=True, env=on_jax(), timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "could not be drawn" not in trained.stderr
    (run,) = runs.iterdir()
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "confusion.png", "learning_curves.png", "reliability.png", "roc_pr.png",
    ]  # fmt: skip
    predicted = subprocess.run(
        [*TASKFIT, "predict", str(run), str(tmp_path / "data.csv")],
        capture_output=True, text=True, env=on_jax(), timeout=600,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader(predicted.stdout.splitlines()))
    assert len(rows) == 60 and {r["predicted_bought"] for r in rows} <= {"yes", "no"}


def test_a_python_caller_on_another_backend_is_told_not_given_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.csv").write_text(mixed_csv())
    (tmp_path / "spec.yaml").write_text(SPEC)
    code = (
        "import keras, taskfit\n"
        "from taskfit.errors import TaskfitError\n"
        "try:\n"
        f"    taskfit.train({str(tmp_path / 'spec.yaml')!r}, verbose=0)\n"
        "except TaskfitError as e:\n"
        "    print('REFUSED', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, env=on_jax(), timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "REFUSED Keras runs on the jax backend in this process" in done.stdout
    assert "set KERAS_BACKEND=tensorflow" in done.stdout
    assert not (tmp_path / "runs").exists()
