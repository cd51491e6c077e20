"""Autofix: rewrite what `esper-lint check` reports, where a rewrite is certain to be right.

Every fix has an applicability, as in ruff (fix/safety.py derives it, capped by the rule
document's `fix` key): *safe* fixes are applied, *unsafe* ones only with `unsafe=True`
(`--unsafe-fixes`), *display-only* ones never; those not applied are listed in
`FixOutcome.withheld` with the reason.

- ESP301: the private reference becomes its public replacement (imports added in the torch import
  group, private imports that only the rewritten code used removed, the user's aliases kept), where
  the replacement is drop-in and public in every release that applies; see fix/replace.py.
- ESP101: a documentation block in the README's first layout, once per documentation scope, where
  both the "since" release (of the exact name, from the torch index) and a fallback (a drop-in
  public replacement) are known; see fix/document.py. Where they are not, a template with visible
  placeholders (still ESP102) is inserted only with `add_templates=True`, and counted as such.
- ESP103 (unsafe: it deletes a person's words): the stale block is removed.

Every result is checked before it is returned: it parses (libcst and CPython), keeps its encoding,
and its AST is identical (comment-only fixes) or differs only in the rewritten names and the imports
under the roots (ESP301). A check that fails returns the source unchanged with `error` set.
Fixes honour the enabled codes (`config.enabled(code, path)`) like ruff's --select/--ignore.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

import libcst as cst

from esper_lint import parsing
from esper_lint.config import Config
from esper_lint.fast.positions import node_starts
from esper_lint.fast.precheck import may_report
from esper_lint.fix.analysis import judge_module
from esper_lint.fix.edits import AppliedFix, CommentEdits, FixState
from esper_lint.fix.registry import FIX_CAPS, FIXABLE_CODES, FIXERS, UNSAFE_CODES  # from the rule documents' `fix` key
from esper_lint.fix.safety import UnsafeFix, check_parses, check_same_ast
from esper_lint.fix.tree import TargetedTransformer, paths_to

__all__ = ["FIXABLE_CODES", "UNSAFE_CODES", "AppliedFix", "FixOutcome", "fix_source", "fixable_codes"]


@dataclass
class FixOutcome:
    new_source: bytes
    applied: list[AppliedFix] = field(default_factory=list)
    error: str | None = None
    withheld: list[AppliedFix] = field(default_factory=list)  # found, not applied: unsafe or display-only

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    @property
    def fixes(self) -> list[AppliedFix]:
        """The applied fixes that fix a finding (not the templates inserted to be filled in)."""
        return [item for item in self.applied if not item.template]

    @property
    def templates(self) -> list[AppliedFix]:
        return [item for item in self.applied if item.template]


def fixable_codes(
    config: Config,
    path: str,
    *,
    select_enabled: Callable[[str], bool] | None = None,
    unsafe: bool = False,
    show_withheld: bool = False,
) -> list[str]:
    """The enabled codes whose fixes may apply (with `show_withheld`: also those whose fixes are
    only to be listed, such as the unsafe ones without `unsafe`)."""
    return [
        code
        for code in FIXABLE_CODES
        if config.enabled(code, path)
        and (select_enabled is None or select_enabled(code))
        and (unsafe or show_withheld or code not in UNSAFE_CODES)
    ]


def fix_source(
    source: bytes,
    path: str,
    config: Config,
    *,
    select_enabled: Callable[[str], bool] | None = None,
    unsafe: bool = False,
    add_templates: bool = False,
    show_withheld: bool = False,
) -> FixOutcome:
    """Fix one file's bytes. Never raises for bad input: unparsable code is returned unchanged.

    `unsafe` applies the unsafe fixes too; `add_templates` inserts documentation templates where
    no complete block can be written; `show_withheld` also lists the fixes not applied (unsafe
    ones without `unsafe`: display-only ones are always listed)."""
    raw = source.encode("utf-8") if isinstance(source, str) else source
    codes = fixable_codes(config, path, select_enabled=select_enabled, unsafe=unsafe, show_withheld=show_withheld)
    if not codes or not may_report(raw, config.roots):
        return FixOutcome(raw)
    guarded = parsing.guard(raw, path)
    if guarded.tree is None:  # ESP001 territory: nothing to fix, `check` reports it
        return FixOutcome(raw)
    parsed = parsing.parse(raw, path, guarded=guarded)
    if parsed.module is None:
        return FixOutcome(raw)
    try:
        return parsing.on_big_stack(_fix, raw, parsed.module, path, config, codes, unsafe, add_templates)
    except UnsafeFix as exc:
        return FixOutcome(raw, [], str(exc))
    except RecursionError:
        return FixOutcome(raw, [], "the code is nested too deeply to fix safely")
    except Exception as exc:  # a fixer bug must not lose the file or stop the run
        return FixOutcome(raw, [], f"internal error while fixing ({type(exc).__name__}: {exc}); please report it")


def _fix(
    raw: bytes, module: cst.Module, path: str, config: Config, codes: Sequence[str], unsafe: bool, add_templates: bool
) -> FixOutcome:
    state = FixState(module, raw, path, config, unsafe=unsafe, add_templates=add_templates, caps=FIX_CAPS)
    for fixer in FIXERS:
        if fixer.rewrite is not None and fixer.code in codes:
            fixer.rewrite(state)
    comment_fixers = [fixer.comment for fixer in FIXERS if fixer.comment is not None and fixer.code in codes]
    if comment_fixers:
        judged = judge_module(state.module, state.source, path, config)
        edits = CommentEdits()
        for comment_fixer in comment_fixers:
            comment_fixer(judged, state, edits)
        state.resolve_withheld()  # positions in the source before the edits, like the notes'
        if edits:
            _apply_comment_edits(state, edits)
    return FixOutcome(state.source, state.applied, withheld=state.withheld)


def _apply_comment_edits(state: FixState, edits: CommentEdits) -> None:
    module = state.module
    starts = node_starts(module, [anchor for anchor, *_ in edits.notes])
    edited = module.visit(_CommentEditor(edits.insert, edits.remove, paths_to(module, edits.targets)))
    new = edited.bytes
    state.module = check_parses(new, module)
    check_same_ast(state.source, new)
    for anchor, code, name, description in edits.notes:
        template = id(anchor) in edits.templates
        state.applied.append(
            AppliedFix(code, starts.get(id(anchor), (1, 1))[0], name, description, state.cap(code), template=template)
        )
    state.source = new


_Node = TypeVar("_Node", bound=cst.CSTNode)
# What a documentation block is inserted above: the statements the resolver judges.
_DOCUMENTED_STATEMENTS = (
    cst.SimpleStatementLine,
    cst.BaseCompoundStatement,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.MatchCase,
)


class _CommentEditor(TargetedTransformer):
    """Insert comment lines above statements and remove chosen comments; nothing else."""

    def __init__(self, insert: dict[int, list[cst.EmptyLine]], remove: set[int], paths: set[int]) -> None:
        super().__init__(paths)
        self.insert = insert
        self.remove = remove

    def on_leave(self, original_node: _Node, updated_node: _Node) -> _Node | cst.RemovalSentinel:
        if isinstance(original_node, cst.EmptyLine):
            if original_node.comment is not None and id(original_node.comment) in self.remove:
                return cst.RemoveFromParent()
            return updated_node
        if isinstance(original_node, cst.TrailingWhitespace):
            if original_node.comment is not None and id(original_node.comment) in self.remove:
                return updated_node.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
            return updated_node
        lines = self.insert.get(id(original_node))
        if lines is not None and isinstance(updated_node, _DOCUMENTED_STATEMENTS):
            edited = updated_node.with_changes(leading_lines=[*updated_node.leading_lines, *lines])
            return cast(_Node, edited)  # `with_changes` keeps the node's class; mypy loses it through the tuple
        return updated_node
