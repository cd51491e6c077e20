"""The one record every front end (CLI, flake8, pre-commit) reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Finding:
    """A diagnostic with 1-based line and column, like flake8 and ruff print them."""

    path: str
    line: int
    column: int
    code: str
    message: str
    name: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.code, self.message)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: data[key] for key in ("path", "line", "column", "code", "name", "message")}
