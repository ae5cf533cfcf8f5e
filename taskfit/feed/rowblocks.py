"""A CSV file cut into blocks of whole rows by their bytes, without parsing it: each block ends at
a line break outside quoted cells, so pyarrow can parse every block alone (and a process of
several can read only its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

QUOTE = b'"'
STRAY_BLOCKS = 4  # blocks without a balanced line break before pyarrow's own reader takes over


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
