"""Give freed heap memory back to the operating system after a big file.

libcst's native parser and CPython's compiler allocate through C `malloc`. glibc keeps what they
free for reuse, so after torch's largest file (1.4 MB of source, about 200 MiB while it is
analysed) a process would stay that large, and the next big file would stack its own needs on
top: the peak of a whole run became the sum of its two largest files instead of the largest.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked_up = False


def release_free_memory() -> None:
    """`malloc_trim(0)` where the C library has it (glibc); elsewhere nothing."""
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _trim = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):  # musl and other C libraries have no malloc_trim
                _trim = None
    if _trim is not None:
        _trim(0)
