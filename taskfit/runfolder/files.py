"""The run folder: runs/<name>-<UTC timestamp>/, never shared, every file written atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from taskfit.config.readable import check_regular, file_kind
from taskfit.errors import DataError, TaskfitError, shown
from taskfit.runfolder.layout import FORMAT, READS, STATUSES, TEXT_COLUMN, RunFolder


def make_output_folder(folder: Path) -> bool:
    """The folder --output names (and its parents), made if needed; True when this made it."""
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskfitError(
            f"--output {folder}: cannot create the folder: {exc.strerror}. Give --output a "
            "folder you can write to"
        ) from None
    return not existed


STAMP = "%Y%m%dT%H%M%SZ"  # a run folder's UTC start, after its name
_STAMPED = re.compile(r"-\d{8}T\d{6}Z(-\d+)?$")  # STAMP, and the same-second suffix


def run_name(folder: Path) -> str:
    """What named a run folder: its name without the timestamp create_run_dir added."""
    return _STAMPED.sub("", folder.name)


def create_run_dir(parent: Path, name: str) -> Path:
    """A new folder, never a shared one: a second run in the same second gets -2, -3 ... Named
    after a spec file, it loses a leading . or - (a hidden folder, an option to a shell) and
    what would pass a file system's 255 bytes (spec.keys.NAME bounds a spec's own name)."""
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).lstrip(".-")[:210] or "run"
    stem = f"{plain}-{datetime.now(UTC):{STAMP}}"
    make_output_folder(parent)
    for n in range(1, 1000):
        path = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise TaskfitError(
                f"--output {parent}: cannot write there: {exc.strerror}. Give --output a "
                "folder you can write to"
            ) from None
    raise TaskfitError(f"--output {parent}: too many runs named {stem}")


def check_output(
    path: Path, option: str, force: bool, reads: Sequence[Path] = (), own: Path | None = None
) -> None:
    """Before anything is computed: `option` (a file the user names) may replace an existing
    file only with --force, and never one taskfit reads: one of `reads` (the input CSV), or a
    file of a run folder (model.keras, metrics.json, ...). `own`: a folder of taskfit's own
    output inside a run folder (its export/), where a file may go."""
    if path.is_dir():
        raise TaskfitError(f"{option} {path}: is a folder; give a path to a file")
    if path.exists() and not path.is_file():  # a pipe or a device is written through, not replaced
        raise TaskfitError(
            f"{option} {path}: is {file_kind(path.stat().st_mode)}, not a regular file; taskfit "
            "writes its output to a file it can replace whole. Give the path of a file"
        )
    if path.exists():
        for given in reads:
            if given.exists() and os.path.samefile(path, given):
                raise TaskfitError(
                    f"{option} {path}: is the input {given}, which this command reads; "
                    "write the output to another file"
                )
    inside_own = own is not None and own.resolve() in path.resolve().parents
    run = next((p for p in path.resolve().parents if RunFolder(p).status.is_file()), None)
    if run is not None and not inside_own:
        raise TaskfitError(
            f"{option} {path}: is in the run folder {run}, whose files taskfit reads and "
            "writes itself; write the output outside it"
        )
    if (path.exists() or path.is_symlink()) and not force:
        raise TaskfitError(f"{option} {path}: exists; give --force to replace it, or another path")


def own_folder(folder: Path, run_dir: Path) -> Path:
    """A folder of taskfit's inside the run folder `run_dir` (plots/, backup/), made if missing.
    A link or a file on the way is refused (a DataError naming it): files written through a
    link would land wherever it points, outside the run folder."""
    parts = folder.relative_to(run_dir).parts
    for depth in range(1, len(parts) + 1):
        part = run_dir.joinpath(*parts[:depth])
        if not (part.is_symlink() or part.exists()):
            part.mkdir()
        elif part.is_symlink() or not part.is_dir():
            raise DataError(
                f"{part}: is {file_kind(part.lstat().st_mode)}, not the folder taskfit writes "
                "there; move it away and run the command again"
            )
    return folder


def write_text(path: Path, text: str) -> None:
    """Temporary file + rename: a crash never leaves a truncated file behind."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    with _staged(path, ".tmp") as tmp, open(tmp, "wb") as f:
        f.write(data)


