"""`esper-lint verify` and `esper_lint.testing`: every private torch name the code uses (and every
central declaration), resolved in the installed torch; what is missing becomes ESP203.

A name that only CUDA/ROCm/XPU/MPS builds have (the index marks it absent from CPU-only builds of
that release, e.g. `torch._C._cuda_getDeviceCount`) and that a CPU-only torch lacks is not an
ESP203 failure: it is reported apart, as `GateResult.build_absent`, since the code is right for the
builds that have it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from esper_lint import catalog
from esper_lint.config import Config
from esper_lint.frontends.discovery import declarations_display, discover, display_path
from esper_lint.frontends.paths import StrPath
from esper_lint.frontends.runner import run_files
from esper_lint.model import Finding
from esper_lint.verify.installed import (
    Resolution,
    call_rejection,
    installed_torch_only,
    resolve_all,
    runtime_signature,
    torch_found,
    torch_is_cpu_only,
    torch_version,
    torch_version_unimported,
    verifiable,
)

if TYPE_CHECKING:
    from esper_lint.frontends.settings import Settings


@dataclass
class GateResult:
    torch_version: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked_names: int = 0
    #: uses of names this CPU-only build lacks but the release's CUDA/ROCm/XPU/MPS builds have
    #: (ESP203 findings by shape, not failures: shown as notes)
    build_absent: list[Finding] = field(default_factory=list)
    checked_calls: int = 0  #: calls bound to a signature the installed torch exposes


def _missing_message(resolution: Resolution, version: str) -> str:
    missing = resolution.missing_component or resolution.name
    parent, _, last = missing.rpartition(".")
    why = f"`{parent}` has no attribute or submodule `{last}`" if parent else f"`{missing}` cannot be imported"
    if resolution.detail and not resolution.detail.startswith(("ModuleNotFoundError", "ImportError")):
        why += f" ({resolution.detail})"
    return catalog.message("ESP203", name=resolution.name, version=version, details=why)


def _other_builds_only(resolution: Resolution, version: str) -> str | None:
    """The note for a name this CPU-only torch lacks that the index marks absent from CPU-only
    builds of its release (present in CUDA/ROCm/XPU/MPS builds); None otherwise."""
    from esper_lint.torch_index import load_index
    from esper_lint.torch_index.versions import SpecifierError, minor_release

    missing = resolution.missing_component or resolution.name
    lookup = load_index().lookup(missing)
    if lookup is None or not lookup.exact:
        return None
    try:
        release = minor_release(version)
    except SpecifierError:
        return None
    indexed = release in lookup.releases
    if not (lookup.cpu_absent_at(release) if indexed else lookup.cpu_absent and release not in load_index().releases):
        return None
    return (
        f"`{resolution.name}` is not in this CPU-only build of torch {version}: `{missing}` exists only in "
        "CUDA/ROCm/XPU/MPS builds (the index marks it absent from CPU-only builds); not an ESP203 failure"
    )


def _declaration_line(source: Path | None, name: str) -> int:
    if source is None:
        return 1
    from esper_lint.analysis.declarations import declaration_line  # libcst: only with central declarations

    return declaration_line(source, name)


def verify_paths(
    paths: Sequence[Path],
    config: Config,
    *,
    jobs: int | None = None,
    settings: Settings | None = None,
    cache_dir_for: Callable[[Config], StrPath | None] | None = None,
) -> GateResult:
    """Every private torch name the code references, and every central declaration, resolved.

    `settings`: each file's and folder's configuration, found as `check` finds it (the nearest
    configuration file, `--config` for all); without it `config` applies to every file.
    `cache_dir_for(config)`: the result cache of the files under `config` (none without it)."""
    with installed_torch_only(paths):  # never the linted project's own torch/ (see installed.py)
        torch_found()  # torch itself is imported only when there is a name to resolve in it
    result = GateResult("")
    from esper_lint.frontends.gitignore import GitIgnore

    # the folder walk skips what git ignores, as check's does, and each folder's `exclude` applies
    discovery = discover(paths, config, config_for=settings.for_folder if settings else None, gitignore=GitIgnore())
    result.errors.extend(discovery.errors)
    if settings is None:
        groups = [(config, list(discovery.files))]
        declaring = [config] if config.private_apis else []
    else:
        groups = settings.group_files(discovery.files)
        declaring = settings.declaring(groups, [os.fspath(path) for path in paths if os.path.isdir(path)])
    config_of: dict[str, Config] = {}  # a displayed path (a file, a declarations file) -> its configuration
    uses: list[tuple[str, int, int, str]] = []
    calls: list[tuple[str, int, int, str, tuple[int, tuple[str, ...], bool, bool]]] = []
    for group_config, files in groups:
        group_cache = cache_dir_for(group_config) if cache_dir_for is not None else None
        for outcome in run_files(files, group_config, jobs=jobs, cache_dir=group_cache, with_references=True):
            if outcome.error is not None:
                result.errors.append(outcome.error)
                continue
            assert outcome.analysis is not None
            config_of[outcome.analysis.path] = group_config
            result.findings.extend(f for f in outcome.analysis.findings if f.code == "ESP001")
            for reference in outcome.analysis.references:
                if group_config.check_typing_only or not reference.typing_only:
                    uses.append((outcome.analysis.path, reference.line, reference.column, reference.name))
                    if reference.call is not None:
                        calls.append((outcome.analysis.path, reference.line, reference.column, reference.name, reference.call))
    for declarations in declaring:
        declared_at = declarations_display(declarations.source)
        config_of.setdefault(declared_at, declarations)
        for name in declarations.private_apis:
            uses.append((declared_at, _declaration_line(declarations.source, name), 1, name))
    with installed_torch_only(paths):
        result.torch_version = torch_version() if any(verifiable(name) for *_, name in uses) else torch_version_unimported()
        resolutions = resolve_all(name for *_, name in uses)
    result.checked_names = len(resolutions)
    cpu_only = torch_is_cpu_only()
    for path, line, column, name in uses:
        resolution = resolutions.get(name)
        if resolution is not None and not resolution.present:
            variant = _other_builds_only(resolution, result.torch_version) if cpu_only else None
            if variant is not None:
                result.build_absent.append(Finding(path, line, column, "ESP203", variant, name))
                continue
            result.findings.append(Finding(path, line, column, "ESP203", _missing_message(resolution, result.torch_version), name))
    judged_calls = [call for call in calls if config_of.get(call[0], config).enabled("ESP204")]
    if judged_calls:
        with installed_torch_only(paths):
            for path, line, column, name, call in judged_calls:
                resolution = resolutions.get(name)
                if resolution is None or not resolution.present:
                    continue
                if call[2] or call[3] or runtime_signature(name) is None:
                    continue  # unpacked arguments, or no signature to bind to at run time
                result.checked_calls += 1
                rejected = call_rejection(name, call)
                if rejected is not None:
                    details = f"the installed torch {result.torch_version} rejects it ({rejected})"
                    message = catalog.message("ESP204", name=name, details=details)
                    result.findings.append(Finding(path, line, column, "ESP204", message, name))
    enabled = [f for f in result.findings if config_of.get(f.path, config).enabled(f.code, f.path)]
    result.findings = sorted(_without_noqa(enabled, discovery.files) if config.noqa else enabled, key=Finding.sort_key)
    return result


def _without_noqa(findings: list[Finding], files: Sequence[str]) -> list[Finding]:
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
