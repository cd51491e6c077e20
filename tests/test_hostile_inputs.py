"""Hostile input (issue 18): configuration typos and bombs, versions and fallbacks built to hang or
exhaust memory, damaged baselines, huge files and spellings that hide a private name.

Every end-to-end run asserts no traceback, a bounded time (the subprocess timeout) and, where the
old behaviour ate gigabytes, a bounded address space (`MEMORY_LIMIT`): a regression fails here
instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst
import pytest

from esper_lint import parsing
from esper_lint.analysis.resolver import ReferenceCollector
from esper_lint.config import Config, ConfigError, load_config
from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import may_report
from esper_lint.torch_index.versions import SpecifierError, parse_version, requirement_specifier

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
BAD = "import torch\ntorch._x\n"
MEMORY_LIMIT = 4 * 1024**3  # address space: the libcst big stack reserves 512 MB of it


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(cwd: Path, *args: str, timeout: float = 120, tool: str = "esper_lint") -> subprocess.CompletedProcess[str]:
    # `check --quiet`: stderr holds only errors, not the summary line the tests would otherwise have to skip.
    command = [sys.executable, "-m", tool, *(("check", "--quiet") if tool == "esper_lint" else ()), *args]
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
        preexec_fn=_limit_memory,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    return result


def codes(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(path, code) of each text-format finding."""
    found = []
    for line in result.stdout.splitlines():
        parts = line.split(": ", 1)
        if len(parts) == 2 and parts[0].count(":") == 2:
            found.append((parts[0].split(":")[0], parts[1].split(" ", 1)[0]))
    return found


# ----------------------------------------------------------------------------- 2: unknown codes
@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('select = ["ESP110"]', "select"),  # a typo for ESP101: it selected nothing and exited 0
        ('ignore = ["ESP4"]', "ignore"),
        ('ignore = ["ESP302"]', "ignore"),
        ('per-file-ignores = { "tests/*" = ["ESP9"] }', "per-file-ignores"),
    ],
)
def test_a_code_that_names_no_rule_is_a_configuration_error(tmp_path: Path, table: str, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.esper-lint]\n{table}\n", encoding="utf-8")
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--no-cache")
    assert result.returncode == EXIT_ERROR and result.stdout == ""
    assert "pyproject.toml" in result.stderr and f"`{key}" in result.stderr, result.stderr
    assert "matches no esper-lint rule" in result.stderr


@pytest.mark.parametrize("code", ["ALL", "ESP", "ESP1", "ESP10", "ESP101", "ESP0", "ESP00", "ESP3"])
def test_codes_and_prefixes_of_real_rules_are_accepted(code: str) -> None:
    from esper_lint.config import config_from_table

    config = config_from_table({"select": [code], "ignore": [code], "per-file-ignores": {"x/*": [code]}}, "pyproject.toml")
    assert config.select == (code,)


# ----------------------------------------------------------------------------- 3: which pyproject
RANGE_PROJECT = '[project]\nname = "repo"\nversion = "1"\ndependencies = ["torch>=1.8,<2.0"]\n'
# torch._foreach_norm appeared in 1.11: inside the range >=1.8,<2.0 it is missing from 1.8-1.10.
DOCUMENTED_USE = "import torch\n# Private API, since PyTorch 1.11; fallback: y = [x.norm() for x in xs]\ny = torch._foreach_norm(xs)\n"


def test_a_parent_table_does_not_drop_the_repository_s_own_torch_range(tmp_path: Path) -> None:
    """The parent folder's [tool.esper-lint] is the configuration (ruff's rule: the nearest table),
    but the torch range is the repository's own dependency, which the parent does not know."""
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP"]\n', encoding="utf-8")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(RANGE_PROJECT, encoding="utf-8")
    (repo / "a.py").write_text(DOCUMENTED_USE, encoding="utf-8")
    result = run(repo, "--no-cache")
    assert ("a.py", "ESP202") in codes(result), result.stdout
    assert "supported range >=1.8,<2.0" in result.stdout
    assert load_config([repo]).source == tmp_path / "pyproject.toml"


