"""Every file taskfit writes goes through a temporary file of its own beside it: a unique name,
created exclusively, so nothing already there (a file, a link to somewhere else) is written
through, and nothing is left behind when writing fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskfit.runfolder import files
from taskfit.runfolder.files import write_json, write_text


def test_a_link_where_a_temporary_file_could_go_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's own file")
    run = tmp_path / "run"
    run.mkdir()
    for name in (".metrics.json.tmp", ".metrics.json.tmp.keras", ".metrics.json.x.tmp"):
        (run / name).symlink_to(outside)
    write_json(run / "metrics.json", {"accuracy": 0.9})
    assert outside.read_text() == "the user's own file"
    assert (run / "metrics.json").is_file() and not (run / "metrics.json").is_symlink()
    assert '"accuracy": 0.9' in (run / "metrics.json").read_text()
    leftovers = {p.name for p in run.iterdir()} - {"metrics.json"}
    assert leftovers == {".metrics.json.tmp", ".metrics.json.tmp.keras", ".metrics.json.x.tmp"}


def test_a_written_file_is_as_readable_as_open_would_make_it(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_text(tmp_path / "history.csv", "epoch\n1\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "history.csv").stat().st_mode & 0o777 == 0o644


def test_a_write_that_fails_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "report.html").write_text("the earlier report")

    def full_disk(source: str, destination: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(OSError):
        write_text(tmp_path / "report.html", "<html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert (tmp_path / "report.html").read_text() == "the earlier report"
