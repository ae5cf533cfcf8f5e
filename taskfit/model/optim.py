"""Plan -> Keras loss, optimizer (with its learning-rate schedule) and metrics objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from taskfit.plan.choices import Built
from taskfit.plan.outputs import keras_form
from taskfit.plan.plan import Head, Plan


def _set(params: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional parameters (null), so Keras applies its own defaults."""
    return {k: v for k, v in params.items() if v is not None}


def keras_loss(built: Built) -> keras.losses.Loss:
    loss_class = getattr(keras.losses, built.keras_class)
    loss: keras.losses.Loss = loss_class(**_set(built.params))
    return loss


def make_loss(head: Head, stage: int = 0, target_std: float | None = None) -> keras.losses.Loss:
    """The head's loss: Keras's own for a plain loss; a blend or schedule mixes Keras losses with
    weights held in a variable (see taskfit.model.losses), starting at `stage`; for a label
    learned on a log scale (the head's target_transform), on that scale.

    `target_std` (a regression head among several): each loss is divided by the training
    target's std to the power of its units (mse / std**2, mae / std), which is the loss on the
    standardised target. Every head's loss then starts near 1 whatever the label's units, so
    loss weights mean what they say; metrics stay in the label's units.
    """
    loss = _loss_in_label_units(head, stage, target_std)
    if head.target_transform == "none":
        return loss
    from taskfit.model.losses import OnLearnedScale

    return OnLearnedScale(loss, head.target_transform, name=f"{head.name}_{loss.name}")


def _loss_in_label_units(head: Head, stage: int, target_std: float | None) -> keras.losses.Loss:
    single = head.loss.single
    if single is not None and target_std is None:
        return keras_loss(single)
    from taskfit.model.losses import MixedLoss

    std = target_std or 1.0
    return MixedLoss(
        [keras_loss(term) for term in head.loss.terms],
        head.loss.stages[stage].weights,
        scales=[std ** -float(term.error_power) for term in head.loss.terms],
        name=f"{head.name}_loss",
    )


def make_losses(
    plan: Plan, targets: Mapping[str, tuple[float, float]], stage: int = 0
) -> dict[str, keras.losses.Loss]:
    """Every head's loss by name, at `stage`; `targets`: each regression head's training target
    (mean, std). Among several heads a regression head's loss is on its standardised target
    (see make_loss); one task's loss stays in the label's units."""
    return {
        head.name: make_loss(
            head,
            stage,
            targets[head.name][1] if plan.multi and head.task == "regression" else None,
        )
        for head in plan.heads
    }


def make_schedule(plan: Plan) -> keras.optimizers.schedules.LearningRateSchedule | None:
    if plan.schedule is None:
        return None
    schedule_class = getattr(keras.optimizers.schedules, plan.schedule.keras_class)
    schedule: keras.optimizers.schedules.LearningRateSchedule = schedule_class(
        **_set(plan.schedule.params)
    )
    return schedule


def make_optimizer(plan: Plan) -> keras.optimizers.Optimizer:
    params = _set(plan.optimizer.params)
    schedule = make_schedule(plan)
    if schedule is not None:
        params["learning_rate"] = schedule
    optimizer_class = getattr(keras.optimizers, plan.optimizer.keras_class)
    optimizer: keras.optimizers.Optimizer = optimizer_class(**params)
    return optimizer


def make_metrics(head: Head) -> list[Any]:
    """Keras resolves the names itself, so `accuracy` becomes the accuracy that fits the loss."""
    return list(head.metrics)


def compiled_metrics(heads: Sequence[Head]) -> Any:
    """Every head's metrics, in the form Keras's compile takes them (one head: its list)."""
    return keras_form(heads, {head.name: make_metrics(head) for head in heads})


class LearningRateLog(keras.callbacks.Callback):
    """Logs `learning_rate`, the rate at each epoch's first step, when a schedule or a plateau
    cut changes it: history.csv and the learning-curve plot then show it."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rate = self.model.optimizer.learning_rate
        self.rate = float(keras.ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.rate
