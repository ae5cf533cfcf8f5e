"""The recommendation table: every name resolves in Keras, every default is Keras's own."""

from __future__ import annotations

import inspect

import keras
import pytest

from taskfit.errors import SpecError
from taskfit.recipe.table import TASKS, load_table, recommendation

TABLE = load_table()


@pytest.mark.parametrize("task", TASKS)
def test_every_loss_activation_and_metric_resolves_in_keras(task: str) -> None:
    recipe = TABLE.recipe(task)
    for name, loss in recipe.losses.items():
        assert keras.losses.get(name) is not None
        loss_class = getattr(keras.losses, loss.keras_class)
        signature = inspect.signature(loss_class)
        for param, spec in loss.params.items():
            assert param in signature.parameters, f"{loss_class.__name__} has no {param}"
            assert signature.parameters[param].default == spec.default
    assert keras.activations.get(recipe.output_activation) is not None
    for metric in recipe.metric_choices:
        assert keras.metrics.get(metric) is not None
    assert set(recipe.metrics) <= set(recipe.metric_choices)
    assert recipe.recommended_loss.keys() == recipe.label_formats.keys()


def test_every_optimizer_resolves_with_keras_defaults() -> None:
    for name, item in TABLE.optimizers.items():
        assert type(keras.optimizers.get(name)).__name__ == item.keras_class
        signature = inspect.signature(getattr(keras.optimizers, item.keras_class))
        for param, spec in {**item.params, **TABLE.optimizer_common}.items():
            assert signature.parameters[param].default == spec.default, (name, param)


def test_every_schedule_matches_its_keras_signature() -> None:
    for item in TABLE.schedules.values():
        signature = inspect.signature(getattr(keras.optimizers.schedules, item.keras_class))
        for param, spec in item.params.items():
            default = signature.parameters[param].default
            if spec.required:
                assert default is inspect.Parameter.empty, (item.name, param)
            else:
                assert default == spec.default, (item.name, param)
        assert item.example is not None
        getattr(keras.optimizers.schedules, item.keras_class)(**item.example)


def test_every_activation_resolves() -> None:
    for name in TABLE.activations:
        assert callable(keras.activations.get(name))


def test_exponential_decay_example_decays_0_01_by_0_9_every_1000_steps() -> None:
    example = TABLE.schedules["exponential_decay"].example
    assert example == {"initial_learning_rate": 0.01, "decay_steps": 1000, "decay_rate": 0.9}


def test_recommendation_rows_follow_the_table() -> None:
    binary = recommendation("binary")
    assert binary["output_layer"]["units"] == 1
    assert binary["output_layer"]["activation"] == "sigmoid"
    assert binary["loss"] == "binary_crossentropy"
    assert recommendation("multiclass", "onehot")["loss"] == "categorical_crossentropy"
    assert recommendation("multiclass")["loss"] == "sparse_categorical_crossentropy"
    regression = recommendation("regression")
    assert regression["output_layer"]["activation"] == "linear"
    assert set(regression["losses"]) == {"mse", "mae", "huber"}
    assert regression["losses"]["huber"]["params"] == {"delta": 1.0}
    with pytest.raises(SpecError, match=r"labels: binary labels are binary\. Got 'onehot' instead"):
        recommendation("binary", "onehot")
