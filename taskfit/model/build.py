"""Plan + training split -> the Keras model: a preprocessing stage that takes the raw columns by
name (fill gaps, standardise numbers, look up categories) around the table's keras.Sequential
body (hidden layers, the table's output layer). The saved .keras file is the whole thing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from taskfit.feed.cells import Columns
from taskfit.feed.chunk import NUMERIC_BLOCK, Chunk, Inputs
from taskfit.feed.scan import feature_stats
from taskfit.feed.stats import FeatureStats, Scale, fill_missing, log_scale
from taskfit.plan.outputs import keras_form
from taskfit.plan.plan import Head, Plan
from taskfit.spec.keys import LayerSpec

ONE_HOT_UP_TO = 32  # categories; above this a column gets an embedding instead of one-hot


def dense_stack(layers: tuple[LayerSpec, ...], prefix: str = "") -> list[keras.layers.Layer]:
    """Hidden Dense layers (each with its dropout), named dense_1, dense_2, ... after `prefix`."""
    stack: list[keras.layers.Layer] = []
    for i, layer in enumerate(layers, start=1):
        stack.append(
            keras.layers.Dense(layer.units, activation=layer.activation, name=f"{prefix}dense_{i}")
        )
        if layer.dropout:
            stack.append(keras.layers.Dropout(layer.dropout, name=f"{prefix}dropout_{i}"))
    return stack


def output_stack(
    head: Head, target: Scale | None, dense_name: str, scale_name: str
) -> list[keras.layers.Layer]:
    """The table's output layer; for regression with `target` (the training labels' mean and
    std), a fixed Rescaling after the linear output maps it to the label's units: the network
    learns a standardised target (fast, at any scale), while loss, metrics and the saved model's
    predictions stay in the label's own units."""
    activation = None if head.output_activation == "linear" else head.output_activation
    stack = [keras.layers.Dense(head.output_units, activation=activation, name=dense_name)]
    if head.task == "regression" and target is not None:
        mean, std = target
        stack.append(keras.layers.Rescaling(scale=std, offset=mean, name=scale_name))
    return stack


def build_body(
    plan: Plan, width: int, target: Scale | None = None, name: str = "body"
) -> keras.Sequential:
    """One head with no layers of its own: the table's part as one keras.Sequential (hidden
    layers, then the output) on `width` standardised features."""
    head = plan.heads[0]
    stack: list[keras.layers.Layer] = [keras.Input(shape=(width,), name="features")]
    stack += dense_stack(plan.layers)
    stack += output_stack(head, target, "output", "target_scale")
    return keras.Sequential(stack, name=name)


def build_network(
    plan: Plan, features: Any, targets: dict[str, Scale], prefix: str = ""
) -> dict[str, Any]:
    """Head name -> its output, on the features: the shared hidden layers (a keras.Sequential
    trunk), then each head's own layers and output layer, which carries the head's name (Keras
    keys losses and metrics by it). A single task (one head, no layers of its own) is the
    table's keras.Sequential body with its output inside."""
    if len(plan.heads) == 1 and not plan.heads[0].layers:
        head = plan.heads[0]
        body = build_body(plan, int(features.shape[-1]), targets.get(head.name), f"{prefix}body")
        return {head.name: body(features)}
    shared = features
    if plan.layers:
        shared = keras.Sequential(dense_stack(plan.layers), name=f"{prefix}trunk")(features)
    outputs = {}
    for head in plan.heads:
        x = shared
        stack = dense_stack(head.layers, f"{prefix}{head.name}_")
        dense = f"{prefix}{head.name}_output" if head.task == "regression" else head.name
        stack += output_stack(head, targets.get(head.name), dense, f"{prefix}{head.name}")
        for layer in stack:
            x = layer(x)
        outputs[head.name] = x
    return outputs


