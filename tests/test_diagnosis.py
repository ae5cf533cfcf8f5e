"""The learning curves, read back in words: a budget that cut training short, a model that
learned its training rows by heart; and the columns that would let it."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.data.columns import IGNORED
from taskfit.plan.checking import check_spec
from taskfit.report.diagnosis import fit_diagnosis

runner = CliRunner()


def test_a_budget_that_ends_while_the_loss_still_falls_is_said() -> None:
    falling = {
        "loss": [1.0 / (e + 1) for e in range(20)],
        "val_loss": [1.0 - e / 40 for e in range(20)],
    }
    (said,) = fit_diagnosis(falling, budget=20, patience=5)
    assert "all 20 epochs ran and val_loss was still improving (best at epoch 20)" in said
    assert "training.epochs: 40" in said
    # stopped by early stopping before the budget, or flat for longer than the patience: fine
    assert fit_diagnosis(falling, budget=100, patience=5) == []
    flat = {"val_loss": [1.0, 0.5] + [0.6] * 18}
    assert fit_diagnosis(flat, budget=20, patience=5) == []
    # a metric to maximise is still improving when it rises
    rising = {"val_accuracy": [e / 20 for e in range(20)]}
    assert fit_diagnosis(rising, budget=20, monitor="val_accuracy", patience=5)


def test_a_patience_as_long_as_the_budget_does_not_call_an_old_best_improving() -> None:
    """Best at epoch 27 of 60 with patience 60, or epoch 1 of 2: the run did not stop early,
    but nothing was still improving at its end."""
    dipped = {"val_loss": [1.0 - e / 40 for e in range(27)] + [0.9] * 33}
    assert not any("still improving" in s for s in fit_diagnosis(dipped, 60, patience=60))
    assert fit_diagnosis({"val_loss": [0.5, 0.6]}, budget=2, patience=10) == []
    (said,) = fit_diagnosis({"val_loss": [0.6, 0.5]}, budget=2, patience=10)
    assert "all 2 epochs ran and val_loss was still improving (best at epoch 2)" in said


def test_validation_loss_rising_early_while_training_loss_falls_is_overfitting() -> None:
    memorising = {
        "loss": [1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08],
        "val_loss": [1.0, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4],
    }
    (said,) = fit_diagnosis(memorising, budget=100, patience=6)
    assert said.startswith("overfitting: val_loss was lowest at epoch 2 and ended 75% above it")
    assert "the training loss fell 89%" in said and "dropout" in said
    healthy = {"loss": [1.0, 0.7, 0.5, 0.45], "val_loss": [1.0, 0.8, 0.7, 0.72]}
    assert fit_diagnosis(healthy, budget=100, patience=6) == []


def test_train_and_report_say_a_cut_short_fit(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "regression", epochs=4)
    runs = tmp_path / "runs"
    trained = runner.invoke(app, ["train", str(spec), "--output", str(runs), "--json"])
    assert trained.exit_code == 0, trained.output
    doc = json.loads(trained.stdout)
    assert any("training was cut short" in w for w in doc["warnings"])
    report = runner.invoke(app, ["report", doc["run_dir"]])
    assert report.exit_code == 0, report.output
    assert "all 4 epochs ran and val_loss was still improving" in report.stdout


def test_a_near_unique_text_column_is_left_out_with_a_note(tmp_path: Path) -> None:
    lines = ["comment,size,y"] + [f"note number {i},{i % 7},{i % 2}" for i in range(40)]
    lines[1:11] = [f"same,{i % 7},{i % 2}" for i in range(10)]  # 31 values in 40 rows
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: data.csv, label: y}\n")
    column = next(c for c in check_spec(spec).data.columns if c.name == "comment")
    assert column.kind == IGNORED
    assert column.note.startswith("near-unique text: 31 values in 40 rows")
    kept = check_spec(spec, {"data.categorical": ["comment"]}).data.columns
    assert next(c for c in kept if c.name == "comment").kind == "categorical"


def rare_shop_spec(folder: Path) -> Path:
    """`shop` (declared a category) holds a value of its own in 24 of 40 rows."""
    lines = ["shop,size,y"]
    lines += [f"shop {i if i < 24 else 100 + i % 3},{i % 7},{i % 2}" for i in range(40)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    spec = folder / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: data.csv, label: y, categorical: [shop]}\n")
    return spec


def test_a_column_of_rare_categories_is_named_by_check_and_by_the_diagnosis(
    tmp_path: Path,
) -> None:
    from taskfit.data.columns import memorisable
    from taskfit.plan.checking import notes

    checked = check_spec(rare_shop_spec(tmp_path))
    assert memorisable(checked.data.columns) == {"shop": 0.6}
    assert (
        "column shop: 60% of its rows hold a value seen at most 2 times, which the network can "
        "learn by heart; if val_loss rises early on, data.ignore it or merge its rare values"
    ) in notes(checked)
    memorising = {"loss": [1.0, 0.6, 0.4, 0.2], "val_loss": [1.0, 0.9, 1.2, 1.5]}
    (said,) = fit_diagnosis(memorising, budget=100, suspects={"shop": 0.6})
    assert "Likely here: the rare values of shop (60% of rows), each seen at most 2 times" in said
    (plain,) = fit_diagnosis(memorising, budget=100)
    assert "shop" not in plain and "a column that tells rows apart" in plain


def test_report_names_the_memorisable_column_train_recorded(tmp_path: Path) -> None:
    spec = rare_shop_spec(tmp_path)
    trained = runner.invoke(
        app, ["train", str(spec), "--output", str(tmp_path / "runs"), "--set",
              "training.epochs=2", "--json"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    run = Path(json.loads(trained.stdout)["run_dir"])
    assert json.loads((run / "run.json").read_text())["memorisable"] == {"shop": 0.6}
    # the curves of a run that memorised (what history.csv would say), then the report
    rows = ["epoch,loss,val_loss", "1,1.0,1.0", "2,0.6,0.9", "3,0.4,1.2", "4,0.2,1.5"]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 0, report.output
    assert "the rare values of shop (60% of rows)" in " ".join(report.stdout.split())
