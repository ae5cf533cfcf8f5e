"""Plan + training split -> the Keras model: a preprocessing stage that takes the raw columns by
name (fill gaps, standardise numbers, look up categories and dates, weigh a text's words) around
the table's keras.Sequential body (hidden layers, the table's output layer). The saved .keras
file is the whole thing."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from taskfit.feed.calendar import SLOTS, Calendar
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import Chunk, Inputs
from taskfit.feed.confidence import FLOOR
from taskfit.feed.scan import feature_stats
from taskfit.feed.stats import FeatureStats, Scale, fill_missing, log_scale, quantile_edges
from taskfit.feed.text import encode_text
from taskfit.model.ensemble import member_scaling, periodic_embedding, piecewise_embedding
from taskfit.model.sharing import build_heads
from taskfit.model.stacks import BODY_SCALE, dense_stack, learned_scale_name, output_stack
from taskfit.plan.names import NUMERIC_BLOCK, ONE_HOT_BLOCK, input_name, layer_names
from taskfit.plan.outputs import keras_form
from taskfit.plan.plan import Head, Plan

ONE_HOT_UP_TO = 32  # categories; above this a column gets an embedding instead of one-hot
SLOT_WIDTH = 4  # a date's learned vector for each recurring slot


def learned_scale_layer(fit: keras.Model, plan: Plan, head: Head) -> keras.layers.Layer:
    """That Rescaling in the `fit` model: inside the body for one task (build_body), beside the
    head's other layers among several (build_network)."""
    if plan.multi:
        return fit.get_layer(learned_scale_name(head.name, head.target_transform))
    body = fit.get_layer("body")
    return body.get_layer(learned_scale_name(BODY_SCALE, head.target_transform))


def build_body(
    plan: Plan,
    width: int,
    target: Scale | None = None,
    name: str = "body",
    shared_input: bool = True,
) -> keras.Sequential:
    """One head with no layers of its own: the table's part as one keras.Sequential (hidden
    layers, then the output) on `width` standardised features. With several members (a packed
    ensemble) it computes all of them at once: the input is (batch, width) if `shared_input`,
    else (batch, members, width) (each member's own embedding); the output (batch, members,
    units)."""
    head, members = plan.heads[0], plan.members
    layers = (*plan.layers, *head.layers)  # a lone head's own layers follow the shared ones
    shape = (width,) if members == 1 or shared_input else (members, width)
    stack: list[keras.layers.Layer] = [keras.Input(shape=shape, name="features")]
    last = layers[-1].units if layers else width
    if members > 1 and plan.ensemble == "tabm_mini":
        stack += member_scaling(members, width, shared_input)
        stack += dense_stack(layers)  # one set of weights, applied to every member's copy
        stack += output_stack(head, target, "output", BODY_SCALE, members, False, last)
        return keras.Sequential(stack, name=name)
    stack += dense_stack(layers, members=members, shared_input=shared_input, width=width)
    first = shared_input and not layers
    stack += output_stack(head, target, "output", BODY_SCALE, members, first, last)
    return keras.Sequential(stack, name=name)


def build_network(plan: Plan, features: Any, targets: dict[str, Scale]) -> dict[str, Any]:
    """Head name -> its output, on the features. A single task (one head, no layers of its
    own) is the table's keras.Sequential body with its output inside; several heads share
    `plan.layers` as model.sharing says (taskfit.model.sharing)."""
    if len(plan.heads) == 1 and not plan.heads[0].layers:
        head = plan.heads[0]
        return {
            head.name: build_body(plan, int(features.shape[-1]), targets.get(head.name))(features)
        }
    return build_heads(plan, features, targets)


