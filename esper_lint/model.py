"""The records every front end reports: findings, and the analysis of one file."""

from __future__ import annotations

from typing import Any, NamedTuple

# Records are named tuples and a slotted class, not dataclasses: `dataclasses` imports `inspect`,
# which alone costs a clean pre-commit run about a tenth of its time (issue 20's budget).

CallShapeTuple = tuple[int, tuple[str, ...], bool, bool]


class Finding(NamedTuple):
    """A diagnostic with 1-based line and column, like flake8 and ruff print them. Immutable, and
    ordered by its fields in this order."""

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


class ReferenceRecord(NamedTuple):
    """A private reference with its place and verdict, for `verify` and `inventory`."""

    name: str
    line: int
    column: int
    documented: bool
    typing_only: bool
    # A call whose callee the name is: (plain positional arguments, keyword names, unpacks *args,
    # unpacks **kwargs); `verify` binds it to the installed torch's signature.
    call: CallShapeTuple | None = None


class Analysis:
    """One file's findings and, when asked for, its private references."""

    __slots__ = ("findings", "parsed", "path", "references")

    def __init__(
        self,
        path: str,
        findings: list[Finding] | None = None,
        references: list[ReferenceRecord] | None = None,
        parsed: bool = False,
    ) -> None:
        self.path = path
        self.findings: list[Finding] = [] if findings is None else findings
        self.references: list[ReferenceRecord] = [] if references is None else references
        self.parsed = parsed

    def _fields(self) -> tuple[str, list[Finding], list[ReferenceRecord], bool]:
        return (self.path, self.findings, self.references, self.parsed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analysis) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        return f"Analysis(path={self.path!r}, findings={self.findings!r}, references={self.references!r}, parsed={self.parsed!r})"
