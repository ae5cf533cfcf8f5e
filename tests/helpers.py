"""Small data the tests write (imported as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    """Record the rows of every chunk taskfit.feed.stream reads from now on (one entry a chunk)."""
    from taskfit.feed import stream

    read: list[int] = []
    real = stream.chunks

    def counting(layout: stream.Layout, spans: Any = None) -> Iterator[stream.Chunk]:
        for chunk in real(layout, spans):
            read.append(len(chunk.y))
            yield chunk

    monkeypatch.setattr(stream, "chunks", counting)
    return read
