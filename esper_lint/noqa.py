"""Inline suppression: flake8's `# noqa` comments, applied once for every front end.

The rules are flake8's own (7.x), so that `esper-lint check`, the pre-commit hook and
`flake8 --select ESP` give the same answer on the same file:

- `# noqa` anywhere in a line's text (any case, even inside a string, as flake8 searches it)
  suppresses every finding on that line; `# noqa: ESP101`, `# noqa:ESP101,ESP102`,
  `# noqa: ESP1 ESP3` only those codes, or codes starting with a listed prefix. Codes are compared
  case-sensitively, as flake8 compares them: `# noqa: esp101` suppresses nothing.
- Only the first `# noqa` of the text searched counts.
- The text searched for a finding's line is the whole token range that line belongs to, as flake8
  maps it: the lines from one NEWLINE or NL token to the next, so a comment anywhere on a
  multi-line string or a backslash-continued statement covers every line of it. (Inside brackets
  tokenize ends each line with NL, so there each physical line stands alone, in flake8 too.)

ESP002, off by default, reports a `# noqa` that lists an ESP code which suppresses nothing on its
line, and a comment that reads as a bare `# noqa` although codes follow it (`# noqa ESP101`,
`# noqa : ESP101`), which flake8 takes as suppressing every code.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable, Iterable

from esper_lint.model import Finding

# flake8's NOQA_INLINE_REGEXP, character for character (flake8/defaults.py).
NOQA_INLINE = re.compile(r"# noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
_SEPARATORS = re.compile(r"[,\s]")  # flake8's utils.COMMA_SEPARATED_LIST_RE
_NOQA_PRESENT = re.compile(rb"# noqa", re.IGNORECASE)
# Codes after a bare noqa comment that its author meant to list: flake8 reads the comment as bare.
_CODES_AFTER_BARE = re.compile(r"[ \t]*:?[ \t]*(?P<code>ESP[0-9]+)", re.IGNORECASE)
UNUSED_NOQA = "ESP002"


def may_have_noqa(raw: bytes) -> bool:
    """Cheap: whether the file holds any `# noqa` at all (nearly every file does not)."""
    return _NOQA_PRESENT.search(raw) is not None


def decoded_lines(raw: bytes | str) -> list[str]:
    """The file's lines as flake8 reads them: decoded in the declared encoding (latin-1 when that
    fails), universal newlines, no BOM."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
            text = raw.decode(encoding)
        except (SyntaxError, UnicodeError, LookupError):
            text = raw.decode("latin-1")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.splitlines(keepends=True) if "\n" in text else ([text] if text else [])


def _ranges(lines: list[str]) -> list[tuple[int, int]]:
    """flake8's `FileProcessor._noqa_line_mapping`, as (first line, last line) ranges."""
    ranges: list[tuple[int, int]] = []
    line_iterator = iter(lines)
    try:
        tokens = list(tokenize.generate_tokens(lambda: next(line_iterator)))
    except (tokenize.TokenError, SyntaxError):
        return []
    low, high = len(lines) + 2, -1
    for kind, _, (start, _), (end, _), _ in tokens:
        if kind in (tokenize.ENDMARKER, tokenize.DEDENT):
            continue
        low, high = min(low, start), max(high, end)
        if kind in (tokenize.NL, tokenize.NEWLINE):
            ranges.append((low, high))
            low, high = len(lines) + 2, -1
    return ranges


class _Directive:
    """One `# noqa` comment as a finding's line sees it, and what it suppressed.

    A slotted class, not a dataclass: a dataclass costs about 1 ms of import time on every
    pre-commit run."""

    __slots__ = ("codes", "column", "line", "used")

    def __init__(self, line: int, column: int, codes: tuple[str, ...] | None, used: set[str] | None = None) -> None:
        self.line = line  # 1-based line of the comment
        self.column = column  # 1-based column of its `#`
        self.codes = codes  # None: a bare noqa comment
        self.used: set[str] = set() if used is None else used

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Directive) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.line, self.column, self.codes, self.used) == (other.line, other.column, other.codes, other.used)

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, like the dataclass it was

    def __repr__(self) -> str:
        return f"_Directive(line={self.line!r}, column={self.column!r}, codes={self.codes!r}, used={self.used!r})"

    def suppresses(self, code: str) -> bool:
        if self.codes is None:
            return True
        matching = [listed for listed in self.codes if code == listed or code.startswith(listed)]
        self.used.update(matching)
        return bool(matching)


