"""The one representation of rows on their way to the model: a columnar chunk. Data in memory is
one chunk; a streamed CSV is one chunk per block of the file; a process of several reads its own
blocks. Everything after the CSV reader (statistics, splits, batches, Keras's inputs) takes
chunks, so no data kind has code of its own past the reading."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Inputs = dict[str, np.ndarray]  # column -> (rows, 1): float32 (NaN where empty) or str ("" empty)
Targets = dict[str, np.ndarray]  # head name -> what its loss takes (one task: one head)
Rows = np.ndarray | slice  # row positions, a boolean mask or a slice


@dataclass(frozen=True)
class Chunk:
    """Rows of the table: the numeric columns as one matrix (the model takes them so), each
    category column apart, and every head's targets."""

    numeric: np.ndarray  # (rows, numeric columns) float32, NaN for a gap
    categorical: dict[str, np.ndarray]  # column -> (rows, 1) str, "" for a gap
    y: Targets

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def take(self, rows: Rows) -> Chunk:
        return Chunk(
            self.numeric[rows],
            {c: v[rows] for c, v in self.categorical.items()},
            {h: v[rows] for h, v in self.y.items()},
        )

    def head(self, n: int) -> Chunk:
        return self.take(slice(0, n))

    def only(self, heads: Sequence[str]) -> Chunk:
        """These heads' targets alone (a head trained by itself)."""
        return Chunk(self.numeric, self.categorical, {h: self.y[h] for h in heads})

    def named(self, numeric: Sequence[str]) -> Inputs:
        """Each column apart, by name (`numeric`: the matrix's column names), as the saved
        model takes them."""
        x = {c: self.numeric[:, [j]] for j, c in enumerate(numeric)}
        return x | self.categorical

    @property
    def target(self) -> np.ndarray:
        """The targets of a single head."""
        (only,) = self.y.values()
        return only


def concat(chunks: Sequence[Chunk]) -> Chunk:
    """The chunks' rows, in order."""
    if len(chunks) == 1:
        return chunks[0]
    a = chunks[0]
    return Chunk(
        np.concatenate([c.numeric for c in chunks]),
        {k: np.concatenate([c.categorical[k] for c in chunks]) for k in a.categorical},
        {k: np.concatenate([c.y[k] for c in chunks]) for k in a.y},
    )


@dataclass(frozen=True)
class Block:
    """Rows as the reader read them, before the split: every row (labelled or not), and the
    part each labelled row belongs to."""

    rows: Chunk  # targets of an unlabelled row are a placeholder 0
    labelled: np.ndarray  # bool: every head's label is there
    parts: np.ndarray  # int8: TRAIN, VALIDATION or TEST (meaningful where labelled)
    first: int = 0  # the row number of its first row (0 = the first data row)
    span: Span | None = None  # where a streamed block lies in its file (to read it again)

    def part(self, code: int) -> Chunk:
        return self.rows.take(self.labelled & (self.parts == code))


@dataclass(frozen=True)
class Span:
    """A block of whole rows by its bytes in the file: to be read again alone."""

    offset: int
    size: int
    first: int  # the row number of its first row


TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
PART_NAMES = {code: name for name, code in PARTS.items()}
