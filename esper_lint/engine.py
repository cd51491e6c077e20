"""The engine: bytes in, findings out. Every front end (CLI, flake8, pre-commit) adapts this.

A file goes through the byte pre-check (`precheck`), then CPython's parser (the guard against
libcst's crash on deep nesting), then the reduction (`pruning`), and only then libcst: the
resolver (`collector`) and the contract (`documentation`) judge the reduced module, and
`positions` places the findings. `force=True` skips the pre-check and the reduction and places
findings by generating the whole module: the slow reference the fast path is tested against.
"""

from __future__ import annotations

import ast
import gc
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import libcst as cst

from esper_lint import catalog
from esper_lint.big_stack import BigStackRunner
from esper_lint.collector import Collection, ReferenceCollector, Statement
from esper_lint.config import Config
from esper_lint.documentation import JudgedReference, Verdict, judge
from esper_lint.findings import Finding
from esper_lint.knowledge import TorchKnowledge
from esper_lint.memory import release_free_memory
from esper_lint.patterns import MARKER_BYTES
from esper_lint.positions import node_starts, starts_within_statements, statement_lines
from esper_lint.precheck import bytes_may_reference
from esper_lint.pruning import Reduction, reduce_source


@dataclass(frozen=True)
class ReferenceRecord:
    """A private reference with its place and verdict, for `verify` and `inventory`."""

    name: str
    line: int
    column: int
    documented: bool
    typing_only: bool


@dataclass
class Analysis:
    path: str
    findings: list[Finding] = field(default_factory=list)
    references: list[ReferenceRecord] = field(default_factory=list)
    parsed: bool = False


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
    if len(source) >= _KEEP_TREE_BELOW:
        release_free_memory()
    return analysis


def _analyse(source: bytes | str, path: str, config: Config, with_references: bool, force: bool) -> Analysis:
    analysis = Analysis(path)
    raw = source.encode("utf-8") if isinstance(source, str) else source
    if not force and not (MARKER_BYTES.search(raw) or bytes_may_reference(raw, config.roots)):
        return analysis
    tree, too_deep = _cpython_tree(path, raw)
    if too_deep is not None:
        analysis.findings.append(too_deep)
        return _filtered(analysis, config)
    # String annotations are read only when typing-only references are checked, and the
    # reduction does not look into strings: then libcst reads the whole file.
    if tree is not None and not force and not config.check_typing_only:
        try:
            reduction = reduce_source(raw, tree, config.roots)
        except RecursionError:
            reduction = Reduction(True, raw)
        if not reduction.reportable:
            return analysis
        if reduction.source is not raw:
            reduced = reduction.source.decode("utf-8") if isinstance(source, str) else reduction.source
            if len(raw) >= _KEEP_TREE_BELOW:
                tree = None  # the last reference: libcst's tree will not have to share memory with it
            return _big_stack.call(_analyse_parsed, analysis, reduced, raw, path, config, with_references, tree, source, True)
    # A forced analysis places findings by generating the whole module: the reference the fast
    # placement is tested against.
    return _big_stack.call(_analyse_parsed, analysis, source, raw, path, config, with_references, None if force else tree)


