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
Every part of a kept `try` stays whole: the try/except fallback compares what its handlers and its
body bind. A statement whose lines say `hasattr` or name torch's version (`forms.VERSION_BYTES`)
stays unthinned, and so do the bodies of an `if` or `while` whose test says it (a guard's early
`return` matters); so does a statement that reads a name bound on such a line (`IS_TORCH_2_3`, a
version helper: `_version_names`), or an `if` testing a version flag (`WITH_PT23`). A file that
probes a torch name with `getattr(obj, "_x", default)` is not cut at all: the test that settles the
probe may be anywhere.

Every other statement becomes `pass` at its own indentation, its remaining lines emptied and
joined to it by backslashes (one logical line: libcst builds one node, not one per line). Each
body keeps its number of statements and each kept statement its lines, columns and comments, so
statement keys, documentation blocks, scope coverage and positions are those of the full file.
A compound statement followed by comment or blank lines indented deeper than itself is not
replaced but entered: libcst gives such lines to the blocks it closes, and a `pass` in its place
would hand them to the next statement instead.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from esper_lint.analysis.forms import (
    GUARD_BYTES,
    MARKER_BYTES,
    NAMED_ATTRIBUTE_CALLS,
    NAMED_STRING_BYTES,
    PATCH_OBJECT,
    PATCH_PATH_METHODS,
    PATH_CALLS,
    PRIVATE_AFTER_DOT_SOURCE,
    STRING_CALLS,
    STRING_USE,
    VERSION_BYTES,
    looks_like_version_flag,
)
from esper_lint.names import is_private_component

_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)
_BOM = b"\xef\xbb\xbf"
_INDENT = re.compile(rb"[ \t\f]*")
_LONE_CR = re.compile(rb"\r(?!\n)")
_STATEMENT_LISTS = ("body", "orelse", "finalbody")
_NAMED_KINDS = tuple(
    getattr(ast, kind) for kind in ("MatchAs", "MatchStar", "TypeVar", "ParamSpec", "TypeVarTuple") if hasattr(ast, kind)
)


# A named tuple, not a frozen dataclass: a dataclass costs about 1 ms of import time on every
# pre-commit run.
class Reduction(NamedTuple):
    """`reportable` False: the file provably yields no finding. `source`: the text to parse
    (the original bytes when nothing could be cut)."""

    reportable: bool
    source: bytes


class _Facts:
    """What one statement's own code (not its nested statements) binds and reaches.

    A plain slotted class: one is made per statement, and a dataclass's default factories cost
    more than the rest of the reading of a simple statement."""

    __slots__ = ("always", "bases", "bodies", "bound", "needed", "node")

    def __init__(self, node: ast.stmt) -> None:
        self.node = node
        self.bound: set[str] = set()
        self.bases: set[str] = set()
        self.always = False
        self.bodies: list[tuple[list[_Facts], bool]] = []  # (statements, reducible)
        self.needed = False


def reduce_source(raw: bytes, tree: ast.Module, roots: Sequence[str]) -> Reduction:
    """Decide whether `raw` (which CPython parsed into `tree`) can yield findings, and cut it down."""
    bom = raw.startswith(_BOM)
    text = raw[len(_BOM) :] if bom else raw  # CPython's lines and columns start after a BOM
    lines = text.splitlines(keepends=True)
    marker_lines = _marker_lines(text, lines)
    starts = [0, *itertools.accumulate(map(len, lines))]
    guard_lines = _guard_lines(text, lines)
    statements, candidates, reportable, probes = _read(
        tree, roots, marker_lines, _hot_line_counts(text, starts), guard_lines, _version_names(tree, text, guard_lines)
    )
    if not reportable:
        return Reduction(reportable=False, source=raw)
    if probes:
        return Reduction(reportable=True, source=raw)
    has_cr = b"\r" in text
    if not _offsets_match_bytes(text) or (has_cr and _LONE_CR.search(text)):
        # An emptied line after a lone CR would join it into one CRLF line break.
        return Reduction(reportable=True, source=raw)
    cutter = _Cutter(lines, candidates, marker_lines, lf_only=not has_cr, guard_lines=guard_lines)
    if not cutter.body(statements, reducible=True, module=True):
        return Reduction(reportable=True, source=raw)
    return Reduction(reportable=True, source=(_BOM if bom else b"") + b"".join(lines))


