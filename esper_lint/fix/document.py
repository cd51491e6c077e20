"""ESP101: insert a documentation block in the README's first layout above an undocumented statement.

The block names the statement's private names, the "since" release from the torch index and, where
the replacement registry knows one, the public replacement as the fallback. Unknown values become
visible placeholders that keep ESP102 firing: a fix never pretends to document. Each block is judged
with the engine's own contract parser (together with the comments already on the statement) before
it is inserted; one that would not come out as intended is not inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.contract import CommentLine, comment_body, parse_block
from esper_lint.analysis.judge import private_names_in
from esper_lint.analysis.resolver import Statement
from esper_lint.fix.analysis import Judged
from esper_lint.fix.edits import CommentEdits, FixState
from esper_lint.names import covers
from esper_lint.torch_index import TorchIndex, load_index
from esper_lint.torch_index.versions import SpecifierError, parse_version

VERSION_PLACEHOLDER = "<VERSION>"
FALLBACK_PLACEHOLDER = "<FALLBACK: public code to use if this API disappears>"
INDEXED_ROOT = "torch"


@dataclass
class PlannedBlock:
    statement: Statement
    names: list[str]
    lines: list[str]  # comment texts, each starting with '#'
    complete: bool  # no placeholder: the block documents the statement


def first_release(index: TorchIndex, name: str) -> str | None:
    """The first indexed release having `name`, or its nearest known prefix when `name` is not listed."""
    if not name.startswith(INDEXED_ROOT + "."):
        return None
    exact = index.first_release(name)
    if exact is not None:
        return exact
    lookup = index.lookup(name)
    if lookup is None or not lookup.present_in:
        return None
    return lookup.present_in[0]


def _latest(versions: Sequence[str]) -> str | None:
    try:
        return max(versions, key=parse_version)
    except SpecifierError:
        return None


def block_lines(names: Sequence[str], since: str | None, fallback: Sequence[str] | None, *, terminate: bool) -> list[str]:
    shown = ", ".join(names)
    lines = [
        f"# NOTE: Private API ({shown}), stable since PyTorch {since or VERSION_PLACEHOLDER}.",
        "# If this breaks in future PyTorch, fallback is:",
        *(f"#   {code}" for code in (fallback or [FALLBACK_PLACEHOLDER])),
    ]
    if terminate:
        lines.append("#")  # a blank comment line ends the fallback code before the statement's own comments
    return lines


def plan_block(statement: Statement, index: TorchIndex, roots: Sequence[str]) -> PlannedBlock:
    names = list(dict.fromkeys(statement.reference_names))
    releases = [first_release(index, name) for name in names]
    since = _latest([r for r in releases if r is not None]) if all(releases) else None
    known: list[str] = []
    for name in names:
        replacement = index.replacement(name) if name.startswith(INDEXED_ROOT + ".") else None
        if replacement is None:
            known = []  # one name without a replacement: no fallback for the block
            break
        known.append(replacement.replacement)
    fallback = list(dict.fromkeys(known)) if known else None
    own = _own_comment_count(statement)
    lines = block_lines(names, since, fallback, terminate=own > 0)
    return PlannedBlock(statement, names, lines, complete=since is not None and fallback is not None)


def _run_length(statement: Statement) -> int:
    """How many full-line comments sit directly above the statement (no blank line between)."""
    run = 0
    for line in statement.above:
        run = 0 if line.comment is None else run + 1
    return run


def _own_comment_count(statement: Statement) -> int:
    return len(statement.comment_lines()) - _run_length(statement)


def judged_as_intended(plan: PlannedBlock, roots: Sequence[str]) -> bool:
    """Read the statement's comments with the block inserted, as the engine will: a complete block
    must be valid, a block with placeholders must be invalid (ESP102)."""
    statement = plan.statement
    existing = statement.comment_lines()
    run = _run_length(statement)
    new = [CommentLine(comment_body(cst.Comment(text)), cst.Comment(text)) for text in plan.lines]
    lines = [*existing[:run], *new, *existing[run:]]
    block = parse_block(lines, lambda module: private_names_in(module, statement.scope, roots), roots=roots)
    if block is None:
        return False
    return block.valid == plan.complete


def plan_documentation(
    judged: Judged, index: TorchIndex, roots: Sequence[str], *, statement_scope: bool
) -> tuple[list[PlannedBlock], dict[int, PlannedBlock]]:
    """One block per statement with an ESP101 finding, except where an earlier inserted (valid) block
    in an enclosing scope will already cover all its names. Returns the blocks to insert and, for
    each statement left alone because of such a block, that block (keyed by id(statement))."""
    statements: dict[int, Statement] = {}
    undocumented: dict[int, list[str]] = {}
    for _, reference in judged.references_for("ESP101"):
        statements[id(reference.statement)] = reference.statement
        undocumented.setdefault(id(reference.statement), []).append(reference.name)
    plans: list[PlannedBlock] = []
    covered: dict[int, PlannedBlock] = {}
    documents: list[PlannedBlock] = []
    for statement in sorted(statements.values(), key=lambda s: s.key):
        names = undocumented[id(statement)]
        if not statement_scope:
            covering = [_covering(statement, name, documents) for name in names]
            found = [block for block in covering if block is not None]
            if len(found) == len(covering):
                covered[id(statement)] = found[0]
                continue
        plan = plan_block(statement, index, roots)
        if not judged_as_intended(plan, roots):
            continue
        plans.append(plan)
        if plan.complete:
            documents.append(plan)
    return plans, covered


def _covering(statement: Statement, name: str, documents: Sequence[PlannedBlock]) -> PlannedBlock | None:
    """As documentation._covered_by_scope, for the blocks this fix is about to insert."""
    for document in documents:
        scope = document.statement.doc_scope
        if statement.doc_scope[: len(scope)] != scope or document.statement.key >= statement.key:
            continue
        if any(covers(documented, name) for documented in document.names):
            return document
    return None


def new_lines(plan: PlannedBlock) -> list[cst.EmptyLine]:
    """Comment lines at the statement's indentation, ending with the module's newline."""
    return [
        cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=cst.Comment(text), newline=cst.Newline())
        for text in plan.lines
    ]


def add_documentation(judged: Judged, state: FixState, edits: CommentEdits) -> None:
    """The ESP101 fixer: a block above each undocumented statement, but where a block inserted
    above it in its scope already covers it."""
    if not any(verdict.code == "ESP101" for verdict in judged.verdicts):
        return
    statement_scope = state.config.documentation_scope == "statement"
    blocks, covered = plan_documentation(judged, load_index(), state.config.roots, statement_scope=statement_scope)
    planned = {id(block.statement): block for block in blocks}
    for block in blocks:
        edits.insert[id(block.statement.node)] = new_lines(block)
        edits.targets.append(block.statement.node)
    for verdict, reference in judged.references_for("ESP101"):
        planned_block = planned.get(id(reference.statement))
        if planned_block is not None:
            what = "add a Private API documentation block"
            if not planned_block.complete:
                what += " with placeholders to fill in (still ESP102 until a person does)"
            edits.notes.append((verdict.anchor, "ESP101", reference.name, what))
        elif id(reference.statement) in covered:
            edits.notes.append(
                (verdict.anchor, "ESP101", reference.name, "covered by a Private API block added above it in its scope")
            )
