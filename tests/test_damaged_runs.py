"""A run folder whose files are damaged or not what taskfit wrote gets one `error:` line naming
the file and what is wrong with it, exit 1, no traceback, from every command that reads it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_csv, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.runfolder.layout import FORMAT
from taskfit.training.run import train

runner = CliRunner()


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("run")
    spec = tiny_spec(folder, "binary", epochs=1)
    run = train(spec, {"model.members": 1}, folder / "runs", verbose=0).run_dir
    rows = folder / "rows.csv"
    rows.write_text(tiny_csv(5, "binary"))
    return run, rows


def damaged(finished: tuple[Path, Path], tmp_path: Path, name: str, content: bytes) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    (run / name).write_bytes(content)
    return run


def refused(argv: list[str], message: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def refused_by_predict_and_export(run: Path, rows: Path, message: str) -> None:
    refused(["predict", str(run), str(rows)], message)
    refused(["export", str(run), "--format", "savedmodel"], message)


def test_metrics_that_are_a_json_list(finished: tuple[Path, Path], tmp_path: Path) -> None:
    run = damaged(finished, tmp_path, "metrics.json", b"[1, 2]")
    said = f"{run / 'metrics.json'}: holds a JSON list, not an object"
    refused(["report", str(run)], said)
    refused(["compare", str(run), str(finished[0])], said)


def test_a_metric_that_is_no_number(finished: tuple[Path, Path], tmp_path: Path) -> None:
    run = damaged(finished, tmp_path, "metrics.json", b'{"accuracy": "high"}')
    refused(["compare", str(finished[0]), str(run)], "'accuracy' is 'high', not a number")


def test_a_truncated_status_is_named_not_taken_for_no_epoch(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, "status.json", b'{"status": "comp')
    said = f"{run / 'status.json'}: cannot be read (not JSON)"
    refused(["train", "--resume", str(run)], said)
    refused(["report", str(run)], said)


@pytest.mark.parametrize("content", [b"", b"\x8b\x1f random bytes \x00\xff" * 50])
def test_a_model_that_is_no_keras_file(
    finished: tuple[Path, Path], tmp_path: Path, content: bytes
) -> None:
    run = damaged(finished, tmp_path, "model.keras", content)
    said = f"{run / 'model.keras'}: is not a Keras model taskfit can load"
    refused_by_predict_and_export(run, finished[1], said)


def test_a_model_holding_a_lambda_layer_is_refused_unrun(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    import keras

    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "l.keras")
    run = damaged(finished, tmp_path, "model.keras", (tmp_path / "l.keras").read_bytes())
    refused(["predict", str(run), str(finished[1])], "holds a Lambda layer, which taskfit never")


def test_a_missing_model(finished: tuple[Path, Path], tmp_path: Path) -> None:
    run = damaged(finished, tmp_path, "model.keras", b"")
    (run / "model.keras").unlink()
    refused(["predict", str(run), str(finished[1])], "not a run folder (it needs model.keras")


def test_a_zip_that_is_no_model(finished: tuple[Path, Path], tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "z.keras", "w") as archive:
        archive.writestr("config.json", "[1, 2]")
    run = damaged(finished, tmp_path, "model.keras", (tmp_path / "z.keras").read_bytes())
    refused(["predict", str(run), str(finished[1])], "is not a Keras model taskfit can load")


def test_plots_that_are_no_png_are_left_out_and_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    """A plot's place holding a folder, a pipe (a read would wait for ever) or foreign bytes:
    the report is written with the other plots and says which it left out."""
    run = damaged(finished, tmp_path, "plots/roc_pr.png", b"not a png")
    (run / "plots" / "confusion.png").unlink()
    (run / "plots" / "confusion.png").mkdir()
    (run / "plots" / "learning_curves.png").unlink()
    os.mkfifo(run / "plots" / "learning_curves.png")
    (run / "plots" / "reliability.png").unlink()  # the one plot left whole goes
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "plots left out" in result.stdout
    page = (run / "report.html").read_text(encoding="utf-8")
    left_out = "plots/learning_curves.png, plots/confusion.png, plots/roc_pr.png (not a PNG file"
    assert left_out in page and "data:image/png" not in page and "No plot could be shown" in page


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_predict_on_a_run_that_did_not_complete_says_so(
    status: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    """Its model still predicts (it is what the run saved), with a note naming how it ended."""
    doc = {"status": status, "reason": "MemoryError: out of memory", "format": FORMAT}
    run = damaged(finished, tmp_path, "status.json", json.dumps(doc).encode())
    result = runner.invoke(app, ["predict", str(run), str(finished[1])])
    assert result.exit_code == 0, result.output
    assert f"note: run: training {status} (MemoryError: out of memory)" in result.stderr
    assert len(result.stdout.splitlines()) == 6  # the header and the 5 rows


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped by Ctrl-C after its second epoch of four, its checkpoint kept."""
    from taskfit.training.guards import StopOnInterrupt

    def ctrl_c_after_two(self: StopOnInterrupt, epoch: int, logs: object = None) -> None:
        if epoch == 1:
            self.signal, self.model.stop_training = "Ctrl-C", True

    folder = tmp_path_factory.mktemp("stopped")
    spec = tiny_spec(folder, "binary", epochs=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StopOnInterrupt, "on_epoch_end", ctrl_c_after_two, raising=False)
        asked = {"model.members": 1, "training.bagging": False}
        return train(spec, asked, folder / "runs", verbose=0).run_dir


