"""The Python API: `taskfit.train` and `taskfit.recommend`, the layer the CLI also stands on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import pytest
import yaml
from helpers import tiny_csv, tiny_spec, uncalibrated

import taskfit
from taskfit.errors import SpecError
from taskfit.recipe.table import recommendation


def test_importing_taskfit_loads_no_tensorflow() -> None:
    code = "import sys, taskfit; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_recommend_returns_the_table_row_as_data() -> None:
    row = taskfit.recommend("regression")
    assert row == recommendation("regression")
    assert (row["loss"], row["output_layer"]["activation"]) == ("mse", "linear")
    assert taskfit.recommend("multiclass", "onehot")["loss"] == "categorical_crossentropy"


def test_train_returns_model_history_metrics_and_run_folder(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text(tiny_csv(60, "multiclass"))
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: multiclass\ndata: {source: data.csv, label: y}\n")
    run = taskfit.train(
        spec,
        overrides={"training.epochs": 3, "training.early_stopping": None, "name": "api"},
        output=tmp_path / "runs",
    )
    assert isinstance(run.model, keras.Model)
    assert len(run.history["loss"]) == 3  # the overrides took effect
    assert uncalibrated(run.metrics) == {"loss", "accuracy"}
    assert run.run_dir.parent == tmp_path / "runs" and run.run_dir.name.startswith("api-")
    assert (run.run_dir / "model.keras").is_file()


def test_train_raises_the_taskfit_error_for_bad_input(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: breast_cancer, label: diagnosis}\n")
    with pytest.raises(SpecError, match=r"training\.epochs: must be an integer >= 1"):
        taskfit.train(spec, overrides={"training.epochs": 0}, output=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_arguments_of_the_wrong_kind_are_named_not_a_python_error(tmp_path: Path) -> None:
    import numpy as np

    loop: list[object] = []
    loop.append(loop)
    spec = tmp_path / "spec.yaml"
    refused = {
        "task: must be one of binary, multiclass, regression": lambda: taskfit.recommend("x"),
        "labels: binary labels are binary. Got 'onehot'": lambda: taskfit.recommend(
            "binary", "onehot"
        ),
        "spec: must be a spec file's path or a dict. Got 5 instead": lambda: taskfit.train(5),
        "overrides: must be a dict. Got ['a'] instead": lambda: taskfit.train(spec, ["a"]),
        "overrides: must be keyed by dotted names": lambda: taskfit.train(spec, {5: 1}),
        "overrides['data.ignore']: holds itself": lambda: taskfit.train(
            spec, {"data.ignore": loop}
        ),
        "output: must be a folder's path": lambda: taskfit.train(spec, output=None),  # type: ignore[arg-type]
        "verbose: must be 0, 1, 2 or 'auto'": lambda: taskfit.train(spec, verbose="loud"),
        "deterministic: must be true or false": lambda: taskfit.train(spec, deterministic=1),  # type: ignore[arg-type]
        # a value from Python says its type where its text alone would contradict the message
        "Got an integer of about 5000 digits instead": lambda: taskfit.train(
            {"task": "binary", "data": {"source": "breast_cancer", "label": "diagnosis"}},
            {"training": {"epochs": 10**5000}},  # beyond the digits Python's str() prints
            output=tmp_path,
        ),
        "must be an integer >= 1. Got 2.5 (a numpy.float64) instead": lambda: taskfit.train(
            {"task": "binary", "data": {"source": "breast_cancer", "label": "diagnosis"}},
            {"training.epochs": np.float64(2.5)},
            output=tmp_path,
        ),
    }
    for message, call in refused.items():
        with pytest.raises(SpecError) as caught:
            call()
        assert message in str(caught.value), (message, str(caught.value))
    assert not list(tmp_path.iterdir())  # nothing made


LEAVES_NO_SWITCH = """
import sys
import matplotlib
matplotlib.use("svg")  # the caller's own backend
import taskfit
from taskfit import progress
from tensorflow.python.framework.config import is_op_determinism_enabled

run = taskfit.train(sys.argv[1], overrides={"training.epochs": 1}, output=sys.argv[2])
assert (run.run_dir / "plots" / "learning_curves.png").is_file()  # the plots were drawn
print(matplotlib.get_backend(), is_op_determinism_enabled(), progress._quiet.get())
taskfit.train(sys.argv[1], overrides={"training.epochs": 1}, output=sys.argv[2],
              deterministic=True)
print(is_op_determinism_enabled())
"""


def test_train_leaves_the_callers_process_as_it_was(tmp_path: Path) -> None:
    """No switch thrown behind the caller's back: the matplotlib backend stays theirs, progress
    is quiet only inside the call, TensorFlow's op determinism comes on only when asked for."""
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    out = subprocess.run(
        [sys.executable, "-c", LEAVES_NO_SWITCH, str(spec), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first.split() == ["svg", "False", "False"]
    assert second == "True"


def test_train_takes_a_spec_as_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its data path is relative to the working directory; its mistakes are named by key."""
    (tmp_path / "data.csv").write_text(tiny_csv(60, "multiclass"))
    monkeypatch.chdir(tmp_path)
    spec = {
        "task": "multiclass",
        "data": {"source": "data.csv", "label": "y"},
        "model": {"layers": [{"units": 8}]},
        "training": {"epochs": 2, "early_stopping": None},
    }
    run = taskfit.train(spec, output=tmp_path / "runs")
    assert len(run.history["loss"]) == 2 and uncalibrated(run.metrics) == {"loss", "accuracy"}
    assert run.run_dir.name.startswith("spec-")
    resolved = yaml.safe_load((run.run_dir / "spec.resolved.yaml").read_text())
    assert resolved["model"]["layers"][0]["units"] == 8
    assert spec["training"] == {"epochs": 2, "early_stopping": None}  # the caller's, untouched
    with pytest.raises(SpecError, match=r"<spec>: training\.epochs: must be an integer >= 1"):
        taskfit.train({**spec, "training": {"epochs": 0}}, output=tmp_path / "runs")
