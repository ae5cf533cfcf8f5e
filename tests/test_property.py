"""Random specs and random CSV files through `taskfit check`, and damaged run folders through
`report`, `compare`, `predict` and `train --resume`: refused or accepted, never a crash.

Whatever the input, `check` exits 0 or 1, raises nothing but SystemExit, prints no traceback,
and on exit 1 prints nothing on stdout and starts stderr with `error:`; a command on a damaged
run folder prints one `error:` line and leaves the folder as it was. Hypothesis runs each test
body many times, so every run writes its files into a fresh temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import tiny_csv, tiny_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from taskfit.cli.app import app

runner = CliRunner()
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing left in the work tree; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Names that get validation past the first check: the spec's own keys and values from the table.
KEYS = [
    *("task", "data", "model", "training", "loss", "optimizer", "schedule", "heads", "metrics"),
    *("loss_weighting", "name", "strict", "source", "label", "features", "ignore", "numeric"),
    *("categorical", "positive", "classes", "test_fraction", "validation_fraction", "layers"),
    *("output", "head_layers", "units", "activation", "dropout", "epochs", "batch_size", "seed"),
    *("early_stopping", "patience", "monitor", "min_delta", "restore_best_weights"),
    *("class_weight", "loss_weight", "blend", "until_epoch", "weight", "learning_rate"),
    *("momentum", "delta", "decay_steps", "decay_rate", "initial_learning_rate", "boundaries"),
    *("values", "temperature"),
]
WORDS = [
    *("binary", "multiclass", "regression", "auto", "adam", "sgd", "rmsprop", "adamw"),
    *("exponential_decay", "piecewise_constant", "cosine_decay", "mse", "mae", "huber"),
    *("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"),
    *("binary_focal_crossentropy", "categorical_focal_crossentropy", "relu", "softmax"),
    *("sigmoid", "linear", "balanced", "fixed", "uncertainty", "dwa", "accuracy", "auc"),
    *("val_loss", "loss", "data.csv", "breast_cancer", "wine", "a", "b", "y", "z", "yes"),
]
COLUMNS = ["a", "b", "y", "z", "label", "", " y", "a b", "ü"]
# Bundled names, and paths that are no file: a folder, a user without a home, a NUL, too long.
SOURCES = ["wine", "breast_cancer", "", ".", "~nobody-here/x.csv", "a\0b.csv", "x" * 300]
LOSSES = {
    "binary": ["auto", "binary_crossentropy", "binary_focal_crossentropy"],
    "multiclass": ["auto", "sparse_categorical_crossentropy", "categorical_crossentropy"],
    "regression": ["auto", "mse", "mae", "huber"],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6), st.integers(-2, 3), scalars)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def section(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A mapping with the spec's keys, each value random (mostly of the right kind)."""
    return st.fixed_dictionaries(required, optional=optional)


