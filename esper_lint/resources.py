"""Access to the packaged `rules/` data.

The top-level `rules/` folder is the single source of truth for rule metadata and torch knowledge.
The wheel ships it as `esper_lint/rules` (hatch force-include); a source checkout or an editable
install has it beside the package instead, so both places are tried.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path


@lru_cache(maxsize=1)
def rules_dir() -> Traversable:
    packaged = resources.files("esper_lint").joinpath("rules")
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "rules"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("esper-lint's rules/ data is missing from this installation")


def rules_file(name: str) -> Traversable:
    return rules_dir().joinpath(name)
