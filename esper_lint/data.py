"""The one locator for esper-lint's packaged data (the `rules/` folder), and the TOML reader.

The top-level `rules/` folder is the single source of truth for rule documents and torch knowledge.
A wheel ships it as `esper_lint/rules` (hatch force-include in pyproject.toml); a source checkout or
an editable install has it beside the package instead. Both are looked up on the file system first,
without importing `importlib.resources` (about 15 ms of start-up); that module is the last resort,
for packages not on the file system (zip imports, other loaders). `open_rules_file` reads a file of
the folder found on disk without pathlib either (about 9 ms: the range check of every configured
run reads the index's header).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # importlib.abc imports importlib.resources: about 20 ms of start-up
    from importlib.abc import Traversable

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib


def __getattr__(name: str) -> object:
    """`tomllib` (tomli before 3.11), imported when first read: a run in a folder with no
    configuration file parses no TOML and should not pay for the parser (about 10 ms)."""
    if name == "tomllib":
        if sys.version_info >= (3, 11):
            import tomllib as module
        else:  # pragma: no cover - exercised on Python 3.10 only
            import tomli as module
        globals()["tomllib"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["open_rules_file", "read_rules_bytes", "rules_dir", "rules_folder", "tomllib"]


@lru_cache(maxsize=1)
def rules_folder() -> str | None:
    """The `rules/` folder on the file system (a wheel's, else a checkout's), or None."""
    package = os.path.dirname(os.path.realpath(__file__))
    for candidate in (os.path.join(package, "rules"), os.path.join(os.path.dirname(package), "rules")):
        if os.path.isdir(candidate):
            return candidate
    return None


@lru_cache(maxsize=1)
def rules_dir() -> Traversable:
    folder = rules_folder()
    if folder is not None:
        from pathlib import Path

        return Path(folder)
    from importlib import resources

    packaged = resources.files("esper_lint").joinpath("rules")
    if not packaged.is_dir():
        raise FileNotFoundError("esper-lint's rules/ data is missing from this installation")
    return packaged


def open_rules_file(name: str) -> IO[bytes]:
    """`rules/<name>`, open for reading bytes."""
    folder = rules_folder()
    if folder is not None:
        return open(os.path.join(folder, name), "rb")
    return rules_dir().joinpath(name).open("rb")


def read_rules_bytes(name: str) -> bytes:
    """The bytes of `rules/<name>`."""
    with open_rules_file(name) as handle:
        return handle.read()
