"""The one locator for esper-lint's packaged data (the `rules/` folder), and the TOML reader.

The top-level `rules/` folder is the single source of truth for rule documents and torch knowledge.
A wheel ships it as `esper_lint/rules` (hatch force-include in pyproject.toml); a source checkout or
an editable install has it beside the package instead. Both are looked up on the file system first,
without importing `importlib.resources` (about 15 ms of start-up); that module is the last resort,
for packages not on the file system (zip imports, other loaders).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

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

__all__ = ["read_rules_bytes", "rules_dir", "tomllib"]


@lru_cache(maxsize=1)
def rules_dir() -> Traversable:
    package = Path(os.path.dirname(os.path.realpath(__file__)))
    for candidate in (package / "rules", package.parent / "rules"):
        if candidate.is_dir():
            return candidate
    from importlib import resources

    packaged = resources.files("esper_lint").joinpath("rules")
    if not packaged.is_dir():
        raise FileNotFoundError("esper-lint's rules/ data is missing from this installation")
    return packaged


def read_rules_bytes(name: str) -> bytes:
    """The bytes of `rules/<name>`."""
    return rules_dir().joinpath(name).read_bytes()
