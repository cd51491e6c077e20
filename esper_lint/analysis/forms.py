"""The reference forms: each way code can name a private API, or guard against its absence, is
described here once. The resolver (`analysis/resolver.py`), the reduction (`fast/reduction.py`) and
the byte pre-check (`fast/precheck.py`) all read this table, so a new form is one edit here plus
the code that follows it, and the fast path cannot silently fall behind the resolver.

| form                              | resolver reads it as          | fast path keeps it by              |
|-----------------------------------|-------------------------------|------------------------------------|
| `root._x`, `import root._x`       | a reference                   | `PRIVATE_AFTER_DOT`                |
| `from root import _x`             | a reference                   | the pre-check's import scan        |
| `getattr(obj, "_x"[, default])`   | a reference (`STRING_USE`)    | `STRING_USE_BYTES`, kept arguments |
| `setattr(obj, "_x", v)`, `delattr`, `mock.patch.object(obj, "_x")` | a reference at the string | `NAMED_STRING_BYTES`, kept arguments |
| `mock.patch("torch._x.y")`, `import_module("torch._x")` | a reference at the string | `PRIVATE_AFTER_DOT`, kept strings |
| `hasattr(obj, "_x")`              | a guard (`analysis/guards.py`) | `GUARD_BYTES`: kept, `if` bodies whole |
| `getattr(obj, "_x", None)` probe  | a guard (`PROBE_CHECKS`)      | a file with a probe is not cut     |
| `except ImportError:` and kin     | a fallback (`FALLBACK_ERRORS`) | every part of a `try` stays whole   |
| a test on `torch.__version__`     | a version branch              | `VERSION_BYTES`: kept, unthinned, with the names it binds |
| a `Private API` comment           | a documentation block         | `MARKER_BYTES`                     |
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

# Patterns that only a parse needs (the contract's comment reading, the reduction, the version
# branches) are compiled on first use, by `__getattr__` below: a run whose files all fail the byte
# pre-check, and flake8's start-up, never pay for compiling them (about 1.5 ms).
_ON_FIRST_USE: dict[str, tuple[str | bytes, int]] = {}
if TYPE_CHECKING:
    MARKER: re.Pattern[str]
    GUARD_BYTES: re.Pattern[bytes]
    VERSION_BYTES: re.Pattern[bytes]
    VERSION_FLAG: re.Pattern[str]

# The documentation marker (README, "The comment contract"), in comment text and in raw bytes.
_MARKER_SOURCE = r"private[ \t]+api"
_ON_FIRST_USE["MARKER"] = (_MARKER_SOURCE, re.I)
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

# Writes and test helpers that name an attribute by a string (`analysis/strings.py`): the built-ins
# `setattr(obj, "_x", v)` / `delattr(obj, "_x")`, pytest's `monkeypatch.setattr/delattr` (also with a
# whole dotted path as the first argument), and `mock.patch.object(obj, "_x")`.
NAMED_ATTRIBUTE_CALLS = frozenset({"setattr", "delattr"})
TEST_HELPER_WRITES = NAMED_ATTRIBUTE_CALLS
PATCH_OBJECT = "object"
# Callables whose first argument is a whole dotted path, recognised by the name they are called by:
# `patch`/`mock.patch`/`unittest.mock.patch` (and `patch.multiple`), `importlib.import_module`, `__import__`.
PATH_CALLS = frozenset({"patch", "import_module", "__import__"})
PATCH_PATH_METHODS = frozenset({"multiple"})
# Every call above writes one of these words (a whole dotted path also has a private component after
# a dot, which `PRIVATE_AFTER_DOT` finds): the pre-check and the hot-line scan look for them.
NAMED_STRING_BYTES = re.compile(rb"[gsd]e[tl]attr|\bobject\b")

# Guards (`analysis/guards.py`): where a statement's lines say `hasattr`, the reduction keeps it, and
# the bodies of an `if` or `while` that tests it, whole. Bare names a probe check may test through:
# `callable(fn)`.
_ON_FIRST_USE["GUARD_BYTES"] = (rb"hasattr", 0)
PROBE_CHECKS = frozenset({"callable"})
# Version branches (`analysis/version_branches.py`) read module constants and helpers anywhere in the
# file: a statement that names torch's version stays whole, and so does every statement that reads a
# name such a statement binds (`fast/reduction._version_names`).
_ON_FIRST_USE["VERSION_BYTES"] = (rb"__version__|TorchVersion", 0)

# The errors raised where a private name has vanished, and the broader classes that catch them: a
# `try` whose handler catches one of these is a code-level fallback.
FALLBACK_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "AttributeError", "Exception", "BaseException"})

# Version tests whose releases cannot be read (`version_branches.Opaque`): names that say they are
# about torch's version: `WITH_PT23`, `TORCH_GE_2_3`, `_TORCH_GREATER_EQUAL_2_1`,
# `is_torch_greater_or_equal_than_2_0`, `TORCH_VERSION_AT_LEAST_2_4`, `torch_version_at_least`. The
# reduction keeps an `if` that tests one, with its bodies.
_ON_FIRST_USE["VERSION_FLAG"] = (
    r"version|(?:^|_)(?:pt|torch|th)_?(?:ge|gt|le|lt|eq)?_?v?\d|_\d+_\d+(?:_\d+)?$"
    r"|torch_?(?:is_)?(?:greater|less|older|newer|at_least|before|after)",
    re.I,
)


def looks_like_version_flag(name: str) -> bool:
    flag: re.Pattern[str] = globals().get("VERSION_FLAG") or __getattr__("VERSION_FLAG")
    return flag.search(name) is not None


def __getattr__(name: str) -> re.Pattern[Any]:
    """A pattern of `_ON_FIRST_USE`, compiled when first read (`from ... import MARKER` reads it)."""
    try:
        source, flags = _ON_FIRST_USE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    compiled = globals()[name] = re.compile(source, flags)
    return compiled
