"""`taskfit tune`: the search space comes from the table, every point of it is a valid spec,
trials are scored on the validation split only, and the best spec trains as is."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import keras_tuner
import pytest
from helpers import count_streamed_rows, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.recipe.table import load_table
from taskfit.spec.spec import load_spec
from taskfit.training.tune import pick, trial_overrides

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_the_space_is_the_tables_advice() -> None:
    table = load_table()
    space = table.tuning
    assert set(space.optimizers) == set(table.optimizers)
    for name, fixed in space.optimizers.items():
        assert set(fixed) <= set(table.optimizers[name].params), name
    assert set(space.schedules) - {"none"} <= set(table.schedules)
    assert 1.0 in space.width and 0.0 in space.dropout  # the spec as written is a point


@pytest.mark.parametrize("config", ["binary", "multiclass", "regression"])
def test_every_point_of_the_space_is_a_spec_the_table_accepts(config: str) -> None:
    """Each optimizer x schedule x loss (at the extremes of width and rate) loads and plans."""
    checked = check_spec(CONFIGS / f"{config}.yaml")
    plan, space = checked.plan, load_table().tuning
    losses = load_table().recipe(plan.head.task).losses_for(plan.head.labels.format)
    low, high = space.learning_rate_factor
    for optimizer, schedule, loss, width in itertools.product(
        space.optimizers, space.schedules, losses, (min(space.width), max(space.width))
    ):
        choices = {
            "optimizer": optimizer,
            "learning_rate": 0.001 * (low if width < 1 else high),
            "schedule": schedule,
            "width": width,
            "dropout": max(space.dropout),
            "loss": loss,
        }
        extra = trial_overrides(choices, plan, space, steps_per_epoch=12, epochs=100)
        loaded = load_spec(CONFIGS / f"{config}.yaml", extra)
        trial = make_plan(loaded.spec, checked.data.labels)
        assert trial.optimizer.name == optimizer and trial.head.loss.summary.startswith(loss)
        assert (trial.schedule.name if trial.schedule else "none") == schedule
        assert [layer.dropout for layer in trial.layers] == [max(space.dropout)] * 2


def test_trial_one_is_the_spec_as_written() -> None:
    checked = check_spec(CONFIGS / "sgd-momentum.yaml")
    choices = pick(keras_tuner.HyperParameters(), load_table().tuning, checked.plan)
    assert choices == {
        "optimizer": "sgd",
        "learning_rate": checked.plan.optimizer.params["learning_rate"],
        "schedule": "none",
        "width": 1.0,
        "dropout": 0.0,
        "loss": "sparse_categorical_crossentropy",
    }


def test_tune_writes_the_trials_and_a_best_spec_that_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskfit.training.fit

    def never(*args: object) -> None:
        raise AssertionError("tune looked at the test split")

    monkeypatch.setattr(taskfit.training.fit, "test_metrics", never)
    spec = tiny_spec(tmp_path, "binary", epochs=2)
    args = ["tune", str(spec), "--trials", "3", "--output", str(tmp_path / "t"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    folder = Path(doc["folder"])
    assert doc["objective"] == "val_accuracy" and doc["direction"] == "max"
    scores = [t["score"] for t in doc["trials"]]
    assert len(scores) == 3 and doc["best"] == 1 + scores.index(max(scores))
    with (folder / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx(scores, rel=1e-5)
    assert rows[0]["optimizer"] == "adam" and rows[0]["learning_rate"] == "0.001"
    best = folder / "best.yaml"
    assert best.read_text().startswith(f"# taskfit tune: trial {doc['best']} of 3")
    chosen = doc["trials"][doc["best"] - 1]["choices"]
    assert check_spec(best).plan.optimizer.name == chosen["optimizer"]
    # a tune folder where a run folder goes is named as one, with the fix
    for command in (["report", str(folder)], ["compare", str(folder), str(folder)]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 1
        assert (
            f"is a `taskfit tune` folder, not a run; train its best trial with `taskfit train {best}`"
            in refused.stderr
        )


def test_tune_refuses_what_it_cannot_score(tmp_path: Path) -> None:
    heads = runner.invoke(app, ["tune", str(CONFIGS / "multitask.yaml")])
    assert heads.exit_code == 1 and "tune: searches a spec with one task" in heads.stderr
    spec = tiny_spec(tmp_path, "binary", epochs=2)
    no_validation = ["data.validation_fraction=0", "training.early_stopping=null"]
    none = runner.invoke(app, ["tune", str(spec), *(f"--set={item}" for item in no_validation)])
    assert none.exit_code == 1
    assert "data.validation_fraction: 0 leaves tune nothing to score" in none.stderr
    assert "Traceback" not in none.stderr and not (tmp_path / "runs").exists()
    zero = runner.invoke(app, ["tune", str(spec), "--trials", "0"])
    assert zero.exit_code == 2


def test_tune_streams_a_streamed_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A streamed spec's trials read its CSV in chunks (make_splits), as train does, not the
    rows check sampled."""
    read = count_streamed_rows(monkeypatch)
    spec = tiny_spec(tmp_path, "regression", epochs=2)
    spec.write_text(spec.read_text().replace("label: y}", "label: y, streaming: true}"))
    args = ["tune", str(spec), "--trials", "2", "--output", str(tmp_path / "t"), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["objective"] == "val_mae" and doc["direction"] == "min"
    assert "streaming: true" in (Path(doc["folder"]) / "best.yaml").read_text()
    # the scan, then per trial and epoch the training and validation parts: many passes of 60
    assert sum(read) >= 60 * 5


def test_a_diverged_trial_is_never_the_best_and_the_json_holds_no_nan(tmp_path: Path) -> None:
    import math

    from taskfit.errors import TrainingError
    from taskfit.training.tune import Trial, _written

    checked = check_spec(tiny_spec(tmp_path, "binary", epochs=2))
    folder = tmp_path / "t"
    folder.mkdir()
    trials = [Trial(1, {}, math.nan, 1, 0.1), Trial(2, {}, 0.7, 2, 0.1)]
    tuned = _written(folder, "val_loss", trials, {1: checked, 2: checked})
    assert tuned.best.number == 2

    def no_nan(name: str) -> None:
        raise AssertionError(f"{name} in JSON")

    doc = json.loads((folder / "tune.json").read_text(), parse_constant=no_nan)
    assert [t["score"] for t in doc["trials"]] == [None, 0.7]
    with pytest.raises(TrainingError, match="every trial's val_loss was NaN"):
        _written(folder, "val_loss", trials[:1], {1: checked})


def test_ctrl_c_in_a_trial_ends_the_search_and_keeps_the_finished_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.training.guards import StopOnInterrupt

    fits = []

    def ctrl_c_in_the_second_trial(self: StopOnInterrupt, logs: object = None) -> None:
        fits.append(1)
        if len(fits) == 2:
            self.signal, self.model.stop_training = "Ctrl-C", True

    monkeypatch.setattr(
        StopOnInterrupt, "on_train_begin", ctrl_c_in_the_second_trial, raising=False
    )
    spec = tiny_spec(tmp_path, "binary", epochs=2)
    result = runner.invoke(
        app, ["tune", str(spec), "--trials", "5", "--output", str(tmp_path / "t")]
    )
    assert result.exit_code == 130, result.output
    (folder,) = (tmp_path / "t").iterdir()
    with (folder / "trials.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 1
    assert json.loads((folder / "tune.json").read_text())["best"] == 1
    assert len(fits) == 2
