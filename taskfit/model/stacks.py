"""The layer stacks a body or a head is made of: hidden Dense layers (each member's at once for
a packed ensemble) and the table's output layer, with a regression head's way back to the
label's units."""

from __future__ import annotations

import keras

from taskfit.data.targets import INVERSE_OFFSET
from taskfit.feed.stats import Scale
from taskfit.model.ensemble import member_dense
from taskfit.plan.plan import Head
from taskfit.spec.keys import LayerSpec

BODY_SCALE = "target_scale"  # one task's Rescaling to the label's units, inside the body


def dense_stack(
    layers: tuple[LayerSpec, ...],
    prefix: str = "",
    members: int = 1,
    shared_input: bool = True,
    width: int = 0,
) -> list[keras.layers.Layer]:
    """Hidden Dense layers (each with its dropout), named dense_1, dense_2, ... after `prefix`.
    With several `members`, every layer holds all members' weights (ensemble.member_dense) on
    `width` features; the first reads one input for all of them if `shared_input`."""
    stack: list[keras.layers.Layer] = []
    for i, layer in enumerate(layers, start=1):
        name = f"{prefix}dense_{i}"
        if members == 1:
            stack.append(keras.layers.Dense(layer.units, activation=layer.activation, name=name))
        else:
            first = shared_input and i == 1
            inputs = width if i == 1 else layers[i - 2].units
            stack += member_dense(layer.units, layer.activation, name, members, inputs, first)
        if layer.dropout:
            stack.append(keras.layers.Dropout(layer.dropout, name=f"{prefix}dropout_{i}"))
    return stack


def output_stack(
    head: Head,
    target: Scale | None,
    dense_name: str,
    scale_name: str,
    members: int = 1,
    shared_input: bool = False,
    width: int = 0,
) -> list[keras.layers.Layer]:
    """The table's output layer; for regression with `target` (the training labels' mean and
    std), a fixed Rescaling after the linear output maps it to the label's units: the network
    learns a standardised target (fast, at any scale), while loss, metrics and the saved model's
    predictions stay in the label's own units. A head learned on a log scale (its
    target_transform; `target` is then on that scale) ends in the inverse, exp and an offset,
    and the last layer is named `scale_name`. `members`, `shared_input`, `width` (its inputs):
    as dense_stack's."""
    activation = None if head.output_activation == "linear" else head.output_activation
    if members == 1:
        stack = [keras.layers.Dense(head.output_units, activation=activation, name=dense_name)]
    else:
        units = head.output_units
        stack = member_dense(units, activation, dense_name, members, width, shared_input)
    if head.task == "regression" and target is not None:
        mean, std = target
        transform = head.target_transform
        scaled = scale_name if transform == "none" else learned_scale_name(scale_name, transform)
        stack.append(keras.layers.Rescaling(scale=std, offset=mean, name=scaled))
        if transform != "none":
            stack += label_units(transform, scale_name)
    return stack


def learned_scale_name(output: str, transform: str) -> str:
    """The Rescaling of a log-scale head (before its exp): `target_scale_log` for one task,
    `<head>_log` among several."""
    return f"{output}_{transform}"


def label_units(transform: str, name: str) -> list[keras.layers.Layer]:
    """The inverse of a target transform, as Keras layers (the saved model then loads without
    taskfit, and every export format has exp): exp, then the transform's offset."""
    offset = INVERSE_OFFSET[transform]
    if not offset:
        return [keras.layers.Activation("exponential", name=name)]
    return [
        keras.layers.Activation("exponential", name=f"{name}_exp"),
        keras.layers.Rescaling(scale=1.0, offset=offset, name=name),
    ]
