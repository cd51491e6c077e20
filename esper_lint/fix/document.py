"""ESP101: insert a documentation block in the README's first layout above an undocumented statement.

A block is a fix (safe) only when everything it says is known: the "since" release of each of the
statement's private names, read from the torch index for that exact name (never from an indexed
module above it; "at least since" where the first indexed release is only a lower bound), and a
fallback, the public replacement the registry holds for each name. Anything less is a *template*
with visible placeholders that keep ESP102 firing, inserted only on request (`add_templates`,
`--add-templates`) and counted as a template, never as a fix.

With `documentation-scope = "scope"` one block (or template) goes above the first use in a scope
and covers the later uses in it; nothing is inserted in the `except` branch of a `try` whose body
uses a private API (the fallback idiom: the block of the `try` branch is the one to write). Lines
are wrapped to the project's line length (fix/style.py); a block that cannot fit is not inserted.
Each block is judged with the engine's own contract parser before it is inserted; one that would
not come out as intended (a complete block valid, a template invalid) is not inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.contract import CommentLine, comment_body, has_marker, parse_block
from esper_lint.analysis.judge import private_names_in
from esper_lint.analysis.resolver import Statement
from esper_lint.fix.analysis import Judged
from esper_lint.fix.edits import CommentEdits, FixState
from esper_lint.fix.safety import is_registry_entry
from esper_lint.fix.style import indentation_widths, project_line_length, wrap_comment
from esper_lint.fix.tree import walk
from esper_lint.names import covers, is_private
from esper_lint.torch_index import TorchIndex, load_index
from esper_lint.torch_index.versions import SpecifierError, parse_version

VERSION_PLACEHOLDER = "<VERSION>"
FALLBACK_PLACEHOLDER = "<FALLBACK: public code to use if this API disappears>"
INDEXED_ROOT = "torch"


@dataclass(frozen=True)
class Since:
    release: str
    at_least: bool  # the first indexed release: the name may be older


@dataclass
class PlannedBlock:
    statement: Statement
    names: list[str]
    lines: list[str]  # comment texts, each starting with '#'
    complete: bool  # no placeholder: the block documents the statement


def exact_since(index: TorchIndex, name: str) -> Since | None:
    """The first release having exactly `name`, when the index holds the name itself and it has
    been in every release since (no gap). None for names the index does not hold exactly: a name
    below an indexed module or namespace (`torch.ops._c10d_functional.x`, a project's own
    `torch.ops.mylib._x`) proves nothing about its own first release."""
    if not name.startswith(INDEXED_ROOT + "."):
        return None
    lookup = index.lookup(name)
    if lookup is None or not lookup.exact or not lookup.releases:
        return None
    releases = lookup.releases
    start = index.releases.index(releases[0]) if releases[0] in index.releases else -1
    if start < 0 or index.releases[start : start + len(releases)] != releases:
        return None  # absent from some release after its first: "stable since" would not be true
    lower_bound = getattr(lookup, "lower_bound", None)  # the index's own word, where it gives one
    if lower_bound is None:
        lower_bound = start == 0  # present in the first indexed release: it may predate the index
    return Since(releases[0], bool(lower_bound))


def block_since(index: TorchIndex, names: Sequence[str]) -> Since | None:
    """The release since which every name exists: the latest of their first releases."""
    found = [exact_since(index, name) for name in names]
    known = [since for since in found if since is not None]
    if len(known) != len(found) or not known:
        return None
    try:
        latest = max(parse_version(since.release) for since in known)
    except SpecifierError:
        return None
    at_latest = [since for since in known if parse_version(since.release) == latest]
    return Since(at_latest[0].release, all(since.at_least for since in at_latest))


def fallback_for(index: TorchIndex, name: str) -> str | None:
    """The public replacement the registry holds for `name` itself (not one mapped through a
    module's entry, which nothing proves exists), public in the newest indexed release, and
    drop-in: a suggestion (`_get_tracing_state` -> `is_tracing`: a TracingState against a bool)
    would write a fallback that behaves differently into the code as if it did not."""
    if not name.startswith(INDEXED_ROOT + "."):
        return None
    replacement = index.replacement(name)
    if replacement is None or is_private(replacement.replacement):
        return None
    if index.releases and index.releases[-1] not in replacement.releases:
        return None
    if not is_registry_entry(replacement, index):
        return None  # mapped through a module's entry: nothing proves the mapped name exists
    if replacement.applicability != "drop-in":
        return None
    return replacement.replacement


def block_lines(
    names: Sequence[str], since: Since | None, fallback: Sequence[str] | None, *, terminate: bool, width: int
) -> list[str] | None:
    """The block's comment lines, each at most `width` characters (None when one cannot be)."""
    shown = ", ".join(names)
    version = VERSION_PLACEHOLDER if since is None else since.release
    stable = "stable at least since" if since is not None and since.at_least else "stable since"
    lines = [
        *wrap_comment(["NOTE:", "Private API", *f"({shown}),".split(" "), *stable.split(" ")[:-1], f"since PyTorch {version}."], width),
        *wrap_comment(["If", "this", "breaks", "in", "future", "PyTorch,", "fallback is:"], width),
        *(f"#   {code}" for code in (fallback or [FALLBACK_PLACEHOLDER])),
    ]
    if terminate:
        lines.append("#")  # a blank comment line ends the fallback code before the statement's own comments
    if any(len(line) > width for line in lines):
        return None
    return lines


def plan_block(statement: Statement, index: TorchIndex, width: int) -> PlannedBlock | None:
    names = list(dict.fromkeys(statement.reference_names))
    since = block_since(index, names)
    found = [fallback_for(index, name) for name in names]
    fallback = list(dict.fromkeys(code for code in found if code is not None)) if all(found) else None
    own = _own_comment_count(statement)
    lines = block_lines(names, since, fallback, terminate=own > 0, width=width)
    if lines is None:
        return None
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


@dataclass
class DocumentationPlan:
    blocks: list[PlannedBlock]  # to insert: complete ones, and templates when asked for
    covered: dict[int, PlannedBlock]  # id(statement) -> the planned block above it in its scope that covers it
    templates_withheld: list[PlannedBlock]  # templates not inserted (no `add_templates`)


def plan_documentation(
    judged: Judged,
    index: TorchIndex,
    roots: Sequence[str],
    *,
    statement_scope: bool,
    add_templates: bool = False,
    widths: dict[int, int] | None = None,
) -> DocumentationPlan:
    """A block above the first statement with an ESP101 finding in each documentation scope (each
    statement with `statement_scope`), unless a block above it in an enclosing scope (planned here,
    or a `Private API` block already in the file, valid or not) covers all its names. `widths`
    maps id(statement node) to the room its comment lines have (default 88)."""
    statements: dict[int, Statement] = {}
    undocumented: dict[int, list[str]] = {}
    for _, reference in judged.references_for("ESP101"):
        statements[id(reference.statement)] = reference.statement
        undocumented.setdefault(id(reference.statement), []).append(reference.name)
    plan = DocumentationPlan([], {}, [])
    if not statements:
        return plan
    except_branches = except_branches_of_fallback_idioms(judged)
    documents: list[tuple[Statement, Sequence[str], PlannedBlock | None]] = [
        (statement, statement.reference_names, None)
        for statement in judged.collection.statements
        if statement.reference_names and has_marker(statement.comment_lines())
    ]
    for statement in sorted(statements.values(), key=lambda s: s.key):
        if id(statement.node) in except_branches:
            continue  # the fallback of a try/except idiom: the `try` branch's block is the one to write
        names = undocumented[id(statement)]
        if not statement_scope:
            covering = [_covering(statement, name, documents) for name in names]
            if all(found is not None for found in covering):
                block = next((found[2] for found in covering if found is not None and found[2] is not None), None)
                if block is not None:
                    plan.covered[id(statement)] = block
                continue
        width = (widths or {}).get(id(statement.node), 88)
        block = plan_block(statement, index, width)
        if block is None or not judged_as_intended(block, roots):
            continue
        if not block.complete and not add_templates:
            plan.templates_withheld.append(block)
            continue
        plan.blocks.append(block)
        documents.append((statement, block.names, block))
    return plan


def except_branches_of_fallback_idioms(judged: Judged) -> set[int]:
    """ids of the statement nodes inside the `except` handlers of a `try` whose body has a
    statement referencing a private name."""
    with_private = {id(statement.node) for statement in judged.collection.statements if statement.reference_names}
    found: set[int] = set()
    for node in walk(judged.module):
        if isinstance(node, (cst.Try, cst.TryStar)) and any(id(inner) in with_private for inner in walk(node.body)):
            for handler in node.handlers:
                found.update(id(inner) for inner in walk(handler))
    return found


def _covering(
    statement: Statement, name: str, documents: Sequence[tuple[Statement, Sequence[str], PlannedBlock | None]]
) -> tuple[Statement, Sequence[str], PlannedBlock | None] | None:
    """As judge._covered_by_scope, for the blocks already in the file and those about to be inserted."""
    for document in documents:
        scope = document[0].doc_scope
        if statement.doc_scope[: len(scope)] != scope or document[0].key >= statement.key:
            continue
        if any(covers(documented, name) for documented in document[1]):
            return document
    return None


def new_lines(plan: PlannedBlock) -> list[cst.EmptyLine]:
    """Comment lines at the statement's indentation, ending with the module's newline."""
    return [
        cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=cst.Comment(text), newline=cst.Newline())
        for text in plan.lines
    ]