def may_reference(tree: ast.Module, roots: Sequence[str]) -> bool:
    """Whether the parsed file may write a private reference (the marker is the caller's test)."""
    return _read(tree, roots, [])[2]


def _read(
    tree: ast.Module,
    roots: Sequence[str],
    marker_lines: list[int],
    hot_counts: list[int] | None = None,
    guard_lines: list[int] | None = None,
    version_names: frozenset[str] = frozenset(),
) -> tuple[list[_Facts], set[str], bool, bool]:
    """(statements, candidates, whether a private reference may be written, whether a `getattr`
    probe with a default may be)."""
    reader = _Reader({root.split(".")[0] for root in roots}, hot_counts, guard_lines or [], version_names)
    statements = reader.body(tree.body)
    # The resolver never takes `self` for torch, so neither its bindings nor its chains matter.
    candidates = reader.candidates() - {"self"}
    reaches = _decide(statements, candidates, marker_lines)
    probes = bool(reader.probe_bases & candidates)
    return statements, candidates, reaches or reader.private_import or bool(marker_lines), probes


def _guard_lines(text: bytes, lines: list[bytes]) -> list[int]:
    """The lines that say `hasattr` or name torch's version: their statements stay, unthinned."""
    if not (GUARD_BYTES.search(text) or VERSION_BYTES.search(text)):
        return []
    return [number for number, line in enumerate(lines, start=1) if GUARD_BYTES.search(line) or VERSION_BYTES.search(line)]


def _version_names(tree: ast.Module, text: bytes, guard_lines: list[int]) -> frozenset[str]:
    """Names that may mean a version test (`analysis/version_branches.py`): bound by an assignment
    or a definition on a line that names torch's version, or by an assignment reading such a name
    (to a fixed point). A statement that reads one stays, and an `if` testing one keeps its bodies."""
    if not VERSION_BYTES.search(text):
        return frozenset()
    names: set[str] = set()
    assignments: list[tuple[list[str], set[str]]] = []
    for node in ast.walk(tree):
        kind = type(node)
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            if _spans_a_line(node, guard_lines):  # type: ignore[arg-type]
                names.add(node.name)  # type: ignore[attr-defined]
        elif kind is ast.Assign or kind is ast.AnnAssign:
            targets = _names_in(node.targets if kind is ast.Assign else [node.target])  # type: ignore[attr-defined]
            if _spans_a_line(node, guard_lines):  # type: ignore[arg-type]
                names.update(targets)
            elif node.value is not None:  # type: ignore[attr-defined]
                loads = {n.id for n in ast.walk(node.value) if type(n) is ast.Name}  # type: ignore[attr-defined]
                assignments.append((targets, loads))
    changed = True
    while changed:
        changed = False
        for targets, loads in assignments:
            if loads & names and not names.issuperset(targets):
                names.update(targets)
                changed = True
    return frozenset(names)


def _spans_a_line(node: ast.stmt, lines: list[int]) -> bool:
    first, last = first_line(node), node.end_lineno or node.lineno
    position = bisect.bisect_left(lines, first)
    return position < len(lines) and lines[position] <= last


# Text that may put a private chain, a `getattr` string or a binding inside an expression: a line
# without any of it needs no expression walk, only its statement's own binding targets. Any
# non-ASCII byte counts: Python reads identifiers in NFKC form (`getattr` in mathematical bold
# letters is `getattr`).
_HOT = re.compile(
    PRIVATE_AFTER_DOT_SOURCE
    + rb"|"
    + NAMED_STRING_BYTES.pattern
    + rb"|\blambda\b|\bfor\b|:=|\bcase\b|[\x80-\xff]+"
)


