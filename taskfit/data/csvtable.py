"""A CSV file -> its columns as strings, and rows -> CSV text (stdlib only, so `check` stays
instant).

Every way a file can be unreadable becomes a DataError naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskfit.config.readable import check_regular
from taskfit.errors import DataError
from taskfit.progress import open_csv


@dataclass(frozen=True)
class Table:
    path: str
    columns: tuple[str, ...]
    cells: dict[str, list[str]]  # column -> one string per row, as written
    lines: list[int]  # the file line of each data row (the header is line 1)
    line_name: str = "CSV line"  # what `lines` count, for messages ("row" of a JSON request)

    @property
    def n_rows(self) -> int:
        return len(self.lines)


def read_csv(path: Path, max_rows: int | None = None) -> Table:
    """The whole file, or its header and first `max_rows` data rows."""
    where = str(path)
    try:
        if path.is_dir():  # inside the try: a name too long fails already here
            raise DataError(f"{where}: is a folder; give the path of a CSV file")
        check_regular(path, where, DataError)
        with open_csv(path) as f:
            reader = csv.reader(f)
            rows, lines = [], []
            for row in reader:
                if row:  # csv yields [] for blank lines
                    rows.append(row)
                    lines.append(reader.line_num)
                    if max_rows is not None and len(rows) > max_rows:
                        break
    except FileNotFoundError:
        raise DataError(
            f"{where}: no such file; data.source is a bundled dataset's name (taskfit datasets) "
            "or a CSV path relative to the spec file"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{where}: is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{where}: is not a readable CSV: {exc}") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot be read: {exc.strerror}") from None
    if not rows:
        raise DataError(f"{where}: is empty; expected a header line and data rows")
    header = tuple(name.strip() for name in rows[0])
    twice = [name for name, n in Counter(header).items() if n > 1]
    if twice:
        raise DataError(
            f"{where}: column names must be unique; repeated: {', '.join(twice)}. "
            "Rename one of each pair in the header line."
        )
    if len(rows) == 1:
        raise DataError(f"{where}: has a header but no data rows")
    for line, row in zip(lines[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise DataError(
                f"{where}:{line}: has {len(row)} fields; the header has "
                f"{len(header)}. Every row needs one value per column."
            )
    cells = {name: [row[j].strip() for row in rows[1:]] for j, name in enumerate(header)}
    return Table(where, header, cells, lines[1:])


def csv_text(columns: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows)
    return out.getvalue()
