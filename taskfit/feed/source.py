"""What every data kind provides to the statistics, the splits and the batches: its blocks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from taskfit.feed.chunk import Block, Span


class Source(Protocol):
    """The rows, block by block, each row labelled and assigned its part: in memory
    (taskfit.feed.memory, one block) or a streamed CSV (taskfit.feed.stream, a block per
    8 MiB of the file)."""

    @property
    def in_memory(self) -> bool:
        """All rows are in one block already (Keras then takes whole arrays)."""
        ...

    @property
    def name(self) -> str:
        """The data as messages name it."""
        ...

    def blocks(self, spans: Sequence[Span] | None = None) -> Iterator[Block]:
        """Every block in order, or only the given spans of a file."""
        ...

    def sample(self) -> np.ndarray:
        """A numeric matrix that decides which columns are heavy-tailed."""
        ...

    def with_validation_joined(self) -> Source:
        """The same rows, the validation part training too (a refit)."""
        ...