def _hot_line_counts(text: bytes, starts: list[int]) -> list[int]:
    """counts[n]: how many of lines 1..n some `_HOT` match touches (a match may span lines).

    One scan of the file, then a statement's lines are tested in constant time. Every line a
    match touches counts, so a statement is never quieter than a search of its own lines finds."""
    touched = bytearray(len(starts))  # by line number; index 0 stands for "before line 1"
    for match in _HOT.finditer(text):
        first = bisect.bisect_right(starts, match.start())
        last = bisect.bisect_right(starts, match.end() - 1)
        touched[first : last + 1] = b"\x01" * (last - first + 1)
    return list(itertools.accumulate(touched))


class _Reader:
    def __init__(
        self,
        heads: set[str],
        hot_counts: list[int] | None = None,
        guard_lines: list[int] | None = None,
        version_names: frozenset[str] = frozenset(),
    ) -> None:
        self.heads = heads
        self.version_names = version_names  # see `_version_names`
        self.hot_counts = hot_counts  # see `_hot_line_counts`; None: the quiet path is never taken
        self.guard_lines = guard_lines or []  # the lines that say `hasattr`
        self.seeds = set(heads)
        self.flows: list[tuple[set[str], list[str]]] = []  # (bases of an assigned chain, names it binds)
        self.private_import = False
        self.probe_bases: set[str] = set()  # what `getattr(obj, "_x", default)` probes hang off

    def body(self, statements: Iterable[ast.stmt]) -> list[_Facts]:
        return [self.statement(node) for node in statements]

    def statement(self, node: ast.stmt) -> _Facts:
        facts = _Facts(node)
        kind = type(node)
        if kind is ast.Import or kind is ast.ImportFrom:
            facts.always = self._import(node, facts)  # type: ignore[arg-type]
            return facts
        if kind is ast.Global or kind is ast.Nonlocal:
            facts.always = True
            return facts
        quiet = self._quiet(node)
        # A guard (`hasattr`) stays, and the bodies of an `if`/`while` testing one stay whole: an
        # early `return` under `if not hasattr(...)` guards the rest of its block.
        guard = self._says_guard(node)
        facts.always = guard
        # Every part of a `try` stays whole: which statements of its body the handlers fall back for
        # depends on what each binds (the flag idiom: `HAS_X = True` after the import).
        whole = guard or kind in _TRY_KINDS
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            facts.bound.add(node.name)  # type: ignore[attr-defined]
            if quiet and kind is not ast.ClassDef:
                arguments = node.args  # type: ignore[attr-defined]
                for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg):
                    if arg is not None:
                        facts.bound.add(arg.arg)
        elif kind is ast.Assign:
            self.flows.append((_chain_bases(node.value), _names_in(node.targets)))  # type: ignore[attr-defined]
        elif kind is ast.AnnAssign and node.value is not None:  # type: ignore[attr-defined]
            self.flows.append((_chain_bases(node.value), _names_in([node.target])))  # type: ignore[attr-defined]
        for name, value in ast.iter_fields(node):
            if name in _STATEMENT_LISTS and isinstance(value, list):
                facts.bodies.append((self.body(value), not (whole and name != "finalbody")))
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
            elif quiet:
                if name in _TARGET_FIELDS:
                    facts.bound.update(_names_in(value if isinstance(value, list) else [value]))
                elif name == "items":  # with ... as target
                    facts.bound.update(_names_in([item.optional_vars for item in value if item.optional_vars]))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self._scan(item, facts)
            elif isinstance(value, ast.AST):
                self._scan(value, facts)
        return facts

    def _says_guard(self, node: ast.stmt) -> bool:
        """Whether a simple statement, or the test of an `if`/`while`, has a line that says `hasattr`,
        or the test names a version flag (`typing.WITH_PT23`: `version_branches.Opaque`)."""
        lines = self.guard_lines
        kind = type(node)
        if not lines and kind is not ast.If and kind is not ast.While:
            return False
        if kind is ast.If or kind is ast.While:
            test = node.test  # type: ignore[attr-defined]
            if _tests_a_version_flag(test, self.version_names):
                return True
            first, last = test.lineno, test.end_lineno or test.lineno
        elif kind in _COMPOUND_KINDS:
            return False
        else:
            if self.version_names and _tests_a_version_flag(node, self.version_names):
                return True  # `x = a if IS_TORCH_2_3 else b`, `assert TORCH_MINOR >= 3`
            first, last = node.lineno, node.end_lineno or node.lineno
        position = bisect.bisect_left(lines, first)
        return position < len(lines) and lines[position] <= last

    def _quiet(self, node: ast.stmt) -> bool:
        """Whether no line of the statement's own code (its header, for a compound) is hot."""
        counts = self.hot_counts
        if counts is None or type(node) not in _QUIET_KINDS:
            return False
        body = getattr(node, "body", None)
        # Through the body's first line: the header may end on it (`def f() -> T: ...`).
        last = first_line(body[0]) if body else (node.end_lineno or node.lineno)
        first = first_line(node)
        if not 1 <= first <= last < len(counts):
            return False
        return counts[last] == counts[first - 1]

    def _import(self, node: ast.Import | ast.ImportFrom, facts: _Facts) -> bool:
        """Read an import; True when it must stay whatever it binds: it imports from a root (a
        private module can be imported without binding a private name), or from `__future__`."""
        if isinstance(node, ast.Import):
            relevant = False
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                facts.bound.add(local)
                if alias.name.split(".")[0] in self.heads:
                    relevant = True
                    self.seeds.add(local)
                    if any(is_private_component(part) for part in alias.name.split(".")):
                        self.private_import = True
            return relevant
        if node.module == "__future__":
            return True
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
        return relevant

    def _scan(self, root: ast.AST, facts: _Facts) -> None:
        # `ast.walk` visits every `Load()` and operator node through generic field iteration; this
        # walk reads only the fields that can hold code, which makes it about three times faster.
        stack: list[object] = [root]
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                    facts.bound.add(node.id)  # type: ignore[attr-defined]
                continue
            if kind is ast.Attribute:
                if is_private_component(node.attr):  # type: ignore[attr-defined]
                    base = _base_name(node)
                    if base is not None:
                        facts.bases.add(base)
                stack.append(node.value)  # type: ignore[attr-defined]
                continue
            if kind is ast.Constant:
                head = _private_path_head(node.value)  # type: ignore[attr-defined]
                if head is not None:  # `mock.patch("torch._x.y")`: a whole dotted path from a root
                    facts.bases.add(head)
                continue
            if kind in _LEAVES:
                continue
            if kind is ast.Call:
                if _private_getattr(node):  # type: ignore[arg-type]
                    base = _base_name(node)
                    if base is not None:
                        facts.bases.add(base)
                    if len(node.args) >= 3 and base is not None:  # type: ignore[attr-defined]
                        self.probe_bases.add(base)
                elif _private_string_use(node):  # type: ignore[arg-type]
                    # `setattr(torch.backends, "_x", v)`, `mock.patch.object(torch._C, "_x")`
                    base = _base_name(node.args[0])  # type: ignore[attr-defined]
                    if base is not None:
                        facts.bases.add(base)
            elif kind is ast.arg:
                facts.bound.add(node.arg)  # type: ignore[attr-defined]
            elif kind is ast.NamedExpr:
                self.flows.append((_chain_bases(node.value), _names_in([node.target])))  # type: ignore[attr-defined]
            elif kind in _NAMED_KINDS:
                if getattr(node, "name", None):
                    facts.bound.add(node.name)  # type: ignore[attr-defined]
            elif kind is ast.MatchMapping and node.rest:  # type: ignore[attr-defined]
                facts.bound.add(node.rest)  # type: ignore[attr-defined]
            for name in _code_fields(kind):
                value = getattr(node, name)
                if type(value) is list:
                    stack.extend(value)
                elif value is not None:
                    stack.append(value)

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
    def __init__(
        self, lines: list[bytes], candidates: set[str], marker_lines: list[int], lf_only: bool, guard_lines: list[int]
    ) -> None:
        self.guard_lines = guard_lines  # a guard or version test is read whole: never thinned
        self.lines = lines
        self.candidates = candidates
        self.marker_lines = marker_lines
        self.lf_only = lf_only  # every line but perhaps the last ends in a plain b"\n"

    def body(self, statements: list[_Facts], *, reducible: bool, module: bool = False) -> bool:
        changed = False
        for index, facts in enumerate(statements):
            if module and index == 0 and _is_docstring(facts.node):
                continue  # a `from __future__` import may only follow the module's docstring
            if reducible and not facts.needed and self._replaceable(statements, index):
                self._replace(facts.node)
                changed = True
            elif not facts.bodies:
                changed = self._thin(facts.node) or changed
            else:
                if type(facts.node) in _HEADER_FIELDS:
                    changed = self._thin(facts.node) or changed
                for body, inner_reducible in facts.bodies:
                    changed = self.body(body, reducible=reducible and inner_reducible) or changed
        return changed

    def _replaceable(self, statements: list[_Facts], index: int) -> bool:
        node = statements[index].node
        first, last = first_line(node), node.end_lineno or node.lineno
        if index > 0 and (statements[index - 1].node.end_lineno or 0) >= first:
            return False  # `a; b` on one line
        if index + 1 < len(statements) and first_line(statements[index + 1].node) <= last:
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
        if self._continues(last, node.end_col_offset):
            return False  # `pass \` then `;` on the next line: the logical line goes on past the statement
        return not (statements[index].bodies and self._footer_may_follow(last, line[:indent]))

    def _continues(self, last: int, end: int | None) -> bool:
        """Whether line `last` ends, after the statement's end, in a backslash continuation."""
        tail = self.lines[last - 1][end or 0 :].rstrip(b"\r\n").strip(b" \t\f")
        return tail.endswith(b"\\") and not tail.startswith(b"#")

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
        first, last = first_line(node), node.end_lineno or node.lineno
        lines = self.lines
        indent = lines[first - 1][: _INDENT.match(lines[first - 1]).end()]  # type: ignore[union-attr]
        # Several lines become one logical line, `pass \` joined to its emptied continuation
        # lines: libcst then builds one statement, not a blank-line node for every line.
        if last > first and self.lf_only and lines[last - 1].endswith(b"\n"):
            lines[first - 1] = indent + b"pass \\\n"
            lines[first : last - 1] = [b"\\\n"] * (last - first - 1)
            lines[last - 1] = b"\n"
            return
        ends = [_line_end(lines[number]) for number in range(first - 1, last)]
        joined = last > first and ends[-1] != b""  # a backslash may not end the file
        lines[first - 1] = indent + (b"pass \\" if joined else b"pass") + ends[0]
        for number in range(first, last):
            lines[number] = (b"\\" if joined and number < last - 1 else b"") + ends[number - first + 1]


    # ------------------------------------------------------------- inside a kept simple statement
    def _thin(self, node: ast.stmt) -> bool:
        """Replace the call arguments and display elements that hold no private reference.

        Each becomes `0` padded with spaces to its width; lines it spanned inside the brackets are
        left empty. Assigned tuples and lists keep their elements (the resolver binds them one by
        one), `getattr`/`hasattr` calls keep their arguments, and so do f-strings. Comments inside
        a replaced span go with it, so statements with the marker on or directly above their lines
        are left alone: there every comment may belong to their documentation block.
        """
        if type(node) in _NO_CODE_STATEMENTS:
            return False
        fields = _HEADER_FIELDS.get(type(node))
        last = node.end_lineno or node.lineno
        if fields is not None:  # a definition: only its header, up to its body
            last = first_line(node.body[0])  # type: ignore[attr-defined]  # (it may end there)
        if self._documentation_nearby(first_line(node), last) or _spans_a_line(node, self.guard_lines):
            return False
        spans: list[ast.expr] = []
        protected: set[int] = set()
        for value in _assigned_values(node):
            _protect_displays(value, protected)
        thinner = _Thinner(self.candidates, protected, spans)
        try:
            if fields is None:
                thinner.visit(node, replaceable=0)
            else:
                for name in fields:
                    # a class's bases sit inside its parentheses, like call arguments
                    thinner.visit_field(getattr(node, name, None), replaceable=2 if name == "bases" else 0)
        except RecursionError:
            return False
        for span in sorted(spans, key=lambda span: (span.lineno, span.col_offset), reverse=True):
            self._blank_span(span)
        return bool(spans)

    def _documentation_nearby(self, first: int, last: int) -> bool:
        if not self.marker_lines:
            return False
        while first > 1 and self.lines[first - 2].lstrip(b" \t\f").startswith(b"#"):
            first -= 1  # the comment run directly above
        position = bisect.bisect_left(self.marker_lines, first)
        return position < len(self.marker_lines) and self.marker_lines[position] <= last

    def _blank_span(self, node: ast.expr) -> None:
        first, last = node.lineno, node.end_lineno or node.lineno
        start, end = node.col_offset, node.end_col_offset or 0
        if first == last:
            line = self.lines[first - 1]
            width = len(line[start:end].decode("utf-8"))
            self.lines[first - 1] = line[:start] + b"0" + b" " * (width - 1) + line[end:]
            return
        line = self.lines[first - 1]
        self.lines[first - 1] = line[:start] + b"0" + _line_end(line)
        for number in range(first, last - 1):
            self.lines[number] = _line_end(self.lines[number])
        line = self.lines[last - 1]
        # Spaces as wide, in characters, as what they replace: later columns stay put.
        self.lines[last - 1] = b" " * len(line[:end].decode("utf-8")) + line[end:]


