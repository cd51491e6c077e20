"""Autofix: rewrite what `esper-lint check` reports, where a rewrite is certain to be right.

`api.py` fixes one file's bytes (`fix_source`), `files.py` fixes files on disk (`fix_paths`); each fix kind has a module of its own
(`replace.py`: ESP301, `document.py`: ESP101, `stale.py`: ESP103), listed in `registry.py` in the
order they are applied (whether a code has a fix, and whether it is safe, is its rule document's
`fix` key), and `safety.py` checks every result before it is returned.
"""

from esper_lint.fix.api import FIXABLE_CODES, UNSAFE_CODES, AppliedFix, FixOutcome, fix_source
from esper_lint.fix.files import (
    FileChangedError,
    FileFix,
    FixRun,
    NotWritten,
    fix_paths,
    remove_stale_temporaries,
    unified_diff,
    write_atomically,
)

__all__ = [
    "FIXABLE_CODES",
    "UNSAFE_CODES",
    "AppliedFix",
    "FileChangedError",
    "FileFix",
    "FixOutcome",
    "FixRun",
    "NotWritten",
    "fix_paths",
    "fix_source",
    "remove_stale_temporaries",
    "unified_diff",
    "write_atomically",
]
