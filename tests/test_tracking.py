"""MLflow tracking: a run logged to a real MLflow store on disk (a SQLite backend), read back
with MLflow's own client: the resolved spec as parameters, each epoch's history by step, the
test metrics, the plots, report.html and the model as artifacts, taskfit's version as a tag.
Without tracking asked for, MLflow is not even imported."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app

mlflow = pytest.importorskip("mlflow")
runner = CliRunner()


@pytest.mark.slow
@pytest.mark.plots
def test_a_trained_run_is_logged_and_reads_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns beside a SQLite store
    spec = tiny_spec(tmp_path, "binary", epochs=3)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["train", str(spec), "--set", "model.members=1", "--set", "training.bagging=false"]
    result = runner.invoke(app, [*args, "--mlflow", store, "--json", "--output", "runs"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    run_dir = Path(doc["run_dir"])

    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("tiny")  # the spec's name
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_id == doc["mlflow_run"] and logged.info.status == "FINISHED"
    assert logged.info.run_name == run_dir.name
    params = logged.data.params
    assert params["task"] == "binary" and params["training.epochs"] == "3"
    assert params["model.members"] == "1" and json.loads(params["model.layers"])[0]["units"] == 8
    with (run_dir / "history.csv").open() as f:
        history = list(csv.DictReader(f))
    points = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [p.step for p in points] == [1, 2, 3]
    assert [p.value for p in points] == pytest.approx([float(r["val_loss"]) for r in history])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert logged.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
    assert logged.data.tags["taskfit.version"] == version("taskfit")
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"model.keras", "report.html", "spec.resolved.yaml", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(logged.info.run_id, "plots")}
    assert "plots/learning_curves.png" in plots


@pytest.mark.slow
def test_the_spec_key_names_the_experiment_and_a_store_that_fails_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.training.run import train

    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = f"\ntraining: {{epochs: 1, tracking: {{mlflow: '{store}', experiment: churn}}}}\n"
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    spec.write_text(spec.read_text().replace("\ntraining: {epochs: 1, batch_size: 16}\n", tracking))
    result = train(spec, {"model.members": 1}, tmp_path / "runs", verbose=0)
    client = mlflow.MlflowClient(tracking_uri=store)
    assert client.get_run(result.tracked).info.experiment_id == (
        client.get_experiment_by_name("churn").experiment_id
    )
    broken = train(
        spec,
        {"training.tracking.mlflow": "sqlite:////proc/none/x.db"},
        tmp_path / "runs",
        verbose=0,
    )
    assert broken.tracked is None and broken.status == "completed"
    (said,) = [w for w in broken.warnings if "MLflow could not log the run" in w]
    assert f"the run folder {broken.run_dir} is whole" in said
    assert (broken.run_dir / "model.keras").is_file()


@pytest.mark.slow
def test_without_tracking_mlflow_is_not_imported(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    code = (
        "import sys, taskfit; "
        f"taskfit.train({str(spec)!r}, {{'model.members': 1}}, {str(tmp_path / 'runs')!r}, "
        "verbose=0); print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_check_says_how_to_install_mlflow_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    result = runner.invoke(app, ["check", str(spec), "--set", "training.tracking.mlflow=x"])
    assert result.exit_code == 1
    assert "training.tracking.mlflow: needs the mlflow package" in result.stderr
    assert "pip install 'taskfit[mlflow]'" in result.stderr


def test_a_server_that_refuses_connections_is_a_warning_within_seconds(tmp_path: Path) -> None:
    """MLflow's own patience (7 retries, doubling waits) held `train` for minutes; taskfit
    gives a tracker a few seconds (tracking.mlflow_log.HTTP_PATIENCE). A test of behaviour,
    not of time: the run completes and says the tracker failed."""
    import socket

    from taskfit.training.run import train

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    asked = {"model.members": 1, "training.tracking.mlflow": f"http://127.0.0.1:{port}"}
    result = train(spec, asked, tmp_path / "runs", verbose=0)
    assert result.tracked is None and result.status == "completed"
    assert any("MLflow could not log the run" in w for w in result.warnings)