def test_a_table_below_the_project_keeps_the_project_s_torch_range(tmp_path: Path) -> None:
    """The other direction: the table sits in a sub-folder's pyproject.toml without project
    metadata, and the project's range comes from the repository's own pyproject.toml above it."""
    (tmp_path / "pyproject.toml").write_text(RANGE_PROJECT, encoding="utf-8")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pyproject.toml").write_text('[tool.esper-lint]\nroots = ["torch"]\n', encoding="utf-8")
    (tools / "a.py").write_text(DOCUMENTED_USE, encoding="utf-8")
    result = run(tools, "--no-cache")
    assert ("a.py", "ESP202") in codes(result), result.stdout
    config = load_config([tools])
    assert config.source == tools / "pyproject.toml" and config.torch_versions == ">=1.8,<2.0"


def test_the_table_s_own_torch_versions_still_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\ntorch-versions = ">=2.1"\n', encoding="utf-8")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(RANGE_PROJECT, encoding="utf-8")
    assert load_config([repo]).torch_versions == ">=2.1"


def test_the_search_does_not_leave_the_repository(tmp_path: Path) -> None:
    """A folder with `.git` is the repository's root: a table above it is someone else's, so the
    repository's own pyproject.toml (no table) is the configuration, and the cache stays inside."""
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP2"]\n', encoding="utf-8")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(RANGE_PROJECT, encoding="utf-8")
    (repo / "ok.py").write_text(BAD, encoding="utf-8")
    (repo / "a.py").write_text(DOCUMENTED_USE, encoding="utf-8")
    result = run(repo)
    found = codes(result)
    assert ("ok.py", "ESP101") in found and ("a.py", "ESP202") in found, result.stdout  # select = ["ESP2"] not applied
    assert (repo / ".esper-lint-cache").is_dir() and not (tmp_path / ".esper-lint-cache").exists()
    assert load_config([repo]).source == repo / "pyproject.toml"
    # Without a pyproject.toml of its own, the repository gets the defaults, not the parent's table.
    (repo / "pyproject.toml").unlink()
    assert load_config([repo]).source is None


def test_the_nearest_table_wins_inside_the_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP2"]\n', encoding="utf-8")
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text('[project]\nname = "pkg"\nversion = "1"\n', encoding="utf-8")
    assert load_config([package]).source == tmp_path / "pyproject.toml"  # a monorepo's root table applies


# ----------------------------------------------------------------------------- 6: a huge "since"
HUGE_SINCE = "import torch\n# Private API, since PyTorch 1." + "1" * 4400 + "; fallback: y = 1\ntorch._foreach_norm(xs)\n"


def test_a_since_version_of_thousands_of_digits_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(HUGE_SINCE, encoding="utf-8")
    result = run(tmp_path, "--no-cache")
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert "ESP201" in line and "is not a torch version" in line and len(line) < 400, line
    flake8 = run(tmp_path, "--select", "ESP", "a.py", tool="flake8")
    assert flake8.returncode == 1 and "ESP201" in flake8.stdout, flake8.stderr[-2000:]


@pytest.mark.parametrize("text", ["1." + "1" * 5000, "1" * 4301, "2." + "9" * 33])
def test_parse_version_raises_only_its_own_error(text: str) -> None:
    with pytest.raises(SpecifierError):
        parse_version(text)


