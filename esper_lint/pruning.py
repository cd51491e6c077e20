"""Cut a file down to the statements that can change its findings, before libcst parses it.

libcst's parse costs about ten times CPython's, and in most files that use a private torch API only
a few statements matter. CPython's `ast` (which the engine runs anyway, as its guard against libcst
crashing on deep nesting) shows which: a statement is kept when it, or a statement nested in it,
  * imports anything, or says `global`/`nonlocal` (they steer name resolution, and are cheap);
  * binds, in any way, a name that may hold a torch value;
  * writes a private attribute or a private `getattr` string off such a name;
  * has the documentation marker on one of its lines.
A name may hold a torch value when it is a root, is imported from one, or is assigned a chain
(`a.b`, `getattr(a, "b")`, or a tuple of those) that hangs off such a name: flow- and
scope-insensitive, to a fixed point, so a superset of what the resolver can ever bind to torch.
The handlers of a kept `try` stay whole: the try/except fallback compares what they bind.

Every other statement becomes `pass` at its own indentation, its remaining lines left empty. Each
body keeps its number of statements and each kept statement its lines, columns and comments, so
statement keys, documentation blocks, scope coverage and positions are those of the full file.
A compound statement followed by comment or blank lines indented deeper than itself is not
replaced but entered: libcst gives such lines to the blocks it closes, and a `pass` in its place
would hand them to the next statement instead.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from esper_lint.names import is_private_component

_MARKER_LINE = re.compile(rb"private[ \t]+api", re.I)
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)
_BOM = b"\xef\xbb\xbf"
_INDENT = re.compile(rb"[ \t\f]*")
_STATEMENT_LISTS = ("body", "orelse", "finalbody")
_NAMED_KINDS = tuple(
    getattr(ast, kind) for kind in ("MatchAs", "MatchStar", "TypeVar", "ParamSpec", "TypeVarTuple") if hasattr(ast, kind)
)


@dataclass(frozen=True)
class Reduction:
    """`reportable` False: the file provably yields no finding. `source`: the text to parse
    (the original bytes when nothing could be cut)."""

    reportable: bool
    source: bytes


@dataclass(eq=False)
class _Facts:
    """What one statement's own code (not its nested statements) binds and reaches."""

    node: ast.stmt
    bound: set[str] = field(default_factory=set)
    bases: set[str] = field(default_factory=set)
    always: bool = False
    bodies: list[tuple[list[_Facts], bool]] = field(default_factory=list)  # (statements, reducible)
    needed: bool = False


def reduce_source(raw: bytes, tree: ast.Module, roots: Sequence[str]) -> Reduction:
    """Decide whether `raw` (which CPython parsed into `tree`) can yield findings, and cut it down."""
    statements, reportable = _read(tree, roots, _marker_lines(raw))
    if not reportable:
        return Reduction(False, raw)
    return Reduction(True, _cut(raw, statements))


def may_reference(tree: ast.Module, roots: Sequence[str]) -> bool:
    """Whether the parsed file may write a private reference (the marker is the caller's test)."""
    return _read(tree, roots, [])[1]


def _read(tree: ast.Module, roots: Sequence[str], marker_lines: list[int]) -> tuple[list[_Facts], bool]:
    reader = _Reader({root.split(".")[0] for root in roots})
    statements = reader.body(tree.body)
    # The resolver never takes `self` for torch, so neither its bindings nor its chains matter.
    candidates = reader.candidates() - {"self"}
    reaches = _decide(statements, candidates, marker_lines)
    return statements, reaches or reader.private_import or bool(marker_lines)


