"""Training views that compute each head's loss themselves and weigh them into the total: the
base (`WeightedHeads`) and the uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).
Only training sees them: the saved model is the wrapped `net` alone, with none of their state.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from taskfit.plan.outputs import logged
from taskfit.plan.plan import Head


class WeightedHeads(keras.Model):
    """Trains `net` (the model with named head outputs) on a total its subclass makes of the
    heads' losses (`weighted`); logs `<head>_loss`, each head's own loss unweighted, as Keras
    logs it for fixed weights, and adds what the wrapped model adds (`add_loss`: the soft
    sharing penalty)."""

    def __init__(self, net: keras.Model, heads: list[Head], losses: dict[str, Any], name: str):
        super().__init__(name=name)
        self.net = net
        self.head_names = [head.name for head in heads]
        self.head_losses = losses
        self.trackers = [
            keras.metrics.Mean(name=logged(name, "loss", multi=True)) for name in self.head_names
        ]

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.net(inputs, training=training)

    def head_values(self, y: Any, y_pred: Any, sample_weight: Any) -> list[Any]:
        """Each head's loss on the batch, in the heads' order (and logged)."""
        values = []
        for i, name in enumerate(self.head_names):
            value = self.head_losses[name](y[name], y_pred[name], sample_weight)
            self.trackers[i].update_state(value)
            values.append(value)
        return values

    def weighted(self, values: list[Any]) -> Any:
        """The total of the heads' losses."""
        raise NotImplementedError

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        total = self.weighted(self.head_values(y, y_pred, sample_weight))
        return total + sum(self.losses) if self.losses else total

    def weights_now(self) -> dict[str, float]:
        """Each head's effective weight now, as `<head>_weight` logs it."""
        raise NotImplementedError


class UncertaintyWeighted(WeightedHeads):
    """total = sum_i c_i * exp(-s_i) * L_i + s_i / 2, with one learned log-variance s_i per head
    trained by the same optimizer; c_i = 1/2 for regression heads (a Gaussian likelihood), 1 for
    classification heads."""

    def __init__(self, net: keras.Model, heads: list[Head], losses: dict[str, Any]):
        super().__init__(net, heads, losses, name="uncertainty_weighted")
        regression = np.array([head.task == "regression" for head in heads])
        self.scale = np.where(regression, 0.5, 1.0).astype("float32")  # c_i
        self.log_variance = self.add_weight(
            shape=(len(heads),), initializer="zeros", name="log_variance"
        )

    def weighted(self, values: list[Any]) -> Any:
        total = keras.ops.sum(0.5 * self.log_variance)  # r_i * s_i, r = 1/2 for every head
        precision = keras.ops.exp(-self.log_variance)
        for i, value in enumerate(values):
            total = total + self.scale[i] * precision[i] * value
        return total

    def weights_now(self) -> dict[str, float]:
        values = self.scale * np.exp(-keras.ops.convert_to_numpy(self.log_variance))
        return dict(zip(self.head_names, (float(v) for v in values), strict=True))
