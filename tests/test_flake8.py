"""One real flake8 run per property: same findings as the CLI, 1-based columns, noqa, config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixture_cases import fixture_paths

ROOT = Path(__file__).resolve().parent.parent


def flake8(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "ESP", "--isolated", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_columns_match_the_cli_and_are_one_based(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import torch\nx = 1; y = torch._foreach_norm(x)\n")
    result = flake8("a.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("a.py:2:12: ESP101 private API `torch._foreach_norm`")


def test_noqa_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import torch\ntorch._a()  # noqa: ESP101\ntorch._b()  # noqa: E501\n")
    result = flake8("a.py", cwd=tmp_path)
    assert [line.split(": ")[1].split()[0] for line in result.stdout.splitlines()] == ["ESP101"]
    assert ":3:1:" in result.stdout


def test_flake8_reports_the_same_findings_as_the_cli_on_the_fixtures() -> None:
    # Syntax errors are flake8's own E999, so flake8 never hands that file to plugins.
    paths = [str(p.relative_to(ROOT)) for p in fixture_paths() if p.name != "syntax_error.py"]
    paths += ["fixtures/example"]
    cli = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--format", "json", *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    expected = sorted((Path(r["path"]).as_posix(), r["line"], r["column"], r["code"]) for r in json.loads(cli.stdout))
    result = flake8("--format=%(path)s|%(row)d|%(col)d|%(code)s", *paths, cwd=ROOT)
    got = sorted(
        (Path(p).as_posix(), int(r), int(c), code)
        for p, r, c, code in (line.split("|") for line in result.stdout.splitlines())
    )
    assert expected and got == expected


def test_flake8_in_parallel_reports_what_a_serial_run_reports() -> None:
    # flake8 forks workers only when it has more than one file; the fixtures give it dozens.
    paths = [str(p.relative_to(ROOT)) for p in fixture_paths() if p.name != "syntax_error.py"]
    paths += ["fixtures/example"]
    assert len(paths) > 2
    fmt = "--format=%(path)s|%(row)d|%(col)d|%(code)s|%(text)s"
    serial = flake8(fmt, "-j", "1", *paths, cwd=ROOT)
    parallel = flake8(fmt, "-j", "2", *paths, cwd=ROOT)
    assert serial.returncode == parallel.returncode == 1
    assert "Traceback" not in parallel.stderr
    assert serial.stdout.splitlines() and sorted(parallel.stdout.splitlines()) == sorted(serial.stdout.splitlines())


def test_esper_options_from_flake8_config(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import numpy as np\nnp._NoValue\n")
    (tmp_path / "setup.cfg").write_text("[flake8]\nesper-roots = torch,numpy\n")
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "ESP", "a.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "a.py:2:1: ESP101 private API `numpy._NoValue`" in result.stdout


def test_flake8_reads_the_pyproject_table_too(tmp_path: Path) -> None:
    source = (
        "import torch\n\n\ndef f(xs):\n    # Private API, since PyTorch 1.11; fallback: [x.norm() for x in xs]\n"
        "    a = torch._foreach_norm(xs)\n    return torch._foreach_norm(xs)\n"
    )
    (tmp_path / "a.py").write_text(source)
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\ndocumentation-scope = "statement"\n')
    result = flake8("a.py", cwd=tmp_path)
    assert result.stdout.startswith("a.py:7:12: ESP101")
