"""`taskfit report RUN_DIR`: the terminal summary and a self-contained report.html."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import tiny_spec
from typer.testing import CliRunner

from taskfit.cli.app import app
from taskfit.training.run import train

runner = CliRunner()
Write = Callable[[str, str], Path]
WINE = Path(__file__).parents[1] / "taskfit" / "data" / "datasets" / "wine.csv"


@pytest.fixture
def binary_run(tmp_path: Path) -> Path:
    spec = tiny_spec(tmp_path, "binary", epochs=3)
    return train(spec, None, tmp_path / "runs", verbose=0).run_dir


@pytest.mark.plots
def test_report_summarises_the_run_and_writes_one_html_file(binary_run: Path) -> None:
    result = runner.invoke(app, ["report", str(binary_run)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    facts = json.loads((binary_run / "run.json").read_text())
    assert facts["epochs"] == 3 and facts["rows"]["train"] > 0 and facts["seconds"] > 0
    for expected in (
        "completed",
        "3 of 3",
        f"{facts['rows']['train']} train",
        "Dense(1, sigmoid)",
        "binary_crossentropy",
        "adam(learning_rate=0.001",
    ):
        assert expected in out, expected
    metrics = json.loads((binary_run / "metrics.json").read_text())
    for name, value in metrics.items():
        assert re.search(rf"{name}\s+│\s+{re.escape(f'{value:.4g}')}", out), name
    page = (binary_run / "report.html").read_text()
    assert out.strip().endswith(f"report: {binary_run / 'report.html'}")
    # self-contained: every plot inside the page, byte for byte, and nothing fetched from outside
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    pngs = sorted((binary_run / "plots").rglob("*.png"))
    assert len(images) == len(pngs) == 4
    assert {base64.b64decode(i) for i in images} == {p.read_bytes() for p in pngs}
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<td>binary_crossentropy</td>" in page and f"{metrics['accuracy']:.4g}" in page


@pytest.mark.plots
def test_report_of_a_run_with_heads_has_the_head_table(write: Write, tmp_path: Path) -> None:
    spec = write(
        "spec.yaml",
        f"data: {{source: {WINE}}}\n"
        "heads:\n  cultivar: {task: multiclass, label: cultivar}\n"
        "  alcohol: {task: regression, label: alcohol}\n"
        "training: {epochs: 2}\n",
    )
    run = train(spec, None, tmp_path / "runs", verbose=0).run_dir
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert re.search(r"cultivar\s+│\s+multiclass\s+│\s+Dense\(3,", result.stdout)
    assert re.search(r"alcohol\s+│\s+regression\s+│\s+Dense\(1\)", result.stdout)
    page = (run / "report.html").read_text()
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", page)
    assert captions[0] == "plots/learning_curves.png"  # the whole run first, then each head
    assert captions[1:4] == [
        "plots/alcohol/learning_curves.png",
        "plots/alcohol/predicted_vs_actual.png",
        "plots/alcohol/residuals.png",
    ]


def test_report_on_a_folder_that_is_no_run_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert f"error: {tmp_path}: not a run folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_report_and_compare_load_no_tensorflow_or_matplotlib(binary_run: Path) -> None:
    code = (
        "import sys\nfrom taskfit.cli.app import app\n"
        f"try:\n    app(['report', {str(binary_run)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e\n"
        f"try:\n    app(['compare', {str(binary_run)!r}, {str(binary_run)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr


def test_report_describes_a_run_that_never_finished(binary_run: Path) -> None:
    """A killed run has no model, metrics or run.json: report still says what it was and how
    far it got."""
    for name in ("model.keras", "metrics.json", "run.json"):
        (binary_run / name).unlink()
    shutil.rmtree(binary_run / "plots", ignore_errors=True)
    (binary_run / "status.json").write_text('{"status": "running", "reason": ""}')
    result = runner.invoke(app, ["report", str(binary_run)])
    assert result.exit_code == 0, result.output
    assert re.search(r"status\s+│\s+running", result.stdout)
    assert re.search(r"epochs\s+│\s+3 of 3 finished", result.stdout)
    assert "test metrics" not in result.stdout
    page = (binary_run / "report.html").read_text()
    assert "<h2>test metrics</h2>" not in page  # no metrics table, no pretend values
    assert "3 of 3 finished" in page
    assert "This run has no plots: a --smoke run, or one that did not finish." in page
