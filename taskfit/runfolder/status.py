"""How a run's end reaches status.json, however it ends: failed with the reason, interrupted
(with what was saved by then), or completed (written by the run itself)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taskfit.errors import TrainingError
from taskfit.runfolder.files import write_status


@dataclass
class Saved:
    """Set once model.keras and metrics.json are written: the run's result exists."""

    done: bool = False


@contextlib.contextmanager
def status_follows(run_dir: Path) -> Iterator[Saved]:
    """However the block ends, status.json says so: failed (with the reason), or interrupted (a
    second Ctrl-C, after or before the result was saved). A normal end writes its own status."""
    saved = Saved()
    try:
        yield saved
    except TrainingError as exc:
        write_status(run_dir, "failed", str(exc))
        raise
    except KeyboardInterrupt:
        cut = "after saving the model and metrics" if saved.done else "before saving a model"
        write_status(run_dir, "interrupted", f"interrupted twice: stopped {cut}")
        raise
    except BaseException as exc:
        write_status(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        raise
