"""The parts as Keras's fit and evaluate take them. What differs by data kind is only how rows
reach Keras, not what they are:

- in memory: one tf.data stream over the arrays for the whole fit, each epoch's rows in the
  order `epoch_order` draws from the seed and the epoch's number. Keras's own array path
  makes a new tf.data iterator every epoch (on penguins an epoch of 9 steps took 0.14-0.21 s
  that way, 0.04-0.06 s from one stream), and that new iterator restarts its seeded shuffle,
  so every epoch saw the rows in the same order (tensorflow/tensorflow#29558);
- streamed: a tf.data pipeline over the batches of taskfit.feed.splits, prefetched;
- one process of several (train --workers, on JAX): a keras.utils.PyDataset of its share.
  In memory, every epoch the seed draws one permutation of the training rows; global batch k
  is rows [k*B, (k+1)*B) of it and process i takes the i-th of its N equal slices, so N
  processes see the batches one process with the same global batch sees (the last partial
  batch is dropped: every process must take as many steps). Streamed, each process reads its
  own blocks of the file (every N-th) and takes as many batches as the smallest share holds.
  Validation: each process takes an equal share, so early stopping stops every process at the
  same epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from taskfit.errors import TaskfitError
from taskfit.feed.chunk import PART_NAMES, TEST, TRAIN, VALIDATION, Targets
from taskfit.feed.classes import class_ids
from taskfit.feed.folds import member_weights, training_folds
from taskfit.feed.splits import Shard, Splits, epoch_order
from taskfit.model.build import Models
from taskfit.plan.outputs import keras_form
from taskfit.plan.plan import Plan
from taskfit.recipe.table import load_table

XY = tuple[dict[str, Any], Any]


def evaluation_batch() -> int:
    """Rows per step of validation and testing (recipes/training.yaml)."""
    return load_table().fitting.evaluation_batch


def fit_targets(plan: Plan, y: Targets) -> np.ndarray | Targets:
    """What Keras's fit takes: the one head's array, or the dict keyed by head name."""
    return keras_form(plan.heads, y)


def first_rows(models: Models, splits: Splits) -> dict[str, Any]:
    """A few rows of inputs, to build a model before fit (its checkpoint needs the weights)."""
    return models.pack(splits.first())


def fit_data(
    models: Models,
    plan: Plan,
    splits: Splits,
    batch_size: int,
    class_weight: dict[int, float] | None = None,
) -> dict[str, Any]:
    """Keras fit's x (and steps_per_epoch, class_weight) for the training part."""
    if splits.shard is not None:
        batches = _shard_batches(models, plan, splits, splits.shard, batch_size)
        return {"x": batches, "shuffle": False, "class_weight": class_weight}
    if splits.in_memory:
        rows = splits.sizes()["train"]
        parts = training_arrays(models, plan, splits, class_weight)
        stream = _epoch_stream(parts, rows, batch_size, EpochOrders(splits))
        return {"x": stream, "steps_per_epoch": steps_of(rows, batch_size), "shuffle": False}
    # shuffled by the splits, through the bounded buffer (Keras cannot shuffle a dataset)
    dataset = _dataset(models, plan, splits, TRAIN, batch_size, shuffle=True)
    return {"x": dataset, "shuffle": False, "class_weight": class_weight}


def training_arrays(
    models: Models, plan: Plan, splits: Splits, class_weight: dict[int, float] | None
) -> tuple[dict[str, Any], Any, np.ndarray | None]:
    """An in-memory training part as its stream carries it: the inputs, the targets, and each
    row's weight (its class weight; with bagging, times each member's weight) or None."""
    train = splits.part(TRAIN)
    weights = (
        None if class_weight is None else _class_of_rows(train.y[plan.head.name], class_weight)
    )
    if splits.folds:
        weights = member_weights(_folds(plan, splits), splits.folds, False, weights)
    return models.pack(train), fit_targets(plan, train.y), weights


def validation_feed(models: Models, plan: Plan, splits: Splits) -> Any:
    """Keras fit's validation_data: `validation_data`, in memory as a tf.data pass over the
    arrays in batches of `evaluation_batch` (cheaper to begin each epoch than Keras's own)."""
    data = validation_data(models, plan, splits)
    if not splits.in_memory or splits.shard is not None or data is None:
        return data
    rows = len(data[1]) if not isinstance(data[1], dict) else len(next(iter(data[1].values())))
    return _in_order(data, rows, evaluation_batch())


def validation_data(models: Models, plan: Plan, splits: Splits) -> Any:
    if splits.folds:  # every training row, scored by the member held out of it
        train = splits.part(TRAIN)
        weights = member_weights(_folds(plan, splits), splits.folds, True)
        return models.pack(train), fit_targets(plan, train.y), weights
    if not splits.sizes()["validation"]:
        return None
    if splits.shard is not None:
        return _shard_validation(models, plan, splits, splits.shard)
    if splits.in_memory:
        part = splits.part(VALIDATION)
        return models.pack(part), fit_targets(plan, part.y)
    return _dataset(models, plan, splits, VALIDATION, evaluation_batch(), shuffle=False)


