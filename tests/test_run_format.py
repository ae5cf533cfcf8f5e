"""Run folders across taskfit versions: one written before the folder recorded its format (kept
in tests/fixtures, made by taskfit at commit 25a9c0a) still opens in every command that reads a
run; a folder from a newer taskfit is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import helpers
import pytest
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.overrides import parse_set
from taskfit.errors import DataError
from taskfit.runfolder.files import read_format
from taskfit.runfolder.layout import FORMAT, RunFolder

OLD = Path(__file__).parent / "fixtures" / "format-1-20261201T234036Z"
CANCER = Path(__file__).parents[1] / "taskfit" / "data" / "datasets" / "breast_cancer.csv"
runner = CliRunner()


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy: report writes report.html into the folder it reads."""
    return Path(shutil.copytree(OLD, tmp_path / OLD.name))


def test_the_fixture_is_a_format_1_folder() -> None:
    status = json.loads(RunFolder(OLD).status.read_text())
    assert "format" not in status and read_format(OLD) == 1


def test_an_old_folder_opens_in_report_and_compare(old_run: Path) -> None:
    report = runner.invoke(app, ["report", str(old_run)])
    assert report.exit_code == 0, report.output
    assert "format-1" in report.stdout and RunFolder(old_run).report.is_file()
    compared = runner.invoke(app, ["compare", str(old_run), str(old_run), "--json"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["runs"][0]["status"] == "completed"


def test_an_old_folder_predicts_evaluates_and_exports(old_run: Path, tmp_path: Path) -> None:
    predicted = runner.invoke(app, ["predict", str(old_run), str(CANCER)])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.strip().splitlines()) == 1 + 569  # header + one row a row
    evaluated = runner.invoke(app, ["evaluate", str(old_run), str(CANCER), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0 <= json.loads(evaluated.stdout)["metrics"]["accuracy"] <= 1
    out = tmp_path / "exported"
    exported = runner.invoke(
        app, ["export", str(old_run), "--format", "savedmodel", "--output", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert (out / "saved_model.pb").is_file()


@pytest.mark.parametrize(
    "command", ["report", "compare", "predict", "evaluate", "export", "resume"]
)
def test_a_folder_from_a_newer_taskfit_is_refused_by_name(old_run: Path, command: str) -> None:
    status = RunFolder(old_run).status
    status.write_text(json.dumps({"status": "interrupted", "reason": "", "format": FORMAT + 1}))
    args = {
        "report": ["report", str(old_run)],
        "compare": ["compare", str(old_run)],
        "predict": ["predict", str(old_run), str(CANCER)],
        "evaluate": ["evaluate", str(old_run), str(CANCER)],
        "export": ["export", str(old_run), "--format", "savedmodel"],
        "resume": ["train", "--resume", str(old_run)],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"run folder format {FORMAT + 1}, written by a newer taskfit" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("written", [1, 2, 3, 4, 5])
def test_a_checkpoint_of_an_older_format_is_not_resumed(old_run: Path, written: int) -> None:
    """Format 4 packed the ensemble's members into shared layers, format 5 keeps a checkpoint
    as one .npz, format 6 takes the few-valued categories as one one-hot matrix: an older
    checkpoint does not load into this taskfit's run, so --resume says so instead of failing
    to load."""
    folder = RunFolder(old_run)
    status = {"status": "interrupted", "reason": "Ctrl-C after 3 epoch(s)"}
    folder.status.write_text(json.dumps({**status, **({"format": written} if written > 1 else {})}))
    folder.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    folder.checkpoint.write_text(json.dumps({"epoch": 2, "batch": 0}))
    result = runner.invoke(app, ["train", "--resume", str(old_run)])
    assert result.exit_code == 1, result.output
    assert f"written by an older taskfit (run folder format {written})" in result.stderr
    assert "model.keras still loads" in result.stderr and "Traceback" not in result.output


def test_a_run_keeps_its_plan_when_the_table_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan.json, not the table of the taskfit reading the folder, says what the run was: a
    table that maps binary_crossentropy to another Keras loss changes neither `open_run` nor
    the loss evaluate reports."""
    import dataclasses

    import taskfit.plan.make
    from taskfit.recipe.table import load_table
    from taskfit.runfolder.opened import open_run

    spec = helpers.tiny_spec(tmp_path, "binary", epochs=1)
    trained = runner.invoke(app, ["train", str(spec), "--json", "--output", str(tmp_path)])
    assert trained.exit_code == 0, trained.output
    run = Path(json.loads(trained.stdout)["run_dir"])
    data = str(tmp_path / "data.csv")
    before = open_run(run).plan
    assert before.heads[0].loss.terms[0].keras_class == "BinaryCrossentropy"
    scored = json.loads(runner.invoke(app, ["evaluate", str(run), data, "--json"]).stdout)

    table = load_table()
    binary = table.recipes["binary"]
    focal = dataclasses.replace(
        binary.losses["binary_crossentropy"], keras_class="BinaryFocalCrossentropy"
    )
    changed = dataclasses.replace(
        table,
        recipes={
            **table.recipes,
            "binary": dataclasses.replace(
                binary, losses={**binary.losses, "binary_crossentropy": focal}
            ),
        },
    )
    monkeypatch.setattr(taskfit.plan.make, "load_table", lambda: changed)
    assert open_run(run).plan == before
    evaluated = runner.invoke(app, ["evaluate", str(run), data, "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"] == scored["metrics"]
    # a folder of this format without plan.json is damaged: named, not planned afresh
    RunFolder(run).plan.unlink()
    with pytest.raises(DataError, match=r"plan.json: is missing; it is damaged"):
        open_run(run)
    # a folder without plan.json of format 1 or 2 is planned by the table at hand
    status = json.loads(RunFolder(run).status.read_text())
    RunFolder(run).status.write_text(json.dumps({**status, "format": 2}))
    assert open_run(run).plan.heads[0].loss.terms[0].keras_class == "BinaryFocalCrossentropy"


@pytest.mark.parametrize("flag", [True, False])
def test_a_format_6_plans_flags_read_as_the_settings_of_then(tmp_path: Path, flag: bool) -> None:
    from taskfit.plan.checking import check_spec
    from taskfit.runfolder.planfile import FLAGGED, read_plan, write_plan

    embedding = "{name: periodic, frequencies: 4, sigma: 0.2, units: 8}" if flag else "none"
    clipping = "{name: smooth, bound: 2.5}" if flag else "none"
    plan = check_spec(
        helpers.tiny_spec(tmp_path, "binary", epochs=1),
        parse_set([f"model.numeric_embedding={embedding}", f"model.numeric_clipping={clipping}"]),
    ).plan
    path = tmp_path / "plan.json"
    write_plan(path, plan)
    assert read_plan(path) == plan  # format 7: each choice by name with its settings
    doc = json.loads(path.read_text())
    del doc["embedding"]
    path.write_text(json.dumps({**doc, "periodic": flag, "clipping": flag}))
    read = read_plan(path)
    assert read.periodic is flag and read.clipped is flag
    assert read.embedding.params == (FLAGGED["periodic"][2] if flag else {})
    assert read.clipping.params == (FLAGGED["clipping"][2] if flag else {})


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("[1, 2]", "holds a JSON list, not an object"),
        ("{not json", "cannot be read (not JSON)"),
        ('{"heads": "x"}', "holds no plan taskfit wrote (a field missing or of the wrong kind)"),
    ],
)
def test_a_damaged_plan_file_is_named_in_one_error_line(
    tmp_path: Path, damage: str, said: str
) -> None:
    shutil.copytree(OLD, tmp_path / "run")
    run = tmp_path / "run"
    RunFolder(run).plan.write_text(damage)
    result = runner.invoke(app, ["predict", str(run), str(CANCER)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"plan.json: {said}; it is damaged" in errors[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("damage", ["[1, 2]", '"text"', "{not json"])
def test_a_damaged_record_is_named_by_report_and_ignored_by_predict(
    tmp_path: Path, damage: str
) -> None:
    """run.json and metrics.json are records of the run: evaluate and predict do not need them
    and go on; report, whose subject they are, names the damaged file in one error line (once a
    list was a traceback) and rewrites nothing."""
    run = Path(shutil.copytree(OLD, tmp_path / "run"))
    files = RunFolder(run)
    for record in (files.facts, files.metrics):
        record.write_text(damage)
    report = runner.invoke(app, ["report", str(run)])
    assert report.exit_code == 1, report.output
    assert "metrics.json" in report.stderr and "damaged" in report.stderr
    assert len(report.stderr.strip().splitlines()) == 1 and "Traceback" not in report.output
    evaluated = runner.invoke(app, ["evaluate", str(run), str(CANCER), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert 0.5 < json.loads(evaluated.stdout)["metrics"]["accuracy"] <= 1
    predicted = runner.invoke(app, ["predict", str(run), str(CANCER)])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.splitlines()) == 570  # the header and 569 rows
    assert files.facts.read_text() == damage and files.metrics.read_text() == damage
