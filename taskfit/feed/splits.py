"""The train, validation and test parts of any source, as chunks: what fitting, evaluating and
plotting read. One class for data in memory, a streamed CSV and a process's share of either."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from taskfit.data.columns import CATEGORICAL, NUMERIC, TEXT
from taskfit.data.view import DataView
from taskfit.feed.cells import Columns
from taskfit.feed.chunk import TEST, TRAIN, VALIDATION, Chunk, Span, concat
from taskfit.feed.memory import encode_table, split_table
from taskfit.feed.scan import Scan, scan
from taskfit.feed.source import Source
from taskfit.feed.stats import FeatureStats
from taskfit.plan.plan import Plan
from taskfit.spec.keys import Spec

SHUFFLE_ROWS = 65_536  # training rows the shuffle buffer holds at most (a streamed source)


def epoch_order(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The order of `rows` training rows in epoch `epoch`: a permutation drawn from the seed and
    the epoch's number, so a resumed run draws what the unbroken one drew."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


PLOT_ROWS = 10_000  # test rows the plots read at most


@dataclass(frozen=True)
class Shard:
    """Process `process` of `count`, each fed its share of every part."""

    process: int
    count: int


@dataclass
class Splits:
    """The parts of a source; `scanned` holds what the model is fitted to."""

    source: Source
    columns: Columns  # the heads whose targets the parts carry
    scanned: Scan
    seed: int
    limit: int | None = None  # rows per part (a --smoke run)
    spans: tuple[Span, ...] | None = None  # only these blocks of a file (one process's share)
    # the epoch Keras is in (a callback sets it): each epoch's shuffle follows from it, so a
    # resumed run shuffles its epochs as the uninterrupted run did
    epoch: list[int] = field(default_factory=lambda: [0])
    shard: Shard | None = None  # one process of several feeds its share
    # training.bagging: the training part is train + validation in this many folds, each
    # member's validation its own fold (taskfit.feed.folds); 0: the parts as drawn
    folds: int = 0

    @property
    def in_memory(self) -> bool:
        return self.source.in_memory

    @property
    def stats(self) -> FeatureStats:
        return self.scanned.stats

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.columns.heads)

    @property
    def estimate(self) -> str | None:
        """The rows a run's metrics are on: its test split; without one, a bagged run's folds
        (each row scored by the member that never trained on it); else none."""
        if self.sizes()["test"]:
            return "test"
        return "out-of-fold" if self.folds else None

    def held_out_sample(self) -> Chunk:
        """Rows for the plots and a smoke run's reload check (at most PLOT_ROWS): the test
        split's; without one, the training part's."""
        return self.part(TEST if self.sizes()["test"] else TRAIN, PLOT_ROWS)

    def sizes(self) -> dict[str, int]:
        if self.limit is None:
            return dict(self.scanned.sizes)
        return {k: min(v, self.limit) for k, v in self.scanned.sizes.items()}

    def class_counts(self, head: str) -> np.ndarray:
        """Training rows per class of a classification head."""
        return self.scanned.class_counts[head]

    def first(self) -> Chunk:
        """A few training rows, to build a model before fit (its checkpoint needs the weights)."""
        return self.scanned.first.only(self.heads)

    def chunks(self, part: int) -> Iterator[Chunk]:
        """The labelled rows of one part, chunk by chunk (at most `limit` in all)."""
        left = self.limit
        for block in self.source.blocks(self.spans):
            chunk = block.part(part)
            if left is not None:
                chunk = chunk.head(left)
                left -= len(chunk)
            if len(chunk):
                yield chunk.only(self.heads)
            if left == 0:
                return

    def part(self, part: int, at_most: int | None = None) -> Chunk:
        """A part's rows as one chunk (`at_most` of them: no more is read)."""
        taken: list[Chunk] = []
        count = 0
        for chunk in self.chunks(part):
            taken.append(chunk)
            count += len(chunk)
            if at_most is not None and count >= at_most:
                break
        whole = concat(taken) if taken else self.first().head(0)
        return whole if at_most is None else whole.head(at_most)

    @property
    def train(self) -> Chunk:
        """The training part whole (a streamed one is read into memory)."""
        return self.part(TRAIN)

    @property
    def validation(self) -> Chunk | None:
        return self.part(VALIDATION) if self.sizes()["validation"] else None

    @property
    def test(self) -> Chunk:
        return self.part(TEST)

    def batches(self, part: int, batch_size: int, shuffle: bool) -> Iterator[Chunk]:
        """A part's rows in batches; training rows shuffled through a buffer of SHUFFLE_ROWS,
        in an order that follows the epoch."""
        rng = np.random.default_rng([self.seed, self.epoch[0]])
        buffered: Chunk | None = None
        for chunk in self.chunks(part):
            buffered = chunk if buffered is None else concat([buffered, chunk])
            if shuffle and len(buffered) <= SHUFFLE_ROWS:
                continue
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered)))
            ready = len(buffered) - (SHUFFLE_ROWS if shuffle else 0)
            ready -= ready % batch_size
            for start in range(0, ready, batch_size):
                yield buffered.take(slice(start, start + batch_size))
            buffered = buffered.take(slice(ready, len(buffered)))
        if buffered is not None and len(buffered):
            if shuffle:
                buffered = buffered.take(rng.permutation(len(buffered)))
            for start in range(0, len(buffered), batch_size):
                yield buffered.take(slice(start, start + batch_size))

    def head(self, n: int) -> Splits:
        """At most n rows of each part (a --smoke run)."""
        return replace(self, limit=n)

    def alone(self, head: str) -> Splits:
        """The same rows with one head's targets (that head trained by itself)."""
        heads = tuple(h for h in self.columns.heads if h.name == head)
        return replace(self, columns=replace(self.columns, heads=heads))

    def joined(self) -> Splits:
        """The training and validation rows as one training part (a refit), its statistics
        gathered again."""
        source = self.source.with_validation_joined()
        scanned = scan(source, self.columns, self.seed, validation=False)
        return replace(self, source=source, scanned=scanned, epoch=[0])

    def of_spans(self, spans: Sequence[Span]) -> Splits:
        """Only these blocks of a streamed file (one process's share)."""
        return replace(self, spans=tuple(spans))

    def sharded(self, process: int, count: int) -> Splits:
        """As process `process` of `count` feeds it (taskfit.training.feeding)."""
        return replace(self, shard=Shard(process, count))


