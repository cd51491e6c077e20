"""ESP103 (unsafe): remove a stale documentation block, i.e. the comments that make it one.

Removed: from the marker line of the comment run above the statement down to the statement (or to
the first blank comment line after the marker, which ends a fallback), and every comment on the
statement's own lines that carries the marker. Comments above the marker line stay.
"""

from __future__ import annotations

import libcst as cst

from esper_lint.analysis.contract import comment_body
from esper_lint.analysis.forms import MARKER
from esper_lint.analysis.resolver import Statement
from esper_lint.fix.analysis import Judged
from esper_lint.fix.edits import CommentEdits, FixState


def comments_to_remove(statement: Statement) -> list[cst.Comment]:
    run: list[cst.Comment] = []
    for line in statement.above:
        run = [] if line.comment is None else [*run, line.comment]
    removed: list[cst.Comment] = []
    for index, comment in enumerate(run):
        if MARKER.search(comment_body(comment)):
            for later in run[index:]:
                removed.append(later)
                if later is not comment and not comment_body(later).strip():
                    break
            break
    own = statement.comment_lines()[len(run):]
    removed.extend(line.node for line in own if MARKER.search(line.body))
    return removed


def remove_stale_blocks(judged: Judged, state: FixState, edits: CommentEdits) -> None:
    """The ESP103 fixer: every stale block's comments are removed."""
    kind, apply = state.decide("ESP103", "safe")  # the rule's cap: unsafe, since it deletes a person's words
    for verdict, statement in judged.stale_statements():
        comments = comments_to_remove(statement)
        if not comments:
            continue
        description = f"remove the stale Private API block ({len(comments)} comment line(s))"
        if not apply:
            state.withhold(verdict.anchor, "ESP103", None, description, kind, "it deletes a person's words")
            continue
        edits.remove.update(id(comment) for comment in comments)
        edits.targets.extend(comments)
        edits.notes.append((verdict.anchor, "ESP103", None, description))
