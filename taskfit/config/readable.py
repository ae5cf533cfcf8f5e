"""Only regular files are read: a FIFO given as a spec or a CSV would block forever, and a device
such as /dev/zero never ends (read whole, it grew to gigabytes and a MemoryError)."""

from __future__ import annotations

import stat
from pathlib import Path

from taskfit.errors import TaskfitError

SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes; 1 MiB is no spec


def check_regular(
    path: Path,
    where: str,
    error: type[TaskfitError],
    at_most: int | None = None,
    what: str = "a file of this kind",
) -> None:
    """Raises `error` unless `path` is a regular file (a link to one is fine) of at most
    `at_most` bytes (`what` names the kind in the message). A missing file raises
    FileNotFoundError, for the caller's own message."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return  # each caller says what a folder is not
    if not stat.S_ISREG(mode):
        raise error(
            f"{where}: is {file_kind(mode)}, not a regular file; taskfit reads only files. Give "
            "the path of a file (a pipe's contents can be saved to one first)"
        )
    size = path.stat().st_size
    if at_most is not None and size > at_most:
        raise error(
            f"{where}: is {size / 2**20:.1f} MiB; {what} is at most {at_most / 2**20:.0f} MiB. "
            "Check that the path names the file you meant"
        )


def file_kind(mode: int) -> str:
    """What a path that is no regular file is, said plainly: "a named pipe (FIFO)"."""
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISLNK: "a symbolic link",
             stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "a special file")
