"""A file of the user's is never replaced unasked: `predict --output` refuses the input CSV and a
run folder's own files always, and any other file that exists without --force."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_csv, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.training.run import train

runner = CliRunner()


@pytest.fixture(scope="module")
def run_and_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("run")
    spec = tiny_spec(folder, "binary", epochs=1)
    run = train(spec, {"model.members": 1}, folder / "runs", verbose=0).run_dir
    rows = folder / "rows.csv"
    rows.write_text(tiny_csv(10, "binary"))
    return run, rows


def predict(run: Path, rows: Path, output: Path, *more: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", str(run), str(rows), "--output", str(output), *more])
    return result.exit_code, result.stderr


def test_predictions_never_replace_the_rows_they_come_from(
    run_and_rows: tuple[Path, Path],
) -> None:
    run, rows = run_and_rows
    before = rows.read_bytes()
    for extra in ((), ("--force",)):
        code, said = predict(run, rows, rows, *extra)
        assert code == 1 and f"is the input {rows}, which this command reads" in said
        assert "Traceback" not in said
    assert rows.read_bytes() == before


def test_predictions_never_go_into_a_run_folder(run_and_rows: tuple[Path, Path]) -> None:
    run, rows = run_and_rows
    model = (run / "model.keras").read_bytes()
    for target in (run / "model.keras", run / "plots" / "new.csv", run / "new.csv"):
        code, said = predict(run, rows, target, "--force")
        assert code == 1 and f"is in the run folder {run.resolve()}" in said
    assert (run / "model.keras").read_bytes() == model
    assert not (run / "new.csv").exists()


def test_an_existing_file_is_replaced_only_with_force(
    run_and_rows: tuple[Path, Path], tmp_path: Path
) -> None:
    run, rows = run_and_rows
    mine = tmp_path / "predictions.csv"
    mine.write_text("the user's own notes\n")
    code, said = predict(run, rows, mine)
    assert code == 1 and "exists; give --force to replace it, or another path" in said
    assert mine.read_text() == "the user's own notes\n"
    code, said = predict(run, rows, mine, "--force")
    assert code == 0, said
    assert mine.read_text().startswith("predicted_y,")
    code, _ = predict(run, rows, tmp_path / "new.csv")  # a new file needs nothing
    assert code == 0 and (tmp_path / "new.csv").is_file()
