"""The bad-input corpus: every case in tests/corpus/ through the real CLI.

A case is one small YAML file:
    spec:      the spec text (possibly broken YAML); absent when the case is the CLI call itself
    files:     file name -> text, written next to the spec (a `/` in the name makes folders)
    files_hex: file name -> hex bytes, for content that is not UTF-8
    command:   check (default), train or any other command (predict, export, report ...)
    run:       true: a finished run (one epoch on tiny data) is copied to `{dir}/run` first, and
               `{dir}/rows.csv` holds rows for it; `files` may then damage its files
    remove:    paths of the run to delete before the files are written (a run's file gone missing)
    fifos:     paths to make as named pipes (nothing writes to them: reading one would block)
    links:     path -> where the symbolic link points
    args:      extra arguments; `{dir}` is the case's folder
    exit:      the exit code README.md documents (1 spec or data, 2 usage, 3 training, 4 smoke)
    message:   a fragment of stderr that names the key or column and says what was expected

Every case leaves its folder as it found it: no file added, removed or changed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import tiny_csv, tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
KEYS = {"spec", "files", "files_hex", "command", "run", "remove", "fifos", "links", "args"}
KEYS |= {"exit", "message"}
runner = CliRunner()


def load_case(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict) and set(case) <= KEYS, f"{path.name}: keys {KEYS}"
    assert case["exit"] in (1, 2, 3, 4) and isinstance(case["message"], str) and case["message"]
    return case


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run for the cases that damage a run folder (trained once per module)."""
    from taskfit.training.run import train

    folder = tmp_path_factory.mktemp("finished")
    spec = tiny_spec(folder, "binary", epochs=1)
    return train(spec, {"model.members": 1}, folder / "runs", verbose=0).run_dir


def lay_out(case: dict[str, Any], folder: Path, run: Path | None = None) -> list[str]:
    """Write the case's files into `folder`; return the CLI arguments."""
    if run is not None:
        shutil.copytree(run, folder / "run")
        (folder / "rows.csv").write_text(tiny_csv(5, "binary"), encoding="utf-8")
    for name in case.get("remove") or []:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    written: dict[str, bytes] = {
        name: text.encode("utf-8") for name, text in (case.get("files") or {}).items()
    }
    written |= {name: bytes.fromhex(hex_) for name, hex_ in (case.get("files_hex") or {}).items()}
    for name, content in written.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    for name in case.get("fifos") or []:
        os.mkfifo(folder / name)
    for name, points_to in (case.get("links") or {}).items():
        (folder / name).symlink_to(points_to)
    argv = [case.get("command", "check")]
    if "spec" in case:
        spec = folder / "spec.yaml"
        spec.write_text(case["spec"] or "", encoding="utf-8")
        argv.append(str(spec))
    return argv + [str(a).replace("{dir}", str(folder)) for a in case.get("args") or []]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder`, with the bytes of each regular file (a pipe is not read)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(folder.rglob("*"))
    }


def test_the_corpus_has_at_least_60_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_input_is_refused_with_a_clear_message(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    case = load_case(path)
    run = request.getfixturevalue("finished_run") if case.get("run") else None
    argv = lay_out(case, tmp_path, run)
    monkeypatch.chdir(tmp_path)  # a default `runs/` would land here, where it is seen
    before = snapshot(tmp_path)
    result = runner.invoke(app, argv)
    output = result.stdout + result.stderr
    assert result.exit_code == case["exit"], output
    assert case["message"] in result.stderr, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert snapshot(tmp_path) == before  # nothing half-written, nothing of the user's replaced


def _spec_or_data_case(path: Path) -> bool:
    """A `check` case about the spec or the data (not a usage error of the command line)."""
    case = load_case(path)
    spec_or_data = case.get("command", "check") == "check" and "spec" in case
    return spec_or_data and case["exit"] == 1 and not case.get("fifos")


CHECKED = [p for p in CASES if _spec_or_data_case(p)]


@pytest.mark.parametrize("path", CHECKED, ids=[p.stem for p in CHECKED])
def test_train_refuses_exactly_what_check_refuses(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` is complete: what `train` refuses in the spec or the data, `check` refused first,
    with the same message (and `train` stops before it writes anything)."""
    case = load_case(path)
    argv = lay_out(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    checked = runner.invoke(app, argv)
    trained = runner.invoke(app, ["train", *argv[1:], "--output", str(tmp_path / "runs")])
    assert (trained.exit_code, trained.stderr) == (checked.exit_code, checked.stderr)
    assert not (tmp_path / "runs").exists()
