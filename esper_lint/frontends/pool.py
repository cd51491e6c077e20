"""The one worker pool: the runner (`check`, `verify`, `inventory`) and the fixer map their
per-file function over files through it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

_Task = TypeVar("_Task")
_Result = TypeVar("_Result")

SERIAL_BELOW = 16  # starting worker processes costs more than handling a handful of files


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def map_files(
    function: Callable[[_Task], _Result],
    tasks: Sequence[_Task],
    path_of: Callable[[_Task], str],
    *,
    jobs: int | None,
) -> Iterator[_Result]:
    """`function` over `tasks`, in this process for one job or a handful of files, else in a pool
    of worker processes, largest files first. Results come in the order they are computed:
    callers that need the input order restore it."""
    workers = max(1, jobs or default_jobs())
    if workers == 1 or len(tasks) < SERIAL_BELOW:
        yield from map(function, tasks)
        return
    # Largest files first, in small chunks: a big file that starts last leaves the other workers
    # idle while it finishes.
    ordered = sorted(tasks, key=lambda task: _size(path_of(task)), reverse=True)
    chunk = max(1, min(16, len(ordered) // (workers * 32)))
    from concurrent.futures import ProcessPoolExecutor  # only here: a pre-commit run of a few files never pays for it

    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(function, ordered, chunksize=chunk)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
