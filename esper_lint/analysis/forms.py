"""The reference forms: each way code can name a private API, or guard against its absence, is
described here once. The resolver (`analysis/resolver.py`), the reduction (`fast/reduction.py`) and
the byte pre-check (`fast/precheck.py`) all read this table, so a new form is one edit here plus
the code that follows it, and the fast path cannot silently fall behind the resolver.

| form                              | resolver reads it as          | fast path keeps it by              |
|-----------------------------------|-------------------------------|------------------------------------|
| `root._x`, `import root._x`       | a reference                   | `PRIVATE_AFTER_DOT`                |
| `from root import _x`             | a reference                   | the pre-check's import scan        |
| `getattr(obj, "_x"[, default])`   | a reference (`STRING_USE`)    | `STRING_USE_BYTES`, kept arguments |
| `hasattr(obj, "_x")`              | a guard (`STRING_GUARD`)      | kept arguments                     |
| `except ImportError:` and kin     | a fallback (`FALLBACK_ERRORS`) | handlers of a kept `try` stay whole |
| a `Private API` comment           | a documentation block         | `MARKER_BYTES`                     |
"""

from __future__ import annotations

import re

# The documentation marker (README, "The comment contract"), in comment text and in raw bytes.
_MARKER_SOURCE = r"private[ \t]+api"
MARKER = re.compile(_MARKER_SOURCE, re.I)
MARKER_BYTES = re.compile(_MARKER_SOURCE.encode(), re.I)

# A private component written after a dot: dots and names possibly separated by whitespace, line
# continuations or comments inside brackets. Each alternative consumes a distinct kind of byte and
# a comment runs to its line's end, so the loop cannot split one input several ways (no
# exponential backtracking on `# ## ###` lines). Dunders (`super().__init__`) are public and
# everywhere, so they do not count; `__x` does.
PRIVATE_AFTER_DOT_SOURCE = rb"\.(?:[ \t\f\r\n]|\\(?=[\r\n])|#[^\r\n]*(?=[\r\n]))*_(?!_[A-Za-z0-9_]*__(?![A-Za-z0-9_]))"
PRIVATE_AFTER_DOT = re.compile(PRIVATE_AFTER_DOT_SOURCE)

# Built-ins that name an attribute by a string: `getattr` uses it, `hasattr` only tests for it
# (a guard: `if hasattr(torch, "_x"): ... else: <fallback>`).
STRING_USE = "getattr"
STRING_GUARD = "hasattr"
STRING_CALLS = frozenset({STRING_USE, STRING_GUARD})
# Where a string use may be written: the pre-check and the reduction's hot-line scan look for it.
STRING_USE_BYTES = STRING_USE.encode()

# The errors raised where a private name has vanished, and the broader classes that catch them: a
# `try` whose handler catches one of these is a code-level fallback.
FALLBACK_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "AttributeError", "Exception", "BaseException"})