class NoqaMap:
    """Which `# noqa` directive each line of a file answers to."""

    def __init__(self, raw: bytes | str) -> None:
        self.lines = decoded_lines(raw)
        self._range_of: dict[int, tuple[int, int]] = {}
        for low, high in _ranges(self.lines):
            for number in range(low, high + 1):
                self._range_of[number] = (low, high)
        self._directives: dict[tuple[int, int], _Directive | None] = {}

    def directive_for(self, line: int) -> _Directive | None:
        low, high = self._range_of.get(line, (line, line))  # no token range: the physical line, as flake8's linecache
        key = (low, high)
        if key not in self._directives:
            self._directives[key] = self._parse(low, high)
        return self._directives[key]

    def _parse(self, low: int, high: int) -> _Directive | None:
        text = "".join(self.lines[low - 1 : high])
        match = NOQA_INLINE.search(text)
        if match is None:
            return None
        before = text[: match.start()]
        line = low + before.count("\n")
        column = match.start() - (before.rfind("\n") + 1) + 1
        codes = match.group("codes")
        parsed = None if codes is None else tuple(item.strip() for item in _SEPARATORS.split(codes) if item.strip())
        return _Directive(line, column, parsed)

    def directives(self) -> list[tuple[_Directive, str]]:
        """Every directive of the file, with the text after it, for the unused-noqa check."""
        found: list[tuple[_Directive, str]] = []
        number = 1
        while number <= len(self.lines):
            _low, high = self._range_of.get(number, (number, number))
            directive = self.directive_for(number)
            if directive is not None:
                line_text = self.lines[directive.line - 1]
                found.append((directive, line_text[directive.column - 1 :]))
            number = max(high, number) + 1
        return found


def apply_noqa(
    findings: list[Finding],
    raw: bytes | str,
    path: str,
    *,
    report_unused: Callable[[str], bool] | None = None,
    message: Callable[[str], str] | None = None,
    suppress: bool = True,
) -> list[Finding]:
    """`findings` less those a `# noqa` suppresses (all of them when not `suppress`: flake8, which
    applies the comments itself, is given every finding); with `report_unused` (whether a listed ESP code
    or prefix names an enabled rule of this file), plus an ESP002 finding for each directive that
    lists ESP codes in vain or reads as bare although codes follow it. `message(details)` words it."""
    if not (_NOQA_PRESENT.search(raw) if isinstance(raw, bytes) else NOQA_INLINE.search(raw)):
        return findings
    noqa = NoqaMap(raw)
    kept = [finding for finding in findings if not _suppressed(noqa, finding)]  # also records what each directive used
    if not suppress:
        kept = findings
    if report_unused is None or message is None:
        return kept
    extra = []
    for line, column, details, malformed in unused_directives(noqa, report_unused):
        finding = Finding(path, line, column, UNUSED_NOQA, message(details))
        # A malformed directive reads as bare, which would hide its own report: it is exempt here.
        # flake8 applies its reading of the comment, so under flake8 the report stays hidden.
        if malformed or not (suppress and _suppressed(noqa, finding)):
            extra.append(finding)
    return kept + extra


def _suppressed(noqa: NoqaMap, finding: Finding) -> bool:
    directive = noqa.directive_for(finding.line)
    return directive is not None and directive.suppresses(finding.code)


def unused_directives(noqa: NoqaMap, enabled: Callable[[str], bool]) -> Iterable[tuple[int, int, str, bool]]:
    """(line, column, what is wrong, whether it is malformed) for each directive ESP002 reports. Only ESP codes are judged:
    a bare `# noqa`, or another tool's code, may be what some other linter needs."""
    for directive, after in noqa.directives():
        if directive.codes is None:
            misread = _CODES_AFTER_BARE.match(after, len("# noqa"))
            if misread is not None:
                written = after[: misread.end()].strip()
                yield (
                    directive.line,
                    directive.column,
                    f"malformed `# noqa`: flake8 reads `{written}` as a bare `# noqa`, which hides every code on the line;"
                    f" write `# noqa: {misread.group('code').upper()}`",
                    True,
                )
            continue
        problems: list[str] = []
        for listed in directive.codes:
            if listed == UNUSED_NOQA or listed in directive.used:
                continue
            if listed.upper().startswith("ESP") and not listed.startswith("ESP"):
                problems.append(f"`{listed}` (codes are compared case-sensitively: write `{listed.upper()}`)")
            elif listed.startswith("ESP") and enabled(listed):
                problems.append(f"`{listed}`")
        if problems:
            yield directive.line, directive.column, f"unused `# noqa` code {', '.join(problems)}: nothing on this line reports it", False
