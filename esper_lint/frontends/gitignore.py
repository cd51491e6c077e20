"""`.gitignore` for the folder walk, as git reads it (patterns by the `pathspec` package).

Every `.gitignore` from the repository's root (the nearest folder above with `.git`) down to a path
applies to it, the deeper file first: the first file whose patterns decide (ignore, or re-include
with `!`) wins, as in git. `.git/info/exclude` applies like a `.gitignore` at the root. Outside a
repository only the `.gitignore` files of the folders being walked count. A folder that is ignored is
not entered, so nothing inside it can be re-included (git's rule too).

Only the walk consults it: a file named on the command line is checked even if ignored (as ruff
does), so pre-commit, which passes tracked files, is never second-guessed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from esper_lint.frontends.reading import read_regular_file

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

_MAX_GITIGNORE_BYTES = 1024 * 1024


class GitIgnore:
    """Answers "is this path ignored?" for paths below the folders it has read."""

    def __init__(self) -> None:
        self._specs: dict[Path, GitIgnoreSpec | None] = {}
        self._roots: dict[Path, Path | None] = {}

    def ignored(self, path: Path, *, is_dir: bool, top: Path) -> bool:
        """Whether git ignores `path`, found by walking `top` (the folder the walk began at: outside
        a repository, the .gitignore files above it do not count)."""
        absolute = Path(os.path.abspath(path))
        root = self._repository_root(absolute.parent)
        floor = root if root is not None else Path(os.path.abspath(top))
        directory = absolute.parent
        while True:
            spec = self._spec(directory, root)
            if spec is not None:
                relative = absolute.relative_to(directory).as_posix() + ("/" if is_dir else "")
                decision = spec.check_file(relative).include
                if decision is not None:
                    return bool(decision)
            if directory == floor or directory.parent == directory:
                return False
            directory = directory.parent

    def _repository_root(self, directory: Path) -> Path | None:
        if directory not in self._roots:
            found: Path | None = None
            for candidate in (directory, *directory.parents):
                if os.path.exists(candidate / ".git"):
                    found = candidate
                    break
            self._roots[directory] = found
        return self._roots[directory]

    def _spec(self, directory: Path, root: Path | None) -> GitIgnoreSpec | None:
        if directory not in self._specs:
            lines = _lines(directory / ".gitignore")
            if directory == root:
                lines = _lines(directory / ".git" / "info" / "exclude") + lines
            if lines:
                from pathspec import GitIgnoreSpec  # only where a .gitignore exists

                self._specs[directory] = GitIgnoreSpec.from_lines(lines)
            else:
                self._specs[directory] = None
        return self._specs[directory]


def _lines(path: Path) -> list[str]:
    """The file's lines; a missing, unreadable or odd file (a FIFO, a link to a device) counts as empty."""
    try:
        return read_regular_file(path, _MAX_GITIGNORE_BYTES).decode("utf-8", "replace").splitlines()
    except OSError:
        return []