# ----------------------------------------------------------------------------- 7: fallback size
FALLBACKS = {
    "operator_chain_20kb": "1+" * 10000 + "1",  # took 63 s
    "lambdas_4000": "lambda: " * 4000 + "1",  # took 3 GB
    "lambdas_30000": "lambda: " * 30000 + "1",  # did not finish
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_a_huge_fallback_in_a_comment_is_too_long_not_parsed(tmp_path: Path, name: str) -> None:
    code = FALLBACKS[name]
    (tmp_path / "a.py").write_text(f"import torch\n# Private API, since PyTorch 1.11; fallback: {code}\ntorch._foreach_norm(xs)\n")
    started = time.monotonic()
    result = run(tmp_path, "--no-cache", "--select", "ESP1", timeout=60)
    assert time.monotonic() - started < 60
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("a.py:3:1: ESP102") and "is too long to check" in line and len(line) < 400, line


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_a_huge_fallback_in_a_central_declaration_is_too_long_not_parsed(tmp_path: Path, name: str) -> None:
    table = {"since": "1.11", "fallback": FALLBACKS[name], "reason": "hostile"}
    toml = "[tool.esper-lint.private-apis.\"torch._foreach_norm\"]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    (tmp_path / "a.py").write_text("import torch\ntorch._foreach_norm(xs)\n", encoding="utf-8")
    result = run(tmp_path, "--no-cache", "--select", "ESP1", timeout=60)  # segfaulted before the guard
    assert result.returncode == EXIT_FINDINGS and result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("pyproject.toml:1:1: ESP102") and "is too long to check" in line, line


def test_a_fallback_under_the_limit_is_still_checked() -> None:
    code = "[g.norm() for g in gs]  # " + "x" * (parsing.MAX_FRAGMENT_LENGTH - 100)
    source = f"import torch\n# Private API, since PyTorch 1.11; fallback: {code}\ntorch._foreach_norm(xs)\n"
    assert not [f for f in analyse_source(source, "a.py", Config(select=("ESP1",))).findings]
    assert parsing.parse_fragment("x" * (parsing.MAX_FRAGMENT_LENGTH + 1)) is None


# ----------------------------------------------------------------------------- 8: --fix on a long chain
@pytest.mark.parametrize("mode", ["--fix", "--diff"])
def test_fix_and_diff_on_a_30000_term_chain_finish_quickly(tmp_path: Path, mode: str) -> None:
    """It ran past 120 s, where `check` gave ESP001 in half a second; the fixer now parses through
    the same guard."""
    content = b"import torch\nx = torch._x" + b" + 1" * 30000 + b"\n"
    (tmp_path / "bad.py").write_bytes(content)
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, mode, "--no-cache", "--add-templates", timeout=30)  # ok.py's fix is a template
    assert result.returncode == EXIT_FINDINGS
    assert (tmp_path / "bad.py").read_bytes() == content
    if mode == "--fix":
        assert "bad.py:1:1: ESP001" in result.stdout
    else:  # --diff prints only the diff: the normal file's, not the bad one's
        assert "+++ ok.py" in result.stdout and "bad.py" not in result.stdout


# ----------------------------------------------------------------------------- 9: the version regex
HOSTILE_REQUIREMENT = "torch>=1" + "rc" * 26 + "!"


def test_a_hostile_dependency_string_does_not_hang_the_run(tmp_path: Path) -> None:
    """`(?:r|rc|...)*`-style alternatives made this exponential: more than 60 s at 26 repetitions."""
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "1"\ndependencies = ["{HOSTILE_REQUIREMENT}"]\n', encoding="utf-8"
    )
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--no-cache", timeout=30)
    # It does not parse as a version range: an error naming the file (it once meant "no range").
    assert result.returncode == EXIT_ERROR and "pyproject.toml: the torch requirement" in result.stderr
    assert len(result.stderr) < 1000


LINEAR_PROBE = """
import time
from esper_lint.torch_index.versions import SpecifierError, parse_version, requirement_specifier
for text in ["1" + "rc" * 5000 + "!", "1" + ".dev" * 5000 + "x", "1" + "-1" * 5000 + "x",
             "1" + "post" * 5000 + "!", "1+" + "a." * 20000 + "!", " " * 20000 + "1" + " " * 20000 + "x"]:
    try:
        parse_version(text)
    except SpecifierError:
        pass
    else:
        raise SystemExit("accepted: " + text[:20])
assert requirement_specifier("torch" + " " * 100_000 + "x;") == "x"
print("linear")
"""


