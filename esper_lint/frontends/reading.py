"""Reading a file to lint or fix: regular files only.

A FIFO named `x.py` would block a plain `open` forever, and a `*.py` link to `/dev/zero` or
`/dev/urandom` would be read until memory runs out. The file is opened without blocking
(`O_NONBLOCK`), then `fstat` on the open descriptor decides, so what is read is exactly what was
checked: no window between a check and the read.
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


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of `path` (symbolic links followed), which must be a regular file; OSError
    otherwise (NotRegularFile for FIFOs, devices, sockets and folders)."""
    return read_regular_file_and_stat(path)[0]


def read_regular_file_and_stat(path: str | os.PathLike[str]) -> tuple[bytes, os.stat_result]:
    """`read_regular_file`, with the `fstat` of the file that was read."""
    descriptor = os.open(path, _FLAGS)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular(info.st_mode)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(descriptor, max(info.st_size + 1, 1 << 16) if not chunks else 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks), info
    finally:
        os.close(descriptor)