_TARGET_FIELDS = frozenset({"targets", "target"})
# Calls whose arguments are read together with a string: `getattr`/`hasattr`, `setattr`/`delattr`,
# `mock.patch(...)`, `mock.patch.object(...)`, `importlib.import_module(...)`, `monkeypatch.setattr(...)`.
_WHOLE_ARGUMENT_NAMES = STRING_CALLS | NAMED_ATTRIBUTE_CALLS | PATH_CALLS
_WHOLE_ARGUMENT_METHODS = NAMED_ATTRIBUTE_CALLS | PATH_CALLS | PATCH_PATH_METHODS | {PATCH_OBJECT}
_TRY_KINDS = frozenset({ast.Try} | ({ast.TryStar} if hasattr(ast, "TryStar") else set()))
_COMPOUND_KINDS = frozenset(
    {ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef}
    | _TRY_KINDS
    | ({ast.Match} if hasattr(ast, "Match") else set())
)
# Statements whose only bindings, outside hot text, are their targets and parameters.
_QUIET_KINDS = frozenset(
    {ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise, ast.Assert, ast.Delete}
    | {ast.Pass, ast.Break, ast.Continue, ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith}
    | {ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Try}
)

# The header of a definition: what may be thinned while its body is reduced statement by statement.
_HEADER_FIELDS: dict[type, tuple[str, ...]] = {
    ast.FunctionDef: ("decorator_list", "args", "returns", "type_params"),
    ast.AsyncFunctionDef: ("decorator_list", "args", "returns", "type_params"),
    ast.ClassDef: ("decorator_list", "bases", "keywords", "type_params"),
}
_NO_CODE_STATEMENTS = frozenset({ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue})


