"""Small data the tests write (imported as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The command line as a subprocess runs it (the console script's main, on this interpreter).
TASKFIT = [sys.executable, "-c", "from taskfit.cli.app import main; main()"]

# For a run in a subprocess, which conftest's `small_table_additions_only_where_asked` cannot
# reach: the spec keys that turn the small-table additions off.
NO_ADDITIONS = [
    "--set",
    "model.members=1",
    "--set",
    "model.numeric_embedding=none",
    "--set",
    "training.refit=false",
]


# metrics.json's calibration figures per classifier (taskfit.training.calibration); `evaluate`
# reports ece and log_loss of the saved model, not how it was before calibration
CALIBRATION = ("ece", "ece_uncalibrated", "log_loss", "log_loss_uncalibrated")
BEFORE_CALIBRATION = "_uncalibrated"


def evaluated_names(metrics: Any) -> set[str]:
    """The names `evaluate` gives for a run's metrics.json: all but the figures from before
    calibration and the heads' loss weights."""
    return {m for m in metrics if not m.endswith((BEFORE_CALIBRATION, "_weight"))}


def uncalibrated(metrics: Any) -> set[str]:
    """The metric names, without calibration's (a head's too: `cultivar_ece`)."""
    return {m for m in metrics if not m.endswith(CALIBRATION)}


def tiny_csv(rows: int = 40, label: str = "binary") -> str:
    """A small, learnable CSV: two numeric features and a label of the asked kind."""
    lines = ["a,b,y"]
    for i in range(rows):
        a, b = (i % 7) / 7, (i % 5) / 5
        y = {"binary": int(a > 0.4), "multiclass": i % 3, "regression": round(3 * a - b, 3)}[label]
        lines.append(f"{a:.3f},{b:.3f},{y}")
    return "\n".join(lines) + "\n"


def mixed_csv(rows: int = 60) -> str:
    """A spreadsheet-like CSV: an id column, a string and an integer-coded categorical, gaps in a
    numeric and a categorical column, a yes/no label that depends on them, and a row without a
    label."""
    cities = ["paris", "oslo", "", "rome"]
    lines = ["id,age,city,plan,income,bought"]
    for i in range(rows):
        age, city, plan = 20 + (i * 7) % 45, cities[i % 4], 1 + i % 3
        income = "" if i % 6 == 0 else str(1000 + (i * 37) % 900)
        bought = "yes" if (age > 40) != (city == "oslo") else "no"
        lines.append(f"{1000 + i},{age},{city},{plan},{income},{'' if i == 5 else bought}")
    return "\n".join(lines) + "\n"


def history_rows(run_dir: Path) -> list[dict[str, str]]:
    """A run's history.csv, a dict of its cells per epoch, as written."""
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


def wait_for_epochs(runs: Path, n: int, proc: subprocess.Popen[str], timeout: float = 300) -> Path:
    """Poll a training subprocess's output folder until its run has logged `n` epochs in
    history.csv (written whole after each epoch); returns the run folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before reaching the epoch"
        for history in runs.glob("*/history.csv"):
            with history.open() as f:
                if sum(1 for _ in f) - 1 >= n:
                    return history.parent
        time.sleep(0.05)
    raise AssertionError(f"no run in {runs} logged {n} epochs within {timeout} s")


def tiny_spec(folder: Path, task: str, epochs: int, batch_size: int = 16, extra: str = "") -> Path:
    """data.csv (60 rows of tiny_csv) and spec.yaml (one hidden layer of 8) in `folder`; `extra`
    adds top-level spec lines."""
    (folder / "data.csv").write_text(tiny_csv(60, task), encoding="utf-8")
    spec = folder / "spec.yaml"
    spec.write_text(
        f"name: tiny\ntask: {task}\ndata: {{source: data.csv, label: y}}\n"
        f"model: {{layers: [{{units: 8}}]}}\ntraining: {{epochs: {epochs}, batch_size: {batch_size}}}\n"
        + extra,
        encoding="utf-8",
    )
    return spec


def count_streamed_rows(monkeypatch: Any) -> list[int]:
    """Record the rows of every block taskfit.feed.stream reads from now on (one entry a block)."""
    from taskfit.feed.chunk import Block
    from taskfit.feed.stream import StreamSource

    read: list[int] = []
    real = StreamSource.blocks

    def counting(self: StreamSource, spans: Any = None) -> Iterator[Block]:
        for block in real(self, spans):
            read.append(len(block.rows))
            yield block

    monkeypatch.setattr(StreamSource, "blocks", counting)
    return read


def chunk_of(x: dict[str, Any], y: dict[str, Any], numeric: tuple[str, ...]) -> Any:
    """Columns by name (each (rows, 1)) and targets -> a taskfit.feed.chunk.Chunk."""
    import numpy as np

    from taskfit.feed.chunk import Chunk

    rows = len(next(iter(y.values())))
    matrix = np.concatenate([x[c] for c in numeric], axis=1) if numeric else np.empty((rows, 0))
    categorical = {c: v for c, v in x.items() if c not in numeric}
    return Chunk(matrix.astype(np.float32), categorical, y)


def table_inputs(table: Any, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> Any:
    """Every row of a data.csvtable.Table, each column by name as the saved model takes it."""
    from taskfit.feed.cells import Columns
    from taskfit.feed.memory import encode_table

    return encode_table(table, Columns(numeric, categorical, ())).rows.named(numeric)
