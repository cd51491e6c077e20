"""The engine: the pipeline from bytes to findings. Every front end (CLI, flake8, pre-commit,
`verify`, `inventory`) adapts it.

A file goes through the byte pre-check (`fast/precheck.py`), then the safe parse's guard
(`parsing.guard`: CPython's parser, which refuses what would crash libcst), then the reduction
(`fast/reduction.py`), and only then libcst (`parsing.parse`): the resolver (`analysis/resolver.py`)
and the judge (`analysis/judge.py`) read the reduced module, and `fast/positions.py` places the
findings. `force=True` skips the pre-check and the reduction and places findings by generating the
whole module: the slow reference the fast path is tested against.
"""

from __future__ import annotations

import _thread
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from esper_lint.analysis.forms import MARKER_BYTES
from esper_lint.fast.precheck import bytes_may_reference
from esper_lint.model import Analysis, Finding, ReferenceRecord

# Only what the byte pre-check needs is imported here. libcst, the reduction, the resolver and the
# judge load when the first file passes the pre-check, and the torch index when an index-backed code
# is enabled and a reference needs it: a pre-commit run over files without private uses, and
# flake8's start-up (it imports every plugin), never pay for them.
if TYPE_CHECKING:
    import ast

    import libcst as cst

    from esper_lint.analysis.judge import JudgedReference, Verdict
    from esper_lint.analysis.knowledge import TorchKnowledge
    from esper_lint.analysis.resolver import Collection, Statement
    from esper_lint.config import Config


def analyse_source(
    source: bytes | str,
    path: str,
    config: Config,
    *,
    with_references: bool = False,
    force: bool = False,
) -> Analysis:
    """Lint one file's contents. Never raises for bad input: that becomes ESP001.

    `force`: judge the whole file, whatever the pre-check and the reduction would say."""
    with _cycle_collection_paused():
        analysis = _analyse(source, path, config, with_references, force)
    _apply_noqa(analysis, source, config)
    if len(source) >= _KEEP_TREE_BELOW:
        from esper_lint.fast.memory import release_free_memory

        release_free_memory()
    return analysis


def _analyse(source: bytes | str, path: str, config: Config, with_references: bool, force: bool) -> Analysis:
    analysis = Analysis(path)
    raw = source.encode("utf-8") if isinstance(source, str) else source
    if not force and not (MARKER_BYTES.search(raw) or bytes_may_reference(raw, config.roots)):
        return analysis
    from esper_lint import parsing
    from esper_lint.fast.reduction import Reduction, reduce_source

    guarded = parsing.guard(raw, path)
    if guarded.failure is not None:
        analysis.findings.append(guarded.failure)
        return _filtered(analysis, config)
    tree = guarded.tree
    reduced: bytes | str | None = None
    # String annotations are read only when typing-only references are checked, and the
    # reduction does not look into strings: then libcst reads the whole file.
    if tree is not None and not force and not config.check_typing_only:
        try:
            reduction = reduce_source(raw, tree, config.roots)
        except RecursionError:
            reduction = Reduction(reportable=True, source=raw)
        if not reduction.reportable:
            return analysis
        if reduction.source is not raw:
            reduced = reduction.source.decode("utf-8") if isinstance(source, str) else reduction.source
            if len(raw) >= _KEEP_TREE_BELOW:
                tree = None  # the last reference: libcst's tree will not have to share memory with it
    del guarded
    # The guard's verdict once the engine has read it: the file is safe for libcst.
    parsed = parsing.parse(source, path, guarded=parsing.Guarded(None, None), reduced=reduced)
    if parsed.module is None:
        assert parsed.failure is not None
        analysis.findings.append(parsed.failure)
        return _filtered(analysis, config)
    analysis.parsed = True
    # A forced analysis places findings by generating the whole module: the reference the fast
    # placement is tested against. A reduced text without CPython's tree is parsed again by CPython
    # should a finding need placing.
    reparse = reduced is not None
    placing_tree = None if force else tree
    return parsing.on_big_stack(
        _judge_and_place, analysis, parsed.module, parsed.text, raw, config, with_references, placing_tree, reparse
    )


