"""The pre-check and the reduction are sound on a large real corpus: torch's own sources (read, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import may_report


def torch_sources() -> list[Path]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torch is not installed (install the `test` extra)")
    return sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*.py"))


def test_every_file_the_precheck_skips_has_no_findings() -> None:
    files = torch_sources()
    skipped = [path for path in files if not may_report(path.read_bytes(), ("torch",))]
    assert len(files) > 1000 and skipped, "the corpus should exercise both outcomes"
    unsound = [
        str(path) for path in skipped if analyse_source(path.read_bytes(), str(path), Config(), force=True).findings
    ]
    assert unsound == []


def test_the_reduction_changes_nothing_on_a_sample_of_torch() -> None:
    """Every 8th file: the usual analysis (libcst reads a reduced file, positions are generated per
    statement) equals a forced one (the whole file, the whole module generated)."""
    files = torch_sources()[::8]
    differing = []
    for path in files:
        raw = path.read_bytes()
        usual = analyse_source(raw, str(path), Config(), with_references=True)
        if not usual.parsed:
            continue
        full = analyse_source(raw, str(path), Config(), with_references=True, force=True)
        if (usual.findings, usual.references) != (full.findings, full.references):
            differing.append(str(path))
    assert differing == []