TEMPLATE_NOTE = "insert a documentation template with placeholders to fill in (ESP102 until a person does)"


def add_documentation(judged: Judged, state: FixState, edits: CommentEdits) -> None:
    """The ESP101 fixer: a complete block above the first undocumented statement of each scope
    where one can be written, and with `add_templates` a template where it cannot."""
    if not any(verdict.code == "ESP101" for verdict in judged.verdicts):
        return
    statement_scope = state.config.documentation_scope == "statement"
    statements = {id(reference.statement.node): reference.statement.node for _, reference in judged.references_for("ESP101")}
    length = project_line_length(state.config.project_root)
    widths = {key: length - indent for key, indent in indentation_widths(judged.module, state.source, statements.values()).items()}
    plan = plan_documentation(
        judged,
        load_index(),
        state.config.roots,
        statement_scope=statement_scope,
        add_templates=state.add_templates,
        widths=widths,
    )
    planned = {id(block.statement): block for block in plan.blocks}
    withheld = {id(block.statement) for block in plan.templates_withheld}
    for block in plan.blocks:
        edits.insert[id(block.statement.node)] = new_lines(block)
        edits.targets.append(block.statement.node)
    noted: set[int] = set()
    for verdict, reference in judged.references_for("ESP101"):
        key = id(reference.statement)
        planned_block = planned.get(key)
        if planned_block is not None and planned_block.complete:
            edits.notes.append((verdict.anchor, "ESP101", reference.name, "add a Private API documentation block"))
        elif planned_block is not None:
            if key not in noted:  # one template per block, however many names it lists
                noted.add(key)
                edits.templates.add(id(verdict.anchor))
                edits.notes.append((verdict.anchor, "ESP101", reference.name, TEMPLATE_NOTE))
        elif key in plan.covered and plan.covered[key].complete:
            edits.notes.append(
                (verdict.anchor, "ESP101", reference.name, "covered by a Private API block added above it in its scope")
            )
        elif key in withheld and key not in noted:
            noted.add(key)
            state.withhold_template(verdict.anchor, "ESP101", reference.name, TEMPLATE_NOTE)
