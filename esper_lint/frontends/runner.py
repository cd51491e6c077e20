"""Run the engine over many files: in parallel, and from the result cache when nothing changed.

Results never depend on the number of processes or on the cache: each file's findings are computed
from its bytes and the effective configuration alone, and the caller sorts them. A warm run stats
each file and reads only the cache's shards (frontends/cache.py says when a stat may vouch for a
file's bytes, and when they are hashed instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from esper_lint.config import Config
from esper_lint.engine import may_find
from esper_lint.frontends.discovery import display_path
from esper_lint.frontends.reading import read_regular_file
from esper_lint.model import Analysis

# The cache, the worker pool and the engine's analysis load only once a file may hold something:
# a pre-commit run over files without private uses reads and pre-checks them, and is done.
if TYPE_CHECKING:
    from esper_lint.frontends.cache import Snapshot
    from esper_lint.frontends.paths import StrPath

__all__ = ["CACHE_DIR_NAME", "PRECHECK_FIRST_UP_TO", "FileOutcome", "run_files"]

CACHE_DIR_NAME = ".esper-lint-cache"  # the cache's folder in a project (frontends/cache.py)
# Up to this many files, each is read and pre-checked before the cache is consulted: cheaper than
# loading the cache for a handful of files. Beyond it, a warm run should stat and not read.
PRECHECK_FIRST_UP_TO = 64


class FileOutcome(NamedTuple):
    path: StrPath  # as the caller gave it
    analysis: Analysis | None
    error: str | None = None


# (path, displayed path, configuration, record references, snapshot the file for the cache)
_Task = tuple[str, str, Config, bool, bool]


def _analyse_one(task: _Task) -> tuple[str, Analysis | None, str | None, Snapshot | None]:
    from esper_lint.engine import analyse_source
    from esper_lint.frontends.cache import begin_read, finish_read
    from esper_lint.frontends.errors import processing

    raw_path, display, config, with_references, snapshot_wanted = task
    begun = begin_read(raw_path) if snapshot_wanted else None
    try:
        data = read_regular_file(raw_path)
    except OSError as exc:
        return raw_path, None, f"{display}: cannot read: {exc.strerror or exc}", None
    snapshot = finish_read(raw_path, begun, data) if begun is not None else None  # the bytes analysed
    with processing(display):  # a bug names the file and ends the run as an internal error
        analysis = analyse_source(data, display, config, with_references=with_references)
    return raw_path, analysis, None, snapshot


def run_files(
    files: Sequence[StrPath],
    config: Config,
    *,
    jobs: int | None = None,
    cache_dir: StrPath | None = None,
    with_references: bool = False,
) -> Iterator[FileOutcome]:
    if len(files) <= PRECHECK_FIRST_UP_TO:
        pending: list[StrPath] = []
        for path in files:
            clean = _surely_clean(path, config)
            if clean is None:
                pending.append(path)
            else:
                yield FileOutcome(path, clean)
        files = pending
        if not files:
            return
    from pathlib import Path

    from esper_lint.frontends.cache import ResultCache
    from esper_lint.frontends.pool import map_files

    cache = ResultCache(Path(cache_dir), config, with_references) if cache_dir else None
    tasks: list[_Task] = []
    given: dict[str, StrPath] = {}  # each task's path as the caller gave it, for its outcome
    for path in files:  # looked up in the parent: a warm run starts no worker at all
        display = display_path(path)
        hit = cache.lookup(path, display, read_regular_file) if cache is not None else None
        if hit is not None:
            yield FileOutcome(path, hit)
        else:
            tasks.append((str(path), display, config, with_references, cache is not None))
            given[str(path)] = path
    displays = {task[0]: task[1] for task in tasks}
    for raw_path, analysis, error, snapshot in map_files(_analyse_one, tasks, jobs=jobs):
        if cache is not None and analysis is not None:
            cache.record(raw_path, displays[raw_path], snapshot, analysis)
        yield FileOutcome(given[raw_path], analysis, error)
    if cache is not None:
        cache.flush()


def _surely_clean(path: StrPath, config: Config) -> Analysis | None:
    """The analysis of a file that cannot hold anything to report (engine.may_find), else None:
    also when it cannot be read, which the full path reports as it always does."""
    try:
        data = read_regular_file(str(path))
    except OSError:
        return None
    return None if may_find(data, config) else Analysis(display_path(path))