def _judge_and_place(
    analysis: Analysis,
    module: cst.Module,
    source: bytes | str,
    raw: bytes,
    config: Config,
    with_references: bool,
    tree: ast.Module | None,
    reparse: bool,
) -> Analysis:
    """`tree`: CPython's tree of `source`, which places statements; `reparse`: without one, parse
    `source` again with CPython should a finding need placing."""
    from esper_lint import parsing
    from esper_lint.analysis.judge import call_shape

    path = analysis.path
    try:
        collection, verdicts, judged = collect_and_judge(module, raw, config)
        anchors = [verdict.anchor for verdict in verdicts]
        if with_references:
            anchors.extend(item.reference.anchor for item in judged)
        if tree is None and reparse and anchors:
            tree = _statement_tree(source)
        starts = _anchor_starts(module, collection, anchors, tree, source) if anchors else {}
    except RecursionError:
        analysis.findings.append(parsing.unanalysable(path, 1, 1, "the code is nested too deeply to analyse"))
        return _filtered(analysis, config)
    for verdict in verdicts:
        line, column = starts.get(id(verdict.anchor), (1, 1))
        analysis.findings.append(Finding(path, line, column, verdict.code, _message(verdict), verdict.name))
    if with_references:
        for item in judged:
            line, column = starts.get(id(item.reference.anchor), (1, 1))
            analysis.references.append(
                ReferenceRecord(
                    item.reference.name,
                    line,
                    column,
                    item.documented,
                    item.reference.typing_only,
                    call_shape(item.reference.call) if item.reference.call is not None else None,
                )
            )
    return _filtered(analysis, config)


def _anchor_starts(
    module: cst.Module,
    collection: Collection,
    anchors: list[cst.CSTNode],
    tree: ast.Module | None,
    source: bytes | str,
) -> dict[int, tuple[int, int]]:
    """Positions of the anchors: generated statement by statement where CPython's tree places the
    statements, else by generating the module up to the last anchor."""
    from esper_lint.fast.positions import node_starts, starts_within_statements, statement_lines

    text = _text_of(source) if tree is not None else None
    if text is not None and tree is not None:
        lines = statement_lines(module, tree)
        grouped = _group_by_statement(collection, anchors) if lines is not None else None
        if lines is not None and grouped is not None:
            found = starts_within_statements(module, grouped, lines, text)
            if found is not None:
                return found
    return node_starts(module, anchors)


def _statement_tree(source: bytes | str) -> ast.Module | None:
    """CPython's tree of a reduced text: it keeps the statements and lines of the original.
    Should CPython refuse it, None: positions then come from generating the module."""
    from esper_lint import parsing

    return parsing.guard(source, "<reduced>").tree


def _text_of(source: bytes | str) -> str | None:
    if isinstance(source, str):
        return source
    if source.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        return source.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _group_by_statement(
    collection: Collection, anchors: list[cst.CSTNode]
) -> list[tuple[cst.CSTNode, list[cst.CSTNode]]] | None:
    owner = {id(reference.anchor): reference.statement for reference in collection.references}
    grouped: dict[int, tuple[cst.CSTNode, list[cst.CSTNode]]] = {}
    for anchor in anchors:
        statement = owner.get(id(anchor)) or _statement_with_comment(collection, anchor)
        if statement is None:
            return None
        grouped.setdefault(id(statement.node), (statement.node, []))[1].append(anchor)
    return list(grouped.values())


def _statement_with_comment(collection: Collection, comment: cst.CSTNode) -> Statement | None:
    """The statement whose documentation block holds `comment` (where ESP103 is placed)."""
    import libcst as cst

    if not isinstance(comment, cst.Comment):
        return None
    for statement in collection.statements:
        if any(line.node is comment for line in statement.comment_lines()):
            return statement
    return None


# From this size on, a file's CPython tree is dropped before libcst parses its reduced text, the
# reduced text (the same statements on the same lines) is parsed again by CPython to place the
# findings, and the memory freed afterwards goes back to the system (`fast/memory.py`). Torch's
# largest file (1.4 MB) needs 86 MB for the one tree and 117 MB for the other, and parsing the
# reduced text again costs a fraction of the first parse.
_KEEP_TREE_BELOW = 256 * 1024


