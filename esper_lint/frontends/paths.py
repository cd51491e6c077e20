"""Paths as strings, spelled as `pathlib` spells them, for the run a pre-commit hook makes.

`pathlib` imports `urllib.parse`, `ipaddress`, `ntpath` and `fnmatch`: about 9 ms, a tenth of a clean
`check FILE` (issue 20: at most four times the interpreter's start). The check's own path handling
(its command line, the configuration search, discovery, the runner) therefore works on strings, and
these helpers give them exactly the text `str(Path(...))` gives: `./a.py` is `a.py`, `dir/` is
`dir`, `a//b` is `a/b`, `` is `.`, as messages and displayed paths always showed them.

On POSIX the rules are written out here (pathlib's own: `.` segments and repeated or trailing `/`
go, `..` stays, a leading `//` stays as the one root POSIX leaves to the system);
tests/test_paths.py holds them to pathlib. Elsewhere (Windows' drives, `\\`) pathlib itself answers.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TypeAlias, Union

__all__ = ["StrPath", "absolute", "join", "name", "normalized", "parent", "parents", "resolved"]

StrPath: TypeAlias = Union[str, "os.PathLike[str]"]  # what `open` and `os.stat` take

_POSIX = os.name == "posix"


def _split(text: str) -> tuple[str, list[str]]:
    """pathlib's POSIX parse: the root (``, `/`, or `//`) and the segments."""
    root = ""
    if text.startswith("/"):
        stripped = text.lstrip("/")
        root = "//" if len(text) - len(stripped) == 2 else "/"
        text = stripped
    return root, [part for part in text.split("/") if part and part != "."]


def normalized(path: StrPath) -> str:
    """`str(Path(path))`."""
    text = os.fspath(path)
    if not _POSIX:
        from pathlib import Path

        return str(Path(text))
    if "/." not in text and "//" not in text and not text.startswith(".") and not text.endswith("/") and text:
        return text  # already in pathlib's spelling: the usual case, answered without splitting
    root, parts = _split(text)
    return root + "/".join(parts) if root or parts else "."


def parent(path: StrPath) -> str:
    """`str(Path(path).parent)`: lexical, so the parent of `a.py` is `.` and that of `..` is `.`."""
    if not _POSIX:
        from pathlib import Path

        return str(Path(path).parent)
    root, parts = _split(os.fspath(path))
    if not parts:
        return root or "."
    return root + "/".join(parts[:-1]) if root or len(parts) > 1 else "."


def parents(path: StrPath) -> list[str]:
    """`[str(p) for p in Path(path).parents]`."""
    found: list[str] = []
    current = normalized(path)
    while True:
        above = parent(current)
        if above == current:
            return found
        found.append(above)
        current = above


def name(path: StrPath) -> str:
    """`Path(path).name`: the last segment, `` for `.` or a root."""
    if not _POSIX:
        from pathlib import Path

        return Path(path).name
    parts = _split(os.fspath(path))[1]
    return parts[-1] if parts else ""


def join(folder: StrPath, child: str) -> str:
    """`str(Path(folder) / child)` for a `child` that is one plain name (as `os.walk` lists them)."""
    if not _POSIX:
        from pathlib import Path

        return str(Path(folder) / child)
    base = normalized(folder)
    if base == ".":
        return child
    return base + child if base.endswith("/") else f"{base}/{child}"


def absolute(path: StrPath) -> str:
    """`str(Path(path).absolute())`: the working directory joined, nothing resolved."""
    text = normalized(path)
    if os.path.isabs(text):
        return text
    return normalized(os.path.join(os.getcwd(), text))


def resolved(path: StrPath) -> str:
    """`str(Path(path).resolve())`, except that a symbolic link loop (which makes Python before 3.13
    raise RuntimeError) gives `absolute(path)`, the path as written."""
    if not _POSIX:
        from pathlib import Path

        try:
            return str(Path(path).resolve())
        except (OSError, RuntimeError):
            return str(Path(path).absolute())
    real = os.path.realpath(path)
    if sys.version_info < (3, 13):  # pathlib then stats the result, to report a loop
        try:
            os.stat(real)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return absolute(path)
    return real
