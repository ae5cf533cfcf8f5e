"""A run folder into an MLflow run: the resolved spec as parameters (dotted keys), every
epoch's history as metrics by step, the test (or out-of-fold) metrics, the plots, report.html,
the model and the spec as artifacts, and tags saying which taskfit wrote it. Read from the
folder after training, so the tracker holds exactly what the folder does; MLflow is imported
only here."""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

from taskfit.errors import TaskfitError
from taskfit.report.compare import spec_items
from taskfit.report.report import read_report, write_html
from taskfit.runfolder.files import (
    read_facts,
    read_history,
    read_metrics,
    read_status,
    run_name,
)
from taskfit.runfolder.layout import RunFolder
from taskfit.runfolder.opened import load_resolved
from taskfit.spec.keys import TrackingSpec

HTTP_PATIENCE = {  # about 3 s of retries, 30 s for one request
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PARAM_CHARS = 6000  # MLflow's limit on a parameter's value
BATCH = 100  # parameters per call, MLflow's limit for one batch
METRICS_BATCH = 1000  # metric points per call, MLflow's limit


def flat(doc: Any) -> dict[str, str]:
    """A nested spec as dotted keys -> text (a list as JSON), as MLflow takes parameters."""
    return {
        key: (json.dumps(value) if isinstance(value, list) else str(value))[:PARAM_CHARS]
        for key, value in spec_items(doc).items()
    }


def log_run(run_dir: Path, tracking: TrackingSpec) -> str:
    """Log the run folder to tracking.mlflow; returns the MLflow run's id. A tracker that
    cannot be reached or written is a TaskfitError naming it (the run folder is whole)."""
    # MLflow retries a refused connection 7 times with a doubling wait (minutes: `train
    # --mlflow http://127.0.0.1:1` ran past a 120 s timeout after training); a training run
    # should not wait so on its tracker. The user's own settings win.
    for name, value in HTTP_PATIENCE.items():
        os.environ.setdefault(name, value)
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    files = RunFolder(run_dir)
    report = read_report(run_dir)
    resolved = report.run.spec
    facts = read_facts(run_dir)
    estimate = "oof" if facts.get("metrics_on") == "out-of-fold" else "test"
    try:
        client = mlflow.MlflowClient(tracking_uri=tracking.mlflow)
        name = tracking.experiment or resolved.name or run_name(run_dir)
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        tags = {
            "taskfit.version": version("taskfit"),  # the installed one, as taskfit --version
            "taskfit.run_dir": str(run_dir.resolve()),
            "taskfit.status": read_status(run_dir) or "completed",
            "taskfit.metrics_on": facts.get("metrics_on") or "test",
        }
        run = client.create_run(experiment_id, run_name=run_dir.name, tags=tags)
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in flat(load_resolved(files.spec).raw).items()]
        for at in range(0, len(params), BATCH):
            client.log_batch(run_id, params=params[at : at + BATCH])
        metrics = read_metrics(files.metrics) if files.metrics.exists() else {}
        points = _history(files)
        points += [Metric(f"{estimate}_{k}", v, _millis(), 0) for k, v in metrics.items()]
        for at in range(0, len(points), METRICS_BATCH):
            client.log_batch(run_id, metrics=points[at : at + METRICS_BATCH])
        write_html(report)
        for path in (files.report, files.model, files.spec, files.metrics, files.facts):
            if path.is_file():
                client.log_artifact(run_id, str(path))
        if files.plots.is_dir():
            client.log_artifacts(run_id, str(files.plots), artifact_path="plots")
        client.set_terminated(run_id, "FINISHED")
        client.set_tag(run_id, "taskfit.logged", "whole")
    except (MlflowException, OSError) as exc:
        said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TaskfitError(
            f"training.tracking.mlflow {tracking.mlflow}: MLflow could not log the run "
            f"({said}); the run folder {run_dir} is whole"
        ) from None
    return run_id


def _history(files: RunFolder) -> list[Any]:
    """history.csv's numeric columns, one metric point per epoch (step = the epoch, from 1)."""
    from mlflow.entities import Metric

    now = _millis()
    points = []
    for column, values in read_history(files.history).items():
        for epoch, value in enumerate(values, start=1):
            if isinstance(value, float):
                points.append(Metric(column, value, now, epoch))
    return points


def _millis() -> int:
    import time

    return int(time.time() * 1000)
