"""A byte-level test that a file cannot hold anything esper-lint reports, so it is never parsed.

Soundness argument (tested on the fixtures and on torch's own sources): every finding needs either
the documentation marker text, or a private reference. A private reference needs the root's name in
the file (an import of it, or the bare name) and a private component written somewhere:
  * after a dot (`torch._x`, `from torch._x import`, `import torch._x`), dots and names possibly
    separated by whitespace, line continuations or comments inside brackets;
  * as an imported name (`from torch import _x`, also inside parentheses);
  * as a `getattr` string literal (`getattr(torch, "_x")`).
Anything that looks like one of these passes, so the test can only err towards parsing.
`self._x` alone never passes: the resolver never treats `self` as a torch name.

Library code is full of `obj._x` unrelated to torch, so a file that passes those byte tests but
does not write `torch._` literally gets a second, still conservative stage: CPython's `ast` (a
fraction of libcst's cost) and a flow- and scope-insensitive over-approximation of the resolver.
Every name that any import or assignment could bind to a torch value counts as torch, and the file
passes if a private attribute, import or `getattr` string hangs off such a name anywhere.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

MARKER_BYTES = re.compile(rb"private[ \t]+api", re.I)
# Each alternative consumes a distinct kind of byte and a comment runs to its line's end, so the
# loop cannot split one input several ways (no exponential backtracking on `# ## ###` lines).
# Dunders (`super().__init__`) are public and everywhere, so they do not count; `__x` does.
_PRIVATE_AFTER_DOT = re.compile(
    rb"\.(?:[ \t\f\r\n]|\\(?=[\r\n])|#[^\r\n]*(?=[\r\n]))*_(?!_[A-Za-z0-9_]*__(?![A-Za-z0-9_]))"
)
_IMPORT = re.compile(rb"\bimport\b")
_UNDERSCORE_WORD = re.compile(rb"(?<![\w.])_")
_QUOTED_UNDERSCORE = re.compile(rb"['\"]_")
_LINE_END = re.compile(rb"\r\n|\r|\n")


@lru_cache(maxsize=32)
def _root_pattern(roots: tuple[str, ...]) -> re.Pattern[bytes]:
    heads = sorted({root.split(".")[0] for root in roots})
    return re.compile(rb"(?<![\w])(?:" + b"|".join(re.escape(h.encode()) for h in heads) + rb")(?![\w])")


@lru_cache(maxsize=32)
def _direct_pattern(roots: tuple[str, ...]) -> re.Pattern[bytes]:
    """`torch._x` written literally: certain enough to skip the ast stage."""
    heads = sorted({root.split(".")[0] for root in roots})
    return re.compile(rb"(?<![\w.])(?:" + b"|".join(re.escape(h.encode()) for h in heads) + rb")\._")


@dataclass(frozen=True)
class Screening:
    """The pre-check's verdict, and whether CPython already parsed the file to reach it (the
    engine's guard against libcst's crash on deep nesting need not parse it again)."""

    report: bool
    parsed_by_cpython: bool = False


def may_report(source: bytes, roots: Sequence[str], *, use_ast: bool = True) -> bool:
    """False only when the file provably yields no finding."""
    return screen(source, roots, use_ast=use_ast).report


def screen(source: bytes, roots: Sequence[str], *, use_ast: bool = True) -> Screening:
    if MARKER_BYTES.search(source):
        return Screening(True)
    key = tuple(roots)
    if not _root_pattern(key).search(source):
        return Screening(False)
    if not (_has_private_attribute(source) or _has_private_import(source) or _has_getattr_string(source)):
        return Screening(False)
    if not use_ast or _direct_pattern(key).search(source):
        return Screening(True)
    return _ast_screen(source, key)


def _ast_screen(source: bytes, roots: tuple[str, ...]) -> Screening:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Screening(True)  # let the full parser report ESP001
    heads = {root.split(".")[0] for root in roots}
    try:
        return Screening(_OverApproximation(heads).may_reference(tree), parsed_by_cpython=True)
    except RecursionError:
        return Screening(True, parsed_by_cpython=True)


def _base_name(node: ast.AST) -> str | None:
    """The Name an attribute chain (through `getattr(x, ...)` calls) hangs off."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and node.args:
            node = node.args[0]
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _private(component: str) -> bool:
    return component.startswith("_") and not (len(component) > 4 and component.startswith("__") and component.endswith("__"))


