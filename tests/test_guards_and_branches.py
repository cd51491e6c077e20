"""Guards, version branches, string references and names that are not torch's: every door sees the
same references (check, flake8 (tests/test_flake8.py runs it on every fixture), verify, inventory),
the fast path never changes a verdict, and the narrowed releases are what the judge and the fixer read."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from esper_lint.analysis.knowledge import TorchKnowledge
from esper_lint.analysis.resolver import ReferenceCollector
from esper_lint.config import Config
from esper_lint.engine import analyse_source
from fixture_cases import FIXTURES, load_case

NEW_FIXTURES = ["guards.py", "version_branches.py", "version_flags.py", "strings_and_writes.py", "foreign_names.py"]
ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", NEW_FIXTURES)
def test_check_and_the_reference_records_agree(name: str) -> None:
    """`verify` and `inventory` read the reference records; `check` reports the findings: an
    undocumented reportable reference is exactly an ESP101/ESP102 finding at the same place."""
    case = load_case(FIXTURES / name)
    analysis = analyse_source(case.source, name, case.config, with_references=True)
    undocumented = Counter((r.line, r.column, r.name) for r in analysis.references if not r.documented and not r.typing_only)
    reported = Counter((f.line, f.column, f.name) for f in analysis.findings if f.code in ("ESP101", "ESP102"))
    assert undocumented == reported
    forced = analyse_source(case.source, name, case.config, with_references=True, force=True)
    assert forced.references == analysis.references


def test_inventory_and_verify_see_the_references_check_sees(tmp_path: Path) -> None:
    for name in NEW_FIXTURES:
        (tmp_path / name).write_bytes((FIXTURES / name).read_bytes())
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\ntorch-versions = ">=1.13"\n')
    check = run("check", "--format", "json", "--no-cache", "--select", "ESP101", ".", cwd=tmp_path)
    findings = json.loads(check.stdout)
    undocumented = Counter(row["name"] for row in findings)
    inventory = json.loads(run("inventory", "--format", "json", "--no-cache", ".", cwd=tmp_path).stdout)
    listed = {entry["name"]: entry for entry in inventory["names"]}
    for name, count in undocumented.items():
        assert listed[name]["uses"] - listed[name]["documented"] == count, name
    # Names that are not torch's appear nowhere; guarded uses are counted as documented.
    for foreign in ("torch.ops.xformers._efficient_attention_forward", "torch.cuda._project_marker", "torch._project_registry"):
        assert foreign not in listed
    assert listed["torch._foreach_norm"]["documented"] > 0
    verify = run("verify", "--format", "json", ".", cwd=tmp_path)
    assert verify.returncode in (0, 1), verify.stderr
    missing = json.loads(verify.stdout)
    names = {row["name"] for row in missing}
    assert "torch.ops.prims._foo" in names  # a torch namespace: resolved in the installed torch
    assert not any(name.startswith(("torch.ops.xformers", "torch.ops.torchao", "torch.cuda._project")) for name in names)
    assert names <= set(listed)


GUARDED = [
    # early exit in a file the reduction cuts
    """
    import torch, os
    def f(xs):
        os.getcwd()
        if not hasattr(torch, "_foreach_norm"):
            return None
        os.getcwd()
        return torch._foreach_norm(xs)
    """,
    # a probe checked on a line of its own
    """
    import torch
    def f(xs):
        norm = getattr(torch, "_foreach_norm", None)
        y = 1
        if norm is None:
            return y
        return norm(xs)
    """,
    # the flag idiom, with unrelated code around
    """
    import os
    try:
        import os.path
        from torch.optim.optimizer import _get_value
        HAS = True
    except ImportError:
        HAS = False
    """,
    # a re-raising handler stays reported
    """
    import torch
    try:
        from torch._dynamo import reset
    except ImportError as error:
        raise SystemExit(1) from error
    """,
    # a version flag of another module, in a file without `__version__`
    """
    import torch
    from pkg import typing
    def f(fn):
        x = 1
        if typing.WITH_PT25:
            return torch.compiler.disable(fn)
        return torch._dynamo.disable(fn)
    """,
    # a helper and a constant, used from a function defined first
    """
    import torch
    def g(fn):
        if at_least("2.5"):
            return fn
        return torch._dynamo.disable(fn) if NEW else fn
    NEW = torch.__version__ >= (2, 5)
    def at_least(v):
        return torch.__version__ >= v
    """,
    # names derived from a version constant, read through a conditional expression and an assert
    """
    import torch, os
    from packaging import version
    IS_NEW = version.parse(torch.__version__) >= version.parse("2.5")
    IS_OLD = not IS_NEW
    def f(fn):
        os.getcwd()
        y = fn if IS_OLD else torch._dynamo.disable(fn)
        os.getcwd()
        if IS_OLD:
            return os.getcwd()
        os.getcwd()
        return torch._dynamo.disable(fn), y
    def g(fn):
        assert not IS_OLD
        return torch._dynamo.disable(fn)
    """,
    # a version test split over lines, and a helper whose version line is in its body
    """
    import torch
    def newer(
        minimum,
    ):
        return (
            tuple(map(int, torch.__version__.split(".")[:2]))
            >= minimum
        )
    def f(fn):
        if not newer((2, 5)):
            return fn
        return torch._dynamo.disable(fn)
    """,
    # strings in arguments the reduction would otherwise blank
    """
    import torch
    from unittest import mock
    def f(monkeypatch):
        monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: False)
        setattr(torch._dynamo.config, "suppress_errors", True)
        mock.patch("torch.cuda._lazy_init")
    """,
]


@pytest.mark.parametrize("source", GUARDED)
@pytest.mark.parametrize("versions", [None, ">=2.0"])
def test_the_fast_path_never_changes_a_guard_or_branch_verdict(source: str, versions: str | None) -> None:
    config = Config(torch_versions=versions)
    text = textwrap.dedent(source)
    usual = analyse_source(text.encode(), "f.py", config, with_references=True)
    full = analyse_source(text.encode(), "f.py", config, with_references=True, force=True)
    assert usual.findings == full.findings
    assert usual.references == full.references


def collect(source: str) -> list:
    return ReferenceCollector(["torch"]).collect(cst.parse_module(textwrap.dedent(source))).references


def test_the_narrowed_releases_are_the_ones_the_branch_runs_on() -> None:
    knowledge = TorchKnowledge(">=1.13,<2.6")
    (older, newer, unread) = collect(
        """
        import torch
        from packaging import version
        if version.parse(torch.__version__) < version.parse("2.3"):
            torch._dynamo.is_compiling()
        elif "2.3" <= torch.__version__ < "2.4.1":
            torch._dynamo.is_compiling()
        if flags.WITH_PT21:
            torch._dynamo.is_compiling()
        """
    )
    assert knowledge.branch_releases(older.branch) == ("1.13", "2.0", "2.1", "2.2")
    assert knowledge.branch_releases(newer.branch) == ("2.3", "2.4")  # 2.4.0 runs it
    assert knowledge.branch_releases(unread.branch) is None  # an opaque test narrows nothing
    assert knowledge.branch_releases(()) is None
    # ESP202 on the narrowed releases: 1.13 lacks the name.
    problem = knowledge.range_problem("torch._dynamo.is_compiling", releases=knowledge.branch_releases(older.branch))
    assert problem is not None and "1.13" in problem and "2.0" not in problem.split("(")[0]
    assert knowledge.range_problem("torch._dynamo.is_compiling", releases=("2.0", "2.1")) is None
    # ESP301: `torch.compiler.is_compiling` is public from 2.3 only.
    assert knowledge.replacement("torch._dynamo.is_compiling", releases=("2.0", "2.1", "2.2")) is None
    assert knowledge.replacement("torch._dynamo.is_compiling", releases=("2.3", "2.4")) is not None
    # Under another module's flag, judged on the releases its name claims (2.1 onwards): 2.1 and 2.2 lack it.
    assert knowledge.replacement("torch._dynamo.is_compiling", branch=unread.branch) is None
    claims_2_3 = collect("import torch\nif flags.TORCH_VERSION_AT_LEAST_2_3:\n    torch._dynamo.is_compiling()\n")[0]
    assert knowledge.replacement("torch._dynamo.is_compiling", branch=claims_2_3.branch) is not None
    states_none = collect("import torch\nif flags.torch_version_is_new:\n    torch._dynamo.is_compiling()\n")[0]
    assert knowledge.replacement("torch._dynamo.is_compiling", branch=states_none.branch) is None
    assert knowledge.replacement("torch._dynamo.is_compiling", releases=()) is None  # a branch no release runs


def test_a_project_helper_and_split_tuples_are_read() -> None:
    knowledge = TorchKnowledge(">=2.0,<2.16")
    references = collect(
        """
        import torch
        MAJOR, MINOR = map(int, torch.__version__.split(".")[:2])
        def torch_version_at_least(v):
            '''Docs.'''
            return torch.__version__ >= v
        if torch_version_at_least("2.11.0.dev"):
            torch._a()
        if (MAJOR, MINOR) >= (2, 5):
            torch._b()
        if tuple(int(p) for p in torch.__version__.split(".")[:2]) < (2, 2) or MINOR == 9:
            torch._c()
        if version.parse(torch.__version__).major == 2 and version.parse(torch.__version__).minor >= 14:
            torch._d()
        """
    )
    releases = [knowledge.branch_releases(reference.branch) for reference in references]
    assert releases[0] == ("2.11", "2.12", "2.13", "2.14", "2.15")
    assert releases[1] == ("2.5", "2.6", "2.7", "2.8", "2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "2.15")
    assert releases[2] == ("2.0", "2.1", "2.9")
    assert releases[3] == ("2.14", "2.15")
