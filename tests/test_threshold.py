"""A binary head's threshold: chosen on held-out rows for accuracy or F1 (the cut nearest 0.5
among equals), kept in run.json, and used by predict, evaluate and serve's classes; a run.json
that lost it is refused rather than cutting at 0.5 in silence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.feed.classes import binary_scores, predicted_ids
from taskfit.training.calibration import best_threshold

runner = CliRunner()


def test_the_cut_of_best_accuracy_separates_what_it_can() -> None:
    """Scores that separate the classes at 0.7, on 100 rows: every cut between the last
    negative and the first positive is right on every row; the one taken is halfway between
    them (20 rows it gets right that 0.5 gets wrong: a clear win)."""
    score = np.tile([0.1, 0.3, 0.6, 0.8, 0.9], 20)
    truth = np.tile([0, 0, 0, 1, 1], 20)
    cut = best_threshold(truth, score, "accuracy")
    assert cut == pytest.approx(0.7)
    assert binary_scores(truth, (score > cut).astype(int))["accuracy"] == 1.0


def test_a_cut_that_wins_by_a_row_or_two_stays_at_a_half() -> None:
    """The same 5 rows once: 0.7 gets one row more right than 0.5, which a sign test cannot
    tell from chance (on six small tables, chasing such wins cost 0.7-2.6 accuracy points)."""
    score = np.array([0.1, 0.3, 0.6, 0.8, 0.9])
    truth = np.array([0, 0, 0, 1, 1])
    assert best_threshold(truth, score, "accuracy") == 0.5


def test_f1_calls_more_rows_positive_than_accuracy_on_a_rare_class() -> None:
    """One positive in ten, scored no higher than most negatives' tail: accuracy keeps every
    row negative (cut above all), F1 takes the cut that finds the positive."""
    score = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.4])
    truth = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    by_accuracy = best_threshold(truth, score, "accuracy")
    by_f1 = best_threshold(truth, score, "f1")
    assert by_accuracy == 0.5  # above every score, as the best cut (9 of 10 right) is
    assert by_f1 == pytest.approx((0.4 + 0.35) / 2)  # 0.45 and both 0.4s: F1 2 / (2 + 2)
    assert binary_scores(truth, (score > by_f1).astype(int))["f1"] == pytest.approx(0.5)


def test_equal_cuts_keep_the_one_nearest_a_half() -> None:
    """Two separated clusters: every cut between them is perfect; 0.5 lies among them."""
    score = np.array([0.1, 0.2, 0.8, 0.9])
    truth = np.array([0, 0, 1, 1])
    assert best_threshold(truth, score, "accuracy") == pytest.approx(0.5)


def test_predicted_ids_cut_the_positive_class_above_its_threshold() -> None:
    probs = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    assert predicted_ids(probs).tolist() == [0, 0, 1]
    assert predicted_ids(probs, 0.3).tolist() == [0, 1, 1]
    assert predicted_ids(probs, 0.4).tolist() == [0, 0, 1]  # above, as Keras compares
    three = np.array([[0.2, 0.3, 0.5]])
    assert predicted_ids(three, 0.1).tolist() == [2]  # classes: the most probable


def _train(tmp_path: Path, threshold: str) -> Path:
    spec = tiny_spec(tmp_path, "binary", epochs=20)
    spec.write_text(spec.read_text().replace("label: y}", f"label: y, threshold: {threshold}}}"))
    out = runner.invoke(
        app,
        ["train", str(spec), "--output", str(tmp_path / "runs"), "--json",
         "--set", "model.members=1", "--set", "training.bagging=false"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    return Path(json.loads(out.stdout)["run_dir"])


@pytest.mark.slow
def test_a_chosen_threshold_decides_predict_and_evaluate(tmp_path: Path) -> None:
    run = _train(tmp_path, "f1")
    facts = json.loads((run / "run.json").read_text())
    (cut,) = facts["thresholds"].values()
    assert 0 < cut < 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["threshold"] == cut
    assert {"accuracy_at_threshold", "f1_at_threshold", "ece", "log_loss"} <= set(metrics)

    data = tmp_path / "data.csv"
    predicted = runner.invoke(app, ["predict", str(run), str(data)])
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(predicted.stdout.splitlines()))
    said = [r["predicted_y"] for r in rows]
    assert said == ["1" if float(r["probability_1"]) > cut else "0" for r in rows]

    evaluated = runner.invoke(app, ["evaluate", str(run), str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    doc = json.loads(evaluated.stdout)
    confusion = doc["confusion"]  # one task: the matrix itself
    labels = [r["y"] for r in csv.DictReader(data.open())]
    for actual in ("0", "1"):
        for guess in ("0", "1"):
            pairs = zip(labels, said, strict=True)
            assert confusion[actual][guess] == sum(a == actual and g == guess for a, g in pairs)
    right = confusion["0"]["0"] + confusion["1"]["1"]
    assert doc["metrics"]["accuracy_at_threshold"] == pytest.approx(right / len(labels))
    assert doc["metrics"]["threshold"] == cut

    # run.json without the threshold the plan asks for, or with one out of range: refused,
    # not cut at 0.5 in silence
    for kept in ({}, {"output": None}, {"output": 1.5}, {"output": True}, {"other": 0.3}):
        (run / "run.json").write_text(json.dumps({**facts, "thresholds": kept}))
        lost = runner.invoke(app, ["predict", str(run), str(data)])
        assert lost.exit_code == 1, kept
        assert "run.json: holds no threshold" in lost.stderr and "Traceback" not in lost.output


@pytest.mark.slow
def test_a_given_threshold_is_kept_as_given(tmp_path: Path) -> None:
    run = _train(tmp_path, "0.25")
    assert json.loads((run / "run.json").read_text())["thresholds"] == {"output": 0.25}
    predicted = runner.invoke(app, ["predict", str(run), str(tmp_path / "data.csv")])
    rows = list(csv.DictReader(predicted.stdout.splitlines()))
    assert [r["predicted_y"] for r in rows] == [
        "1" if float(r["probability_1"]) > 0.25 else "0" for r in rows
    ]


def test_check_says_how_classes_will_be_cut(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    for given, said in [("f1", "the cut of best F1 on held-out rows"), ("0.3", "0.3 on the")]:
        spec.write_text(
            f"task: binary\ndata: {{source: breast_cancer, label: diagnosis, threshold: {given}}}\n"
        )
        out = runner.invoke(app, ["check", str(spec)])
        assert out.exit_code == 0, out.output
        (line,) = [x for x in out.stdout.splitlines() if x.strip().startswith("threshold")]
        assert said in line
