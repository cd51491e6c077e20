"""The everyday command line (issue 17): failing closed, the output people expect, configuration
that behaves like ruff's (hierarchical, .gitignore), stdin, and flake8's configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD = "import torch\n\nnorms = torch._foreach_norm(grads)\n"
GOOD = "import torch\n\nx = torch.ones(3)\n"
# Its ESP301 has a safe fix (torch.compiler.disable is drop-in and public from 2.1, and with no range
# declared the installed torch and newer apply), which also ends its ESP101; BAD's ESP101 has none.
FIXABLE = "import torch\n\ntorch._dynamo.disable(f)\n"
SUMMARY_CLEAN = "All checks passed!\n"


def run(cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, input=stdin,
        env={**os.environ, **(env or {})},
    )


def flake8(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "ESP", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def project(tmp_path: Path, table: str = "", files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.esper-lint]\n{table}", encoding="utf-8")
    for name, text in (files or {"bad.py": BAD}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def codes(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    rows = []
    for line in result.stdout.splitlines():
        path, _, _, rest = line.split(":", 3)
        rows.append((Path(path).as_posix(), rest.split()[0]))
    return rows


# ----------------------------------------------------------------------------- 2: fail closed
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select", "ESP999"], "--select has 'ESP999', which matches no esper-lint rule"),
        (["--select", ""], "--select names no code"),
        (["--extend-select", "ESP9"], "--extend-select has 'ESP9'"),
    ],
)
def test_a_selection_of_nothing_is_an_error(tmp_path: Path, args: list[str], message: str) -> None:
    root = project(tmp_path)
    result = run(root, "check", *args)
    assert result.returncode == 2 and message in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('torch-versions = ">=3.0,<2.0"\n', "holds no torch release the bundled index knows (1.6–"),
        ('torch-versions = ">=2.20"\n', "holds no torch release the bundled index knows"),
        ('torch-versions = ""\n', "is empty"),
        ('torch-versions = ">=2.x"\n', "is not a version range"),
    ],
)
def test_an_empty_or_out_of_index_torch_range_is_an_error(tmp_path: Path, setting: str, message: str) -> None:
    root = project(tmp_path, setting)
    result = run(root, "check")
    assert result.returncode == 2 and "pyproject.toml: `torch-versions`" in result.stderr and message in result.stderr


def test_an_unparsable_torch_dependency_is_an_error_unless_the_table_names_the_range(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "bad.py").write_text(BAD, encoding="utf-8")
    metadata = '[project]\nname = "x"\nversion = "1"\ndependencies = ["torch>=abc"]\n'
    (root / "pyproject.toml").write_text(metadata, encoding="utf-8")
    result = run(root, "check")
    assert result.returncode == 2 and "pyproject.toml: the torch requirement 'torch>=abc' is not a version range" in result.stderr
    (root / "pyproject.toml").write_text(metadata + '[tool.esper-lint]\ntorch-versions = ">=2.1"\n', encoding="utf-8")
    assert run(root, "check").returncode == 1


def test_config_file_without_a_table_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "other.toml").write_text("[tool.black]\nline-length = 100\n", encoding="utf-8")
    result = run(root, "check", "--config", "other.toml")
    assert result.returncode == 2 and "other.toml: no [tool.esper-lint] table" in result.stderr
    (root / "esper-lint.toml").write_text('ignore = ["ESP101"]\n', encoding="utf-8")  # top-level keys in esper-lint.toml
    assert run(root, "check", "--config", "esper-lint.toml").returncode == 0


def test_diff_honours_exit_zero(tmp_path: Path) -> None:
    root = project(tmp_path, files={"fix.py": "import torch\n\ntorch._dynamo.disable(f)\n"})
    assert run(root, "check", "--diff").returncode == 1
    result = run(root, "check", "--diff", "--exit-zero")
    assert result.returncode == 0 and "+++ " in result.stdout


def test_a_folder_without_python_files_says_so(tmp_path: Path) -> None:
    root = project(tmp_path, files={"docs/readme.txt": "text\n"})
    result = run(root, "check", "docs")
    assert result.returncode == 0 and "no Python files found under docs" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["rule", "ESP101"], ["rule", "--all"], ["rule", "--table"], ["explain", "torch._foreach_norm"], ["check", "--statistics"],
     ["check", "--output-format", "full"], ["check", "--format", "sarif"], ["check", "--show-settings"], ["inventory"]],
)
def test_a_closed_pipe_is_no_traceback(tmp_path: Path, args: list[str]) -> None:
    root = project(tmp_path, files={f"m{i}.py": BAD for i in range(40)})
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    writer = subprocess.run([sys.executable, "-m", "esper_lint", *args], cwd=root, stdout=reader.stdin, stderr=subprocess.PIPE, timeout=300)
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(timeout=60)
    assert b"Traceback" not in writer.stderr and b"BrokenPipe" not in writer.stderr, writer.stderr


# ----------------------------------------------------------------------------- 3: output
def test_the_summary_is_on_stderr_and_the_machine_formats_stay_exact(tmp_path: Path) -> None:
    root = project(tmp_path, files={"bad.py": BAD, "fix.py": FIXABLE})
    text = run(root, "check")
    # not a terminal (a hook, a CI log): the fixer is not asked, so no count is promised
    assert text.returncode == 1 and text.stderr == "Found 3 findings.\n"
    shown = run(root, "check", "--show-fixes")
    assert shown.stderr.splitlines()[-1] == "Found 3 findings (1 fixable with --fix)."
    assert text.stdout.startswith("bad.py:3:9: ESP101 private API")
    quiet = run(root, "check", "--quiet")
    assert quiet.stderr == "" and quiet.stdout == text.stdout
    machine = run(root, "check", "--format", "json")
    assert machine.stderr == "" and len(json.loads(machine.stdout)) == 3
    (root / "bad.py").write_text(GOOD, encoding="utf-8")
    (root / "fix.py").unlink()
    assert run(root, "check").stderr == SUMMARY_CLEAN


def test_full_format_shows_the_source_line_and_a_caret_under_the_column(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run(root, "check", "--output-format", "full")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("bad.py:3:9: ESP101 private API `torch._foreach_norm`")
    assert lines[1:4] == ["  |", "3 | norms = torch._foreach_norm(grads)", "  |         ^ ESP101"]


def test_concise_is_the_text_format_and_format_is_an_alias(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert run(root, "check", "--output-format", "concise").stdout == run(root, "check", "--format", "text").stdout


def test_statistics_count_per_code_with_the_fixable_marker(tmp_path: Path) -> None:
    root = project(tmp_path, files={"a.py": BAD, "b.py": BAD, "c.py": FIXABLE})
    result = run(root, "check", "--statistics")
    assert result.stdout.splitlines() == ["3\tESP101\t    undocumented-private-api", "1\tESP301\t[*] public-replacement-available"]
    only_unfixable = project(tmp_path / "other", files={"a.py": BAD})
    assert run(only_unfixable, "check", "--statistics").stdout == "1\tESP101\t    undocumented-private-api\n"


def test_show_fixes_marks_fixable_findings_in_the_concise_format(tmp_path: Path) -> None:
    root = project(tmp_path, 'select = ["ESP", "ESP002"]\n', files={"a.py": FIXABLE, "b.py": "x = 1  # noqa: ESP101\n", "c.py": BAD})
    lines = run(root, "check", "--show-fixes").stdout.splitlines()
    assert lines[0].startswith("a.py:3:1: ESP101 private API") and lines[1].startswith("a.py:3:1: ESP301 [*] `torch._dynamo.disable`")
    assert "[*]" not in "".join(lines[2:]), lines


def test_colour_follows_the_terminal_no_color_and_force_color(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert "\033[" not in run(root, "check").stdout  # a pipe: no colour
    forced = run(root, "check", env={"FORCE_COLOR": "1"})
    assert "\033[" in forced.stdout and "\033[" in forced.stderr
    assert "\033[" not in run(root, "check", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


def test_extend_select_adds_to_the_configured_select(tmp_path: Path) -> None:
    root = project(tmp_path, 'select = ["ESP3"]\n', files={"a.py": BAD + "y = 1  # noqa: ESP101\n"})
    assert codes(run(root, "check")) == []
    assert codes(run(root, "check", "--extend-select", "ESP101,ESP002")) == [("a.py", "ESP101"), ("a.py", "ESP002")]


def test_show_settings_names_the_winning_file_and_the_resolved_values(tmp_path: Path) -> None:
    root = project(tmp_path, 'ignore = ["ESP103"]\n', files={"a.py": BAD, "sub/b.py": BAD})
    (root / "sub" / "esper-lint.toml").write_text('documentation-scope = "statement"\n', encoding="utf-8")
    top = run(root, "check", "--show-settings", "a.py").stdout
    assert f"configuration file: {root / 'pyproject.toml'}" in top and "ignore = ['ESP103']" in top
    nested = run(root, "check", "--show-settings", "sub").stdout
    assert f"configuration file: {root / 'sub' / 'esper-lint.toml'}" in nested and "documentation-scope = 'statement'" in nested


def test_show_files_lists_what_would_be_checked(tmp_path: Path) -> None:
    root = project(tmp_path, files={"a.py": BAD, "b.pyi": GOOD, "notes.txt": "x"})
    result = run(root, "check", "--show-files")
    assert result.returncode == 0 and sorted(result.stdout.split()) == ["a.py", "b.pyi"]


def test_rule_all_and_explain_of_a_code(tmp_path: Path) -> None:
    every = run(tmp_path, "rule", "--all").stdout
    assert every.count("\n# ESP") + every.startswith("# ESP") >= 9 and "# ESP002: unused-noqa" in every
    explained = run(tmp_path, "explain", "ESP101")
    assert explained.returncode == 0 and explained.stdout == run(tmp_path, "rule", "ESP101").stdout
    assert "esper-lint rule ESP101" in explained.stderr


# ----------------------------------------------------------------------------- 4: configuration
def test_each_file_uses_its_nearest_configuration_whatever_paths_are_given(tmp_path: Path) -> None:
    root = project(tmp_path, files={"pkg_a/a.py": BAD, "pkg_b/b.py": BAD})
    (root / "pkg_b" / "pyproject.toml").write_text('[tool.esper-lint]\nignore = ["ESP101"]\n', encoding="utf-8")
    assert codes(run(root, "check", ".")) == [("pkg_a/a.py", "ESP101")]
    assert codes(run(root, "check", "pkg_b")) == []
    assert codes(run(root, "check", "pkg_b/b.py", "pkg_a/a.py")) == [("pkg_a/a.py", "ESP101")]
    assert flake8(root, ".").stdout.count("ESP101") == 1  # flake8 resolves each file's configuration too


def test_esper_lint_toml_wins_over_pyproject_in_its_folder(tmp_path: Path) -> None:
    root = project(tmp_path, files={"pkg/a.py": BAD})
    (root / "pkg" / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP1"]\n', encoding="utf-8")
    (root / "pkg" / ".esper-lint.toml").write_text('ignore = ["ESP101"]\n', encoding="utf-8")
    assert codes(run(root, "check")) == []


def test_gitignore_is_respected_unless_asked_not_to(tmp_path: Path) -> None:
    root = project(tmp_path, files={"src/a.py": BAD, "out/gen.py": BAD, "src/tmp_x.py": BAD, "src/keep_tmp.py": BAD})
    (root / ".gitignore").write_text("out/\ntmp_*.py\n", encoding="utf-8")
    (root / "src" / ".gitignore").write_text("!tmp_x.py\n", encoding="utf-8")  # a deeper file re-includes
    assert sorted(p for p, _ in codes(run(root, "check"))) == ["src/a.py", "src/keep_tmp.py", "src/tmp_x.py"]
    everything = sorted(p for p, _ in codes(run(root, "check", "--no-respect-gitignore")))
    assert everything == ["out/gen.py", "src/a.py", "src/keep_tmp.py", "src/tmp_x.py"]
    assert codes(run(root, "check", "out/gen.py")) == [("out/gen.py", "ESP101")]  # a file named is always checked


def test_a_pyproject_named_on_the_command_line_checks_its_project(tmp_path: Path) -> None:
    """pre-commit passes a changed pyproject.toml: its central declarations can change any verdict."""
    table = '[tool.esper-lint.private-apis."torch._foreach_norm"]\nsince = "1.11"\n'
    root = project(tmp_path, table)
    result = run(root, "check", "pyproject.toml")
    assert result.returncode == 1 and codes(result) == [("pyproject.toml", "ESP102")], result.stdout


# ----------------------------------------------------------------------------- 5: stdin
def test_stdin_with_a_file_name_uses_that_file_s_configuration(tmp_path: Path) -> None:
    root = project(tmp_path, 'per-file-ignores = { "tests/*" = ["ESP101"] }\n', files={})
    result = run(root, "check", "--stdin-filename", "src/x.py", "-", stdin=BAD)
    assert result.returncode == 1 and result.stdout.startswith("src/x.py:3:9: ESP101")
    ignored = run(root, "check", "--stdin-filename", "tests/x.py", "-", stdin=BAD)
    assert ignored.returncode == 0 and ignored.stdout == ""
    full = run(root, "check", "--output-format", "full", "-", stdin=BAD)
    assert "3 | norms = torch._foreach_norm(grads)" in full.stdout


# ----------------------------------------------------------------------------- flake8 parity
def test_flake8_configuration_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    root = project(tmp_path, "ignored = []\n")
    result = flake8(root, "bad.py")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "pyproject.toml: unknown key `ignored`" in result.stderr
    (root / "pyproject.toml").write_text("[tool.esper-lint]\n", encoding="utf-8")
    bad_range = flake8(root, "--esper-torch-versions", ">=2.x", "bad.py")
    assert bad_range.returncode == 2 and "Traceback" not in bad_range.stderr and "--esper-torch-versions" in bad_range.stderr


def test_flake8_finds_a_broken_nested_configuration_before_checking(tmp_path: Path) -> None:
    root = project(tmp_path, files={"pkg/a.py": BAD, "vendored/b.py": BAD})
    (root / "vendored" / "esper-lint.toml").write_text("nonsense = 1\n", encoding="utf-8")
    excluded = flake8(root, "--extend-exclude", "vendored", ".")
    assert excluded.returncode == 1 and "ESP101" in excluded.stdout  # flake8 excludes it: not its configuration
    (root / "pkg" / "pyproject.toml").write_text("[tool.esper-lint]\nselect = 3\n", encoding="utf-8")
    result = flake8(root, "--extend-exclude", "vendored", ".")
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "pyproject.toml: `select` must be a list of strings" in result.stderr


def test_flake8_honours_ignore_and_per_file_ignores(tmp_path: Path) -> None:
    root = project(tmp_path, 'per-file-ignores = { "tests/*" = ["ESP101"] }\n', files={"src/a.py": BAD, "tests/t.py": BAD})
    assert flake8(root, ".").stdout.splitlines()[0].startswith(f".{os.sep}src{os.sep}a.py:3:9: ESP101")
    assert len(flake8(root, ".").stdout.splitlines()) == 1
    (root / "pyproject.toml").write_text('[tool.esper-lint]\nignore = ["ESP1"]\n', encoding="utf-8")
    assert flake8(root, ".").stdout == ""


def test_flake8_reports_a_use_whose_central_declaration_is_invalid(tmp_path: Path) -> None:
    table = '[tool.esper-lint.private-apis."torch._foreach_norm"]\nsince = "1.11"\n'
    root = project(tmp_path, table)
    cli = run(root, "check")
    assert codes(cli) == [("pyproject.toml", "ESP102")]
    result = flake8(root, "bad.py")
    assert result.returncode == 1
    assert result.stdout.startswith("bad.py:3:9: ESP102 invalid Private API documentation for `torch._foreach_norm`:")
    assert "its central declaration at pyproject.toml:2 is invalid: no `fallback` code" in result.stdout


def test_verify_honours_noqa_as_check_does(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    source = "import torch\ntorch._no_such_api_x()  # noqa: ESP203\ntorch._no_such_api_y()\n"
    root = project(tmp_path, files={"a.py": source})
    result = run(root, "verify", "--no-cache")
    assert result.returncode == 1 and [line.split(":")[:2] for line in result.stdout.splitlines()] == [["a.py", "3"]]


def test_inventory_skips_what_git_ignores(tmp_path: Path) -> None:
    root = project(tmp_path, files={"src/a.py": BAD, "out/gen.py": BAD})
    (root / ".gitignore").write_text("out/\n", encoding="utf-8")
    (entry,) = json.loads(run(root, "inventory", "--format", "json").stdout)["names"]
    assert [Path(path).as_posix() for path in entry["files"]] == ["src/a.py"]
