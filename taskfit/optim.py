"""Plan -> Keras loss, optimizer (with its learning-rate schedule) and metrics objects."""

from __future__ import annotations

from typing import Any

import keras

from taskfit.plan import Plan


def _set(params: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional parameters (null), so Keras applies its own defaults."""
    return {k: v for k, v in params.items() if v is not None}


def make_loss(plan: Plan) -> keras.losses.Loss:
    loss_class = getattr(keras.losses, plan.loss.keras_class)
    loss: keras.losses.Loss = loss_class(**_set(plan.loss.params))
    return loss


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


def make_metrics(plan: Plan) -> list[Any]:
    """Keras resolves the names itself, so `accuracy` becomes the accuracy that fits the loss."""
    return list(plan.metrics)
