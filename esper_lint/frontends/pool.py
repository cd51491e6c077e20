"""The one worker pool: the runner (`check`, `verify`, `inventory`) and the fixer map their
per-file function over files through it.

No worker outlives the run: each dies with its parent (`PR_SET_PDEATHSIG` on Linux, and a watchdog
thread everywhere), ignores Ctrl-C (the parent handles it), and is killed, with the queued work
dropped, when the run stops early (an error, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Executor

_Task = TypeVar("_Task", bound=tuple[Any, ...])  # a file's path first, then what the function needs
_Result = TypeVar("_Result")

SERIAL_BELOW = 16  # starting worker processes costs more than handling a handful of files


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def map_files(
    function: Callable[[_Task], _Result],
    tasks: Sequence[_Task],
    *,
    jobs: int | None,
) -> Iterator[_Result]:
    """`function` over `tasks`, in this process for one job or a handful of files, else in a pool
    of worker processes, largest files first (each task's first item is its file's path). Results come in the order they are computed:
    callers that need the input order restore it."""
    workers = max(1, jobs or default_jobs())
    if workers == 1 or len(tasks) < SERIAL_BELOW:
        yield from map(function, tasks)
        return
    # Largest files first, in small chunks: a big file that starts last leaves the other workers
    # idle while it finishes.
    ordered = sorted(tasks, key=lambda task: _size(task[0]), reverse=True)
    chunk = max(1, min(16, len(ordered) // (workers * 32)))
    from concurrent.futures import ProcessPoolExecutor  # only here: a pre-commit run of a few files never pays for it

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_started, initargs=(os.getpid(),))
    try:
        yield from pool.map(function, ordered, chunksize=chunk)
    except BaseException:
        # A crash, Ctrl-C, SIGTERM (see cli.main) or a caller that stops reading: the queued work
        # is dropped and the workers killed, instead of waiting for every file to finish.
        stop(pool)
        raise
    pool.shutdown(wait=True)


def stop(pool: Executor) -> None:
    """Cancel what has not started and kill the workers now."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the stdlib has no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=5)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_PERIOD_S = 1.0


def _worker_started(parent: int) -> None:
    """Every worker's first call: it leaves Ctrl-C to the parent (which then stops it), and it dies
    with the parent, however the parent ends (SIGKILL, the OOM killer, a CI cancel)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (cli.main), inherited by fork
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:  # no prctl here: the watchdog below still ends the worker
            pass
    adopted_by = os.getppid()
    if not _parent_alive(parent, adopted_by):  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watchdog, args=(parent, adopted_by), name="esper-lint-watchdog", daemon=True).start()


def _parent_alive(parent: int, adopted_by: int) -> bool:
    if os.getppid() != adopted_by:
        return False  # re-parented: whoever started the worker has ended
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _watchdog(parent: int, adopted_by: int) -> None:
    while _parent_alive(parent, adopted_by):
        time.sleep(WATCHDOG_PERIOD_S)
    os._exit(1)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
