from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file (a spec or a CSV) into the test's folder and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def tiny_csv(rows: int = 40, label: str = "binary") -> str:
    """A small, learnable CSV: two numeric features and a label of the asked kind."""
    lines = ["a,b,y"]
    for i in range(rows):
        a, b = (i % 7) / 7, (i % 5) / 5
        y = {"binary": int(a > 0.4), "multiclass": i % 3, "regression": round(3 * a - b, 3)}[label]
        lines.append(f"{a:.3f},{b:.3f},{y}")
    return "\n".join(lines) + "\n"
