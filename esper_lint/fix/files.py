"""Fixing files on disk: read, fix through `fix_source`, show as a diff or write atomically.

Each file is written through a temporary file in its own folder and `os.replace`, and only when it
still holds the bytes that were fixed; a file that cannot be read, fixed or written is reported and
left as it was, and the run goes on. A file is written only when that keeps what a rename would
otherwise change: its owner, its permission bits, its hard links (a file with several is not
written), and its place (a symbolic link whose target lies outside the project is not followed).
The temporary files a killed run leaves behind are removed by the next `--fix` in that folder.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import pickle
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from esper_lint.config import Config
from esper_lint.fix.api import AppliedFix, FixOutcome, fix_source
from esper_lint.frontends.discovery import display_path
from esper_lint.frontends.errors import processing
from esper_lint.frontends.paths import StrPath
from esper_lint.frontends.pool import map_files
from esper_lint.frontends.reading import read_regular_file, read_regular_file_and_stat

__all__ = [
    "FileChangedError",
    "FileFix",
    "FixRun",
    "NotWritten",
    "fix_paths",
    "remove_stale_temporaries",
    "unified_diff",
    "write_atomically",
]

TEMPORARY_SUFFIX = ".esper-lint-tmp"
# ".NAME.PID.RANDOM.esper-lint-tmp" (the PID of the run that made it; older runs wrote no PID)
_TEMPORARY = re.compile(r"\..+?(?:\.(?P<pid>\d+))?\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX) + r"\Z", re.DOTALL)
STALE_AFTER_S = 3600  # a temporary file lives for milliseconds; one this old was left by a killed run


class NotWritten(Exception):
    """The file was fixed but is left as it was; the message says why."""


class FileChangedError(NotWritten):
    """The file on disk is no longer the one that was fixed; it is left alone."""


def write_atomically(path: Path, new: bytes, expected_old: bytes) -> None:
    """Replace `path`'s contents with `new` through a temporary file in the same folder and
    `os.replace`, keeping the file's permission bits and owner. A symlink's target is written, the
    link kept. Raises FileChangedError when the file no longer holds `expected_old` (changed during
    the run), NotWritten when the rename would change what the file is (it has several hard links,
    or its owner cannot be kept), OSError for I/O problems. The temporary file never outlives a
    failure that Python sees."""
    target = Path(os.path.realpath(path))
    current, info = read_regular_file_and_stat(target)
    if current != expected_old:
        raise FileChangedError(f"{path}: changed on disk while it was being fixed; not written")
    if info.st_nlink > 1:
        raise NotWritten(
            f"{path}: has {info.st_nlink} hard links, which replacing it would split; not written (fix a copy)"
        )
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(new)
            stream.flush()
            _keep_owner(stream.fileno(), info, path)
            if hasattr(os, "fchmod"):
                os.fchmod(stream.fileno(), stat.S_IMODE(info.st_mode))  # after the owner: chown clears set-id bits
            else:
                os.chmod(temporary, stat.S_IMODE(info.st_mode))
            os.fsync(stream.fileno())
        if read_regular_file(target) != expected_old:  # narrow the window as far as a file system allows
            raise FileChangedError(f"{path}: changed on disk while it was being fixed; not written")
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _keep_owner(descriptor: int, original: os.stat_result, path: Path) -> None:
    mine = os.fstat(descriptor)
    if (mine.st_uid, mine.st_gid) == (original.st_uid, original.st_gid) or not hasattr(os, "fchown"):
        return
    try:
        os.fchown(descriptor, original.st_uid, original.st_gid)
    except OSError:
        raise NotWritten(
            f"{path}: owned by {original.st_uid}:{original.st_gid}, an owner this user cannot give the"
            " rewritten file; not written"
        ) from None


def remove_stale_temporaries(folders: Iterable[Path], *, now: float | None = None) -> list[Path]:
    """Remove the temporary files that killed runs left in `folders` (those of a process that no
    longer runs, or older than an hour); the removed paths. Nothing else is touched."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMPORARY.match(entry.name)
            if match is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue
                pid = int(match["pid"]) if match["pid"] else None
                if now - info.st_mtime > STALE_AFTER_S or (pid is not None and not _running(pid)):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a PID: leave it to the age rule
    return True


def inside_project(path: Path, roots: Sequence[Path]) -> bool:
    """Whether writing `path` stays in the project: it is no symbolic link, or its target lies
    under one of `roots` (real paths)."""
    if not os.path.islink(path):
        return True
    target = Path(os.path.realpath(path))
    return any(target.is_relative_to(root) for root in roots)


def unified_diff(path: str | bytes, old: bytes, new: bytes) -> bytes:
    """A unified diff of one file (`--- path` / `+++ path`) in the file's own bytes, so that
    `patch` and `git apply` turn `old` into exactly `new`: lines end at LF only (a CR stays part of
    its line), a byte order mark stays in the first line, and any encoding passes through."""
    if old == new:
        return b""
    name = os.fsencode(path) if isinstance(path, str) else path
    before, after = _lf_lines(old), _lf_lines(new)
    out: list[bytes] = []
    for line in difflib.diff_bytes(difflib.unified_diff, before, after, fromfile=name, tofile=name):
        if line.endswith(b"\n"):
            out.append(line)
        else:
            out.append(line + b"\n\\ No newline at end of file\n")
    return b"".join(out)


