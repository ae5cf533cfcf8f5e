"""What `check` let through and `train` could not run, found by a reliability probe: a YAML key
that is a list, numbers beyond what Keras computes with, run names that make no folder or a
hidden one, and a --coordinator that is no HOST:PORT. The CLI cases are in tests/corpus/."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from taskfit.cli.train_commands import _check_address
from taskfit.config.params import LIMITS, Param
from taskfit.errors import SpecError
from taskfit.plan.checking import check_spec, notes
from taskfit.spec.keys import NAME
from taskfit.spec.spec import parse_spec

MINIMAL = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, Path("."))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("key", "kind"), [("[a, b]", "a list"), ("{a: 1}", "a mapping"), ("[[a]]", "a list")]
)
def test_a_key_that_is_a_list_or_a_mapping_is_one_problem_at_its_line(key: str, kind: str) -> None:
    assert problems(MINIMAL + f"? {key}\n: 3\n") == [
        f"<spec>:3: YAML: a key must be a string (or number); got {kind}; write the key as a "
        "plain word"
    ]


def test_every_complex_key_is_named_with_its_section_and_the_other_problems_too() -> None:
    text = MINIMAL + "model:\n  ? [units]\n  : 3\ntraining: {epochs: 1, epochs: 2}\n"
    assert sorted(problems(text)) == [
        "<spec>:4: model: a key must be a string (or number); got a list; write the key as a "
        "plain word",
        "<spec>:6: training.epochs: is given twice; keep one",
    ]


@pytest.mark.parametrize("kind", ["int", "float"])
def test_a_number_up_to_what_keras_holds_is_taken_and_beyond_it_refused(kind: str) -> None:
    limit = LIMITS[kind][0]
    largest = int(limit) if kind == "int" else limit
    beyond = int(limit) + 1 if kind == "int" else 1e39
    assert Param(kind, gt=0).check(largest) is None
    assert f"and at most {Param(kind)._shown(limit)} in size" in str(
        Param(kind, gt=0).check(beyond)
    )


def test_a_key_with_an_upper_bound_of_its_own_keeps_it() -> None:
    """training.seed stops at 2**32 - 1, far below int64: NumPy's and TensorFlow's seeds are
    32-bit, and the key says so itself."""
    seed = Param("int", ge=0, le=2**32 - 1)
    assert seed.check(2**32 - 1) is None
    assert seed.check(2**32) == "must be an integer >= 0 and <= 4294967295. Got 4294967296 instead."


def test_an_integer_of_four_hundred_digits_for_a_number_is_refused_not_a_crash() -> None:
    """math.isfinite cannot convert an int that large to a float: an OverflowError before."""
    assert "at most 3.40282e+38 in size" in str(Param("float", gt=0).check(10**400))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "training: {batch_size: 100000000000000000000}\n",
            "training.batch_size: must be an integer >= 1, and at most 9223372036854775807",
        ),
        (
            f"model: {{layers: [{{units: {2**63}}}]}}\n",
            "model.layers[0].units: must be an integer >= 1, and at most 9223372036854775807",
        ),
        (
            f"training: {{early_stopping: {{patience: {2**64}}}}}\n",
            "patience: must be an integer >= 0, and at most 9223372036854775807",
        ),
        ("optimizer: {name: adam, learning_rate: 1e39}\n", "optimizer.learning_rate: must be"),
        ("training: {class_weight: {'0': 1e300, '1': 1}}\n", "training.class_weight.0: must be"),
        ("loss: {name: huber, delta: 1e39}\n", "loss.delta: must be a number > 0, and at most"),
    ],
)
def test_a_number_keras_cannot_hold_is_refused_naming_its_key(text: str, message: str) -> None:
    found = problems(MINIMAL + text)
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize("name", ["churn", "my run", "run_2", "_x", "Größe", "a" * 200, "v1.2"])
def test_a_run_name_that_makes_a_plain_folder_is_taken(name: str) -> None:
    assert NAME.check(name) is None


@pytest.mark.parametrize("name", ["..", ".", "../../x", ".hidden", "-x", "", "été", "a" * 201])
def test_a_run_name_that_makes_a_hidden_odd_or_too_long_folder_is_refused(name: str) -> None:
    problem = str(NAME.check(name))
    assert problem.startswith("must be a string of at most 200 characters, starting with")


def test_a_high_learning_rate_is_a_note_not_a_refusal() -> None:
    spec = {
        "task": "binary",
        "data": {"source": "breast_cancer", "label": "diagnosis"},
        "optimizer": {"name": "sgd", "learning_rate": 50},
    }
    said = notes(check_spec(spec))
    assert any(n.startswith("optimizer.learning_rate: 50 is far above") for n in said), said
    spec["optimizer"] = {"name": "sgd", "learning_rate": 0.5}
    assert not any("learning_rate" in n for n in notes(check_spec(spec)))


@pytest.mark.parametrize("address", ["10.0.0.1:1234", "h:1", "host.example:65535", "[::1]:8476"])
def test_a_coordinator_host_and_port_is_taken(address: str) -> None:
    _check_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "nohost",
        "localhost:-1",
        "localhost:abc",
        "localhost:99999",
        "h:0",
        ":1",
        "h:",
        " :1",
        "localhost:80:90",
        "local host:80",
        "[::1:80",
    ],
)
def test_a_coordinator_that_is_no_host_and_port_is_a_usage_error(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as stopped:
        _check_address(address)
    assert stopped.value.exit_code == 2
    assert f"--coordinator {address!r}: expected HOST:PORT" in capsys.readouterr().err


def rare_positives(folder: Path, positives: int, rows: int = 60) -> dict[str, object]:
    lines = ["a,y"] + [f"{i / rows:.3f},{int(i < positives)}" for i in range(rows)]
    (folder / "rare.csv").write_text("\n".join(lines) + "\n")
    return {"task": "binary", "data": {"source": str(folder / "rare.csv"), "label": "y"}}


def test_one_row_of_a_binary_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        check_spec(rare_positives(tmp_path, 1))
    assert str(caught.value).startswith(
        "column y: the class 1 has a single row among 60 labelled rows; a class needs rows to "
        "learn from and rows to be checked on"
    )


def test_a_class_the_test_split_will_not_hold_is_said(tmp_path: Path) -> None:
    spec = rare_positives(tmp_path, 2)
    said = [n for n in notes(check_spec(spec)) if "the test split holds no row" in n]
    assert said == [
        "column y: the test split holds no row of 1 (data.test_fraction 0.2 of too few rows); "
        "the test metrics say nothing about it. Give more rows of it, or raise "
        "data.test_fraction"
    ]
    spec["data"]["test_fraction"] = 0.3  # type: ignore[index]
    assert not any("the test split holds no row" in n for n in notes(check_spec(spec)))


def test_a_validation_split_of_a_few_rows_is_said(tmp_path: Path) -> None:
    spec = rare_positives(tmp_path, 30)
    spec["training"] = {"bagging": False}  # a held-out validation split
    spec["data"]["validation_fraction"] = 0.05  # type: ignore[index]
    said = [n for n in notes(check_spec(spec)) if "the validation split holds" in n]
    assert said == [
        "the validation split holds 2 row(s) (data.validation_fraction 0.05): early stopping, "
        "the calibration and a chosen threshold rest on so few; raise data.validation_fraction"
    ]
    spec["data"]["validation_fraction"] = 0.2  # type: ignore[index]
    assert not any("the validation split holds" in n for n in notes(check_spec(spec)))


@pytest.mark.parametrize(
    ("task", "more", "said"),
    [
        ("binary", {"model": {"output": {"units": 2}}}, "model.output.units: binary_crossentropy"),
        ("multiclass", {"loss": "binary_crossentropy"}, "loss: binary_crossentropy on these"),
        ("multiclass", {"model": {"output": {"units": 2}}}, "computes against 3 output units"),
        ("regression", {"model": {"output": {"units": 3}}}, "model.output.units: mse on these"),
    ],
)
def test_strict_false_keeps_no_output_keras_cannot_compute(
    task: str, more: dict[str, object], said: str, tmp_path: Path
) -> None:
    label = {"binary": "y", "multiclass": "plan", "regression": "x"}[task]
    lines = ["x,plan,y"] + [f"{i / 40:.3f},{'abc'[i % 3]},{'ny'[i % 2]}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    data = {"source": str(tmp_path / "t.csv"), "label": label}
    spec = {"task": task, "data": data, "strict": False, **more}
    with pytest.raises(SpecError) as caught:
        check_spec(spec)
    assert said in str(caught.value) and "Keras cannot train that, strict or not" in str(
        caught.value
    )


def test_experts_beyond_memory_are_refused_by_name(tmp_path: Path) -> None:
    lines = ["x,y,z"] + [f"{i / 40:.3f},{'ny'[i % 2]},{i}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    spec = {
        "heads": {"a": {"task": "binary", "label": "y"}, "b": {"task": "regression", "label": "z"}},
        "data": {"source": str(tmp_path / "t.csv")},
        "model": {"sharing": {"name": "mmoe", "experts": 100_000_000}},
    }
    with pytest.raises(SpecError) as caught:
        check_spec(spec)
    assert str(caught.value).startswith("model.sharing.experts: about ")


@pytest.mark.parametrize("value", ["&x [*x]", "&x {a: *x}"])
def test_a_set_value_that_holds_itself_is_refused(value: str) -> None:
    from taskfit.cli.overrides import parse_set

    with pytest.raises(SpecError) as caught:
        parse_set([f"model={value}"])
    assert "holds itself through a YAML alias" in str(caught.value)
    assert parse_set(["name=a: b: c"]) == {"name": "a: b: c"}  # not YAML: taken as text


@pytest.mark.parametrize("name", ["val", "val_r"])
def test_a_head_named_as_keras_validation_logs_is_refused(name: str) -> None:
    spec = {
        "heads": {
            name: {"task": "binary", "label": "diagnosis"},
            "r": {"task": "regression", "label": "mean_radius"},
        },
        "data": {"source": "breast_cancer"},
    }
    with pytest.raises(SpecError) as caught:
        check_spec(spec)
    assert (
        f"Keras logs each head's validation metrics as val_<head>_..., so a head named {name}"
        in str(caught.value)
    )


def test_a_set_value_of_bytes_that_are_no_utf8_is_refused() -> None:
    from taskfit.cli.overrides import parse_set

    with pytest.raises(SpecError) as caught:
        parse_set(["name=a\udcff"])  # how Python hands over the byte 0xff (PEP 383)
    assert "holds bytes that are not UTF-8 text" in str(caught.value)
