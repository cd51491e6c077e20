"""What the fixers share: the file as the fixers leave it, and the comment edits they ask for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst

from esper_lint.config import Config
from esper_lint.fast.positions import node_starts
from esper_lint.fix.safety import Applicability, applies, weakest


@dataclass(frozen=True)
class AppliedFix:
    """One fix: applied (in FixOutcome.applied) or found and not applied (FixOutcome.withheld)."""

    code: str
    line: int  # where `check` reports the finding, in the source the fix was applied to
    name: str | None
    description: str
    applicability: Applicability = "safe"
    template: bool = False  # a documentation template to fill in (--add-templates), no fix
    reason: str = ""  # why it has this applicability (shown by --show-fixes)


@dataclass
class FixState:
    """One file under fixing: each code-rewriting fixer replaces `module` and `source` with its
    checked result and records what it did in `applied`."""

    module: cst.Module
    source: bytes
    path: str
    config: Config
    unsafe: bool = False  # apply unsafe fixes too (--unsafe-fixes)
    add_templates: bool = False  # insert documentation templates where no block can be complete (--add-templates)
    caps: Mapping[str, Applicability] = field(default_factory=dict)  # code -> its rule document's `fix`
    applied: list[AppliedFix] = field(default_factory=list)
    withheld: list[AppliedFix] = field(default_factory=list)  # found, but unsafe without --unsafe-fixes, or display-only
    # withheld fixes whose line is not known yet: (anchor, fix without its line)
    pending_withheld: list[tuple[cst.CSTNode, AppliedFix]] = field(default_factory=list)

    def cap(self, code: str) -> Applicability:
        """The most a fix of `code` can be: its rule document's `fix` key."""
        return self.caps.get(code, "safe")

    def decide(self, code: str, own: Applicability) -> tuple[Applicability, bool]:
        """A fix's applicability (its own, capped by its rule's) and whether it is applied now."""
        kind = weakest(self.cap(code), own)
        return kind, applies(kind, unsafe=self.unsafe)

    def withhold(
        self, anchor: cst.CSTNode, code: str, name: str | None, description: str, kind: Applicability, reason: str
    ) -> None:
        """Record a fix that is not applied; its line is read from `module` by `resolve_withheld`."""
        self.pending_withheld.append((anchor, AppliedFix(code, 0, name, description, kind, reason=reason)))

    def withhold_template(self, anchor: cst.CSTNode, code: str, name: str | None, description: str) -> None:
        """Record a template that `add_templates` would insert (listed, never counted as a fix)."""
        reason = "the since release or the fallback is not known: a person must write it (--add-templates)"
        self.pending_withheld.append((anchor, AppliedFix(code, 0, name, description, "display-only", template=True, reason=reason)))

    def resolve_withheld(self, module: cst.Module | None = None) -> None:
        """Give the pending withheld fixes their lines, in `module` (default: the current one), in
        which their anchors must be."""
        if not self.pending_withheld:
            return
        starts = node_starts(module or self.module, [anchor for anchor, _ in self.pending_withheld])
        for anchor, item in self.pending_withheld:
            line = starts.get(id(anchor), (1, 1))[0]
            self.withheld.append(
                AppliedFix(item.code, line, item.name, item.description, item.applicability, item.template, item.reason)
            )
        self.pending_withheld.clear()


@dataclass
class CommentEdits:
    """Comment lines to insert above statements (by id of the statement node) and comments to
    remove (by id), asked for by the comment fixers and applied in one pass that must leave the
    code's AST unchanged. `notes` say what each finding's fix is, at the finding's anchor."""

    insert: dict[int, list[cst.EmptyLine]] = field(default_factory=dict)
    remove: set[int] = field(default_factory=set)
    targets: list[cst.CSTNode] = field(default_factory=list)  # the nodes the edits touch
    notes: list[tuple[cst.CSTNode, str, str | None, str]] = field(default_factory=list)
    templates: set[int] = field(default_factory=set)  # ids of the anchors whose note is a template

    def __bool__(self) -> bool:
        return bool(self.insert or self.remove)
