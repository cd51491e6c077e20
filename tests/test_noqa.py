"""noqa comments: flake8's rules, applied once in the engine, so the CLI answers as flake8 does.

Each case is checked against the engine's expectation written here, and the whole set against a
real flake8 run, so the expectations are flake8's behaviour and not a guess at it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint.config import Config, code_enabled, config_from_table
from esper_lint.engine import analyse_source
from esper_lint.model import Finding
from esper_lint.noqa import NoqaMap, apply_noqa

# (source, the (line, code) findings that survive the noqa comments)
CASES: dict[str, tuple[str, set[tuple[int, str]]]] = {
    "specific": ("import torch\ntorch._a()  # noqa: ESP101\n", set()),
    "no space": ("import torch\ntorch._a()  # noqa:ESP101\n", set()),
    "prefix": ("import torch\ntorch._a()  # noqa: ESP1\n", set()),
    "bare": ("import torch\ntorch._a()  # noqa\n", set()),
    "upper case keyword": ("import torch\ntorch._a()  # NOQA: ESP101\n", set()),
    "other code": ("import torch\ntorch._a()  # noqa: E501\n", {(2, "ESP101")}),
    "other rule": ("import torch\ntorch._a()  # noqa: ESP102\n", {(2, "ESP101")}),
    "list with commas": ("import torch\ntorch._a()  # noqa: E501,ESP101\n", set()),
    "list with spaces": ("import torch\ntorch._a()  # noqa: E501 ESP101\n", set()),
    # flake8 compares codes case-sensitively: a lower-case code suppresses nothing.
    "lower-case code": ("import torch\ntorch._a()  # noqa: esp101\n", {(2, "ESP101")}),
    # No colon: flake8 reads a bare noqa, which hides every code.
    "no colon": ("import torch\ntorch._a()  # noqa ESP102\n", set()),
    "noqa on another line": ("import torch\n# noqa: ESP101\ntorch._a()\n", {(3, "ESP101")}),
    # A backslash continuation is one token range: a comment on its last line covers the first.
    "backslash continuation": ("import torch\nx = torch._a() + \\\n    1  # noqa: ESP101\n", set()),
    # Inside brackets each physical line ends with an NL token and stands alone, in flake8 too.
    "bracketed continuation": ("import torch\nx = f(torch._a(),\n      1)  # noqa: ESP101\n", {(2, "ESP101")}),
    # A multi-line string is one token: the comment after it covers the statement's first line.
    "multi-line string": ('import torch\nx = torch._a("""\n""")  # noqa: ESP101\n', set()),
    "only the first noqa counts": ("import torch\ntorch._a()  # noqa: E501  # noqa: ESP101\n", {(2, "ESP101")}),
}


def _engine(source: str) -> set[tuple[int, str]]:
    return {(f.line, f.code) for f in analyse_source(source, "case.py", Config()).findings}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_engine_applies_noqa_as_flake8_does(name: str) -> None:
    source, expected = CASES[name]
    assert _engine(source) == expected


def test_flake8_agrees_with_every_case(tmp_path: Path) -> None:
    files = {}
    for number, name in enumerate(sorted(CASES)):
        files[f"case{number}.py"] = name
        (tmp_path / f"case{number}.py").write_text(CASES[name][0], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "ESP", "--format=%(path)s|%(row)d|%(code)s", *files],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr
    got: dict[str, set[tuple[int, str]]] = {name: set() for name in files.values()}
    for line in result.stdout.splitlines():
        path, row, code = line.split("|")
        got[files[Path(path).name]].add((int(row), code))
    assert got == {name: CASES[name][1] for name in files.values()}


def test_the_cli_and_the_engine_agree(tmp_path: Path) -> None:
    for number, name in enumerate(sorted(CASES)):
        (tmp_path / f"case{number}.py").write_text(CASES[name][0], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", "--format", "json", "."],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    got = {(Path(r["path"]).name, r["line"], r["code"]) for r in json.loads(result.stdout)}
    expected = {(f"case{number}.py", line, code) for number, name in enumerate(sorted(CASES)) for line, code in CASES[name][1]}
    assert got == expected


# ----------------------------------------------------------------------------- ESP002
UNUSED = config_from_table({"select": ["ESP", "ESP002"]}, "test")


def _unused(source: str) -> list[tuple[int, int, str]]:
    return [(f.line, f.column, f.message) for f in analyse_source(source, "case.py", UNUSED).findings if f.code == "ESP002"]


def test_esp002_is_off_by_default_even_under_all() -> None:
    assert not code_enabled("ESP002", ("ESP",), ())
    assert not code_enabled("ESP002", ("ALL",), ())
    assert code_enabled("ESP002", ("ESP", "ESP002"), ())
    assert code_enabled("ESP002", ("ESP0",), ())
    assert not code_enabled("ESP002", ("ESP002",), ("ESP002",))
    assert _engine("import torch\nx = torch.cuda.is_available()  # noqa: ESP101\n") == set()


def test_extend_select_in_the_table_turns_esp002_on() -> None:
    config = config_from_table({"extend-select": ["ESP002"]}, "test")
    assert config.select == ("ESP",) and config.enabled("ESP002") and config.enabled("ESP101")
    assert [f.code for f in analyse_source("x = 1  # noqa: ESP101\n", "case.py", config).findings] == ["ESP002"]


def test_esp002_reports_an_esp_code_that_suppresses_nothing() -> None:
    source = "import torch\nx = torch.cuda.is_available()  # noqa: ESP101\n"
    ((line, column, message),) = _unused(source)
    assert (line, column) == (2, 32) and "`ESP101`" in message


def test_esp002_leaves_used_codes_bare_noqa_and_other_tools_codes_alone() -> None:
    assert _unused("import torch\ntorch._a()  # noqa: ESP101, E501\n") == []
    assert _unused("import torch\nx = 1  # noqa\n") == []
    assert _unused("import torch\nx = 1  # noqa: E501, F401\n") == []


def test_esp002_reports_lower_case_and_malformed_comments() -> None:
    (lower,) = _unused("import torch\nx = 1  # noqa: esp101\n")
    assert "case-sensitively" in lower[2] and "`ESP101`" in lower[2]
    (malformed,) = _unused("import torch\ntorch._a()  # noqa ESP101\n")
    assert "malformed" in malformed[2] and "# noqa: ESP101" in malformed[2]


def test_esp002_listed_in_the_comment_silences_it() -> None:
    assert _unused("import torch\nx = 1  # noqa: ESP101, ESP002\n") == []


def test_esp002_skips_a_code_the_file_does_not_enable() -> None:
    config = config_from_table({"select": ["ESP", "ESP002"], "ignore": ["ESP3"]}, "test")
    source = "import torch\nx = 1  # noqa: ESP301\n"
    assert [f.code for f in analyse_source(source, "case.py", config).findings] == []


def test_without_suppression_every_finding_stays_and_directives_still_count_as_used() -> None:
    """flake8 mode: the engine hands flake8 every finding and computes ESP002 as the CLI does."""
    source = "import torch\ntorch._a()  # noqa: ESP101\nx = 1  # noqa: ESP102\n"
    finding = Finding("f.py", 2, 1, "ESP101", "m", "torch._a")
    kept = apply_noqa([finding], source, "f.py", report_unused=lambda code: True, message=str, suppress=False)
    assert [(f.line, f.code) for f in kept] == [(2, "ESP101"), (3, "ESP002")]


def test_a_file_that_does_not_tokenize_falls_back_to_physical_lines() -> None:
    noqa = NoqaMap("x = (\n  1  # noqa\n")
    directive = noqa.directive_for(2)
    assert directive is not None and directive.codes is None
    assert noqa.directive_for(1) is None