# Parsing one file allocates hundreds of thousands of objects, nearly all freed by reference
# counting, yet each allocation burst runs CPython's cyclic collector, which rescans the trees
# still alive: through the CLI on torch's sources, 35.7 s of CPU instead of 27.6 s. The collector
# is paused while a file is analysed; once it resumes, its next young-generation pass frees the
# file's few cycles, so memory stays bounded by the largest file.
_pause_lock = _thread.allocate_lock()  # threading's Lock, without importing threading on a clean run
_pause_depth = 0
_resume_collector = False


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    global _pause_depth, _resume_collector
    with _pause_lock:
        if _pause_depth == 0:
            _resume_collector = gc.isenabled()
            gc.disable()
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _resume_collector:
                gc.enable()


def collect_and_judge(
    module: cst.Module, raw: bytes, config: Config
) -> tuple[Collection, list[Verdict], list[JudgedReference]]:
    """Resolve every private reference in a parsed module and judge it: the one analysis that
    `check`, `verify`, `inventory` and the fixer all share."""
    from esper_lint.analysis.judge import judge
    from esper_lint.analysis.resolver import ReferenceCollector

    collection = ReferenceCollector(config.roots, check_typing_only=config.check_typing_only).collect(module)
    verdicts, judged = judge(
        collection,
        roots=config.roots,
        statement_scope=config.documentation_scope == "statement",
        check_typing_only=config.check_typing_only,
        central=config.private_apis,
        marker_present=MARKER_BYTES.search(raw) is not None,
        knowledge=knowledge_for(config) if collection.references else None,
    )
    return collection, verdicts, judged


_knowledge: dict[str | None, TorchKnowledge] = {}


def knowledge_for(config: Config) -> TorchKnowledge | None:
    """One index-backed helper per supported range; None when the index rules are all disabled."""
    from esper_lint import catalog

    if not any(config.enabled(code) for code in catalog.index_codes()):
        return None
    if config.torch_versions not in _knowledge:
        from esper_lint.analysis.knowledge import TorchKnowledge

        _knowledge[config.torch_versions] = TorchKnowledge(config.torch_versions)
    return _knowledge[config.torch_versions]


def _message(verdict: Verdict) -> str:
    from esper_lint import catalog

    return catalog.message(verdict.code, name=verdict.name, details=verdict.details)


def may_find(raw: bytes, config: Config) -> bool:
    """False only where `analyse_source` surely returns an empty analysis (no finding, no
    reference): no marker, no root name near a private-looking one, and no unused-noqa check
    selected. The runner answers such files without the cache or a worker; it is the pre-check
    `_analyse` itself applies, so the two cannot disagree."""
    return bool(MARKER_BYTES.search(raw) or bytes_may_reference(raw, config.roots) or _unused_noqa_selected(config))


def _unused_noqa_selected(config: Config) -> bool:
    # ESP002, the one rule off by default, needs a selector more specific than ESP: checked first,
    # so that a clean file under the defaults loads nothing more and never matches per-file-ignores.
    from esper_lint.config import OFF_BY_DEFAULT

    selectors = (*config.select, *config.extend_select)
    return any(len(prefix) > len("ESP") and code.startswith(prefix) for code in OFF_BY_DEFAULT for prefix in selectors)


def _apply_noqa(analysis: Analysis, source: bytes | str, config: Config) -> None:
    """flake8's `# noqa` comments, for every front end (esper_lint/noqa.py), and ESP002 where enabled.
    A file with neither findings nor `# noqa` pays one byte search at most."""
    selected = _unused_noqa_selected(config)
    if not analysis.findings and not selected:
        return
    from esper_lint.noqa import UNUSED_NOQA, apply_noqa

    report = selected and config.enabled(UNUSED_NOQA, analysis.path)
    path = analysis.path

    def listed_enabled(listed: str) -> bool:
        from esper_lint import catalog

        known = [code for code in catalog.all_rules() if code.startswith(listed)]
        return not known or any(config.enabled(code, path) for code in known)

    def message(details: str) -> str:
        from esper_lint import catalog

        return catalog.message(UNUSED_NOQA, details=details)

    analysis.findings = sorted(
        apply_noqa(
            analysis.findings,
            source,
            path,
            report_unused=listed_enabled if report else None,
            message=message,
            suppress=config.noqa,
        ),
        key=Finding.sort_key,
    )


def _filtered(analysis: Analysis, config: Config) -> Analysis:
    analysis.findings = sorted(
        (f for f in analysis.findings if config.enabled(f.code, analysis.path)), key=Finding.sort_key
    )
    return analysis
