"""The fixtures carry their verdicts inline; every finding must be expected and every expectation met."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import may_report
from fixture_cases import fixture_paths, load_case

FIXTURE_PATHS = fixture_paths()


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.name)
def test_fixture_expectations(path: Path) -> None:
    case = load_case(path)
    findings = analyse_source(case.source, str(path), case.config).findings
    got = Counter((f.line, f.code, f.name) for f in findings)
    assert got == case.expected, "\n".join(f"{f.line}:{f.column} {f.code} {f.name}" for f in findings)


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.name)
def test_precheck_never_skips_a_fixture_with_findings(path: Path) -> None:
    case = load_case(path)
    forced = analyse_source(case.source, str(path), case.config, force=True).findings
    if forced:
        assert may_report(case.source.encode(), case.config.roots)


def test_every_spec_form_is_covered_by_a_fixture() -> None:
    expected_names = set()
    for path in FIXTURE_PATHS:
        expected_names.update(name for (_, _, name) in load_case(path).expected if name)
    for name in (
        "torch._foreach_norm",
        "torch.nn.functional._canonical_mask",
        "torch.ops.aten._to_copy.default",
        "torch._dynamo.disable",
        "torch._dynamo",
        "torch._dynamo.config.suppress_errors",
        "torch.ops.aten._foreach_norm.Scalar",
        "torch.cuda._is_in_bad_fork",
        "torch.Tensor._make_subclass",
    ):
        assert name in expected_names, name


def test_the_fixtures_cover_every_reason_of_esp102() -> None:
    case = load_case(Path(__file__).resolve().parent.parent / "fixtures" / "invalid_blocks.py")
    messages = [f.message for f in analyse_source(case.source, "invalid_blocks.py", case.config).findings if f.code == "ESP102"]
    for reason in ("no version", "malformed version", "no fallback", "empty fallback", "does not parse", "itself uses a private API"):
        assert any(reason in message for message in messages), reason
