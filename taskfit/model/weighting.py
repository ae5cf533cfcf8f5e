"""How several heads' losses make the one total the optimizer minimises (Keras: loss_weights).

fixed        total = sum_i w_i * L_i with the spec's loss_weight w_i: Keras's own
             compile(loss={...}, loss_weights={...}).
dwa          the same, with w_i in variables that `DynamicWeightAverage` sets before each epoch
             (Liu, Johns & Davison, CVPR 2019): w_i = K * softmax_i(r_i / T), where
             r_i = L_i(t-1) / L_i(t-2) is the ratio of head i's last two epoch losses; w_i = 1
             for the first two epochs.
uncertainty  total = sum_i c_i * exp(-s_i) * L_i + r_i * s_i, with one learned log-variance
             s_i per head (Kendall, Gal & Cipolla, CVPR 2018): c = 1/2, r = 1/2 for regression
             heads (a Gaussian likelihood), c = 1, r = 1/2 for classification heads; s_i is
             trained with the model by the same optimizer, so a noisy head is weighed down.

pcgrad and     each head's gradient changed before the sum, in the compiled step
gradnorm       (taskfit.model.gradients).

Every run with heads logs each head's effective weight per epoch as `<head>_weight`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from taskfit.model.gradients import HeadGradients
from taskfit.model.weighted import UncertaintyWeighted, WeightedHeads
from taskfit.plan.outputs import keras_form, logged, several
from taskfit.plan.plan import Head, Plan


def dwa_weights(previous: list[dict[str, float]], temperature: float) -> dict[str, float] | None:
    """DWA's weights from the last two epochs' losses (None until there are two)."""
    if len(previous) < 2:
        return None
    before, last = previous[-2], previous[-1]
    names = list(last)
    ratios = np.array([last[n] / before[n] if before[n] else 1.0 for n in names])
    scaled = np.exp((ratios - ratios.max()) / temperature)
    weights = len(names) * scaled / scaled.sum()
    return dict(zip(names, (float(w) for w in weights), strict=True))


class HeadWeights(keras.callbacks.Callback):
    """Logs `<head>_weight` each epoch (the weights in force during it), then lets `update`
    set the next epoch's weights from the logs (DWA)."""

    def __init__(
        self,
        read: Callable[[], dict[str, float]],
        update: Callable[[dict[str, Any]], None] | None = None,
        restart: Callable[[dict[str, list[Any]]], None] | None = None,
        variables: Sequence[keras.Variable] = (),
    ):
        super().__init__()
        self.read, self.update, self.restart = read, update, restart
        self.variables = list(variables)  # the weights as variables the loss reads (dwa)
        self.final: dict[str, float] = {}

    def resume(self, previous: dict[str, list[Any]]) -> None:
        """Training restarts after the epochs in `previous` (history.csv's columns)."""
        if self.restart:
            self.restart(previous)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        self.final = self.read()
        logs.update({logged(name, "weight", multi=True): w for name, w in self.final.items()})
        if self.update:
            self.update(logs)


class DynamicWeightAverage:
    """The dwa weights as Keras variables (`compile(loss_weights=...)` reads them in the step)
    and the update that sets them from each epoch's training losses."""

    def __init__(self, heads: list[Head], temperature: float):
        self.temperature = temperature
        self.variables = {
            head.name: keras.Variable(1.0, trainable=False, name=f"{head.name}_dwa_weight")
            for head in heads
        }
        self.losses: list[dict[str, float]] = []

    def read(self) -> dict[str, float]:
        return {n: float(keras.ops.convert_to_numpy(v)) for n, v in self.variables.items()}

    def update(self, logs: dict[str, Any]) -> None:
        self.losses.append({n: float(logs[logged(n, "loss", multi=True)]) for n in self.variables})
        weights = dwa_weights(self.losses, self.temperature)
        for name, weight in (weights or {}).items():
            self.variables[name].assign(weight)

    def restart(self, previous: dict[str, list[Any]]) -> None:
        """Resuming: the earlier epochs' losses, and the weights they give the next epoch."""
        epochs = len(previous.get("loss", []))
        self.losses = [
            {n: float(previous[logged(n, "loss", multi=True)][i]) for n in self.variables}
            for i in range(epochs)
        ]
        for name, weight in (dwa_weights(self.losses, self.temperature) or {}).items():
            self.variables[name].assign(weight)


def compile_heads(
    net: keras.Model,
    plan: Plan,
    optimizer: Any,
    losses: dict[str, Any],
    steps_per_execution: int = 1,
) -> tuple[keras.Model, HeadWeights | None]:
    """Compile a model with one output per head under the plan's weighting: the model to fit
    (`net`, or the uncertainty wrapper around it) and the callback that logs the weights (none
    for one head, which has nothing to weigh)."""
    from taskfit.model.optim import compiled_metrics

    metrics = compiled_metrics(plan.heads)
    method = plan.weighting.name
    if method in ("uncertainty", "pcgrad", "gradnorm"):
        if method == "uncertainty":
            model: WeightedHeads = UncertaintyWeighted(net, list(plan.heads), losses)
        else:
            alpha = float(plan.weighting.params.get("alpha", 0.0))
            model = HeadGradients(net, list(plan.heads), losses, method, alpha)
        model.compile(optimizer=optimizer, metrics=metrics, steps_per_execution=steps_per_execution)
        return model, HeadWeights(model.weights_now)
    loss = keras_form(plan.heads, losses)
    if method == "dwa":
        dwa = DynamicWeightAverage(list(plan.heads), float(plan.weighting.params["temperature"]))
        net.compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=dwa.variables,
            metrics=metrics,
            steps_per_execution=steps_per_execution,
        )
        variables = list(dwa.variables.values())
        return net, HeadWeights(dwa.read, dwa.update, dwa.restart, variables)
    fixed = {head.name: head.weight for head in plan.heads}
    weights = keras_form(plan.heads, fixed)
    net.compile(
        optimizer=optimizer,
        loss=loss,
        loss_weights=weights,
        metrics=metrics,
        steps_per_execution=steps_per_execution,
    )
    return net, HeadWeights(lambda: dict(fixed)) if several(plan.heads) else None
