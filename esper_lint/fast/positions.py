"""Line and column of a few nodes, without libcst's PositionProvider.

PositionProvider records a range for every node and costs about twice the parse. Findings need
the start of a handful of nodes, so this runs libcst's plain code generation once, notes the token
index where each wanted node starts, and turns those indices into line and column at the end.
Generation stops as soon as the last wanted node has started: later code cannot move it.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import re
from collections.abc import Iterable, Sequence

import libcst as cst

# NOTE: Private API, stable since libcst 1.1 (the oldest libcst esper-lint supports): the code
# generator's state, as `Module.code_for_node` builds it, and the nodes' `_codegen` entry point
# that fills it; the subclass below notes where each wanted node starts. The public way,
# PositionProvider, costs about twice the parse.
# If this breaks in a future libcst, fallback is:
#   positions = cst.metadata.MetadataWrapper(module, unsafe_skip_copy=True).resolve(cst.metadata.PositionProvider)
#   starts = {id(node): (where.start.line, where.start.column + 1) for node, where in positions.items()}
from libcst._nodes.internal import CodegenState

from esper_lint.fast.reduction import first_line

_NEWLINE = re.compile(r"\r\n?|\n")


class _AllFound(Exception):
    pass


class _MarkingCodegenState(CodegenState):
    """libcst's code generator state, noting the token index where each wanted node starts.

    A plain subclass (libcst's state is a dataclass already), not a new dataclass: making one costs
    about 1 ms of import time on every pre-commit run."""

    __slots__ = ("starts", "wanted")

    def __init__(
        self, *, default_indent: str, default_newline: str, wanted: set[int], indent_tokens: list[str] | None = None
    ) -> None:
        super().__init__(
            default_indent=default_indent,
            default_newline=default_newline,
            indent_tokens=[] if indent_tokens is None else indent_tokens,
        )
        self.wanted = wanted
        self.starts: dict[int, int] = {}

    def before_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.wanted and key not in self.starts:
            self.starts[key] = len(self.tokens)
            if len(self.starts) == len(self.wanted):
                raise _AllFound


def node_starts(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, tuple[int, int]]:
    """Map id(node) to its (1-based line, 1-based column) start, columns counted in characters."""
    wanted = {id(node) for node in nodes}
    if not wanted:
        return {}
    state = _MarkingCodegenState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        wanted=wanted,
    )
    with contextlib.suppress(_AllFound):
        module._codegen(state)
    offsets: dict[int, int] = {}
    by_token = sorted((index, key) for key, index in state.starts.items())
    offset = 0
    token_index = 0
    tokens = state.tokens
    for index, key in by_token:
        while token_index < index:
            offset += len(tokens[token_index])
            token_index += 1
        offsets[key] = offset
    text = "".join(tokens)
    line_starts = [0] + [match.end() for match in _NEWLINE.finditer(text)]
    result: dict[int, tuple[int, int]] = {}
    for key, char_offset in offsets.items():
        line = bisect.bisect_right(line_starts, char_offset) - 1
        result[key] = (line + 1, char_offset - line_starts[line] + 1)
    return result


class _Unpaired(Exception):
    """libcst's and CPython's statements do not line up: use the whole-module codegen."""


def statement_lines(module: cst.Module, tree: ast.Module) -> dict[int, int] | None:
    """id(statement node) -> line of its first token, read off CPython's tree of the same text.

    Both trees come from text with the same lines (the reduction keeps them), so their statement
    lists pair up: a libcst line of `a; b` holds two CPython statements, a compound one holds one.
    Handlers, cases and `elif` branches are paired too. None when the two ever disagree.
    """
    lines: dict[int, int] = {}
    try:
        _pair_body(module.body, tree.body, lines)
    except (_Unpaired, IndexError, AttributeError):
        return None
    return lines


def _pair_body(statements: Sequence[cst.CSTNode], nodes: Sequence[ast.stmt], lines: dict[int, int]) -> None:
    index = 0
    for statement in statements:
        node = nodes[index]
        lines[id(statement)] = first_line(node)
        if isinstance(statement, cst.SimpleStatementLine):
            index += len(statement.body)
            continue
        index += 1
        _pair_compound(statement, node, lines)
    if index != len(nodes):
        raise _Unpaired


def _pair_suite(suite: cst.BaseSuite, nodes: Sequence[ast.stmt], lines: dict[int, int]) -> None:
    if isinstance(suite, cst.IndentedBlock):
        _pair_body(suite.body, nodes, lines)


_COMPOUND_PAIRS: dict[type, tuple[type, ...]] = {
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef),
    cst.ClassDef: (ast.ClassDef,),
    cst.If: (ast.If,),
    cst.For: (ast.For, ast.AsyncFor),
    cst.While: (ast.While,),
    cst.With: (ast.With, ast.AsyncWith),
    cst.Try: (ast.Try,),
    cst.Match: (ast.Match,),
}
if hasattr(cst, "TryStar") and hasattr(ast, "TryStar"):
    _COMPOUND_PAIRS[cst.TryStar] = (ast.TryStar,)


def _pair_compound(statement: cst.CSTNode, node: ast.stmt, lines: dict[int, int]) -> None:
    if not isinstance(node, _COMPOUND_PAIRS.get(type(statement), ())):
        raise _Unpaired
    if isinstance(statement, cst.If):
        assert isinstance(node, ast.If)
        _pair_suite(statement.body, node.body, lines)
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            lines[id(orelse)] = node.orelse[0].lineno
            _pair_compound(orelse, node.orelse[0], lines)
        elif isinstance(orelse, cst.Else):
            _pair_suite(orelse.body, node.orelse, lines)
        return
    if isinstance(statement, cst.Match):
        assert isinstance(node, ast.Match)
        if len(statement.cases) != len(node.cases):
            raise _Unpaired
        for case, ast_case in zip(statement.cases, node.cases, strict=True):
            lines[id(case)] = ast_case.pattern.lineno
            _pair_suite(case.body, ast_case.body, lines)
        return
    _pair_suite(statement.body, node.body, lines)  # type: ignore[attr-defined]
    handlers = getattr(statement, "handlers", ())
    if len(handlers) != len(getattr(node, "handlers", ())):
        raise _Unpaired
    for handler, ast_handler in zip(handlers, getattr(node, "handlers", ()), strict=True):
        lines[id(handler)] = ast_handler.lineno
        _pair_suite(handler.body, ast_handler.body, lines)
    orelse = getattr(statement, "orelse", None)
    if orelse is not None:
        _pair_suite(orelse.body, node.orelse, lines)  # type: ignore[attr-defined]
    final = getattr(statement, "finalbody", None)
    if final is not None:
        _pair_suite(final.body, node.finalbody, lines)  # type: ignore[attr-defined]


def starts_within_statements(
    module: cst.Module,
    anchored: Sequence[tuple[cst.CSTNode, Sequence[cst.CSTNode]]],
    lines: dict[int, int],
    text: str,
) -> dict[int, tuple[int, int]] | None:
    """Like `node_starts`, generating only the statements that hold the anchors.

    Each statement is generated on its own, indented as its first line is, so its text is the
    module's from its first leading line on. Every position is checked against `text` (the code
    libcst parsed): the anchor's own code must start there. None when a statement cannot be
    placed or a check fails.
    """
    text_lines = _NEWLINE.split(text)
    result: dict[int, tuple[int, int]] = {}
    for statement, anchors in anchored:
        first = lines.get(id(statement))
        if first is None:
            return None
        leading = len(getattr(statement, "leading_lines", ()))
        decorators = getattr(statement, "decorators", ())
        if decorators:
            leading += len(decorators[0].leading_lines)
        start_line = first - leading
        if start_line < 1 or first > len(text_lines):
            return None
        indent = text_lines[first - 1][: len(text_lines[first - 1]) - len(text_lines[first - 1].lstrip(" \t\f"))]
        state = _MarkingCodegenState(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            indent_tokens=[indent] if indent else [],
            wanted={id(anchor) for anchor in anchors},
        )
        try:
            if isinstance(statement, cst.If) and _is_elif(text_lines, first):
                statement._codegen(state, is_elif=True)  # on its own it would generate as `if`
            else:
                statement._codegen(state)
        except _AllFound:
            pass
        if len(state.starts) != len(state.wanted):
            return None
        tokens = state.tokens
        generated = "".join(tokens)
        line_starts = [0] + [match.end() for match in _NEWLINE.finditer(generated)]
        by_token = sorted((index, key) for key, index in state.starts.items())
        offset = token_index = 0
        for index, key in by_token:
            while token_index < index:
                offset += len(tokens[token_index])
                token_index += 1
            relative = bisect.bisect_right(line_starts, offset) - 1
            result[key] = (start_line + relative, offset - line_starts[relative] + 1)
    for _, anchors in anchored:
        for anchor in anchors:
            line, column = result[id(anchor)]
            code = _NEWLINE.split(module.code_for_node(anchor), 1)[0]
            if line > len(text_lines) or not text_lines[line - 1].startswith(code, column - 1):
                return None
    return result


def _is_elif(text_lines: Sequence[str], line: int) -> bool:
    return line <= len(text_lines) and text_lines[line - 1].lstrip(" \t\f").startswith("elif")
