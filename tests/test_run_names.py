"""Runs started in the same second with the same --output get separate folders: proved with a
frozen clock and processes racing, not by hoping two runs land in one second."""

from __future__ import annotations

import datetime as real
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.runfolder import files as runfolder


class Frozen(real.datetime):
    @classmethod
    def now(cls, tz: real.tzinfo | None = None) -> Frozen:
        return cls(2026, 11, 25, 12, 0, 0, tzinfo=tz)


RACE = """
import datetime as real, sys, time
from pathlib import Path
from taskfit.runfolder import files

class Frozen(real.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 11, 25, 12, 0, 0, tzinfo=tz)

files.datetime = Frozen
parent, start = Path(sys.argv[1]), Path(sys.argv[2])
while not start.exists():  # both processes wait here, then make their folders at once
    time.sleep(0.001)
for _ in range(40):
    print(files.create_run_dir(parent, "same").name)
"""


def test_processes_making_run_folders_in_the_same_second_never_share_one(tmp_path: Path) -> None:
    """Two processes, one frozen clock, the same --output: 80 folders, each claimed by exactly
    one process (mkdir is the claim, so no ordering or timing makes two runs share one)."""
    start = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path / "runs"), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    start.touch()
    claimed = [racer.communicate(timeout=60)[0].split() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    names = claimed[0] + claimed[1]
    assert len(names) == 80 and len(set(names)) == 80
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(names)
    assert "same-20261125T120000Z" in names and "same-20261125T120000Z-80" in names


def test_two_trainings_in_the_same_second_each_keep_a_whole_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runfolder, "datetime", Frozen)
    spec = tiny_spec(tmp_path, "binary", epochs=1)
    runs = tmp_path / "runs"
    for seed in (1, 2):
        argv = ["train", str(spec), "--output", str(runs), "--set", f"training.seed={seed}"]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
    folders = sorted(runs.iterdir())
    assert [f.name for f in folders] == [
        "tiny-20261125T120000Z",
        "tiny-20261125T120000Z-2",
    ]
    seeds = [
        yaml.safe_load((f / "spec.resolved.yaml").read_text())["training"]["seed"] for f in folders
    ]
    assert seeds == [1, 2]
    assert all((f / "model.keras").is_file() and (f / "metrics.json").is_file() for f in folders)


def test_what_named_a_run_folder_is_read_back_from_its_name(tmp_path: Path) -> None:
    """report and the MLflow experiment name a run whose spec has no name by its spec file:
    the folder's name without the timestamp (and a same-second suffix) create_run_dir adds."""
    from taskfit.runfolder.files import create_run_dir, run_name

    first = create_run_dir(tmp_path, "house-prices")
    second = create_run_dir(tmp_path, "house-prices")
    assert run_name(first) == "house-prices"
    assert run_name(second) == "house-prices"  # "-2" when it came in the same second
    assert run_name(Path("a-b-20261204T101500Z-3")) == "a-b"
    assert run_name(Path("no-stamp")) == "no-stamp"


@pytest.mark.parametrize("name", [".hidden", "..", "-x", "n" * 300, "été"])
def test_a_name_from_a_spec_file_makes_a_plain_folder(name: str, tmp_path: Path) -> None:
    """A spec without `name` names its run after the file, whatever that file is called."""
    folder = runfolder.create_run_dir(tmp_path, name)
    assert folder.parent == tmp_path and folder.is_dir()
    assert folder.name[0] not in ".-" and len(folder.name.encode()) <= 255
