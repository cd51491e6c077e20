"""`.gitignore` for the folder walk, as git reads it (gitignore(5)).

Every `.gitignore` from the repository's root (the nearest folder above with `.git`) down to a path
applies to it, the deeper file first: the first file whose patterns decide (ignore, or re-include
with `!`) wins, as in git. `.git/info/exclude` applies like a `.gitignore` at the root. Outside a
repository only the `.gitignore` files of the folders being walked count. A folder that is ignored is
not entered, so nothing inside it can be re-included (git's rule too).

Only the walk consults it: a file named on the command line is checked even if ignored (as ruff
does), so pre-commit, which passes tracked files, is never second-guessed.

The patterns are translated to regular expressions here rather than by a library: the walk runs on
every `check`, and `pathspec` (with `typing_extensions`) took longer to import than a clean file's
whole run. tests/test_gitignore.py compares the translation with pathspec's GitIgnoreSpec.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from esper_lint.frontends.reading import read_regular_file

if TYPE_CHECKING:
    from esper_lint.frontends.paths import StrPath

_MAX_GITIGNORE_BYTES = 1024 * 1024


class GitIgnore:
    """Answers "is this path ignored?" for paths below the folders it has read.

    Folders are absolute strings from `os.path.abspath` (normalized: no `.`, `..` or trailing `/`),
    so `os.path.dirname` walks up them as `Path.parent` would, without pathlib's import."""

    def __init__(self) -> None:
        self._specs: dict[str, GitIgnoreSpec | None] = {}
        self._roots: dict[str, str | None] = {}

    def ignored(self, path: StrPath, *, is_dir: bool, top: StrPath) -> bool:
        """Whether git ignores `path`, found by walking `top` (the folder the walk began at: outside
        a repository, the .gitignore files above it do not count)."""
        absolute = os.path.abspath(path)
        root = self._repository_root(os.path.dirname(absolute))
        floor = root if root is not None else os.path.abspath(top)
        directory = os.path.dirname(absolute)
        while True:
            spec = self._spec(directory, root)
            if spec is not None:
                relative = absolute[len(directory) :].lstrip(os.sep).replace(os.sep, "/") + ("/" if is_dir else "")
                decision = spec.decide(relative)
                if decision is not None:
                    return decision
            if directory == floor or os.path.dirname(directory) == directory:
                return False
            directory = os.path.dirname(directory)

    def _repository_root(self, directory: str) -> str | None:
        if directory not in self._roots:
            found: str | None = None
            candidate = directory
            while True:
                if os.path.exists(os.path.join(candidate, ".git")):
                    found = candidate
                    break
                above = os.path.dirname(candidate)
                if above == candidate:
                    break
                candidate = above
            self._roots[directory] = found
        return self._roots[directory]

    def _spec(self, directory: str, root: str | None) -> GitIgnoreSpec | None:
        if directory not in self._specs:
            lines = _lines(os.path.join(directory, ".gitignore"))
            if directory == root:
                lines = _lines(os.path.join(directory, ".git", "info", "exclude")) + lines
            spec = GitIgnoreSpec.from_lines(lines)
            self._specs[directory] = spec if spec.patterns else None
        return self._specs[directory]


def _lines(path: str) -> list[str]:
    """The file's lines; a missing, unreadable or odd file (a FIFO, a link to a device) counts as empty."""
    try:
        return read_regular_file(path, _MAX_GITIGNORE_BYTES).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


class Pattern(NamedTuple):
    regex: re.Pattern[str]
    negated: bool
    directory_only: bool


class GitIgnoreSpec:
    """The patterns of one .gitignore file, matched against paths relative to its folder (a folder's
    path ends with `/`). The last pattern that matches decides, as in git."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> GitIgnoreSpec:
        return cls([pattern for pattern in map(compile_pattern, lines) if pattern is not None])

    def decide(self, relative: str) -> bool | None:
        """True: ignored (itself, or a folder above it within this file's reach); False: re-included
        by a `!` pattern; None: no pattern matches."""
        parts = relative.rstrip("/").split("/")
        for end in range(1, len(parts)):
            if self._own("/".join(parts[:end]), is_dir=True):
                return True  # git never looks inside an ignored folder, so nothing in it comes back
        return self._own(relative.rstrip("/"), is_dir=relative.endswith("/"))

    def _own(self, path: str, *, is_dir: bool) -> bool | None:
        for pattern in reversed(self.patterns):
            if pattern.directory_only and not is_dir:
                continue
            if pattern.regex.fullmatch(path):
                return not pattern.negated
        return None


def compile_pattern(line: str) -> Pattern | None:
    """One line of a .gitignore as gitignore(5) reads it; None for a blank line or a comment."""
    line = line.rstrip("\r\n")
    line = re.sub(r"(?<!\\)[ \t]+$", "", line)  # trailing blanks, unless escaped
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated or line.startswith(("\\!", "\\#")):
        line = line[1:]
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line  # a separator at the start or in the middle: relative to the file's folder
    line = line.lstrip("/")
    try:
        body = _translate(line)
        regex = body if anchored else f"(?:.*/)?{body}"
        return Pattern(re.compile(regex, re.DOTALL), negated, directory_only)
    except re.error:  # a pattern git matches nothing with (an unclosed or odd bracket expression)
        return None


def _translate(glob: str) -> str:
    """A gitignore glob as a regular expression: `*` and `?` stop at `/`; `**/`, `/**/` and a
    trailing `/**` span folders; `[...]` is a character class (`[!...]` negated); `\\x` is x."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            whole_segment = (i == 0 or glob[i - 1] == "/") and (j == n or glob[j] == "/")
            if j - i >= 2 and whole_segment:
                if j == n:
                    out.append(".*")  # `dir/**`: everything inside
                    i = j
                else:
                    out.append("(?:.*/)?")  # `**/`: zero or more folders
                    i = j + 1
                continue
            out.append("[^/]*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            end = _class_end(glob, i)
            if end < 0:
                raise re.error("unclosed bracket expression")  # git's wildmatch then matches nothing
            inner = glob[i + 1 : end]
            if inner[:1] in ("!", "^"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """The index of the `]` closing the bracket expression at `start`, or -1."""
    i = start + 1
    if i < len(glob) and glob[i] in "!^":
        i += 1
    if i < len(glob) and glob[i] == "]":
        i += 1  # a `]` first in the class is a member
    while i < len(glob):
        if glob[i] == "]":
            return i
        i += 1
    return -1