def build_members(
    plan: Plan, features: Any, numbers: int, stats: FeatureStats
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(head name -> the output, which is the members' mean; head name -> every member's output
    stacked on axis 1, or None for one member). The members (one task only) are one packed
    network: each has its own weights in every layer of the body (packed members also their own
    periodic embedding of the first `numbers` columns; a piecewise-linear one is shared), all
    computed together (measured in bench/bench_speed.py: separate member networks cost about
    one network each a step)."""
    x, shared = features, True
    if plan.periodic and numbers:
        # TabM-mini's members share the embedding as they share the hidden layers
        own = 1 if plan.ensemble == "tabm_mini" else plan.members
        x = periodic_embedding(x, numbers, own, **plan.embedding.params)
        shared = own == 1
    elif plan.piecewise and numbers:
        edges = numeric_edges(plan, stats, numbers)
        x = piecewise_embedding(x, numbers, edges, plan.embedding.params["units"])
    if plan.members == 1:
        return build_network(plan, x, stats.targets), None
    head = plan.heads[0]
    body = build_body(plan, int(x.shape[-1]), stats.targets.get(head.name), shared_input=shared)
    stacked = body(x)
    mean = keras.layers.GlobalAveragePooling1D(name="members_mean")(stacked)
    return {head.name: mean}, {head.name: stacked}


def numeric_edges(plan: Plan, stats: FeatureStats, numbers: int) -> list[np.ndarray]:
    """The piecewise-linear embedding's bin edges of each numeric column, on the scale the
    network sees it (standardised, and smoothly clipped where the plan clips): the training
    quantiles mapped through the same monotone steps."""
    if stats.quantiles is None:
        raise ValueError("a piecewise-linear embedding needs the training rows' quantiles")
    edges = quantile_edges(stats.quantiles, plan.embedding.params["bins"])
    mean, std = stats.mean[:numbers], np.sqrt(stats.variance[:numbers])
    scaled = [(e - m) / s for e, m, s in zip(edges, mean, std, strict=True)]
    if plan.clipped:  # the network's own clip (here in float64), so the edges bend as values do
        scaled = [np.asarray(smooth_clip(e, **plan.clipping.params)) for e in scaled]
    return [np.unique(e.astype("float32")) for e in scaled]


@dataclass(frozen=True)
class Models:
    """Two views of the same layers: `fit` trains on numbers alone (the numeric columns as one
    matrix, each category as its id in the column's vocabulary: many small inputs, or string
    lookups inside the compiled step, would slow every step); `named` takes each raw column by
    name, looks the categories up itself, and is saved."""

    fit: keras.Model
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    vocabularies: dict[str, list[str]]  # categorical column -> its training values, sorted
    kind: str  # binary, multiclass, regression or heads: the saved model's name says it
    log_scaled: tuple[str, ...] = ()  # numeric columns that go through log1p first
    # several members: the `fit` inputs -> every member's output, stacked on axis 1 (training
    # gives each its own loss: taskfit.model.ensemble.PackedEnsemble)
    members: keras.Model | None = None
    # text column (among `categorical`) -> its adapted TextVectorization: `fit` takes its
    # TF-IDF weights, the saved model the string
    texts: dict[str, Any] = field(default_factory=dict)
    # the category columns of few values (one_hot_columns), which `fit` takes as one matrix of
    # their one-hot vectors, side by side
    one_hot: tuple[str, ...] = ()

    def pack(self, rows: Chunk) -> dict[str, Any]:
        """Rows -> the `fit` model's inputs."""
        x = rows.categorical
        packed = {
            c: encode_text(self.texts[c], x[c])
            if c in self.texts
            else category_ids(x[c], self.vocabularies[c])
            for c in self.categorical
            if c not in self.one_hot
        }
        if self.numeric:
            packed[NUMERIC_BLOCK] = rows.numeric
        if self.one_hot:
            vectors = [
                one_hot(category_ids(x[c], self.vocabularies[c]), len(self.vocabularies[c]) + 1)
                for c in self.one_hot
            ]
            packed[ONE_HOT_BLOCK] = np.concatenate(vectors, axis=1)
        return packed

    @functools.cached_property
    def named(self) -> keras.Model:
        """The saved model: one input per raw column, keyed by the column's name, around `fit`.
        Built when first asked for: its string lookups need TensorFlow, and a process training
        on JAX (train --workers) never asks."""
        return _named(self)


def with_temperatures(models: Models, plan: Plan, temperatures: dict[str, float]) -> Models:
    """The models with each named head's probabilities at its temperature (taskfit.training.
    calibration): softmax(log p / T), or for one sigmoid unit sigmoid(logit(p) / T), from Keras
    operations and a Rescaling whose scale is 1 / T, after the fitted model's output. Added
    after training: a log inside the trained graph would have no gradient where a sigmoid
    saturates. The saved model is built from the result."""
    fit = models.fit
    out = fit.output
    by_name = out if isinstance(out, dict) else {plan.heads[0].name: out}
    calibrated = {}
    for head in plan.heads:
        p, t = by_name[head.name], temperatures.get(head.name)
        if t is None:
            calibrated[head.name] = p
            continue
        scale = keras.layers.Rescaling(1 / t, name=f"{head.name}_temperature")
        if p.shape[-1] == 1:
            q = keras.ops.clip(p, FLOOR, 1 - FLOOR)
            logit = keras.ops.log(q) - keras.ops.log(1 - q)
            activation = keras.layers.Activation("sigmoid", name=f"{head.name}_calibrated")
            calibrated[head.name] = activation(scale(logit))
        else:
            log_p = keras.ops.log(keras.ops.clip(p, FLOOR, 1.0))
            calibrated[head.name] = keras.layers.Softmax(name=f"{head.name}_calibrated")(
                scale(log_p)
            )
    new_fit = keras.Model(fit.input, keras_form(plan.heads, calibrated), name=fit.name)
    return dataclasses.replace(models, fit=new_fit)


def one_hot_columns(categorical: tuple[str, ...], stats: FeatureStats) -> tuple[str, ...]:
    """The category columns `fit` takes one-hot, in one matrix: those of at most ONE_HOT_UP_TO
    values (not text, not dates), one-hot in numpy before the compiled step (the saved model
    one-hots them itself, after its StringLookup). One input in place of an input and a
    one-hot layer per column: on ames (bench_step.py, 2,344 training rows) an epoch of the
    plain network took 0.096 s against 0.222 s, its first epoch (the trace) 1.0 s against 2.9 s,
    the default network's 0.468 s against 0.523 s."""
    return tuple(
        c
        for c in categorical
        if c not in stats.texts
        and c not in stats.calendars
        and len(stats.vocabularies[c]) <= ONE_HOT_UP_TO
    )


def one_hot(ids: np.ndarray, tokens: int) -> np.ndarray:
    """Category ids (rows, 1) -> their one-hot vectors (rows, tokens), as CategoryEncoding
    makes them."""
    return np.eye(tokens, dtype="float32")[ids.reshape(-1)]


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


PREDICT_ROWS = 8192  # rows per call of predict_named


def predict_named(model: keras.Model, x: Inputs, call: Any = None) -> Any:
    """The saved model's outputs on raw columns (numpy: one array, or a dict by output), by
    calling it on blocks of rows. Keras's predict first traces a function for the model (about
    a second for a small one, every time a command starts), which a few thousand rows never
    pay back; a server, which calls it thousands of times, passes `traced_call(model)`."""
    call = call or functools.partial(model, training=False)
    rows = len(next(iter(x.values()))) if x else 0
    blocks = []
    for start in range(0, max(rows, 1), PREDICT_ROWS):
        block = {c: v[start : start + PREDICT_ROWS] for c, v in x.items()}
        # a direct call takes tensors only, not numpy arrays beside string tensors
        tensors = {c: keras.ops.convert_to_tensor(v) for c, v in named_inputs(block).items()}
        blocks.append(keras.tree.map_structure(keras.ops.convert_to_numpy, call(tensors)))
    if len(blocks) == 1:
        return blocks[0]
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *blocks)


