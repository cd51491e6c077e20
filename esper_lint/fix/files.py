"""Fixing files on disk: read, fix through `fix_source`, show as a diff or write atomically.

Each file is written through a temporary file in its own folder and `os.replace`, and only when it
still holds the bytes that were fixed; a file that cannot be read, fixed or written is reported and
left as it was, and the run goes on.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import pickle
import stat
import tempfile
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from esper_lint.config import Config
from esper_lint.fix.api import AppliedFix, FixOutcome, fix_source
from esper_lint.frontends.discovery import display_path
from esper_lint.frontends.pool import map_files

__all__ = ["FileChangedError", "FileFix", "FixRun", "fix_paths", "unified_diff", "write_atomically"]


class FileChangedError(Exception):
    """The file on disk is no longer the one that was fixed; it is left alone."""


def write_atomically(path: Path, new: bytes, expected_old: bytes) -> None:
    """Replace `path`'s contents with `new` through a temporary file in the same folder and
    `os.replace`, keeping the file's permission bits. Raises FileChangedError when the file no longer
    holds `expected_old` (changed during the run); OSError for I/O problems. A symlink's target is
    written, the link kept."""
    target = Path(os.path.realpath(path))
    if target.read_bytes() != expected_old:
        raise FileChangedError(f"{path}: changed on disk while it was being fixed; not written")
    mode = stat.S_IMODE(os.stat(target).st_mode)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".esper-lint-tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(new)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        if target.read_bytes() != expected_old:  # narrow the window as far as a file system allows
            raise FileChangedError(f"{path}: changed on disk while it was being fixed; not written")
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _encoding(source: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        return "utf-8"
    return encoding


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    """A unified diff of one file (`--- path` / `+++ path`), decoded with the file's own encoding."""
    if old == new:
        return ""
    encoding = _encoding(old)
    before = old.decode(encoding, "replace").splitlines(keepends=True)
    after = new.decode(_encoding(new), "replace").splitlines(keepends=True)
    out: list[str] = []
    for line in difflib.unified_diff(before, after, fromfile=path, tofile=path):
        if line.endswith(("\r\n", "\n", "\r")):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


@dataclass
class FileFix:
    path: Path
    display: str
    applied: list[AppliedFix] = field(default_factory=list)
    changed: bool = False  # the fixed bytes differ from the file's
    written: bool = False  # mode "fix" only
    error: str | None = None  # "path: reason"


@dataclass
class FixRun:
    files: list[FileFix]
    diff: str  # every changed file's unified diff, in input order
    errors: list[str]  # "path: reason"
    fixed: int  # fixes applied ("fix") or that would apply ("diff")

    @property
    def changed_files(self) -> int:
        return sum(1 for item in self.files if item.changed)


def _fix_one(
    task: tuple[str, str, Config, bool, Callable[[str], bool] | None],
) -> tuple[str, bytes | None, FixOutcome | None, str | None]:
    raw_path, display, config, unsafe, select_enabled = task
    try:
        data = Path(raw_path).read_bytes()
    except OSError as exc:
        return raw_path, None, None, f"{display}: cannot read: {exc.strerror or exc}"
    outcome = fix_source(data, display, config, select_enabled=select_enabled, unsafe=unsafe)
    return raw_path, data, outcome, None


def _task_path(task: tuple[str, str, Config, bool, Callable[[str], bool] | None]) -> str:
    return task[0]


def fix_paths(
    files: Sequence[Path],
    config: Config,
    *,
    mode: Literal["fix", "diff"] = "fix",
    unsafe: bool = False,
    select_enabled: Callable[[str], bool] | None = None,
    jobs: int | None = 1,
) -> FixRun:
    """Fix (mode "fix": write) or show (mode "diff": write nothing) every file's fixes."""
    if mode not in ("fix", "diff"):
        raise ValueError(f"mode must be 'fix' or 'diff', not {mode!r}")
    tasks = [(str(path), display_path(path), config, unsafe, select_enabled) for path in files]
    if select_enabled is not None:
        try:
            pickle.dumps(select_enabled)
        except Exception:
            jobs = 1  # a selection the workers cannot receive is applied here
    by_path = {result[0]: result for result in map_files(_fix_one, tasks, _task_path, jobs=jobs)}
    results = [by_path[raw_path] for raw_path, *_ in tasks]  # diffs come in input order
    run = FixRun([], "", [], 0)
    diffs: list[str] = []
    for (raw_path, data, outcome, read_error), (_, display, *_) in zip(results, tasks, strict=True):
        item = FileFix(Path(raw_path), display)
        run.files.append(item)
        if read_error is not None:
            item.error = read_error
            run.errors.append(read_error)
            continue
        assert outcome is not None and data is not None
        if outcome.error is not None:
            item.error = f"{display}: cannot fix: {outcome.error}"
            run.errors.append(item.error)
        if outcome.new_source == data:
            continue
        item.applied = outcome.applied
        item.changed = True
        diffs.append(unified_diff(display, data, outcome.new_source))
        if mode == "diff":
            run.fixed += len(outcome.applied)
        else:
            try:
                write_atomically(Path(raw_path), outcome.new_source, data)
                item.written = True
                run.fixed += len(outcome.applied)
            except FileChangedError as exc:
                item.error = str(exc)
                run.errors.append(item.error)
            except OSError as exc:
                item.error = f"{display}: cannot write: {exc.strerror or exc}"
                run.errors.append(item.error)
    run.diff = "".join(diffs)
    return run
