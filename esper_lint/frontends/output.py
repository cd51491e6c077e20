"""Reporters: turn findings into text for people and tools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from esper_lint import __version__
from esper_lint.model import Finding

# json, pathlib and urllib.parse load inside the reporters that use them: a clean pre-commit run
# prints nothing and should not pay for them.

INFORMATION_URI = "https://github.com/esper-lint/esper-lint"


def rule_help_uri(code: str) -> str:
    """Where a rule's document is read online (SARIF's helpUri, the language server's code links)."""
    return f"{INFORMATION_URI}/blob/main/rules/{code}.md"


def text_report(findings: Sequence[Finding]) -> str:
    return "".join(f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}\n" for f in findings)


def json_report(findings: Sequence[Finding]) -> str:
    """`json.dumps([f.to_json() ...], indent=2, ensure_ascii=False)`, byte for byte, written directly:
    with an indent, `json` falls back to its pure-Python encoder, which took most of a warm run's
    time over torch's 21,541 findings."""
    if not findings:
        return "[]\n"
    import json

    quote = json.encoder.encode_basestring  # the C encoder `json.dumps` itself uses for each string
    items = [
        f'  {{\n    "path": {quote(f.path)},\n    "line": {int(f.line)},\n    "column": {int(f.column)},\n'
        f'    "code": {quote(f.code)},\n    "name": {"null" if f.name is None else quote(f.name)},\n'
        f'    "message": {quote(f.message)}\n  }}'
        for f in findings
    ]
    return "[\n" + ",\n".join(items) + "\n]\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github_report(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""
    from pathlib import PurePath

    lines = []
    for f in findings:
        path = PurePath(f.path).as_posix()
        lines.append(
            f"::error file={_escape_property(path)},line={f.line},col={f.column},"
            f"title={_escape_property(f.code)}::{_escape_data(f'{f.code} {f.message}')}\n"
        )
    return "".join(lines)


def _artifact_location(path: str) -> dict[str, str]:
    from pathlib import Path, PurePath

    candidate = Path(path)
    if candidate.is_absolute():
        return {"uri": candidate.as_uri()}
    from urllib.parse import quote

    return {"uri": quote(PurePath(path).as_posix()), "uriBaseId": "%SRCROOT%"}


def sarif_report(findings: Sequence[Finding]) -> str:
    """SARIF 2.1.0, one run, rules described from rules/ (what code scanning UIs show)."""
    from esper_lint import catalog

    rules = catalog.all_rules()
    rule_ids = list(rules)
    descriptors = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.section("What it does")},
            "help": {"text": rule.section("Why it matters"), "markdown": rule.document.strip()},
            "helpUri": rule_help_uri(rule.code),
            "defaultConfiguration": {"level": "error"},
        }
        for rule in rules.values()
    ]
    results: list[dict[str, Any]] = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact_location(f.path),
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        if f.code in rules:
            result["ruleIndex"] = rule_ids.index(f.code)
        if f.name is not None:
            result["properties"] = {"privateName": f.name}
        results.append(result)
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "esper-lint",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    import json

    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


REPORTERS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "text": text_report,
    "json": json_report,
    "sarif": sarif_report,
    "github": github_report,
}
