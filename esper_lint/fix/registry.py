"""The fixer registry: one entry per fix kind, in the order `fix_source` applies them.

Whether a code has a fix at all, and the most applicable its fixes can be, is a fact of its rule
document: the `fix` front matter key of `rules/ESPxxx.md` ("safe", "unsafe", or absent), read
through the catalog. Each fix's own applicability is derived from the knowledge
(fix/safety.py: `rewrite_applicability`) and capped by that key (`FIX_CAPS`): an ESP301 swap is safe
only where its replacement is drop-in and public in every release that applies, ESP103 is always
unsafe. This registry says only where each fix lives and when it runs. `FIXABLE_CODES` and
`UNSAFE_CODES` are derived from both, and tests/test_rules_docs.py asserts that the registry and the
catalog name the same codes, so a fix without a documented safety (or the reverse) fails the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from esper_lint import catalog
from esper_lint.fix.analysis import Judged
from esper_lint.fix.document import add_documentation
from esper_lint.fix.edits import CommentEdits, FixState
from esper_lint.fix.replace import replace_with_public
from esper_lint.fix.safety import Applicability
from esper_lint.fix.stale import remove_stale_blocks

__all__ = ["FIXABLE_CODES", "FIXERS", "FIX_CAPS", "UNSAFE_CODES", "Fixer"]


@dataclass(frozen=True)
class Fixer:
    """One fix kind. A fixer either rewrites code (`rewrite`: it edits the file itself and checks
    that the AST changed only where it meant to) or asks for comment edits (`comment`: every
    comment fixer's edits are applied in one pass, checked to leave the AST identical)."""

    code: str
    rewrite: Callable[[FixState], None] | None = None
    comment: Callable[[Judged, FixState, CommentEdits], None] | None = None


FIXERS: tuple[Fixer, ...] = (  # in the order they are applied
    Fixer("ESP301", rewrite=replace_with_public),  # replace.py: the private reference becomes its public replacement
    Fixer("ESP101", comment=add_documentation),  # document.py: a documentation block inserted above the statement
    Fixer("ESP103", comment=remove_stale_blocks),  # stale.py: the stale block removed
)


def _fix_kinds() -> dict[str, catalog.FixKind]:
    rules = catalog.all_rules()
    kinds: dict[str, catalog.FixKind] = {}
    for fixer in FIXERS:
        kind = rules[fixer.code].fix if fixer.code in rules else None
        if kind is not None:
            kinds[fixer.code] = kind
    return kinds


_KINDS = _fix_kinds()
FIXABLE_CODES: tuple[str, ...] = tuple(_KINDS)  # registered and documented with a `fix`, in application order
UNSAFE_CODES: frozenset[str] = frozenset(code for code, kind in _KINDS.items() if kind == "unsafe")
FIX_CAPS: dict[str, Applicability] = dict(_KINDS)  # code -> the most applicable its fixes can be
