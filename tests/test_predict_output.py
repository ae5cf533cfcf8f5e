"""`predict` keeps what joins its rows back: the identifier columns training left out, and any
column --keep names, come first in its output, from the CSV as written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from helpers import mixed_csv
from typer.testing import CliRunner

from taskfit.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from taskfit.training.run import train

    folder = tmp_path_factory.mktemp("keep")
    (folder / "data.csv").write_text(mixed_csv(60), encoding="utf-8")
    (folder / "spec.yaml").write_text(
        "task: binary\ndata: {source: data.csv, label: bought}\ntraining: {epochs: 1}\n",
        encoding="utf-8",
    )
    run = train(folder / "spec.yaml", {"model.members": 1}, folder / "runs", verbose=0).run_dir
    rows = folder / "rows.csv"
    rows.write_text(mixed_csv(8), encoding="utf-8")
    return run, rows


def test_identifier_columns_pass_through_first(trained: tuple[Path, Path]) -> None:
    run, rows = trained
    assert json.loads((run / "run.json").read_text())["identifiers"] == ["id"]
    result = runner.invoke(app, ["predict", str(run), str(rows)])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(table[0])[:2] == ["id", "predicted_bought"]
    assert [row["id"] for row in table] == [str(1000 + i) for i in range(8)]


def test_keep_passes_a_column_through_and_a_missing_one_is_named(
    trained: tuple[Path, Path],
) -> None:
    run, rows = trained
    result = runner.invoke(app, ["predict", str(run), str(rows), "--keep", "city", "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["predictions"][0]
    assert list(first)[:3] == ["id", "city", "predicted_bought"] and first["city"] == "paris"
    wrong = runner.invoke(app, ["predict", str(run), str(rows), "--keep", "customer"])
    assert wrong.exit_code == 1 and wrong.stdout == ""
    assert "--keep customer: not a column of rows.csv; its columns: id, age" in wrong.stderr
