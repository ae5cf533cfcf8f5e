"""`data.streaming`: a CSV read in blocks of whole rows, never whole in memory.

- `check` reads the first SAMPLE_ROWS rows only, to infer the column types and the labels.
- This module reads: the file in blocks of about 8 MiB cut at row ends, each parsed by
  pyarrow.csv.read_csv on all cores into a typed chunk, each row labelled and assigned its
  part; a block can be read again alone (a process of several reads only its own). Rows
  are split by a hash of their row number and the seed, so every pass (the scan, each epoch,
  the evaluation) puts each row in the same part without holding a list of rows. Classes are
  not stratified (each keeps its share only on average).
- taskfit.feed.streamscan: one pass gathers, from the training rows only, what the model is fitted
  to (means, variances, medians, vocabularies, class counts, the target's scale).
- taskfit.feed.streamsplits: the parts as training reads them; each epoch reads the file again,
  its training rows shuffled through a bounded buffer, so memory stays flat however large the
  file is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskfit.data.labels import MISSING
from taskfit.data.view import SAMPLE_ROWS
from taskfit.errors import DataError
from taskfit.plan.plan import Head

BLOCK_BYTES = 2**23  # bytes per chunk (8 MiB), each parsed by pyarrow on all cores
TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
PART_NAMES = {code: name for name, code in PARTS.items()}


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
class Layout:
    """What to read from the file and how: the feature columns by kind and the one label."""

    path: Path
    header: tuple[str, ...]  # every column, as check read them (names stripped)
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    head: Head
    seed: int
    test_fraction: float
    validation_fraction: float
    block_bytes: int | None = None  # bytes per chunk; None: BLOCK_BYTES

    @property
    def block_size(self) -> int:
        return self.block_bytes or BLOCK_BYTES

    @property
    def label(self) -> str:
        return self.head.labels.columns[0]


@dataclass
class Chunk:
    first: int  # the row number of its first row (0 = the first data row)
    span: Span | None  # its block's bytes (None: read by pyarrow's own reader)
    numeric: np.ndarray  # (rows, numeric columns) float32, NaN for a gap
    categorical: dict[str, np.ndarray]  # column -> (rows, 1) str, "" for a gap
    y: np.ndarray  # targets as the loss takes them
    labelled: np.ndarray  # bool: the row has a label
    parts: np.ndarray

    def take(self, keep: np.ndarray) -> Chunk:
        return Chunk(
            self.first,
            self.span,
            self.numeric[keep],
            {c: v[keep] for c, v in self.categorical.items()},
            self.y[keep],
            self.labelled[keep],
            self.parts[keep],
        )

    def inputs(self, numeric_block: str) -> dict[str, np.ndarray]:
        x: dict[str, np.ndarray] = dict(self.categorical)
        if self.numeric.shape[1]:
            x[numeric_block] = self.numeric
        return x


@dataclass(frozen=True)
class Span:
    """A block of whole rows by its bytes, as `chunks` read it: to be read again alone."""

    offset: int
    size: int
    first: int  # the row number of its first row


def chunks(layout: Layout, spans: Sequence[Span] | None = None) -> Iterator[Chunk]:
    """The file in chunks (or only the given spans of it), each row typed, labelled and
    assigned its part."""
    import pyarrow as pa

    where = layout.path.name
    try:
        for first, span, table in _tables(layout, spans):
            yield _chunk(table, layout, first, span, where)
    except pa.ArrowInvalid as exc:
        raise DataError(_unreadable(str(exc), layout)) from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{where}: cannot be read: {exc}") from None


def _tables(layout: Layout, spans: Sequence[Span] | None) -> Iterator[tuple[int, Span | None, Any]]:
    """(first row number, span, pyarrow table) per block, in order. Each block is parsed by
    pyarrow.csv.read_csv on all cores while the caller works on the one before (pyarrow's own
    streaming reader parses one small block at a time, about 1.7x slower). Rows that reader
    reads after an unbalanced quote (see row_blocks) have no span."""
    from concurrent.futures import Future, ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = _csv_options(layout)
    parse, convert = options

    def parsed(block: memoryview, offset: int) -> Any:
        return pacsv.read_csv(
            pa.py_buffer(block),
            read_options=_read_options(layout, offset),
            parse_options=parse,
            convert_options=convert,
        )

    first = 0  # rows so far
    pending: list[tuple[int, int, int | None, Future[Any]]] = []

    def ready() -> tuple[int, Span | None, Any]:
        nonlocal first
        offset, size, known, future = pending.pop(0)
        table = future.result()
        at = first if known is None else known
        first = at + table.num_rows
        return at, Span(offset, size, at), table

    path = layout.path
    blocks: Iterator[tuple[int, memoryview | None, int | None]] = (
        ((offset, block, None) for offset, block in row_blocks(path, layout.block_size))
        if spans is None
        else _reread(path, spans)
    )
    with ThreadPoolExecutor(1) as parser:
        for offset, block, known in blocks:
            if block is None:  # no balanced break: pyarrow's own reader takes the rest
                while pending:
                    yield ready()
                for table in _stream_from(layout, offset, options):
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


def _csv_options(layout: Layout) -> tuple[Any, Any]:
    """pyarrow's parse and convert options for the layout's columns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    head = layout.head
    label_type = pa.float64() if head.task == "regression" else pa.string()
    types = {c: pa.float64() for c in layout.numeric}
    types |= {c: pa.string() for c in layout.categorical}
    types[layout.label] = label_type
    nulls = sorted({v for m in MISSING for v in (m, m.upper(), m.capitalize())})
    convert = pacsv.ConvertOptions(
        column_types=types,
        include_columns=[*layout.numeric, *layout.categorical, layout.label],
        null_values=nulls,
        strings_can_be_null=False,  # category gaps are found below, as in the in-memory path
    )
    return pacsv.ParseOptions(newlines_in_values=True), convert  # quoted line breaks allowed


