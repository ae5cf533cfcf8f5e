"""`data.streaming`: a CSV read in blocks of whole rows, never whole in memory.

- `check` reads the first SAMPLE_ROWS rows only, to infer the column types and the labels.
- This module reads the file in blocks of about 8 MiB cut at row ends (taskfit.feed.rowblocks),
  each parsed by pyarrow.csv.read_csv on all cores and encoded by taskfit.feed.cells as every
  other source is; a block can be read again alone (a process of several reads only its own).
  Rows are split by a hash of their row number and the seed, so every pass (the scan, each
  epoch, the evaluation) puts each row in the same part without holding a list of rows.
  Classes are not stratified (each keeps its share only on average).
- taskfit.feed.scan gathers, in one pass over the training rows, what the model is fitted to;
  taskfit.feed.splits reads the parts again each epoch, training rows shuffled through a
  bounded buffer, so memory stays flat however large the file is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.data.labels import MISSING
from taskfit.errors import DataError
from taskfit.feed.cells import Columns, Where, encode
from taskfit.feed.chunk import TEST, TRAIN, VALIDATION, Block, Span
from taskfit.feed.rowblocks import row_blocks

BLOCK_BYTES = 2**23  # bytes per block (8 MiB), each parsed by pyarrow on all cores
SHARE_BLOCKS = 8  # blocks each of several processes reads at least
MIN_BLOCK_BYTES = 4096


def row_parts(first: int, n: int, seed: int, test: float, validation: float) -> np.ndarray:
    """Each row's part (TRAIN, VALIDATION, TEST) from a hash of its number and the seed:
    splitmix64, whose top 53 bits are a uniform number in [0, 1). `validation` is a share of
    what the test part leaves, as in the in-memory split."""
    with np.errstate(over="ignore"):
        z = np.arange(first, first + n, dtype=np.uint64) + np.uint64(seed) * np.uint64(
            0x9E3779B97F4A7C15
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    parts = np.full(n, TRAIN, dtype=np.int8)
    parts[u < test + (1 - test) * validation] = VALIDATION
    parts[u < test] = TEST
    return parts


@dataclass(frozen=True)
class StreamSource:
    """A streamed CSV as a source of blocks: what to read and how to split it."""

    path: Path
    header: tuple[str, ...]  # every column, as check read them (names stripped)
    columns: Columns
    checked: int  # the rows check read
    first_rows: np.ndarray  # their numbers: they decide which columns are heavy-tailed
    seed: int
    test_fraction: float
    validation_fraction: float
    block_bytes: int | None = None  # bytes per block; None: BLOCK_BYTES
    joined: bool = False  # the validation rows train too (a refit)
    in_memory = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def block_size(self) -> int:
        return self.block_bytes or BLOCK_BYTES

    def sample(self) -> np.ndarray:
        return self.first_rows

    def with_validation_joined(self) -> StreamSource:
        return replace(self, joined=True)

    def blocks(self, spans: Sequence[Span] | None = None) -> Iterator[Block]:
        """The file in blocks (or only the given spans of it), each row encoded and assigned
        its part."""
        import pyarrow as pa

        try:
            for first, span, table in _tables(self, spans):
                yield self._block(table, first, span)
        except pa.ArrowInvalid as exc:
            raise DataError(f"{self.name}: is not a readable CSV: {exc}") from None
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.name}: cannot be read: {exc}") from None

    def _block(self, table: Any, first: int, span: Span | None) -> Block:
        n = table.num_rows
        parts = row_parts(first, n, self.seed, self.test_fraction, self.validation_fraction)
        if self.joined:
            parts[parts == VALIDATION] = TRAIN
        columns = {c: table.column(c) for c in self.columns.read}
        where = Where(lambda row: csv_line(self.path, span, first, row), self.name, self.checked)
        return encode(columns, self.columns, where, parts, first, span)


def shard_block_bytes(file_bytes: int, processes: int) -> int:
    """Blocks small enough that each of several processes reads at least SHARE_BLOCKS of them,
    so that their shares stay near equal even for a small file."""
    return max(MIN_BLOCK_BYTES, min(BLOCK_BYTES, file_bytes // (SHARE_BLOCKS * processes)))


def _tables(
    source: StreamSource, spans: Sequence[Span] | None
) -> Iterator[tuple[int, Span | None, Any]]:
    """(first row number, span, pyarrow table) per block, in order. Each block is parsed by
    pyarrow.csv.read_csv on all cores while the caller works on the one before (pyarrow's own
    streaming reader parses one small block at a time, about 1.7x slower). Rows that reader
    reads after an unbalanced quote (see row_blocks) have no span."""
    from concurrent.futures import Future, ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.csv as pacsv

    typed, text = _csv_options(source, typed=True), _csv_options(source, typed=False)

    def parsed(block: memoryview, offset: int) -> Any:
        def read(options: tuple[Any, Any]) -> Any:
            parse, convert = options
            return pacsv.read_csv(
                pa.py_buffer(block),
                read_options=_read_options(source, offset),
                parse_options=parse,
                convert_options=convert,
            )

        try:
            return read(typed)
        except pa.ArrowInvalid:  # a cell pyarrow does not read as a number: feed.cells decides
            return read(text)

    first = 0  # rows so far
    pending: list[tuple[int, int, int | None, Future[Any]]] = []

    def ready() -> tuple[int, Span | None, Any]:
        nonlocal first
        offset, size, known, future = pending.pop(0)
        table = future.result()
        at = first if known is None else known
        first = at + table.num_rows
        return at, Span(offset, size, at), table

    path = source.path
    blocks: Iterator[tuple[int, memoryview | None, int | None]] = (
        ((offset, block, None) for offset, block in row_blocks(path, source.block_size))
        if spans is None
        else _reread(path, spans)
    )
    with ThreadPoolExecutor(1) as parser:
        for offset, block, known in blocks:
            if block is None:  # no balanced break: pyarrow's own reader takes the rest
                while pending:
                    yield ready()
                for table in _stream_from(source, offset, text):
                    yield first, None, table
                    first += table.num_rows
                return
            pending.append((offset, len(block), known, parser.submit(parsed, block, offset)))
            if len(pending) > 1:
                yield ready()
        while pending:
            yield ready()


def _reread(
    path: Path, spans: Sequence[Span]
) -> Iterator[tuple[int, memoryview | None, int | None]]:
    with open(path, "rb") as f:
        for span in spans:
            f.seek(span.offset)
            yield span.offset, memoryview(f.read(span.size)), span.first


def _csv_options(source: StreamSource, typed: bool) -> tuple[Any, Any]:
    """pyarrow's parse and convert options. Every column as text, which feed.cells reads as
    every source's cells are read; or, `typed`, the numeric ones as numbers with the missing
    markers as gaps: the same values where pyarrow reads every cell (twice as fast, measured
    on a 1M x 33 file), and a block where it cannot is read again as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = source.columns.read
    numbers = set(source.columns.numbers) if typed else set()
    nulls = sorted({v for m in MISSING for v in (m, m.upper(), m.capitalize())})
    convert = pacsv.ConvertOptions(
        column_types={c: pa.float64() if c in numbers else pa.string() for c in names},
        include_columns=list(names),
        null_values=nulls,
        strings_can_be_null=False,  # only numbers may be null: text cells go to feed.cells
    )
    return pacsv.ParseOptions(newlines_in_values=True), convert  # quoted line breaks allowed


