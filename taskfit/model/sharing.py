"""How several heads share the hidden layers of `model.layers` (model.sharing,
recipes/sharing.yaml), as plain Keras layers in the saved model:

hard   one trunk of the layers, then each head's own layers and output (Caruana 1997).
soft   a tower of the layers per head, each with its own weights; training adds
       strength * sum over pairs of towers of the squared distance between corresponding
       weights to the loss (Duong, Cohn, Bird & Cook, ACL 2015), so towers stay alike where
       the heads agree. Only training sees the penalty (TiedTowers): the saved model is the
       towers alone.
mmoe   `experts` networks of the layers (packed: one einsum a layer, as a packed ensemble's
       members) read the inputs; each head mixes their outputs by a softmax gate of its own on
       the inputs (Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018).

SharingLog writes, each epoch, the soft penalty (`sharing_penalty`) or each head's mean gate
weight per expert (`<head>_gate_<k>`) into the epoch's logs, so history.csv keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from taskfit.feed.stats import Scale
from taskfit.model.stacks import dense_stack, output_stack
from taskfit.plan.outputs import SHARING_PENALTY, gate_logged
from taskfit.plan.plan import Plan

GATE_ROWS = 2048  # training rows the logged gate weights are the mean over


def build_heads(plan: Plan, features: Any, targets: dict[str, Scale]) -> dict[str, Any]:
    """Head name -> its output: the shared part (by plan.sharing), then the head's own layers
    and output layer, which carries the head's name (Keras keys losses and metrics by it)."""
    shared = {"hard": _trunk, "soft": _towers, "mmoe": _experts}[plan.sharing.name]
    inputs = shared(plan, features)
    outputs = {}
    for head in plan.heads:
        x = inputs[head.name]
        stack = dense_stack(head.layers, f"{head.name}_")
        dense = f"{head.name}_output" if head.task == "regression" else head.name
        stack += output_stack(head, targets.get(head.name), dense, head.name)
        for layer in stack:
            x = layer(x)
        outputs[head.name] = x
    return outputs


def tower_name(head: str) -> str:
    return f"{head}_tower"


def gate_name(head: str) -> str:
    return f"{head}_gate"


def _trunk(plan: Plan, features: Any) -> dict[str, Any]:
    shared = features
    if plan.layers:
        shared = keras.Sequential(dense_stack(plan.layers), name="trunk")(features)
    return {head.name: shared for head in plan.heads}


def _towers(plan: Plan, features: Any) -> dict[str, Any]:
    return {
        head.name: keras.Sequential(
            dense_stack(plan.layers, f"{tower_name(head.name)}_"), name=tower_name(head.name)
        )(features)
        for head in plan.heads
    }


def _experts(plan: Plan, features: Any) -> dict[str, Any]:
    """Every expert's output at once, (batch, experts, units), and each head's mix of them."""
    count = int(plan.sharing.params["experts"])
    stack = dense_stack(
        plan.layers, "experts_", members=count, shared_input=True, width=int(features.shape[-1])
    )
    experts = keras.Sequential(stack, name="experts")(features)
    mixed = {}
    for head in plan.heads:
        gate = keras.layers.Dense(count, activation="softmax", name=gate_name(head.name))
        weights = keras.layers.Reshape((count, 1), name=f"{head.name}_gate_per_expert")
        # a weighted sum over the expert axis: elementwise ops, which every export converts
        mixed[head.name] = keras.ops.sum(weights(gate(features)) * experts, axis=1)
    return mixed


def tower_weights(fit: keras.Model, plan: Plan) -> list[list[keras.Variable]]:
    """Soft sharing: for each weight of a tower (a layer's kernel, its bias), that weight in
    every tower, in the heads' order."""
    towers = [fit.get_layer(tower_name(head.name)) for head in plan.heads]
    return [list(same) for same in zip(*(t.trainable_weights for t in towers), strict=True)]


def tower_distance(groups: list[list[Any]]) -> Any:
    """Sum over corresponding weights of the squared L2 distances between every pair of
    towers: sum over pairs ||a - b||^2 = K * sum ||v - mean||^2 for K towers."""
    total = 0.0
    for group in groups:
        stacked = keras.ops.stack([v.value for v in group])  # tf.stack takes no Keras Variable
        centred = stacked - keras.ops.mean(stacked, axis=0, keepdims=True)
        total = total + len(group) * keras.ops.sum(keras.ops.square(centred))
    return total


class SoftPenalty:
    """What soft sharing adds to the loss: strength * tower_distance of the towers' weights
    as they are (training adds it each step, SharingLog logs it each epoch)."""

    def __init__(self, fit: keras.Model, plan: Plan):
        self.groups = tower_weights(fit, plan)
        self.strength = float(plan.sharing.params["strength"])

    def __call__(self) -> Any:
        return self.strength * tower_distance(self.groups)


class TiedTowers(keras.Model):
    """The training view under soft sharing: `net`, with the penalty added to the loss at
    every step (Keras adds what `add_loss` gives to the compiled loss, and to the validation
    loss, as it does a kernel regulariser's)."""

    def __init__(self, net: keras.Model, penalty: SoftPenalty, **kw: Any):
        super().__init__(**kw)
        self.net = net
        self.penalty = penalty

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        outputs = self.net(inputs, training=training)
        self.add_loss(self.penalty())
        return outputs


def training_view(net: keras.Model, fit: keras.Model, plan: Plan) -> keras.Model:
    """The model to compile and fit: `net`, or under soft sharing net with the penalty."""
    if plan.sharing.name != "soft":
        return net
    return TiedTowers(net, SoftPenalty(fit, plan), name=net.name)


class SharingLog(keras.callbacks.Callback):
    """Puts, at each epoch's end, what the sharing does into the epoch's logs: the soft
    penalty as the loss added it, or each head's gate weight per expert averaged over a
    sample of training rows (`rows` gives the fit model's inputs for them)."""

    def __init__(self, fit: keras.Model, plan: Plan, rows: Callable[[], Any]):
        super().__init__()
        self.penalty = SoftPenalty(fit, plan) if plan.sharing.name == "soft" else None
        self.gates, self.rows = None, None
        if plan.sharing.name == "mmoe":
            gates = {h.name: fit.get_layer(gate_name(h.name)).output for h in plan.heads}
            self.gates, self.rows = keras.Model(fit.input, gates, name="gates"), rows()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        logs.update(self.now())

    def now(self) -> dict[str, float]:
        """The logged values for the weights as they are."""
        if self.penalty is not None:
            return {SHARING_PENALTY: float(keras.ops.convert_to_numpy(self.penalty()))}
        if self.gates is None:
            return {}
        weights = self.gates(self.rows, training=False)
        found = {}
        for head, gate in weights.items():
            mean = np.asarray(keras.ops.convert_to_numpy(gate)).mean(axis=0)
            found.update({gate_logged(head, k + 1): float(w) for k, w in enumerate(mean)})
        return found


def sharing_log(fit: keras.Model, plan: Plan, rows: Callable[[], Any]) -> SharingLog | None:
    """The log of what the sharing does, for soft and mmoe (hard has nothing to log)."""
    return SharingLog(fit, plan, rows) if plan.sharing.name != "hard" else None
