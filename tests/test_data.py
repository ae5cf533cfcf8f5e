"""CSV files, bundled datasets and label format detection (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from taskfit.bundled import bundled_datasets
from taskfit.checking import check_spec
from taskfit.csvtable import read_csv
from taskfit.errors import DataError
from tests.conftest import tiny_csv

Write = Callable[[str, str], Path]


def spec(write: Write, task: str, label: str = "y", extra: str = "") -> Path:
    return write("spec.yaml", f"task: {task}\ndata: {{source: data.csv, label: {label}}}\n{extra}")


def test_bundled_index_matches_the_csv_files() -> None:
    datasets = bundled_datasets()
    assert set(datasets) == {"breast_cancer", "digits", "diabetes"}
    shapes = {"breast_cancer": (569, 30), "digits": (1797, 64), "diabetes": (442, 10)}
    for name, item in datasets.items():
        table = read_csv(item.path)
        assert (table.n_rows, len(table.columns) - 1) == shapes[name] == (item.rows, item.features)
        assert item.label in table.columns
        distinct = len(set(table.cells[item.label]))
        assert item.classes == (distinct if item.task != "regression" else None)


@pytest.mark.parametrize(
    ("task", "label", "fmt", "classes"),
    [
        ("binary", "binary", "binary", ("0", "1")),
        ("multiclass", "multiclass", "integer", ("0", "1", "2")),
        ("regression", "regression", "real", ()),
    ],
)
def test_label_format_is_detected(
    write: Write, task: str, label: str, fmt: str, classes: tuple[str, ...]
) -> None:
    write("data.csv", tiny_csv(label=label))
    checked = check_spec(spec(write, task))
    assert checked.plan.labels.format == fmt
    assert checked.plan.labels.classes == classes
    assert checked.data.features == ("a", "b")


def test_onehot_columns_are_detected(write: Write) -> None:
    rows = ["x,c0,c1,c2"] + [
        f"{i},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}" for i in range(9)
    ]
    write("data.csv", "\n".join(rows) + "\n")
    checked = check_spec(spec(write, "multiclass", "[c0, c1, c2]"))
    assert checked.plan.labels.format == "onehot"
    assert checked.plan.loss.name == "categorical_crossentropy"
    assert checked.plan.output_units == 3
    assert checked.data.features == ("x",)


def test_onehot_rows_must_sum_to_one(write: Write) -> None:
    write("data.csv", "x,c0,c1\n1,1,0\n2,1,1\n3,0,1\n4,0,0\n")
    with pytest.raises(DataError, match=r"exactly one 1; CSV line\(s\) 3, 5 do not"):
        check_spec(spec(write, "multiclass", "[c0, c1]"))


@pytest.mark.parametrize(
    ("csv_text", "task", "message"),
    [
        (
            "a,y\n1,x\n2,1.5\n",
            "regression",
            r"column y: a regression label must be a finite number; CSV line 2 has 'x'",
        ),
        ("a,y\n1,1\n2,1\n", "binary", r"column y: has a single class \('1'\)"),
        ("a,y\n1,0.5\n2,1\n3,0\n", "multiclass", r"column y: has non-integer numbers \(e.g. 0.5\)"),
        ("a,y\n1,0\n,1\n3,0\n", "binary", r"column a: is empty at CSV line 3"),
        ("a,y\nred,0\n2,1\n", "binary", r"column a: is not numeric: CSV line 2 has 'red'"),
        ("a,y\ninf,0\n2,1\n", "binary", r"column a: has 'inf' at CSV line 2"),
        ("a,y\n1,0\n2,\n", "binary", r"column y: has 1 empty label\(s\) at CSV line\(s\) 3"),
        ("a,b\n1,0\n2,1\n", "binary", r"data.label: no column 'y' in data.csv"),
        ("a,y\n", "binary", r"has a header but no data rows"),
        ("", "binary", r"is empty; expected a header line"),
        ("a,y,a\n1,0,1\n", "binary", r"column names must be unique; a appear"),
        ("a,y\n1,0\n2,1,3\n", "binary", r"data.csv:3: has 3 fields; the header has 2"),
    ],
)
def test_bad_data_names_the_column_and_line(
    write: Write, csv_text: str, task: str, message: str
) -> None:
    write("data.csv", csv_text)
    with pytest.raises(DataError, match=message):
        check_spec(spec(write, task))


def test_missing_source_and_near_miss_bundled_name(write: Write, tmp_path: Path) -> None:
    path = write("spec.yaml", "task: binary\ndata: {source: breast_cancr, label: y}\n")
    with pytest.raises(
        DataError, match=r"neither a bundled dataset nor a file. Did you mean \"breast_cancer\""
    ):
        check_spec(path)
    path = write("spec.yaml", "task: binary\ndata: {source: nope.csv, label: y}\n")
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        check_spec(path)
    (tmp_path / "dir.csv").mkdir()
    path = write("spec.yaml", "task: binary\ndata: {source: dir.csv, label: y}\n")
    with pytest.raises(DataError, match="is a directory"):
        check_spec(path)


def test_non_utf8_csv_is_refused(write: Write, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_bytes("a,y\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="is not UTF-8 text"):
        check_spec(spec(write, "binary"))


def test_features_ignore_and_relative_paths(write: Write) -> None:
    write("data.csv", "id,a,b,y\n" + "".join(f"{i},{i},{i % 3},{i % 2}\n" for i in range(20)))
    checked = check_spec(spec(write, "binary", extra="", label="y"), ["data.ignore=[id]"])
    assert checked.data.features == ("a", "b")
    checked = check_spec(spec(write, "binary"), ["data.features=[b]"])
    assert checked.data.features == ("b",)
    with pytest.raises(DataError, match="'y' is the label; a label is never an input"):
        check_spec(spec(write, "binary"), ["data.features=[a, y]"])
