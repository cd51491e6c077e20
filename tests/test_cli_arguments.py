"""The plain reading of `esper-lint check FILE...` (frontends/options.py) against argparse, its oracle."""

from __future__ import annotations

import pytest

from esper_lint.frontends import arguments
from esper_lint.frontends.options import CHECK_DEFAULTS, COMMANDS, Arguments, plain_check_arguments

PLAIN_LINES = [
    ["check"],
    ["check", "a.py"],
    ["check", "src/a.py", "tests/b.pyi", "pyproject.toml"],
    ["check", "name with spaces.py", "x=y.py", "ünïcode.py", "dir/"],
    ["check", "check", "verify"],  # paths that read like commands
]
NOT_PLAIN = [
    [],
    ["verify", "a.py"],
    ["rule", "ESP101"],
    ["check", "-"],  # stdin
    ["check", "--", "a.py"],
    ["check", "a.py", "--fix"],
    ["check", "-q", "a.py"],
    ["check", "--select=ESP1", "a.py"],
    ["check", ""],
    ["--version"],
]


@pytest.mark.parametrize("line", PLAIN_LINES, ids=" ".join)
def test_a_plain_check_line_reads_as_argparse_reads_it(line: list[str]) -> None:
    plain = plain_check_arguments(line)
    assert plain is not None
    parsed = arguments.parse_arguments(line)
    assert vars(plain) == vars(parsed)
    assert type(plain) is type(parsed) is Arguments


@pytest.mark.parametrize("line", NOT_PLAIN, ids=lambda line: " ".join(line) or "(empty)")
def test_anything_else_is_left_to_argparse(line: list[str]) -> None:
    assert plain_check_arguments(line) is None


def test_every_check_option_has_its_default_in_the_one_list() -> None:
    """An option added to the parser without a default in CHECK_DEFAULTS would be missing from a
    plain reading: argparse's namespace for `check` alone holds exactly `command`, `paths` and them."""
    parsed = vars(arguments.parse_arguments(["check"]))
    assert set(parsed) == {"command", "paths", *CHECK_DEFAULTS}
    assert {name: parsed[name] for name in CHECK_DEFAULTS} == CHECK_DEFAULTS


def test_a_plain_reading_shares_no_mutable_default() -> None:
    first = plain_check_arguments(["check", "a.py"])
    assert first is not None
    first.extend_select.append("ESP101")
    second = plain_check_arguments(["check", "a.py"])
    assert second is not None and second.extend_select == []


def test_the_command_names_are_the_parsers() -> None:
    assert tuple(arguments._COMMANDS) == COMMANDS


def test_options_still_parse_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    parsed = arguments.parse_arguments(["check", "--select", "ESP1", "-j", "2", "a.py"])
    assert parsed.select == ["ESP1"] and parsed.jobs == 2 and parsed.format == "text"
    with pytest.raises(SystemExit) as stopped:
        arguments.parse_arguments(["check", "--jobs", "0"])
    assert stopped.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
