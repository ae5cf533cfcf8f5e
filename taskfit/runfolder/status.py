"""How a run's end reaches status.json, however it ends: failed with the reason, interrupted
(with what was saved by then), or completed (written by the run itself)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.errors import NotResumable, Terminated, TrainingError, interruption
from taskfit.runfolder.files import write_status


@dataclass
class Saved:
    """Set once model.keras and metrics.json are written: the run's result exists."""

    done: bool = False


@contextlib.contextmanager
def status_follows(run_dir: Path, before: Mapping[str, Any] | None = None) -> Iterator[Saved]:
    """However the block ends, status.json says so: failed (with the reason), or interrupted (a
    second Ctrl-C or a SIGTERM outside fit, after or before the result was saved). A normal end
    writes its own status. `before`: the status a resumed run had, which it keeps when its
    saved state cannot be resumed (nothing was trained)."""
    saved = Saved()
    try:
        yield saved
    except NotResumable:
        if before is not None:
            write_status(run_dir, str(before.get("status", "")), str(before.get("reason", "")))
        raise
    except TrainingError as exc:
        write_status(run_dir, "failed", str(exc))
        raise
    except BaseException as exc:
        signalled = interruption(exc)  # even where some code wrapped its exception
        if signalled is not None:
            by_signal = isinstance(signalled, Terminated)
            cut = "after saving the model and metrics" if saved.done else "before saving a model"
            how = "SIGTERM" if by_signal else "Ctrl-C"  # outside fit: the first one stops
            write_status(run_dir, "interrupted", f"{how}: stopped {cut}")
            if signalled is not exc:
                raise signalled from None
            raise
        with contextlib.suppress(OSError):  # the disk that failed may refuse this too
            write_status(run_dir, "failed", failure(exc))
        raise


def failure(exc: BaseException) -> str:
    """What status.json says of an error: a file the system refused, by its name and the
    system's reason ("No space left on device"); any other by its type and message."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"
