"""The fixtures carry their verdicts inline; every finding must be expected and every expectation met."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from esper_lint.engine import analyse_source
from fixture_cases import Expected, FixtureError, Got, fixture_paths, load_case, mismatches, parse_expectations

FIXTURE_PATHS = fixture_paths()


def report(missing: list[Expected], unexpected: list[Got], got: list[Got]) -> str:
    def show(item: Expected | Got) -> str:
        column = "" if item.column is None else f":{item.column}"
        return f"  line {item.line}: {item.code}{column}" + (f"[{item.name}]" if item.name else "")

    return "\n".join(
        ["expected, not reported:", *map(show, missing), "reported, not expected:", *map(show, unexpected), "all findings:"]
        + [f"  line {g.line}: {g.written()}" for g in got]
    )


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.name)
def test_fixture_expectations(path: Path) -> None:
    case = load_case(path)
    findings = analyse_source(case.source, str(path), case.config).findings
    got = [Got(f.line, f.column, f.code, f.name) for f in findings]
    missing, unexpected = mismatches(case.expected, got)
    assert not missing and not unexpected, report(missing, unexpected, got)


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=lambda p: p.name)
def test_the_forced_and_the_byte_analyses_agree_with_the_usual_one(path: Path) -> None:
    """The pre-check and the reduction may only skip work, never move or lose a finding; the CLI
    reads bytes, the fixture test reads text: the same findings, at the same columns, either way."""
    case = load_case(path)

    def found(source: str | bytes, *, force: bool) -> list[tuple[int, int, str, str | None, str]]:
        findings = analyse_source(source, str(path), case.config, force=force).findings
        return sorted((f.line, f.column, f.code, f.name, f.message) for f in findings)

    usual = found(case.source, force=False)
    assert found(case.source, force=True) == usual
    assert found(case.source.encode("utf-8"), force=False) == usual
    assert found(case.source.encode("utf-8"), force=True) == usual


def test_every_spec_form_is_covered_by_a_fixture() -> None:
    expected_names = set()
    for path in FIXTURE_PATHS:
        expected_names.update(item.name for item in load_case(path).expected if item.name)
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
        # strings and writes by name (fixtures/strings_and_writes.py)
        "torch.backends.__allow_nonbracketed_mutation_flag",
        "torch._inductor.config.fallback_random",
        "torch._C._jit_set_profiling_executor",
        "torch._inductor.config",
    ):
        assert name in expected_names, name


def test_every_reference_in_the_forms_fixture_pins_its_column() -> None:
    case = load_case(Path(__file__).resolve().parent.parent / "fixtures" / "forms.py")
    assert case.expected and all(item.column is not None for item in case.expected)


def test_the_fixtures_cover_every_reason_of_esp102() -> None:
    case = load_case(Path(__file__).resolve().parent.parent / "fixtures" / "invalid_blocks.py")
    messages = [f.message for f in analyse_source(case.source, "invalid_blocks.py", case.config).findings if f.code == "ESP102"]
    for reason in ("no version", "malformed version", "no fallback", "empty fallback", "does not parse", "itself uses a private API"):
        assert any(reason in message for message in messages), reason


# ------------------------------------------------------------------------------ the annotation syntax
def test_expectations_with_and_without_columns() -> None:
    assert parse_expectations("ESP101:5[torch._x] ESP103:9 ESP301[torch._dynamo.reset] ESP001", 7) == [
        Expected(7, 5, "ESP101", "torch._x"),
        Expected(7, 9, "ESP103", None),
        Expected(7, None, "ESP301", "torch._dynamo.reset"),
        Expected(7, None, "ESP001", None),
    ]


@pytest.mark.parametrize(
    "codes",
    [
        "",
        "ESP101[torch._x",  # unclosed bracket
        "ESP101 [torch._x]",  # name detached from its code
        "ESP101:[torch._x]",  # colon without a column
        "ESP101:0[torch._x]",  # columns are 1-based
        "ESP101:x[torch._x]",
        "ESP101,ESP102",
        "esp101[torch._x]",
        "ESP1011",
        "ESP101[torch._x] and more",
        "ESP101[torch._x]  # a note after the verdicts",
        "ESP101[torch._x]]",
        "ESP101[]",
    ],
)
def test_malformed_expectations_are_refused(codes: str) -> None:
    with pytest.raises(FixtureError):
        parse_expectations(codes, 1)


@pytest.mark.parametrize(
    "line",
    [
        "torch._x  # expect ESP101[torch._x]\n",
        "torch._x  #expect: ESP101[torch._x]\n",
        "torch._x  # Expect: ESP101[torch._x]\n",
        "torch._x  #  expect: ESP101[torch._x]\n",
        "torch._x  # expect:ESP101[torch._x]\n",
        "torch._x  # expect: ESP101[torch._x]  # expect: ESP102[torch._x]\n",
        "torch._x  # expect:\n",
    ],
)
def test_mistyped_annotations_fail_loudly(tmp_path: Path, line: str) -> None:
    path = tmp_path / "case.py"
    path.write_text("import torch\n" + line)
    with pytest.raises(FixtureError):
        load_case(path)


def parse_counter(codes: str) -> Counter[Expected]:
    return Counter(parse_expectations(codes, 2))


def test_a_pinned_column_must_match_exactly() -> None:
    got = [Got(2, 5, "ESP101", "torch._x")]
    assert mismatches(parse_counter("ESP101:5[torch._x]"), got) == ([], [])
    assert mismatches(parse_counter("ESP101[torch._x]"), got) == ([], [])
    assert mismatches(parse_counter("ESP101:6[torch._x]"), got) == ([Expected(2, 6, "ESP101", "torch._x")], got)
    # the pinned item takes its finding first; the unpinned one gets what is left on the line
    two = [Got(2, 5, "ESP101", "torch._x"), Got(2, 20, "ESP101", "torch._x")]
    assert mismatches(parse_counter("ESP101[torch._x] ESP101:5[torch._x]"), two) == ([], [])
    assert mismatches(parse_counter("ESP101:20[torch._x] ESP101:20[torch._x]"), two)[0] == [Expected(2, 20, "ESP101", "torch._x")]
    assert mismatches(parse_counter("ESP101[torch._x]"), two) == ([], [two[1]])