def save_text(path: Path, text: str, option: str) -> None:
    """write_text for a path the user named with `option`: failing to write is their error."""
    try:
        write_text(path, text)
    except OSError as exc:
        raise TaskfitError(f"{option} {path}: cannot write there: {exc.strerror}") from None


def save_model(model: Any, path: Path) -> None:
    """A Keras model saved atomically (Keras wants the .keras suffix on the temporary file)."""
    with _staged(path, ".keras") as tmp:
        model.save(tmp)


@contextlib.contextmanager
def _staged(path: Path, suffix: str) -> Iterator[Path]:
    """A new file of a unique name beside `path` to write, renamed over `path` when the block
    ends, removed if it fails. Created exclusively (O_EXCL), so a file or a link already there
    is never written through; mode 0666 less the umask, as open() makes a file. A pipe, a
    device or a folder in `path`'s place is not replaced (a DataError naming it): taskfit did
    not put it there."""
    if path.exists() and not path.is_file():
        raise DataError(
            f"{path}: is {file_kind(path.stat().st_mode)}, not the file taskfit writes there; "
            "move it away and run the command again"
        )
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # another name, then
            continue
        except OSError as exc:  # the file meant, not its temporary name
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
    else:
        raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.strerror:  # the file meant, not its temporary name
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_status(run_dir: Path, status: str, reason: str = "") -> None:
    """status.json: running, completed, interrupted or failed, with the reason when there is one."""
    doc: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "updated": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "format": FORMAT,
    }
    if status == "running":  # so that a folder whose process is gone can be told apart
        doc["process"] = {"pid": os.getpid(), "host": socket.gethostname()}
    write_json(RunFolder(run_dir).status, doc)


def training_process(run_dir: Path) -> tuple[int, bool] | None:
    """For a folder whose status.json says running: (its process id, whether that process is
    still there). None when it was recorded on another machine or not at all (older taskfit).
    A process id the system has given to a new process since reads as still there."""
    process = read_record(RunFolder(run_dir).status).get("process")
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return None
    pid = process.get("pid")
    if pid is None:
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:  # pid_t
        raise DataError(
            f"{RunFolder(run_dir).status}: names process {shown(pid)}, which is no process id; it "
            "is damaged or not what taskfit wrote"
        )
    try:
        os.kill(pid, 0)  # signal 0: only whether it exists
    except ProcessLookupError:
        return pid, False
    except PermissionError:  # someone else's process
        return pid, True
    return pid, True


def read_status(run_dir: Path) -> str:
    """The status a run folder records ("" when it has none, or an unreadable one)."""
    return _status_field(run_dir, "status")


def checked_status(run_dir: Path) -> str:
    """status.json's status, "" when the folder has none; a DataError naming the file when it
    is damaged or names no status taskfit writes (a report or comparison would misstate it)."""
    path = RunFolder(run_dir).status
    if not (path.exists() or path.is_symlink()):
        return ""
    status = read_object(path).get("status")
    if status not in STATUSES:
        raise DataError(
            f"{path}: says status {shown(status)}, none of {', '.join(STATUSES)}; it is damaged or "
            "not what taskfit wrote"
        )
    return str(status)


def read_reason(run_dir: Path) -> str:
    return _status_field(run_dir, "reason")


def _status_field(run_dir: Path, name: str) -> str:
    return str(read_record(RunFolder(run_dir).status).get(name, ""))


def read_format(run_dir: Path) -> int:
    """The format status.json records; 1 for a folder written before formats were."""
    found = read_record(RunFolder(run_dir).status).get("format", 1)
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise DataError(
            f"{RunFolder(run_dir).status}: says format {shown(found)}, which is no run folder "
            "format (a whole number from 1); it is damaged or not what taskfit wrote"
        )
    return found