def _lf_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    last = lines.pop()
    return [line + b"\n" for line in lines] + ([last] if last else [])


@dataclass
class FileFix:
    path: Path
    display: str
    applied: list[AppliedFix] = field(default_factory=list)
    withheld: list[AppliedFix] = field(default_factory=list)  # found, not applied (unsafe, display-only, templates)
    changed: bool = False  # the fixed bytes differ from the file's
    written: bool = False  # mode "fix" only
    error: str | None = None  # "path: reason"


@dataclass
class FixRun:
    files: list[FileFix]
    diff: bytes  # every changed file's unified diff (see `unified_diff`), in input order
    errors: list[str]  # "path: reason"
    fixed: int  # fixes applied ("fix") or that would apply ("diff"), templates not counted
    templates: int = 0  # documentation templates inserted ("fix") or that would be ("diff")

    @property
    def changed_files(self) -> int:
        return sum(1 for item in self.files if item.changed)

    def withheld(self, *, template: bool = False, applicability: str | None = None) -> int:
        """How many fixes were found and not applied (or templates, with `template`)."""
        return sum(
            1
            for item in self.files
            for fix in item.withheld
            if fix.template == template and (applicability is None or fix.applicability == applicability)
        )


def _fix_one(
    task: tuple[str, str, Config, bool, Callable[[str], bool] | None, bool, bool],
) -> tuple[str, bytes | None, FixOutcome | None, str | None]:
    raw_path, display, config, unsafe, select_enabled, add_templates, show_withheld = task
    try:
        data = read_regular_file(raw_path)
    except OSError as exc:
        return raw_path, None, None, f"{display}: cannot read: {exc.strerror or exc}"
    with processing(display):  # a bug names the file and ends the run as an internal error
        outcome = fix_source(
            data,
            display,
            config,
            select_enabled=select_enabled,
            unsafe=unsafe,
            add_templates=add_templates,
            show_withheld=show_withheld,
        )
    return raw_path, data, outcome, None


def fix_paths(
    files: Sequence[StrPath],
    config: Config,
    *,
    mode: Literal["fix", "diff"] = "fix",
    unsafe: bool = False,
    select_enabled: Callable[[str], bool] | None = None,
    jobs: int | None = 1,
    roots: Sequence[StrPath] | None = None,
    add_templates: bool = False,
    show_withheld: bool = False,
) -> FixRun:
    """Fix (mode "fix": write) or show (mode "diff": write nothing) every file's fixes; with
    `add_templates` also the documentation templates, with `show_withheld` also list (in each
    FileFix.withheld) the unsafe fixes not applied (the display-only ones are always listed).

    Mode "fix" writes no file through a symbolic link whose target lies outside `roots` (default:
    the project root), and first removes the temporary files killed runs left in the files' folders."""
    if mode not in ("fix", "diff"):
        raise ValueError(f"mode must be 'fix' or 'diff', not {mode!r}")
    real_roots = [Path(os.path.realpath(root)) for root in (roots if roots is not None else [config.project_root])]
    by_real_path: dict[str, StrPath] = {}
    for path in files:  # one file under two names (a link beside its target) is fixed once
        by_real_path.setdefault(os.path.realpath(path), path)
    files = list(by_real_path.values())
    if mode == "fix":
        remove_stale_temporaries({Path(os.path.realpath(path)).parent for path in files})
    tasks = [
        (str(path), display_path(path), config, unsafe, select_enabled, add_templates, show_withheld) for path in files
    ]
    if select_enabled is not None:
        try:
            pickle.dumps(select_enabled)
        except Exception:
            jobs = 1  # a selection the workers cannot receive is applied here
    by_path = {result[0]: result for result in map_files(_fix_one, tasks, jobs=jobs)}
    results = [by_path[raw_path] for raw_path, *_ in tasks]  # diffs come in input order
    run = FixRun([], b"", [], 0)
    diffs: list[bytes] = []
    for (raw_path, data, outcome, read_error), (_, display, *_) in zip(results, tasks, strict=True):
        item = FileFix(Path(raw_path), display)
        run.files.append(item)
        if read_error is not None:
            item.error = read_error
            run.errors.append(read_error)
            continue
        assert outcome is not None and data is not None
        item.withheld = outcome.withheld
        if outcome.error is not None:
            item.error = f"{display}: cannot fix: {outcome.error}"
            run.errors.append(item.error)
        if outcome.new_source == data:
            continue
        with processing(display):
            item.applied = outcome.applied
            item.changed = True
            diffs.append(unified_diff(raw_path, data, outcome.new_source))
            if mode == "diff":
                run.fixed += len(outcome.fixes)
                run.templates += len(outcome.templates)
            elif not inside_project(Path(raw_path), real_roots):
                target = display_path(Path(os.path.realpath(raw_path)))
                item.error = f"{display}: a symbolic link to {target}, outside the project; not written"
                run.errors.append(item.error)
            else:
                try:
                    write_atomically(Path(raw_path), outcome.new_source, data)
                    item.written = True
                    run.fixed += len(outcome.fixes)
                    run.templates += len(outcome.templates)
                except NotWritten as exc:
                    item.error = str(exc)
                    run.errors.append(item.error)
                except OSError as exc:
                    item.error = f"{display}: cannot write: {exc.strerror or exc}"
                    run.errors.append(item.error)
    run.diff = b"".join(diffs)
    return run
