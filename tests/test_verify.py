"""The CI gate: `esper-lint verify`, the one-line pytest check, and central declarations in `check`.

verify runs against the torch installed in this environment (torch 2.13 in the test set-up); the
names used below as missing are gone from every torch since 2.0, the present ones exist since 1.x.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esper_lint.testing import assert_private_apis_available, missing_private_apis

pytest.importorskip("torch", reason="verify resolves names in the installed torch")

MISSING = """\
import torch
from torch._six import inf
y = torch.nn.utils._stateless.functional_call(model, params, x)
z = torch.ops.aten._does_not_exist.default
"""

PRESENT = """\
import torch
norms = torch._foreach_norm(grads)
op = torch.ops.aten._to_copy.default
t = torch.Tensor._make_subclass(cls, data)
torch._dynamo.config.suppress_errors = True
"""

GONE_DECLARATION = """\
[project]
name = "demo"

[tool.esper-lint]

[tool.esper-lint.private-apis."torch._gone"]
since = "1.11"
fallback = "None"
"""
GONE_LINE = 6


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bad_project(tmp_path: Path) -> Path:
    write(tmp_path / "pyproject.toml", GONE_DECLARATION)
    write(tmp_path / "src" / "missing.py", MISSING)
    write(tmp_path / "src" / "present.py", PRESENT)
    return tmp_path


@pytest.fixture
def good_project(tmp_path: Path) -> Path:
    write(tmp_path / "src" / "present.py", PRESENT)
    return tmp_path


# --- esper-lint verify ------------------------------------------------------------------------


def test_verify_reports_each_missing_name_with_the_missing_component(bad_project: Path) -> None:
    result = run("verify", "--no-cache", cwd=bad_project)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert all(" ESP203 " in line for line in lines), lines
    missing = os.path.join("src", "missing.py")
    expected = [
        ("pyproject.toml", GONE_LINE, 1, "`torch._gone`", "`torch` has no attribute or submodule `_gone`"),
        (missing, 2, 24, "`torch._six.inf`", "`torch` has no attribute or submodule `_six`"),
        (missing, 3, 5, "`torch.nn.utils._stateless.functional_call`", "`torch.nn.utils` has no attribute or submodule `_stateless`"),
        (missing, 4, 5, "`torch.ops.aten._does_not_exist.default`", "`torch.ops.aten` has no attribute or submodule `_does_not_exist`"),
    ]
    assert len(lines) == len(expected), lines
    for line, (path, number, column, name, why) in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}:{number}:{column}: ESP203 {name} does not exist in the installed torch "), line
        assert line.endswith(why), line
    assert "present.py" not in result.stdout
    assert "private torch name(s) checked against torch" in result.stderr


def test_verify_passes_when_every_name_exists(good_project: Path) -> None:
    result = run("verify", "--no-cache", cwd=good_project)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert "4 private torch name(s) checked" in result.stderr


def test_verify_json(bad_project: Path) -> None:
    result = run("verify", "--no-cache", "--format", "json", "src", cwd=bad_project)
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert {row["code"] for row in rows} == {"ESP203"}
    assert [(row["name"], row["line"]) for row in rows] == [
        ("torch._gone", GONE_LINE),
        ("torch._six.inf", 2),
        ("torch.nn.utils._stateless.functional_call", 3),
        ("torch.ops.aten._does_not_exist.default", 4),
    ]
    assert rows[0]["path"] == "pyproject.toml"
    assert result.stderr == ""  # the summary line is for the text format only


def test_verify_never_imports_the_linted_code(tmp_path: Path) -> None:
    """The linted file, a module it imports and a package configured as a root all write a marker
    when imported; verify runs with the project as working directory (on sys.path for `-m`)."""
    marker = tmp_path / "MARKER"
    record = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nroots = ["torch", "userpkg"]\n')
    write(tmp_path / "helper.py", record)
    write(tmp_path / "userpkg" / "__init__.py", record + "_private = 1\n")
    write(
        tmp_path / "app.py",
        record + "import helper\nimport torch\nimport userpkg\nuserpkg._private\ntorch._six\n"
        "raise SystemExit('app.py was executed')\n",
    )
    result = run("verify", "--no-cache", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "app.py:6:1: ESP203 `torch._six`" in result.stdout
    assert "userpkg" not in result.stdout  # only torch names can be verified
    assert not marker.exists(), f"user code was imported: {marker.read_text()}"
    # The fixture really would have left a marker had it been imported.
    subprocess.run([sys.executable, "-c", "import helper"], cwd=tmp_path, check=True, timeout=60)
    assert marker.read_text() == "helper\n"


def test_verify_without_torch_is_a_clear_exit_2(tmp_path: Path) -> None:
    """`None` in sys.modules is how Python spells "this module cannot be imported": find_spec
    returns None for it and `import torch` fails, exactly as when torch is not installed."""
    write(tmp_path / "a.py", "import torch\ntorch._foreach_norm(xs)\n")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from esper_lint.frontends.cli import main\n"
        "sys.exit(main(['verify', '--no-cache', '.']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "esper-lint: error: `esper-lint verify` needs torch installed" in result.stderr


def test_verify_with_a_broken_torch_is_a_clear_exit_2(tmp_path: Path) -> None:
    """A torch that is found but fails to import (a broken install) shadows the real one here."""
    fake = tmp_path / "fake-site"
    write(fake / "torch" / "__init__.py", "raise ImportError('libtorch_cpu.so: cannot open shared object file')\n")
    project = tmp_path / "project"
    write(project / "a.py", "import torch\ntorch._foreach_norm(xs)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")]))}
    result = run("verify", "--no-cache", cwd=project, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "needs torch installed" in result.stderr
    assert "importing torch failed: ImportError: libtorch_cpu.so: cannot open shared object file" in result.stderr


def test_verify_reports_syntax_errors_and_checks_the_other_files(tmp_path: Path) -> None:
    write(tmp_path / "broken.py", "import torch\ndef f(:\n    torch._six\n")
    write(tmp_path / "ok.py", "import torch\nnorms = torch._foreach_norm(grads)\n")
    result = run("verify", "--no-cache", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert [(row["path"], row["code"]) for row in json.loads(result.stdout)] == [("broken.py", "ESP001")]


# --- the one-line pytest check ------------------------------------------------------------------


def test_assert_private_apis_available_lists_missing_names(bad_project: Path) -> None:
    with pytest.raises(AssertionError) as raised:
        assert_private_apis_available(bad_project / "src")
    message = str(raised.value)
    assert message.startswith("4 private torch API use(s) cannot be resolved:")
    missing = str(bad_project / "src" / "missing.py")
    for location, name in [
        (f"{missing}:2:24", "torch._six.inf"),
        (f"{missing}:3:5", "torch.nn.utils._stateless.functional_call"),
        (f"{missing}:4:5", "torch.ops.aten._does_not_exist.default"),
        (f"{bad_project / 'pyproject.toml'}:{GONE_LINE}:1", "torch._gone"),
    ]:
        assert f"  {location}: ESP203 `{name}` does not exist" in message
    assert "present.py" not in message


def test_assert_private_apis_available_passes_silently(good_project: Path) -> None:
    assert assert_private_apis_available(str(good_project / "src")) is None
    assert missing_private_apis(good_project) == []


def test_assert_private_apis_available_with_explicit_config(tmp_path: Path) -> None:
    write(tmp_path / "code" / "ok.py", PRESENT)
    config = write(tmp_path / "elsewhere" / "pyproject.toml", GONE_DECLARATION)
    with pytest.raises(AssertionError, match=r"(?s)1 private torch API use\(s\).*`torch._gone`"):
        assert_private_apis_available(tmp_path / "code", config=config)


# --- central declarations in `check` --------------------------------------------------------------

DECLARATIONS = """\
[tool.esper-lint]

