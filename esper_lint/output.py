"""Reporters: turn findings into text for people and tools."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from esper_lint.findings import Finding


def text_report(findings: Sequence[Finding]) -> str:
    return "".join(f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}\n" for f in findings)


def json_report(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_json() for f in findings], indent=2, ensure_ascii=False) + "\n"


REPORTERS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "text": text_report,
    "json": json_report,
}
