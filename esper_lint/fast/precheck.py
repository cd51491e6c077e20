"""A byte-level test that a file cannot hold anything esper-lint reports, so it is never parsed.

Soundness argument (tested on the fixtures and on torch's own sources): every finding needs either
the documentation marker text, or a private reference. A private reference needs the root's name in
the file (an import of it, or the bare name) and a private component written somewhere:
  * after a dot (`torch._x`, `from torch._x import`, `import torch._x`), dots and names possibly
    separated by whitespace, line continuations or comments inside brackets;
  * as an imported name (`from torch import _x`, also inside parentheses);
  * as a string literal naming an attribute (`getattr(torch, "_x")`, `setattr`, `delattr`,
    `mock.patch.object(torch.cuda, "_x")`), or inside a whole dotted path (`mock.patch("torch._x")`,
    which has a private component after a dot).
Anything that looks like one of these passes, so the test can only err towards parsing. Python
reads identifiers in NFKC form (`torch` in mathematical bold letters is `torch`), so a file with non-ASCII bytes is tested again
in that form, and one that is not UTF-8 is always parsed.
`self._x` alone never passes: the resolver never treats `self` as a torch name.

Library code is full of `obj._x` unrelated to torch, so a file that passes those byte tests but
does not write `torch._` literally gets a second, still conservative stage: CPython's `ast` (a
fraction of libcst's cost) read by `esper_lint.fast.reduction`, a flow- and scope-insensitive
over-approximation of the resolver. The engine runs that stage itself, as part of cutting the file
down before libcst (see `esper_lint.engine`); `may_report` offers both stages to the fixer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from esper_lint.analysis.forms import MARKER_BYTES, NAMED_STRING_BYTES, PRIVATE_AFTER_DOT

_IMPORT = re.compile(rb"\bimport\b")
_UNDERSCORE_WORD = re.compile(rb"(?<![\w.])_")
_QUOTED_UNDERSCORE = re.compile(rb"['\"]_")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)


@lru_cache(maxsize=32)
def _root_pattern(roots: tuple[str, ...]) -> re.Pattern[bytes]:
    heads = sorted({root.split(".")[0] for root in roots})
    return re.compile(rb"(?<![\w])(?:" + b"|".join(re.escape(h.encode()) for h in heads) + rb")(?![\w])")


@lru_cache(maxsize=32)
def _direct_pattern(roots: tuple[str, ...]) -> re.Pattern[bytes]:
    """`torch._x` written literally: certain enough to skip the ast stage."""
    heads = sorted({root.split(".")[0] for root in roots})
    return re.compile(rb"(?<![\w.])(?:" + b"|".join(re.escape(h.encode()) for h in heads) + rb")\._")


def may_report(source: bytes, roots: Sequence[str], *, use_ast: bool = True) -> bool:
    """False only when the file provably yields no finding."""
    if MARKER_BYTES.search(source):
        return True
    if not bytes_may_reference(source, roots):
        return False
    if not use_ast or _direct_pattern(tuple(roots)).search(source):
        return True
    import ast  # only here: the byte stage decides most files, and a clean run never imports ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # let the full parser report ESP001
    from esper_lint.fast.reduction import may_reference  # the byte stage alone never needs it

    try:
        return may_reference(tree, roots)
    except RecursionError:
        return True


def bytes_may_reference(source: bytes, roots: Sequence[str]) -> bool:
    """The byte stage alone: False only when no private reference can be written in `source`."""
    if _ascii_may_reference(source, roots):
        return True
    if source.isascii():
        return False
    # Python reads identifiers in NFKC form: mathematical bold `torch` (U+1D42D...) is `torch`. The
    # same tests on the normalised text; a file that is not UTF-8 (a UTF-16 one, a coding cookie) is
    # parsed, whatever it holds, and the parser says what it makes of it.
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        return True
    cookie = _CODING.search(b"\n".join(source.splitlines()[:2]))
    if cookie is not None and cookie.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return True
    return _ascii_may_reference(unicodedata.normalize("NFKC", text).encode("utf-8", "surrogatepass"), roots)


def _ascii_may_reference(source: bytes, roots: Sequence[str]) -> bool:
    if not _root_pattern(tuple(roots)).search(source):
        return False
    return _has_private_attribute(source) or _has_private_import(source) or _has_getattr_string(source)


def _has_private_attribute(source: bytes) -> bool:
    for match in PRIVATE_AFTER_DOT.finditer(source):
        start = match.start()
        if source[start - 4 : start] == b"self" and (start < 5 or not _is_name_or_dot(source[start - 5])):
            continue
        return True
    return False


def _is_name_or_dot(byte: int) -> bool:
    return byte == 0x2E or byte == 0x5F or 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A or byte >= 0x80


def _has_private_import(source: bytes) -> bool:
    return any(_UNDERSCORE_WORD.search(_import_region(source, match.end())) for match in _IMPORT.finditer(source))


def _import_region(source: bytes, start: int) -> bytes:
    """The names after `import`: up to `)` when parenthesised, else to the end of the logical line."""
    position = start
    while position < len(source) and source[position] in b" \t\f\\\r\n":
        if source[position] in b"\r\n" and source[position - 1 : position] != b"\\":
            break
        position += 1
    if source[position : position + 1] == b"(":
        end = source.find(b")", position)
        return source[position : end if end >= 0 else len(source)]
    end = position
    while True:
        line_end = _LINE_END.search(source, end)
        if line_end is None:
            return source[start:]
        if source[line_end.start() - 1 : line_end.start()] != b"\\":
            return source[start : line_end.start()]
        end = line_end.end()


def _has_getattr_string(source: bytes) -> bool:
    # Substring tests first: any match of the patterns contains one of each pair, and a substring
    # test runs at memchr speed, where the patterns (each starting with a character class) cost
    # 0.3 ms on a 9 KB module.
    if b"'_" not in source and b'"_' not in source:
        return False
    if b"attr" not in source and b"object" not in source:
        return False
    return NAMED_STRING_BYTES.search(source) is not None and _QUOTED_UNDERSCORE.search(source) is not None
