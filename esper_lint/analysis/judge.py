"""Decide, for each private reference, whether it is documented, and find stale blocks.

A reference is documented by, in order: its own statement's valid block; an earlier valid block in
an enclosing scope that documents the same name or a module above it (`documentation-scope =
"scope"`); a central `[tool.esper-lint.private-apis]` declaration; a code-level fallback guard
(`analysis/guards.py`). Names under torch that are not torch's (`analysis/foreign.py`) are left out.
A reference inside a version branch is judged on the releases that branch runs on
(`TorchKnowledge.branch_releases`): ESP202 and ESP301 read them, and `JudgedReference.releases`
carries them to the fixer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import libcst as cst

from esper_lint.analysis.contract import DocumentationBlock, parse_block
from esper_lint.analysis.foreign import foreign_names, is_foreign
from esper_lint.analysis.resolver import Collection, Reference, ReferenceCollector, Scope, Statement
from esper_lint.model import CallShapeTuple
from esper_lint.names import covers

if TYPE_CHECKING:  # the engine hands one in only when an index-backed code is enabled
    from esper_lint.analysis.knowledge import TorchKnowledge


# Named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import time on every
# pre-commit run.
class Verdict(NamedTuple):
    """What the engine reports about one thing: a code, the node to place it at, and its text."""

    code: str
    anchor: cst.CSTNode
    name: str | None
    details: str = ""


class JudgedReference(NamedTuple):
    reference: Reference
    documented: bool
    reportable: bool
    # The indexed releases this reference may run on, where a version branch narrows them (the
    # supported range, or every indexed release without one, cut to the branch); None: not narrowed.
    releases: tuple[str, ...] | None = None


def judge(
    collection: Collection,
    *,
    roots: Sequence[str],
    statement_scope: bool,
    check_typing_only: bool,
    central: Mapping[str, object],
    marker_present: bool = True,
    knowledge: TorchKnowledge | None = None,
) -> tuple[list[Verdict], list[JudgedReference]]:
    # Without the marker text anywhere in the file no statement can carry a documentation block.
    blocks = _documentation_blocks(collection.statements, roots) if marker_present else {}
    valid_documents = [
        (statement, set(statement.reference_names))
        for statement, block in blocks.items()
        if block.valid and statement.reference_names
    ]
    verdicts: list[Verdict] = []
    judged: list[JudgedReference] = []
    foreign = foreign_names(collection.references, roots)
    for reference in collection.references:
        if foreign and is_foreign(reference.name, foreign):
            continue  # `torch.ops.xformers._x`, `torch.cuda._project_marker`: not torch's
        reportable = check_typing_only or not reference.typing_only
        block = blocks.get(reference.statement)
        documented = False
        if block is not None:
            documented = block.valid
            if not block.valid and reportable:
                verdicts.append(Verdict("ESP102", reference.anchor, reference.name, "; ".join(block.problems)))
        elif (
            reference.guarded
            or _centrally_declared(reference.name, central)
            or (not statement_scope and _covered_by_scope(reference, valid_documents))
        ):
            documented = True
        elif reportable:
            verdicts.append(Verdict("ESP101", reference.anchor, reference.name))
        releases = knowledge.branch_releases(reference.branch) if knowledge is not None else None
        if knowledge is not None and reportable:
            verdicts.extend(_index_verdicts(reference, block, knowledge, releases))
        judged.append(JudgedReference(reference, documented, reportable, releases))
    for statement, block in blocks.items():
        if not statement.uses_private():
            verdicts.append(Verdict("ESP103", block.marker_node, None))
    return verdicts, judged


def _index_verdicts(
    reference: Reference, block: DocumentationBlock | None, knowledge: TorchKnowledge, releases: tuple[str, ...] | None
) -> list[Verdict]:
    """ESP201 on the block that makes the "since" claim, ESP202 and ESP301 on every use, on the
    releases the use may run on (`releases`, where a version branch narrows them)."""
    verdicts: list[Verdict] = []
    if block is not None and block.since is not None:
        problem = knowledge.since_problem(reference.name, block.since)
        if problem:
            verdicts.append(Verdict("ESP201", reference.anchor, reference.name, problem))
    if not reference.guarded:  # a hasattr/try fallback already handles the missing releases
        problem = knowledge.range_problem(reference.name, releases=releases)
        if problem:
            verdicts.append(Verdict("ESP202", reference.anchor, reference.name, problem))
    replacement = knowledge.replacement(reference.name, releases=releases, branch=reference.branch)
    if replacement is not None:
        verdicts.append(Verdict("ESP301", reference.anchor, reference.name, replacement[1]))
    if reference.call is not None:
        since = block.since if block is not None else None
        # A version branch narrows the releases a call is judged on (`dtype=` passed only under
        # `if torch >= 2.4` is judged on 2.4 and newer).
        problem = knowledge.call_problem(reference.name, call_shape(reference.call), since, releases)
        if problem:
            verdicts.append(Verdict("ESP204", reference.anchor, reference.name, problem))
    problem = knowledge.deprecation_problem(reference.name)
    if problem:
        verdicts.append(Verdict("ESP205", reference.anchor, reference.name, problem))
    return verdicts


def call_shape(call: cst.Call) -> CallShapeTuple:
    """(plain positional arguments, keyword names, unpacks `*args`, unpacks `**kwargs`)."""
    positional = sum(1 for arg in call.args if arg.keyword is None and not arg.star)
    keywords = tuple(arg.keyword.value for arg in call.args if arg.keyword is not None)
    return positional, keywords, any(arg.star == "*" for arg in call.args), any(arg.star == "**" for arg in call.args)


def _documentation_blocks(statements: Sequence[Statement], roots: Sequence[str]) -> dict[Statement, DocumentationBlock]:
    blocks: dict[Statement, DocumentationBlock] = {}
    for statement in statements:
        lines = statement.comment_lines()
        if not lines:
            continue
        block = parse_block(lines, partial(private_names_in, scope=statement.scope, roots=roots), roots=roots)
        if block is not None:
            blocks[statement] = block
    return blocks


def private_names_in(module: cst.Module, scope: Scope | None, roots: Sequence[str]) -> list[str]:
    """Private names in fallback code, resolved with the names visible at the documented statement."""
    collection = ReferenceCollector(roots, check_typing_only=True).collect(module, parent_scope=scope)
    return [reference.name for reference in collection.references]


def _covered_by_scope(reference: Reference, documents: Sequence[tuple[Statement, set[str]]]) -> bool:
    statement = reference.statement
    for document, names in documents:
        scope = document.doc_scope
        if statement.doc_scope[: len(scope)] != scope or document.key >= statement.key:
            continue
        if any(covers(name, reference.name) for name in names):
            return True
    return False


def _centrally_declared(name: str, central: Mapping[str, object]) -> bool:
    return any(covers(declared, name) for declared in central)
