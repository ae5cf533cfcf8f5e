"""Real-world CSVs end to end: column types, gaps, string labels, predict and evaluate."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import evaluated_names, mixed_csv, table_inputs, uncalibrated
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.errors import SpecError
from taskfit.model.build import named_inputs
from taskfit.plan.checking import check_spec
from taskfit.training.fit import class_weights
from taskfit.training.run import train

runner = CliRunner()
Write = Callable[[str, str], Path]
SPEC = "task: binary\ndata: {source: data.csv, label: bought, categorical: [plan]}\n"
FAST = parse_set(["training.epochs=3", "training.batch_size=8"])


@pytest.fixture
def mixed(write: Write) -> Path:
    write("data.csv", mixed_csv())
    return write("spec.yaml", SPEC)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_check_shows_the_inferred_schema(mixed: Path) -> None:
    result = runner.invoke(app, ["check", str(mixed)])
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[10:] if line}
    assert lines["id"][:3] == ["ignored", "0", "60"] and "identifier" in " ".join(lines["id"])
    assert lines["city"][:3] == ["categorical", "15", "3"]
    assert lines["plan"][:3] == ["categorical", "0", "3"]
    assert lines["income"][:2] == ["numeric", "10"]
    assert "note: 1 rows have no bought label: left out" in result.stderr


def test_train_predict_round_trip(mixed: Path, tmp_path: Path) -> None:
    """predict on the training file gives what the in-memory model gives on the same arrays."""
    result = train(mixed, FAST, tmp_path / "runs", verbose=0)
    assert result.document()["rows_without_label"] == 1
    out = runner.invoke(app, ["predict", str(result.run_dir), str(mixed.parent / "data.csv")])
    assert out.exit_code == 0, out.stderr
    predicted = rows_of(out.stdout)
    assert len(predicted) == 60  # every input row, in order, the unlabelled one too
    # the identifier column training left out comes first, so the rows join back
    assert list(predicted[0]) == ["id", "predicted_bought", "probability_no", "probability_yes"]
    data = result.checked.data
    x = table_inputs(data.table, data.of_kind("numeric"), data.of_kind("categorical"))
    expected = np.asarray(result.model.predict(named_inputs(x), verbose=0))[:, 0]
    got = np.array([float(row["probability_yes"]) for row in predicted])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert {row["predicted_bought"] for row in predicted} <= {"yes", "no"}
    assert all(
        row["predicted_bought"] == ("yes" if p > 0.5 else "no")
        for row, p in zip(predicted, got, strict=True)
    )


def test_predict_checks_columns_and_takes_unseen_categories(
    mixed: Path, tmp_path: Path, write: Write
) -> None:
    run = train(mixed, FAST, tmp_path / "runs", verbose=0).run_dir
    write("new.csv", "age,city,plan,income,extra\n33,madrid,9,,x\n55,oslo,2,1500,y\n")
    out = runner.invoke(app, ["predict", str(run), str(tmp_path / "new.csv"), "--json"])
    assert out.exit_code == 0, out.stderr
    predictions = json.loads(out.stdout)["predictions"]
    assert len(predictions) == 2
    assert 0 <= predictions[0]["probability_yes"] <= 1  # unseen city and plan: the OOV slot
    assert "note: ignored columns the model does not use: extra" in out.stderr
    write("short.csv", "age,plan,income\n33,1,1200\n")
    bad = runner.invoke(app, ["predict", str(run), str(tmp_path / "short.csv")])
    assert bad.exit_code == 1
    assert (
        "error: column city: is missing from short.csv; the model needs this input column"
        in bad.stderr
    )
    assert "Traceback" not in bad.stderr


def test_evaluate_reports_metrics_and_confusion(mixed: Path, tmp_path: Path) -> None:
    result = train(mixed, FAST, tmp_path / "runs", verbose=0)
    out = runner.invoke(
        app, ["evaluate", str(result.run_dir), str(mixed.parent / "data.csv"), "--json"]
    )
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["metrics"]) == evaluated_names(result.metrics)  # metrics.json's names
    assert doc["rows"] == 59
    confusion = doc["confusion"]
    assert set(confusion) == {"no", "yes"}
    assert sum(sum(row.values()) for row in confusion.values()) == 59
    accuracy = (confusion["no"]["no"] + confusion["yes"]["yes"]) / 59
    assert accuracy == pytest.approx(doc["metrics"]["accuracy"], abs=1e-6)

    # rows of one class: AUC is undefined (Keras says 0), so it is left out with a note
    data = (mixed.parent / "data.csv").read_text().splitlines()
    only = mixed.parent / "only_yes.csv"
    only.write_text("\n".join([data[0], *(r for r in data[1:] if r.endswith(",yes"))]) + "\n")
    out = runner.invoke(app, ["evaluate", str(result.run_dir), str(only), "--json"])
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "auc" not in doc["metrics"] and "accuracy" in doc["metrics"]
    assert "note: auc: left out; every labelled row is of class yes" in out.stderr


@pytest.mark.parametrize(
    ("labels", "task", "classes"),
    [
        (
            ["setosa", "versicolor", "virginica"],
            "multiclass",
            ["setosa", "versicolor", "virginica"],
        ),
        (["10", "30", "20"], "multiclass", ["10", "20", "30"]),
    ],
)
def test_class_names_are_kept_in_every_output(
    write: Write, tmp_path: Path, labels: list[str], task: str, classes: list[str]
) -> None:
    write(
        "data.csv",
        "a,b,y\n"
        + "".join(f"{i % 7 / 7:.3f},{labels[i % 3]}x,{labels[i % 3]}\n" for i in range(45)),
    )
    spec = write("spec.yaml", f"task: {task}\ndata: {{source: data.csv, label: y}}\n")
    result = train(spec, FAST, tmp_path / "runs", verbose=0)
    out = runner.invoke(app, ["predict", str(result.run_dir), str(tmp_path / "data.csv")])
    header = out.stdout.splitlines()[0].split(",")
    assert header == ["predicted_y", *(f"probability_{c}" for c in classes)]
    assert {row["predicted_y"] for row in rows_of(out.stdout)} <= set(classes)


def test_onehot_label_columns_train_and_predict(write: Write, tmp_path: Path) -> None:
    rows = "".join(
        f"{i % 5 / 5},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}\n" for i in range(45)
    )
    write("data.csv", "x,red,green,blue\n" + rows)
    spec = write(
        "spec.yaml", "task: multiclass\ndata: {source: data.csv, label: [red, green, blue]}\n"
    )
    result = train(spec, FAST, tmp_path / "runs", verbose=0)
    assert result.checked.plan.head.loss.summary == "categorical_crossentropy"
    out = runner.invoke(app, ["predict", str(result.run_dir), str(tmp_path / "data.csv")])
    assert (
        out.stdout.splitlines()[0]
        == "predicted_class,probability_red,probability_green,probability_blue"
    )


def test_class_weight_balanced_and_by_name(mixed: Path) -> None:
    y = np.array([0, 0, 0, 1], dtype=np.float32)
    counts = np.bincount(y.astype(int), minlength=2)
    assert class_weights("balanced", counts) == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    plan = check_spec(mixed, parse_set(["training.class_weight={yes: 3}"])).plan
    assert plan.head.class_weight == {0: 1.0, 1: 3.0}  # classes (no, yes)
    with pytest.raises(
        SpecError, match=r"training.class_weight: 'maybe' is not a class. Classes: no, yes"
    ):
        check_spec(mixed, parse_set(["training.class_weight={maybe: 3}"]))


def test_skewed_classes_get_a_note(write: Write) -> None:
    write("data.csv", "a,y\n" + "".join(f"{i / 10},{int(i % 10 == 0)}\n" for i in range(50)))
    spec = write("spec.yaml", "task: binary\ndata: {source: data.csv, label: y}\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert (
        "note: skewed classes in y (1 10% of the labels): consider training.class_weight: balanced, "
        "or loss: binary_focal_crossentropy" in result.stderr
    )


def test_many_balanced_classes_are_not_called_skewed(write: Write) -> None:
    """Ten classes at 10% each are balanced; one at 2% among ten is skewed."""
    even = "".join(f"{i % 7},{i % 10}\n" for i in range(100))
    spec = write("spec.yaml", "task: multiclass\ndata: {source: data.csv, label: y}\n")
    write("data.csv", "a,y\n" + even)
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 0 and "skewed" not in result.stderr
    rare = "".join(f"{i % 7},{i % 9}\n" for i in range(98)) + "1,9\n2,9\n"
    write("data.csv", "a,y\n" + rare)
    assert (
        "skewed classes in y (9 2% of the labels)"
        in runner.invoke(app, ["check", str(spec)]).stderr
    )


@pytest.mark.parametrize(
    ("label", "task", "why"),
    [
        ("bought", "binary", "2 distinct values: no, yes -> binary"),
        ("plan", "multiclass", "3 distinct integers (1, 2, 3) -> multiclass"),
        ("city", "multiclass", "3 distinct values (oslo, paris, rome) -> multiclass"),
        ("age", "regression", "45 distinct integers -> regression"),
    ],
)
def test_recommend_infers_the_task_from_a_csv(
    write: Write, tmp_path: Path, label: str, task: str, why: str
) -> None:
    data = write("data.csv", mixed_csv())
    result = runner.invoke(
        app, ["recommend", "--data", str(data), "--label", label, "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["task"] == task
    assert f"{label}: {why}" in result.stderr


def test_recommend_writes_a_starter_spec_that_trains(write: Write, tmp_path: Path) -> None:
    data = write("data.csv", mixed_csv())
    spec = tmp_path / "specs" / "starter.yaml"
    spec.parent.mkdir()
    args = ["recommend", "--data", str(data), "--label", "bought", "--write", str(spec)]
    assert runner.invoke(app, args).exit_code == 0
    assert "source: ../data.csv" in spec.read_text()
    assert check_spec(spec).plan.head.loss.summary == "binary_crossentropy"
    again = runner.invoke(app, args)  # never overwrites
    assert again.exit_code == 1 and "exists already; choose another path" in again.stderr
    result = train(spec, FAST, tmp_path / "runs", verbose=0)
    assert uncalibrated(result.metrics) == {"loss", "accuracy", "auc"}


def test_recommend_usage_errors(write: Write) -> None:
    data = write("data.csv", mixed_csv())
    assert runner.invoke(app, ["recommend"]).exit_code == 2
    assert runner.invoke(app, ["recommend", "--data", str(data)]).exit_code == 2
    missing = runner.invoke(app, ["recommend", "--data", str(data), "--label", "bougth"])
    assert missing.exit_code == 1
    assert "no column 'bougth' in data.csv. Did you mean \"bought\"?" in missing.stderr


def test_predict_refuses_what_it_cannot_use(mixed: Path, tmp_path: Path, write: Write) -> None:
    not_a_run = runner.invoke(app, ["predict", str(tmp_path), str(mixed.parent / "data.csv")])
    assert not_a_run.exit_code == 1
    assert "not a run folder (it needs model.keras and spec.resolved.yaml)" in not_a_run.stderr
    run = train(mixed, FAST, tmp_path / "runs", verbose=0).run_dir
    write("bad.csv", "age,city,plan,income\n33,oslo,1,lots\n")
    bad = runner.invoke(app, ["predict", str(run), str(tmp_path / "bad.csv")])
    assert bad.exit_code == 1
    assert "error: column income: is numeric in this model; CSV line 2 has 'lots'" in bad.stderr


def test_evaluate_needs_known_classes(mixed: Path, tmp_path: Path, write: Write) -> None:
    run = train(mixed, FAST, tmp_path / "runs", verbose=0).run_dir
    write("odd.csv", "age,city,plan,income,bought\n33,oslo,1,1200,maybe\n")
    out = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "odd.csv")])
    assert out.exit_code == 1
    assert "CSV line 2 has 'maybe', not one of the classes the model knows (no, yes)" in out.stderr


@pytest.mark.slow
def test_a_target_in_the_thousands_trains_as_well_as_a_small_one(
    write: Write, tmp_path: Path
) -> None:
    """The hand-written MLP's classic failure: unscaled targets. taskfit learns them standardised."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    signal = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=400)
    results = {}
    for scale, offset in ((1.0, 0.0), (25_000.0, 250_000.0)):
        rows = "".join(
            f"{a:.4f},{b:.4f},{c:.4f},{offset + scale * s:.4f}\n"
            for (a, b, c), s in zip(x, signal, strict=True)
        )
        write(f"price{scale:g}.csv", "a,b,c,price\n" + rows)
        spec = write(
            "spec.yaml", f"task: regression\ndata: {{source: price{scale:g}.csv, label: price}}\n"
        )
        run = train(spec, parse_set(["training.epochs=40"]), tmp_path / "runs", verbose=0)
        results[scale] = run.metrics["mae"] / scale
    assert results[25_000.0] == pytest.approx(results[1.0], rel=0.25)
    assert results[25_000.0] < 0.2  # the noise is 0.1: a clear fit, in the label's own units


def test_train_json_notes_say_what_check_shows_in_its_tables(mixed: Path, tmp_path: Path) -> None:
    """The identifier column left out and the positive class taskfit chose, in train --json's
    notes as in check's tables (a script reading the JSON sees them)."""
    args = ["train", str(mixed), "--set", "training.epochs=1", "--json", "--output", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert "column id: left out (identifier: one integer per row)" in notes
    assert "bought: the positive class is yes (default; set data.positive to change)" in notes
