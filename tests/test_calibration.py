"""Temperature scaling: the temperature found is the one that made the probabilities wrong,
calibration error falls and the predicted classes do not change; a trained run carries its
temperature in the saved model and reports ECE and log loss before and after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_spec

from taskfit.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    log_loss,
    temperature_probabilities,
)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("factor", [0.5, 2.0, 3.0])
def test_the_temperature_undoes_a_known_miscalibration(factor: float) -> None:
    """Labels drawn from softmax(z), a model that says softmax(factor * z): the temperature
    found is about `factor`, and at it the ECE and log loss fall while no prediction changes."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (20_000, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(z)])
    said = softmax(factor * z)
    t = fit_temperature(said, y)
    assert t == pytest.approx(factor, rel=0.05)
    fixed = temperature_probabilities(said, t)
    assert (fixed.argmax(axis=1) == said.argmax(axis=1)).all()
    assert expected_calibration_error(fixed, y) < expected_calibration_error(said, y)
    assert expected_calibration_error(fixed, y) < 0.01
    assert log_loss(fixed, y) < log_loss(said, y)


def test_a_calibrated_model_is_left_as_it_is() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.0, (20_000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(z)])
    assert fit_temperature(softmax(z), y) == 1.0


@pytest.mark.slow
def test_a_run_saves_its_temperature_in_the_model_and_reports_both(tmp_path: Path) -> None:
    import keras

    from taskfit.model.build import predict_named
    from taskfit.training.run import train

    spec = tiny_spec(tmp_path, "binary", epochs=30)
    result = train(spec, {"model.members": 1, "training.bagging": False}, tmp_path, verbose=0)
    facts = json.loads((result.run_dir / "run.json").read_text())
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    (t,) = facts["temperatures"].values()
    assert t > 0 and t != 1.0
    assert {"ece", "ece_uncalibrated", "log_loss", "log_loss_uncalibrated"} <= set(metrics)
    assert metrics["log_loss"] == pytest.approx(metrics["loss"], rel=1e-4)  # the saved model's
    saved = keras.saving.load_model(result.run_dir / "model.keras")
    inner = saved.get_layer("preprocess_and_body")  # the fitted model, inside the saved one
    assert inner.get_layer("output_temperature").scale == pytest.approx(1 / t)
    x = {"a": np.array([[0.1], [0.5], [0.9]], "float32"), "b": np.array([[0.2]] * 3, "float32")}
    p = predict_named(saved, x)
    assert p.shape == (3, 1) and ((p > 0) & (p < 1)).all()
