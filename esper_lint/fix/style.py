"""The project's own style, for the lines a fix writes: its line length and the indentation of a statement.

The line length is read as the project's formatters and linters read it, first found wins:
`line-length` in `.ruff.toml` or `ruff.toml`, `[tool.ruff] line-length` or `[tool.black] line-length`
in `pyproject.toml`, flake8's `max-line-length` in `.flake8`, `setup.cfg` or `tox.ini`; else 88
(ruff's and black's default). Only the project root is read. A file that cannot be read, or a value
that is not a positive whole number, is passed over: the style of inserted comments is never
worth an error.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import libcst as cst

from esper_lint.analysis.resolver import children
from esper_lint.data import tomllib

DEFAULT_LINE_LENGTH = 88
TAB_WIDTH = 4  # how wide ruff counts a tab by default (its `indent-width`)
_MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _read_text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > _MAX_CONFIG_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _positive(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def _toml(path: Path) -> dict[str, object]:
    text = _read_text(path)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return {}


def _table(data: dict[str, object], *keys: str) -> dict[str, object]:
    for key in keys:
        value = data.get(key)
        if not isinstance(value, dict):
            return {}
        data = value
    return data


def _flake8(path: Path) -> int | None:
    text = _read_text(path)
    if text is None:
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, str(path))
    except configparser.Error:
        return None
    for option in ("max-line-length", "max_line_length"):
        if parser.has_option("flake8", option):
            return _positive(parser.get("flake8", option))
    return None


@lru_cache(maxsize=64)
def project_line_length(root: Path) -> int:
    """The maximum line length of the project at `root` (see the module docstring)."""
    for name in (".ruff.toml", "ruff.toml"):
        found = _positive(_toml(root / name).get("line-length"))
        if found is not None:
            return found
    pyproject = _toml(root / "pyproject.toml")
    for table in (("tool", "ruff"), ("tool", "black")):
        found = _positive(_table(pyproject, *table).get("line-length"))
        if found is not None:
            return found
    for name in (".flake8", "setup.cfg", "tox.ini"):
        found = _flake8(root / name)
        if found is not None:
            return found
    return DEFAULT_LINE_LENGTH


def wrap_comment(words: Sequence[str], width: int) -> list[str]:
    """Comment lines (`# word word ...`) holding `words` in order, each at most `width` characters
    where the words allow: a word is never split (so "since PyTorch 2.1" passed as one word stays
    on one line, as the comment contract reads it)."""
    lines: list[str] = []
    current = "#"
    for word in words:
        candidate = f"{current} {word}"
        if current != "#" and len(candidate) > width:
            lines.append(current)
            candidate = f"# {word}"
        current = candidate
    lines.append(current)
    return lines


def indentation_widths(module: cst.Module, source: bytes, nodes: Iterable[cst.CSTNode]) -> dict[int, int]:
    """{id(node): the width of the indentation libcst writes a comment line above it with}: the
    indents of the blocks around it, a tab counted as TAB_WIDTH columns."""
    del source  # the indentation comes from the tree, as libcst will write it
    wanted = {id(node) for node in nodes}
    found: dict[int, int] = {}
    stack: list[tuple[cst.CSTNode, str]] = [(module, "")]
    while stack and len(found) < len(wanted):
        node, indent = stack.pop()
        if id(node) in wanted:
            found[id(node)] = len(indent.expandtabs(TAB_WIDTH))
        inner = indent
        if isinstance(node, cst.IndentedBlock):
            inner = indent + (node.indent if node.indent is not None else module.default_indent)
        stack.extend((child, inner) for child in children(node))
    return found
