"""YAML -> Spec: defaults, every problem at once with path and line, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskfit.cli.overrides import parse_set
from taskfit.errors import SpecError
from taskfit.spec.spec import load_spec, parse_spec

MINIMAL = "task: binary\ndata: {source: breast_cancer, label: diagnosis}\n"


def problems(text: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, Path("."), parse_set(overrides))
    return [str(p) for p in caught.value.problems]


def test_minimal_spec_gets_every_default() -> None:
    spec = parse_spec(MINIMAL, Path(".")).spec
    assert spec.loss.is_auto
    assert spec.optimizer.name == "adam"
    assert spec.model.layers is None  # the table's layers are filled in by the plan
    assert spec.training.epochs == 200
    assert spec.training.early_stopping is not None
    assert spec.training.early_stopping.restore_best_weights is True
    assert spec.data.test_fraction is None  # the plan's: 0.2, or 0 for a bagged run


def test_numbers_written_as_python_writes_them_are_numbers() -> None:
    """1e-4 is a string to YAML 1.1 (PyYAML); here it is the number users mean, in the spec
    and in --set. Quoted, it stays text."""
    text = MINIMAL + "optimizer: {name: adam, learning_rate: 1e-4}\n"
    assert parse_spec(text, Path(".")).spec.optimizer.params["learning_rate"] == 1e-4
    spec = parse_spec(
        MINIMAL, Path("."), parse_set(["optimizer.name=adam", "optimizer.learning_rate=3E-5"])
    )
    assert spec.spec.optimizer.params["learning_rate"] == 3e-5
    quoted = MINIMAL + "optimizer: {name: adam, learning_rate: '1e-4'}\n"
    assert "must be a number > 0. Got '1e-4' instead" in " ".join(problems(quoted))


def test_all_problems_are_reported_at_once_with_lines() -> None:
    text = (
        "task: binery\n"  # 1
        "data:\n"  # 2
        "  source: x.csv\n"  # 3
        "  lable: y\n"  # 4
        "model:\n"  # 5
        "  layers:\n"  # 6
        "    - {units: 0, activation: rleu, dropout: 1.5}\n"  # 7
        "trainig: {epochs: 3}\n"  # 8
    )
    found = problems(text)
    joined = "\n".join(found)
    assert '<spec>:8: trainig: unknown key. Did you mean "training"?' in joined
    assert (
        "<spec>:1: task: must be one of binary, multiclass, regression. Got 'binery' instead."
        in joined
    )
    assert '<spec>:4: data.lable: unknown key. Did you mean "label"?' in joined
    assert "data.label: is required" in joined
    assert "<spec>:7: model.layers[0].units: must be an integer >= 1. Got 0 instead." in joined
    assert (
        "<spec>:7: model.layers[0].activation: unknown activation 'rleu'. Did you mean \"relu\"?"
        in joined
    )
    assert (
        "<spec>:7: model.layers[0].dropout: must be a number >= 0 and < 1. Got 1.5 instead."
        in joined
    )
    assert len(found) == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("optimizer: adamm\n", "optimizer: unknown optimizer 'adamm'. Did you mean \"adam\"?"),
        (
            "optimizer: {name: sgd, momentum: 1.5}\n",
            "optimizer.momentum: must be a number >= 0 and < 1",
        ),
        ("optimizer: {name: adam, rho: 0.9}\n", "optimizer.rho: unknown adam parameter 'rho'"),
        (
            "optimizer: {name: adamw, weight_decay: -1}\n",
            "optimizer.weight_decay: must be a number >= 0",
        ),
        ("loss: hubber\n", "loss: unknown loss 'hubber'. Did you mean \"huber\"?"),
        ("loss: {name: huber, delta: 0}\n", "loss.delta: must be a number > 0. Got 0 instead."),
        ("schedule: {name: cosine, decay_steps: 10}\n", "unknown schedule 'cosine'"),
        (
            "schedule: {name: exponential_decay, initial_learning_rate: 0.01, decay_steps: 1000}\n",
            "schedule: exponential_decay needs `decay_rate`",
        ),
        (
            "schedule: {name: piecewise_constant, boundaries: [10, 5], values: [0.1, 0.01]}\n",
            "schedule.boundaries: must increase. Got [10, 5] instead.",
        ),
        (
            "schedule: {name: piecewise_constant, boundaries: [10], values: [0.1]}\n",
            "schedule.values: needs one more value than boundaries (2). Got 1 instead.",
        ),
        (
            "schedule: {name: polynomial, initial_learning_rate: 0.1, decay_steps: 1.5}\n",
            "schedule.decay_steps: must be an integer > 0. Got 1.5 instead.",
        ),
        (
            "optimizer: {name: adam, learning_rate: 0.01}\n"
            "schedule: {name: cosine_decay, initial_learning_rate: 0.01, decay_steps: 100}\n",
            "optimizer.learning_rate: is set together with `schedule`",
        ),
        ("metrics: [accuracy, mae]\n", "metrics[1]: unknown binary metric 'mae'"),
        ("training: {epochs: 0}\n", "training.epochs: must be an integer >= 1. Got 0 instead."),
        ("training: {batch_size: -1}\n", "training.batch_size: must be an integer >= 1. Got -1"),
        (
            "training: {epochs: true}\n",
            "training.epochs: must be an integer >= 1. Got true instead.",
        ),
        ("training: 5\n", "training: must be a mapping with keys epochs, batch_size"),
        ("model: {output: {activation: softmaks}}\n", "unknown activation 'softmaks'"),
        ("strict: maybe\n", "strict: must be true or false. Got 'maybe' instead."),
        ("task: binary\n", "task: is given twice; keep one"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(extra: str, message: str) -> None:
    assert any(message in p for p in problems(MINIMAL + extra)), problems(MINIMAL + extra)


def test_named_things_with_parameters_keep_them() -> None:
    spec = parse_spec(
        MINIMAL + "optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.9, nesterov: true}\n",
        Path("."),
    ).spec
    assert spec.optimizer.name == "sgd"
    assert spec.optimizer.params == {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}


def test_set_overrides_are_validated_like_the_file() -> None:
    spec = parse_spec(
        MINIMAL, Path("."), parse_set(["training.epochs=3", "optimizer.name=rmsprop"])
    ).spec
    assert spec.training.epochs == 3
    assert spec.optimizer.name == "rmsprop"
    found = problems(MINIMAL, ["training.epochs=0", "trainig.seed=1"])
    assert "--set training.epochs: must be an integer >= 1. Got 0 instead." in found
    assert any(p.startswith('--set trainig: unknown key. Did you mean "training"?') for p in found)
    with pytest.raises(SpecError, match=r"--set epochs: expected key.path=value"):
        parse_spec(MINIMAL, Path("."), parse_set(["epochs"]))


def test_yaml_syntax_error_has_its_line() -> None:
    with pytest.raises(SpecError, match=r"<spec>:3: YAML: is not valid YAML"):
        parse_spec("task: binary\ndata: {source: x\n  label: [\n", Path("."))


def test_empty_missing_and_directory_specs(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SpecError, match="is empty; a spec needs at least `task` and `data`"):
        load_spec(tmp_path / "empty.yaml")
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes("task: binary # caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="is not UTF-8 text"):
        load_spec(tmp_path / "latin1.yaml")


def test_spec_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match=r"must be a mapping with keys task, data"):
        parse_spec("- task\n- data\n", Path("."))
