"""Adoption on a large code base (--write-baseline / --baseline) and the inventory report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


LEGACY = (
    "import torch\n\n\ndef old(xs):\n    a = torch._foreach_norm(xs)\n    b = torch._foreach_norm(xs)\n"
    "    return torch._C._get_tracing_state()\n"
)


def test_baseline_hides_old_findings_through_moves_and_edits(tmp_path: Path) -> None:
    (tmp_path / "legacy.py").write_text(LEGACY)
    written = run("check", "--write-baseline", "esper-baseline.json", cwd=tmp_path)
    assert written.returncode == 0 and "wrote 4 finding(s)" in written.stderr  # 2x ESP101, ESP101 + ESP301
    assert run("check", "--baseline", "esper-baseline.json", cwd=tmp_path).returncode == 0
    moved = "import torch\nimport os  # an unrelated edit\n\n\n" + LEGACY.split("\n", 1)[1].replace("def old", "# moved\ndef old")
    (tmp_path / "legacy.py").write_text(moved)
    assert run("check", "--baseline", "esper-baseline.json", cwd=tmp_path).returncode == 0
    # A third copy of a baselined line is new, and so is a new private name.
    added = "    c = torch._foreach_norm(xs)\n    torch._C._new_thing()\n".replace("    c", "\nc").replace("\n    torch", "\ntorch")
    (tmp_path / "legacy.py").write_text(moved + added)
    result = run("check", "--format", "json", "--baseline", "esper-baseline.json", cwd=tmp_path)
    names = sorted(row["name"] for row in json.loads(result.stdout))
    assert result.returncode == 1 and names == ["torch._C._new_thing", "torch._foreach_norm"]


def test_baseline_paths_work_from_another_directory(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "legacy.py").write_text(LEGACY)
    assert run("check", "--write-baseline", "baseline.json", "src", cwd=tmp_path).returncode == 0
    assert run("check", "--baseline", "../baseline.json", ".", cwd=tmp_path / "src").returncode == 0


def test_bad_baseline_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(LEGACY)
    (tmp_path / "b.json").write_text("{}")
    result = run("check", "--baseline", "b.json", cwd=tmp_path)
    assert result.returncode == 2 and "not an esper-lint baseline" in result.stderr and "Traceback" not in result.stderr
    missing = run("check", "--baseline", "nope.json", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.json: cannot read the baseline" in missing.stderr


def test_inventory_counts_uses_and_knows_the_index(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch>=1.13,<2.2"]\n')
    (tmp_path / "a.py").write_text(
        "import torch\nfrom torch._six import inf\n"
        "# Private API, since PyTorch 1.11; fallback: [g.norm() for g in gs]\nn = torch._foreach_norm(gs)\n"
        "m = torch._foreach_norm(hs)\n"
    )
    (tmp_path / "b.py").write_text("import torch\ntorch._dynamo.reset()\n")
    result = run("inventory", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0
    data = json.loads(result.stdout)
    by_name = {entry["name"]: entry for entry in data["names"]}
    assert data["supported_range"] == ">=1.13,<2.2"
    assert by_name["torch._foreach_norm"]["uses"] == 2 and by_name["torch._foreach_norm"]["documented"] == 2
    assert by_name["torch._foreach_norm"]["first_release"] == "1.11"
    assert "2.0" in by_name["torch._six.inf"]["missing_in_range"]
    assert by_name["torch._dynamo.reset"]["replacement"] == "torch.compiler.reset"
    markdown = run("inventory", "--format", "markdown", cwd=tmp_path).stdout
    assert "| `torch._foreach_norm` | 2 | 2 | 1 |" in markdown


def test_inventory_reads_each_file_under_its_own_configuration(tmp_path: Path) -> None:
    """A nested project's `exclude` applies to its folder, as in `check`."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "top"\n\n[tool.esper-lint]\n')
    (tmp_path / "top.py").write_text("import torch\nx = torch._foreach_norm(xs)\n")
    sub = tmp_path / "sub"
    (sub / "vendored").mkdir(parents=True)
    (sub / "pyproject.toml").write_text('[project]\nname = "sub"\n\n[tool.esper-lint]\nexclude = ["vendored"]\n')
    (sub / "vendored" / "old.py").write_text("import torch\ny = torch._C._get_tracing_state()\n")
    (sub / "mod.py").write_text("import torch\nz = torch._dynamo.is_compiling()\n")
    report = run("inventory", "--no-cache", "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    names = {entry["name"] for entry in json.loads(report.stdout)["names"]}
    assert names == {"torch._foreach_norm", "torch._dynamo.is_compiling"}
