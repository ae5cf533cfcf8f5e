"""The real CLI through typer's CliRunner: exit codes, stdout and stderr apart."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import taskfit
from taskfit.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_recommend_prints_the_row_in_each_format() -> None:
    table = runner.invoke(app, ["recommend", "--task", "regression"])
    assert table.exit_code == 0
    assert "Dense(1, linear)" in table.stdout and "huber (delta=1.0)" in table.stdout
    as_yaml = yaml.safe_load(
        runner.invoke(app, ["recommend", "--task", "binary", "--format", "yaml"]).stdout
    )
    assert as_yaml["loss"] == "binary_crossentropy"
    as_json = json.loads(
        runner.invoke(
            app, ["recommend", "--task", "multiclass", "--labels", "onehot", "--format", "json"]
        ).stdout
    )
    assert as_json["loss"] == "categorical_crossentropy"
    assert as_json["output_layer"]["activation"] == "softmax"


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_recommend_never_cuts_a_name_on_an_80_column_terminal(
    task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every loss and optimizer name whole on its line, nothing ended with an ellipsis, and the
    loss weightings named on one line unless --heads asks for each."""
    from taskfit.recipe.table import recommendation

    monkeypatch.setenv("COLUMNS", "80")
    said = runner.invoke(app, ["recommend", "--task", task]).stdout
    row = recommendation(task, None)
    assert "…" not in said and max(len(line) for line in said.splitlines()) <= 80
    body = [line for line in said.splitlines() if line.startswith("│")]
    assert body and all(line.endswith("│") for line in body)  # the right edge is not cut
    for name in [*row["losses"], *row["optimizers"]]:
        assert re.search(rf"│ {re.escape(name)}\b", said), name
    assert "--heads" in said and "uncertainty" in said
    with_heads = runner.invoke(app, ["recommend", "--task", task, "--heads"]).stdout
    assert all(re.search(rf"│ {name}\b", with_heads) for name in row["loss_weightings"])


def test_recommend_on_data_says_what_it_found_on_stdout() -> None:
    wine = ROOT / "taskfit" / "data" / "datasets" / "wine.csv"
    said = runner.invoke(app, ["recommend", "--data", str(wine), "--label", "cultivar"])
    assert said.stdout.startswith("cultivar: 3 distinct values (A, B, C) -> multiclass\n")
    as_json = runner.invoke(
        app, ["recommend", "--data", str(wine), "--label", "cultivar", "--format", "json"]
    )
    assert json.loads(as_json.stdout)["task"] == "multiclass"  # stdout: the one document
    assert "cultivar: 3 distinct values" in as_json.stderr


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["recommend", "--task", "nope"]).exit_code == 2
    wrong = runner.invoke(app, ["recommend", "--task", "binary", "--labels", "onehot"])
    assert wrong.exit_code == 2
    assert "--labels applies to multiclass only" in wrong.stderr
    assert runner.invoke(app, ["train"]).exit_code == 2


def test_check_reports_every_problem_on_stderr_and_exits_1(
    write: Callable[[str, str], Path],
) -> None:
    spec = write("bad.yaml", "task: binary\ndata: {source: breast_cancer}\ntraining: {epochs: 0}\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {spec}:2: data.label: is required (the label column; for one-hot labels a list)",
        f"error: {spec}:3: training.epochs: must be an integer >= 1. Got 0 instead.",
    ]
    assert "Traceback" not in result.stderr


def test_check_ok_summarises_the_table_choices() -> None:
    result = runner.invoke(app, ["check", str(ROOT / "configs" / "multiclass.yaml")])
    assert result.exit_code == 0, result.stderr
    assert "Dense(10, softmax)" in result.stdout
    assert "sparse_categorical_crossentropy" in result.stdout
    doc = json.loads(
        runner.invoke(app, ["check", str(ROOT / "configs" / "binary.yaml"), "--json"]).stdout
    )
    assert doc["resolved"]["model"]["output"] == {"units": 1, "activation": "sigmoid"}
    assert doc["rows"] == 569


def test_version_is_the_packages_one_and_loads_nothing_heavy() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"taskfit {taskfit.__version__}\n"
    assert importlib.metadata.version("taskfit") == taskfit.__version__  # pyproject reads it


def test_datasets_lists_the_bundled_sets() -> None:
    result = runner.invoke(app, ["datasets", "--format", "json"])
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["digits"]["classes"] == 10 and rows["diabetes"]["task"] == "regression"


def test_fast_commands_never_import_tensorflow() -> None:
    code = (
        "import sys\nfrom taskfit.cli.app import app\n"
        "for args in (['--help'], ['--version'], ['recommend', '--task', 'binary'], ['datasets'], ['schema'],"
        " ['export', '--help'], ['tune', '--help'], ['report', '--help'],"
        f" ['check', {str(ROOT / 'configs' / 'binary.yaml')!r}],"
        f" ['recommend', '--data', {str(ROOT / 'taskfit' / 'data' / 'datasets' / 'digits.csv')!r},"
        " '--label', 'digit']):\n"
        "    try:\n        app(args)\n    except SystemExit as e:\n        assert e.code in (0, None), e\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in result.stderr
