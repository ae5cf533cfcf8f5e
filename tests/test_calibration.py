"""Temperature scaling: the temperature found is the one that made the probabilities wrong,
calibration error falls and the predicted classes do not change; a trained run carries its
temperature in the saved model and reports ECE and log loss before and after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taskfit.feed.confidence import (
    expected_calibration_error,
    log_loss,
    output_at_temperature,
    reliability,
    temperature_probabilities,
)
from taskfit.training.calibration import fit_temperature, helps_unseen


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

    spec = overfit_spec(tmp_path)
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
    x = {c: np.array([[0.1], [0.5], [0.9]], "float32") for c in ("a", "b", "c")}
    p = predict_named(saved, x)
    assert p.shape == (3, 1) and ((p > 0) & (p < 1)).all()


def test_the_reliability_bins_give_the_calibration_error() -> None:
    """Two bins: confidence 0.95 right half the time, 0.65 right every time."""
    p = np.array([[0.95, 0.05]] * 4 + [[0.35, 0.65]] * 2)
    y = np.array([0, 0, 1, 1, 1, 1])
    bins = reliability(p, y)
    assert bins.confidence.tolist() == pytest.approx([0.65, 0.95])
    assert bins.accuracy.tolist() == [1.0, 0.5] and bins.rows.tolist() == [2, 4]
    assert bins.error == pytest.approx((2 * 0.35 + 4 * 0.45) / 6)
    assert expected_calibration_error(p, y) == bins.error


def test_a_temperature_and_its_inverse_give_the_probabilities_back() -> None:
    """What the reliability diagram relies on to draw the model as fitted from the saved one."""
    rng = np.random.default_rng(2)
    p = softmax(rng.normal(0, 2, (50, 3)))
    assert temperature_probabilities(temperature_probabilities(p, 1.7), 1 / 1.7) == pytest.approx(p)
    sigmoid = p[:, :1]
    back = output_at_temperature(output_at_temperature(sigmoid, 0.6), 1 / 0.6)
    assert back.shape == (50, 1) and back == pytest.approx(sigmoid)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        pytest.param({"training.refit": True}, id="refit"),
        pytest.param({"loss_weighting": "uncertainty"}, id="learned-weights"),
    ],
)
def test_refit_runs_and_learned_weights_are_calibrated_too(
    case: dict[str, object], tmp_path: Path
) -> None:
    """A refit run's temperature comes from the first fit's validation rows; a run with learned
    loss weights reports its calibrated metrics under the saved model's loss."""
    from taskfit.training.run import train

    settings: dict[str, object] = {"model.members": 1, "training.bagging": False, **case}
    spec = overfit_spec(tmp_path, heads="loss_weighting" in case)
    result = train(spec, settings, tmp_path, verbose=0)
    facts = json.loads((result.run_dir / "run.json").read_text())
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert facts["temperatures"], facts
    assert ("refit" in facts) == ("training.refit" in case)
    for head in facts["temperatures"]:
        ece = f"{head}_ece" if "loss_weighting" in case else "ece"
        assert {ece, ece.replace("ece", "ece_uncalibrated")} <= set(metrics)


ROWS = 1000  # validation: 160 rows, enough for the fifths that check a temperature


def overfit_spec(folder: Path, heads: bool = False) -> Path:
    """1000 rows whose label is a noisy side of a line (a quarter flipped), and a wide network
    trained 100 epochs without early stopping: it grows sure of the noise (over-confident), so
    a temperature above 1 helps rows it never saw. `heads`: a regression head on `b` too."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=ROWS), rng.normal(size=ROWS)
    y = ((a + 0.3 * b > 0) ^ (rng.random(ROWS) < 0.25)).astype(int)
    lines = ["a,b,c,y"] + [
        f"{u:.4f},{v:.4f},{u * v:.4f},{w}" for u, v, w in zip(a, b, y, strict=True)
    ]
    (folder / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = (
        "heads:\n  y: {task: binary, label: y}\n  b: {task: regression, label: b}\n"
        if heads
        else "task: binary\n"
    )
    spec = folder / "spec.yaml"
    spec.write_text(
        f"name: overfit\n{task}data: {{source: data.csv{'' if heads else ', label: y'}}}\n"
        "model: {layers: [{units: 128}, {units: 128}]}\n"
        "training: {epochs: 100, batch_size: 32, early_stopping: null}\n",
        encoding="utf-8",
    )
    return spec


def test_a_temperature_is_kept_only_where_it_helps_rows_it_was_not_fitted_on() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(0, 1.5, (3000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(z)])
    assert helps_unseen(softmax(2.5 * z), y)  # over-confident: T > 1 helps every fifth
    assert not helps_unseen(softmax(z), y)  # calibrated already: a fitted T only adds noise


def test_the_fifths_check_scores_each_fifth_at_the_temperature_fitted_not_rounded() -> None:
    """Every fifth holds the same rows, whose best T is near 1.03: within the 5% that `choose`
    rounds to 1, but the check itself compares the T as fitted (a rounded T scored each fifth
    at 1 and so never helped, a second 5% rule)."""
    rng = np.random.default_rng(5)
    z = rng.normal(0, 1.5, (20_000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(z)])
    said = softmax(1.02 * z)
    t = fit_temperature(said, y, keep_under=0.0)
    assert 1.0 < t < 1.05 and fit_temperature(said, y) == 1.0
    # each row five times in a row: the check deals rows to fifths by position, so each fifth
    # is the whole block
    assert helps_unseen(np.repeat(said, 5, axis=0), np.repeat(y, 5))


def test_the_reliability_diagram_draws_the_model_as_fitted_beside_the_saved_one() -> None:
    from taskfit.report.plots import reliability_diagram

    rng = np.random.default_rng(3)
    z = rng.normal(0, 1.5, (2000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(z)])
    fitted = softmax(2 * z)  # over-confident
    saved = temperature_probabilities(fitted, fit_temperature(fitted, y))
    (curve, _) = reliability_diagram(y, saved, fitted).axes
    said = [t.get_text() for t in curve.get_legend().get_texts()]
    ece = {name: float(text.rsplit(" ", 1)[1]) for name, text in (s.split(":") for s in said[1:])}
    assert list(ece) == ["as fitted", "saved model"] and ece["saved model"] < ece["as fitted"]
    (only, _) = reliability_diagram(y, saved, None).axes
    assert len(only.get_legend().get_texts()) == 2  # the diagonal and the saved model
