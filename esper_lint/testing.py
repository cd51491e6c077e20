"""A one-line pytest check that the private torch APIs a project uses exist in the installed torch.

    from esper_lint.testing import assert_private_apis_available

    def test_private_torch_apis_exist():
        assert_private_apis_available("src")
"""

from __future__ import annotations

from pathlib import Path

from esper_lint.config import load_config
from esper_lint.model import Finding
from esper_lint.verify import verify_paths


def missing_private_apis(*paths: str | Path, config: str | Path | None = None) -> list[Finding]:
    """ESP203 (and ESP001) findings for the given paths, configured like `esper-lint verify`."""
    targets = [Path(p) for p in paths] or [Path(".")]
    loaded = load_config(targets, Path(config) if config is not None else None)
    result = verify_paths(targets, loaded, jobs=1)
    if result.errors:
        raise AssertionError("esper-lint could not check every file:\n" + "\n".join(result.errors))
    return result.findings


def assert_private_apis_available(*paths: str | Path, config: str | Path | None = None) -> None:
    """Fail with the list of missing private names (and where they are used)."""
    missing = missing_private_apis(*paths, config=config)
    if missing:
        lines = "\n".join(f"  {f.path}:{f.line}:{f.column}: {f.code} {f.message}" for f in missing)
        raise AssertionError(f"{len(missing)} private torch API use(s) cannot be resolved:\n{lines}")
