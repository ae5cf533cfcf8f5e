"""The bad-input corpus: every case in tests/corpus/ through the real CLI.

A case is one small YAML file:
    spec:      the spec text (possibly broken YAML); absent when the case is the CLI call itself
    files:     file name -> text, written next to the spec (a `/` in the name makes folders)
    files_hex: file name -> hex bytes, for content that is not UTF-8
    command:   check (default) or train
    args:      extra arguments; `{dir}` is the case's folder
    exit:      the exit code: 1 for a spec or data error, 2 for a usage error
    message:   a fragment of stderr that names the key or column and says what was expected
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from taskfit.cli.app import app

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
KEYS = {"spec", "files", "files_hex", "command", "args", "exit", "message"}
runner = CliRunner()


def load_case(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict) and set(case) <= KEYS, f"{path.name}: keys {KEYS}"
    assert case.get("command", "check") in ("check", "train")
    assert case["exit"] in (1, 2) and isinstance(case["message"], str) and case["message"]
    return case


def lay_out(case: dict[str, Any], folder: Path) -> list[str]:
    """Write the case's files into `folder`; return the CLI arguments."""
    written: dict[str, bytes] = {
        name: text.encode("utf-8") for name, text in (case.get("files") or {}).items()
    }
    written |= {name: bytes.fromhex(hex_) for name, hex_ in (case.get("files_hex") or {}).items()}
    for name, content in written.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    argv = [case.get("command", "check")]
    if "spec" in case:
        spec = folder / "spec.yaml"
        spec.write_text(case["spec"] or "", encoding="utf-8")
        argv.append(str(spec))
    return argv + [str(a).replace("{dir}", str(folder)) for a in case.get("args") or []]


def test_the_corpus_has_at_least_60_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_input_is_refused_with_a_clear_message(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = load_case(path)
    argv = lay_out(case, tmp_path)
    monkeypatch.chdir(tmp_path)  # a default `runs/` would land here, where it is seen
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(app, argv)
    output = result.stdout + result.stderr
    assert result.exit_code == case["exit"], output
    assert case["message"] in result.stderr, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    if case.get("command") == "train":  # a failed run leaves no folder behind
        assert sorted(tmp_path.rglob("*")) == before


def _spec_or_data_case(path: Path) -> bool:
    """A `check` case about the spec or the data (not a usage error of the command line)."""
    case = load_case(path)
    return case.get("command", "check") == "check" and "spec" in case and case["exit"] == 1


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