def check_format(run_dir: Path) -> None:
    """A folder from a newer taskfit is refused by name, not misread."""
    found = read_format(run_dir)
    if found not in READS:
        raise TaskfitError(
            f"{run_dir}: run folder format {found}, written by a newer taskfit; this "
            f"taskfit reads formats {', '.join(map(str, READS))}. Upgrade taskfit to read it"
        )


def write_json(path: Path, doc: Any) -> None:
    write_text(path, json.dumps(doc, indent=2) + "\n")


def write_weights(path: Path, weights: Sequence[Any]) -> None:
    """A model's weight arrays, in order, as one .npz file written whole."""
    import numpy as np

    buffer = io.BytesIO()
    arrays: dict[str, Any] = {f"w{i}": np.asarray(w) for i, w in enumerate(weights)}
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def read_weights(path: Path) -> list[Any]:
    """What write_weights wrote, in the same order; a DataError naming the file when it is cut
    short, missing or not such a file (a checkpoint killed mid-write, a foreign file)."""
    import zipfile

    import numpy as np

    try:
        check_regular(path, str(path), DataError)
        with np.load(path, allow_pickle=False) as saved:
            return [saved[f"w{i}"] for i in range(len(saved.files))]
    except FileNotFoundError:
        problem = "is missing"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror})"
    except (ValueError, EOFError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        # np.load: EOFError on an empty file, BadZipFile on a cut one, AttributeError on a
        # .npy (no .files), KeyError on foreign array names, ValueError on a pickle
        problem = f"is not the weights file taskfit writes ({type(exc).__name__})"
    raise DataError(
        f"{path}: {problem}; it is damaged or not what taskfit wrote. Train the run afresh "
        "(without --resume)"
    )


def count_epochs(run_dir: Path) -> int | None:
    """The epochs history.csv holds (a row each); None when the run has none."""
    history = RunFolder(run_dir).history
    if not history.is_file():
        return None
    with history.open("rb") as f:  # counting lines needs no decoding (a damaged file counts too)
        return max(sum(1 for _ in f) - 1, 0)


RECORD_BYTES = 16 << 20  # a run's JSON files are kilobytes; a bound before reading one whole


def read_object(path: Path) -> dict[str, Any]:
    """A JSON object file a run folder must hold whole (metrics.json, status.json): a DataError
    naming the file and what is wrong with it otherwise."""
    fix = "it is damaged or not what taskfit wrote; train the run again"
    try:
        check_regular(path, str(path), DataError, RECORD_BYTES, "a run folder's JSON file")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: is missing; {fix}") from None
    except (OSError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else _not_json(exc)
        raise DataError(f"{path}: cannot be read ({reason}); {fix}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: holds a JSON {type(doc).__name__}, not an object; {fix}")
    return doc


def _not_json(exc: Exception) -> str:
    """Why a JSON file could not be parsed; Python's parser recurses once per level of
    nesting, so a file of thousands of `[` is a RecursionError."""
    return "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"


def read_metrics(path: Path) -> dict[str, float]:
    """metrics.json: metric name -> number, checked (read_object's errors, and a value that is
    no number)."""
    doc = read_object(path)
    for name, value in doc.items():
        if not _number(value) or abs(value) > FLOAT_MAX:  # a 400-digit int is no float
            raise DataError(
                f"{path}: {name!r} is {shown(value)}, not a number; it is damaged or not what "
                "taskfit wrote; train the run again"
            )
    return {name: float(value) for name, value in doc.items()}


def read_record(path: Path) -> dict[str, Any]:
    """A JSON object the run wrote (status.json, run.json, metrics.json, the checkpoint's);
    empty when it is not there or not an object (not JSON, or a damaged or foreign file), so
    what reads it goes on without it, as without the file."""
    try:
        check_regular(path, str(path), DataError, RECORD_BYTES, "a run folder's JSON file")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, DataError):  # a pipe is not waited on
        return {}
    return doc if isinstance(doc, dict) else {}


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


FLOAT_MAX = sys.float_info.max


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# run.json's fields that commands read, and what each must be (training/outputs.run_facts)
FACT_CHECKS: dict[str, tuple[str, Any]] = {
    "epochs": ("a count", _count),
    "best_epoch": ("a count or null", lambda v: v is None or _count(v)),
    "seconds": ("a number", _number),
    "fit_seconds": ("a number", _number),
    "rows": (  # the parts of feed.chunk.PARTS
        "counts of train, validation and test rows",
        lambda v: (
            isinstance(v, dict)
            and {"train", "validation", "test"} <= v.keys()
            and all(map(_count, v.values()))
        ),
    ),
    "folds": ("a count", _count),
    "processes": ("a count", _count),
    "metrics_on": ("text or null", lambda v: v is None or isinstance(v, str)),  # null: no test rows
    "memorisable": (
        "column -> share of rows",
        lambda v: isinstance(v, dict) and all(map(_number, v.values())),
    ),
    "identifiers": ("a list of column names", _names),
    "targets": (
        "head -> [mean, scale]",
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(x, list) and len(x) == 2 and all(map(_number, x)) for x in v.values()
            )
        ),
    ),
    "date_formats": (
        "column -> {format, padded}",
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(x, dict)
                and isinstance(x.get("format"), str)
                and isinstance(x.get("padded"), list)
                and all(isinstance(p, bool) for p in x["padded"])
                and x["padded"]
                for x in v.values()
            )
        ),
    ),
    "versions": (
        "package -> version",
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    ),
}


