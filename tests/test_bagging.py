"""training.bagging: the folds, the weights that hold each member out of its own fold, and a
bagged fit whose validation figures are every row scored by the member that never trained on
it."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.errors import SpecError
from taskfit.feed.chunk import TRAIN
from taskfit.feed.folds import fold_of_rows, member_weights, out_of_fold, training_folds
from taskfit.plan.checking import check_spec
from taskfit.report.compare import compare_runs
from taskfit.training import feeding
from taskfit.training.fit import fit_plan, make_splits
from taskfit.training.fit import test_metrics as held_out_metrics
from taskfit.training.heldout import out_of_fold_outputs
from taskfit.training.smearing import smear

runner = CliRunner()
BAGGED = "model: {layers: [{units: 8}], members: 3, numeric_embedding: none}\n"


def test_every_class_is_dealt_evenly_over_the_folds() -> None:
    groups = np.array([0] * 50 + [1] * 23 + [2] * 7)
    folds = fold_of_rows(groups, 5, seed=3)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.sum() == 80 and sizes.max() - sizes.min() <= 1
    for group in range(3):
        per_fold = np.bincount(folds[groups == group], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert np.array_equal(folds, fold_of_rows(groups, 5, seed=3))  # a resumed run's folds
    assert not np.array_equal(folds, fold_of_rows(groups, 5, seed=4))


def test_each_member_trains_outside_its_fold_and_is_scored_inside_it() -> None:
    folds = np.array([0, 1, 2, 0, 1, 2])
    training = member_weights(folds, 3, held_out=False)
    validation = member_weights(folds, 3, held_out=True)
    own = folds[:, None] == np.arange(3)
    assert np.all((training == 0) == own) and np.all((validation == 0) == ~own)
    # the mean over the batch then is the mean over each member's own rows
    assert training.sum(axis=0) == pytest.approx([6, 6, 6])
    assert validation.sum(axis=0) == pytest.approx([6, 6, 6])
    classes = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    weighted = member_weights(folds, 3, held_out=False, row_weights=classes)
    assert weighted == pytest.approx(training * classes[:, None])


def test_a_bagged_fit_logs_the_out_of_fold_loss_and_accuracy(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=6)
    spec.write_text(spec.read_text().replace("model: {layers: [{units: 8}]}\n", BAGGED))
    checked = check_spec(spec, {"training.bagging": True})
    splits = make_splits(checked)
    train = splits.part(TRAIN)
    # every labelled row in the folds: no test split unless data.test_fraction asks for one
    assert splits.folds == 3 and splits.sizes() == {"train": 60, "validation": 0, "test": 0}
    keras.utils.set_random_seed(0)
    fitted = fit_plan(keras, checked, checked.plan, splits)
    assert fitted.models.members is not None
    stacked = np.asarray(fitted.models.members.predict(fitted.models.pack(train), verbose=0))
    held_out = out_of_fold(stacked, training_folds(splits, checked.plan.stratify_by))
    y = train.y["output"].reshape(-1, 1)
    loss = float(keras.ops.mean(keras.losses.binary_crossentropy(y, held_out)))
    kept = (fitted.best_epoch or fitted.epochs) - 1  # the weights the model holds now
    assert fitted.history["val_loss"][kept] == pytest.approx(loss, rel=1e-4)
    accuracy = float(np.mean((held_out > 0.5) == y))
    assert fitted.history["val_accuracy"][kept] == pytest.approx(accuracy)
    # not the members' mean, which trained on every row
    mean = stacked.mean(axis=1)
    assert loss != pytest.approx(float(keras.ops.mean(keras.losses.binary_crossentropy(y, mean))))
    # with no test split, the run's metrics are these out-of-fold figures
    assert splits.estimate == "out-of-fold"
    metrics = held_out_metrics(fitted, checked.plan, splits)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(accuracy)


def test_a_bagged_log_scale_head_is_smeared_by_its_out_of_fold_residuals(tmp_path: Path) -> None:
    lines = ["a,b,price"] + [
        f"{i % 7},{i % 5},{np.exp(1 + (i % 7) / 3 + ((i * 3) % 5) / 4):.4f}" for i in range(60)
    ]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: regression\ndata: {source: data.csv, label: price, target_transform: log}\n"
        + BAGGED
        + "training: {epochs: 3, bagging: true}\n"
    )
    checked = check_spec(spec)
    splits = make_splits(checked)
    keras.utils.set_random_seed(0)
    fitted = fit_plan(keras, checked, checked.plan, splits)
    rows, held_out = out_of_fold_outputs(fitted.models, checked.plan, splits)
    assert len(rows) == 60
    log_residuals = np.log(rows.y["output"].reshape(-1)) - np.log(held_out["output"].reshape(-1))
    factors = smear(fitted, checked.plan, splits)
    assert factors["output"] == pytest.approx(float(np.mean(np.exp(log_residuals))), rel=1e-4)


def test_a_bagged_run_tests_on_a_test_split_it_is_given(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    spec.write_text(spec.read_text().replace("model: {layers: [{units: 8}]}\n", BAGGED))
    given = {"training.bagging": True, "data.test_fraction": 0.2}
    splits = make_splits(check_spec(spec, given))
    assert splits.folds == 3 and splits.sizes() == {"train": 48, "validation": 0, "test": 12}
    assert splits.estimate == "test"
    plain = make_splits(check_spec(spec))  # not bagged: the default test and validation parts
    assert plain.folds == 0 and plain.sizes() == {"train": 39, "validation": 9, "test": 12}


@pytest.mark.plots
def test_train_says_it_bagged_and_run_json_and_report_name_the_folds(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=2)
    spec.write_text(spec.read_text().replace("model: {layers: [{units: 8}]}\n", BAGGED))
    command = ["train", str(spec), "--output", str(tmp_path / "runs"), "--json"]
    result = runner.invoke(app, [*command, "--set", "training.bagging=true"])
    assert result.exit_code == 0, result.output
    run = Path(json.loads(result.stdout)["run_dir"])
    facts = json.loads((run / "run.json").read_text())
    assert facts["folds"] == 3 and facts["rows"] == {"train": 60, "validation": 0, "test": 0}
    assert facts["metrics_on"] == json.loads(result.stdout)["metrics_on"] == "out-of-fold"
    assert (run / "plots" / "confusion.png").is_file()  # drawn from the out-of-fold outputs
    said = runner.invoke(app, [*command[:-1], "--set", "training.bagging=true"])
    assert "bagged: 60 rows in 3 folds, each member trained on all but its own" in said.stderr
    assert "out-of-fold accuracy" in said.stdout
    report = runner.invoke(app, ["report", str(run)])
    assert "60 train in 3 folds (validation out-of-fold), 0 test" in report.stdout
    assert "out-of-fold metrics" in report.stdout
    # beside a run tested on its test split, neither is marked the better: other rows
    tested = runner.invoke(app, [*command, "--set", "training.bagging=false"])
    other = Path(json.loads(tested.stdout)["run_dir"])
    compared = compare_runs([run, other])
    assert [r["metrics_on"] for r in compared.runs] == ["out-of-fold", "test"]
    assert compared.best == {}


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"model.members": 1}, "needs model.members of 2 or more"),
        ({"model.members": 3, "training.refit": True}, "Set one of them to false"),
    ],
)
def test_bagging_that_cannot_apply_is_a_spec_error(
    tmp_path: Path, asked: dict, message: str
) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    with pytest.raises(SpecError, match=message):
        check_spec(spec, {**asked, "training.bagging": True})


def test_bagging_is_refused_for_a_streamed_table(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    spec.write_text(spec.read_text().replace("label: y}", "label: y, streaming: true}"))
    asked = {"model.members": 2, "training.bagging": True}
    with pytest.raises(SpecError, match=r"training\.bagging: deals a table held in memory"):
        check_spec(spec, asked)


def test_class_weights_ride_on_the_members_weights(tmp_path: Path) -> None:
    """A bagged fit multiplies each row's class weight into its members' weights."""
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    spec.write_text(spec.read_text().replace("model: {layers: [{units: 8}]}\n", BAGGED))
    checked = check_spec(spec, {"training.bagging": True, "training.class_weight": "balanced"})
    splits = make_splits(checked)
    keras.utils.set_random_seed(0)
    fitted = fit_plan(keras, checked, checked.plan, splits)
    assert fitted.epochs == 1
    _, _, weights = feeding.training_arrays(fitted.models, checked.plan, splits, {0: 0.5, 1: 2.0})
    y = splits.part(TRAIN).y["output"].reshape(-1)
    own = member_weights(training_folds(splits, checked.plan.stratify_by), 3, held_out=False)
    assert weights == pytest.approx(own * np.where(y == 1, 2.0, 0.5)[:, None])