class _Thinner:
    """Finds the maximal replaceable expressions that reach no private reference."""

    def __init__(self, candidates: set[str], protected: set[int], spans: list[ast.expr]) -> None:
        self.candidates = candidates
        self.protected = protected
        self.spans = spans

    def visit_field(self, value: object, *, replaceable: int) -> None:
        if type(value) is list:
            for item in value:
                self.visit(item, replaceable=0 if type(item) is ast.Starred else replaceable)
        elif value is not None:
            self.visit(value, replaceable=replaceable)

    def visit(self, node: object, *, replaceable: int) -> bool:
        """Whether `node` reaches a private reference or binds; records it as a span when not.

        `replaceable`: 0 no, 1 when on one line (a tuple's element may be outside brackets), 2 yes.
        """
        kind = type(node)
        if kind is ast.Name or kind in _LEAVES:
            return False
        if kind is ast.Constant:
            head = _private_path_head(node.value)  # type: ignore[attr-defined]
            if head is not None and head in self.candidates:
                return True  # `mock.patch("torch._x.y")`: the string is the reference
            if replaceable:
                self._maybe_span(node, replaceable)  # type: ignore[arg-type]
            return False
        reaches = False
        inner = 2
        if kind is ast.Attribute:
            if is_private_component(node.attr) and _base_name(node) in self.candidates:  # type: ignore[attr-defined]
                reaches = True
        elif kind is ast.Call:
            if _private_getattr(node) and _base_name(node) in self.candidates:  # type: ignore[arg-type]
                reaches = True
            elif _private_string_use(node) and _base_name(node.args[0]) in self.candidates:  # type: ignore[arg-type, attr-defined, operator]
                reaches = True
                inner = 0  # the owner and the string are read together
            func = node.func  # type: ignore[attr-defined]
            if (type(func) is ast.Name and func.id in _WHOLE_ARGUMENT_NAMES) or (
                type(func) is ast.Attribute and func.attr in _WHOLE_ARGUMENT_METHODS
            ):
                inner = 0  # a string argument may be the reference (`analysis/strings.py`)
        elif kind is ast.NamedExpr:
            reaches = True
        elif kind is ast.Tuple or kind is ast.List:
            if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                replaceable = inner = 0  # an assignment or `del` target
            elif id(node) in self.protected:
                inner = 0
            else:
                inner = 1 if kind is ast.Tuple else 2
        elif kind is ast.Set:
            inner = 2
        first_span = len(self.spans)
        for name in _code_fields(kind):
            value = getattr(node, name)
            slot = inner if (kind, name) in _SLOTS else 0
            if type(value) is list:
                for item in value:
                    if item is not None:
                        reaches = self.visit(item, replaceable=0 if type(item) is ast.Starred else slot) or reaches
            elif value is not None:
                reaches = self.visit(value, replaceable=slot) or reaches
        if kind is ast.JoinedStr:
            del self.spans[first_span:]  # f-string positions are unreliable before Python 3.12
            return reaches
        if replaceable and not reaches:
            del self.spans[first_span:]  # the whole node goes instead
            self._maybe_span(node, replaceable)  # type: ignore[arg-type]
        return reaches

    def _maybe_span(self, node: ast.expr, replaceable: int) -> None:
        if type(node) is ast.GeneratorExp:
            return  # a sole generator argument's position covers the call's parentheses
        if node.end_lineno == node.lineno:
            if (node.end_col_offset or 0) - node.col_offset <= 1:
                return  # nothing to gain
        elif replaceable < 2:
            return
        self.spans.append(node)


