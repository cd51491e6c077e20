"""What people read around the findings: the summary line, `--statistics`, the `full` format with
its source line and caret, the fixable marker, and colour on a terminal.

The machine formats (json, sarif, github) never pass through here: their bytes on stdout stay
exactly what tools parse. The summary goes to stderr.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from esper_lint.model import Finding

FIXABLE_MARKER = "[*]"

_BOLD, _RED, _CYAN, _GREEN, _DIM, _RESET = "\033[1m", "\033[31m", "\033[36m", "\033[32m", "\033[2m", "\033[0m"


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):
        return False


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal; `NO_COLOR` (any value but empty) turns it off and `FORCE_COLOR` on
    (no-color.org, force-color.org), NO_COLOR winning when both are set."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
    except (ValueError, OSError):
        return False


# The findings --fix would fix, by (path, line, code): the command line asks the fixer which they are.
Fixable = frozenset[tuple[str, int, str]]


def fix_key(finding: Finding) -> tuple[str, int, str]:
    return (finding.path, finding.line, finding.code)


def fixable_codes() -> frozenset[str]:
    """The codes `--fix` fixes without `--unsafe-fixes`: the fix registry's FIXABLE_CODES less its
    UNSAFE_CODES, read from the rule documents' `fix = "safe"` from which the registry derives them
    (tests/test_rules_docs.py keeps the two equal): importing the registry would load libcst, which
    a warm run served from the cache otherwise never does."""
    from esper_lint import catalog

    return frozenset(code for code, rule in catalog.all_rules().items() if rule.fix == "safe")


class Painter:
    """ANSI colour where wanted, plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        return f"{''.join(styles)}{text}{_RESET}" if self.enabled and text else text


def concise_report(findings: Sequence[Finding], paint: Painter, fixable: Fixable = frozenset()) -> str:
    """`path:line:col: CODE message`, flake8's layout (the text format), with the fixable marker
    on the findings `fixable` holds, and colour when `paint` has it."""
    lines = []
    for f in findings:
        marker = f"{paint(FIXABLE_MARKER, _CYAN)} " if fix_key(f) in fixable else ""
        lines.append(
            f"{paint(f.path, _BOLD)}{paint(':', _CYAN)}{f.line}{paint(':', _CYAN)}{f.column}{paint(':', _CYAN)} "
            f"{paint(f.code, _BOLD, _RED)} {marker}{f.message}\n"
        )
    return "".join(lines)


def full_report(
    findings: Sequence[Finding], paint: Painter, fixable: Fixable, source_lines: Callable[[str], list[str] | None]
) -> str:
    """ruff's `full` layout: the concise line, then the source line with a caret under the column."""
    out = []
    for f in findings:
        out.append(concise_report([f], paint, fixable))
        lines = source_lines(f.path)
        if lines is not None and 1 <= f.line <= len(lines):
            text = lines[f.line - 1].rstrip("\r\n").expandtabs(1)  # a tab is one column, as the finding counts it
            gutter = str(f.line)
            out.append(f"{paint(' ' * len(gutter) + ' |', _CYAN)}\n")
            out.append(f"{paint(gutter + ' |', _CYAN)} {text}\n")
            caret = " " * (max(f.column, 1) - 1) + "^"
            out.append(f"{paint(' ' * len(gutter) + ' |', _CYAN)} {paint(caret + ' ' + f.code, _RED, _BOLD)}\n")
        out.append("\n")
    return "".join(out)


def summary_line(findings: Sequence[Finding], fixable: Fixable, paint: Painter) -> str:
    """`Found N findings (M fixable with --fix).` or `All checks passed!`"""
    if not findings:
        return paint("All checks passed!", _GREEN, _BOLD)
    count = len(findings)
    fixes = sum(1 for f in findings if fix_key(f) in fixable)
    noun = "finding" if count == 1 else "findings"
    tail = f" ({fixes} fixable with --fix)" if fixes else ""
    return f"Found {paint(str(count), _BOLD)} {noun}{tail}."


def statistics_report(findings: Sequence[Finding], fixable: Fixable) -> str:
    """`--statistics`: one line per code, the most frequent first, as ruff prints it."""
    from esper_lint import catalog

    rules = catalog.all_rules()
    counts = Counter(f.code for f in findings)
    fixable_codes_here = {f.code for f in findings if fix_key(f) in fixable}
    width = max((len(str(n)) for n in counts.values()), default=1)
    rows = []
    for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        name = rules[code].name if code in rules else ""
        marker = FIXABLE_MARKER if code in fixable_codes_here else " " * len(FIXABLE_MARKER)
        rows.append(f"{count:>{width}}\t{code}\t{marker} {name}\n")
    return "".join(rows)


def read_lines_for(path: str) -> list[str] | None:
    """A linted file's lines, for the `full` format; None if it cannot be read now."""
    from esper_lint.frontends.reading import read_regular_file

    try:
        return decoded_source_lines(read_regular_file(path))
    except OSError:
        return None


def decoded_source_lines(raw: bytes) -> list[str]:
    """The lines as Python reads them: the declared encoding (latin-1 if that fails), no BOM, any newline."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding, "replace")
    except (SyntaxError, LookupError):
        text = raw.decode("latin-1")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def write_summary(text: str) -> None:
    print(text, file=sys.stderr)
