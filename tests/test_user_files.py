"""A file of the user's is never replaced unasked: `predict --output` refuses the input CSV and a
run folder's own files always, and any other file that exists without --force."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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


def test_a_pipe_or_a_device_is_never_replaced_even_with_force(
    run_and_rows: tuple[Path, Path], tmp_path: Path
) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    code, stderr = predict(*run_and_rows, pipe, "--force")
    assert code == 1 and "is a named pipe (FIFO), not a regular file" in stderr
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    code, stderr = predict(*run_and_rows, Path(os.devnull), "--force")
    assert code == 1 and "is a character device, not a regular file" in stderr
    assert stat.S_ISCHR(Path(os.devnull).stat().st_mode)


def test_a_link_to_nothing_is_not_replaced_by_a_starter_spec(
    run_and_rows: tuple[Path, Path], tmp_path: Path
) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "elsewhere.yaml")
    data = tmp_path / "data.csv"
    data.write_text(tiny_csv(20, "binary"))
    result = runner.invoke(
        app, ["recommend", "--data", str(data), "--label", "y", "--write", str(link)]
    )
    assert result.exit_code == 1 and "exists already" in result.stderr
    assert link.is_symlink() and not link.exists()


@pytest.mark.parametrize(
    ("stdout", "command"),
    [("/dev/full", "check"), ("closed", "check"), ("/dev/full", "datasets")],
)
def test_results_that_cannot_reach_stdout_are_an_error(
    stdout: str, command: str, tmp_path: Path
) -> None:
    """Not a traceback (a full disk), not a silent exit 0 (stdout closed, the results lost);
    named as standard output whether click or rich wrote the results."""
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    target = subprocess.DEVNULL if stdout == "closed" else open(stdout, "w")  # noqa: SIM115
    args = [str(spec)] if command == "check" else []
    argv = [sys.executable, "-m", "taskfit", command, *args]
    if stdout == "closed":
        argv = ["sh", "-c", 'exec "$@" >&-', "sh", *argv]
    done = subprocess.run(argv, stdout=target, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: standard output")


def test_an_error_naming_a_file_with_a_line_break_stays_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "two\nlines.yaml"
    spec.write_text("bogus: 1\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("two\\nlines.yaml" in line for line in errors)
    assert len(result.stderr.splitlines()) == len(errors)


def test_a_nul_in_a_cell_is_shown_escaped_not_raw(tmp_path: Path) -> None:
    """A control character from the data (a NUL) would make grep or a terminal take the
    output for binary: every line taskfit prints writes it as an escape."""
    data = tmp_path / "nul.csv"
    cells = ["a", "a", "a\x00b"] * 10
    data.write_text("x,plan\n" + "".join(f"{i},{cell}\n" for i, cell in enumerate(cells)))
    result = runner.invoke(app, ["recommend", "--data", str(data), "--label", "plan"])
    assert result.exit_code == 0, result.output
    assert "\x00" not in result.stdout + result.stderr
    assert "a\\x00b" in result.stdout + result.stderr


def test_a_command_that_loads_tensorflow_loads_no_jax_and_shows_no_native_logs(
    run_and_rows: tuple[Path, Path],
) -> None:
    """TensorFlow imports JAX for TFLite's JAX converter when it is installed, and Keras
    imports scikit-learn for its wrappers; the CLI lets neither (taskfit.cli.app.main and
    model.keras_setup.lean_first_imports say why). TensorFlow 2.21's native libraries log to
    stderr as they load; the CLI keeps those lines off it."""
    code = (
        "import atexit, sys\n"
        "def loaded():\n"
        "    for name in ('jax', 'sklearn'):\n"
        "        print(f'{name}:', sys.modules.get(name) is not None, file=sys.stderr)\n"
        "atexit.register(loaded)\n"
        "from taskfit.cli.app import main\n"
        f"sys.argv = ['taskfit', 'predict', {str(run_and_rows[0])!r}, {str(run_and_rows[1])!r}]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "jax: False" in done.stderr and "sklearn: False" in done.stderr
    assert "absl::InitializeLog" not in done.stderr and "oneDNN" not in done.stderr


@pytest.mark.parametrize(("log_level", "shown"), [(None, False), ("3", False), ("0", True)])
def test_what_tensorflow_writes_to_stderr_as_it_loads_is_shown_only_when_asked(
    log_level: str | None, shown: bool, tmp_path: Path
) -> None:
    """The import hook, on a stand-in `tensorflow` whose import writes to descriptor 2 as a
    native library does: the line is kept off stderr unless TF_CPP_MIN_LOG_LEVEL is below 3;
    what the process writes to stderr afterwards still shows."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("import os\nos.write(2, b'native\\n')\n")
    code = (
        "import sys\n"
        "import taskfit\n"
        "from taskfit.model.keras_setup import lean_first_imports\n"
        "lean_first_imports()\n"
        "import tensorflow\n"
        "print('after', file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env |= {"TF_CPP_MIN_LOG_LEVEL": log_level} if log_level else {}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("native\n" if shown else "") + "after\n"


def test_a_starter_spec_never_goes_into_a_run_folder(
    run_and_rows: tuple[Path, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text(tiny_csv(20, "binary"))
    inside = run_and_rows[0] / "new.yaml"
    argv = ["recommend", "--data", str(data), "--label", "y", "--write", str(inside)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1 and "is in the run folder" in result.stderr
    assert not inside.exists()


def test_plots_are_never_written_through_a_link_in_the_run_folder(
    run_and_rows: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_and_rows[0], run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(run / "plots")
    (run / "plots").symlink_to(elsewhere)
    result = runner.invoke(app, ["explain", str(run), "--repeats", "1"])
    assert result.exit_code == 1, result.output
    assert f"{run / 'plots'}: is a symbolic link, not the folder taskfit writes" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_full_disk_is_named_by_the_file_meant_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills as the model is moved into place: status.json and the error name
    model.keras and the system's reason, not a temporary name or a Python repr."""
    import errno
    import json

    import taskfit.runfolder.files as files

    replace = os.replace

    def full(source: str | Path, destination: str | Path) -> None:
        if Path(destination).name == "model.keras":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        replace(source, destination)

    monkeypatch.setattr(files.os, "replace", full)
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    with pytest.raises(OSError) as caught:
        train(spec, {"model.members": 1}, tmp_path / "runs", verbose=0)
    (run,) = (tmp_path / "runs").iterdir()
    assert caught.value.filename == str(run / "model.keras")
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed"
    assert status["reason"] == f"{run / 'model.keras'}: {os.strerror(errno.ENOSPC)}"
    assert not [p for p in run.rglob(".*") if p.is_file()]


def test_what_keras_would_import_for_nothing_is_kept_out_of_its_import_only(
    tmp_path: Path,
) -> None:
    """On a stand-in `keras` that imports scikit-learn if it can, as Keras does: under the
    hook it cannot, and scikit-learn imports as usual once Keras has."""
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text(
        "try:\n    import sklearn\nexcept ImportError:\n    sklearn = None\n"
    )
    code = (
        "import sys\n"
        "from taskfit.model.keras_setup import lean_first_imports\n"
        "lean_first_imports()\n"
        "import keras\n"
        "print(keras.sklearn is None, 'sklearn' in sys.modules)\n"
        "import sklearn\n"
        "print(sklearn.__name__)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True False\nsklearn\n"


def test_a_folder_that_refuses_new_files_is_named_by_the_file_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run folder made read-only or immutable (chattr +i) under a command: the error names
    status.json, not the temporary file taskfit tried to create beside it."""
    import errno

    import taskfit.runfolder.files as files

    def refused(path: str | Path, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(path))

    monkeypatch.setattr(files.os, "open", refused)
    with pytest.raises(OSError) as caught:
        files.write_status(tmp_path, "running")
    assert caught.value.filename == str(tmp_path / "status.json")
    assert not list(tmp_path.iterdir())
