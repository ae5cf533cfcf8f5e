"""Only regular files are read: a named pipe or a device as the spec or the CSV is refused at
once (it would block, or never end), and a spec has a size bound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskfit.cli.app import app

runner = CliRunner()
TASKFIT = str(Path(sys.executable).with_name("taskfit"))
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
@pytest.mark.parametrize("which", ["spec", "csv"])
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path, which: str) -> None:
    pipe = tmp_path / ("spec.yaml" if which == "spec" else "data.csv")
    os.mkfifo(pipe)
    spec = pipe
    if which == "csv":
        spec = tmp_path / "real.yaml"
        spec.write_text("task: binary\ndata: {source: data.csv, label: y}\n")
    train = ["train", str(spec), "--output", str(tmp_path / "runs")]
    for argv in (["check", str(spec)], train):
        # reading the pipe would block until killed
        done = subprocess.run([TASKFIT, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert f"{pipe}: is a named pipe (FIFO), not a regular file" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_refused_as_the_spec_and_as_the_data(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: /dev/zero, label: y}\n")
    for argv in (["check", "/dev/zero"], ["check", str(spec)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1
        assert "/dev/zero: is a character device, not a regular file" in result.stderr


def test_a_spec_of_megabytes_is_refused_unread(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\n# " + "x" * (2 << 20) + "\n")
    result = runner.invoke(app, ["check", str(spec)])
    assert result.exit_code == 1
    assert "is 2.0 MiB; a spec is at most 1 MiB" in result.stderr