[tool.esper-lint.private-apis."torch._no_since"]
fallback = "None"

[tool.esper-lint.private-apis."torch._bad_since"]
since = "eleven"
fallback = "None"

[tool.esper-lint.private-apis."torch._bad_fallback"]
since = "1.11"
fallback = "[g.norm( for g in gs]"

[tool.esper-lint.private-apis."torch._private_fallback"]
since = "1.11"
fallback = "torch._foreach_norm(gs)"

[tool.esper-lint.private-apis."torch._no_fallback"]
since = "1.11"

[tool.esper-lint.private-apis."torch._unused"]
since = "1.11"
fallback = "None"

[tool.esper-lint.private-apis."torch._foreach_norm"]
since = "1.11"
fallback = "[g.norm() for g in grads]"
reason = "O(1) kernel launches"

[tool.esper-lint.private-apis."torch._dynamo"]
since = "2.0"
fallback = "None"
"""


def declaration_lines(text: str) -> dict[str, int]:
    return {
        line.split('"')[1]: number
        for number, line in enumerate(text.splitlines(), start=1)
        if line.startswith("[tool.esper-lint.private-apis.")
    }


def test_central_declarations_are_judged_in_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", DECLARATIONS)
    write(
        tmp_path / "uses.py",
        "import torch\ntorch._no_since()\ntorch._bad_since()\ntorch._bad_fallback()\n"
        "torch._private_fallback()\ntorch._no_fallback()\n",
    )
    write(tmp_path / "norms.py", "import torch\nnorms = torch._foreach_norm(grads)\n")
    write(tmp_path / "dynamo.py", "import torch\ntorch._dynamo.config.suppress_errors = True\n")
    result = run("check", "--no-cache", "--format", "json", "--select", "ESP0,ESP1", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    at = declaration_lines(DECLARATIONS)
    assert all(row["path"] == "pyproject.toml" and row["column"] == 1 for row in rows), rows
    found = {(row["code"], row["name"], row["line"]): row["message"] for row in rows}
    assert sorted(found) == sorted(
        [
            ("ESP102", name, at[name])
            for name in ("torch._no_since", "torch._bad_since", "torch._bad_fallback", "torch._private_fallback", "torch._no_fallback")
        ]
        + [("ESP103", "torch._unused", at["torch._unused"])]
    )
    problems = {
        "torch._no_since": "no `since` version",
        "torch._bad_since": "malformed `since` 'eleven'",
        "torch._bad_fallback": "the fallback does not parse as Python",
        "torch._private_fallback": "the fallback itself uses a private API: `torch._foreach_norm`",
        "torch._no_fallback": "no `fallback` code",
    }
    for name, problem in problems.items():
        message = found[("ESP102", name, at[name])]
        assert problem in message and message.endswith("(central declaration)"), message
    assert "stale central declaration" in found[("ESP103", "torch._unused", at["torch._unused"])]
    # text format: located at pyproject.toml's line, relative like the linted files
    text = run("check", "--no-cache", "--select", "ESP0,ESP1", cwd=tmp_path).stdout
    assert f"pyproject.toml:{at['torch._no_since']}:1: ESP102 " in text


def test_valid_declaration_documents_every_use_in_every_file(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.esper-lint.private-apis."torch._foreach_norm"]\nsince = "1.11"\nfallback = "[g.norm() for g in grads]"\n\n'
        '[tool.esper-lint.private-apis."torch._dynamo"]\nsince = "2.0"\nfallback = "None"\n',
    )
    write(tmp_path / "a.py", "import torch\nnorms = torch._foreach_norm(grads)\n")
    write(tmp_path / "pkg" / "b.py", "import torch as th\n\ndef f(gs):\n    return th._foreach_norm(gs)\n")
    write(tmp_path / "pkg" / "c.py", "from torch import _foreach_norm as fn\nimport torch\ntorch._dynamo.config.suppress_errors = True\n")
    undocumented = write(tmp_path / "pkg" / "d.py", "import torch\ntorch._C._get_tracing_state()\n")
    result = run("check", "--no-cache", "--select", "ESP0,ESP1", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{os.path.join('pkg', 'd.py')}:2:1: ESP101 private API `torch._C._get_tracing_state` used without a documented "
        "fallback: add '# Private API, since PyTorch X.Y, fallback: <code>'"
    ]
    undocumented.unlink()
    clean = run("check", "--no-cache", "--select", "ESP0,ESP1", cwd=tmp_path)
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "All checks passed!\n")


def test_stale_declarations_are_not_reported_when_only_some_files_are_checked(tmp_path: Path) -> None:
    """pre-commit passes the changed files only (in chunks): a declaration used by an unchanged file
    is not stale. Invalid declarations are still reported."""
    write(
        tmp_path / "pyproject.toml",
        '[tool.esper-lint.private-apis."torch._foreach_norm"]\nsince = "1.11"\nfallback = "None"\n\n'
        '[tool.esper-lint.private-apis."torch._x"]\nsince = "1.11"\n',
    )
    write(tmp_path / "a.py", "import torch\nnorms = torch._foreach_norm(grads)\ntorch._x\n")
    write(tmp_path / "b.py", "x = 1\n")
    only_b = run("check", "--no-cache", "b.py", cwd=tmp_path)
    assert only_b.returncode == 1
    assert only_b.stdout.splitlines() == [
        "pyproject.toml:5:1: ESP102 invalid Private API documentation for `torch._x`: no `fallback` code (central declaration)"
    ]
    folder = run("check", "--no-cache", "--format", "json", ".", cwd=tmp_path)
    assert [row["code"] for row in json.loads(folder.stdout)] == ["ESP102"]


def test_verify_reports_names_of_other_builds_apart_on_a_cpu_build(tmp_path: Path) -> None:
    """`torch._C._cuda_getDeviceCount` exists only in CUDA builds: on a CPU-only torch it is a note,
    not an ESP203 failure, and the exit status stays 0."""
    import torch

    from esper_lint.verify.installed import torch_is_cpu_only

    if not torch_is_cpu_only():
        pytest.skip("the installed torch has CUDA/ROCm/XPU: the name resolves, there is nothing to report apart")
    if hasattr(torch._C, "_cuda_getDeviceCount"):
        pytest.skip("this CPU build has the CUDA binding after all")
    write(tmp_path / "a.py", "import torch\nif torch.cuda.is_available():\n    n = torch._C._cuda_getDeviceCount()\n")
    result = run("verify", "--no-cache", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert "note: a.py:3:9: `torch._C._cuda_getDeviceCount` is not in this CPU-only build" in result.stderr
    assert "not an ESP203 failure" in result.stderr


# --- signatures at run time (ESP204 under verify) -------------------------------------------------

CALLS = """\
import torch
torch._dynamo.disable(fn, bogus=True)
torch.nn.Module._apply(module)
torch.nn.Module._apply(module, fn)
torch._foreach_norm(grads, bogus=True)
torch._dynamo.disable(*args, **kwargs)
"""


def test_verify_binds_calls_to_the_installed_signatures(tmp_path: Path) -> None:
    """A Python function's signature is checked at run time; a C function (`torch._foreach_norm`)
    exposes none, so its call is left to `check`; unpacked arguments are never judged."""
    write(tmp_path / "calls.py", CALLS)
    result = run("verify", "--no-cache", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    found = [(f["line"], f["code"], f["name"]) for f in json.loads(result.stdout)]
    assert found == [(2, "ESP204", "torch._dynamo.disable"), (3, "ESP204", "torch.nn.Module._apply")], result.stdout
    messages = [f["message"] for f in json.loads(result.stdout)]
    assert "unexpected keyword argument 'bogus'" in messages[0]
    assert "missing a required argument: 'fn'" in messages[1]
    assert "the installed torch" in messages[0]


def test_verify_reads_each_file_under_its_own_configuration(tmp_path: Path) -> None:
    """A nested project's settings apply to its files, as in `check`: its `exclude`, its `ignore`,
    and its central declarations, which are resolved even where the run starts above it."""
    (tmp_path / ".git").mkdir()
    write(tmp_path / "pyproject.toml", '[project]\nname = "top"\n\n[tool.esper-lint]\n')
    write(tmp_path / "top.py", MISSING)
    write(
        tmp_path / "sub" / "pyproject.toml",
        '[project]\nname = "sub"\n\n[tool.esper-lint]\nexclude = ["vendored"]\n\n'
        '[tool.esper-lint.private-apis."torch._gone_in_sub"]\nsince = "1.11"\nfallback = "None"\n',
    )
    write(tmp_path / "sub" / "vendored" / "old.py", MISSING)
    write(tmp_path / "sub" / "mod.py", "import torch\nx = torch._six_gone_too\n")
    write(tmp_path / "quiet" / "pyproject.toml", '[project]\nname = "quiet"\n\n[tool.esper-lint]\nignore = ["ESP203"]\n')
    write(tmp_path / "quiet" / "mod.py", MISSING)

    verified = run("verify", "--no-cache", "--format", "json", cwd=tmp_path)
    assert verified.returncode == 1, verified.stderr
    places = sorted((f["path"], f["name"]) for f in json.loads(verified.stdout))
    assert ("sub/pyproject.toml", "torch._gone_in_sub") in places
    assert ("sub/mod.py", "torch._six_gone_too") in places
    assert {path for path, _ in places} == {"top.py", "sub/mod.py", "sub/pyproject.toml"}  # not vendored/, not quiet/

    # `check` lists the same files: both read the nested settings alike
    listed = run("check", "--show-files", cwd=tmp_path).stdout.split()
    assert sorted(listed) == ["quiet/mod.py", "sub/mod.py", "top.py"]
