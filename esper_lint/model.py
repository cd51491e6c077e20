"""The records every front end reports: findings, and the analysis of one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CallShapeTuple = tuple[int, tuple[str, ...], bool, bool]


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
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "name": self.name,
            "message": self.message,
        }


@dataclass(frozen=True)
class ReferenceRecord:
    """A private reference with its place and verdict, for `verify` and `inventory`."""

    name: str
    line: int
    column: int
    documented: bool
    typing_only: bool
    # A call whose callee the name is: (plain positional arguments, keyword names, unpacks *args,
    # unpacks **kwargs); `verify` binds it to the installed torch's signature.
    call: CallShapeTuple | None = None


@dataclass
class Analysis:
    """One file's findings and, when asked for, its private references."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    references: list[ReferenceRecord] = field(default_factory=list)
    parsed: bool = False
