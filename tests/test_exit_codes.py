"""Each kind of failure has the exit code the README's table gives it, so a script can tell a
mistake in the spec (1) from a usage error (2), a failed worker (3) and a smoke run whose
reloaded model disagrees (4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.cli.common import handled

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def documented(page: Path) -> dict[int, str]:
    """The exit-code table of a page: code -> meaning."""
    section = page.read_text().split("## Exit codes", 1)[1]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.M)}


def test_the_readme_and_the_ci_page_give_the_same_codes() -> None:
    readme = documented(ROOT / "README.md")
    assert set(readme) == {0, 1, 2, 3, 4, 130, 143}
    assert readme == documented(ROOT / "docs" / "ci.md")


def test_an_unreadable_spec_is_a_spec_error_not_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root here, which reads any file: the refusal the OS gives others is
    raised where taskfit reads the spec."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: binary\ndata: {source: breast_cancer, label: diagnosis}\n")
    real = Path.read_text

    def refused(path: Path, *args: object, **kwargs: object) -> str:
        if path == spec:
            raise PermissionError(13, "Permission denied")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refused)
    for command in (["check", str(spec)], ["train", str(spec), "--output", str(tmp_path)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert f"{spec}: cannot be read: Permission denied" in result.stderr
        assert "Traceback" not in result.output


def test_a_failed_worker_exits_3() -> None:
    from taskfit.training.distributed import TrainingFailed

    with pytest.raises(typer.Exit) as stopped, handled():
        raise TrainingFailed("worker process 1 of 2 was stopped by signal SIGKILL")
    assert stopped.value.exit_code == 3


def test_a_smoke_run_whose_reloaded_model_disagrees_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskfit.training import run

    real = run.reload_matches

    def disagreeing(*args: object, **kwargs: object) -> dict[str, object]:
        return {**real(*args, **kwargs), "reload_matches": False}  # type: ignore[arg-type]

    monkeypatch.setattr(run, "reload_matches", disagreeing)
    spec = ROOT / "configs" / "binary.yaml"
    result = runner.invoke(app, ["train", str(spec), "--smoke", "--output", str(tmp_path)])
    assert result.exit_code == 4, result.output
    assert "smoke FAILED" in result.stderr
