"""Data in memory as a source of one Block: the table check read, encoded once, its labelled rows
split by a seeded, stratified draw (test first, then validation from the rest; each class of the
`stratify` head keeps its share in every part)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from taskfit.data.csvtable import Table
from taskfit.feed.cells import Columns, Where, encode
from taskfit.feed.chunk import TEST, TRAIN, VALIDATION, Block, Span
from taskfit.feed.classes import class_ids


def table_columns(table: Table, names: Sequence[str]) -> dict[str, Any]:
    """The table's columns as the pyarrow string arrays feed.cells reads."""
    import pyarrow as pa

    return {c: pa.array(table.cells[c], type=pa.string()) for c in names}


def encode_table(table: Table, wanted: Columns, file: str | None = None) -> Block:
    """Every row of the table (unsplit: all in TRAIN), errors naming its CSV lines."""
    where = Where(lambda row: table.lines[row], file, line_name=table.line_name)
    return encode(table_columns(table, wanted.read), wanted, where)


@dataclass(frozen=True)
class MemorySource:
    """One block, its rows arranged part by part (each part in its drawn order, then the rows
    without a label), so that a part is a slice of it."""

    block: Block
    joined: bool = False  # the validation rows train too (a refit)
    in_memory = True
    name = "the table"

    def blocks(self, spans: Sequence[Span] | None = None) -> Iterator[Block]:
        if not self.joined:
            yield self.block
            return
        parts = np.where(self.block.parts == VALIDATION, TRAIN, self.block.parts)
        yield replace(self.block, parts=parts.astype(np.int8))

    def sample(self) -> np.ndarray:
        """The training rows' numbers: they decide which columns are heavy-tailed."""
        (block,) = self.blocks()
        return block.part(TRAIN).numeric

    def with_validation_joined(self) -> MemorySource:
        return replace(self, joined=True)


def split_table(
    table: Table,
    wanted: Columns,
    seed: int,
    test_fraction: float,
    validation_fraction: float,
    stratify: str | None,
) -> MemorySource:
    """The table as one block, its labelled rows drawn into the parts."""
    block = encode_table(table, wanted)
    labelled = np.flatnonzero(block.labelled)
    rng = np.random.default_rng(seed)
    n = len(labelled)
    y = block.rows.y
    groups = class_ids(y[stratify][labelled]) if stratify else np.zeros(n, dtype=np.int64)
    rest, test = _cut(np.arange(n), groups, test_fraction, rng)
    validation = np.empty(0, dtype=np.int64)
    if validation_fraction > 0:
        rest, validation = _cut(rest, groups, validation_fraction, rng)
    unlabelled = np.flatnonzero(~block.labelled)
    order = np.concatenate([labelled[rest], labelled[validation], labelled[test], unlabelled])
    parts = np.concatenate(
        [np.full(len(p), code, dtype=np.int8) for p, code in
         ((rest, TRAIN), (validation, VALIDATION), (test, TEST), (unlabelled, TRAIN))]
    )  # fmt: skip
    arranged = Block(block.rows.take(order), block.labelled[order], parts)
    return MemorySource(arranged)


def _cut(
    rows: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    keep, take = [], []
    for group in np.unique(groups[rows]):
        members = rng.permutation(rows[groups[rows] == group])
        n = round(len(members) * fraction)
        take.append(members[:n])
        keep.append(members[n:])
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(take))