# (node class, field) pairs whose items sit inside brackets (a definition's parameters are inside
# its parentheses) and may each become `0`.
_SLOTS = frozenset(
    {(ast.Call, "args"), (ast.keyword, "value"), (ast.List, "elts"), (ast.Set, "elts")}
    | {(ast.Tuple, "elts"), (ast.Dict, "keys"), (ast.Dict, "values"), (ast.Subscript, "slice")}
    | {(ast.arguments, "defaults"), (ast.arguments, "kw_defaults"), (ast.arg, "annotation")}
)


def _assigned_values(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign) or (isinstance(node, ast.AnnAssign) and node.value is not None):
        return [node.value]  # type: ignore[list-item]
    return []


def _protect_displays(value: ast.expr, protected: set[int]) -> None:
    """Tuples and lists assigned to tuples and lists: the resolver pairs their elements."""
    if isinstance(value, (ast.Tuple, ast.List)):
        protected.add(id(value))
        for element in value.elts:
            _protect_displays(element, protected)


_CODE_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = frozenset({type(None), str, bytes, int, bool, float, complex, type(...)})  # MatchSingleton values
# Names, operators and flags: `name`-like fields are read by the walk itself where they bind.
_NOT_CODE = frozenset(
    {"ctx", "type_comment", "op", "ops", "id", "attr", "arg", "name", "rest", "kind", "conversion"}
    | {"level", "module", "asname", "is_async", "names", "kwd_attrs"}
)