def copied(run: Path, tmp_path: Path) -> Path:
    """A copy of the run folder to damage, beside the test's other files."""
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("recorded", [1, 2])
def test_a_spec_at_or_below_the_epochs_done_is_said_and_nothing_is_lost(
    recorded: int, stopped: Path, tmp_path: Path
) -> None:
    """The run's checkpoint holds 1 finished epoch (the Ctrl-C cut its second short): with a
    resolved spec of 1 epoch every epoch is done, and --resume completes the run without
    training (as after a stop while saving); a checkpoint of 2 against it means an edited file
    (a resume from there ran no epoch and wiped history.csv)."""
    run = copied(stopped, tmp_path)
    resolved = run / "spec.resolved.yaml"
    resolved.write_text(resolved.read_text().replace("epochs: 4", "epochs: 1"))
    record = run / "backup" / "training_metadata.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "epoch": recorded}))
    if recorded == 1:
        history = (run / "history.csv").read_text().splitlines()[:2]
        done = runner.invoke(app, ["train", "--resume", str(run)])
        assert done.exit_code == 0, done.output
        assert json.loads((run / "status.json").read_text())["status"] == "completed"
        assert (run / "history.csv").read_text().splitlines() == history  # no epoch trained
        return
    before = snapshot(run)
    refused(
        ["train", "--resume", str(run)],
        f"{resolved}: says training.epochs 1, but the checkpoint holds 2",
    )
    assert snapshot(run) == before


@pytest.mark.parametrize("replaced", ["missing", "a pipe"])
def test_a_lost_checkpoint_record_is_named_not_taken_for_no_epoch(
    replaced: str, stopped: Path, tmp_path: Path
) -> None:
    run = copied(stopped, tmp_path)
    record = run / "backup" / "training_metadata.json"
    record.unlink()
    if replaced == "a pipe":
        os.mkfifo(record)
    said = f"{record}: is missing, though history.csv logs 2 epoch(s)"
    refused(["train", "--resume", str(run)], said if replaced == "missing" else "named pipe")