def build_members(
    plan: Plan, features: Any, numbers: int, targets: dict[str, Scale]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(head name -> the output, which is the members' mean; head name -> every member's output
    stacked on axis 1, or None for one member). Each member is the network of build_network,
    after its own periodic embedding of the first `numbers` columns (the small-table
    additions)."""
    from taskfit.model.ensemble import periodic_embedding
    from taskfit.recipe.table import load_table

    settings = load_table().small_tables.periodic
    members = []
    for k in range(1, plan.members + 1):
        prefix = f"member_{k}_" if plan.members > 1 else ""
        x = features
        if plan.periodic and numbers:
            x = periodic_embedding(x, numbers, settings, prefix)
        members.append(build_network(plan, x, targets, prefix))
    if len(members) == 1:
        return members[0], None
    mean, stacked = {}, {}
    for name in members[0]:
        outputs = [member[name] for member in members]
        suffix = "" if len(members[0]) == 1 else f"_{name}"
        mean[name] = keras.layers.Average(name=f"members_mean{suffix}")(outputs)
        stacked[name] = keras.layers.Concatenate(axis=1, name=f"members{suffix}")(
            [keras.layers.Reshape((1, -1))(o) for o in outputs]
        )
    return mean, stacked


@dataclass(frozen=True)
class Models:
    """Two views of the same layers: `fit` trains on the numeric columns as one matrix (many
    small inputs would slow every step); `named` takes each raw column by name and is saved."""

    fit: keras.Model
    named: keras.Model
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    log_scaled: tuple[str, ...] = ()  # numeric columns that go through log1p first
    # on the JAX backend (no string tensors) categories are looked up before the model: their
    # vocabularies, to turn each into StringLookup's ids
    looked_up: dict[str, list[str]] | None = None
    # several members: the `fit` inputs -> every member's output, stacked on axis 1 (training
    # gives each its own loss: taskfit.model.ensemble.PackedEnsemble)
    members: keras.Model | None = None

    def pack(self, rows: Chunk) -> dict[str, Any]:
        """Rows -> the `fit` model's inputs."""
        x = rows.categorical
        if self.looked_up is not None:
            packed = {c: category_ids(x[c], self.looked_up[c]) for c in self.categorical}
        else:
            packed = {c: strings(x[c]) for c in self.categorical}
        if self.numeric:
            packed[NUMERIC_BLOCK] = rows.numeric
        return packed


def category_ids(column: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """What StringLookup makes of the cells: 1 + the position in the (sorted) vocabulary, 0 for
    a value it does not hold."""
    known = np.array(vocabulary, dtype=object)
    cells = column.astype(str).astype(object)
    at = np.searchsorted(known, cells).clip(max=max(len(known) - 1, 0))
    found = known[at] == cells if len(known) else np.zeros(cells.shape, dtype=bool)
    return np.where(found, at + 1, 0).astype(np.int64)


def strings(column: np.ndarray) -> Any:
    """Keras takes no numpy string arrays: category columns go in as TensorFlow string tensors
    (StringLookup runs on TensorFlow whatever the backend)."""
    import tensorflow as tf

    return tf.constant(column.astype(str))


def named_inputs(x: Inputs) -> dict[str, Any]:
    """Raw column arrays -> what the saved (named) model takes."""
    return {c: strings(v) if v.dtype.kind in "OUS" else v for c, v in x.items()}


def build_model(
    plan: Plan,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    train: Chunk,
    gaps: frozenset[str] = frozenset(),
) -> Models:
    """The model, its preprocessing fitted on the training rows."""
    stats = feature_stats(Columns(numeric, categorical, plan.heads), train, gaps)
    return build_from_stats(plan, numeric, categorical, stats)


def build_from_stats(
    plan: Plan, numeric: tuple[str, ...], categorical: tuple[str, ...], stats: FeatureStats
) -> Models:
    names = _layer_names([*numeric, *categorical])
    inputs: dict[str, keras.KerasTensor] = {}
    parts = []
    if numeric:
        inputs[NUMERIC_BLOCK] = keras.Input(shape=(len(numeric),), name=NUMERIC_BLOCK)
        x = inputs[NUMERIC_BLOCK]
        if stats.skewed:
            x = log_scale(x, list(stats.skewed))
        # every numeric column is filled (a gap may first appear at predict time); columns with
        # gaps in the data also get an indicator
        x = fill_missing(x, stats.fill, list(stats.indicate))
        parts.append(
            keras.layers.Normalization(
                mean=stats.mean, variance=stats.variance, name="normalization"
            )(x)
        )
    looked_up = keras.backend.backend() == "jax"  # JAX has no string tensors
    for column in categorical:
        dtype = "int64" if looked_up else "string"
        inputs[column] = keras.Input(shape=(1,), name=_input_name(column), dtype=dtype)
        vocabulary = stats.vocabularies[column]
        parts.append(_categorical(names[column], inputs[column], vocabulary, looked_up))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    outputs, stacked = build_members(plan, features, len(numeric), stats.targets)
    fit = keras.Model(inputs, keras_form(plan.heads, outputs), name="preprocess_and_body")
    members = None
    if stacked is not None:
        members = keras.Model(inputs, keras_form(plan.heads, stacked), name="members")
    log_scaled = tuple(numeric[i] for i in stats.skewed)
    kind = "heads" if plan.multi else plan.head.task
    named = _named(fit, numeric, categorical, names, kind)
    vocabularies = stats.vocabularies if looked_up else None
    return Models(fit, named, numeric, categorical, log_scaled, vocabularies, members)


def _named(
    fit: keras.Model,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    names: dict[str, str],
    kind: str,
) -> keras.Model:
    """The saved model: one input per raw column, keyed by the column's name."""
    columns: dict[str, keras.KerasTensor] = {}
    packed: dict[str, keras.KerasTensor] = {}
    for column in numeric:
        columns[column] = keras.Input(shape=(1,), name=_input_name(column), dtype="float32")
    if numeric:
        block = [columns[c] for c in numeric]
        packed[NUMERIC_BLOCK] = (
            keras.layers.Concatenate(name="numeric_block")(block) if len(block) > 1 else block[0]
        )
    for column in categorical:
        columns[column] = keras.Input(
            shape=(1,), name=_input_name(column), dtype=fit.input[column].dtype
        )
        packed[column] = columns[column]
    return keras.Model(inputs=columns, outputs=fit(packed), name=f"taskfit_{kind}")


def _categorical(
    name: str, tensor: keras.KerasTensor, vocabulary: list[str], looked_up: bool
) -> object:
    """Vocabulary from the training split; an unseen category maps to the out-of-vocabulary slot.
    `looked_up`: the input holds category_ids already (JAX); the layers that follow, and so
    the weights, are the same."""
    tokens = len(vocabulary) + 1
    if len(vocabulary) <= ONE_HOT_UP_TO:
        if looked_up:
            return keras.layers.CategoryEncoding(tokens, "one_hot", name=f"{name}_lookup")(tensor)
        lookup = keras.layers.StringLookup(
            vocabulary=vocabulary, output_mode="one_hot", name=f"{name}_lookup"
        )
        return lookup(tensor)
    ids = tensor
    if not looked_up:
        ids = keras.layers.StringLookup(vocabulary=vocabulary, name=f"{name}_lookup")(tensor)
    dim = min(16, round(1.6 * len(vocabulary) ** 0.56))  # fast.ai's rule of thumb
    embedded = keras.layers.Embedding(tokens, dim, name=f"{name}_embedding")(ids)
    return keras.layers.Flatten(name=f"{name}_flat")(embedded)


def _input_name(column: str) -> str:
    """Keras matches a dict of inputs by tensor name, so an input is named as its column (Keras
    refuses only `/` in a name)."""
    return column.replace("/", "_")


def _layer_names(columns: list[str]) -> dict[str, str]:
    """Column names as valid, distinct layer names (the inputs stay keyed by the column names)."""
    names: dict[str, str] = {}
    for column in columns:
        base = re.sub(r"[^0-9A-Za-z_]+", "_", column).strip("_") or "column"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[column] = name
    return names
