"""The one thread with a large C stack that runs libcst: deep recursion, errors, forks, threads."""

from __future__ import annotations

import multiprocessing
import sys
import threading

import pytest

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fast.big_stack import BigStackRunner

SOURCE = b"import torch\nx = torch._foreach_norm(y)\n"


def _depth(n: int) -> int:
    return 0 if n == 0 else 1 + _depth(n - 1)


def test_recursion_far_deeper_than_the_main_threads_stack_allows() -> None:
    runner = BigStackRunner(256 * 1024 * 1024)
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(200_000)
    try:
        assert runner.call(_depth, 150_000) == 150_000
    finally:
        sys.setrecursionlimit(previous)


def test_one_thread_serves_every_call_and_errors_reach_the_caller() -> None:
    runner = BigStackRunner(16 * 1024 * 1024)
    names = {runner.call(lambda: threading.current_thread().ident) for _ in range(5)}
    assert len(names) == 1 and threading.get_ident() not in names
    with pytest.raises(KeyError, match="missing"):
        runner.call(lambda: {}["missing"])
    assert runner.call(lambda a, b: a + b, 2, 3) == 5  # still serving after an error


def test_calls_from_several_threads_each_get_their_own_result() -> None:
    runner = BigStackRunner(16 * 1024 * 1024)
    results: dict[int, int] = {}

    def ask(n: int) -> None:
        results[n] = runner.call(lambda: n * n)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: n * n for n in range(8)}


def _analyse_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    analysis = analyse_source(SOURCE, "child.py", Config())
    queue.put([(f.line, f.code) for f in analysis.findings])


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX-only")
def test_a_forked_child_starts_its_own_thread() -> None:
    """The parent's serving thread does not exist in a forked child (flake8 -j forks)."""
    assert analyse_source(SOURCE, "parent.py", Config()).findings  # the parent's thread is running
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_analyse_in_child, args=(results,))
    child.start()
    found = results.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and found == [(2, "ESP101")]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or __import__("platform").libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_freed_memory_is_handed_back_through_glibc() -> None:
    from esper_lint.fast import memory

    memory.release_free_memory()
    memory.release_free_memory()  # looked up once, then reused
    assert memory._trim is not None and memory._looked_up