def _code_fields(kind: type) -> tuple[str, ...]:
    """The fields of an `ast` class that can hold expression or pattern nodes."""
    fields = _CODE_FIELDS.get(kind)
    if fields is None:
        fields = _CODE_FIELDS[kind] = tuple(name for name in kind._fields if name not in _NOT_CODE)  # type: ignore[attr-defined]
    return fields


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def first_line(node: ast.stmt) -> int:
    """A statement's first line: its first decorator's, if it has any."""
    decorators = getattr(node, "decorator_list", None)
    return min(node.lineno, *(d.lineno for d in decorators)) if decorators else node.lineno


def _line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    if line.endswith((b"\n", b"\r")):
        return line[-1:]
    return b""


def _marker_lines(text: bytes, lines: list[bytes]) -> list[int]:
    """The lines that say the marker, and the first line of each statement whose comment run
    directly above says it: that statement is the one its block documents, and the judge reads
    what it uses (a private name through a local alias makes the block current, not stale)."""
    if not MARKER_BYTES.search(text):
        return []
    found = [number for number, line in enumerate(lines, start=1) if MARKER_BYTES.search(line)]
    documented = set()
    for number in found:
        below = number  # 1-based: `lines[below]` is the line after line `below`
        if not lines[below - 1].lstrip(b" \t\f").startswith(b"#"):
            continue  # a trailing comment: its statement already holds the marker line
        while below < len(lines) and lines[below].lstrip(b" \t\f").startswith(b"#"):
            below += 1
        if below < len(lines) and lines[below].strip():
            documented.add(below + 1)
    return sorted(documented.union(found))


