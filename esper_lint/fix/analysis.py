"""Judge a parsed module exactly as the engine does, but keep the nodes, so fixes can edit them."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from esper_lint.analysis.judge import Verdict
from esper_lint.analysis.knowledge import TorchKnowledge
from esper_lint.analysis.resolver import Collection, Reference, Statement
from esper_lint.config import Config
from esper_lint.engine import collect_and_judge, knowledge_for


@dataclass
class Judged:
    module: cst.Module
    collection: Collection
    verdicts: list[Verdict]  # only the codes enabled for the path, as `check` reports them
    knowledge: TorchKnowledge | None

    def references_for(self, code: str) -> list[tuple[Verdict, Reference]]:
        """The references behind the verdicts of one code (ESP101, ESP301: one per reference)."""
        by_anchor: dict[tuple[int, str], Reference] = {
            (id(reference.anchor), reference.name): reference for reference in self.collection.references
        }
        found = []
        for verdict in self.verdicts:
            if verdict.code != code or verdict.name is None:
                continue
            reference = by_anchor.get((id(verdict.anchor), verdict.name))
            if reference is not None:
                found.append((verdict, reference))
        return found

    def stale_statements(self) -> list[tuple[Verdict, Statement]]:
        """ESP103 verdicts with the statement whose comment block carries the marker."""
        wanted = {id(v.anchor): v for v in self.verdicts if v.code == "ESP103"}
        if not wanted:
            return []
        found = []
        for statement in self.collection.statements:
            if statement.uses_private():
                continue
            for line in statement.comment_lines():
                verdict = wanted.pop(id(line.node), None)
                if verdict is not None:
                    found.append((verdict, statement))
            if not wanted:
                break
        return found


def judge_module(module: cst.Module, raw: bytes, path: str, config: Config) -> Judged:
    """The engine's analysis (engine.analyse_source) without turning nodes into positions."""
    collection, verdicts, _ = collect_and_judge(module, raw, config)
    knowledge = knowledge_for(config) if collection.references else None
    enabled = [verdict for verdict in verdicts if config.enabled(verdict.code, path)]
    return Judged(module, collection, _not_suppressed(enabled, module, raw, config), knowledge)


def _not_suppressed(verdicts: list[Verdict], module: cst.Module, raw: bytes, config: Config) -> list[Verdict]:
    """Leave out what a `# noqa` comment suppresses, as `check` does (engine._apply_noqa): a fix
    never touches a line its author told the linter to leave alone."""
    from esper_lint.noqa import NoqaMap, may_have_noqa

    if not verdicts or not config.noqa or not may_have_noqa(raw):
        return verdicts
    from esper_lint.fast.positions import node_starts

    starts = node_starts(module, [verdict.anchor for verdict in verdicts])
    noqa = NoqaMap(raw)
    kept = []
    for verdict in verdicts:
        start = starts.get(id(verdict.anchor))
        directive = noqa.directive_for(start[0]) if start is not None else None
        if directive is None or not directive.suppresses(verdict.code):
            kept.append(verdict)
    return kept