def _read_options(layout: Layout, offset: int) -> Any:
    """The header as check read it (stripped names); the file's own header line, at offset 0,
    is skipped."""
    import pyarrow.csv as pacsv

    return pacsv.ReadOptions(column_names=list(layout.header), skip_rows=int(offset == 0))


def _stream_from(layout: Layout, offset: int, options: tuple[Any, Any]) -> Iterator[Any]:
    """pyarrow's streaming reader from a row's first byte to the end of the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse, convert = options
    with open(layout.path, "rb") as f:
        f.seek(offset)
        read = _read_options(layout, offset)
        reader = pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield pa.Table.from_batches([batch])


QUOTE = b'"'
STRAY_BLOCKS = 4  # blocks without a balanced line break before pyarrow's own reader takes over


def shard_block_bytes(file_bytes: int, processes: int) -> int:
    """Blocks small enough that each of several processes reads at least SHARE_BLOCKS of them,
    so that their shares stay near equal even for a small file."""
    return max(MIN_BLOCK_BYTES, min(BLOCK_BYTES, file_bytes // (SHARE_BLOCKS * processes)))


SHARE_BLOCKS = 8
MIN_BLOCK_BYTES = 4096


def row_blocks(path: Path, size: int) -> Iterator[tuple[int, memoryview | None]]:
    """(offset, bytes): the file in blocks of about `size` bytes, each ending at a line break
    outside quotes, so every block holds whole rows. A break is outside quotes when an even
    number of quote marks comes before it, which holds for any CSV writer's output (RFC 4180:
    quoted cells, quotes inside doubled). A quote inside an unquoted cell (12"), which CSV
    readers take literally, upsets the count: when no balanced break turns up in STRAY_BLOCKS
    blocks' bytes, the last item is (offset, None) and the rest of the file is left to
    pyarrow's own reader from that offset."""
    odd = False  # an odd number of quote marks before `offset`
    offset = 0
    with open(path, "rb") as f:
        while True:
            want = size
            while True:  # the next read starts at a row's first byte: nothing is carried
                f.seek(offset)
                data = f.read(want)
                if len(data) < want:  # the end of the file
                    if data:
                        yield offset, memoryview(data)
                    return
                cut, quotes = _balanced_break(data, odd)
                if cut > 0:
                    break
                if want >= STRAY_BLOCKS * size:
                    yield offset, None
                    return
                want *= 2  # a row longer than a block, or an unbalanced quote
            odd = quotes % 2 == 1
            yield offset, memoryview(data)[:cut]
            offset += cut


def _balanced_break(data: bytes, odd: bool) -> tuple[int, int]:
    """(the end of the last line break in `data` with an even number of quote marks before it,
    counting `odd` for one before the data, or -1; the quote marks before it, `odd` counted).
    A final \\r may be half of a \\r\\n, so it is not a break here."""
    cut = _last_break(data, len(data) - data.endswith(b"\r"))
    quotes = int(odd)
    if cut > 0 and data.find(QUOTE, 0, cut) >= 0:  # most numeric files have none past the header
        quotes += data.count(QUOTE, 0, cut)
    while cut > 0 and quotes % 2:
        earlier = _last_break(data, cut - 1)
        quotes -= data.count(QUOTE, max(earlier, 0), cut)
        cut = earlier
    return cut, quotes


def _last_break(buffer: bytes, end: int) -> int:
    """The index just after the last \\n or \\r before `end`, or -1."""
    found = max(buffer.rfind(b"\n", 0, end), buffer.rfind(b"\r", 0, end))
    return found + 1 if found >= 0 else -1


def _unreadable(message: str, layout: Layout) -> str:
    """pyarrow's parse error, with the column named (pyarrow counts them from 0) and the fix."""
    where = layout.path.name
    found = re.search(r"CSV column #(\d+)", message)
    if found is None:
        return f"{where}: is not a readable CSV: {message}"
    column = layout.header[int(found.group(1))]
    value = re.search(r"invalid value '([^']*)'", message)
    cell = f" has {value.group(1)!r}" if value else " has a cell that is not a number"
    if column == layout.label:
        return f"column {column}: a row of {where}{cell}; a regression label must be a number"
    return (
        f"column {column}: a row of {where} after the first rows check reads{cell}, not a "
        f"number; fix the cell, or list {column} in data.categorical"
    )


def _chunk(batch: Any, layout: Layout, first: int, span: Span | None, where: str) -> Chunk:
    n = batch.num_rows

    def line(row: int) -> int:
        return csv_line(layout.path, span, first, row)

    # column by column into a column-major block: contiguous writes, 4x faster than row-major
    numeric = np.empty((n, len(layout.numeric)), dtype=np.float32, order="F")
    with np.errstate(over="ignore"):  # beyond float32's range: inf, an error below
        for j, column in enumerate(layout.numeric):
            numeric[:, j] = batch.column(column).to_numpy(zero_copy_only=False)
    infinite = np.isinf(numeric)
    if infinite.any():
        j = int(np.flatnonzero(infinite.any(axis=0))[0])
        row = int(np.flatnonzero(infinite[:, j])[0])
        raise DataError(
            f"column {layout.numeric[j]}: CSV line {line(row)} of {where} is infinite or "
            "beyond a 32-bit float (3.4e38); use an empty cell for a missing value"
        )
    categorical = {c: _text(batch.column(c)).reshape(-1, 1) for c in layout.categorical}
    y, labelled = _targets(batch.column(layout.label), layout.head, line, where)
    parts = row_parts(first, n, layout.seed, layout.test_fraction, layout.validation_fraction)
    return Chunk(first, span, numeric, categorical, y, labelled, parts)


def _cells(column: Any) -> Any:
    """Text cells trimmed, a missing marker ("NA", "null", ...) turned into "" (pyarrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    gap = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING)))
    return pc.if_else(gap, "", trimmed)


def _text(column: Any) -> np.ndarray:
    """_cells as the numpy strings a category input takes."""
    return np.asarray(_cells(column).to_numpy(zero_copy_only=False), dtype=object)


def _targets(
    column: Any, head: Head, line: Callable[[int], int], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """(targets, which rows have a label); a class the check did not see is an error. `line`:
    a row's CSV line, for the message."""
    if head.task == "regression":
        y = column.to_numpy(zero_copy_only=False).astype(np.float32)
        bad = np.flatnonzero(np.isinf(y))
        if len(bad):
            raise DataError(
                f"column {head.labels.columns[0]}: CSV line {line(int(bad[0]))} of {where} is "
                "infinite; a regression label must be a finite number"
            )
        return y, ~np.isnan(y)
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = _cells(column)
    known = pa.array(list(head.labels.classes), type=pa.string())
    ids = pc.index_in(cells, value_set=known).fill_null(-1).to_numpy().astype(np.int64)
    labelled = pc.not_equal(cells, "").to_numpy(zero_copy_only=False)
    unknown = np.flatnonzero(labelled & (ids < 0))
    if len(unknown):
        i = int(unknown[0])
        raise DataError(
            f"column {head.labels.columns[0]}: CSV line {line(i)} of {where} has "
            f"{cells[i].as_py()!r}, not among the classes found in the first {SAMPLE_ROWS} rows "
            f"({', '.join(head.labels.classes)}); list every class in data.classes"
        )
    ids = np.where(labelled, ids, 0)
    if head.onehot_targets:
        return np.eye(len(head.labels.classes), dtype=np.float32)[ids], labelled
    if head.output_units == 1:
        return ids.astype(np.float32), labelled
    return ids, labelled


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


def concat_chunks(*chunks: Chunk) -> Chunk:
    a = chunks[0]
    return Chunk(
        a.first,
        a.span,
        np.concatenate([c.numeric for c in chunks]),
        {k: np.concatenate([c.categorical[k] for c in chunks]) for k in a.categorical},
        np.concatenate([c.y for c in chunks]),
        np.concatenate([c.labelled for c in chunks]),
        np.concatenate([c.parts for c in chunks]),
    )


def named(chunk: Chunk, layout: Layout) -> dict[str, np.ndarray]:
    """The chunk's inputs by column name, each (rows, 1), as arrays.Part holds them."""
    x = {c: chunk.numeric[:, [j]] for j, c in enumerate(layout.numeric)}
    return x | chunk.categorical
