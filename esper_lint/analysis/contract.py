"""Read a statement's comment block and judge it as documentation of a private API.

A block is the text of the full-line comments directly above a statement plus the comments on the
statement's own lines. Only blocks that carry the `Private API` marker are documentation blocks;
those must also give a `since PyTorch X.Y[.Z]` version and a `fallback:` with code that parses and
uses no private API itself. The version may also name a configured root (`since libcst 1.1` when
the roots include `libcst`): the release is the documented package's own.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import libcst as cst

from esper_lint.analysis.forms import MARKER
from esper_lint.parsing import MAX_FRAGMENT_LENGTH, parse_fragment

_TORCH_NAMES = ("pytorch", "torch")
_VERSION = re.compile(r"v?(\d+\.\d+(?:\.\d+)?)")
_FALLBACK = re.compile(r"\bfallback(?:\s+is|\s+to)?\s*:", re.I)


# A named tuple and a slotted class, not dataclasses: a dataclass costs about 1 ms of import time
# on every pre-commit run.
class CommentLine(NamedTuple):
    """One comment: its text without the leading `#`, and the libcst node (for positions)."""

    body: str
    node: cst.Comment


class DocumentationBlock:
    """A comment block that carries the marker, with what it states and what is wrong with it."""

    __slots__ = ("fallback", "lines", "problems", "since")

    def __init__(
        self,
        lines: Sequence[CommentLine],
        since: str | None = None,
        fallback: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.lines = lines
        self.since = since
        self.fallback = fallback
        self.problems: list[str] = [] if problems is None else problems

    def _values(self) -> tuple[Sequence[CommentLine], str | None, str | None, list[str]]:
        return (self.lines, self.since, self.fallback, self.problems)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DocumentationBlock) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, like the dataclass it was

    def __repr__(self) -> str:
        return (
            f"DocumentationBlock(lines={self.lines!r}, since={self.since!r}, fallback={self.fallback!r}, "
            f"problems={self.problems!r})"
        )

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def marker_node(self) -> cst.Comment:
        for line in self.lines:
            if MARKER.search(line.body):
                return line.node
        return self.lines[0].node


# Given fallback code, return the private names it references (the engine's own resolver).
PrivateFinder = Callable[[cst.Module], list[str]]


def comment_body(comment: cst.Comment) -> str:
    return comment.value[1:]


def has_marker(lines: Sequence[CommentLine]) -> bool:
    return any(MARKER.search(line.body) for line in lines)


def parse_block(
    lines: Sequence[CommentLine], find_private: PrivateFinder, *, roots: Sequence[str] = ("torch",)
) -> DocumentationBlock | None:
    """None when the block is no documentation block (no marker); otherwise the judged block.

    The version phrase is `since PyTorch X.Y` or `since torch X.Y`, or names one of `roots` (as
    configured, or its top-level package): `since libcst 1.1` where the roots include `libcst`."""
    if not has_marker(lines):
        return None
    block = DocumentationBlock(lines)
    _read_version(block, tuple(roots))
    _read_fallback(block, find_private)
    return block


@lru_cache(maxsize=32)
def _since_pattern(roots: tuple[str, ...]) -> tuple[re.Pattern[str], str]:
    """The `since <package> X.Y` pattern for these roots, and the package name the messages use."""
    names = {*_TORCH_NAMES, *(root.lower() for root in roots), *(root.split(".")[0].lower() for root in roots)}
    # Longest first: `since torch.distributed 2.1` is that root's, not `torch` followed by `.distributed`.
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=lambda name: (-len(name), name)))
    shown = "PyTorch" if not roots or any(root.split(".")[0] == "torch" for root in roots) else roots[0]
    return re.compile(rf"\bsince\s+(?:{alternatives})\b[ \t]*(\S*)", re.I), shown


def _read_version(block: DocumentationBlock, roots: tuple[str, ...] = ("torch",)) -> None:
    since, shown = _since_pattern(roots)
    text = "\n".join(line.body for line in block.lines)
    first_token: str | None = None
    for match in since.finditer(text):
        token = match.group(1).rstrip(".,;:)!+")
        version = _VERSION.fullmatch(token)
        if version is not None:
            block.since = version.group(1)
            return
        if first_token is None:
            first_token = token
    if first_token is None:
        block.problems.append(f"no version: say 'since {shown} X.Y' (the first release with this API)")
    else:
        found = first_token or "nothing"
        found = found if len(found) <= 40 else found[:37] + "..."
        block.problems.append(f"malformed version: 'since {shown}' is followed by {found!r}, expected X.Y or X.Y.Z")


def _read_fallback(block: DocumentationBlock, find_private: PrivateFinder) -> None:
    bodies = [line.body for line in block.lines]
    located = next(((index, match) for index, body in enumerate(bodies) if (match := _FALLBACK.search(body))), None)
    if located is None:
        block.problems.append("no fallback: add 'fallback: <code>' with the public code to use if this API disappears")
        return
    index, match = located
    body = bodies[index]
    following = _following_lines(bodies[index + 1 :])
    rest = _strip_code_quotes(body[match.end() :].strip())
    candidates = [rest, "\n".join([rest, *following])] if rest else ["\n".join(following)]
    candidates = [textwrap.dedent(code).strip("\n") for code in candidates]
    if not candidates[0].strip():
        block.problems.append("empty fallback: write the fallback code after 'fallback:' or on the comment lines below it")
        return
    if len(candidates[0]) > MAX_FRAGMENT_LENGTH:
        block.problems.append(too_long(candidates[0]))
        return
    for code in candidates:
        module = parse_fragment(code)
        if not isinstance(module, cst.Module):
            continue
        block.fallback = code
        private = find_private(module)
        if private:
            names = ", ".join(f"`{name}`" for name in dict.fromkeys(private))
            block.problems.append(f"the fallback itself uses a private API: {names}")
        return
    block.problems.append(f"the fallback `{_shorten(candidates[0])}` does not parse as Python ({syntax_reason(candidates[0])})")


def too_long(code: str) -> str:
    """The problem of a fallback too long to check."""
    return (
        f"the fallback `{_shorten(code)}` is too long to check ({len(code):,} characters, at most "
        f"{MAX_FRAGMENT_LENGTH:,}): put the code in a function and name it"
    )


def syntax_reason(code: str) -> str:
    """A short reason in CPython's words; libcst's parser messages list every expected token."""
    if len(code) > MAX_FRAGMENT_LENGTH:
        return "too long to check"
    try:
        compile(code + "\n", "<fallback>", "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except SyntaxError as exc:
        return exc.msg
    except (ValueError, RecursionError, MemoryError) as exc:
        return str(exc) or "nested too deeply"
    return "libcst cannot parse it"


def _following_lines(bodies: Sequence[str]) -> list[str]:
    """The comment lines after a bare `fallback is:`, up to a blank comment line."""
    collected: list[str] = []
    for body in bodies:
        if not body.strip():
            break
        collected.append(body)
    return collected


def _strip_code_quotes(code: str) -> str:
    if len(code) >= 2 and code.startswith("`") and code.endswith("`"):
        return code.strip("`").strip()
    return code


def _shorten(code: str, limit: int = 60) -> str:
    flat = " ".join(code.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
