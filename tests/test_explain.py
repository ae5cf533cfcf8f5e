"""`taskfit explain`: permutation importance ranks a column of pure noise last, writes its plot
and explain.json into the run folder (report.html shows it), and a row's contributions add up
to its prediction minus the mean over the background rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taskfit.cli.app import app

runner = CliRunner()
SPEC = (
    "task: regression\ndata: {source: data.csv, label: y, test_fraction: 0.25}\n"
    "model: {members: 1, layers: [{units: 32}, {units: 16}]}\n"
    "training: {epochs: 60, bagging: false, refit: false}\n"
)


def write_table(path: Path, n: int, seed: int) -> None:
    """y = 3a + 1.5b + 1 in oslo, a little noise; `noise` has nothing to do with y."""
    rng = np.random.default_rng(seed)
    a, b, noise = rng.uniform(0, 1, (3, n))
    city = rng.choice(["oslo", "rome", "paris"], n)
    y = 3 * a + 1.5 * b + (city == "oslo") + rng.normal(0, 0.1, n)
    lines = ["a,b,noise,city,y"] + [
        f"{a[i]:.4f},{b[i]:.4f},{noise[i]:.4f},{city[i]},{y[i]:.4f}" for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from taskfit.training.run import train

    folder = tmp_path_factory.mktemp("explain")
    write_table(folder / "data.csv", 400, seed=0)
    write_table(folder / "holdout.csv", 60, seed=1)
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    run = train(folder / "spec.yaml", output=folder / "runs", verbose=0).run_dir
    return run, folder / "holdout.csv"


@pytest.mark.slow
def test_a_noise_column_is_ranked_last_and_the_report_shows_the_ranking(
    trained: tuple[Path, Path],
) -> None:
    run, _ = trained
    result = runner.invoke(app, ["explain", str(run), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["on"] == "the test split" and doc["rows"] == 100 and doc["repeats"] == 5
    ranked = doc["heads"]["output"]["importance"]
    assert [item["column"] for item in ranked][-1] == "noise"
    by_column = {item["column"]: item for item in ranked}
    assert by_column["a"]["mean"] > by_column["b"]["mean"] > 10 * abs(by_column["noise"]["mean"])
    assert doc["heads"]["output"]["score"] == "RMSE"
    assert (run / "plots" / "importance.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((run / "explain.json").read_text()) == doc
    runner.invoke(app, ["report", str(run)])
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "column importance (taskfit explain, on the test split, 100 rows)" in page
    assert "plots/importance.png" in page


@pytest.mark.slow
def test_a_rows_contributions_add_up_to_its_prediction(trained: tuple[Path, Path]) -> None:
    """On a CSV of labelled rows: the prediction explained is predict's for that row, and the
    contributions sum to it minus the background's mean."""
    run, holdout = trained
    result = runner.invoke(app, ["explain", str(run), str(holdout), "--row", "7", "--json"])
    assert result.exit_code == 0, result.output
    (found,) = json.loads(result.stdout)["heads"]
    predicted = json.loads(runner.invoke(app, ["predict", str(run), str(holdout), "--json"]).stdout)
    assert found["prediction"] == pytest.approx(
        predicted["predictions"][7]["predicted_y"], abs=1e-5
    )
    total = sum(found["columns"].values())
    assert total == pytest.approx(found["prediction"] - found["background"], abs=1e-5)
    assert abs(found["columns"]["noise"]) < abs(found["columns"]["a"])


@pytest.mark.slow
def test_what_explain_cannot_do_is_said(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, holdout = trained
    beyond = runner.invoke(app, ["explain", str(run), str(holdout), "--row", "60"])
    assert beyond.exit_code == 1 and "--row 60: the rows explained are 0 to 59" in beyond.stderr
    unlabelled = tmp_path / "rows.csv"
    unlabelled.write_text("a,b,noise,city\n0.1,0.2,0.3,oslo\n", encoding="utf-8")
    said = runner.invoke(app, ["explain", str(run), str(unlabelled)])
    assert said.exit_code == 1 and "column y: is missing from rows.csv" in said.stderr