def test_the_version_and_requirement_parsers_are_linear(tmp_path: Path) -> None:
    """In a subprocess with a timeout: an exponential pattern would hang the test run, not fail it."""
    result = subprocess.run(
        [sys.executable, "-c", LINEAR_PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=20, preexec_fn=_limit_memory
    )
    assert result.stdout.strip() == "linear", result.stderr[-2000:]
    assert requirement_specifier("torch >= 2.1 ; python_version < '3.12'") == ">=2.1"


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("2.13.0+cpu", (2, 13, 0)),
        ("2.5.0rc1", (2, 5, 0)),
        ("2.6.0.dev20241001+cu121", (2, 6, 0)),
        ("1.11.0a0+gitbc2c6ed", (1, 11, 0)),
        ("2.0.post1", (2, 0)),
    ],
)
def test_real_torch_versions_still_parse(version: str, release: tuple[int, ...]) -> None:
    assert parse_version(version) == release


# ----------------------------------------------------------------------------- 10: configuration bombs
@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),  # RecursionError
        ("[tool.other]\nx = " + "1" * 5000 + "\n", "invalid TOML"),  # ValueError from int()
        ('[tool.esper-lint]\ntorch-versions = ">=1.' + "1" * 5000 + '"\n', "`torch-versions`"),
    ],
    ids=["nested_100k", "integer_5000_digits", "torch_versions_5000_digits"],
)
def test_configuration_bombs_are_exit_2_naming_the_file(tmp_path: Path, pyproject: str, expected: str) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--no-cache", timeout=60)
    assert result.returncode == EXIT_ERROR and result.stdout == ""
    assert "pyproject.toml" in result.stderr and expected in result.stderr, result.stderr
    assert len(result.stderr) < 1000


def test_a_dependency_with_a_5000_digit_version_is_an_error_naming_the_file(tmp_path: Path) -> None:
    # A requirement that does not parse used to mean "no range" silently: a gate failing open.
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "1"\ndependencies = ["torch>={"1" * 5000}"]\n[tool.esper-lint]\n', encoding="utf-8"
    )
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--no-cache")
    assert result.returncode == EXIT_ERROR and result.stdout == ""
    assert "pyproject.toml: the torch requirement" in result.stderr and len(result.stderr) < 1000
    with pytest.raises(ConfigError, match="torch requirement"):
        load_config([tmp_path])


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "folder"])
def test_a_configuration_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "config.toml"
    if kind == "dev_zero":
        target.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    result = run(tmp_path, "--no-cache", "--config", "config.toml", timeout=30)
    assert result.returncode == EXIT_ERROR and "config.toml: cannot read: not a regular file" in result.stderr


def test_a_huge_pyproject_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from esper_lint import config

    monkeypatch.setattr(config, "MAX_PYPROJECT_BYTES", 1000)
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\n" + "#" * 2000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read: larger than 1000 bytes"):
        load_config([tmp_path])


# ----------------------------------------------------------------------------- 10: baselines
def _baseline_run(tmp_path: Path, name: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    return run(tmp_path, "--no-cache", "--baseline", name, timeout=timeout)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"esper-lint-baseline": 1, "findings": [], "x": ' + "1" * 5000 + "}", "invalid JSON"),
        ('{"esper-lint-baseline": 1, "findings": {"a": 1}}', "damaged baseline"),
        ('{"esper-lint-baseline": 1, "findings": [{"path": 1, "fingerprint": null}]}', "damaged baseline"),
        ('{"esper-lint-baseline": 1, "findings": [{"path": ["a"], "fingerprint": {}}]}', "damaged baseline"),
        ('{"esper-lint-baseline": 1, "findings": [7]}', "damaged baseline"),
        ('{"esper-lint-baseline": 1}', "damaged baseline"),
        ("[1, 2]", "not an esper-lint baseline"),
    ],
    ids=["deep", "long_number", "findings_not_a_list", "null_fields", "unhashable_fields", "entry_not_object", "no_findings", "list"],
)
def test_an_invalid_baseline_is_exit_2_naming_it(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "base.json").write_text(content, encoding="utf-8")
    result = _baseline_run(tmp_path, "base.json")
    assert result.returncode == EXIT_ERROR and result.stdout == ""
    assert "base.json" in result.stderr and expected in result.stderr, result.stderr
    assert len(result.stderr) < 1000


