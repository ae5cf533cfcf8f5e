"""Plan -> an uncompiled keras.Sequential: input, normalization, hidden layers, table output."""

from __future__ import annotations

import keras
import numpy as np

from taskfit.plan import Plan


def feature_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per column; a column constant in training gets variance 1, since Keras
    would divide by ~1e-7 and turn any other value at test time into ~1e7."""
    mean, variance = x.mean(axis=0), x.var(axis=0)
    return mean, np.where(variance > 1e-12, variance, 1.0)


def build_model(
    plan: Plan,
    n_features: int,
    adapt_on: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> keras.Sequential:
    """The normalization layer takes its statistics from `adapt_on` (the training split only).

    For regression with `target` (the training labels), a fixed Rescaling after the linear output
    maps it to the label's units: the network learns a standardised target (fast, at any scale),
    while loss, metrics and the saved model's predictions stay in the label's own units.
    """
    if adapt_on is not None:
        mean, variance = feature_statistics(adapt_on)
        normalization = keras.layers.Normalization(
            mean=mean, variance=variance, name="normalization"
        )
    else:
        normalization = keras.layers.Normalization(name="normalization")
    stack: list[keras.layers.Layer] = [
        keras.Input(shape=(n_features,), name="features"),
        normalization,
    ]
    for i, layer in enumerate(plan.layers, start=1):
        stack.append(
            keras.layers.Dense(layer.units, activation=layer.activation, name=f"dense_{i}")
        )
        if layer.dropout:
            stack.append(keras.layers.Dropout(layer.dropout, name=f"dropout_{i}"))
    activation = None if plan.output_activation == "linear" else plan.output_activation
    stack.append(keras.layers.Dense(plan.output_units, activation=activation, name="output"))
    if plan.task == "regression" and target is not None:
        std = float(target.std()) or 1.0
        stack.append(
            keras.layers.Rescaling(scale=std, offset=float(target.mean()), name="target_scale")
        )
    return keras.Sequential(stack, name=f"taskfit_{plan.task}")
