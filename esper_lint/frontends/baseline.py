"""Adopting the gate on a large code base: record today's findings, then report only new ones.

A finding's fingerprint is its code, private name, and the whitespace-normalised text of its line,
so it survives unrelated edits and lines moving up or down; identical lines in one file are counted,
so a second copy of an already-baselined line is still new. Paths are stored relative to the
baseline file, so the baseline works from any working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from esper_lint import __version__
from esper_lint.config import ConfigError
from esper_lint.frontends.reading import MIB, read_regular_file
from esper_lint.model import Finding

FORMAT_VERSION = 1


class SourceLines:
    """Lines of the linted files, read once per file that has findings."""

    def __init__(self, real_paths: dict[str, Path]) -> None:
        self._real_paths = real_paths
        self._lines: dict[str, list[str]] = {}

    def line(self, display: str, number: int) -> str:
        if display not in self._lines:
            try:
                data = self._real_paths.get(display, Path(display)).read_bytes()
                self._lines[display] = data.decode("utf-8", "replace").splitlines()
            except OSError:
                self._lines[display] = []
        lines = self._lines[display]
        return lines[number - 1] if 0 < number <= len(lines) else ""


def fingerprint(finding: Finding, line_text: str) -> str:
    normalised = " ".join(line_text.split())
    return hashlib.sha256(f"{finding.code}|{finding.name or ''}|{normalised}".encode()).hexdigest()[:20]


def _relative(display: str, real: Path | None, base: Path) -> str:
    target = (real or Path(display)).resolve()
    try:
        return target.relative_to(base).as_posix()
    except ValueError:
        return Path(os.path.relpath(target, base)).as_posix()


def _keys(findings: Iterable[Finding], lines: SourceLines, real_paths: dict[str, Path], base: Path) -> list[tuple[str, str]]:
    return [
        (_relative(f.path, real_paths.get(f.path), base), fingerprint(f, lines.line(f.path, f.line)))
        for f in findings
    ]


def write_baseline(path: Path, findings: Sequence[Finding], real_paths: dict[str, Path]) -> int:
    base = path.resolve().parent
    lines = SourceLines(real_paths)
    entries = [
        {"path": rel, "code": f.code, "name": f.name, "fingerprint": fp, "line": f.line}
        for f, (rel, fp) in zip(findings, _keys(findings, lines, real_paths, base), strict=True)
    ]
    entries.sort(key=lambda e: (e["path"], e["line"], e["code"], e["fingerprint"]))
    payload = {"esper-lint-baseline": FORMAT_VERSION, "tool-version": __version__, "findings": entries}
    base.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=base, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=1, sort_keys=True)
        stream.write("\n")
    os.replace(temporary, path)
    return len(entries)


# About 150 bytes a finding: room for hundreds of thousands. A larger file, or anything but a
# regular file (a FIFO, a link to /dev/zero), is refused unread.
MAX_BASELINE_BYTES = 64 * MIB


def load_baseline(path: Path) -> Counter[tuple[str, str]]:
    """The (path, fingerprint) counts of a baseline file; ConfigError (exit 2) naming the file for
    anything that is not a baseline this version wrote."""
    try:
        data = read_regular_file(path, MAX_BASELINE_BYTES)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the baseline: {exc.strerror or exc}") from None
    try:
        payload = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a baseline file (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{path}: not a baseline file (invalid JSON: nested too deeply)") from None
    except ValueError as exc:  # invalid JSON, or a number too long for Python
        raise ConfigError(f"{path}: not a baseline file (invalid JSON: {exc})") from None
    if not isinstance(payload, dict) or payload.get("esper-lint-baseline") != FORMAT_VERSION:
        raise ConfigError(f"{path}: not an esper-lint baseline (version {FORMAT_VERSION}); write one with --write-baseline")
    entries = payload.get("findings")
    if not isinstance(entries, list) or not all(_valid_entry(entry) for entry in entries):
        raise ConfigError(f"{path}: damaged baseline: `findings` must list objects with a string path and fingerprint")
    return Counter((entry["path"], entry["fingerprint"]) for entry in entries)


def _valid_entry(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("fingerprint"), str)


def new_findings(
    findings: Sequence[Finding], baseline_path: Path, baseline: Counter[tuple[str, str]], real_paths: dict[str, Path]
) -> list[Finding]:
    remaining = Counter(baseline)
    lines = SourceLines(real_paths)
    fresh: list[Finding] = []
    for finding, key in zip(findings, _keys(findings, lines, real_paths, baseline_path.resolve().parent), strict=True):
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            fresh.append(finding)
    return fresh