@pytest.mark.parametrize("pid", [99999999999999999999, True, "12"])
def test_a_process_id_that_is_none_is_named(
    pid: object, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    doc = {"status": "running", "format": FORMAT, "process": {"pid": pid, "host": os.uname()[1]}}
    run = damaged(finished, tmp_path, "status.json", json.dumps(doc).encode())
    refused(["report", str(run)], f"{run / 'status.json'}: names process {pid!r}")


@pytest.mark.parametrize("found", [0, -3, "6", True])
def test_a_format_that_is_none_is_named_not_called_newer(
    found: object, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    doc = {"status": "completed", "format": found}
    run = damaged(finished, tmp_path, "status.json", json.dumps(doc).encode())
    refused(["report", str(run)], f"{run / 'status.json'}: says format {found!r}, which is no")


def test_run_facts_of_the_wrong_kind_are_named(finished: tuple[Path, Path], tmp_path: Path) -> None:
    facts = json.loads((finished[0] / "run.json").read_text())
    wrongs = [("epochs", "one"), ("rows", [1, 2, 3]), ("versions", "x"), ("targets", {"y": "x"})]
    wrongs += [("rows", {}), ("rows", {"train": 5})]
    for i, (name, wrong) in enumerate(wrongs):
        run = damaged(
            finished, tmp_path / str(i), "run.json", json.dumps({**facts, name: wrong}).encode()
        )
        refused(["report", str(run)], f"{run / 'run.json'}: its {name} is {wrong!r}, not")


@pytest.mark.parametrize("lacking", ["epochs", "rows"])
def test_a_completed_run_whose_facts_lack_a_field_is_not_called_unfinished(
    lacking: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    facts = json.loads((finished[0] / "run.json").read_text())
    del facts[lacking]
    run = damaged(finished, tmp_path, "run.json", json.dumps(facts).encode())
    refused(["report", str(run)], f"{run / 'run.json'}: has no {lacking}, though the run completed")


@pytest.mark.parametrize("name", ["run.json", "history.csv", "metrics.json"])
@pytest.mark.parametrize("damage", ["removed", "emptied", "a pipe"])
def test_a_completed_run_missing_its_record_is_not_called_unfinished(
    name: str, damage: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, name, b"")
    path = run / name
    if damage != "emptied":
        path.unlink()
    if damage == "a pipe":
        os.mkfifo(path)
    said = {"removed": "is missing", "a pipe": "named pipe"}.get(damage, "")
    if damage == "emptied":
        said = "holds no epoch" if name == "history.csv" else "cannot be read (not JSON)"
    refused(["report", str(run)], f"{path}: {said}" if damage != "a pipe" else said)


def test_a_pipe_where_report_writes_is_named_not_replaced(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    os.mkfifo(run / "report.html")
    refused(["report", str(run)], f"{run / 'report.html'}: is a named pipe (FIFO), not the file")
    assert stat.S_ISFIFO((run / "report.html").lstat().st_mode)


@pytest.mark.parametrize("content", [b"garbage", b'{"status": "bogus"}', b'{"status": 5}'])
def test_a_status_that_is_none_is_named_by_compare_and_report(
    content: bytes, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    """compare showed such a run as "completed" (or the value as it was)."""
    run = damaged(finished, tmp_path, "status.json", content)
    said = f"{run / 'status.json'}: " + ("cannot be read" if content == b"garbage" else "says")
    refused(["compare", str(run), str(finished[0])], said)
    refused(["report", str(run)], said)


def edited(finished: tuple[Path, Path], tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the run whose file `name` has `old` replaced by `new` (once, and it was there)."""
    text = (finished[0] / name).read_text()
    assert old in text
    return damaged(finished, tmp_path, name, text.replace(old, new, 1).encode())


def test_a_plan_that_contradicts_itself_is_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = edited(finished, tmp_path, "plan.json", '"1"\n        ]', '"1", "2"]')
    said = f"{run / 'plan.json'}: gives the binary head output the classes ['0', '1', '2']; "
    refused(["predict", str(run), str(finished[1])], said)
    refused(["report", str(run)], said)


def test_a_plan_whose_output_the_model_lacks_is_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = edited(finished, tmp_path, "plan.json", '"output_units": 1', '"output_units": 2')
    said = f"{run / 'model.keras'}: has 1 output units for output, but plan.json gives it 2"
    refused_by_predict_and_export(run, finished[1], said)


def test_features_edited_in_the_resolved_spec_are_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    text = (finished[0] / "spec.resolved.yaml").read_text()
    text = text.replace("  - a\n  - b\n", "  - a\n", 2)
    run = damaged(finished, tmp_path, "spec.resolved.yaml", text.encode())
    said = f"{run / 'model.keras'}: takes the columns a, b, but spec.resolved.yaml names a;"
    refused(["predict", str(run), str(finished[1])], said)
    refused(["evaluate", str(run), str(finished[1])], said)


@pytest.mark.parametrize("content", [b"[]", b'{"heads": {"output": {"importance": 3}}}'])
def test_a_damaged_importance_file_is_left_out_and_named(
    content: bytes, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, "explain.json", content)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "importance left out" in result.stdout
    assert "explain.json is not what taskfit explain writes" in result.stdout
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "explain.json is not what taskfit explain writes" in page


def edited_json(finished: tuple[Path, Path], tmp_path: Path, name: str, edit: Any) -> Path:
    """A copy of the run whose JSON file `name` went through `edit` (a function of the doc)."""
    doc = json.loads((finished[0] / name).read_text())
    edit(doc)
    return damaged(finished, tmp_path, name, json.dumps(doc).encode())


def _set(path: list[Any], value: Any) -> Any:
    def edit(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (["heads", 0, "metrics"], ["bogus"], "gives the binary head output the metrics ['bogus']"),
        (["heads", 0, "loss", "terms"], [], "gives the binary head output a loss of 0 terms"),
        (["heads", 0, "loss", "stages"], [], "a loss of 1 terms in 0 stages"),
        (
            ["heads", 0, "loss", "terms", 0, "keras_class"],
            "Bogus",
            "gives the loss binary_crossentropy the class 'Bogus', not BinaryCrossentropy",
        ),
        (["heads", 0, "labels", "format"], "onehot", "labels of the format 'onehot'"),
        (["heads", 0, "task"], "regression", "gives the regression head output labels of"),
        (["heads", 0, "output_activation"], "nope", "the output activation 'nope'"),
        (["layers", 0, "activation"], "nope", "gives the hidden layers the layer"),
        (["ensemble"], "bogus", "gives the ensemble 'bogus'"),
        (["embedding", "name"], "fourier", "names the numeric embedding 'fourier'"),
        (
            ["embedding"],
            {"name": "periodic", "keras_class": "periodic", "params": {"sigma": 0.1}},
            "gives the numeric embedding periodic no frequencies",
        ),
        (["clipping", "params"], {"bound": -1}, "gives the clipping none bound: -1"),
        (["optimizer", "params", "learning_rate"], "fast", "gives the optimizer adam learning"),
        (["batch_size"], 10**60, "batch size 1000000000000000000000000000000000000..."),
    ],
)
def test_a_plan_edited_into_what_taskfit_cannot_run_is_named(
    path: list[Any], value: Any, said: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = edited_json(finished, tmp_path, "plan.json", _set(path, value))
    refused(["report", str(run)], said)
    refused(["report", str(run)], f"{run / 'plan.json'}: ")


def test_a_plan_whose_label_is_not_the_specs_is_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = edited_json(
        finished, tmp_path, "plan.json", _set(["heads", 0, "labels", "columns"], ["a"])
    )
    said = f"{run / 'plan.json'}: its head output has the label a and the classes ['0', '1'], "
    refused(["evaluate", str(run), str(finished[1])], said + "which is not what spec.resolved")


def test_a_column_whose_type_was_edited_is_named(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    text = (finished[0] / "spec.resolved.yaml").read_text()
    text = text.replace(
        "  numeric:\n  - a\n  - b\n  categorical: []", "  numeric:\n  - b\n  categorical:\n  - a"
    )
    run = damaged(finished, tmp_path, "spec.resolved.yaml", text.encode())
    refused(["predict", str(run), str(finished[1])], f"{run / 'model.keras'}: takes a as a number")


@pytest.mark.parametrize("name", ["plan.json", "status.json", "metrics.json"])
def test_json_nested_too_deeply_is_named(
    name: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, name, b"[" * 100_000 + b"]" * 100_000)
    refused(["report", str(run)], f"{run / name}: cannot be read (nested too deeply)")


def test_a_metric_beyond_any_float_is_named_shortly(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = edited_json(finished, tmp_path, "metrics.json", _set(["accuracy"], 10**400))
    refused(
        ["compare", str(run), str(finished[0])],
        "'accuracy' is 1000000000000000000000000000000000000..., not a number",
    )


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_scores_on_rows_without_a_label_are_refused(
    command: str, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = tmp_path / "unlabelled.csv"
    rows.write_text("a,b,y\n0.1,0.2,\n0.3,0.4,\n")
    said = "unlabelled.csv: none of its 2 rows has every label (y)"
    refused([command, str(finished[0]), str(rows)], said)
    assert not (finished[0] / "explain.json").exists()


def test_a_run_without_test_rows_is_read_back(tmp_path: Path) -> None:
    """data.test_fraction 0 without bagging: no test metrics, and run.json says so (null)."""
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    asked = {"model.members": 1, "training.bagging": False, "data.test_fraction": 0}
    run = train(spec, asked, tmp_path / "runs", verbose=0).run_dir
    assert json.loads((run / "run.json").read_text())["metrics_on"] is None
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output


def test_a_history_with_text_where_a_number_goes_is_named(stopped: Path, tmp_path: Path) -> None:
    run = copied(stopped, tmp_path)
    history = run / "history.csv"
    lines = history.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("val_loss")] = "abc"
    history.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    refused(["train", "--resume", str(run)], f"{history}:2: val_loss is 'abc', not a number")


@pytest.mark.parametrize("kind", ["text", "a wrong shape"])
def test_a_checkpoint_of_the_wrong_arrays_is_named(
    kind: str, stopped: Path, tmp_path: Path
) -> None:
    import numpy as np

    run = copied(stopped, tmp_path)
    (state,) = (run / "backup").glob("epoch-*.npz")
    with np.load(state) as saved:
        arrays = {k: saved[k] for k in saved.files}
    first = next(iter(arrays))
    arrays[first] = np.full(arrays[first].shape, "a") if kind == "text" else np.zeros(1)
    np.savez(state, **arrays)
    before = json.loads((run / "status.json").read_text())
    refused(["train", "--resume", str(run)], f"{state}: array 0 is ")
    after = json.loads((run / "status.json").read_text())
    assert (after["status"], after["reason"]) == (before["status"], before["reason"])


def test_a_plots_folder_that_is_a_link_is_not_followed_by_report(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, "metrics.json", (finished[0] / "metrics.json").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run / "plots", elsewhere)
    (run / "plots").symlink_to(elsewhere)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "data:image/png" not in page and "plots/ is a link, not the run" in page


@pytest.mark.parametrize("content", [b"garbage", b'{"status": "bogus"}'])
def test_a_damaged_status_is_named_by_the_commands_that_load_the_model(
    content: bytes, finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, "status.json", content)
    refused_by_predict_and_export(run, finished[1], f"{run / 'status.json'}: ")


def test_keep_never_writes_a_column_twice(finished: tuple[Path, Path], tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,predicted_y\n0.1,0.2,x\n")
    argv = ["predict", str(finished[0]), str(rows), "--output", str(tmp_path / "out.csv")]
    refused(
        [*argv, "--keep", "predicted_y"], "--keep predicted_y: predict writes a column of that name"
    )
    assert not (tmp_path / "out.csv").exists()


def test_a_history_field_beyond_the_csv_limit_is_named_as_such(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    run = damaged(finished, tmp_path, "history.csv", b"epoch,loss\n1," + b"9" * 200_000 + b"\n")
    refused(
        ["report", str(run)],
        f"{run / 'history.csv'}: cannot be read (not the CSV taskfit writes: field larger",
    )