def traced_call(model: keras.Model) -> Any:
    """The model's forward pass as one TensorFlow graph, traced on the first call and again
    only for a new kind of input (the row count is left open): one row of breast_cancer through
    the default five-member model took 16.8 ms called eagerly, 5.6 ms traced (0.3 s to trace)."""
    import tensorflow as tf

    return tf.function(
        functools.partial(model, training=False), reduce_retracing=True, autograph=False
    )


def smooth_clip(x: Any, bound: float) -> Any:
    """x / sqrt(1 + (x / bound)**2): about x within a standard deviation or two, never beyond
    bound. Keras operations, so the saved model needs no custom layer."""
    return x / keras.ops.sqrt(1.0 + keras.ops.square(x / bound))


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
    names = layer_names([*numeric, *categorical])
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
        x = keras.layers.Normalization(
            mean=stats.mean, variance=stats.variance, name="normalization"
        )(x)
        parts.append(smooth_clip(x, **plan.clipping.params) if plan.clipped else x)
    one_hot = one_hot_columns(categorical, stats)
    if one_hot:
        width = sum(len(stats.vocabularies[c]) + 1 for c in one_hot)
        inputs[ONE_HOT_BLOCK] = keras.Input(shape=(width,), name=ONE_HOT_BLOCK)
        parts.append(inputs[ONE_HOT_BLOCK])
    for column in categorical:
        if column in one_hot:
            continue
        if column in stats.texts:
            width = stats.texts[column].vocabulary_size()
            inputs[column] = keras.Input(shape=(width,), name=input_name(column))
            # unit length, as scikit-learn's TfidfVectorizer: a long cell's counts would
            # otherwise dwarf every other input
            unit = keras.layers.UnitNormalization(name=f"{names[column]}_unit_length")
            parts.append(unit(inputs[column]))
            continue
        inputs[column] = keras.Input(shape=(1,), name=input_name(column), dtype="int64")
        if column in stats.calendars:
            parts.append(_date(names[column], inputs[column], stats.calendars[column]))
        else:
            parts.append(_categorical(names[column], inputs[column], stats.vocabularies[column]))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    outputs, stacked = build_members(plan, features, len(numeric), stats)
    fit = keras.Model(inputs, keras_form(plan.heads, outputs), name="preprocess_and_body")
    members = None
    if stacked is not None:
        members = keras.Model(inputs, keras_form(plan.heads, stacked), name="members")
    log_scaled = tuple(numeric[i] for i in stats.skewed)
    kind = "heads" if plan.multi else plan.head.task
    vocabularies = {c: stats.vocabularies[c] for c in categorical if c not in stats.texts}
    texts = {c: stats.texts[c] for c in categorical if c in stats.texts}
    return Models(
        fit, numeric, categorical, vocabularies, kind, log_scaled, members, texts, one_hot
    )


