"""CSV files, bundled datasets and label format detection (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import tiny_csv

from taskfit.cli.overrides import parse_set
from taskfit.data.bundled import bundled_datasets
from taskfit.data.csvtable import read_csv
from taskfit.errors import DataError
from taskfit.plan.checking import check_spec

Write = Callable[[str, str], Path]


def spec(write: Write, task: str, label: str = "y", extra: str = "") -> Path:
    return write("spec.yaml", f"task: {task}\ndata: {{source: data.csv, label: {label}}}\n{extra}")


def test_bundled_index_matches_the_csv_files() -> None:
    datasets = bundled_datasets()
    shapes = {
        "breast_cancer": (569, 30),
        "digits": (1797, 64),
        "diabetes": (442, 10),
        "wine": (178, 13),
    }
    assert set(datasets) == set(shapes)
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
    assert checked.plan.head.labels.format == fmt
    assert checked.plan.head.labels.classes == classes
    assert checked.data.features == ("a", "b")


def test_onehot_columns_are_detected(write: Write) -> None:
    rows = ["x,c0,c1,c2"] + [
        f"{i % 4},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}" for i in range(9)
    ]
    write("data.csv", "\n".join(rows) + "\n")
    checked = check_spec(spec(write, "multiclass", "[c0, c1, c2]"))
    assert checked.plan.head.labels.format == "onehot"
    assert checked.plan.head.loss.summary == "categorical_crossentropy"
    assert checked.plan.head.output_units == 3
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
        ("a,y\ninf,0\n2,1\n", "binary", r"column a: has 'inf' at CSV line 2"),
        ("a,b\n1,0\n2,1\n", "binary", r"data.label: no column 'y' in data.csv"),
        ("a,y\n", "binary", r"has a header but no data rows"),
        ("", "binary", r"is empty; expected a header line"),
        ("a,y,a\n1,0,1\n", "binary", r"column names must be unique; repeated: a"),
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
    with pytest.raises(DataError, match="is a folder; give the path of a CSV file"):
        check_spec(path)


def test_non_utf8_csv_is_refused(write: Write, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_bytes("a,y\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="is not UTF-8 text"):
        check_spec(spec(write, "binary"))


def test_features_ignore_and_relative_paths(write: Write) -> None:
    write("data.csv", "id,a,b,y\n" + "".join(f"{i},{i / 2},{i % 3},{i % 2}\n" for i in range(20)))
    checked = check_spec(spec(write, "binary"), parse_set(["data.ignore=[id]"]))
    assert checked.data.features == ("a", "b")
    checked = check_spec(spec(write, "binary"), parse_set(["data.features=[b]"]))
    assert checked.data.features == ("b",)
    with pytest.raises(DataError, match="'y' is a label; a label is never an input"):
        check_spec(spec(write, "binary"), parse_set(["data.features=[a, y]"]))


MIXED = "row,name,age,city,code,const,income,y\n" + "".join(
    f"{i},person{i},{20 + i % 30},{['paris', 'oslo', '', 'rome'][i % 4]},{i % 3},7,"
    f"{'' if i % 5 == 0 else 1000 + 37 * i},{['no', 'yes'][i % 2]}\n"
    for i in range(1, 41)
)


def test_column_types_are_inferred_with_notes(write: Write) -> None:
    write("data.csv", MIXED)
    columns = {c.name: c for c in check_spec(spec(write, "binary")).data.columns}
    assert (columns["row"].kind, columns["row"].note) == (
        "ignored",
        "identifier: one integer per row",
    )
    assert (columns["name"].kind, columns["name"].note) == ("ignored", "identifier: unique per row")
    assert (columns["const"].kind, columns["const"].note) == ("ignored", "constant: one value")
    assert columns["age"].kind == "numeric" and columns["code"].kind == "numeric"
    assert (columns["city"].kind, columns["city"].missing, columns["city"].distinct) == (
        "categorical",
        10,
        3,
    )
    assert (columns["income"].kind, columns["income"].missing) == ("numeric", 8)


def test_column_types_can_be_declared(write: Write) -> None:
    write("data.csv", MIXED)
    overrides = parse_set(["data.categorical=[code]", "data.numeric=[row]", "data.ignore=[age]"])
    columns = {c.name: c for c in check_spec(spec(write, "binary"), overrides).data.columns}
    assert (columns["code"].kind, columns["code"].note) == ("categorical", "data.categorical")
    assert (columns["row"].kind, columns["row"].note) == ("numeric", "data.numeric")
    assert (columns["age"].kind, columns["age"].note) == ("ignored", "data.ignore")
    with pytest.raises(
        DataError, match=r"data.numeric: 'city' is not numeric: CSV line 2 has 'oslo'"
    ):
        check_spec(spec(write, "binary"), parse_set(["data.numeric=[city]"]))
    with pytest.raises(
        DataError, match=r"data.categorical: no column 'cty' in data.csv. Did you mean \"city\""
    ):
        check_spec(spec(write, "binary"), parse_set(["data.categorical=[cty]"]))


def test_infinity_is_an_error_naming_column_and_line(write: Write) -> None:
    write("data.csv", "a,y\n1,0\n-inf,1\n3,0\n2,1\n")
    with pytest.raises(
        DataError, match=r"column a: has '-inf' at CSV line 3; numbers must be finite"
    ):
        check_spec(spec(write, "binary"))


def test_rows_without_a_label_are_left_out_and_counted(write: Write) -> None:
    write("data.csv", "a,y\n1.5,0\n2.5,\n3.5,1\n4.5,NA\n5.5,1\n6.5,0\n")
    data = check_spec(spec(write, "binary")).data
    assert data.labels["output"].missing_rows == (1, 3)
    assert data.rows == [0, 2, 4, 5]


@pytest.mark.parametrize(
    ("values", "extra", "classes"),
    [
        (["no", "yes"], "", ("no", "yes")),
        (["false", "true"], "", ("false", "true")),
        (["cat", "dog"], "  positive: cat\n", ("dog", "cat")),
        (["no", "yes"], "  positive: no\n", ("yes", "no")),  # YAML reads `no` as false
        (["1", "2"], "  positive: 1\n", ("2", "1")),
    ],
)
def test_binary_labels_as_users_have_them(
    write: Write, values: list[str], extra: str, classes: tuple[str, ...]
) -> None:
    write("data.csv", "a,y\n" + "".join(f"{i / 3},{values[i % 2]}\n" for i in range(10)))
    path = write("spec.yaml", f"task: binary\ndata:\n  source: data.csv\n  label: y\n{extra}")
    labels = check_spec(path).data.labels["output"]
    assert labels.classes == classes
    assert labels.positive_default is (extra == "")


def test_positive_must_be_a_label_value(write: Write) -> None:
    write("data.csv", "a,y\n1.5,cat\n2.5,dog\n3.5,cat\n")
    path = write("spec.yaml", "task: binary\ndata: {source: data.csv, label: y, positive: cow}\n")
    with pytest.raises(
        DataError, match=r"data.positive: 'cow' is not one of the label's two values \(cat, dog\)"
    ):
        check_spec(path)


def test_multiclass_labels_keep_their_names(write: Write) -> None:
    write("data.csv", "a,y\n" + "".join(f"{i / 3},{[10, 30, 20, 7][i % 4]}\n" for i in range(12)))
    labels = check_spec(spec(write, "multiclass")).data.labels["output"]
    assert labels.classes == ("7", "10", "20", "30")
    names = ["setosa", "virginica", "versicolor"]
    write("data.csv", "a,y\n" + "".join(f"{i / 3},{names[i % 3]}\n" for i in range(12)))
    labels = check_spec(spec(write, "multiclass")).data.labels["output"]
    assert labels.classes == ("setosa", "versicolor", "virginica")
    ordered = check_spec(
        spec(write, "multiclass"), parse_set(["data.classes=[virginica, setosa, versicolor]"])
    )
    assert ordered.data.labels["output"].classes == ("virginica", "setosa", "versicolor")
    with pytest.raises(DataError, match=r"data.classes: does not list 'versicolor' \(CSV line 4\)"):
        check_spec(spec(write, "multiclass"), parse_set(["data.classes=[virginica, setosa]"]))
