"""Run the engine over many files: in parallel, and from a content-hash cache when nothing changed.

Results never depend on the number of processes or on the cache: each file's findings are computed
from its bytes and the effective configuration alone, and the caller sorts them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from esper_lint import __version__
from esper_lint.config import Config
from esper_lint.frontends.discovery import display_path
from esper_lint.engine import analyse_source
from esper_lint.model import Analysis, Finding, ReferenceRecord
from esper_lint.data import rules_dir

CACHE_DIR_NAME = ".esper-lint-cache"
_SERIAL_BELOW = 16  # starting worker processes costs more than linting a handful of files


@dataclass(frozen=True)
class FileOutcome:
    path: Path
    analysis: Analysis | None
    error: str | None = None


@lru_cache(maxsize=1)
def _tool_fingerprint() -> str:
    """esper-lint's version and every byte of its rule data (messages, torch index)."""
    digest = hashlib.sha256(__version__.encode())
    for entry in sorted(rules_dir().iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()


class ResultCache:
    """One small JSON file per (file bytes, path, configuration, tool) key; written atomically."""

    def __init__(self, directory: Path, config: Config, with_references: bool) -> None:
        self.directory = directory / "v1"
        self.salt = hashlib.sha256(
            f"{_tool_fingerprint()}|{config.fingerprint()}|{with_references}".encode()
        ).hexdigest()

    def key(self, path: Path, display: str, data: bytes) -> str:
        # The absolute path decides per-file-ignores; the displayed path is part of the output.
        digest = hashlib.sha256(self.salt.encode())
        digest.update(os.fsencode(path.absolute()))
        digest.update(b"\0")
        digest.update(display.encode("utf-8", "backslashreplace"))
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def load(self, key: str, display: str) -> Analysis | None:
        try:
            raw = json.loads((self.directory / key[:2] / f"{key}.json").read_text(encoding="utf-8"))
            analysis = Analysis(display, parsed=raw["parsed"])
            analysis.findings = [Finding(display, *row) for row in raw["findings"]]
            analysis.references = [ReferenceRecord(*row) for row in raw["references"]]
            return analysis
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged entries are recomputed

    def store(self, key: str, analysis: Analysis) -> None:
        target_dir = self.directory / key[:2]
        payload = {
            "parsed": analysis.parsed,
            "findings": [[f.line, f.column, f.code, f.message, f.name] for f in analysis.findings],
            "references": [[r.name, r.line, r.column, r.documented, r.typing_only] for r in analysis.references],
        }
        try:
            if not self.directory.parent.exists():
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                (self.directory.parent / ".gitignore").write_text("# written by esper-lint\n*\n", encoding="utf-8")
            target_dir.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target_dir, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(payload, stream)
            os.replace(temporary, target_dir / f"{key}.json")  # atomic: concurrent runs never see half a file
        except OSError:
            pass  # a read-only or full disk only costs speed


def _analyse_one(
    task: tuple[str, str, Config, bool, str | None],
) -> tuple[str, Analysis | None, str | None]:
    raw_path, display, config, with_references, cache_dir = task
    path = Path(raw_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return raw_path, None, f"{display}: cannot read: {exc.strerror or exc}"
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
            data = path.read_bytes()
        except OSError:
            continue  # the worker reports it
        display = display_path(path)
        key = cache.key(path, display, data)
        cached = cache.load(key, display)
        if cached is not None:
            hits[str(path)] = cached
    return hits


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    workers = max(1, jobs or default_jobs())
    if workers == 1 or len(tasks) < _SERIAL_BELOW:
        results = map(_analyse_one, tasks)
        for raw_path, analysis, error in results:
            yield FileOutcome(Path(raw_path), analysis, error)
        return
    # Largest files first, in small chunks: a big file that starts last leaves the other workers
    # idle while it finishes.
    tasks.sort(key=lambda task: _size(task[0]), reverse=True)
    chunk = max(1, min(16, len(tasks) // (workers * 32)))
    from concurrent.futures import ProcessPoolExecutor  # only here: a pre-commit run of a few files never pays for it

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for raw_path, analysis, error in pool.map(_analyse_one, tasks, chunksize=chunk):
            yield FileOutcome(Path(raw_path), analysis, error)