layer = section(
    {"units": st.one_of(st.integers(-1, 8), scalars)},
    {"activation": st.one_of(st.sampled_from(WORDS), scalars), "dropout": scalars},
)
layers = st.one_of(st.lists(layer, max_size=3), documents)
named = st.one_of(
    st.sampled_from(WORDS),
    st.builds(
        lambda n, p: {"name": n, **p},
        st.sampled_from(WORDS),
        st.dictionaries(keys, scalars, max_size=3),
    ),
    documents,
)
loss = st.one_of(
    named,
    st.builds(
        lambda items: {"blend": items},
        st.lists(
            st.dictionaries(st.sampled_from(["loss", "weight", "delta"]), scalars), max_size=3
        ),
    ),
    st.builds(
        lambda items: {"schedule": items},
        st.lists(
            st.dictionaries(st.sampled_from(["loss", "until_epoch", "blend", "delta"]), scalars),
            max_size=3,
        ),
    ),
)
label = st.one_of(st.sampled_from(COLUMNS), st.lists(st.sampled_from(COLUMNS), max_size=3), scalars)
data_section = section(
    {"source": st.one_of(st.just("data.csv"), st.sampled_from(SOURCES), scalars)},
    {
        "label": label,
        "features": st.one_of(st.lists(st.sampled_from(COLUMNS), max_size=3), scalars),
        "ignore": st.lists(st.sampled_from(COLUMNS), max_size=2),
        "numeric": st.lists(st.sampled_from(COLUMNS), max_size=2),
        "categorical": st.lists(st.sampled_from(COLUMNS), max_size=2),
        "positive": scalars,
        "classes": st.one_of(st.lists(scalars, max_size=4), scalars),
        "test_fraction": scalars,
        "validation_fraction": scalars,
    },
)
head = section(
    {"task": st.sampled_from(["binary", "multiclass", "regression"]), "label": label},
    {
        "loss": loss,
        "loss_weight": scalars,
        "metrics": documents,
        "positive": scalars,
        "layers": layers,
    },
)
specs = section(
    {"data": data_section},
    {
        "task": st.one_of(st.sampled_from(["binary", "multiclass", "regression"]), scalars),
        "heads": st.one_of(
            st.dictionaries(st.sampled_from(["h1", "h2", "3x"]), head, max_size=3), documents
        ),
        "loss_weighting": named,
        "model": section(
            {},
            {
                "layers": layers,
                "output": st.dictionaries(st.sampled_from(["units", "activation"]), scalars),
                "head_layers": layers,
            },
        ),
        "training": section(
            {},
            {
                "epochs": scalars,
                "batch_size": scalars,
                "seed": scalars,
                "early_stopping": st.one_of(
                    st.dictionaries(st.sampled_from(["patience", "monitor", "min_delta"]), scalars),
                    scalars,
                ),
                "class_weight": st.one_of(st.dictionaries(scalars, scalars, max_size=2), scalars),
            },
        ),
        "loss": loss,
        "optimizer": named,
        "schedule": named,
        "metrics": documents,
        "strict": scalars,
        "name": scalars,
    },
)


def dumped(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@st.composite
def spliced(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """YAML text with a random piece cut out or pasted in: broken syntax in real places."""
    text = draw(texts)
    at = draw(st.integers(0, len(text)))
    cut = draw(st.integers(0, 5))
    return (
        text[:at]
        + draw(st.sampled_from(["", ":", "- ", "{", "]", "'", "\t", "&a ", "*a", "\n  "]))
        + text[at + cut :]
    )


spec_texts = st.one_of(
    specs.map(dumped),
    documents.map(dumped),
    spliced(specs.map(dumped)),
    st.text(max_size=60),
)

# A CSV that mostly parses, with columns of one kind each (like real labels and features), so
# that the spec's labels and columns get checked against it and the table.
KINDS = {
    "binary": st.sampled_from(["0", "1"]),
    "words": st.sampled_from(["yes", "no", "cat", "dog", "fish"]),
    "classes": st.sampled_from(["0", "1", "2", "3"]),
    "real": st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: f"{x:.3g}"),
    "odd": st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e400", " 7 ", "1.5", "x", "true"]),
    "quoted": st.sampled_from(['"q,uoted"', '"a ""b"""', '"open', '"two\nlines"', "'single'"]),
    "text": st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=4),
}


@st.composite
def csv_table(draw: st.DrawFn) -> tuple[list[str], bytes]:
    """(the header's names, the file's bytes)."""
    if draw(st.integers(0, 14)) == 0:
        return [], draw(st.binary(max_size=80))
    header = draw(
        st.lists(
            st.sampled_from(COLUMNS), min_size=1 + draw(st.booleans()), max_size=4, unique=True
        )
    )
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(header)))  # a name twice
    kinds = [draw(st.sampled_from([*KINDS, "binary", "classes", "real", "real"])) for _ in header]
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 29)) == 0:  # a ragged row
            row = [draw(KINDS["odd"]) for _ in range(draw(st.integers(0, 6)))]
        else:
            odd = draw(st.integers(0, 39)) == 0  # a row of odd cells
            row = [draw(KINDS["odd"] if odd else KINDS[k]) for k in kinds]
        lines.append(",".join(row))
        if draw(st.integers(0, 14)) == 0:
            lines.append("")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))
    data = text.encode("utf-8")
    if draw(st.integers(0, 14)) == 0:  # a stray byte somewhere: not UTF-8, a NUL, a BOM
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\x00", b"\xef\xbb\xbf", b"\xe9"]))
            + data[at:]
        )
    return header, data