def read_facts(run_dir: Path) -> dict[str, Any]:
    """run.json as read_record reads it, its fields checked: one of the wrong kind (a text where
    a count goes) is a DataError naming the file and the field, not a traceback later."""
    path = RunFolder(run_dir).facts
    facts = read_record(path)
    for name, (kind, fits) in FACT_CHECKS.items():
        if name in facts and not fits(facts[name]):
            raise DataError(
                f"{path}: its {name} is {shown(facts[name])}, not {kind}; it is damaged or not "
                "what taskfit wrote"
            )
    return facts


def write_yaml(path: Path, doc: Any, header: str = "") -> None:
    write_text(path, header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def write_history(path: Path, history: Mapping[str, Sequence[float | str]]) -> None:
    """One row per epoch: epoch, then every logged quantity under Keras's names (and the loss
    in force, as text, when it changes during training)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(history)
    writer.writerow(["epoch", *names])
    epochs = len(next(iter(history.values()), []))
    for i in range(epochs):
        writer.writerow([i + 1, *(_cell(history[n][i]) for n in names)])
    write_text(path, out.getvalue())


def _cell(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.6g}"


def read_history(path: Path) -> dict[str, list[float | str]]:
    """history.csv back into columns (numbers as floats; the active-loss columns as text); a
    DataError naming the file when it is not the CSV taskfit writes."""
    if not path.is_file():
        return {}
    fix = "it is damaged or not what taskfit wrote; train the run again"
    try:
        check_regular(path, str(path), DataError, RECORD_BYTES, "a run's history")
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        if isinstance(exc, OSError):
            said = exc.strerror
        elif isinstance(exc, csv.Error):  # a field beyond csv's 128 KiB limit, a stray quote
            said = f"not the CSV taskfit writes: {exc}"
        else:
            said = "not UTF-8 text"
        raise DataError(f"{path}: cannot be read ({said}); {fix}") from None
    columns: dict[str, list[float | str]] = {}
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # DictReader's marks of a ragged row
            raise DataError(f"{path}:{number}: has not one cell per column; {fix}")
        for name, cell in row.items():
            if name == "epoch":
                continue
            try:
                value: float | str = float(cell)
            except ValueError:
                if not name.endswith(TEXT_COLUMN):
                    raise DataError(
                        f"{path}:{number}: {name} is {shown(cell)}, not a number; {fix}"
                    ) from None
                value = cell
            columns.setdefault(name, []).append(value)
    return columns
