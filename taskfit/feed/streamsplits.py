"""data.streaming's parts: the methods training reads arrays.Splits by, each part read from the
file again when it is needed; training rows shuffled through a buffer of at most SHUFFLE_ROWS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from taskfit.errors import DataError
from taskfit.feed import stream
from taskfit.feed.stream import PART_NAMES, TEST, TRAIN, VALIDATION, Chunk, Layout, Span
from taskfit.feed.streamscan import Scan, scan
from taskfit.plan.plan import Plan

SHUFFLE_ROWS = 65_536  # training rows the shuffle buffer holds at most
PLOT_ROWS = 10_000  # test rows kept in memory for the plots


@dataclass
class StreamSplits:
    """The three parts of a streamed CSV, with the methods training reads arrays.Splits by."""

    layout: Layout
    scanned: Scan
    limit: int | None = None  # rows per part (a --smoke run)
    # the epoch Keras is in (its callback sets it): each epoch's shuffle follows from it, so a
    # resumed run shuffles its epochs as the uninterrupted run did
    epoch: list[int] = field(default_factory=lambda: [0])
    spans: tuple[Span, ...] | None = None  # only these blocks of the file (one process's share)

    def fit_callbacks(self) -> list[Any]:
        """A Keras callback telling the shuffle which epoch begins."""
        import keras

        epoch = self.epoch

        class EpochShuffle(keras.callbacks.Callback):
            def on_epoch_begin(self, number: int, logs: dict[str, Any] | None = None) -> None:
                epoch[0] = number

        return [EpochShuffle()]

    def head(self, n: int) -> StreamSplits:
        return replace(self, limit=n)

    def sizes(self) -> dict[str, int]:
        if self.limit is None:
            return dict(self.scanned.sizes)
        return {k: min(v, self.limit) for k, v in self.scanned.sizes.items()}

    def feature_stats(self, *args: Any) -> Any:
        return self.scanned.stats

    def class_counts(self, head: str, n_classes: int) -> np.ndarray:
        assert self.scanned.class_counts is not None
        return self.scanned.class_counts

    def first_rows(self, models: Any) -> dict[str, Any]:
        return _tensors(self.scanned.first.inputs(_block()), self.layout)

    def fit_data(self, models: Any, plan: Plan, batch_size: int) -> dict[str, Any]:
        # shuffled here, through the bounded buffer (Keras cannot shuffle a dataset)
        return {"x": self._dataset(TRAIN, batch_size, shuffle=True), "shuffle": False}

    def validation_data(self, models: Any, plan: Plan) -> Any:
        if not self.scanned.sizes["validation"]:
            return None
        return self._dataset(VALIDATION, 1024, shuffle=False)

    def test_data(self, models: Any, plan: Plan) -> dict[str, Any]:
        return {"x": self._dataset(TEST, 1024, shuffle=False)}

    def test_sample(self) -> Any:
        """Up to PLOT_ROWS test rows as an arrays.Part (column name -> (rows, 1))."""
        from taskfit.feed.arrays import Part

        taken: list[Chunk] = []
        count = 0
        for chunk in self._rows(TEST):
            taken.append(chunk)
            count += len(chunk.y)
            if count >= PLOT_ROWS:
                break
        if not taken:
            empty = {c: np.empty((0, 1), dtype=np.float32) for c in self.layout.numeric}
            empty |= {c: np.empty((0, 1), dtype=object) for c in self.layout.categorical}
            return Part(empty, {self.layout.head.name: np.empty(0, dtype=np.float32)})
        rows = stream.concat_chunks(*taken).take(np.arange(min(count, PLOT_ROWS)))
        return Part(stream.named(rows, self.layout), {self.layout.head.name: rows.y})

    def _rows(self, part: int) -> Iterator[Chunk]:
        """The labelled rows of one part, chunk by chunk (at most `limit` in all)."""
        left = self.limit
        for chunk in stream.chunks(self.layout, self.spans):
            chunk = chunk.take(chunk.labelled & (chunk.parts == part))
            if left is not None:
                chunk = chunk.take(np.arange(min(left, len(chunk.y))))
                left -= len(chunk.y)
            if len(chunk.y):
                yield chunk
            if left == 0:
                return

    def batches(self, part: int, batch_size: int, shuffle: bool) -> Iterator[Chunk]:
        """A part's labelled rows in batches; training rows shuffled through the buffer, in
        an order that follows the epoch."""
        rng = np.random.default_rng([self.layout.seed, self.epoch[0]])
        buffered: Chunk | None = None
        for chunk in self._rows(part):
            buffered = chunk if buffered is None else stream.concat_chunks(buffered, chunk)
            if shuffle and len(buffered.y) <= SHUFFLE_ROWS:
                continue
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered.y)))
            ready = len(buffered.y) - (SHUFFLE_ROWS if shuffle else 0)
            ready -= ready % batch_size
            for start in range(0, ready, batch_size):
                yield buffered.take(np.arange(start, start + batch_size))
            buffered = buffered.take(np.arange(ready, len(buffered.y)))
        if buffered is not None and len(buffered.y):
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered.y)))
            for start in range(0, len(buffered.y), batch_size):
                yield buffered.take(np.arange(start, min(start + batch_size, len(buffered.y))))

    def _dataset(self, part: int, batch_size: int, shuffle: bool) -> Any:
        import tensorflow as tf

        block = _block()
        signature: dict[str, Any] = {
            c: tf.TensorSpec((None, 1), tf.string) for c in self.layout.categorical
        }
        if self.layout.numeric:
            signature[block] = tf.TensorSpec((None, len(self.layout.numeric)), tf.float32)
        head = self.layout.head
        y_shape = (None, len(head.labels.classes)) if head.onehot_targets else (None,)
        y_type = tf.int64 if head.task != "regression" and head.output_units > 1 else tf.float32
        if head.onehot_targets:
            y_type = tf.float32
        rows = self.sizes()[PART_NAMES[part]]
        dataset = tf.data.Dataset.from_generator(
            lambda: ((b.inputs(block), b.y) for b in self.batches(part, batch_size, shuffle)),
            output_signature=(signature, tf.TensorSpec(y_shape, y_type)),
        )
        # the scan counted the rows: Keras then knows each epoch's steps
        batches = -(-rows // batch_size)
        return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(2)


def _block() -> str:
    from taskfit.feed.stats import NUMERIC_BLOCK

    return NUMERIC_BLOCK


def _tensors(x: dict[str, np.ndarray], layout: Layout) -> dict[str, Any]:
    import tensorflow as tf

    return {k: tf.constant(v.astype(str)) if k in layout.categorical else v for k, v in x.items()}


def open_stream(checked: Any, enough: int | None = None, processes: int = 1) -> StreamSplits:
    """The checked spec's CSV as a stream: one scan (up to `enough` rows a part, for a --smoke
    run), then parts read on demand. Several `processes` each read a share of the blocks the
    scan finds, so the blocks are made smaller when the file is small."""
    from taskfit.data.columns import CATEGORICAL, NUMERIC
    from taskfit.feed.arrays import to_inputs

    plan, data, spec = checked.plan, checked.data, checked.loaded.spec
    if plan.multi or plan.head.labels.format == "onehot":
        raise DataError(
            "data.streaming: reads one label column for now; a spec with heads or one-hot label "
            "columns needs the data in memory (data.streaming: false)"
        )
    numeric = data.of_kind(NUMERIC)
    size = data.streamed.stat().st_size
    layout = Layout(
        data.streamed,
        data.table.columns,
        numeric,
        data.of_kind(CATEGORICAL),
        plan.head,
        spec.training.seed,
        spec.data.test_fraction,
        spec.data.validation_fraction,
        None if processes == 1 else stream.shard_block_bytes(size, processes),
    )
    first = to_inputs(data.table, numeric, (), list(range(data.table.n_rows)))
    sample = np.concatenate([first[c] for c in numeric], axis=1) if numeric else np.empty((0, 0))
    return StreamSplits(layout, scan(layout, plan, sample, spec.training.seed, enough))
