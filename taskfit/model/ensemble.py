"""The small-table additions to the network (recipes/small_tables.yaml): a periodic or
piecewise-linear embedding of the numeric columns, and an ensemble of several bodies trained
together as one network: packed (every weight carries a member axis) or TabM-mini (shared
hidden layers, a scaling vector and an output layer per member).

Both are built from Keras's own layers and operations, so the saved model loads without taskfit.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def member_initializer(inputs: int, outputs: int) -> Any:
    """Glorot uniform for one member's (inputs, outputs) slice of a packed kernel, with its bound
    written out: in an EinsumDense Keras counts the member axis into the fan-out, which would
    start each member smaller than the same layer alone (tests/test_small_tables.py)."""
    limit = float(np.sqrt(6 / (inputs + outputs)))
    return keras.initializers.RandomUniform(-limit, limit)


def member_dense(
    units: int, activation: str | None, name: str, members: int, inputs: int, shared_input: bool
) -> list[keras.layers.Layer]:
    """A Dense layer for every member at once: one kernel of shape (members, inputs, units) and
    one einsum, where separate members would be `members` small matrix products a step. The
    input is (batch, inputs) when every member reads the same features, else (batch, members,
    inputs); the output is (batch, members, units)."""
    source = "bi" if shared_input else "bki"
    initializer = member_initializer(inputs, units)
    if units == 1:  # with a bias, TFLite's converter fails on "...,kio->bko" for one unit
        dense = keras.layers.EinsumDense(
            f"{source},ki->bk",
            (members,),
            activation=activation,
            bias_axes="k",
            kernel_initializer=initializer,
            name=name,
        )
        return [dense, keras.layers.Reshape((members, 1), name=f"{name}_units")]
    dense = keras.layers.EinsumDense(
        f"{source},kio->bko",
        (members, units),
        activation=activation,
        bias_axes="ko",
        kernel_initializer=initializer,
        name=name,
    )
    return [dense]


def member_scaling(members: int, width: int, shared_input: bool) -> list[keras.layers.Layer]:
    """TabM-mini's one adapter: each member multiplies the (shared) features by a vector of its
    own, so members that share every later weight still see different inputs. Started from a
    standard normal, as TabM starts it after a numeric embedding. The input is (batch, width),
    repeated for each member, or already (batch, members, width)."""
    stack: list[keras.layers.Layer] = []
    if shared_input:
        stack.append(keras.layers.RepeatVector(members, name="features_per_member"))
    stack.append(
        keras.layers.EinsumDense(
            "bki,ki->bki",
            (members, width),
            kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="member_scaling",
        )
    )
    return stack


def periodic_embedding(
    features: Any, numbers: int, members: int, *, frequencies: int, sigma: float, units: int
) -> Any:
    """The first `numbers` (standardised numeric) columns each become sin and cos of learned
    frequencies, then a Dense(relu) of their own (PLR, Gorishniy et al. 2022); the columns after
    them (gap indicators, categories) pass as they are. A step in one column (an hour when the
    load changes) is then a few units away for the layers above, not a sharp bend to learn.
    With several members each has its own frequencies and Dense: the output is then (batch,
    members, features), the columns after the numeric ones repeated for each member."""
    numeric, rest = features[:, :numbers], features[:, numbers:]
    f, q, d = numbers, frequencies, units
    # every member's frequencies side by side in one kernel: an einsum with the member axis in
    # the output ("bf,mfk->bmfk") does not convert to TFLite, this one does
    waves = keras.layers.EinsumDense(
        "bf,fk->bfk",
        (f, members * q),
        kernel_initializer=keras.initializers.RandomNormal(stddev=sigma),
        name="frequencies",
    )(numeric)
    if members > 1:
        waves = keras.layers.Reshape((f, members, q), name="frequencies_per_member")(waves)
    waves = waves * (2 * np.pi)
    both = keras.layers.Concatenate(name="sin_cos")([keras.ops.sin(waves), keras.ops.cos(waves)])
    m = "m" if members > 1 else ""  # the member axis, in the weights and the output
    lead = (members,) if members > 1 else ()
    embedded = keras.layers.EinsumDense(
        f"bf{m}k,f{m}kd->b{m}fd",
        (*lead, f, d),
        bias_axes=f"{m}fd",
        activation="relu",
        # as the one member's layer alone: Keras's fans there are the sin/cos in, f x d out
        kernel_initializer=member_initializer(2 * q, f * d) if members > 1 else "glorot_uniform",
        name="periodic",
    )(both)
    flat = keras.layers.Reshape((*lead, f * d), name="periodic_flat")(embedded)
    if features.shape[-1] == numbers:
        return flat
    if members > 1:
        rest = keras.layers.RepeatVector(members, name="rest_per_member")(rest)
    return keras.layers.Concatenate(name="embedded")([flat, rest])


def piecewise_encoding(numeric: Any, edges: list[np.ndarray]) -> Any:
    """(batch, f) -> (batch, f, bins): each column's piecewise-linear encoding (PLE, Gorishniy
    et al. 2022), [1, ..., 1, where x sits in its bin, 0, ..., 0] over the bins its `edges`
    bound, below the first bin and above the last unbounded. A column of fewer bins than the
    widest keeps its last bin in the last place and zeros between (rtdl_num_embeddings' layout),
    so one affine map and three clips encode every column. Keras operations on constants: the
    saved model needs no custom layer."""
    bins = max(len(e) - 1 for e in edges)
    scale = np.zeros((len(edges), bins), dtype="float32")
    shift = np.zeros_like(scale)
    for i, e in enumerate(edges):
        if len(e) < 2:  # one value in training: nothing to encode
            continue
        width = np.diff(e)
        at = [*range(len(width) - 1), bins - 1]  # the leading bins, then the last at the end
        scale[i, at] = 1.0 / width
        shift[i, at] = -e[:-1] / width
    z = keras.ops.expand_dims(numeric, -1) * scale + shift
    if bins == 1:
        return keras.ops.maximum(z, 0.0)
    return keras.ops.concatenate(
        [
            keras.ops.minimum(z[..., :1], 1.0),
            keras.ops.clip(z[..., 1:-1], 0.0, 1.0),
            keras.ops.maximum(z[..., -1:], 0.0),
        ],
        axis=-1,
    )


def piecewise_embedding(features: Any, numbers: int, edges: list[np.ndarray], units: int) -> Any:
    """The first `numbers` (standardised numeric) columns each become a linear embedding of the
    value plus a learned map of its piecewise-linear encoding (rtdl_num_embeddings' version B,
    as TabM uses it: that map starts at zero, so training starts from the linear embedding and
    learns the bends); the columns after them pass as they are. One embedding, which every
    member reads."""
    numeric, rest = features[:, :numbers], features[:, numbers:]
    f, d = numbers, units
    linear = keras.layers.EinsumDense(
        "bf,fd->bfd",
        (f, d),
        bias_axes="fd",
        kernel_initializer=keras.initializers.RandomUniform(-(d**-0.5), d**-0.5),
        bias_initializer=keras.initializers.RandomUniform(-(d**-0.5), d**-0.5),
        name="piecewise_linear",
    )(numeric)
    bends = keras.layers.EinsumDense(
        "bft,ftd->bfd", (f, d), kernel_initializer="zeros", name="piecewise"
    )(piecewise_encoding(numeric, edges))
    embedded = keras.layers.Add(name="piecewise_sum")([linear, bends])
    flat = keras.layers.Reshape((f * d,), name="piecewise_flat")(embedded)
    if features.shape[-1] == numbers:
        return flat
    return keras.layers.Concatenate(name="embedded")([flat, rest])


class PackedEnsemble(keras.Model):
    """The training view of a model with several members: `members` maps the inputs to every
    member's output, stacked on axis 1. Each member gets the compiled loss on the same batch and
    the model minimises their mean (averaging the outputs before one loss would train one wide
    model, and lost a point in bench/bench_mlp_variants.py); the metrics are on the averaged
    output, which is what the saved model predicts.

    A sample weight of shape (batch, members) weighs each member's loss by its own column, and
    the metrics then read the members' outputs averaged by those weights: with the weights of
    taskfit.feed.folds, validation scores each row by the member held out of it."""

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
        """The compiled loss once, over every (row, member) pair: each member's rows follow
        its targets and weights, and the mean over the pairs is the mean of the members' mean
        losses (the same history to float rounding). One loss in place of one per member: on
        credit_data the traced train step went from 1,725 ops to 1,234, and tracing is most of
        a small table's first epoch (docs/benchmarks.md, "One loss for the members")."""
        count = keras.tree.flatten(y_pred)[0].shape[1]

        def each_member(values: Any) -> Any:  # row b once per member, as _member_rows lays them
            return keras.ops.repeat(values, count, axis=0)

        pairs = keras.tree.map_structure(_member_rows, y_pred)
        if sample_weight is None:
            weights = None
        elif _per_member(sample_weight, count):
            weights = keras.ops.reshape(sample_weight, (-1,))
        else:
            weights = each_member(sample_weight)
        targets = keras.tree.map_structure(each_member, y)
        return super().compute_loss(x, targets, pairs, weights, training)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        count = keras.tree.flatten(y_pred)[0].shape[1]
        if not _per_member(sample_weight, count):
            mean = keras.tree.map_structure(lambda s: keras.ops.mean(s, axis=1), y_pred)
            return super().compute_metrics(x, y, mean, sample_weight)
        total = keras.ops.sum(sample_weight, axis=1, keepdims=True)
        share = sample_weight / keras.ops.maximum(total, 1e-12)  # a row weighed 0 throughout: 0

        def weighted(stacked: Any) -> Any:
            shape = (-1, count) + (1,) * (len(stacked.shape) - 2)
            return keras.ops.sum(stacked * keras.ops.reshape(share, shape), axis=1)

        return super().compute_metrics(x, y, keras.tree.map_structure(weighted, y_pred), None)


def _member_rows(stacked: Any) -> Any:
    """(batch, members, ...) -> (batch * members, ...): row b's members side by side, in the
    order keras.ops.repeat gives row b's targets."""
    return keras.ops.reshape(stacked, (-1, *stacked.shape[2:]))


def _per_member(sample_weight: Any, count: int) -> bool:
    return sample_weight is not None and tuple(sample_weight.shape[1:]) == (count,)
