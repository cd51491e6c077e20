"""The `esper-lint check` command as users and CI run it: a real subprocess each time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BAD = "import torch\ntorch._foreach_norm(xs)\n"
GOOD = "import torch\nx = torch.ones(1)\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_exit_0_and_no_output_when_clean(tmp_path: Path) -> None:
    write(tmp_path / "ok.py", GOOD)
    result = run("check", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "All checks passed!\n")
    quiet = run("check", "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_exit_1_with_flake8_style_lines(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "bad.py", BAD)
    result = run("check", "pkg", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(f"pkg{os.sep}bad.py:2:1: ESP101 private API `torch._foreach_norm`")


def test_json_format_is_sorted_and_complete(tmp_path: Path) -> None:
    write(tmp_path / "b.py", BAD)
    write(tmp_path / "a.py", "import torch\n\ntorch._C\n" + BAD)
    write(tmp_path / "c.py", "import torch\ndef f(:\n    torch._x\n")
    result = run("check", "--format", "json", ".", cwd=tmp_path)
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [["path", "line", "column", "code", "name", "message"]] * len(rows)
    assert [(Path(r["path"]).name, r["line"], r["code"], r["name"]) for r in rows] == [
        ("a.py", 3, "ESP101", "torch._C"),
        ("a.py", 5, "ESP101", "torch._foreach_norm"),
        ("b.py", 2, "ESP101", "torch._foreach_norm"),
        ("c.py", 2, "ESP001", None),
    ]


def test_select_and_ignore_options(tmp_path: Path) -> None:
    write(tmp_path / "a.py", BAD)
    assert run("check", "--ignore", "ESP101", cwd=tmp_path).returncode == 0
    assert run("check", "--select", "ESP102", cwd=tmp_path).returncode == 0
    assert run("check", "--select", "ESP1", cwd=tmp_path).returncode == 1
    bad_option = run("check", "--select", "E501", cwd=tmp_path)
    assert bad_option.returncode == 2 and "E501" in bad_option.stderr


def test_missing_path_is_exit_2_and_other_files_still_checked(tmp_path: Path) -> None:
    write(tmp_path / "a.py", BAD)
    result = run("check", "a.py", "missing.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.py: no such file or directory" in result.stderr
    assert "a.py:2:1: ESP101" in result.stdout
    assert "Traceback" not in result.stderr


def test_usage_error_is_exit_2(tmp_path: Path) -> None:
    result = run("check", "--format", "xml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_discovery_skips_tool_folders_and_virtualenvs(tmp_path: Path) -> None:
    for folder in (".git", ".venv", "build", "node_modules", "__pycache__", "pkg.egg-info"):
        write(tmp_path / folder / "x.py", BAD)
    write(tmp_path / "myenv" / "pyvenv.cfg", "home = /usr\n")
    write(tmp_path / "myenv" / "lib" / "x.py", BAD)
    write(tmp_path / "src" / "kept.py", BAD)
    write(tmp_path / "src" / "notes.txt", BAD)
    result = run("check", "--format", "json", cwd=tmp_path)
    assert [Path(row["path"]).as_posix() for row in json.loads(result.stdout)] == ["src/kept.py"]


def test_folder_named_like_a_python_file_is_walked(tmp_path: Path) -> None:
    write(tmp_path / "x.py" / "inner.py", BAD)
    result = run("check", "--format", "json", cwd=tmp_path)
    assert [Path(row["path"]).name for row in json.loads(result.stdout)] == ["inner.py"]


def test_configuration_from_pyproject_upward(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.esper-lint]\nexclude = ["generated"]\nper-file-ignores = { "tests/*" = ["ESP101"] }\n'
        'roots = ["torch", "numpy"]\n',
    )
    write(tmp_path / "generated" / "x.py", BAD)
    write(tmp_path / "tests" / "test_x.py", BAD)
    write(tmp_path / "src" / "np.py", "import numpy as np\nnp._NoValue\n")
    result = run("check", "--format", "json", ".", cwd=tmp_path / "src")
    assert [(Path(r["path"]).name, r["name"]) for r in json.loads(result.stdout)] == [("np.py", "numpy._NoValue")]
    whole = run("check", "--format", "json", cwd=tmp_path)
    assert [Path(r["path"]).name for r in json.loads(whole.stdout)] == ["np.py"]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("colour = true", "unknown key `colour`"),
        ('roots = "torch"', "`roots` must be a list of strings"),
        ('documentation-scope = "file"', "`documentation-scope` must be one of"),
        ("check-typing-only = 1", "`check-typing-only` must be true or false"),
        ('select = ["E501"]', "not an esper-lint code"),
    ],
)
def test_bad_configuration_is_exit_2_naming_file_and_key(tmp_path: Path, table: str, expected: str) -> None:
    write(tmp_path / "pyproject.toml", f"[tool.esper-lint]\n{table}\n")
    write(tmp_path / "a.py", BAD)
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "pyproject.toml") in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_invalid_toml_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.esper-lint\nroots = [\n")
    write(tmp_path / "a.py", BAD)
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2 and "invalid TOML" in result.stderr and "Traceback" not in result.stderr


def test_statement_scope_from_configuration(tmp_path: Path) -> None:
    source = (
        "import torch\n\n\ndef f(xs):\n"
        "    # Private API, since PyTorch 1.11; fallback: [x.norm() for x in xs]\n"
        "    a = torch._foreach_norm(xs)\n"
        "    return torch._foreach_norm(xs)\n"
    )
    write(tmp_path / "a.py", source)
    assert run("check", cwd=tmp_path).returncode == 0
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\ndocumentation-scope = "statement"\n')
    result = run("check", cwd=tmp_path)
    assert result.returncode == 1 and "a.py:7:12: ESP101" in result.stdout


def test_unreadable_file_is_reported_and_others_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Root reads any file whatever its mode, so the failing read is simulated in-process.
    from esper_lint.frontends import cli

    secret = write(tmp_path / "secret.py", BAD)
    write(tmp_path / "a.py", BAD)
    from esper_lint.frontends import runner

    real_read = runner.read_regular_file

    def read_regular_file(path: str | Path) -> bytes:
        if Path(path).name == secret.name:
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(runner, "read_regular_file", read_regular_file)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check"]) == 2
    out, err = capsys.readouterr()
    assert "secret.py: cannot read: Permission denied" in err and "a.py:2:1: ESP101" in out


def test_dangling_symlink_and_loop(tmp_path: Path) -> None:
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    write(tmp_path / "a.py", BAD)
    result = run("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "dangling.py: cannot read: dangling symbolic link" in result.stderr
    assert "a.py:2:1: ESP101" in result.stdout and "Traceback" not in result.stderr


def test_rule_command_prints_the_document(tmp_path: Path) -> None:
    result = run("rule", "ESP102", cwd=tmp_path)
    assert result.returncode == 0 and "## Why it matters" in result.stdout
    assert run("rule", "ESP999", cwd=tmp_path).returncode == 2


def test_bundled_example_reports_the_seed_mistakes() -> None:
    result = run("check", "--format", "json", "fixtures/example", cwd=FIXTURES.parent)
    rows = json.loads(result.stdout)
    assert result.returncode == 1
    assert {row["code"] for row in rows} >= {"ESP101", "ESP102"}


def make_tree(root: Path, count: int) -> None:
    for index in range(count):
        body = BAD if index % 3 == 0 else GOOD if index % 3 == 1 else "import torch\ndef f(:\n    torch._x\n"
        write(root / f"pkg{index % 5}" / f"m{index}.py", body)


def test_parallel_run_equals_serial_run(tmp_path: Path) -> None:
    make_tree(tmp_path, 60)
    serial = run("check", "--format", "json", "--no-cache", "-j", "1", cwd=tmp_path)
    parallel = run("check", "--format", "json", "--no-cache", "-j", "2", cwd=tmp_path)
    assert serial.returncode == parallel.returncode == 1
    assert json.loads(serial.stdout) == json.loads(parallel.stdout) and len(json.loads(serial.stdout)) == 40


def test_warm_cache_gives_identical_results_and_survives_damage(tmp_path: Path) -> None:
    make_tree(tmp_path, 30)
    cold = run("check", "--format", "json", cwd=tmp_path)
    entries = list((tmp_path / ".esper-lint-cache").rglob("*.json"))
    assert len(entries) == 5  # one shard per folder
    warm = run("check", "--format", "json", cwd=tmp_path)
    assert warm.stdout == cold.stdout and warm.returncode == cold.returncode == 1
    for entry in entries[:3]:
        entry.write_text("{not json")
    damaged = run("check", "--format", "json", cwd=tmp_path)
    assert damaged.stdout == cold.stdout
    write(tmp_path / "pkg0" / "m0.py", GOOD)  # an edit invalidates that file's entry only
    edited = json.loads(run("check", "--format", "json", cwd=tmp_path).stdout)
    assert len(edited) == len(json.loads(cold.stdout)) - 1


def test_configuration_change_invalidates_the_cache(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "import numpy as np\nimport torch\nnp._x\n")
    assert run("check", cwd=tmp_path).returncode == 0
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nroots = ["torch", "numpy"]\n')
    assert run("check", cwd=tmp_path).returncode == 1


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "a.py", BAD)
    run("check", "--no-cache", cwd=tmp_path)
    assert not (tmp_path / ".esper-lint-cache").exists()


def test_explain_text_and_json(tmp_path: Path) -> None:
    text = run("explain", "torch._foreach_norm", cwd=tmp_path)
    assert text.returncode == 0 and "1.11" in text.stdout
    data = json.loads(run("explain", "--format", "json", "torch._dynamo.disable", cwd=tmp_path).stdout)
    assert data["first_release"] == "2.0" and data["replacement"]["name"] == "torch.compiler.disable"
    assert data["replacement"]["public_since"] == "2.1"
    unknown = run("explain", "torch.nothing_like_this._x", cwd=tmp_path)
    assert unknown.returncode == 1 and "not in the torch index" in unknown.stdout
    assert run("explain", "not a name", cwd=tmp_path).returncode == 2


def test_index_works_without_torch_installed(tmp_path: Path) -> None:
    # A child interpreter that cannot import torch still knows torch's releases.
    blocker = write(tmp_path / "blocker" / "sitecustomize.py", (
        "import sys\n"
        "class _NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked for this test')\n"
        "sys.meta_path.insert(0, _NoTorch())\n"
    ))
    write(tmp_path / "a.py", "import torch\n# Private API, since PyTorch 1.9; fallback: [g.norm() for g in gs]\ntorch._foreach_norm(gs)\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "a.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1 and "ESP201" in result.stdout and "first shipped in 1.11" in result.stdout
    verify = subprocess.run(
        [sys.executable, "-m", "esper_lint", "verify", "a.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert verify.returncode == 2 and "needs torch installed" in verify.stderr and "Traceback" not in verify.stderr


def test_diff_changes_nothing_and_fix_writes(tmp_path: Path) -> None:
    # torch._C.BoolTensor is torch.BoolTensor, re-exported: a drop-in swap, safe in every release.
    source = "import torch\n\n\ndef f(xs):\n    return torch._C.BoolTensor(xs)\n"
    target = write(tmp_path / "a.py", source)
    diff = run("check", "--diff", cwd=tmp_path)
    assert diff.returncode == 1 and "+    return torch.BoolTensor(xs)" in diff.stdout
    assert target.read_text() == source
    fixed = run("check", "--fix", cwd=tmp_path)
    assert fixed.returncode == 0 and "fixed 1 finding(s) in 1 file(s)" in fixed.stderr
    assert "torch.BoolTensor(xs)" in target.read_text()
    again = run("check", "--diff", cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, "")


def test_fix_respects_ignore_and_unsafe(tmp_path: Path) -> None:
    stale = "import torch\n# Private API, since PyTorch 1.11; fallback: 1\nx = 1\n"
    target = write(tmp_path / "a.py", stale)
    assert run("check", "--fix", cwd=tmp_path).returncode == 1 and target.read_text() == stale
    assert run("check", "--fix", "--unsafe-fixes", "--ignore", "ESP103", cwd=tmp_path).returncode == 0
    assert target.read_text() == stale
    assert run("check", "--fix", "--unsafe-fixes", cwd=tmp_path).returncode == 0
    assert "Private API" not in target.read_text()
