"""Central `[tool.esper-lint.private-apis."NAME"]` declarations: judged like comment blocks.

A declaration documents every use of NAME (and of names under it). It needs a `since` version and a
`fallback` that parses and uses no private API; `reason` is free text. Problems are reported as
ESP102 and declarations that match no use as ESP103, both located in pyproject.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import libcst as cst

from esper_lint import catalog
from esper_lint.analysis.contract import syntax_reason, too_long
from esper_lint.analysis.judge import private_names_in
from esper_lint.model import Finding
from esper_lint.names import covers
from esper_lint.parsing import MAX_FRAGMENT_LENGTH, parse_fragment

_VERSION = re.compile(r"v?\d+\.\d+(?:\.\d+)?")


def declaration_line(pyproject: Path, name: str) -> int:
    """The line of the declaration's table header (or of the name as a key), else 1."""
    try:
        lines = pyproject.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 1
    for number, line in enumerate(lines, start=1):
        if f'"{name}"' in line or f"'{name}'" in line:
            return number
    return 1


def declaration_problems(name: str, entry: Mapping[str, str], roots: Iterable[str]) -> list[str]:
    problems: list[str] = []
    since = entry.get("since", "").strip()
    if not since:
        problems.append("no `since` version (the first PyTorch release with this API)")
    elif not _VERSION.fullmatch(since):
        problems.append(f"malformed `since` {since!r}, expected X.Y or X.Y.Z")
    fallback = entry.get("fallback", "").strip()
    if not fallback:
        problems.append("no `fallback` code")
    elif len(fallback) > MAX_FRAGMENT_LENGTH:
        problems.append(too_long(fallback))
    else:
        module = parse_fragment(fallback)
        if not isinstance(module, cst.Module):
            problems.append(f"the fallback does not parse as Python ({syntax_reason(fallback)})")
        else:
            private = list(dict.fromkeys(private_names_in(module, None, tuple(roots))))
            if private:
                problems.append("the fallback itself uses a private API: " + ", ".join(f"`{p}`" for p in private))
    return problems


def judge_declarations(
    declarations: Mapping[str, Mapping[str, str]],
    pyproject: Path | None,
    display: str,
    roots: Iterable[str],
    used_names: Iterable[str] | None,
) -> list[Finding]:
    """ESP102 for invalid declarations; ESP103 for ones no reference uses (when uses are known)."""
    if not declarations:
        return []
    roots = tuple(roots)
    used = set(used_names) if used_names is not None else None
    findings: list[Finding] = []
    for name, entry in declarations.items():
        line = declaration_line(pyproject, name) if pyproject is not None else 1
        problems = declaration_problems(name, entry, roots)
        if problems:
            message = catalog.message("ESP102", variant="declaration", name=name, details="; ".join(problems))
            findings.append(Finding(display, line, 1, "ESP102", message, name))
        if used is not None and not any(covers(name, use) for use in used):
            message = catalog.message("ESP103", variant="declaration", name=name)
            findings.append(Finding(display, line, 1, "ESP103", message, name))
    return findings