def _folds(plan: Plan, splits: Splits) -> np.ndarray:
    return training_folds(splits, plan.stratify_by)


def _class_of_rows(y: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    """Each row's weight under `class_weight` (one task's, by class)."""
    weights = np.zeros(max(class_weight) + 1)
    weights[list(class_weight)] = list(class_weight.values())
    return weights[class_ids(y)]


def test_data(models: Models, plan: Plan, splits: Splits) -> dict[str, Any]:
    """Keras evaluate's x (and y, batch_size) for the test part."""
    batch = evaluation_batch()
    if splits.in_memory:
        test = splits.part(TEST)
        return {"x": models.pack(test), "y": fit_targets(plan, test.y), "batch_size": batch}
    return {"x": _dataset(models, plan, splits, TEST, batch, shuffle=False)}


def fit_callbacks(splits: Splits) -> list[Any]:
    """A Keras callback telling the shuffle which epoch begins. Every order of rows follows
    from the epoch's number, so a resumed run shuffles its epochs as the uninterrupted run
    did."""
    import keras

    epoch = splits.epoch

    class EpochShuffle(keras.callbacks.Callback):
        def on_epoch_begin(self, number: int, logs: dict[str, Any] | None = None) -> None:
            epoch[0] = number

    return [EpochShuffle()]


def steps_of(rows: int, batch_size: int) -> int:
    """Steps an epoch of `rows` takes (the last batch may be short)."""
    return -(-rows // batch_size)


class EpochOrders:
    """The order of the training rows in each epoch of one stream, in sequence. The stream is
    made before Keras knows the epoch it starts at (a resumed run starts later); the first
    order is drawn once the first epoch has begun (the fit makes the stream's iterator after
    that epoch's callbacks), and the n-th order after it is that epoch's + n."""

    def __init__(self, splits: Splits):
        self.seed, self.epoch = splits.seed, splits.epoch
        self.first = 0

    def __call__(self, n: np.int64, rows: np.int64) -> np.ndarray:
        if n == 0:
            self.first = self.epoch[0]
        return epoch_order(self.seed, self.first + int(n), int(rows)).astype(np.int64)


def _epoch_stream(parts: Any, rows: int, batch_size: int, orders: EpochOrders) -> Any:
    """Batches of `parts` (arrays of `rows` rows, None for an absent part) without end, each
    epoch's rows in the order `orders` draws: one tf.data iterator serves the whole fit."""
    import tensorflow as tf

    def epoch(n: Any) -> Any:
        order = tf.numpy_function(orders, [n, rows], tf.int64, stateful=True)
        order.set_shape([rows])
        starts = tf.data.Dataset.range(0, rows, batch_size)
        return starts.map(lambda start: order[start : start + batch_size])

    return _gathered(parts, tf.data.Dataset.range(2**62).flat_map(epoch))


def _in_order(parts: Any, rows: int, batch_size: int) -> Any:
    """One pass over `parts` in their order, in batches of `batch_size`."""
    import tensorflow as tf

    starts = tf.data.Dataset.range(0, rows, batch_size)
    spans = starts.map(lambda start: tf.range(start, tf.minimum(start + batch_size, rows)))
    return _gathered(parts, spans)


def _gathered(parts: Any, indices: Any) -> Any:
    """Each batch of row indices as the rows of `parts` (nested arrays; None stays None)."""
    import tensorflow as tf

    present = tuple(part for part in parts if part is not None)
    tensors = tf.nest.map_structure(tf.constant, present)
    batches = indices.map(lambda i: tf.nest.map_structure(lambda a: tf.gather(a, i), tensors))
    return _prefetched(batches)


def _dataset(
    models: Models, plan: Plan, splits: Splits, part: int, batch_size: int, shuffle: bool
) -> Any:
    import tensorflow as tf

    first = splits.first()

    def spec(values: np.ndarray) -> Any:
        return tf.TensorSpec((None, *values.shape[1:]), tf.as_dtype(values.dtype))

    inputs = {k: spec(v) for k, v in models.pack(first).items()}
    targets = fit_targets(plan, {k: spec(v) for k, v in first.y.items()})
    dataset = tf.data.Dataset.from_generator(
        lambda: (
            (models.pack(b), fit_targets(plan, b.y))
            for b in splits.batches(part, batch_size, shuffle)
        ),
        output_signature=(inputs, targets),
    )
    # the scan counted the rows: Keras then knows each epoch's steps
    rows = splits.sizes()[PART_NAMES[part]]
    steps = steps_of(rows, batch_size)
    return _prefetched(dataset.apply(tf.data.experimental.assert_cardinality(steps)))


def _prefetched(dataset: Any) -> Any:
    """`dataset` with two batches made ahead, and tf.data's autotuning off. Nothing here is
    tuned (no parallel map, a fixed buffer), and deleting a fit's iterator waited for the tuning
    thread: on HMDA the fit returned 1.2-2.2 s after its last callback in 5 of 9 profiled runs,
    in none of 6 with it off (docs/benchmarks.md, "The end of a fit")."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(2).with_options(options)


def _shard_batches(
    models: Models, plan: Plan, splits: Splits, shard: Shard, batch_size: int
) -> Any:
    local = batch_size // shard.count
    if splits.in_memory:
        train = splits.part(TRAIN)
        x, y = models.pack(train), fit_targets(plan, train.y)
        return global_batches(x, y, batch_size, shard, splits.seed, splits.epoch)
    mine, rows = _share(splits, shard, TRAIN)
    steps = rows // local  # whole batches only, the same count everywhere
    if not steps:
        raise TaskfitError(
            f"{splits.source.name}: the smallest process's share holds {rows} training rows, "
            f"fewer than its {local} of each batch; use fewer processes or a smaller "
            "training.batch_size"
        )
    return sequential_batches(_packed(models, plan, mine, TRAIN, local), steps)


def _shard_validation(models: Models, plan: Plan, splits: Splits, shard: Shard) -> Any:
    if splits.in_memory:
        part = splits.part(VALIDATION)
        equal = len(part) - len(part) % shard.count
        mine = part.take(np.arange(equal)[shard.process :: shard.count])
        return models.pack(mine), fit_targets(plan, mine.y)
    share, rows = _share(splits, shard, VALIDATION)
    if not rows:
        return None
    steps = steps_of(rows, evaluation_batch())
    equal_share = share.head(rows)
    feed = _packed(models, plan, equal_share, VALIDATION, evaluation_batch())
    return sequential_batches(feed, steps)


def _share(splits: Splits, shard: Shard, part: int) -> tuple[Splits, int]:
    """A streamed file's blocks this process reads (every N-th the scan found), and the rows of
    `part` the smallest share holds (every process takes that many)."""
    scanned = splits.scanned
    if scanned.spans is None or scanned.span_rows is None:
        raise TaskfitError(
            f'{splits.source.name}: a quote inside an unquoted cell (such as 12") keeps the file '
            "from being cut into blocks for several processes; quote that cell, or train in "
            "one process"
        )
    shares = [scanned.span_rows[i :: shard.count].sum(axis=0) for i in range(shard.count)]
    rows = min(int(share[part]) for share in shares)
    return splits.of_spans(scanned.spans[shard.process :: shard.count]), rows


def _packed(
    models: Models, plan: Plan, source: Splits, part: int, size: int
) -> Callable[[], Iterator[XY]]:
    """A new pass over `source`'s batches of `part` (training ones shuffled), packed for the
    model (categories as their ids)."""

    def batches() -> Iterator[XY]:
        for batch in source.batches(part, size, shuffle=part == TRAIN):
            yield models.pack(batch), fit_targets(plan, batch.y)

    return batches


def sequential_batches(batches: Callable[[], Iterator[XY]], steps: int) -> Any:
    """A keras.utils.PyDataset of `steps` items drawn in order from a new `batches()` each
    epoch (a stream cannot jump to batch k: asking out of order starts it again)."""
    import keras

    class Sequential(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.stream: Iterator[XY] | None = None
            self.next = 0

        def __len__(self) -> int:
            return steps

        def __getitem__(self, k: int) -> XY:
            if self.stream is None or k != self.next:
                self.stream = batches()
                for _ in range(k):
                    next(self.stream)
            self.next = k + 1
            return next(self.stream)

        def on_epoch_end(self) -> None:
            self.stream = None

    return Sequential()


def global_batches(
    x: dict[str, Any], y: Any, batch: int, shard: Shard, seed: int, epoch: list[int]
) -> Any:
    """A keras.utils.PyDataset: this process's slice of each global batch, a permutation of
    the rows drawn from the seed and the number of the epoch in progress (`epoch`, which the
    EpochShuffle callback sets)."""
    import keras

    rows = len(next(iter(x.values())))
    local = batch // shard.count
    process = shard.process

    def take(values: Any, rows: np.ndarray) -> Any:
        if isinstance(values, dict):
            return {k: v[rows] for k, v in values.items()}
        return values[rows]

    class GlobalBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.drawn: tuple[int, np.ndarray] | None = None  # (epoch, its permutation)

        def __len__(self) -> int:
            return rows // batch  # whole global batches only

        def __getitem__(self, k: int) -> XY:
            if self.drawn is None or self.drawn[0] != epoch[0]:
                self.drawn = epoch[0], epoch_order(seed, epoch[0], rows)
            order = self.drawn[1]
            mine = order[k * batch : (k + 1) * batch][process * local : (process + 1) * local]
            return take(x, mine), take(y, mine)

    return GlobalBatches()
