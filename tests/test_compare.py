"""`taskfit compare`: runs side by side, best of each test metric marked."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.recipe.table import higher_is_better

runner = CliRunner()


def fake_run(
    folder: Path, lr: float, metrics: dict[str, float], epochs: int, small: bool = False
) -> Path:
    """A run folder as `taskfit train` leaves it (the files compare reads), without training.
    `small`: with the small-table additions."""
    folder.mkdir(parents=True)
    spec = {
        "task": "binary",
        "data": {"source": "/data/cancer.csv", "label": "y"},
        "model": {
            "layers": [{"units": 64}, {"units": 32}],
            "members": 3 if small else 1,
            "numeric_embedding": "periodic" if small else "none",
        },
        "loss": "binary_crossentropy",
        "optimizer": {"name": "adam", "learning_rate": lr},
        "schedule": None,
        "training": {"batch_size": 32, "seed": 0, "refit": small},
    }
    (folder / "spec.resolved.yaml").write_text(yaml.safe_dump(spec))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "history.csv").write_text("epoch,loss\n" + "".join(f"{i},1\n" for i in range(epochs)))
    (folder / "status.json").write_text('{"status": "completed"}')
    return folder


def test_compare_marks_the_best_of_each_metric(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", 0.001, {"loss": 0.30, "accuracy": 0.90, "auc": 0.97}, 12)
    b = fake_run(tmp_path / "b", 0.0005, {"loss": 0.25, "accuracy": 0.88, "auc": 0.98}, 30, True)
    result = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["best"] == {"loss": str(b), "accuracy": str(a), "auc": str(b)}
    assert [r["optimizer"] for r in doc["runs"]] == ["adam 0.001", "adam 0.0005"]
    assert [r["epochs"] for r in doc["runs"]] == [12, 30]
    assert [r["additions"] for r in doc["runs"]] == [
        "none",
        "3 members, periodic numeric embedding, refit on train + validation",
    ]
    table = runner.invoke(app, ["compare", str(a), str(b)]).stdout
    accuracy = next(line for line in table.splitlines() if "accuracy" in line)
    assert "0.9 *" in accuracy and "0.88 *" not in accuracy


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", 0.001, {"loss": 0.3}, 2)
    result = runner.invoke(app, ["compare", str(a), str(tmp_path)])
    assert result.exit_code == 1
    assert "not a finished run folder" in result.stderr and "Traceback" not in result.stderr


def test_which_metrics_are_better_higher() -> None:
    assert [higher_is_better(m) for m in ("accuracy", "val_auc", "head_recall")] == [True] * 3
    assert [higher_is_better(m) for m in ("loss", "mae", "head_mse", "head_weight")] == [False] * 4


def test_every_setting_that_differs_is_shown_readably(tmp_path: Path) -> None:
    """Two runs that differ only in data.ignore and the loss's delta: both rows appear, the loss
    as it is written (huber(delta=2.0)), not as JSON."""
    a = fake_run(tmp_path / "a", 0.001, {"loss": 0.3}, 5)
    b = fake_run(tmp_path / "b", 0.001, {"loss": 0.2}, 5)
    for run, ignore, delta in ((a, [], 1.0), (b, ["id", "name"], 2.0)):
        spec = yaml.safe_load((run / "spec.resolved.yaml").read_text())
        spec.update(task="regression", loss={"name": "huber", "delta": delta})
        spec["data"]["ignore"] = ignore
        (run / "spec.resolved.yaml").write_text(yaml.safe_dump(spec))
    doc = json.loads(runner.invoke(app, ["compare", str(a), str(b), "--json"]).stdout)
    assert doc["differs"] == {"data.ignore": ["(none)", "id, name"]}
    assert [r["loss"] for r in doc["runs"]] == ["huber(delta=1.0)", "huber(delta=2.0)"]
    table = runner.invoke(app, ["compare", str(a), str(b)]).stdout
    assert "data.ignore" in table and "id, name" in table and '"name"' not in table
