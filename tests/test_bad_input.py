"""Bad input, end to end: the real `esper-lint check` on broken, odd and hostile files.

Every case asserts the same four things: the bad file gets an ESP001 finding or a clear stderr line
naming it; the documented exit code (0 clean, 1 findings, 2 usage/configuration/I/O error); no
Python traceback anywhere; and a normal bad file checked in the same run is still reported.

A file with neither the root name (`torch`) nor a "Private API" marker is never parsed (the byte
pre-check), so every case that should be analysed contains `torch` and a private-looking name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD = "import torch\ntorch._x\n"
NORMAL = "ok.py:2:1: ESP101 private API `torch._x`"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def run(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--quiet", *args],  # stderr: errors only, no summary line
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
    )
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    return result


def with_normal_file(tmp_path: Path) -> Path:
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    return tmp_path


def esp001(result: subprocess.CompletedProcess[str], name: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{name}:") and " ESP001 " in line]


# ----------------------------------------------------------------------------- unparsable files
UNPARSABLE = {
    "syntax_error": (b"import torch\ndef f(:\n    torch._x\n", "bad.py:2:7: ESP001", "invalid syntax"),
    "python2_print": (b"import torch\nprint 'x', torch._x\n", "bad.py:2:1: ESP001", "Missing parentheses"),
    "python2_exec_backticks": (b"import torch\nexec 'x'\ny = `torch._x`\n", "bad.py:2:", "syntax error"),
    "undecodable_utf8": (b"import torch\ns = '\xff\xfe'\ntorch._x\n", "bad.py:2:1: ESP001", "cannot decode"),
    "nul_byte": (b"import torch\nx = 1\x00\ntorch._x\n", "bad.py:2:6: ESP001", "null bytes"),
    "tabs_and_spaces": (
        b"import torch\nif True:\n        x = 1\n\ty = torch._x\n",
        "bad.py:4:",
        "inconsistent use of tabs and spaces",
    ),
    "binary_named_py": (bytes(range(256)) * 8 + b"\ntorch._x\n", "bad.py:", "ESP001"),
    "deep_brackets": (b"import torch\nx = " + b"(" * 5000 + b"torch._x" + b")" * 5000 + b"\n", "bad.py:2:", "nested"),
    # These two killed the process with SIGSEGV inside libcst's native parser (C stack overflow).
    "deep_lambdas": (b"import torch\nx = " + b"lambda: " * 30000 + b"torch._x\n", "bad.py:1:1: ESP001", "nested too deeply"),
    "deep_conditionals": (
        b"import torch\nx = " + b"1 if 1 else " * 30000 + b"torch._x\n",
        "bad.py:1:1: ESP001",
        "nested too deeply",
    ),
    # This one took minutes (super-linear in libcst) before the CPython nesting gate.
    "long_operator_chain": (b"import torch\nx = torch._x" + b" + 1" * 30000 + b"\n", "bad.py:", "nested too deeply"),
    # `check` refused these, but `--fix`, `--diff` and fix_source() parsed them with libcst directly:
    # SIGSEGV at 6,000 attribute accesses, and more than 300 s at 12,000.
    "deep_attribute_chain": (
        b"import torch\nx = torch._dynamo.disable" + b".a" * 6000 + b"\n",
        "bad.py:1:1: ESP001",
        "nested too deeply",
    ),
    "deeper_attribute_chain": (
        b"import torch\nx = torch._dynamo.disable" + b".a" * 12000 + b"\n",
        "bad.py:1:1: ESP001",
        "nested too deeply",
    ),
}


@pytest.mark.parametrize("case", sorted(UNPARSABLE))
def test_unparsable_file_is_esp001_and_the_run_goes_on(tmp_path: Path, case: str) -> None:
    content, where, reason = UNPARSABLE[case]
    (with_normal_file(tmp_path) / "bad.py").write_bytes(content)
    result = run(tmp_path)
    assert result.returncode == EXIT_FINDINGS, result.stderr
    (line,) = esp001(result, "bad.py")
    assert line.startswith(where) and reason in line, line
    assert NORMAL in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("mode", ["--fix", "--diff"])
@pytest.mark.parametrize("case", sorted(UNPARSABLE))
def test_fix_and_diff_leave_an_unparsable_file_alone(tmp_path: Path, case: str, mode: str) -> None:
    """The fixer parses through the same guard as `check`: the bad file is left byte for byte, and
    the normal file beside it is still fixed (or shown)."""
    content = UNPARSABLE[case][0]
    bad = with_normal_file(tmp_path) / "bad.py"
    bad.write_bytes(content)
    # The normal file's only fix is a template (torch._x is unknown to the index): asked for.
    result = run(tmp_path, mode, "--no-cache", "--add-templates", timeout=120)
    assert result.returncode == EXIT_FINDINGS, result.stderr
    assert bad.read_bytes() == content
    fixed = (tmp_path / "ok.py").read_text(encoding="utf-8")
    if mode == "--diff":
        assert "+++ ok.py" in result.stdout and "bad.py" not in result.stdout
        assert fixed == BAD
    else:
        assert fixed != BAD and "Private API" in fixed
        assert esp001(result, "bad.py")


@pytest.mark.parametrize("case", sorted(UNPARSABLE))
def test_fix_source_returns_an_unparsable_file_unchanged(case: str) -> None:
    from esper_lint.config import Config
    from esper_lint.fix import fix_source

    content = UNPARSABLE[case][0]
    outcome = fix_source(content, "bad.py", Config())
    assert outcome.new_source == content and not outcome.applied


# ----------------------------------------------------------------------------- files that must lint normally
LINTS_NORMALLY = {
    "latin1_cookie": ("# -*- coding: latin-1 -*-\nimport torch\ns = 'caf\xe9'\ntorch._x\n".encode("latin-1"), 4, 1),
    "utf8_bom": (b"\xef\xbb\xbfimport torch\ntorch._x\n", 2, 1),
    "utf8_bom_and_cookie": (b"\xef\xbb\xbf# coding: utf-8\nimport torch\ntorch._x\n", 3, 1),
    "crlf": (b"import torch\r\nx = 1\r\ntorch._x\r\n", 3, 1),
    "lone_cr": (b"import torch\rx = 1\rtorch._x\r", 3, 1),
    "mixed_newlines": (b"import torch\r\nx = 1\ry = 2\ntorch._x\n", 4, 1),
    "no_final_newline": (b"import torch\ntorch._x", 2, 1),
    "deep_but_valid": (b"import torch\nx = " + b"not " * 2000 + b"torch._x\n", 2, 5 + 4 * 2000),
    "nested_brackets_at_cpython_limit": (b"import torch\nx = " + b"[" * 150 + b"torch._x" + b"]" * 150 + b"\n", 2, 155),
}


@pytest.mark.parametrize("case", sorted(LINTS_NORMALLY))
def test_odd_but_valid_file_lints_normally(tmp_path: Path, case: str) -> None:
    content, line, column = LINTS_NORMALLY[case]
    (with_normal_file(tmp_path) / "odd.py").write_bytes(content)
    result = run(tmp_path, "--format", "json")
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    rows = json.loads(result.stdout)
    assert [(r["path"], r["line"], r["column"], r["code"], r["name"]) for r in rows] == [
        ("odd.py", line, column, "ESP101", "torch._x"),
        ("ok.py", 2, 1, "ESP101", "torch._x"),
    ]


def test_empty_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    assert (run(tmp_path).returncode, run(tmp_path).stdout) == (EXIT_CLEAN, "")
    with_normal_file(tmp_path)
    result = run(tmp_path)
    assert result.returncode == EXIT_FINDINGS and "empty.py" not in result.stdout and NORMAL in result.stdout


def test_syntax_error_without_torch_is_not_reported(tmp_path: Path) -> None:
    # Documented: a file with no root name and no documentation marker is never parsed.
    (tmp_path / "broken.py").write_bytes(b"def f(:\n    return _x\n")
    result = run(tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (EXIT_CLEAN, "", "")


def test_ten_megabyte_file_finishes_with_its_findings(tmp_path: Path) -> None:
    # Generated code: 10 MB of assignments, with private uses at the start and the very end.
    lines = ["import torch", "torch._first(1)"]
    body = "value_{0} = torch.ones({0}) * 2 + torch.zeros({0})  # padding padding padding"
    size = 0
    index = 0
    while size < 10 * 1024 * 1024:
        lines.append(body.format(index))
        size += len(lines[-1]) + 1
        index += 1
    lines.append("torch._last(2)")
    (with_normal_file(tmp_path) / "huge.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(tmp_path, "--format", "json", timeout=900)
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    found = [(r["path"], r["line"], r["name"]) for r in json.loads(result.stdout)]
    assert found == [("huge.py", 2, "torch._first"), ("huge.py", len(lines), "torch._last"), ("ok.py", 2, "torch._x")]


# ----------------------------------------------------------------------------- paths
def test_folder_named_like_a_python_file_is_walked_not_read(tmp_path: Path) -> None:
    (tmp_path / "x.py").mkdir()
    (tmp_path / "x.py" / "inner.py").write_text(BAD, encoding="utf-8")
    with_normal_file(tmp_path)
    result = run(tmp_path)
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    assert f"x.py{os.sep}inner.py:2:1: ESP101" in result.stdout and NORMAL in result.stdout
    explicit = run(tmp_path, "x.py", "ok.py")
    assert explicit.returncode == EXIT_FINDINGS and f"x.py{os.sep}inner.py:2:1" in explicit.stdout


def test_unreadable_file_is_an_io_error_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # We run as root, which reads any file whatever its mode: the failing read is simulated in-process.
    from esper_lint.frontends import cli

    (tmp_path / "secret.py").write_text(BAD, encoding="utf-8")
    with_normal_file(tmp_path)
    from esper_lint.frontends import runner

    real_read = runner.read_regular_file

    def read_regular_file(path: str | Path) -> bytes:
        if Path(path).name == "secret.py":
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(runner, "read_regular_file", read_regular_file)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check", "--no-cache", "--jobs", "1"]) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert "secret.py: cannot read: Permission denied" in err
    assert NORMAL in out and "Traceback" not in out + err


def test_dangling_symlink_is_an_io_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    with_normal_file(tmp_path)
    for args in ((), ("dangling.py", "ok.py")):
        result = run(tmp_path, *args)
        assert result.returncode == EXIT_ERROR
        assert "dangling.py: cannot read: dangling symbolic link" in result.stderr
        assert NORMAL in result.stdout


def test_symlink_loops_are_reported_not_followed(tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")  # a file name that points at itself
    (tmp_path / "a").symlink_to(tmp_path / "b")  # two folder names that point at each other
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "up").symlink_to(tmp_path)  # a real cycle through a folder link: not followed
    with_normal_file(tmp_path)
    result = run(tmp_path)
    assert result.returncode == EXIT_ERROR
    assert "loop.py: cannot read: symbolic link loop" in result.stderr
    assert result.stdout.count(NORMAL) == 1 and result.stdout.count("ESP101") == 1




def test_symlink_loop_given_explicitly(tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    with_normal_file(tmp_path)
    result = run(tmp_path, "loop.py", "ok.py")
    assert result.returncode == EXIT_ERROR and "loop.py: cannot read: symbolic link loop" in result.stderr
    assert NORMAL in result.stdout


def test_symlink_loop_with_exclude_patterns(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nexclude = ["generated"]\n', encoding="utf-8")
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    with_normal_file(tmp_path)
    result = run(tmp_path)
    assert result.returncode == EXIT_ERROR and "loop.py: cannot read: symbolic link loop" in result.stderr
    assert NORMAL in result.stdout


def test_non_utf8_file_name_is_printed_escaped(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/bad\xff\xfe.py"
    with open(name, "wb") as handle:
        handle.write(BAD.encode())
    with_normal_file(tmp_path)
    result = run(tmp_path)
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    assert "bad\\xff\\xfe.py:2:1: ESP101" in result.stdout and NORMAL in result.stdout
    as_json = run(tmp_path, "--format", "json")
    assert sorted(row["path"] for row in json.loads(as_json.stdout)) == ["bad\\xff\\xfe.py", "ok.py"]


def test_missing_path_is_exit_2_and_other_files_still_checked(tmp_path: Path) -> None:
    with_normal_file(tmp_path)
    result = run(tmp_path, "ok.py", "missing.py", "missing_dir")
    assert result.returncode == EXIT_ERROR
    assert "missing.py: no such file or directory" in result.stderr
    assert "missing_dir: no such file or directory" in result.stderr
    assert NORMAL in result.stdout


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ("[tool.esper-lint\nroots = [\n", "invalid TOML"),
        ("[tool.esper-lint]\nroots = ['torch'\n", "invalid TOML"),
        ("[tool.esper-lint]\ncolour = true\n", "unknown key `colour`"),
        ("[tool.esper-lint]\nroots = 'torch'\n", "`roots` must be a list of strings"),
        ("[tool.esper-lint]\nselect = 5\n", "`select` must be a list of strings"),
        ("[tool.esper-lint]\ncheck-typing-only = 'yes'\n", "`check-typing-only` must be true or false"),
        ("[tool.esper-lint]\nper-file-ignores = ['x']\n", "`per-file-ignores` must be a table"),
        ("[tool]\nesper-lint = 3\n", "must be a table"),
        pytest.param(
            b"[tool.esper-lint]\nroots = ['t\xff']\n",
            "invalid TOML",
            id="non-utf8-toml",
        ),
    ],
)
def test_broken_configuration_is_exit_2_naming_the_file(tmp_path: Path, pyproject: str | bytes, expected: str) -> None:
    data = pyproject if isinstance(pyproject, bytes) else pyproject.encode()
    (with_normal_file(tmp_path) / "pyproject.toml").write_bytes(data)
    result = run(tmp_path)
    assert result.returncode == EXIT_ERROR
    assert "pyproject.toml" in result.stderr and expected in result.stderr, result.stderr
    assert result.stdout == ""


def test_explicit_config_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    with_normal_file(tmp_path)
    result = run(tmp_path, "--config", "nope.toml")
    assert result.returncode == EXIT_ERROR and "nope.toml" in result.stderr
