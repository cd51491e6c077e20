"""The pre-commit hook end to end: the real `pre-commit try-repo` against this repository's
`.pre-commit-hooks.yaml`, in a throwaway git repository.

pre-commit builds the hook's own virtualenv (`pip install` of this project, so it needs PyPI, not
GitHub) in a private PRE_COMMIT_HOME; each try-repo run takes up to a minute or so.

`try-repo PATH` installs the repository's HEAD commit plus its staged and modified tracked files
(a "shadow" commit), but not untracked files. To test exactly the working tree, the hook repository
used here is a snapshot of it: every tracked or untracked-but-not-ignored file, committed afresh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Used when the project is not a git checkout (an unpacked sdist): what building the hook needs.
BUILD_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "esper_lint", "rules")

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git, and git is not installed"),
]
pytest.importorskip("pre_commit", reason="pre-commit is not installed (it is in the `test` extra)")

GOOD = """\
import torch

# NOTE: Private API, stable since PyTorch 1.11; fallback: [g.norm() for g in grads]
norms = torch._foreach_norm(grads)
"""

BAD = """\
import torch

norms = torch._foreach_norm(grads)
"""


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=_git_env())
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _git_env() -> dict[str, str]:
    # No user or system git configuration (hooks, templates, signing) leaks into the test.
    return {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git("init", "--quiet", cwd=path)
    git("config", "user.email", "tests@example.invalid", cwd=path)
    git("config", "user.name", "esper-lint tests", cwd=path)
    git("config", "commit.gpgsign", "false", cwd=path)
    return path


def commit_all(repo: Path, message: str) -> None:
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=repo)


def project_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, timeout=60, env=_git_env(),
    )
    if listing.returncode == 0:
        return [name for name in listing.stdout.decode().split("\0") if name and (REPO_ROOT / name).is_file()]
    files: list[str] = []
    for entry in BUILD_FILES:
        path = REPO_ROOT / entry
        candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files.extend(str(p.relative_to(REPO_ROOT)) for p in candidates if "__pycache__" not in p.parts)
    return files


def snapshot_of_this_project(destination: Path) -> Path:
    repo = new_repo(destination)
    for name in project_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    assert (repo / ".pre-commit-hooks.yaml").is_file()
    commit_all(repo, "snapshot of the esper-lint working tree")
    return repo


def try_repo(hook_repo: Path, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**_git_env(), "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "esper-lint", "--all-files", "--color", "never"],
        cwd=cwd, capture_output=True, text=True, timeout=900, env=env,
    )


def test_precommit_hook_fails_on_undocumented_use_and_passes_once_fixed(tmp_path: Path) -> None:
    hook_repo = snapshot_of_this_project(tmp_path / "esper-lint")
    user = new_repo(tmp_path / "user-project")
    (user / "good.py").write_text(GOOD, encoding="utf-8")
    (user / "bad.py").write_text(BAD, encoding="utf-8")
    (user / "notes.txt").write_text("torch._foreach_norm is not Python\n", encoding="utf-8")
    commit_all(user, "one compliant file, one not")

    failing = try_repo(hook_repo, user, tmp_path / "pre-commit-home")
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert "esper-lint (documented private torch APIs)" in output and "Failed" in output, output
    assert "bad.py:3:9: ESP101 private API `torch._foreach_norm` used without a documented fallback" in output, output
    assert "good.py" not in output, output
    assert "notes.txt" not in output, output

    (user / "bad.py").write_text(GOOD, encoding="utf-8")
    git("add", "bad.py", cwd=user)  # pre-commit stashes unstaged changes before running hooks
    passing = try_repo(hook_repo, user, tmp_path / "pre-commit-home-2")
    output = passing.stdout + passing.stderr
    assert passing.returncode == 0, output
    assert "Passed" in output and "ESP101" not in output, output


def test_the_hook_runs_on_python_files_and_on_the_files_that_hold_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pre-commit's own manifest loader and file classifier, on the hook as this repository declares it:
    a changed pyproject.toml (central declarations) reruns the hook; other TOML and text files do not."""
    from pre_commit.clientlib import load_manifest
    from pre_commit.commands.run import Classifier, filter_by_include_exclude

    (hook,) = load_manifest(str(REPO_ROOT / ".pre-commit-hooks.yaml"))
    monkeypatch.chdir(tmp_path)
    wanted = ["a.py", "stubs/b.pyi", "pyproject.toml", "pkg/pyproject.toml", "esper-lint.toml", ".esper-lint.toml", "script"]
    unwanted = ["Cargo.toml", "config/settings.toml", "notes.txt", "mypyproject.toml"]
    for name in wanted + unwanted:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text("#!/usr/bin/env python\n" if name == "script" else "", encoding="utf-8")
    os.chmod("script", 0o755)
    candidates = filter_by_include_exclude(wanted + unwanted, hook["files"], hook["exclude"])
    chosen = Classifier(wanted + unwanted).by_types(candidates, hook["types"], hook["types_or"], hook["exclude_types"])
    assert sorted(chosen) == sorted(wanted)