def _named(models: Models) -> keras.Model:
    """The saved model: one input per raw column, keyed by the column's name; each category
    column through a StringLookup of its vocabulary into the id `fit` takes (category_ids),
    each text column through its TextVectorization into the weights `fit` takes."""
    names = layer_names([*models.numeric, *models.categorical])
    columns: dict[str, keras.KerasTensor] = {}
    packed: dict[str, Any] = {}
    for column in models.numeric:
        columns[column] = keras.Input(shape=(1,), name=input_name(column), dtype="float32")
    if models.numeric:
        block = [columns[c] for c in models.numeric]
        packed[NUMERIC_BLOCK] = (
            keras.layers.Concatenate(name="numeric_block")(block) if len(block) > 1 else block[0]
        )
    for column in models.categorical:
        columns[column] = keras.Input(shape=(1,), name=input_name(column), dtype="string")
        if column in models.texts:
            encoder = models.texts[column]
            weights = encoder(columns[column])  # Keras infers (rows, 1, tokens): it is 2-D
            flat = keras.layers.Reshape((encoder.vocabulary_size(),), name=f"{encoder.name}_flat")
            packed[column] = flat(weights)
            continue
        vocabulary = models.vocabularies[column]
        lookup = keras.layers.StringLookup(vocabulary=vocabulary, name=f"{names[column]}_lookup")
        packed[column] = lookup(columns[column])
        if column in models.one_hot:
            encode = keras.layers.CategoryEncoding(
                len(vocabulary) + 1, "one_hot", name=f"{names[column]}_one_hot"
            )
            packed[column] = encode(packed[column])
    if models.one_hot:
        vectors = [packed.pop(c) for c in models.one_hot]
        packed[ONE_HOT_BLOCK] = (
            keras.layers.Concatenate(name="one_hot_block")(vectors)
            if len(vectors) > 1
            else vectors[0]
        )
    return keras.Model(inputs=columns, outputs=models.fit(packed), name=f"taskfit_{models.kind}")


def _categorical(name: str, ids: keras.KerasTensor, vocabulary: list[str]) -> object:
    """A category id (category_ids: 0 for a value not in the training vocabulary) of a column
    of many values as a learned embedding (one of few values is one-hot: one_hot_columns)."""
    tokens = len(vocabulary) + 1
    dim = min(16, round(1.6 * len(vocabulary) ** 0.56))  # fast.ai's rule of thumb
    embedded = keras.layers.Embedding(tokens, dim, name=f"{name}_embedding")(ids)
    return keras.layers.Flatten(name=f"{name}_flat")(embedded)


def _date(name: str, ids: keras.KerasTensor, calendar: Calendar) -> object:
    """A date's id in its calendar -> that day's features: a fixed Embedding (the calendar's
    table as its weights, which the saved file holds; its config stays small), and a learned
    vector for each of the day's recurring slots (calendar.SLOTS), which the holidays of a
    table's years are found by (on Chicago's ridership they are most of the error without)."""
    rows, width = calendar.table.shape
    days = keras.layers.Embedding(
        rows, width, weights=calendar.table, trainable=False, name=f"{name}_calendar"
    )
    parts = [keras.layers.Flatten(name=f"{name}_day")(days(ids))]
    for i, (kind, count) in enumerate(SLOTS.items()):
        slot = keras.layers.Embedding(
            rows, 1, weights=calendar.slots[:, [i]], trainable=False, name=f"{name}_{kind}_slot"
        )(ids)  # (rows, 1, 1): TFLite's converter fails on the einsums when this is sliced
        learned = keras.layers.Embedding(count, SLOT_WIDTH, name=f"{name}_{kind}")
        vector = learned(keras.ops.cast(keras.ops.squeeze(slot, axis=-1), "int32"))
        parts.append(keras.layers.Flatten(name=f"{name}_{kind}_flat")(vector))
    return keras.layers.Concatenate(name=f"{name}_date")(parts)
