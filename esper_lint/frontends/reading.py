"""Reading a file to lint or fix, or a file the user controls (pyproject.toml, a baseline): regular
files only, and where a limit is given, at most that many bytes.

A FIFO named `x.py` would block a plain `open` forever, and a `*.py` link to `/dev/zero` or
`/dev/urandom` would be read until memory runs out. The file is opened without blocking
(`O_NONBLOCK`), then `fstat` on the open descriptor decides, so what is read is exactly what was
checked: no window between a check and the read. With a `limit`, the read stops one byte past it
and a longer file is refused, whatever its size claims.
"""

from __future__ import annotations

import errno
import os
import stat

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_FLAGS |= getattr(os, "O_BINARY", 0)


class NotRegularFile(OSError):
    """The path names something other than a regular file (a FIFO, a device, a socket, a folder)."""


def file_kind(mode: int) -> str:
    """What a stat mode describes, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular(mode: int) -> NotRegularFile:
    return NotRegularFile(errno.EINVAL, f"not a regular file ({file_kind(mode)})")


MIB = 1024 * 1024


def read_regular_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of `path` (symbolic links followed), which must be a regular file (of at most
    `limit` bytes where given); OSError otherwise (NotRegularFile for FIFOs, devices, sockets and
    folders, FileTooLarge past the limit)."""
    return read_regular_file_and_stat(path, limit)[0]


class FileTooLarge(OSError):
    """A regular file longer than the reader's limit."""


def read_regular_file_and_stat(path: str | os.PathLike[str], limit: int | None = None) -> tuple[bytes, os.stat_result]:
    """`read_regular_file`, with the `fstat` of the file that was read."""
    descriptor = os.open(path, _FLAGS)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular(info.st_mode)
        chunks: list[bytes] = []
        remaining = limit + 1 if limit is not None else None
        while remaining is None or remaining > 0:
            size = max(info.st_size + 1, 1 << 16) if not chunks else 1 << 20
            chunk = os.read(descriptor, size if remaining is None else min(size, remaining))
            if not chunk:
                break
            chunks.append(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        if remaining is not None and remaining <= 0:
            shown = f"{limit // MIB} MB" if limit and limit % MIB == 0 else f"{limit} bytes"
            raise FileTooLarge(errno.EFBIG, f"larger than {shown}")
        return b"".join(chunks), info
    finally:
        os.close(descriptor)
