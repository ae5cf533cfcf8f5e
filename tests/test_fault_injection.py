"""A process killed (SIGKILL: no handler runs, no cleanup) while it writes leaves the destination
either as it was or whole and new, never cut short: `predict --output`, `export` (a .tflite file,
and a SavedModel folder replacing an earlier one) and `report`. The kill is injected at the worst
moments: halfway through writing the bytes, once they are all written but not yet in place, and
just after they are moved into place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_csv, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app

pytestmark = pytest.mark.slow  # each kill is a new process that imports TensorFlow

# The command line in a process that kills itself at KILL_AT when it writes a file named
# KILL_NAME (or a folder of that name is moved into place).
DRIVER = """
import os, pathlib, signal, sys
import taskfit.inference.export as export
import taskfit.runfolder.files as files

point, name = os.environ["KILL_AT"], os.environ["KILL_NAME"]
sent = signal.Signals[os.environ.get("KILL_SIGNAL", "SIGKILL")]

def die():
    os.kill(os.getpid(), sent)

def ours(path):
    return pathlib.Path(path).name == name or pathlib.Path(path).name.startswith("." + name)

real_replace, real_exchange = os.replace, export._exchange
def replace(source, destination, *args, **kwargs):
    if pathlib.Path(destination).name == name and point == "before":
        die()
    real_replace(source, destination, *args, **kwargs)
    if pathlib.Path(destination).name == name and point == "after":
        die()
os.replace = replace

def exchange(one, other):
    if other.name == name and point == "before":
        die()
    swapped = real_exchange(one, other)
    if other.name == name and point == "after":
        die()
    return swapped
export._exchange = exchange

class HalfWriter:
    def __init__(self, f):
        self.f = f
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        die()

def opened(path, *args, **kwargs):
    f = open(path, *args, **kwargs)
    return HalfWriter(f) if point == "during" and ours(path) else f
files.open = opened

real_write_bytes = pathlib.Path.write_bytes
def write_bytes(self, data):
    if point == "during" and ours(self):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        die()
    return real_write_bytes(self, data)
pathlib.Path.write_bytes = write_bytes

from taskfit.cli.app import main
sys.argv = ["taskfit", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from taskfit.training.run import train

    folder = tmp_path_factory.mktemp("run")
    run = train(tiny_spec(folder, "binary", epochs=1), {"model.members": 1}, folder, verbose=0)
    rows = folder / "rows.csv"
    rows.write_text(tiny_csv(8, "binary"))
    return run.run_dir, rows


def killed(argv: list[str], point: str, name: str) -> None:
    """Run taskfit with `argv`, killed at `point` while it writes `name`; it must die by the
    kill (the point was reached), not exit."""
    env = {**os.environ, "KILL_AT": point, "KILL_NAME": name}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -9, (done.returncode, done.stderr)


def terminated(argv: list[str], name: str) -> subprocess.CompletedProcess[str]:
    """Run taskfit with `argv`, sent SIGTERM once `name`'s bytes are written but not yet in
    place (what `timeout`, a CI runner or Kubernetes may do at any moment)."""
    env = {**os.environ, "KILL_AT": "before", "KILL_NAME": name, "KILL_SIGNAL": "SIGTERM"}
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *argv], env=env, capture_output=True, text=True, timeout=300
    )


def clean(argv: list[str]) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("point", ["during", "before", "after"])
def test_predictions_killed_mid_write(
    finished: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    run, rows = finished
    reference, out = tmp_path / "reference.csv", tmp_path / "out.csv"
    clean(["predict", str(run), str(rows), "--output", str(reference)])
    out.write_bytes(b"the user's earlier predictions\n")
    killed(["predict", str(run), str(rows), "--output", str(out), "--force"], point, "out.csv")
    expected = reference.read_bytes() if point == "after" else b"the user's earlier predictions\n"
    assert out.read_bytes() == expected


@pytest.mark.parametrize("point", ["during", "before", "after"])
def test_a_tflite_export_killed_mid_write(
    finished: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    run, _ = finished
    out = tmp_path / "model.tflite"
    out.write_bytes(b"an earlier export")
    argv = ["export", str(run), "--format", "tflite", "--output", str(out), "--force"]
    killed(argv, point, "model.tflite")
    if point == "after":
        assert out.read_bytes()[4:8] == b"TFL3"  # a whole flatbuffer: its identifier
        assert out.stat().st_size > 1000
    else:
        assert out.read_bytes() == b"an earlier export"


@pytest.mark.parametrize("point", ["before", "after"])
def test_a_savedmodel_replacing_an_earlier_one_killed_as_it_moves(
    finished: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    run, _ = finished
    out = tmp_path / "savedmodel"
    argv = ["export", str(run), "--format", "savedmodel", "--output", str(out), "--force"]
    clean(argv)
    earlier = (out / "saved_model.pb").stat().st_ino
    killed(argv, point, "savedmodel")
    assert (out / "saved_model.pb").is_file() and (out / "variables").is_dir()
    now = (out / "saved_model.pb").stat().st_ino
    assert (now == earlier) == (point == "before")


@pytest.mark.parametrize("point", ["during", "before", "after"])
def test_a_report_killed_mid_write(finished: tuple[Path, Path], tmp_path: Path, point: str) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    clean(["report", str(run)])
    page = run / "report.html"
    earlier = page.read_bytes()
    page.write_bytes(earlier + b"<!-- the earlier report -->")
    killed(["report", str(run)], point, "report.html")
    if point == "after":
        assert page.read_bytes().rstrip().endswith(b"</html>")
    else:
        assert page.read_bytes() == earlier + b"<!-- the earlier report -->"


@pytest.mark.parametrize("command", ["predict", "tflite", "savedmodel", "report"])
def test_sigterm_while_writing_is_ctrl_c(
    finished: tuple[Path, Path], tmp_path: Path, command: str
) -> None:
    """SIGTERM on the way to the destination: exit 143 with one line, the destination as it
    was, and no temporary file or folder left beside it."""
    import shutil

    run, rows = tmp_path / "run", finished[1]
    shutil.copytree(finished[0], run)
    out = tmp_path / "out"
    out.mkdir()
    argv, destination = {
        "predict": (["predict", str(run), str(rows), "--output"], out / "out.csv"),
        "tflite": (["export", str(run), "--format", "tflite", "--output"], out / "m.tflite"),
        "savedmodel": (["export", str(run), "--format", "savedmodel", "--output"], out / "sm"),
        "report": (["report", str(run)], run / "report.html"),
    }[command]
    if command != "report":
        argv = [*argv, str(destination)]
    done = terminated(argv, destination.name)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "terminated (SIGTERM)", done.stderr
    assert "Traceback" not in done.stderr
    assert not destination.exists()
    left = [p.name for p in destination.parent.iterdir() if p.name.startswith(".")]
    assert left == []
