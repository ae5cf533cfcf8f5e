"""The small-table additions to the network (recipes/small_tables.yaml): a periodic embedding of
the numeric columns, and a packed ensemble of several bodies trained together.

Both are built from Keras's own layers and operations, so the saved model loads without taskfit.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from taskfit.recipe.table import Periodic


def periodic_embedding(features: Any, numbers: int, settings: Periodic, prefix: str) -> Any:
    """The first `numbers` (standardised numeric) columns each become sin and cos of learned
    frequencies, then a Dense(relu) of their own (PLR, Gorishniy et al. 2022); the columns after
    them (gap indicators, categories) pass as they are. A step in one column (an hour when the
    load changes) is then a few units away for the layers above, not a sharp bend to learn."""
    numeric, rest = features[:, :numbers], features[:, numbers:]
    waves = keras.layers.EinsumDense(
        "bf,fk->bfk",
        (numbers, settings.frequencies),
        kernel_initializer=keras.initializers.RandomNormal(stddev=settings.sigma),
        name=f"{prefix}frequencies",
    )(numeric)
    waves = waves * (2 * np.pi)
    both = keras.layers.Concatenate(name=f"{prefix}sin_cos")(
        [keras.ops.sin(waves), keras.ops.cos(waves)]
    )
    embedded = keras.layers.EinsumDense(
        "bfk,fkd->bfd",
        (numbers, settings.units),
        bias_axes="fd",
        activation="relu",
        name=f"{prefix}periodic",
    )(both)
    flat = keras.layers.Flatten(name=f"{prefix}periodic_flat")(embedded)
    if features.shape[-1] == numbers:
        return flat
    return keras.layers.Concatenate(name=f"{prefix}embedded")([flat, rest])


class PackedEnsemble(keras.Model):
    """The training view of a model with several members: `members` maps the inputs to every
    member's output, stacked on axis 1. Each member gets the compiled loss on the same batch and
    the model minimises their mean (averaging the outputs before one loss would train one wide
    model, and lost a point in bench/bench_mlp_variants.py); the metrics are on the averaged
    output, which is what the saved model predicts."""

    def __init__(self, members: keras.Model, **kwargs: Any):
        super().__init__(**kwargs)
        self.members = members

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.members(inputs, training=training)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        count = keras.tree.flatten(y_pred)[0].shape[1]
        total = 0
        for k in range(count):
            member = keras.tree.map_structure(lambda stacked: stacked[:, k], y_pred)  # noqa: B023
            total += super().compute_loss(x, y, member, sample_weight, training)
        return total / count

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        mean = keras.tree.map_structure(lambda stacked: keras.ops.mean(stacked, axis=1), y_pred)
        return super().compute_metrics(x, y, mean, sample_weight)