def csv_bytes() -> st.SearchStrategy[bytes]:
    return csv_table().map(lambda table: table[1])


def check(spec_text: str, csv: bytes | None = None) -> None:
    """Run `taskfit check` on the spec (and data.csv beside it) and assert it did not crash."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_text(spec_text, encoding="utf-8")
        if csv is not None:
            (Path(folder) / "data.csv").write_bytes(csv)
        result = runner.invoke(app, ["check", str(spec)])
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code in (0, 1), output
    assert "Traceback" not in output
    if result.exit_code == 1:
        assert result.stderr.startswith("error:"), result.stderr
        assert result.stdout == ""


@SETTINGS
@given(spec_texts, st.one_of(st.none(), csv_bytes()))
def test_random_specs_are_refused_or_accepted_never_a_crash(
    spec_text: str, csv: bytes | None
) -> None:
    check(spec_text, csv)


@st.composite
def spec_and_csv(draw: st.DrawFn) -> tuple[str, bytes]:
    """A CSV and a plausible spec for it: a task, a label among its columns (a list of them for
    one-hot labels, or two heads), and now and then another data key or a loss."""
    header, csv = draw(csv_table())
    columns = st.sampled_from(header or COLUMNS)
    task = draw(st.sampled_from(["binary", "multiclass", "regression"]))
    label: Any = draw(columns)
    if draw(st.integers(0, 5)) == 0:
        label = draw(st.lists(columns, min_size=2, max_size=3))
    data: dict[str, Any] = {"source": "data.csv", "label": label}
    if draw(st.integers(0, 2)) == 0:
        data[draw(st.sampled_from(["features", "ignore", "numeric", "categorical", "classes"]))] = (
            draw(st.one_of(st.lists(columns, max_size=2), st.lists(scalars, max_size=3)))
        )
    if draw(st.integers(0, 5)) == 0:
        data["positive"] = draw(st.one_of(scalars, KINDS["binary"], KINDS["words"]))
    doc: dict[str, Any] = {"task": task, "data": data}
    if draw(st.integers(0, 5)) == 0:
        doc["loss"] = draw(st.sampled_from(LOSSES[task] + ["mse", "binary_crossentropy"]))
    if draw(st.integers(0, 4)) == 0 and len(header) >= 2:
        del doc["task"]  # each head has its own task, label and loss
        doc.pop("loss", None)
        for key in ("label", "positive", "classes"):
            data.pop(key, None)
        labels = draw(st.lists(columns, min_size=2, max_size=2, unique=True))
        doc["heads"] = {
            f"h{i}": {"task": draw(st.sampled_from(list(LOSSES))), "label": column}
            for i, column in enumerate(labels)
        }
    return dumped(doc), csv


@SETTINGS
@given(spec_and_csv())
def test_random_csv_files_are_refused_or_accepted_never_a_crash(case: tuple[str, bytes]) -> None:
    check(*case)


# Damaged run folders: a finished run with some of its files removed, cut short, replaced by
# random bytes, another JSON document, a folder, a pipe or a link, through every command that
# reads a run. Each exits 0 or 1; on 1 with one `error:` line and the folder as it was.
RUN_SETTINGS = settings(SETTINGS, max_examples=30)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(), inner)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    """Two runs trained once for the module (one member): one finished, one stopped by Ctrl-C
    after its second epoch (its checkpoint kept for --resume), and rows to predict."""
    from taskfit.training.guards import StopOnInterrupt
    from taskfit.training.run import train

    def ctrl_c_after_two(self: StopOnInterrupt, epoch: int, logs: object = None) -> None:
        if epoch == 1:
            self.signal, self.model.stop_training = "Ctrl-C", True

    folder = tmp_path_factory.mktemp("runs")
    spec = tiny_spec(folder, "binary", epochs=4)
    quick = {"model.members": 1, "training.epochs": 1}
    finished = train(spec, quick, folder / "finished", verbose=0).run_dir
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StopOnInterrupt, "on_epoch_end", ctrl_c_after_two, raising=False)
        stopped = {"model.members": 1, "training.bagging": False, "training.refit": False}
        interrupted = train(spec, stopped, folder / "interrupted", verbose=0).run_dir
    rows = folder / "rows.csv"
    rows.write_text(tiny_csv(5, "binary"), encoding="utf-8")
    return {"finished": finished, "interrupted": interrupted}, rows


@st.composite
def damage(draw: st.DrawFn, files: list[str]) -> tuple[str, str, bytes]:
    """(a file of the run, what is done to it, the bytes that go with it)."""
    name = draw(st.sampled_from(files))
    how = draw(
        st.sampled_from(["remove", "cut", "bytes", "json", "flip", "empty", "folder", "pipe"])
    )
    how = draw(st.sampled_from([how, "link"])) if draw(st.integers(0, 7)) == 0 else how
    content = {
        "bytes": st.binary(max_size=200),
        "json": json_values.map(lambda value: json.dumps(value).encode()),
        "link": st.sampled_from([b"/nonexistent", b".", b"/dev/zero", b"model.keras"]),
    }.get(how, st.integers(0, 10**6).map(lambda at: str(at).encode()))
    return name, how, draw(content)


def apply(run: Path, name: str, how: str, content: bytes) -> None:
    """Do `how` to the run's file `name` (a file removed before may make its folder gone too)."""
    path = run / name
    before = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if how == "remove" or not path.parent.is_dir():
        return
    at = int(content) % (len(before) + 1) if how in ("cut", "flip") else 0
    if how == "cut":
        path.write_bytes(before[:at])
    elif how == "flip":
        flipped = bytes([before[at] ^ 0xFF]) if at < len(before) else b"\xff"
        path.write_bytes(before[:at] + flipped + before[at + 1 :])
    elif how in ("bytes", "json"):
        path.write_bytes(content)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "folder":
        path.mkdir()
    elif how == "pipe":
        os.mkfifo(path)
    else:
        path.symlink_to(content.decode())


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder`, with the bytes of each regular file (a pipe is not read)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(folder.rglob("*"))
    }


COMMANDS = {
    "report": lambda run, rows, other: ["report", str(run)],
    "compare": lambda run, rows, other: ["compare", str(other), str(run)],
    "predict": lambda run, rows, other: ["predict", str(run), str(rows)],
    "resume": lambda run, rows, other: ["train", "--resume", str(run)],
}
WRITTEN_ON_SUCCESS = {"report": {"report.html"}, "resume": None}  # None: the run carries on


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_damaged_run_folders_are_refused_or_read_never_a_crash(
    command: str, runs: tuple[dict[str, Path], Path]
) -> None:
    folders, rows = runs
    files = {
        kind: sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
        for kind, run in folders.items()
    }
    kinds = ["interrupted"] if command == "resume" else list(folders)

    @RUN_SETTINGS
    @given(st.sampled_from(kinds).flatmap(lambda kind: st.tuples(st.just(kind), damages(kind))))
    def damaged_run(case: tuple[str, list[tuple[str, str, bytes]]]) -> None:
        kind, done = case
        with tempfile.TemporaryDirectory() as folder:
            run = Path(folder) / "run"
            shutil.copytree(folders[kind], run)
            for name, how, content in done:
                apply(run, name, how, content)
            before = snapshot(run)
            result = runner.invoke(app, COMMANDS[command](run, rows, folders["finished"]))
            after = snapshot(run)
        output = result.stdout + result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit), output
        assert result.exit_code in (0, 1), output
        assert "Traceback" not in output
        if result.exit_code == 1:
            errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, result.stderr
            assert after == before, f"{command} changed the run folder and failed"
        elif (allowed := WRITTEN_ON_SUCCESS.get(command, set())) is not None:
            changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            assert changed <= allowed, changed

    def damages(kind: str) -> st.SearchStrategy[list[tuple[str, str, bytes]]]:
        return st.lists(damage(files[kind]), min_size=1, max_size=3)

    damaged_run()
