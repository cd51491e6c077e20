"""The pre-check is sound on a large real corpus: torch's own sources (read, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.precheck import may_report


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
