"""Losses that change during training: blends and schedules of Keras losses (keras.io/api/losses).

The mix in force lives in a Keras variable, read inside the compiled training step. A Python
number would be captured once when `tf.function` traces the step and silently keep the first
loss; a variable's new value is seen by the very next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from taskfit.plan.plan import Head


class MixedLoss(keras.losses.Loss):
    """sum_j mix[j] * scale[j] * loss_j(y_true, y_pred), per sample, then Keras's usual
    reduction. `mix` (the blend in force) may change between epochs; `scale` is fixed."""

    def __init__(
        self,
        terms: Sequence[keras.losses.Loss],
        mix: Sequence[float],
        name: str,
        scales: Sequence[float] | None = None,
    ):
        super().__init__(name=name)
        self.terms = list(terms)
        self.scales = [float(s) for s in scales] if scales is not None else [1.0] * len(terms)
        self.mix = keras.Variable(list(mix), trainable=False, dtype="float32", name=f"{name}_mix")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return sum(
            self.mix[j] * self.scales[j] * keras.ops.cast(term.call(y_true, y_pred), "float32")
            for j, term in enumerate(self.terms)
        )


FLOOR = {"log": 1e-30, "log1p": -1.0 + 1e-6}  # just inside each transform's domain


class OnLearnedScale(keras.losses.Loss):
    """`inner` on the scale a regression label is learned on (log or log1p: taskfit.data.targets):
    the labels and the predictions, which the model gives in the label's units, both go through
    the transform. The predictions are floored just inside its domain: an exp that underflows
    to 0 gives a large loss, not an infinite one."""

    def __init__(self, inner: keras.losses.Loss, transform: str, name: str):
        super().__init__(name=name)
        self.inner = inner
        self.transform = transform

    def call(self, y_true: Any, y_pred: Any) -> Any:
        to_scale = getattr(keras.ops, self.transform)  # keras.ops.log or keras.ops.log1p
        floor = FLOOR[self.transform]
        true = to_scale(keras.ops.maximum(keras.ops.cast(y_true, "float32"), floor))
        return self.inner.call(true, to_scale(keras.ops.maximum(y_pred, floor)))


class LossSchedule(keras.callbacks.Callback):
    """At each epoch's start, sets every scheduled head's mix to the stage in force, and keeps
    what was in force per epoch (history.csv's `active_loss` columns)."""

    def __init__(self, heads: dict[str, tuple[Head, MixedLoss]]):
        super().__init__()
        self.heads = heads
        self.active: dict[str, list[str]] = {name: [] for name in heads}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, (head, loss) in self.heads.items():
            stage = head.loss.stage_at(epoch)
            loss.mix.assign(list(head.loss.stages[stage].weights))
            self.active[name].append(head.loss.describe(stage))


def last_switch(heads: Sequence[Head]) -> int:
    """The epoch (0-based) the last scheduled stage starts: losses before it are not comparable
    with the final one, so early stopping watches from there on."""
    ends = [
        stage.until_epoch
        for head in heads
        for stage in head.loss.stages
        if stage.until_epoch is not None
    ]
    return max(ends, default=0)


class LossState(keras.layers.Layer):
    """Holds the variables the loss reads and the model does not own (a blend's mix, dwa's
    weights) as the training model's own state. Keras's JAX trainer passes the model's
    variables into the compiled step explicitly; a variable outside the model is a constant
    there, traced once, so a schedule kept its first loss (measured on Keras 3.15: the loss did
    not move at the switch until the variable was held here)."""

    def __init__(self, held: Sequence[keras.Variable]):
        super().__init__(name="loss_state")
        self.held = list(held)
        # nothing to build (it holds variables made elsewhere): unbuilt, it made Keras warn
        # that the uncertainty-weighted wrapper "has unbuilt state" at every fit
        self.built = True


def hold_loss_state(model: keras.Model, losses: dict[str, Any], extra: Sequence[Any] = ()) -> None:
    """The losses' mixes and `extra` variables (loss weights) as `model`'s state."""
    held = [loss.mix for loss in losses.values() if isinstance(loss, MixedLoss)] + list(extra)
    if held:
        model.loss_state = LossState(held)