class _Reader:
    def __init__(self, heads: set[str]) -> None:
        self.heads = heads
        self.seeds = set(heads)
        self.flows: list[tuple[set[str], list[str]]] = []  # (bases of an assigned chain, names it binds)
        self.private_import = False

    def body(self, statements: Iterable[ast.stmt]) -> list[_Facts]:
        return [self.statement(node) for node in statements]

    def statement(self, node: ast.stmt) -> _Facts:
        facts = _Facts(node)
        kind = type(node)
        if kind is ast.Import or kind is ast.ImportFrom:
            facts.always = True
            self._import(node, facts)  # type: ignore[arg-type]
            return facts
        if kind is ast.Global or kind is ast.Nonlocal:
            facts.always = True
            return facts
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            facts.bound.add(node.name)  # type: ignore[attr-defined]
        elif kind is ast.Assign:
            self.flows.append((_chain_bases(node.value), _names_in(node.targets)))  # type: ignore[attr-defined]
        elif kind is ast.AnnAssign and node.value is not None:  # type: ignore[attr-defined]
            self.flows.append((_chain_bases(node.value), _names_in([node.target])))  # type: ignore[attr-defined]
        for name, value in ast.iter_fields(node):
            if name in _STATEMENT_LISTS and isinstance(value, list):
                facts.bodies.append((self.body(value), True))
            elif name == "handlers":
                for handler in value:
                    if handler.name:
                        facts.bound.add(handler.name)
                    if handler.type is not None:
                        self._scan(handler.type, facts)
                    facts.bodies.append((self.body(handler.body), False))
            elif name == "cases":
                for case in value:
                    self._scan(case.pattern, facts)
                    if case.guard is not None:
                        self._scan(case.guard, facts)
                    facts.bodies.append((self.body(case.body), True))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self._scan(item, facts)
            elif isinstance(value, ast.AST):
                self._scan(value, facts)
        return facts

    def _import(self, node: ast.Import | ast.ImportFrom, facts: _Facts) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                facts.bound.add(local)
                if alias.name.split(".")[0] in self.heads:
                    self.seeds.add(local)
                    if any(is_private_component(part) for part in alias.name.split(".")):
                        self.private_import = True
            return
        relevant = node.level == 0 and node.module is not None and node.module.split(".")[0] in self.heads
        if relevant and any(is_private_component(part) for part in node.module.split(".")):  # type: ignore[union-attr]
            self.private_import = True
        for alias in node.names:
            local = alias.asname or alias.name
            facts.bound.add(local)
            if relevant:
                self.seeds.add(local)
                if is_private_component(alias.name):
                    self.private_import = True

    def _scan(self, root: ast.AST, facts: _Facts) -> None:
        for node in ast.walk(root):
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                    facts.bound.add(node.id)  # type: ignore[attr-defined]
            elif kind is ast.Attribute:
                if is_private_component(node.attr):  # type: ignore[attr-defined]
                    base = _base_name(node)
                    if base is not None:
                        facts.bases.add(base)
            elif kind is ast.Call:
                if _private_getattr(node):  # type: ignore[arg-type]
                    base = _base_name(node)
                    if base is not None:
                        facts.bases.add(base)
            elif kind is ast.arg:
                facts.bound.add(node.arg)  # type: ignore[attr-defined]
            elif kind is ast.NamedExpr:
                self.flows.append((_chain_bases(node.value), _names_in([node.target])))  # type: ignore[attr-defined]
            elif kind in _NAMED_KINDS:
                if getattr(node, "name", None):
                    facts.bound.add(node.name)  # type: ignore[attr-defined]
            elif kind is ast.MatchMapping:
                if node.rest:  # type: ignore[attr-defined]
                    facts.bound.add(node.rest)  # type: ignore[attr-defined]

    def candidates(self) -> set[str]:
        found = set(self.seeds)
        changed = True
        while changed:
            changed = False
            for bases, names in self.flows:
                if bases & found and not found.issuperset(names):
                    found.update(names)
                    changed = True
        return found


def _decide(statements: list[_Facts], candidates: set[str], marker_lines: list[int]) -> bool:
    """Mark the statements that must stay; True when some private reference may be written."""
    reaches = False
    for facts in statements:
        nested = False
        for body, _ in facts.bodies:
            reaches = _decide(body, candidates, marker_lines) or reaches
            nested = nested or any(child.needed for child in body)
        writes = bool(facts.bases & candidates)
        reaches = reaches or writes
        facts.needed = (
            facts.always
            or nested
            or writes
            or bool(facts.bound & candidates)
            or _has_marker(facts.node, marker_lines)
        )
    return reaches


def _cut(raw: bytes, statements: list[_Facts]) -> bytes:
    bom = raw.startswith(_BOM)
    text = raw[len(_BOM) :] if bom else raw
    if not _offsets_match_bytes(text):
        return raw
    lines = text.splitlines(keepends=True)
    changed = _Cutter(lines).body(statements, reducible=True)
    if not changed:
        return raw
    return (_BOM if bom else b"") + b"".join(lines)


