"""Contradictions with the table are refused with the row and the fix; alternatives pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskfit.data.view import inspect_data
from taskfit.errors import DataError, SpecError
from taskfit.plan.checking import check_spec
from taskfit.plan.make import make_plan
from taskfit.spec.spec import parse_spec

DIGITS = "task: multiclass\ndata: {source: digits, label: digit}\n"
CANCER = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"
DIABETES = "task: regression\ndata: {source: diabetes, label: progression}\n"


def plan(text: str):  # type: ignore[no-untyped-def]
    loaded = parse_spec(text, Path("."))
    return make_plan(loaded.spec, inspect_data(loaded).labels)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        (
            DIGITS + "loss: binary_crossentropy\n",
            SpecError,
            r"loss: binary_crossentropy belongs to the binary row, not multiclass; the table row "
            r"multiclass \(one column of integer class ids 0..k-1\): Dense\(k, softmax\) \+ "
            r"sparse_categorical_crossentropy. Use loss: sparse_categorical_crossentropy",
        ),
        (
            DIGITS + "loss: categorical_crossentropy\n",
            SpecError,
            r"categorical_crossentropy needs k columns of 0/1.*Use loss: sparse_categorical_crossentropy",
        ),
        (
            DIGITS + "model: {output: {units: 4}}\n",
            SpecError,
            r"model.output.units: is 4, but the table row multiclass .* gives 10 here",
        ),
        (
            DIGITS + "model: {output: {units: 1}}\n",
            SpecError,
            r"model.output: softmax with one unit always outputs 1.0, so nothing is learned. Use "
            r"table row binary .*Dense\(1, sigmoid\) \+ binary_crossentropy",
        ),
        (
            CANCER + "model: {output: {units: 1, activation: softmax}}\n",
            SpecError,
            r"softmax on a binary output contradicts the table row binary .*Use sigmoid",
        ),
        (
            DIABETES + "model: {output: {activation: sigmoid}}\n",
            SpecError,
            r"sigmoid on a regression output contradicts the table row regression .* Dense\(1\) \+ mse",
        ),
        (
            DIABETES + "model: {output: {activation: relu}}\n",
            SpecError,
            r"relu on a regression output contradicts",
        ),
        (
            CANCER + "loss: mse\n",
            SpecError,
            r"mse belongs to the regression row, not binary.*Use loss: binary_crossentropy",
        ),
        (
            CANCER.replace("breast_cancer, label: diagnosis", "digits, label: digit"),
            DataError,
            r"column digit has 10 classes .* a binary task needs two. Use task: multiclass "
            r"\(table row multiclass .*Dense\(10, softmax\) \+ sparse_categorical_crossentropy\)",
        ),
        (
            CANCER.replace("binary", "multiclass"),
            SpecError,
            r"the label has two classes .*Dense\(1, sigmoid\) \+ binary_crossentropy. Use task: binary",
        ),
        (
            DIGITS.replace("multiclass", "regression") + "loss: sparse_categorical_crossentropy\n",
            SpecError,
            r"sparse_categorical_crossentropy belongs to the multiclass row, not regression",
        ),
    ],
)
def test_contradictions_cite_the_row_and_the_fix(text: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        plan(text)


@pytest.mark.parametrize(
    ("text", "loss", "onehot"),
    [
        (DIABETES + "loss: mae\n", "mae", False),
        (DIABETES + "loss: {name: huber, delta: 2.0}\n", "huber", False),
        (
            CANCER + "loss: {name: binary_focal_crossentropy, gamma: 2.0}\n",
            "binary_focal_crossentropy",
            False,
        ),
        (
            CANCER + "loss: {name: binary_crossentropy, label_smoothing: 0.1}\n",
            "binary_crossentropy",
            False,
        ),
        (DIGITS + "loss: categorical_focal_crossentropy\n", "categorical_focal_crossentropy", True),
        (DIGITS, "sparse_categorical_crossentropy", False),
    ],
)
def test_table_alternatives_pass(text: str, loss: str, onehot: bool) -> None:
    result = plan(text + "optimizer: {name: sgd, momentum: 0.9}\n")
    assert result.head.loss.summary == loss
    assert result.head.onehot_targets is onehot
    assert result.optimizer.params == {"learning_rate": 0.01, "momentum": 0.9, "nesterov": False}


def test_strict_false_turns_contradictions_into_warnings() -> None:
    result = plan(CANCER + "loss: mse\nstrict: false\n")
    assert result.head.loss.summary == "mse"
    assert any(
        "mse belongs to the regression row" in w and "(allowed: strict is false)" in w
        for w in result.warnings
    )


def test_schedule_replaces_the_optimizer_learning_rate() -> None:
    result = plan(
        DIGITS + "schedule: {name: exponential_decay, initial_learning_rate: 0.01, "
        "decay_steps: 1000, decay_rate: 0.9}\n"
    )
    assert result.schedule is not None
    assert result.schedule.params == {
        "initial_learning_rate": 0.01,
        "decay_steps": 1000,
        "decay_rate": 0.9,
        "staircase": False,
    }
    assert "learning_rate" not in result.optimizer.params


def test_table_defaults_fill_the_plan() -> None:
    result = check_spec(Path(__file__).parents[1] / "configs" / "multiclass.yaml").plan
    assert (result.head.output_units, result.head.output_activation) == (10, "softmax")
    assert [layer.units for layer in result.layers] == [128, 64]
    assert result.head.metrics == ("accuracy",)
    # digits: 1797 rows, 1150 of them training: 1150 / 16 steps rounds down to batch 64, so
    # adam's default rate 0.001 goes up by sqrt(64 / 32)
    assert result.batch_size == 64
    assert result.optimizer.params["learning_rate"] == 0.00141


@pytest.mark.parametrize(
    ("train_rows", "batch_size"),
    [(None, 256), (10, 32), (363, 32), (1150, 64), (2850, 128), (18000, 1024), (10**7, 1024)],
)
def test_the_default_batch_size_follows_the_training_rows(
    train_rows: int | None, batch_size: int
) -> None:
    from taskfit.recipe.table import load_table

    batching = load_table().fitting.batching
    assert batching.batch_size(train_rows) == batch_size
    assert batching.rate_factor("adam", batch_size) == pytest.approx((batch_size / 32) ** 0.5)
    assert (
        batching.rate_factor("sgd", batch_size) == 1.0
    )  # the square-root rule is for adaptive ones


@pytest.mark.parametrize(
    ("extra", "batch_size", "rate"),
    [
        ("", 64, 0.00141),
        ("training: {batch_size: 32}\n", 32, 0.001),  # the spec's batch: the table's rate
        ("optimizer: {name: adam, learning_rate: 0.01}\n", 64, 0.01),  # the spec's rate stays
        ("optimizer: {name: sgd}\n", 64, 0.01),
    ],
)
def test_the_spec_overrides_the_batch_rule_and_its_rate(
    extra: str, batch_size: int, rate: float, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS + extra)
    checked = check_spec(spec)
    assert (checked.plan.batch_size, checked.plan.optimizer.params["learning_rate"]) == (
        batch_size,
        rate,
    )
    resolved = checked.resolved()  # spec.resolved.yaml trains the same again
    assert resolved["training"]["batch_size"] == batch_size
    assert resolved["optimizer"]["learning_rate"] == rate


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "data: {source: digits, label: digit, validation_fraction: 0}\n",
            r"monitor: 'val_loss' is not logged \(data.validation_fraction is 0\). Logged: loss, accuracy",
        ),
        (
            "training: {early_stopping: {monitor: val_auc}}\n",
            r"monitor: 'val_auc' is not logged. Logged: loss, accuracy, val_loss, val_accuracy",
        ),
    ],
)
def test_early_stopping_must_watch_a_logged_quantity(extra: str, message: str) -> None:
    text = DIGITS if extra.startswith("training") else "task: multiclass\n"
    with pytest.raises(SpecError, match=message):
        plan(text + extra)


def test_early_stopping_can_be_turned_off_without_validation() -> None:
    text = "task: multiclass\ndata: {source: digits, label: digit, validation_fraction: 0}\n"
    assert (
        plan(text + "training: {early_stopping: null}\n").head.loss.summary
        == "sparse_categorical_crossentropy"
    )
