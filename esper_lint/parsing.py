"""The one safe parse: every path that reads Python (check, fix, verify, inventory, flake8, the
fallback code in comments and declarations) parses through here, and gets a tree or an ESP001
finding, never a crash.

libcst's native parser recurses on the C stack without a depth limit: about 5,000 nested lambdas,
conditional expressions or attribute accesses overflow an 8 MiB stack and kill the whole process
(SIGSEGV), and far deeper input also takes minutes. CPython's own parser refuses such input cleanly
(at most 200 nested brackets, and a parser stack of 6,000 levels), so text goes through it first
(`guard`), and libcst then runs on a thread whose stack has room for anything CPython took
(`on_big_stack`). Work on the trees (the resolver, fixers' transformers) recurses as deep as the
tree and runs on that thread too.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import NamedTuple, TypeVar, cast

import libcst as cst

from esper_lint import catalog
from esper_lint.fast.big_stack import BigStackRunner
from esper_lint.model import Finding

__all__ = [
    "MAX_FRAGMENT_LENGTH",
    "MAX_SOURCE_BYTES",
    "Guarded",
    "Parsed",
    "guard",
    "on_big_stack",
    "parse",
    "parse_fragment",
    "too_large",
    "unanalysable",
]

_T = TypeVar("_T")
_BIG_STACK = 512 * 1024 * 1024
_RECURSION_LIMIT = 20_000  # long generated expressions (`a + b + ...` thousands deep) nest the tree that deep
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_NESTING_MESSAGES = ("too many nested parentheses", "too many levels of indentation", "too complex")


# Named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import time on every
# pre-commit run.
class Guarded(NamedTuple):
    """CPython's reading of a file: its tree, or the ESP001 finding that says why there is none
    (a syntax error, code nested too deeply, a file too large or not UTF-8). `Guarded(None, None)`
    stands for a guard already passed (the engine's, before it parses the reduced text)."""

    tree: ast.Module | None
    failure: Finding | None


class Parsed(NamedTuple):
    """libcst's tree of a file, or the ESP001 finding that explains why there is none."""

    module: cst.Module | None
    failure: Finding | None
    text: bytes | str = b""  # what libcst parsed: the source, or the reduced text standing for it


# The largest file analysed. Memory grows with the file: CPython's tree and libcst's together take
# about 130 bytes per byte of ordinary code (a 10 MB file: 1.3 GB), and a 50 MB file took 6.7 GB.
# A larger file gets ESP001, whichever door it came through (check, --fix, verify, flake8).
MAX_SOURCE_BYTES = 16 * 1024 * 1024

# Python reads neither UTF-16 nor UTF-32 source: such a file gets ESP001 rather than being skipped
# by the byte pre-check, which cannot see `torch` spelt in two or four bytes a letter.
_WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def too_large(size: int) -> bool:
    """Whether a file of `size` bytes is beyond what esper-lint analyses."""
    return size > MAX_SOURCE_BYTES


def guard(source: bytes | str, path: str) -> Guarded:
    """CPython's parse of `source`: the check that keeps libcst from input that would crash it.

    Whatever CPython refuses gets ESP001 in CPython's words, and libcst never reads it: libcst
    parses some syntax that this Python does not (PEP 695 on 3.11), and without CPython's reading
    nothing would bound its nesting (30,000 nested lambdas after a `type X = ...` line took 23 GB)."""
    raw = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    refused = _refused_unread(raw, path)
    if refused is not None:
        return Guarded(None, refused)
    try:
        with warnings.catch_warnings():  # invalid escapes and the like are not ours to report
            warnings.simplefilter("ignore")
            tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            return Guarded(cast(ast.Module, tree), None)  # "exec" with PyCF_ONLY_AST: always a Module
    except SyntaxError as exc:
        if exc.lineno and any(text in str(exc.msg) for text in _NESTING_MESSAGES):
            return Guarded(None, unanalysable(path, exc.lineno, exc.offset or 1, f"syntax error: {exc.msg}"))
        return Guarded(None, _refusal(path, raw, exc))
    except (RecursionError, MemoryError):
        return Guarded(None, unanalysable(path, 1, 1, "the code is nested too deeply to parse"))
    except ValueError as exc:  # NUL bytes on older Pythons
        return Guarded(None, _refusal(path, raw, exc))


def _refused_unread(raw: bytes, path: str) -> Finding | None:
    """ESP001 for a file not worth handing to any parser: too large, or UTF-16/32."""
    if too_large(len(raw)):
        size, limit = _size(len(raw)), _size(MAX_SOURCE_BYTES)
        return unanalysable(path, 1, 1, f"the file is too large to analyse ({size}; the limit is {limit})")
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            return unanalysable(path, 1, 1, f"cannot decode the file: {encoding} is not supported (Python source is UTF-8)")
    return None


def _size(count: int) -> str:
    megabytes = count / (1024 * 1024)
    return f"{megabytes:.3g} MB" if megabytes >= 1 else f"{count:,} bytes"


# A line that opens PEP 695 syntax (Python 3.12): type parameters or a `type` statement.
_PEP_695 = re.compile(r"^\s*(?:type\s+\w+\s*[\[=]|(?:async\s+)?def\s+\w+\s*\[|class\s+\w+\s*\[)")


def _refusal(path: str, raw: bytes, exc: SyntaxError | ValueError) -> Finding:
    """ESP001 for a file CPython refuses, worded as CPython words it."""
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    nul = raw.find(b"\0")
    if nul >= 0 and "null bytes" in message:  # CPython gives no position for NUL bytes: point at the first one
        line = len(_LINE_BREAK.findall(raw, 0, nul)) + 1
        column = nul - max(raw.rfind(b"\n", 0, nul), raw.rfind(b"\r", 0, nul))
        return unanalysable(path, line, column, f"syntax error: {message}")
    undecodable = _decode_failure(path, raw)
    if undecodable is not None:
        return undecodable
    line = exc.lineno if isinstance(exc, SyntaxError) and exc.lineno else 1
    column = exc.offset if isinstance(exc, SyntaxError) and exc.offset and exc.offset > 0 else 1
    text = exc.text if isinstance(exc, SyntaxError) else None
    if sys.version_info < (3, 12) and text and _PEP_695.match(text):
        message += f" (type parameters and `type` statements need Python 3.12; this is {sys.version_info[0]}.{sys.version_info[1]})"
    return unanalysable(path, line, column, f"syntax error: {message}")


def _decode_failure(path: str, raw: bytes) -> Finding | None:
    """ESP001 where the bytes do not decode in the file's declared (or default UTF-8) encoding."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:  # an unknown or contradictory encoding declaration
        return unanalysable(path, exc.lineno or 1, 1, f"syntax error: {exc.msg}")
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return unanalysable(path, line, 1, f"cannot decode the file: {exc.reason} ({exc.encoding})")
    except LookupError:
        return unanalysable(path, 1, 1, f"cannot decode the file: unknown encoding {encoding}")
    return None


def parse(
    source: bytes | str,
    path: str,
    *,
    guarded: Guarded | None = None,
    reduced: bytes | str | None = None,
) -> Parsed:
    """The one entry to libcst: `source` checked by the guard (unless its result is given), then
    parsed by libcst on the big stack. `reduced`, a text with the same statements on the same lines
    (the reduction's), is what libcst parses instead where given; should it ever not parse, the whole
    `source` is."""
    raw = source.encode("utf-8") if isinstance(source, str) else source
    checked = guarded if guarded is not None else guard(raw, path)
    if checked.failure is not None:
        return Parsed(None, checked.failure)
    return on_big_stack(_parse_on_big_stack, source, raw, path, reduced)


def _parse_on_big_stack(source: bytes | str, raw: bytes, path: str, reduced: bytes | str | None) -> Parsed:
    if reduced is not None:
        try:
            return Parsed(_parse_unvalidated(reduced), None, reduced)
        except Exception:  # the reduction is built to parse; should it ever not, the whole file is
            pass
    try:
        return Parsed(_parse_unvalidated(source), None, source)
    except Exception as exc:  # libcst raises assorted errors on odd bytes; each is a clear ESP001
        return Parsed(None, _parse_failure(path, raw, exc))




# The longest snippet `parse_fragment` reads. A fallback is a line or a few; libcst's parse time
# grows faster than linearly on long chains (`1+1+...` of 20 KB took a minute), so longer text is
# reported as too long (ESP102) rather than parsed.
MAX_FRAGMENT_LENGTH = 2000


def parse_fragment(code: str, *, expression: bool = False) -> cst.Module | cst.BaseExpression | None:
    """A snippet (fallback code in a comment or declaration, a string annotation) parsed through
    the same guard: its tree, or None when it is not valid Python, is nested too deeply, or is
    longer than MAX_FRAGMENT_LENGTH characters."""
    if len(code) > MAX_FRAGMENT_LENGTH:
        return None
    text = code if expression else code + "\n"
    mode = "eval" if expression else "exec"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<fragment>", mode, flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    try:
        if expression:
            return on_big_stack(cst.parse_expression, text)
        return on_big_stack(cst.parse_module, text)
    except Exception:  # libcst refuses some text CPython takes (newer syntax): not parseable here
        return None


def on_big_stack(function: Callable[..., _T], *args: object) -> _T:
    """Run `function` on the big-stack thread with a recursion limit to match; directly when
    already there."""
    return _big_stack.call(partial(_with_deep_recursion, function, args))


def _with_deep_recursion(function: Callable[..., _T], args: tuple[object, ...]) -> _T:
    with _deep_recursion():
        return function(*args)


_big_stack = BigStackRunner(_BIG_STACK)


@contextmanager
def _deep_recursion() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, _RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def unanalysable(path: str, line: int, column: int, reason: str) -> Finding:
    """ESP001 at a place in a file."""
    return Finding(path, max(line, 1), max(column, 1), "ESP001", catalog.message("ESP001", details=reason), None)


_validation_lock = threading.Lock()


def _parse_unvalidated(source: bytes | str) -> cst.Module:
    """`cst.parse_module` without re-validating each node as libcst's parser builds it.

    Every libcst node checks its own fields on construction (`CSTNode.__post_init__`), which is a
    fifth of the parse; nodes that libcst's parser builds from text it accepted are valid by
    construction (libcst's own comment there says as much). Nodes built outside this call, as
    the fixers' are, are still checked. Where a libcst release moves that hook, this is a plain
    parse.
    """
    hook = cst.CSTNode.__dict__.get("__post_init__")
    if hook is None:
        return cst.parse_module(source)
    with _validation_lock:
        cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        try:
            return cst.parse_module(source)
        finally:
            cst.CSTNode.__post_init__ = hook  # type: ignore[method-assign]


def _no_validation(self: cst.CSTNode) -> None:
    return None


def _parse_failure(path: str, raw: bytes, exc: Exception) -> Finding:
    if isinstance(exc, cst.ParserSyntaxError):
        return _syntax_error(path, raw, exc)
    if isinstance(exc, UnicodeDecodeError):
        line = raw[: exc.start].count(b"\n") + 1
        return unanalysable(path, line, 1, f"cannot decode the file: {exc.reason} ({exc.encoding})")
    if isinstance(exc, RecursionError):
        return unanalysable(path, 1, 1, "the code is nested too deeply to parse")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return unanalysable(path, 1, 1, f"cannot parse: {text[:200]}")


def _syntax_error(path: str, raw: bytes, exc: cst.ParserSyntaxError) -> Finding:
    """Place and word a syntax error as CPython does; libcst's messages list every expected token."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(raw, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as cpython:
        if cpython.lineno:
            return unanalysable(path, cpython.lineno, cpython.offset or 1, f"syntax error: {cpython.msg}")
        nul = raw.find(b"\0")
        if nul >= 0:  # CPython gives no position for NUL bytes: point at the first one
            line = len(_LINE_BREAK.findall(raw, 0, nul)) + 1
            column = nul - max(raw.rfind(b"\n", 0, nul), raw.rfind(b"\r", 0, nul))
            return unanalysable(path, line, column, f"syntax error: {cpython.msg}")
    except (ValueError, RecursionError, MemoryError) as other:
        return unanalysable(path, exc.raw_line, exc.raw_column + 1, f"syntax error: {other}")
    # CPython accepts it but libcst cannot parse it (syntax newer than this libcst knows).
    return unanalysable(path, exc.raw_line, exc.raw_column + 1, f"libcst cannot parse this syntax: {exc.message}")