def _offsets_match_bytes(text: bytes) -> bool:
    """`ast` columns are UTF-8 byte offsets: only a UTF-8 file's bytes can be cut by them."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    cookie = _CODING.search(b"\n".join(text.splitlines()[:2]))
    if cookie is not None and cookie.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return text.isascii()
    return True


class _Cutter:
    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def body(self, statements: list[_Facts], *, reducible: bool) -> bool:
        changed = False
        for index, facts in enumerate(statements):
            if reducible and not facts.needed and self._replaceable(statements, index):
                self._replace(facts.node)
                changed = True
            else:
                for body, inner_reducible in facts.bodies:
                    changed = self.body(body, reducible=reducible and inner_reducible) or changed
        return changed

    def _replaceable(self, statements: list[_Facts], index: int) -> bool:
        node = statements[index].node
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return False  # docstrings stay: a `from __future__` import must follow one
        first, last = _first_line(node), node.end_lineno or node.lineno
        if index > 0 and (statements[index - 1].node.end_lineno or 0) >= first:
            return False  # `a; b` on one line
        if index + 1 < len(statements) and _first_line(statements[index + 1].node) <= last:
            return False
        line = self.lines[first - 1]
        indent = _INDENT.match(line).end()  # type: ignore[union-attr]
        if getattr(node, "decorator_list", None):
            if line[indent : indent + 1] != b"@":
                return False
        elif indent != node.col_offset:
            return False  # shares its line with a header (`if x: y`) or an `elif`
        if line[indent:].startswith(b"elif"):
            return False
        return not (statements[index].bodies and self._footer_may_follow(last, line[:indent]))

    def _footer_may_follow(self, last: int, indent: bytes) -> bool:
        """Whether libcst may give lines after a compound statement to the blocks it closes.

        libcst's footer of an indented block runs over the comment and blank lines that follow it,
        up to the last one that starts with the block's indentation, which is longer than the
        statement's own. A line whose leading whitespace is a prefix of the statement's cannot.
        """
        for line in self.lines[last:]:
            stripped = line.lstrip(b" \t\f")
            if stripped.strip() and not stripped.startswith(b"#"):
                return False  # code: the run of comment and blank lines is over
            own = line[: len(line) - len(stripped)] if stripped.strip() else line.rstrip(b"\r\n")
            if not indent.startswith(own):
                return True
        return False

    def _replace(self, node: ast.stmt) -> None:
        first, last = _first_line(node), node.end_lineno or node.lineno
        line = self.lines[first - 1]
        indent = line[: _INDENT.match(line).end()]  # type: ignore[union-attr]
        self.lines[first - 1] = indent + b"pass" + _line_end(line)
        for number in range(first, last):
            self.lines[number] = _line_end(self.lines[number])


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    return min(node.lineno, *(d.lineno for d in decorators)) if decorators else node.lineno


def _line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    if line.endswith((b"\n", b"\r")):
        return line[-1:]
    return b""


def _marker_lines(raw: bytes) -> list[int]:
    if not _MARKER_LINE.search(raw):
        return []
    return [number for number, line in enumerate(raw.splitlines(), start=1) if _MARKER_LINE.search(line)]


def _has_marker(node: ast.stmt, marker_lines: list[int]) -> bool:
    if not marker_lines:
        return False
    first = _first_line(node)
    position = bisect.bisect_left(marker_lines, first)
    return position < len(marker_lines) and marker_lines[position] <= (node.end_lineno or node.lineno)


def _base_name(node: ast.AST) -> str | None:
    """The name an attribute chain (through `getattr(x, ...)` calls) hangs off."""
    while True:
        kind = type(node)
        if kind is ast.Attribute:
            node = node.value  # type: ignore[attr-defined]
        elif kind is ast.Call and _is_getattr(node):  # type: ignore[arg-type]
            node = node.args[0]  # type: ignore[attr-defined]
        elif kind is ast.Name:
            return node.id  # type: ignore[attr-defined]
        else:
            return None


def _chain_bases(value: ast.expr) -> set[str]:
    """Names an assigned value may carry a torch binding from: the resolver binds only chains."""
    if isinstance(value, (ast.Tuple, ast.List)):
        found: set[str] = set()
        for element in value.elts:
            found |= _chain_bases(element)
        return found
    if isinstance(value, ast.Starred):
        return _chain_bases(value.value)
    base = _base_name(value)
    return {base} if base is not None else set()


def _names_in(targets: Sequence[ast.expr]) -> list[str]:
    """The names an assignment binds (attribute and subscript targets bind none)."""
    found: list[str] = []
    for target in targets:
        if isinstance(target, ast.Name):
            found.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            found.extend(_names_in(target.elts))
        elif isinstance(target, ast.Starred):
            found.extend(_names_in([target.value]))
    return found


def _is_getattr(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Name) and node.func.id == "getattr" and bool(node.args)


def _private_getattr(node: ast.Call) -> bool:
    if not _is_getattr(node) or len(node.args) < 2:
        return False
    literal = node.args[1]
    return isinstance(literal, ast.Constant) and isinstance(literal.value, str) and is_private_component(literal.value)