def _read_options(source: StreamSource, offset: int) -> Any:
    """The header as check read it (stripped names); the file's own header line, at offset 0,
    is skipped."""
    import pyarrow.csv as pacsv

    return pacsv.ReadOptions(column_names=list(source.header), skip_rows=int(offset == 0))


def _stream_from(source: StreamSource, offset: int, options: tuple[Any, Any]) -> Iterator[Any]:
    """pyarrow's streaming reader from a row's first byte to the end of the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse, convert = options
    with open(source.path, "rb") as f:
        f.seek(offset)
        read = _read_options(source, offset)
        reader = pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield pa.Table.from_batches([batch])


def csv_line(path: Path, span: Span | None, first: int, row: int) -> int:
    """The file line (the header is line 1) of row `row` of a block: blank lines and line breaks
    inside quoted cells counted, as csv.reader counts them in memory. Only errors need it, so it
    reads the file again: the line breaks before the block, then the block's own rows. Rows read
    by pyarrow's fallback reader (no span) get the line they would have without either."""
    if span is None:
        return first + row + 2
    before, last = 1, b""
    with open(path, "rb") as f:
        for _ in range(0, span.offset, BLOCK_BYTES):
            data = f.read(min(BLOCK_BYTES, span.offset - f.tell()))
            # \n, \r\n and a lone \r each end a line, as for csv.reader
            before += data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
            before -= last == b"\r" and data[:1] == b"\n"  # a \r\n across two reads
            last = data[-1:]
        text = f.read(span.size).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    if span.offset == 0:
        next(reader)  # the header
    rows = (r for r in reader if r)  # csv yields [] for a blank line, which pyarrow skips
    for _ in range(row + 1):
        next(rows)
    return before + reader.line_num - 1