class _OverApproximation:
    def __init__(self, heads: set[str]) -> None:
        self.heads = heads

    def _relevant_module(self, dotted: str | None) -> bool:
        return dotted is not None and dotted.split(".")[0] in self.heads

    def may_reference(self, tree: ast.AST) -> bool:
        candidates = set(self.heads)
        assignments: list[tuple[ast.AST, list[ast.AST]]] = []
        chains: list[ast.AST] = []
        for node in ast.walk(tree):
            kind = type(node)
            if kind is ast.Attribute:
                if _private(node.attr):
                    chains.append(node)
            elif kind is ast.Call:
                func = node.func
                if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
                    literal = node.args[1]
                    if isinstance(literal, ast.Constant) and isinstance(literal.value, str) and _private(literal.value):
                        chains.append(node)
            elif kind is ast.Import:
                for alias in node.names:
                    if self._relevant_module(alias.name):
                        if any(_private(part) for part in alias.name.split(".")):
                            return True
                        candidates.add(alias.asname or alias.name.split(".")[0])
            elif kind is ast.ImportFrom:
                if node.level == 0 and self._relevant_module(node.module):
                    if any(_private(part) for part in node.module.split(".")):  # type: ignore[union-attr]
                        return True
                    for alias in node.names:
                        if _private(alias.name):
                            return True
                        candidates.add(alias.asname or alias.name)
            elif kind is ast.Assign:
                assignments.append((node.value, node.targets))
            elif kind is ast.AnnAssign and node.value is not None:
                assignments.append((node.value, [node.target]))
            elif kind is ast.NamedExpr:
                assignments.append((node.value, [node.target]))
        if not chains:
            return False
        assignments = [
            ({n.id for n in ast.walk(value) if isinstance(n, ast.Name)}, [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)])
            for value, targets in assignments
        ]
        changed = True
        while changed:  # any name assigned from an expression mentioning a candidate may be torch
            changed = False
            for used, bound in assignments:
                if used & candidates and not candidates.issuperset(bound):
                    candidates.update(bound)
                    changed = True
        candidates.discard("self")
        return any(_base_name(chain) in candidates for chain in chains)


def _has_private_attribute(source: bytes) -> bool:
    for match in _PRIVATE_AFTER_DOT.finditer(source):
        start = match.start()
        if source[start - 4 : start] == b"self" and (start < 5 or not _is_name_or_dot(source[start - 5])):
            continue
        return True
    return False


def _is_name_or_dot(byte: int) -> bool:
    return byte == 0x2E or byte == 0x5F or 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A or byte >= 0x80


def _has_private_import(source: bytes) -> bool:
    for match in _IMPORT.finditer(source):
        if _UNDERSCORE_WORD.search(_import_region(source, match.end())):
            return True
    return False


def _import_region(source: bytes, start: int) -> bytes:
    """The names after `import`: up to `)` when parenthesised, else to the end of the logical line."""
    position = start
    while position < len(source) and source[position] in b" \t\f\\\r\n":
        if source[position] in b"\r\n" and source[position - 1 : position] != b"\\":
            break
        position += 1
    if source[position : position + 1] == b"(":
        end = source.find(b")", position)
        return source[position : end if end >= 0 else len(source)]
    end = position
    while True:
        line_end = _LINE_END.search(source, end)
        if line_end is None:
            return source[start:]
        if source[line_end.start() - 1 : line_end.start()] != b"\\":
            return source[start : line_end.start()]
        end = line_end.end()


def _has_getattr_string(source: bytes) -> bool:
    return b"getattr" in source and _QUOTED_UNDERSCORE.search(source) is not None
