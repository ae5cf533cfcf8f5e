"""SIGTERM (what `timeout`, CI runners, Kubernetes and systemd send) is taken as Ctrl-C is: fit
stops after the batch, the best weights are saved, status.json says interrupted and why, the run
resumes, and the process exits 143."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny_spec, wait_for_epochs

from taskfit.errors import Terminated
from taskfit.runfolder.status import status_follows

TASKFIT = str(Path(sys.executable).with_name("taskfit"))
LONG = ["--set", "training.epochs=500", "--set", "training.early_stopping=null"]


def start(spec: Path, runs: Path) -> subprocess.Popen[str]:
    command = [TASKFIT, "train", str(spec), "--output", str(runs), *LONG]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def epochs(run_dir: Path) -> int:
    return len((run_dir / "history.csv").read_text().splitlines()) - 1


def status(run_dir: Path) -> dict[str, str]:
    return dict(json.loads((run_dir / "status.json").read_text()))


@pytest.mark.slow
def test_sigterm_during_fit_saves_says_so_and_resumes(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=500, batch_size=4)
    proc = start(spec, tmp_path / "runs")
    run_dir = wait_for_epochs(tmp_path / "runs", 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM): kept what was learned so far" in err
    assert "Traceback" not in err and "early stopping:" not in err  # the signal stopped it
    said = status(run_dir)
    assert said["status"] == "interrupted" and said["reason"].startswith("SIGTERM after")
    assert (run_dir / "model.keras").is_file() and (run_dir / "metrics.json").is_file()
    # resumable: --resume carries on from the last epoch (stopped by SIGTERM again)
    done = epochs(run_dir)
    again = subprocess.Popen(
        [TASKFIT, "train", "--resume", str(run_dir)], stderr=subprocess.PIPE, text=True
    )
    wait_for_epochs(tmp_path / "runs", done + 1, again)
    again.send_signal(signal.SIGTERM)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 143, err
    history = (run_dir / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == [
        str(i) for i in range(1, epochs(run_dir) + 1)
    ]
    assert epochs(run_dir) > done


@pytest.mark.slow
def test_sigterm_before_fit_leaves_an_interrupted_folder(tmp_path: Path) -> None:
    """While TensorFlow loads (seconds after the run folder is made): no epoch, no model, and a
    status that says what ended it, not "running"."""
    spec = tiny_spec(tmp_path, "binary", epochs=500)
    proc = start(spec, tmp_path / "runs")
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("*/status.json")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err
    assert "Traceback" not in err, err
    (run_dir,) = (tmp_path / "runs").iterdir()
    said = status(run_dir)
    assert said["status"] == "interrupted" and "SIGTERM" in said["reason"], (said, err)


@pytest.mark.slow
def test_resume_refuses_a_run_whose_process_is_still_training(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, "binary", epochs=500, batch_size=4)
    proc = start(spec, tmp_path / "runs")
    try:
        run_dir = wait_for_epochs(tmp_path / "runs", 1, proc)
        done = subprocess.run(
            [TASKFIT, "train", "--resume", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1
        assert f"this run is still training, in process {proc.pid} on this machine" in done.stderr
        report = subprocess.run([TASKFIT, "report", str(run_dir)], capture_output=True, text=True)
        assert f"running (in process {proc.pid})" in report.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=180)
    assert proc.returncode == 143


# The command line in a process that sends itself SIGTERM at a moment no command handles:
# while a result is printed (after the command's own error handling), or inside a finalizer,
# where Python cannot raise the signal's exception and only reports it.
OUTSIDE = """
import gc, os, signal, sys
import taskfit.cli.render as render

where, sent = sys.argv.pop(1), signal.Signals[sys.argv.pop(1)]

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), sent)
        sum(range(10_000))  # the handler runs here, inside the finalizer

real = render.print_table
def print_table(*args, **kwargs):
    if where == "printing":
        os.kill(os.getpid(), sent)
        sum(range(10_000))
    else:
        Finalized()
        gc.collect()
    return real(*args, **kwargs)
render.print_table = print_table

from taskfit.cli.app import main
sys.argv = ["taskfit", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("where", ["printing", "finalizer"])
@pytest.mark.parametrize(
    ("sent", "code", "said"),
    [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted")],
)
def test_a_signal_where_no_command_handles_it_still_ends_the_command(
    where: str, sent: str, code: int, said: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OUTSIDE, where, sent, "recommend", "--task", "binary"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines()[-1] == said, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.mark.parametrize(
    ("signalled", "how"), [(KeyboardInterrupt, "Ctrl-C"), (Terminated, "SIGTERM")]
)
def test_a_signal_wrapped_in_another_error_leaves_the_run_interrupted(
    tmp_path: Path, signalled: type[KeyboardInterrupt], how: str
) -> None:
    """TensorFlow leaving a device scope that a Ctrl-C cut raises its own RuntimeError: the
    run is still interrupted by the signal, not failed, and the signal goes on up."""
    with pytest.raises(signalled), status_follows(tmp_path):
        try:
            raise signalled()
        except KeyboardInterrupt:
            raise RuntimeError("Exiting device scope without proper scope nesting")  # noqa: B904
    assert status(tmp_path) == {**status(tmp_path), "status": "interrupted"}
    assert status(tmp_path)["reason"] == f"{how}: stopped before saving a model"
