"""What the fixers share: the file as the fixers leave it, and the comment edits they ask for."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from esper_lint.config import Config


@dataclass(frozen=True)
class AppliedFix:
    code: str
    line: int  # where `check` reports the finding, in the source the fix was applied to
    name: str | None
    description: str


@dataclass
class FixState:
    """One file under fixing: each code-rewriting fixer replaces `module` and `source` with its
    checked result and records what it did in `applied`."""

    module: cst.Module
    source: bytes
    path: str
    config: Config
    applied: list[AppliedFix] = field(default_factory=list)


@dataclass
class CommentEdits:
    """Comment lines to insert above statements (by id of the statement node) and comments to
    remove (by id), asked for by the comment fixers and applied in one pass that must leave the
    code's AST unchanged. `notes` say what each finding's fix is, at the finding's anchor."""

    insert: dict[int, list[cst.EmptyLine]] = field(default_factory=dict)
    remove: set[int] = field(default_factory=set)
    targets: list[cst.CSTNode] = field(default_factory=list)  # the nodes the edits touch
    notes: list[tuple[cst.CSTNode, str, str | None, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.insert or self.remove)
