"""Which files a run lints: Python files under the given paths, minus excluded and tool folders."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from esper_lint.config import Config
from esper_lint.frontends import paths as strpaths
from esper_lint.frontends.reading import file_kind, not_regular

if TYPE_CHECKING:
    from esper_lint.frontends.gitignore import GitIgnore
    from esper_lint.frontends.paths import StrPath

# Folders no one wants linted: VCS data, virtualenvs, caches, build output.
DEFAULT_EXCLUDED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", ".jj", ".venv", "venv", ".tox", ".nox", "__pycache__",
        "build", "dist", ".eggs", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        "site-packages", "__pypackages__", "_build", "buck-out", ".direnv", ".esper-lint-cache",
        ".ipynb_checkpoints",
    }
)
PYTHON_SUFFIXES = (".py", ".pyi")


class Discovery:
    """The files found (as pathlib spells them: frontends/paths.py) and the paths that could not be
    searched (a plain class: see model.py)."""

    __slots__ = ("errors", "files")

    def __init__(self) -> None:
        self.files: list[str] = []
        self.errors: list[str] = []


def display_path(path: StrPath) -> str:
    """A printable path, as pathlib spells it: undecodable bytes in file names shown as escapes
    instead of crashing output."""
    return os.fsencode(strpaths.normalized(path)).decode("utf-8", "backslashreplace")


def skip_folder(directory: StrPath, name: str) -> bool:
    """Whether the walk skips the folder `name` in `directory` (tool folders, virtualenvs)."""
    if name in DEFAULT_EXCLUDED_DIRS or name.endswith(".egg-info"):
        return True
    try:
        os.stat(os.path.join(directory, name, "pyvenv.cfg"))  # any virtualenv, whatever its name
    except OSError:
        return False  # none there, or the folder cannot be searched: the walk reports that
    return True


def discover(
    paths: Sequence[StrPath],
    config: Config,
    *,
    config_for: Callable[[str], Config] | None = None,
    gitignore: GitIgnore | None = None,
) -> Discovery:
    """The files to lint under `paths`. `config_for(folder)`: the configuration whose `exclude`
    applies in that folder (hierarchical configuration), else `config` everywhere; `gitignore`: skip
    what git ignores while walking folders (a file named in `paths` is always taken)."""
    found = Discovery()
    seen: set[str] = set()
    settings = config_for or (lambda folder: config)
    for path in paths:
        for candidate in _expand(strpaths.normalized(path), settings, found, gitignore):
            key = strpaths.absolute(candidate)
            if key not in seen:
                seen.add(key)
                found.files.append(candidate)
    return found


def _expand(path: str, config_for: Callable[[str], Config], found: Discovery, gitignore: GitIgnore | None) -> Iterator[str]:
    try:
        info = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            found.errors.append(f"{display_path(path)}: cannot read: {_broken_link(path)}")
        elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
            found.errors.append(f"{display_path(path)}: no such file or directory")
        else:
            found.errors.append(f"{display_path(path)}: cannot read: {exc.strerror or exc}")
        return
    if stat.S_ISREG(info.st_mode):
        if not config_for(strpaths.parent(path)).is_excluded(path):
            yield path
        return
    if not stat.S_ISDIR(info.st_mode):
        found.errors.append(f"{display_path(path)}: not a regular file or directory ({file_kind(info.st_mode)})")
        return
    for directory, dirnames, filenames in os.walk(path, onerror=lambda e: found.errors.append(_walk_error(e))):
        here = strpaths.normalized(directory)
        config = config_for(here)
        dirnames[:] = sorted(
            name
            for name in dirnames
            if not skip_folder(here, name)
            and not config.is_excluded(strpaths.join(here, name))
            and not (gitignore is not None and gitignore.ignored(strpaths.join(here, name), is_dir=True, top=path))
        )
        for name in sorted(filenames):
            if not name.endswith(PYTHON_SUFFIXES):
                continue
            file_path = strpaths.join(here, name)
            if config.is_excluded(file_path) or (gitignore is not None and gitignore.ignored(file_path, is_dir=False, top=path)):
                continue
            try:
                info = os.stat(file_path)
            except OSError as exc:
                if os.path.islink(file_path):
                    found.errors.append(f"{display_path(file_path)}: cannot read: {_broken_link(file_path)}")
                else:
                    found.errors.append(f"{display_path(file_path)}: cannot read: {exc.strerror or exc}")
                continue
            if stat.S_ISDIR(info.st_mode):
                continue  # os.walk lists links to folders with the folders, and never follows them
            if not stat.S_ISREG(info.st_mode):
                # A FIFO would block the read forever, a device (a link to /dev/zero) never end.
                found.errors.append(f"{display_path(file_path)}: not read: {not_regular(info.st_mode).strerror}")
                continue
            yield file_path


def _broken_link(path: str) -> str:
    """Why a symbolic link cannot be followed: it points nowhere, or round in a loop."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "dangling symbolic link"


def _walk_error(error: OSError) -> str:
    where = display_path(error.filename) if error.filename else "?"
    return f"{where}: cannot read directory: {error.strerror or error}"


def declarations_display(where: StrPath | None) -> str:
    """How findings on central declarations name pyproject.toml: relative to the working directory
    when it lies below it, like the linted files (SARIF and GitHub annotations need repository paths)."""
    if where is None:
        return "pyproject.toml"
    from pathlib import Path  # a run with central declarations (they load libcst too)

    pyproject = Path(where)
    try:
        shown = pyproject.relative_to(Path.cwd().resolve()) if pyproject.is_absolute() else pyproject
    except (ValueError, OSError):
        shown = pyproject
    return display_path(shown)
