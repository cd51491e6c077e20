"""`esper-lint verify` and `esper_lint.testing`: every private torch name the code uses (and every
central declaration), resolved in the installed torch; what is missing becomes ESP203."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from esper_lint import catalog
from esper_lint.config import Config
from esper_lint.frontends.discovery import declarations_display, discover, display_path
from esper_lint.frontends.runner import run_files
from esper_lint.model import Finding
from esper_lint.verify.installed import (
    Resolution,
    installed_torch_only,
    resolve_all,
    torch_found,
    torch_version,
    torch_version_unimported,
    verifiable,
)


@dataclass
class GateResult:
    torch_version: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked_names: int = 0


def _missing_message(resolution: Resolution, version: str) -> str:
    missing = resolution.missing_component or resolution.name
    parent, _, last = missing.rpartition(".")
    why = f"`{parent}` has no attribute or submodule `{last}`" if parent else f"`{missing}` cannot be imported"
    if resolution.detail and not resolution.detail.startswith(("ModuleNotFoundError", "ImportError")):
        why += f" ({resolution.detail})"
    return catalog.message("ESP203", name=resolution.name, version=version, details=why)


def _declaration_line(source: Path | None, name: str) -> int:
    if source is None:
        return 1
    from esper_lint.analysis.declarations import declaration_line  # libcst: only with central declarations

    return declaration_line(source, name)


def verify_paths(
    paths: Sequence[Path], config: Config, *, jobs: int | None = None, cache_dir: Path | None = None
) -> GateResult:
    """Every private torch name the code references, and every central declaration, resolved."""
    with installed_torch_only(paths):  # never the linted project's own torch/ (see installed.py)
        torch_found()  # torch itself is imported only when there is a name to resolve in it
    result = GateResult("")
    from esper_lint.frontends.gitignore import GitIgnore

    discovery = discover(paths, config, gitignore=GitIgnore())  # the folder walk skips what git ignores, as check's does
    result.errors.extend(discovery.errors)
    uses: list[tuple[str, int, int, str]] = []
    for outcome in run_files(discovery.files, config, jobs=jobs, cache_dir=cache_dir, with_references=True):
        if outcome.error is not None:
            result.errors.append(outcome.error)
            continue
        assert outcome.analysis is not None
        result.findings.extend(f for f in outcome.analysis.findings if f.code == "ESP001")
        for reference in outcome.analysis.references:
            if config.check_typing_only or not reference.typing_only:
                uses.append((outcome.analysis.path, reference.line, reference.column, reference.name))
    declared_at = declarations_display(config.source)
    for name in config.private_apis:
        line = _declaration_line(config.source, name)
        uses.append((declared_at, line, 1, name))
    with installed_torch_only(paths):
        result.torch_version = torch_version() if any(verifiable(name) for *_, name in uses) else torch_version_unimported()
        resolutions = resolve_all(name for *_, name in uses)
    result.checked_names = len(resolutions)
    for path, line, column, name in uses:
        resolution = resolutions.get(name)
        if resolution is not None and not resolution.present:
            result.findings.append(Finding(path, line, column, "ESP203", _missing_message(resolution, result.torch_version), name))
    enabled = [f for f in result.findings if config.enabled(f.code, f.path)]
    result.findings = sorted(_without_noqa(enabled, discovery.files) if config.noqa else enabled, key=Finding.sort_key)
    return result


def _without_noqa(findings: list[Finding], files: Sequence[Path]) -> list[Finding]:
    """`# noqa: ESP203` works here as in `check` (esper_lint/noqa.py): the files with findings are read again."""
    from esper_lint.frontends.reading import read_regular_file
    from esper_lint.noqa import apply_noqa

    real = {display_path(path): path for path in files}
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    kept: list[Finding] = []
    for path, items in by_path.items():
        try:
            kept.extend(apply_noqa(items, read_regular_file(real[path]), path) if path in real else items)
        except OSError:  # gone since it was analysed: its findings stand
            kept.extend(items)
    return kept


__all__ = ["GateResult", "verifiable", "verify_paths"]