def _analyse_parsed(
    analysis: Analysis,
    source: bytes | str,
    raw: bytes,
    path: str,
    config: Config,
    with_references: bool,
    tree: ast.Module | None = None,
    original: bytes | str | None = None,
    reparse: bool = False,
) -> Analysis:
    """`tree`: CPython's tree of `source`, which places statements; `reparse`: without one, parse
    `source` again with CPython should a finding need placing."""
    try:
        module = _parse_unvalidated(source)
    except Exception as exc:  # libcst raises assorted errors on odd bytes; each is a clear ESP001
        if original is not None:
            # The reduction is built to parse; should it ever not, the whole file is judged.
            return _analyse_parsed(analysis, original, raw, path, config, with_references, tree, None, reparse)
        analysis.findings.append(_parse_failure(path, raw, exc))
        return _filtered(analysis, config)
    analysis.parsed = True
    try:
        with _deep_recursion():
            collection, verdicts, judged = collect_and_judge(module, raw, config)
            anchors = [verdict.anchor for verdict in verdicts]
            if with_references:
                anchors.extend(item.reference.anchor for item in judged)
            if tree is None and reparse and anchors:
                tree = _statement_tree(source)
            starts = _anchor_starts(module, collection, anchors, tree, source) if anchors else {}
    except RecursionError:
        analysis.findings.append(_unparsable(path, 1, 1, "the code is nested too deeply to analyse"))
        return _filtered(analysis, config)
    for verdict in verdicts:
        line, column = starts.get(id(verdict.anchor), (1, 1))
        analysis.findings.append(
            Finding(path, line, column, verdict.code, _message(verdict), verdict.name)
        )
    if with_references:
        for item in judged:
            line, column = starts.get(id(item.reference.anchor), (1, 1))
            analysis.references.append(
                ReferenceRecord(item.reference.name, line, column, item.documented, item.reference.typing_only)
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
    return _cpython_tree("<reduced>", source)[0]


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
    if not isinstance(comment, cst.Comment):
        return None
    for statement in collection.statements:
        if any(line.node is comment for line in statement.comment_lines()):
            return statement
    return None


# libcst's native parser recurses on the C stack without a depth limit: about 5,000 nested
# lambdas, conditional expressions or attribute accesses overflow an 8 MiB stack and kill the whole
# process (SIGSEGV), and far deeper input also takes minutes. CPython's own parser refuses such input
# cleanly (at most 200 nested brackets, and a parser stack of 6,000 levels), so each file goes
# through it first, and libcst then runs on a thread whose stack has room for anything CPython took.
_BIG_STACK = 512 * 1024 * 1024
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# From this size on, a file's CPython tree is dropped before libcst parses its reduced text, the
# reduced text (the same statements on the same lines) is parsed again by CPython to place the
# findings, and the memory freed afterwards goes back to the system (`memory.py`). Torch's largest
# file (1.4 MB) needs 86 MB for the one tree and 117 MB for the other, and parsing the reduced text
# again costs a fraction of the first parse.
_KEEP_TREE_BELOW = 256 * 1024
_NESTING_MESSAGES = ("too many nested parentheses", "too many levels of indentation", "too complex")


def _cpython_tree(path: str, raw: bytes | str) -> tuple[ast.Module | None, Finding | None]:
    """CPython's tree, or ESP001 when CPython finds the code nested too deeply, or neither (a
    syntax error, which libcst then parses and words)."""
    try:
        with warnings.catch_warnings():  # invalid escapes and the like are not ours to report
            warnings.simplefilter("ignore")
            return compile(raw, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True), None
    except SyntaxError as exc:
        if exc.lineno and any(text in str(exc.msg) for text in _NESTING_MESSAGES):
            return None, _unparsable(path, exc.lineno, exc.offset or 1, f"syntax error: {exc.msg}")
    except (RecursionError, MemoryError):
        return None, _unparsable(path, 1, 1, "the code is nested too deeply to parse")
    except ValueError:
        pass  # e.g. NUL bytes on older Pythons: libcst reports it
    return None, None


# Parsing one file allocates hundreds of thousands of objects, nearly all freed by reference
# counting, yet each allocation burst runs CPython's cyclic collector, which rescans the trees
# still alive: through the CLI on torch's sources, 35.7 s of CPU instead of 27.6 s. The collector
# is paused while a file is analysed; once it resumes, its next young-generation pass frees the
# file's few cycles, so memory stays bounded by the largest file.
_pause_lock = threading.Lock()
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


_big_stack = BigStackRunner(_BIG_STACK)


@contextmanager
def _deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """Long generated expressions (`a + b + ...` thousands deep) nest the tree that deep."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def collect_and_judge(
    module: cst.Module, raw: bytes, config: Config
) -> tuple[Collection, list[Verdict], list[JudgedReference]]:
    """Resolve every private reference in a parsed module and judge it: the one analysis that
    `check`, `verify`, `inventory` and the fixer all share."""
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
    if not any(config.enabled(code) for code in ("ESP201", "ESP202", "ESP301")):
        return None
    if config.torch_versions not in _knowledge:
        _knowledge[config.torch_versions] = TorchKnowledge(config.torch_versions)
    return _knowledge[config.torch_versions]


def _message(verdict: Verdict) -> str:
    if verdict.code == "ESP102":
        return catalog.message(verdict.code, name=verdict.name, problems=verdict.details)
    return catalog.message(verdict.code, name=verdict.name, details=verdict.details)


def _unparsable(path: str, line: int, column: int, reason: str) -> Finding:
    return Finding(path, max(line, 1), max(column, 1), "ESP001", catalog.message("ESP001", reason=reason), None)


def _syntax_error(path: str, raw: bytes, exc: cst.ParserSyntaxError) -> Finding:
    """Place and word a syntax error as CPython does; libcst's messages list every expected token."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(raw, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as cpython:
        if cpython.lineno:
            return _unparsable(path, cpython.lineno, cpython.offset or 1, f"syntax error: {cpython.msg}")
        nul = raw.find(b"\0")
        if nul >= 0:  # CPython gives no position for NUL bytes: point at the first one
            line = len(_LINE_BREAK.findall(raw, 0, nul)) + 1
            column = nul - max(raw.rfind(b"\n", 0, nul), raw.rfind(b"\r", 0, nul))
            return _unparsable(path, line, column, f"syntax error: {cpython.msg}")
    except (ValueError, RecursionError, MemoryError) as other:
        return _unparsable(path, exc.raw_line, exc.raw_column + 1, f"syntax error: {other}")
    # CPython accepts it but libcst cannot parse it (syntax newer than this libcst knows).
    return _unparsable(path, exc.raw_line, exc.raw_column + 1, f"libcst cannot parse this syntax: {exc.message}")


_validation_lock = threading.Lock()


def _parse_unvalidated(source: bytes | str) -> cst.Module:
    """`cst.parse_module` without re-validating each node as libcst's parser builds it.

    Every libcst node checks its own fields on construction (`CSTNode.__post_init__`), which is a
    fifth of the parse; nodes that libcst's parser builds from text it accepted are valid by
    construction (libcst's own comment there says as much). Nodes built outside this call, as
    the fixer's are, are still checked. Where a libcst release moves that hook, this is a plain
    parse.
    """
    hook = cst.CSTNode.__dict__.get("__post_init__")
    if hook is None:
        return cst.parse_module(source)
    with _validation_lock:
        cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        try:
            return cst.parse_module(source)
        finally:
            cst.CSTNode.__post_init__ = hook  # type: ignore[method-assign]


def _no_validation(self: cst.CSTNode) -> None:
    return None


def _parse_failure(path: str, raw: bytes, exc: Exception) -> Finding:
    if isinstance(exc, cst.ParserSyntaxError):
        return _syntax_error(path, raw, exc)
    if isinstance(exc, UnicodeDecodeError):
        line = raw[: exc.start].count(b"\n") + 1
        return _unparsable(path, line, 1, f"cannot decode the file: {exc.reason} ({exc.encoding})")
    if isinstance(exc, RecursionError):
        return _unparsable(path, 1, 1, "the code is nested too deeply to parse")
    return _unparsable(path, 1, 1, _describe(exc))


def _describe(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\s+", " ", text)
    return f"cannot parse: {text[:200]}"


def _filtered(analysis: Analysis, config: Config) -> Analysis:
    analysis.findings = sorted(
        (f for f in analysis.findings if config.enabled(f.code, analysis.path)), key=Finding.sort_key
    )
    return analysis