def data_columns(view: DataView, plan: Plan) -> Columns:
    dates = {c.name: c.date_format for c in view.columns if c.date_format is not None}
    texts = view.of_kind(TEXT)
    strings = (*view.of_kind(CATEGORICAL), *dates, *texts)
    return Columns(view.of_kind(NUMERIC), strings, plan.heads, dates, texts)


def open_splits(
    view: DataView, plan: Plan, spec: Spec, enough: int | None = None, processes: int = 1
) -> Splits:
    """The checked data's parts. In memory: the table split by a stratified draw. Streamed
    (data.streaming): one scan of the file (up to `enough` rows a part, for a --smoke run),
    then parts read again on demand; several `processes` each read a share of the blocks the
    scan finds, so the blocks are made smaller when the file is small."""
    columns = data_columns(view, plan)
    seed, data = spec.training.seed, spec.data
    # bagged members take their validation rows from the folds of the training part
    validation_fraction = 0.0 if plan.bagging else data.validation_fraction
    validation = validation_fraction > 0
    source: Source
    if view.streamed is None:
        source = split_table(
            view.table, columns, seed, plan.test_fraction, validation_fraction, plan.stratify_by,
        )  # fmt: skip
    else:
        from taskfit.feed.stream import StreamSource, shard_block_bytes

        size = view.streamed.stat().st_size
        numbers = Columns(columns.numeric, (), ())
        source = StreamSource(
            view.streamed,
            view.table.columns,
            columns,
            view.table.n_rows,
            encode_table(view.table, numbers).rows.numeric,
            seed,
            plan.test_fraction,
            validation_fraction,
            None if processes == 1 else shard_block_bytes(size, processes),
        )
    scanned = scan(source, columns, seed, validation=validation, enough=enough)
    splits = Splits(source, columns, scanned, seed, folds=plan.members if plan.bagging else 0)
    return splits.head(enough) if enough is not None else splits
