"""`--format json` is written directly (json's indented encoder is pure Python, and dominated warm
runs with many findings); it must stay byte for byte what `json.dumps(..., indent=2)` writes."""

from __future__ import annotations

import json

import pytest

from esper_lint.frontends.output import json_report
from esper_lint.model import Finding

CASES = [
    [],
    [Finding("a.py", 1, 2, "ESP101", 'private API `torch._x` "quoted" \\ back', "torch._x")],
    [Finding("dir/ü \U0001d42d.py", 10, 1, "ESP001", "control \x00\x1f\t\n\r and \u2028 \ud800", None)],
    [Finding(f"m{i}.py", i + 1, i % 7 + 1, "ESP201", "é" * i, f"torch._{i}") for i in range(50)],
]


@pytest.mark.parametrize("findings", CASES)
def test_json_report_is_what_json_dumps_writes(findings: list[Finding]) -> None:
    expected = json.dumps([f.to_json() for f in findings], indent=2, ensure_ascii=False) + "\n"
    assert json_report(findings) == expected
    assert json.loads(json_report(findings)) == [f.to_json() for f in findings]
