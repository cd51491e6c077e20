"""Autofix: rewrite what `esper-lint check` reports, where a rewrite is certain to be right.

`api.py` fixes one file's bytes (`fix_source`), `files.py` fixes files on disk (`fix_paths`); each fix kind has a module of its own
(`replace.py`: ESP301, `document.py`: ESP101, `stale.py`: ESP103), listed in `registry.py` in the
order they are applied (whether a code has a fix, and the most applicable it can be, is its rule
document's `fix` key), `safety.py` derives each fix's applicability (safe, unsafe, display-only:
`rewrite_applicability`, `applicable_releases`) and checks every result before it is returned, and
`style.py` reads the project's line length for the lines a fix writes.
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