def _has_marker(node: ast.stmt, marker_lines: list[int]) -> bool:
    if not marker_lines:
        return False
    first = first_line(node)
    position = bisect.bisect_left(marker_lines, first)
    return position < len(marker_lines) and marker_lines[position] <= (node.end_lineno or node.lineno)


def _base_name(node: object) -> str | None:
    """The name an attribute chain (through `getattr(x, ...)` calls) hangs off."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call) and _is_getattr(node):
            node = node.args[0]
        elif isinstance(node, ast.Name):
            return node.id
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
    return isinstance(node.func, ast.Name) and node.func.id == STRING_USE and bool(node.args)


def _tests_a_version_flag(test: ast.AST, version_names: frozenset[str] = frozenset()) -> bool:
    for node in ast.walk(test):
        if (type(node) is ast.Name and (node.id in version_names or looks_like_version_flag(node.id))) or (
            type(node) is ast.Attribute and looks_like_version_flag(node.attr)
        ):
            return True
    return False


def _private_string_use(node: ast.Call) -> bool:
    """Any call with a private name as its second argument's string: `setattr`, `delattr`,
    `monkeypatch.setattr`, `mock.patch.object` (a superset of the resolver's forms)."""
    if len(node.args) < 2:
        return False
    literal = node.args[1]
    return isinstance(literal, ast.Constant) and isinstance(literal.value, str) and is_private_component(literal.value)


def _private_path_head(value: object) -> str | None:
    """The first name of a string that is a dotted path with a private component (`"torch._x.y"`)."""
    if not isinstance(value, str) or "._" not in value:
        return None
    parts = value.split(".")
    if not all(part.isidentifier() for part in parts) or not any(is_private_component(part) for part in parts[1:]):
        return None
    return parts[0]


def _private_getattr(node: ast.Call) -> bool:
    if not _is_getattr(node) or len(node.args) < 2:
        return False
    literal = node.args[1]
    return isinstance(literal, ast.Constant) and isinstance(literal.value, str) and is_private_component(literal.value)
