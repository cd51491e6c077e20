"""Run a call on a thread whose C stack is large: libcst's native parser recurses without a limit.

One such thread per process serves every call. A thread per call would map a fresh stack and, in
glibc, often a fresh malloc arena for each file, and fault their pages in again: a tenth of the
libcst parse on torch's sources.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")
_Request = tuple[Callable[..., Any], tuple[object, ...], list[tuple[bool, Any]], threading.Event]


class BigStackRunner:
    """Calls run one at a time, in order, on one daemon thread started on first use (and again in
    a child process after `fork`, where the parent's thread does not exist)."""

    def __init__(self, stack_size: int) -> None:
        self.stack_size = stack_size
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()

    def call(self, function: Callable[..., _T], *args: object) -> _T:
        if threading.current_thread() is self._thread:
            return function(*args)  # already on the big stack
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()
        self._requests_to_serve().put((function, args, outcome, done))
        done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _requests_to_serve(self) -> queue.SimpleQueue[_Request]:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._requests = queue.SimpleQueue()  # nothing from before a fork is pending
                previous = threading.stack_size(self.stack_size)
                try:
                    self._thread = threading.Thread(
                        target=self._serve, args=(self._requests,), name="esper-lint-parse", daemon=True
                    )
                    self._thread.start()
                finally:
                    threading.stack_size(previous)
            return self._requests

    @staticmethod
    def _serve(requests: queue.SimpleQueue[_Request]) -> None:
        while True:
            function, args, outcome, done = requests.get()
            try:
                outcome.append((True, function(*args)))
            except BaseException as exc:  # re-raised in the caller's thread
                outcome.append((False, exc))
            del function, args  # the serving thread must not keep the last file's trees alive
            done.set()