@pytest.mark.parametrize("kind", ["dev_zero", "dev_urandom", "fifo"])
def test_a_baseline_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "base.json"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero" if kind == "dev_zero" else "/dev/urandom")
    result = _baseline_run(tmp_path, "base.json")
    assert result.returncode == EXIT_ERROR and "base.json: cannot read the baseline: not a regular file" in result.stderr


def test_a_baseline_over_the_size_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from esper_lint.frontends import baseline

    monkeypatch.setattr(baseline, "MAX_BASELINE_BYTES", 100)
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"esper-lint-baseline": 1, "findings": [{"path": "a" * 200, "fingerprint": "f"}]}))
    with pytest.raises(ConfigError, match="larger than 100 bytes"):
        baseline.load_baseline(path)


def test_a_valid_baseline_still_works(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    written = run(tmp_path, "--no-cache", "--write-baseline", "base.json")
    assert written.returncode == EXIT_CLEAN
    result = _baseline_run(tmp_path, "base.json")
    assert (result.returncode, result.stdout) == (EXIT_CLEAN, "")


# ----------------------------------------------------------------------------- 11: file size
def test_a_file_over_the_size_limit_is_esp001_on_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from esper_lint.fix import fix_source

    monkeypatch.setattr(parsing, "MAX_SOURCE_BYTES", 1000)
    source = BAD + "x = 1\n" * 200
    for given in (source, source.encode()):  # flake8 passes text, the CLI bytes
        (finding,) = analyse_source(given, "big.py", Config()).findings
        assert (finding.line, finding.column, finding.code) == (1, 1, "ESP001")
        assert f"too large to analyse ({len(source):,} bytes; the limit is 1,000 bytes)" in finding.message
    outcome = fix_source(source.encode(), "big.py", Config())
    assert outcome.new_source == source.encode() and not outcome.applied
    assert not analyse_source(source.replace("torch", "numpy"), "big.py", Config()).findings  # never read


def test_a_file_over_16_mb_is_skipped_with_esp001_by_check_fix_and_flake8(tmp_path: Path) -> None:
    content = (BAD + "x = 1  # padding padding padding padding padding padding padding\n" * 270_000).encode()
    assert len(content) > parsing.MAX_SOURCE_BYTES
    (tmp_path / "big.py").write_bytes(content)
    (tmp_path / "ok.py").write_text(BAD, encoding="utf-8")
    expected = "big.py:1:1: ESP001 could not analyse this file: the file is too large to analyse"
    for args in ((), ("--diff", "--add-templates"), ("--fix", "--add-templates")):  # ok.py's fix is a template
        result = run(tmp_path, "--no-cache", *args, timeout=120)
        assert result.returncode == EXIT_FINDINGS
        if "--diff" in args:  # the diff leaves the file out: nothing to fix in it
            assert "+++ ok.py" in result.stdout and "big.py" not in result.stdout
        else:
            assert expected in result.stdout and "the limit is 16 MB" in result.stdout, result.stdout[-2000:]
    assert (tmp_path / "big.py").read_bytes() == content
    # flake8 tokenizes and parses the 17 MB file itself before any plugin runs: 56 s on an
    # idle 2-core machine, several times that on a loaded one. The limit only catches a hang.
    flake8 = run(tmp_path, "--select", "ESP", "big.py", tool="flake8", timeout=400)
    assert "big.py:1:1: ESP001" in flake8.stdout and "too large" in flake8.stdout, flake8.stdout[-2000:]


# ----------------------------------------------------------------------------- 19: blind spots
NFKC_SOURCE = (
    "import \U0001d42d\U0001d428\U0001d42b\U0001d41c\U0001d421\n"  # `torch` in mathematical bold
    "\U0001d42d\U0001d428\U0001d42b\U0001d41c\U0001d421._x\n"
    "import torch\n"
    "y = torch._\U0001d432\n"  # `_y`, the y in bold
    "from torch import _\U0001d433\n"
    "\U0001d420\U0001d41e\U0001d42d\U0001d41a\U0001d42d\U0001d42d\U0001d42b(torch, '_w')\n"  # bold `getattr`
)


@pytest.mark.parametrize("force", [False, True])
def test_nfkc_spellings_of_torch_names_are_resolved(force: bool) -> None:
    """Python reads identifiers in NFKC form (PEP 3131): these are all torch's private names."""
    analysis = analyse_source(NFKC_SOURCE.encode(), "n.py", Config(), force=force)
    assert [(f.line, f.code, f.name) for f in analysis.findings] == [
        (2, "ESP101", "torch._x"),
        (4, "ESP101", "torch._y"),
        (5, "ESP101", "torch._z"),
        (6, "ESP101", "torch._w"),
    ]


def test_the_pre_check_does_not_skip_an_nfkc_spelling() -> None:
    only = "\U0001d42d\U0001d428\U0001d42b\U0001d41c\U0001d421._x\n".encode()
    assert may_report(only, ("torch",))
    assert [f.name for f in analyse_source(only, "n.py", Config()).findings] == ["torch._x"]
    assert not may_report("import torch\n# caf\u00e9\ntorch.x\n".encode(), ("torch",))


PEP_695 = (
    "import torch\ndef f[T: torch._X](x: T) -> T:\n    return x\n"
    "class C[T: (torch._A, int)]:\n    pass\ntype A[T: torch._W] = torch._Z\n"
)


def test_pep_695_type_parameters_are_references() -> None:
    """The resolver reads bounds, constraints and `type` values (libcst parses them on any Python)."""
    module = cst.parse_module(PEP_695)
    names = [r.name for r in ReferenceCollector(["torch"]).collect(module).references]
    assert names == ["torch._X", "torch._A", "torch._W", "torch._Z"]


def test_pep_695_files_on_this_python() -> None:
    findings = analyse_source(PEP_695, "t.py", Config()).findings
    if sys.version_info >= (3, 12):
        assert [(f.line, f.name) for f in findings] == [(2, "torch._X"), (4, "torch._A"), (6, "torch._W"), (6, "torch._Z")]
    else:  # CPython refuses the syntax, so libcst never reads it (see the next test): ESP001 says why
        (finding,) = findings
        assert (finding.line, finding.code) == (2, "ESP001")
        assert "need Python 3.12" in finding.message


def test_syntax_cpython_refuses_is_never_handed_to_libcst(tmp_path: Path) -> None:
    """libcst parses PEP 695 on 3.11 where CPython does not, so nothing bounded the nesting behind
    such a line: 30,000 nested lambdas after it took 23 GB. Any syntax CPython refuses gets ESP001."""
    prefix = "type A = int\n" if sys.version_info < (3, 12) else "print 'python 2'\n"
    (tmp_path / "deep.py").write_text("import torch\n" + prefix + "x = " + "lambda: " * 30000 + "torch._x\n")
    result = run(tmp_path, "--no-cache", timeout=60)
    assert result.returncode == EXIT_FINDINGS and "deep.py:2:" in result.stdout and "ESP001" in result.stdout


@pytest.mark.parametrize(
    ("encoding", "name"), [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-32", "UTF-32"), ("utf-32-be", "UTF-32")]
)
def test_utf16_and_utf32_files_with_a_bom_are_esp001_not_skipped(tmp_path: Path, encoding: str, name: str) -> None:
    data = BAD.encode(encoding)
    if not encoding.endswith(("16", "32")):
        data = "\ufeff".encode(encoding) + data
    (tmp_path / "wide.py").write_bytes(data)
    result = run(tmp_path, "--no-cache")
    assert result.returncode == EXIT_FINDINGS
    assert f"wide.py:1:1: ESP001 could not analyse this file: cannot decode the file: {name} is not supported" in result.stdout
