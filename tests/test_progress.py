"""Progress on stderr: shown on a terminal, never under --json; when stderr is a file or pipe,
training logs a plain line per epoch. The terminal is a real pseudo-terminal given to a real
`taskfit` process."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import NO_ADDITIONS, TASKFIT, tiny_spec
from typer.testing import CliRunner

from taskfit import progress
from taskfit.cli.app import app

# the same, with every CSV counting as big enough for a progress bar
BIG_CSVS = [
    sys.executable,
    "-c",
    "import taskfit.progress as p; p.BIG_CSV = 0\nfrom taskfit.cli.app import main; main()",
]


def run_on_terminal(command: list[str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe): exit code, stdout, what the
    terminal showed."""
    terminal, child_side = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=child_side)
    os.close(child_side)
    shown: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:  # the child's side closed: everything has been read
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(terminal)
    return proc.returncode, out.decode(), b"".join(shown).decode(errors="replace")


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return tiny_spec(tmp_path, "binary", epochs=2)


def test_training_shows_progress_on_a_terminal_and_keeps_stdout_clean(
    spec: Path, tmp_path: Path
) -> None:
    code, out, shown = run_on_terminal(
        [*TASKFIT, "train", str(spec), "--output", str(tmp_path / "runs"), *NO_ADDITIONS]
    )
    assert code == 0, shown
    assert "Epoch 1/2" in shown and "Epoch 2/2" in shown and "━" in shown  # Keras's bars
    assert "Epoch" not in out and "━" not in out
    assert out.startswith("test accuracy")
    run_dir = Path(out.strip().splitlines()[-1].removeprefix("run folder: "))

    # predict: the CSV alone on stdout, what it is doing on the terminal
    code, out, shown = run_on_terminal(
        [*TASKFIT, "predict", str(run_dir), str(spec.parent / "data.csv")]
    )
    assert code == 0, shown
    assert "loading TensorFlow and the model" in shown and "loading" not in out
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["predicted_y", "probability_0", "probability_1"] and len(rows) == 61


def test_the_refit_shows_keras_bars_under_one_plain_line_on_a_terminal(
    spec: Path, tmp_path: Path
) -> None:
    """A spinner around Keras's bars redrew its line each frame and printed the bars' carriage
    returns raw: the refit says what it does once, then Keras's bars run alone."""
    refit = ["--set", "training.refit=true", "--set", "training.bagging=false"]
    code, out, shown = run_on_terminal(
        [*TASKFIT, "train", str(spec), "--output", str(tmp_path / "runs"), *NO_ADDITIONS, *refit]
    )
    assert code == 0, shown
    assert "refitting" not in out  # what it does goes to the terminal, not to the results
    said = "refitting on train + validation for"
    assert shown.count(said) == 1, shown
    # up to the next spinner (rich hides the cursor first), drawing the plots
    refitting = shown.split(said, 1)[1].split("\x1b[?25l")[0]
    assert "Epoch 1/" in refitting and "━" in refitting  # Keras's own bar
    assert "drawing plots" in shown.split(said, 1)[1].split(refitting, 1)[1]


def test_json_runs_show_no_progress_even_on_a_terminal(spec: Path, tmp_path: Path) -> None:
    code, out, shown = run_on_terminal(
        [*TASKFIT, "train", str(spec), "--output", str(tmp_path / "runs"), "--json", *NO_ADDITIONS]
    )
    assert code == 0, shown
    assert "Epoch" not in shown and "━" not in shown and "loading" not in shown
    assert json.loads(out)["epochs"] == 2


def test_a_line_per_epoch_when_stderr_is_a_file(spec: Path, tmp_path: Path) -> None:
    """A CI log or nohup.out gets one plain line per epoch (no bars, no spinner, no escape
    codes), so minutes of training are not minutes of silence; stdout holds the result alone."""
    result = CliRunner().invoke(app, ["train", str(spec), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "Epoch 1/2" in lines and "Epoch 2/2" in lines
    assert sum(" - loss: " in line and " - val_loss: " in line for line in lines) == 2
    assert "━" not in result.stderr and "\x1b" not in result.stderr and "\r" not in result.stderr
    assert result.stdout.startswith("test accuracy") and "Epoch" not in result.stdout


def test_reading_a_big_csv_shows_how_far_it_got(spec: Path) -> None:
    code, _, shown = run_on_terminal([*BIG_CSVS, "check", str(spec)])
    assert code == 0, shown
    assert "reading data.csv" in shown
    code, _, shown = run_on_terminal([*TASKFIT, "check", str(spec)])  # small: no bar
    assert code == 0 and "reading" not in shown


def test_quiet_nests_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    assert progress.shown()
    with progress.quiet(False):
        assert progress.shown()
    with progress.quiet(True):
        assert not progress.shown()
        with progress.quiet(False):  # an inner block cannot turn progress back on
            assert not progress.shown()
    assert progress.shown()
