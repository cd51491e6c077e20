"""Run the engine over many files: in parallel, and from a content-hash cache when nothing changed.

Results never depend on the number of processes or on the cache: each file's findings are computed
from its bytes and the effective configuration alone, and the caller sorts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.frontends.cache import CACHE_DIR_NAME, ResultCache
from esper_lint.frontends.discovery import display_path
from esper_lint.frontends.errors import processing
from esper_lint.frontends.pool import map_files
from esper_lint.frontends.reading import read_regular_file
from esper_lint.model import Analysis

__all__ = ["CACHE_DIR_NAME", "FileOutcome", "run_files"]


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    analysis: Analysis | None
    error: str | None = None


def _analyse_one(
    task: tuple[str, str, Config, bool, str | None],
) -> tuple[str, Analysis | None, str | None]:
    raw_path, display, config, with_references, cache_dir = task
    path = Path(raw_path)
    try:
        data = read_regular_file(path)
    except OSError as exc:
        return raw_path, None, f"{display}: cannot read: {exc.strerror or exc}"
    with processing(display):  # a bug names the file and ends the run as an internal error
        analysis = analyse_source(data, display, config, with_references=with_references)
        if cache_dir is not None:
            cache = ResultCache(Path(cache_dir), config, with_references)
            cache.store(cache.key(path, display, data), analysis)  # keyed by the bytes analysed
    return raw_path, analysis, None


def _cached(files: Sequence[Path], config: Config, cache_dir: Path, with_references: bool) -> dict[str, Analysis]:
    """Look every file up in the parent: a warm run then starts no worker at all."""
    cache = ResultCache(cache_dir, config, with_references)
    hits: dict[str, Analysis] = {}
    for path in files:
        try:
            data = read_regular_file(path)
        except OSError:
            continue  # the worker reports it
        display = display_path(path)
        key = cache.key(path, display, data)
        cached = cache.load(key, display)
        if cached is not None:
            hits[str(path)] = cached
    return hits


def run_files(
    files: Sequence[Path],
    config: Config,
    *,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    with_references: bool = False,
) -> Iterator[FileOutcome]:
    hits = _cached(files, config, cache_dir, with_references) if cache_dir else {}
    for path in files:
        if str(path) in hits:
            yield FileOutcome(path, hits[str(path)])
    tasks = [
        (str(path), display_path(path), config, with_references, str(cache_dir) if cache_dir else None)
        for path in files
        if str(path) not in hits
    ]
    for raw_path, analysis, error in map_files(_analyse_one, tasks, _task_path, jobs=jobs):
        yield FileOutcome(Path(raw_path), analysis, error)


def _task_path(task: tuple[str, str, Config, bool, str | None]) -> str:
    return task[0]
