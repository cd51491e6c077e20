"""The result cache: one small JSON file per (file bytes, path, configuration, tool) key.

Entries are written atomically, so concurrent runs can share the cache; a missing, damaged or
unwritable entry only costs speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from esper_lint import __version__
from esper_lint.config import Config
from esper_lint.data import rules_dir
from esper_lint.model import Analysis, Finding, ReferenceRecord

CACHE_DIR_NAME = ".esper-lint-cache"


@lru_cache(maxsize=1)
def _tool_fingerprint() -> str:
    """esper-lint's version and every byte of its rule data (messages, torch index)."""
    digest = hashlib.sha256(__version__.encode())
    for entry in sorted(rules_dir().iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()


class ResultCache:
    """One small JSON file per (file bytes, path, configuration, tool) key; written atomically."""

    def __init__(self, directory: Path, config: Config, with_references: bool) -> None:
        self.directory = directory / "v1"
        self.salt = hashlib.sha256(
            f"{_tool_fingerprint()}|{config.fingerprint()}|{with_references}".encode()
        ).hexdigest()

    def key(self, path: Path, display: str, data: bytes) -> str:
        # The absolute path decides per-file-ignores; the displayed path is part of the output.
        digest = hashlib.sha256(self.salt.encode())
        digest.update(os.fsencode(path.absolute()))
        digest.update(b"\0")
        digest.update(display.encode("utf-8", "backslashreplace"))
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def load(self, key: str, display: str) -> Analysis | None:
        try:
            raw = json.loads((self.directory / key[:2] / f"{key}.json").read_text(encoding="utf-8"))
            analysis = Analysis(display, parsed=raw["parsed"])
            analysis.findings = [Finding(display, *row) for row in raw["findings"]]
            analysis.references = [ReferenceRecord(*row) for row in raw["references"]]
            return analysis
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged entries are recomputed

    def store(self, key: str, analysis: Analysis) -> None:
        target_dir = self.directory / key[:2]
        payload = {
            "parsed": analysis.parsed,
            "findings": [[f.line, f.column, f.code, f.message, f.name] for f in analysis.findings],
            "references": [[r.name, r.line, r.column, r.documented, r.typing_only] for r in analysis.references],
        }
        try:
            if not self.directory.parent.exists():
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                (self.directory.parent / ".gitignore").write_text("# written by esper-lint\n*\n", encoding="utf-8")
            target_dir.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target_dir, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(payload, stream)
            os.replace(temporary, target_dir / f"{key}.json")  # atomic: concurrent runs never see half a file
        except OSError:
            pass  # a read-only or full disk only costs speed
