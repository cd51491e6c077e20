"""Walk a libcst module once and collect every private reference under the configured roots.

Names are resolved, not matched as text: imports, aliases and assignments bind names to qualified
torch names, function parameters and local rebinding shadow them, and function bodies are walked
after their enclosing scope is complete (as pyflakes does), so a helper defined above
`aten = torch.ops.aten` still sees the alias. Branches merge as "may be bound to": after
`try: import torch / except ImportError: torch = None`, `torch` still names torch.

A reference is recorded where a private component is *written*: `th._foreach_norm` is one, but a
later `fn(xs)` after `from torch import _foreach_norm as fn` is not, because the private name
entered the code at the import.

The walk uses its own field dispatch instead of `CSTVisitor`: libcst's generic visitor rebuilds
every node it passes, which costs more than the parse itself on large files.
"""

from __future__ import annotations

import dataclasses  # libcst's nodes are dataclasses (libcst imported the module already)
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import cast

import libcst as cst

from esper_lint.analysis.contract import CommentLine, comment_body
from esper_lint.analysis.forms import FALLBACK_ERRORS, STRING_GUARD, STRING_USE
from esper_lint.analysis.guards import (
    Branch,
    GuardReader,
    Proven,
    always_exits,
    always_raises,
    always_returns,
    checked_names,
    is_probe,
    probe_calls,
)
from esper_lint.analysis.strings import NamedAttribute, string_reference
from esper_lint.analysis.version_branches import MAJOR, MINOR, Meaning, VersionReader, helper_of
from esper_lint.names import any_private, covers, is_private_name, root_of
from esper_lint.parsing import parse_fragment

_NOT_CODE_FIELDS = frozenset(
    {
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "trailing_whitespace",
        "lpar",
        "rpar",
        "comma",
        "semicolon",
        "colon",
        "first_colon",
        "second_colon",
        "dot",
        "equal",
        "operator",
        "lbrace",
        "rbrace",
        "lbracket",
        "rbracket",
        "newline",
        "asynchronous",
        "separator",
        "relative",
        "trailing_comma",
        "type_parameters",
    }
)
# Fields that hold a name which is never read as a variable: `x.attr`, `f(keyword=...)`. Leaving
# them out keeps a name bound to a private torch value from counting as a use there.
_NAMES_NOT_READ: dict[type, frozenset[str]] = {cst.Attribute: frozenset({"attr"}), cst.Arg: frozenset({"keyword"})}
_code_fields_cache: dict[type, tuple[str, ...]] = {}
_all_fields_cache: dict[type, tuple[str, ...]] = {}


def _code_fields(cls: type) -> tuple[str, ...]:
    """The fields of a node class that can hold code (not whitespace or punctuation).

    A node's fields are read as libcst reads them, with `dataclasses.fields`: its `__match_args__`
    names the same fields today, but would leave out one a later libcst made keyword-only."""
    names = _code_fields_cache.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in _NOT_CODE_FIELDS
            and not f.name.startswith("whitespace")
            and f.name not in _NAMES_NOT_READ.get(cls, ())
        )
        _code_fields_cache[cls] = names
    return names


def _all_fields(cls: type) -> tuple[str, ...]:
    names = _all_fields_cache.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _all_fields_cache[cls] = names
    return names


def _children(node: cst.CSTNode, fields: Iterable[str]) -> Iterator[cst.CSTNode]:
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def _all_params(params: cst.Parameters) -> list[cst.Param]:
    found = [*params.posonly_params, *params.params, *params.kwonly_params]
    found.extend(extra for extra in (params.star_arg, params.star_kwarg) if isinstance(extra, cst.Param))
    return found


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every direct child node, whitespace included, in field order."""
    return _children(node, _all_fields(type(node)))


def dotted_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return identifier(node)
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{identifier(node.attr)}"
    return None


def identifier(name: cst.Name) -> str:
    """The name as Python reads it: NFKC-normalised (PEP 3131), so `torch` in mathematical bold
    letters (U+1D42D...) is `torch`."""
    value = name.value
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def leftmost(node: cst.CSTNode) -> cst.CSTNode:
    """The node whose first token starts an expression: where a finding is reported."""
    while True:
        if isinstance(node, cst.Attribute):
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        elif isinstance(node, cst.Subscript):
            node = node.value
        else:
            return node


class Scope:
    """A name-resolution scope. `None` as a binding means "bound to something that is not torch"."""

    __slots__ = ("bindings", "global_names", "kind", "module", "parent", "private_bound")

    def __init__(self, kind: str, parent: Scope | None) -> None:
        self.kind = kind
        self.bindings: dict[str, str | None] = {}
        self.parent = parent
        self.global_names: set[str] = set()
        self.module: Scope = parent.module if parent is not None else self
        # Names bound anywhere in the module to a dotted name with a `_` component: the only names
        # whose uses can be private uses through an alias (`fn(x)` after `from torch import _x as fn`).
        # A superset, kept on the module scope, so that a plain name costs one set lookup.
        self.private_bound: set[str] = set()

    def enclosing_for_functions(self) -> Scope:
        """Class bodies are invisible to the functions nested in them."""
        scope = self
        while scope.kind == "class" and scope.parent is not None:
            scope = scope.parent
        return scope

    def lookup(self, name: str) -> tuple[bool, str | None]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.global_names and scope is not scope.module:
                scope = scope.module
                continue
            if name in scope.bindings:
                return True, scope.bindings[name]
            scope = scope.parent
        return False, None

    def bind(self, name: str, value: str | None) -> None:
        if name in self.global_names:
            return
        self.bindings[name] = value
        if value is not None and "._" in value:
            self.module.private_bound.add(name)

    def snapshot(self) -> dict[str, str | None]:
        return dict(self.bindings)

    def merge(self, *states: dict[str, str | None]) -> None:
        """After branches: a name may name torch if any branch bound it to torch."""
        merged = dict(self.bindings)
        for state in states:
            for name, value in state.items():
                if value is not None:
                    if merged.get(name) is None:
                        merged[name] = value
                elif name not in merged:
                    merged[name] = None
        self.bindings = merged


# Statement, Reference and Collection are slotted classes, not dataclasses: a dataclass costs about
# 1 ms of import time on every pre-commit run. Statement and Reference compare by identity.
class Statement:
    """A simple statement line, or the header of a compound statement."""

    __slots__ = ("above", "alias_count", "doc_scope", "key", "node", "private_count", "reference_names", "scope")

    def __init__(
        self,
        node: cst.CSTNode,
        key: tuple[int, ...],
        doc_scope: tuple[int, ...],
        scope: Scope,
        above: Sequence[cst.EmptyLine],
        reference_names: list[str] | None = None,
        private_count: int = 0,
    ) -> None:
        self.node = node
        self.key = key
        self.doc_scope = doc_scope
        self.scope = scope
        self.above = above
        # Names only: a list of its Reference objects, which point back here, would make every
        # analysed tree a reference cycle that only the cyclic collector frees.
        self.reference_names: list[str] = [] if reference_names is None else reference_names
        self.private_count = private_count
        # Uses of a private name through a local alias (`fn(x)` after `from torch import _x as fn`,
        # `dyn.disable` after `import torch._dynamo as dyn`): not references (the import is), but
        # the statement does use the private name, so a block documenting it is not stale.
        self.alias_count = 0

    def __repr__(self) -> str:
        return (
            f"Statement(node={self.node!r}, key={self.key!r}, doc_scope={self.doc_scope!r}, scope={self.scope!r}, "
            f"above={self.above!r}, reference_names={self.reference_names!r}, private_count={self.private_count!r})"
        )

    def uses_private(self) -> bool:
        """The statement references a private name, or uses one through a local alias."""
        return bool(self.private_count or self.alias_count)

    def comment_lines(self) -> list[CommentLine]:
        """The comment run directly above (no blank line between) plus comments on its own lines."""
        run: list[cst.Comment] = []
        for line in self.above:
            if line.comment is None:
                run = []
            else:
                run.append(line.comment)
        run.extend(_own_comments(self.node))
        return [CommentLine(comment_body(comment), comment) for comment in run]


class Reference:
    """A private name where the code writes it."""

    __slots__ = ("anchor", "branch", "call", "guarded", "name", "statement", "store", "typing_only")

    def __init__(
        self,
        name: str,
        anchor: cst.CSTNode,
        statement: Statement,
        typing_only: bool,
        guarded: bool = False,
        branch: Branch = (),
        store: bool = False,
        call: cst.Call | None = None,
    ) -> None:
        self.name = name
        self.anchor = anchor
        self.statement = statement
        self.typing_only = typing_only
        # A code-level fallback handles the name's absence (`analysis/guards.py`).
        self.guarded = guarded
        # The version tests the code runs under, with the outcome each must take
        # (`analysis/version_branches.py`); `TorchKnowledge.branch_releases` reads them.
        self.branch = branch
        # Written as an assignment or `setattr` target (`torch.cuda._marker = True`).
        self.store = store
        self.call = call  # the call whose callee this reference is (`torch._x(a, k=1)`), for ESP204

    def __repr__(self) -> str:
        return (
            f"Reference(name={self.name!r}, anchor={self.anchor!r}, statement={self.statement!r}, "
            f"typing_only={self.typing_only!r}, guarded={self.guarded!r}, branch={self.branch!r}, "
            f"store={self.store!r}, call={self.call!r})"
        )


_BODY_FIELDS = frozenset({"body", "orelse", "handlers", "finalbody", "cases"})


def _own_comments(node: cst.CSTNode) -> list[cst.Comment]:
    """Comments on a statement's own lines: all of a simple statement, a compound one's header."""
    found: list[cst.Comment] = []
    compound = isinstance(node, (cst.BaseCompoundStatement, cst.ExceptHandler, cst.ExceptStarHandler, cst.MatchCase))
    # A module-level helper, not a nested one: a recursive closure is a reference cycle that
    # only the cyclic collector frees, once per statement.
    _collect_comments(node, found, top=True, compound=compound)
    return found


def _collect_comments(current: cst.CSTNode, found: list[cst.Comment], *, top: bool = False, compound: bool = False) -> None:
    if isinstance(current, cst.Comment):
        found.append(current)
        return
    for name in _all_fields(type(current)):
        if top and name == "leading_lines":
            continue
        value = getattr(current, name)
        if top and compound and name in _BODY_FIELDS:
            if name == "body" and isinstance(value, cst.IndentedBlock):
                _collect_comments(value.header, found)
            elif name == "body" and isinstance(value, cst.SimpleStatementSuite):
                _collect_comments(value, found)
            continue
        if isinstance(value, cst.CSTNode):
            _collect_comments(value, found)
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    _collect_comments(item, found)


def _is_type_checking_test(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.Name):
        return identifier(test) == "TYPE_CHECKING"
    return isinstance(test, cst.Attribute) and identifier(test.attr) == "TYPE_CHECKING"


def _string_value(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class Collection:
    """A module's private references and its statements."""

    __slots__ = ("references", "statements")

    def __init__(self, references: list[Reference], statements: list[Statement]) -> None:
        self.references = references
        self.statements = statements

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Collection) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.references, self.statements) == (other.references, other.statements)

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, like the dataclass it was

    def __repr__(self) -> str:
        return f"Collection(references={self.references!r}, statements={self.statements!r})"


# PEP 695's `type` statement; libcst releases before 1.1 have no node for it (and parse no such
# code), so there it matches nothing.
_TYPE_ALIAS: tuple[type[cst.CSTNode], ...] = tuple(
    kind for kind in (getattr(cst, "TypeAlias", None),) if isinstance(kind, type)
)

class ReferenceCollector:
    """Resolves names through one libcst module and records private references and statements."""

    def __init__(
        self,
        roots: Sequence[str],
        *,
        check_typing_only: bool = False,
    ) -> None:
        self.roots = tuple(roots)
        self.check_typing_only = check_typing_only
        self.references: list[Reference] = []
        self.statements: list[Statement] = []
        self._deferred: deque[Callable[[], None]] = deque()
        self._scope = Scope("module", None)
        self._private_bound = self._scope.private_bound  # read for every plain name
        self._doc_scope: tuple[int, ...] = (0,)
        self._next_scope_id = 1
        self._statement: Statement | None = None
        self._typing_only = False
        self._in_annotation = False
        self._future_annotations = False
        self._anchor_override: cst.CSTNode | None = None
        self._guards: tuple[str, ...] = ()  # names proven present by an enclosing `if hasattr(...)`
        self._branch: Branch = ()  # the version tests around the code being walked
        self._storing = False  # walking an assignment target
        self._sequel = False  # the statement being walked is followed by another in its block
        self._in_test = False  # walking the operands of a test whose probes were already read
        self._probes: set[int] = set()  # ids of `getattr(obj, "_x", None)` calls a test only probes with
        # `fn = getattr(torch, "_x", None)`: its reference, until a test checks `fn` (keyed by the
        # scope that binds `fn`, and the name).
        self._pending_probes: dict[tuple[int, str], tuple[str, list[Reference]]] = {}
        # Module-level names that mean something for versions: constants bound once to a version
        # test or a number read from torch's version, and helpers whose body is one test.
        self._meanings: dict[str, Meaning] = {}
        self._module_bindings: dict[str, int] = {}
        self._versions = VersionReader(self._resolve_value_or_version, self._meaning)
        self._guard_reader = GuardReader(self._resolve_value, self._probe_of, self._versions)

    # ----------------------------------------------------------------- entry points
    def collect(self, module: cst.Module, parent_scope: Scope | None = None) -> Collection:
        self._scope = Scope("module", parent_scope)
        if parent_scope is not None:
            self._scope.module = self._scope
        self._private_bound = self._scope.private_bound
        self._future_annotations = _imports_future_annotations(module)
        self._body(module.body, (), leading_first=module.header)
        while self._deferred:
            self._deferred.popleft()()
        return Collection(self.references, self.statements)

    # ----------------------------------------------------------------- names
    def _relevant(self, qualified: str) -> bool:
        """Worth binding: under a root, or a prefix of a dotted root."""
        if root_of(qualified, self.roots) is not None:
            return True
        return any(root.startswith(qualified + ".") for root in self.roots)

    def _lookup(self, name: str) -> str | None:
        if name == "self":
            return None
        found, value = self._scope.lookup(name)
        if found:
            return value
        # An unbound root name still means the root (star imports, notebooks, doctest-like code).
        return name if name in self.roots else None

    def _chain(self, node: cst.BaseExpression) -> tuple[str, list[str]] | None:
        """(qualified base, written components) for a resolvable attribute chain."""
        written: list[str] = []
        current: cst.CSTNode = node
        while True:
            if isinstance(current, cst.Attribute):
                written.append(identifier(current.attr))
                current = current.value
            elif isinstance(current, cst.Call):
                literal = self._getattr_literal(current)
                if literal is None:
                    return None
                written.append(literal)
                current = current.args[0].value
            elif isinstance(current, cst.Name):
                base = self._lookup(identifier(current))
                if base is None:
                    return None
                written.reverse()
                return base, written
            else:
                return None

    def _getattr_literal(self, call: cst.Call) -> str | None:
        if not (isinstance(call.func, cst.Name) and identifier(call.func) == STRING_USE):
            return None
        args = call.args
        if len(args) not in (2, 3) or any(arg.keyword is not None or arg.star for arg in args):
            return None
        literal = _string_value(args[1].value)
        if literal is None or not literal.isidentifier():
            return None
        return literal

    def _resolve_value(self, node: cst.BaseExpression) -> str | None:
        chain = self._chain(node)
        if chain is None:
            return None
        base, written = chain
        qualified = ".".join([base, *written])
        return qualified if self._relevant(qualified) else None

    def _resolve_value_or_version(self, node: cst.BaseExpression) -> str | None:
        """A torch name, public ones included: `torch.__version__` is not under a private name."""
        chain = self._chain(node)
        if chain is None:
            return None
        base, written = chain
        return ".".join([base, *written])

    # ----------------------------------------------------------------- guards and version branches
    def _meaning(self, name: str) -> Meaning | None:
        """What a module-level name bound once means for versions, where nothing local shadows it."""
        meant = self._meanings.get(name)
        if meant is None or self._module_bindings.get(name, 0) != 1:
            return None
        scope: Scope | None = self._scope
        while scope is not None and scope is not scope.module:
            if name in scope.bindings and name not in scope.global_names:
                return None
            scope = scope.parent
        return meant

    def _probe_of(self, name: str) -> str | None:
        found = self._pending_probe(name)
        return found[0] if found is not None else None

    def _pending_probe(self, name: str) -> tuple[str, list[Reference]] | None:
        scope: Scope | None = self._scope
        while scope is not None:
            if name in scope.bindings:
                return self._pending_probes.get((id(scope), name))
            scope = scope.parent
        return None

    def _test(self, test: cst.BaseExpression) -> None:
        """Walk a test: the `getattr` probes in it are guards, and the names it checks settle the
        probes they were bound to. The operands of an `and`/`or` inside are read with it, once."""
        if not self._in_test:
            probes = probe_calls(test)
            if probes:
                self._probes.update(id(call) for call in probes)
            for name in checked_names(test):
                pending = self._pending_probe(name)
                if pending is not None:
                    for reference in pending[1]:
                        reference.guarded = True
        saved, self._in_test = self._in_test, isinstance(test, (cst.BooleanOperation, cst.UnaryOperation))
        try:
            self._expr(test)
        finally:
            self._in_test = saved

    def _under(self, proven: Proven, *, presence: bool = True) -> tuple[tuple[str, ...], Branch]:
        """Enter code that runs only where `proven` holds; returns what to restore."""
        saved = (self._guards, self._branch)
        if presence and proven.present:
            self._guards = (*self._guards, *proven.present)
        if proven.branch:
            self._branch = (*self._branch, *proven.branch)
        return saved

    def _bind_meaning(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """Module level: `IS_2_3 = torch.__version__ >= "2.3"`, `MAJOR = int(...split(".")[0])`,
        `MAJOR, MINOR = map(int, torch.__version__.split(".")[:2])`."""
        if self._scope is not self._scope.module:
            return
        if isinstance(target, cst.Name):
            meant: Meaning | None = self._versions.condition(value) or self._versions.subject(value)
            if meant is not None:
                self._meanings[identifier(target)] = meant
        elif (
            isinstance(target, (cst.Tuple, cst.List))
            and len(target.elements) == 2
            and self._versions.subject(cst.Call(cst.Name("tuple"), [cst.Arg(value)])) is not None
        ):
            for element, part in zip(target.elements, (MAJOR, MINOR), strict=True):
                if isinstance(element.value, cst.Name):
                    self._meanings[identifier(element.value)] = part

    def _count_module_binding(self, target: cst.BaseExpression) -> None:
        if self._scope is not self._scope.module:
            return
        if isinstance(target, cst.Name):
            name = identifier(target)
            self._module_bindings[name] = self._module_bindings.get(name, 0) + 1
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._count_module_binding(element.value)
        elif isinstance(target, cst.StarredElement):
            self._count_module_binding(target.value)

    # ----------------------------------------------------------------- recording
    def _record(self, name: str, anchor: cst.CSTNode, *, probe: bool = False) -> Reference:
        statement = self._statement
        assert statement is not None, "references are always inside a statement"
        statement.private_count += 1
        reference = Reference(
            name=name,
            anchor=self._anchor_override or anchor,
            statement=statement,
            typing_only=self._typing_only,
            guarded=probe or any(covers(guard, name) for guard in self._guards),
            branch=self._branch,
            store=self._storing,
        )
        statement.reference_names.append(name)
        self.references.append(reference)
        return reference

    def _alias_use(self, qualified: str | None) -> None:
        """Count a use, through a local alias, of what `qualified` names, when that is private."""
        # Every resolvable chain comes here (`torch.zeros` too): a private name has a `._` in it.
        if qualified is None or "._" not in qualified:
            return
        statement = self._statement
        if statement is not None and root_of(qualified, self.roots) is not None and is_private_name(qualified, self.roots):
            statement.alias_count += 1

    def _new_statement(self, node: cst.CSTNode, key: tuple[int, ...], above: Sequence[cst.EmptyLine]) -> Statement:
        statement = Statement(node=node, key=key, doc_scope=self._doc_scope, scope=self._scope, above=above)
        self.statements.append(statement)
        self._statement = statement
        return statement

    # ----------------------------------------------------------------- statements
    def _body(
        self,
        statements: Sequence[cst.BaseStatement],
        key: tuple[int, ...],
        leading_first: Sequence[cst.EmptyLine] = (),
    ) -> None:
        saved = (self._guards, self._branch)
        for index, statement in enumerate(_concrete(statements)):
            above: Sequence[cst.EmptyLine] = statement.leading_lines
            if index == 0 and leading_first:
                above = (*leading_first, *above)
            # `if hasattr(torch, "_x"): return torch._x()` followed by more code: that code is the `else`.
            self._sequel = index + 1 < len(statements)
            self._statement_node(statement, (*key, index), above)
            # The rest of the block runs only where the statement did not leave it:
            # `if not hasattr(torch, "_x"): return`, `if torch.__version__ < "2.1": raise ...`, `assert hasattr(...)`.
            if isinstance(statement, cst.If) and statement.orelse is None and always_exits(statement.body):
                self._under(self._guard_reader.proven(statement.test, outcome=False))
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.Assert):
                        self._under(self._guard_reader.proven(small.test, outcome=True))
        self._guards, self._branch = saved

    def _suite(self, suite: cst.BaseSuite, key: tuple[int, ...]) -> None:
        if isinstance(suite, cst.IndentedBlock):
            self._body(suite.body, key)
        elif isinstance(suite, cst.SimpleStatementSuite):
            # `if x: y = torch._z()` — one line, so it belongs to the compound statement.
            for small in suite.body:
                self._small(small)

    def _statement_node(self, node: cst.BaseStatement, key: tuple[int, ...], above: Sequence[cst.EmptyLine]) -> None:
        self._new_statement(node, key, above)
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self._small(small)
        elif isinstance(node, cst.FunctionDef):
            self._function(node, key)
        elif isinstance(node, cst.ClassDef):
            self._class(node, key)
        elif isinstance(node, cst.If):
            self._if(node, key)
        elif isinstance(node, (cst.For, cst.While)):
            self._loop(node, key)
        elif isinstance(node, (cst.Try, cst.TryStar)):
            self._try(node, key)
        elif isinstance(node, cst.With):
            for item in node.items:
                self._expr(item.item)
                if item.asname is not None:
                    self._target(item.asname.name, None)
            self._suite(node.body, (*key, 0))
        elif isinstance(node, cst.Match):
            self._match(node, key)
        else:  # future statement kinds: still find what they reference
            for child in _children(node, _code_fields(type(node))):
                self._expr(child)

    def _small(self, node: cst.BaseSmallStatement) -> None:
        if isinstance(node, cst.Assign):
            first = len(self.references)
            self._expr(node.value)
            for target in node.targets:
                self._target(target.target, node.value)
                self._count_module_binding(target.target)
                self._bind_meaning(target.target, node.value)
            self._note_probe(node, first)
        elif isinstance(node, cst.Assert):
            self._test(node.test)
            if node.msg is not None:
                self._expr(node.msg)
        elif isinstance(node, cst.AnnAssign):
            self._annotation(node.annotation.annotation, local=self._scope.kind == "function")
            if node.value is not None:
                self._expr(node.value)
                self._target(node.target, node.value)
            else:
                self._expr(node.target)  # `torch._x.y: int` is a reference; a bare name is not
        elif isinstance(node, cst.AugAssign):
            self._expr(node.value)
            self._target(node.target, None)
            self._count_module_binding(node.target)
        elif isinstance(node, cst.Import):
            self._import(node)
        elif isinstance(node, cst.ImportFrom):
            self._import_from(node)
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            for item in node.names:
                if isinstance(node, cst.Global):
                    self._scope.global_names.add(identifier(item.name))
                else:
                    self._scope.bindings.pop(identifier(item.name), None)
        elif isinstance(node, cst.Del):
            self._del(node.target)
        elif isinstance(node, _TYPE_ALIAS):  # `type A[T: torch._X] = torch._Y` (PEP 695)
            alias = cast("cst.TypeAlias", node)
            self._type_parameters(alias.type_parameters)
            self._expr(alias.value)
            self._target(alias.name, None)
        else:
            for child in _children(node, _code_fields(type(node))):
                self._expr(child)

    def _note_probe(self, node: cst.Assign, first: int) -> None:
        """`fn = getattr(torch, "_x", None)`: the reference waits for a test of `fn` (`_test`)."""
        value = node.value
        if not (len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) and isinstance(value, cst.Call)):
            return
        if not is_probe(value):
            return
        mine = [reference for reference in self.references[first:] if reference.anchor is leftmost(value)]
        if mine:
            name = identifier(node.targets[0].target)
            self._pending_probes[(id(self._scope), name)] = (mine[0].name, mine)

    def _type_parameters(self, parameters: cst.TypeParameters | None) -> None:
        """PEP 695 type parameters: a bound, constraints or a default are read as annotations are."""
        if parameters is None:
            return
        for parameter in parameters.params:
            bound = getattr(parameter.param, "bound", None)
            for expression in (bound, getattr(parameter, "default", None)):
                if expression is not None:
                    self._annotation(expression, local=False)

    def _del(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self._scope.bind(identifier(target), None)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._del(element.value)
        else:
            self._expr(target)

    def _import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = dotted_name(alias.name)
            if dotted is None:
                continue
            relevant = self._relevant(dotted)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._scope.bind(identifier(alias.asname.name), dotted if relevant else None)
            else:
                first = dotted.split(".", 1)[0]
                self._scope.bind(first, first if self._relevant(first) else None)
            if relevant and is_private_name(dotted, self.roots):
                self._record(dotted, leftmost(alias.name))

    def _import_from(self, node: cst.ImportFrom) -> None:
        module = None if node.relative or node.module is None else dotted_name(node.module)
        relevant = module is not None and self._relevant(module)
        if isinstance(node.names, cst.ImportStar):
            if relevant and module is not None and is_private_name(module, self.roots):
                self._record(module, leftmost(node.module) if node.module is not None else node.names)
            return
        for alias in node.names:
            imported = identifier(alias.name) if isinstance(alias.name, cst.Name) else dotted_name(alias.name)
            if imported is None:
                continue
            asname = alias.asname.name if alias.asname is not None else None
            local = identifier(asname) if isinstance(asname, cst.Name) else imported.split(".")[0]
            if not relevant or module is None:
                self._scope.bind(local, None)
                continue
            qualified = f"{module}.{imported}"
            self._scope.bind(local, qualified if self._relevant(qualified) else None)
            if is_private_name(qualified, self.roots):
                self._record(qualified, alias.name)

    def _function(self, node: cst.FunctionDef, key: tuple[int, ...]) -> None:
        for decorator in node.decorators:
            self._expr(decorator.decorator)
        all_params = _all_params(node.params)
        for param in all_params:
            if param.default is not None:
                self._expr(param.default)
            if param.annotation is not None:
                self._annotation(param.annotation.annotation, local=False)
        if node.returns is not None:
            self._annotation(node.returns.annotation, local=False)
        self._type_parameters(getattr(node, "type_parameters", None))
        self._scope.bind(identifier(node.name), None)
        self._count_module_binding(node.name)
        if self._scope is self._scope.module:
            helper = helper_of(node)
            if helper is not None:  # `def torch_version_at_least(v): return torch.__version__ >= v`
                self._meanings[identifier(node.name)] = helper
        self._defer_body(node.body, key, [identifier(param.name) for param in all_params])

    def _defer_body(self, body: cst.BaseSuite, key: tuple[int, ...], params: list[str]) -> None:
        parent = self._scope.enclosing_for_functions()
        doc_scope = (*self._doc_scope, self._allocate_scope_id())
        typing_only, guards, branch = self._typing_only, self._guards, self._branch

        def walk_body() -> None:
            scope = Scope("function", parent)
            for name in params:
                scope.bind(name, None)
            saved = (self._scope, self._doc_scope, self._typing_only, self._statement, self._guards, self._branch)
            self._scope, self._doc_scope, self._typing_only = scope, doc_scope, typing_only
            self._guards, self._branch = guards, branch
            self._suite(body, (*key, 0))
            self._scope, self._doc_scope, self._typing_only, self._statement, self._guards, self._branch = saved

        self._deferred.append(walk_body)

    def _allocate_scope_id(self) -> int:
        self._next_scope_id += 1
        return self._next_scope_id

    def _class(self, node: cst.ClassDef, key: tuple[int, ...]) -> None:
        for decorator in node.decorators:
            self._expr(decorator.decorator)
        self._type_parameters(getattr(node, "type_parameters", None))
        for arg in (*node.bases, *node.keywords):
            self._expr(arg.value)
        saved = (self._scope, self._doc_scope)
        self._scope = Scope("class", self._scope)
        self._doc_scope = (*self._doc_scope, self._allocate_scope_id())
        self._suite(node.body, (*key, 0))
        self._scope, self._doc_scope = saved
        self._scope.bind(identifier(node.name), None)

    def _if(self, node: cst.If, key: tuple[int, ...]) -> None:
        self._test(node.test)
        before = self._scope.snapshot()
        saved_typing = self._typing_only
        if _is_type_checking_test(node.test):
            self._typing_only = True
        # A code-level fallback (README, "Code-level fallbacks"): `if hasattr(torch, "_x"): <use> else:
        # <fallback>`. Without an `else` nothing falls back, so the body is not guarded; a version
        # test narrows the releases either way.
        falls_back = node.orelse is not None or (self._sequel and always_exits(node.body))
        saved = self._under(self._guard_reader.proven(node.test, outcome=True), presence=falls_back)
        self._suite(node.body, (*key, 0))
        self._typing_only = saved_typing
        self._guards, self._branch = saved
        after_body = self._scope.snapshot()
        self._scope.bindings = before
        orelse = node.orelse
        if orelse is not None:
            saved = self._under(self._guard_reader.proven(node.test, outcome=False))
            if isinstance(orelse, cst.If):
                self._statement_node(orelse, (*key, 1), orelse.leading_lines)
            elif isinstance(orelse, cst.Else):
                self._suite(orelse.body, (*key, 1))
            self._guards, self._branch = saved
        self._scope.merge(after_body)

    def _loop(self, node: cst.For | cst.While, key: tuple[int, ...]) -> None:
        if isinstance(node, cst.For):
            self._expr(node.iter)
        else:
            self._test(node.test)
        before = self._scope.snapshot()
        if isinstance(node, cst.For):
            self._target(node.target, None)
        self._suite(node.body, (*key, 0))
        if node.orelse is not None:
            self._suite(node.orelse.body, (*key, 1))
        self._scope.merge(before)

    def _try(self, node: cst.Try | cst.TryStar, key: tuple[int, ...]) -> None:
        before = self._scope.snapshot()
        # A code-level fallback (README, "Code-level fallbacks"): a handler that catches the error a
        # vanished API raises and does not re-raise it.
        fallback_bindings = [
            _names_bound_in(h.body) for h in node.handlers if _catches_missing_api(h) and not always_raises(h.body)
        ]
        if fallback_bindings and isinstance(node.body, cst.IndentedBlock):
            statements = _concrete(node.body.body)
            bound_by = [_names_bound_anywhere(statement) for statement in statements]
            # The flag idiom: `try: from torch._x import y; HAS_Y = True` / `except ImportError: HAS_Y = False`
            # (the success flag may also be set in the `else:` clause).
            in_else = _names_bound_in(node.orelse.body) if node.orelse is not None else set()
            # `except ImportError: return False`: nothing the body bound is used after a failure.
            returns = any(_catches_missing_api(h) and always_returns(h.body) for h in node.handlers)
            for index, statement in enumerate(statements):
                first = len(self.references)
                self._statement_node(statement, (*key, 0, index), statement.leading_lines)
                bound = bound_by[index]
                later = set().union(in_else, *bound_by[index + 1 :])
                if returns or any(_falls_back(statement, bound, names, later) for names in fallback_bindings):
                    for reference in self.references[first:]:
                        reference.guarded = True
        else:
            self._suite(node.body, (*key, 0))
        after_body = self._scope.snapshot()
        outcomes = []
        handlers: Sequence[cst.ExceptHandler | cst.ExceptStarHandler] = node.handlers
        for index, handler in enumerate(handlers, start=1):
            self._scope.bindings = dict(before)
            self._scope.merge(after_body)
            self._new_statement(handler, (*key, index), handler.leading_lines)
            if handler.type is not None:
                self._expr(handler.type)
            if handler.name is not None:
                self._target(handler.name.name, None)
            self._suite(handler.body, (*key, index, 0))
            outcomes.append(self._scope.snapshot())
        self._scope.bindings = after_body
        if node.orelse is not None:
            self._suite(node.orelse.body, (*key, len(node.handlers) + 1))
        self._scope.merge(*outcomes)
        if node.finalbody is not None:
            self._suite(node.finalbody.body, (*key, len(node.handlers) + 2))

    def _match(self, node: cst.Match, key: tuple[int, ...]) -> None:
        self._expr(node.subject)
        before = self._scope.snapshot()
        outcomes = []
        for index, case in enumerate(node.cases):
            self._scope.bindings = dict(before)
            self._new_statement(case, (*key, index), case.leading_lines)
            self._expr(case.pattern)
            if case.guard is not None:
                self._expr(case.guard)
            self._suite(case.body, (*key, index, 0))
            outcomes.append(self._scope.snapshot())
        self._scope.bindings = before
        self._scope.merge(*outcomes)

    # ----------------------------------------------------------------- binding targets
    def _target(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            self._scope.bind(identifier(target), None if value is None else self._resolve_value(value))
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            values: Sequence[cst.BaseElement] | None = None
            if (
                isinstance(value, (cst.Tuple, cst.List))
                and len(value.elements) == len(elements)
                and not any(isinstance(e, cst.StarredElement) for e in (*elements, *value.elements))
            ):
                values = value.elements
            for index, element in enumerate(elements):
                self._target(element.value, values[index].value if values is not None else None)
        elif isinstance(target, cst.StarredElement):
            self._target(target.value, None)
        else:
            # `torch._dynamo.config.x = True` and `a[torch._k] = v` are references too.
            self._storing = isinstance(target, cst.Attribute)
            try:
                self._expr(target)
            finally:
                self._storing = False

    # ----------------------------------------------------------------- expressions
    def _annotation(self, node: cst.BaseExpression, *, local: bool) -> None:
        saved = (self._typing_only, self._in_annotation)
        if self._future_annotations or local:
            self._typing_only = True
        self._in_annotation = True
        self._expr(node)
        self._typing_only, self._in_annotation = saved

    def _string_annotation(self, node: cst.SimpleString | cst.ConcatenatedString) -> None:
        if not self.check_typing_only:
            return
        text = node.evaluated_value if not isinstance(node, cst.ConcatenatedString) else None
        if not isinstance(text, str):
            return
        parsed = parse_fragment(text.strip(), expression=True)
        if parsed is None:  # a string annotation that is not an expression is not ours to judge
            return
        saved = (self._typing_only, self._anchor_override)
        self._typing_only, self._anchor_override = True, node
        self._expr(parsed)
        self._typing_only, self._anchor_override = saved

    def _expr(self, node: cst.CSTNode) -> None:
        node_type = type(node)
        if node_type is cst.Name:
            private_bound = self._private_bound
            if private_bound:
                name = identifier(node)  # type: ignore[arg-type]
                if name in private_bound:
                    self._alias_use(self._lookup(name))
            return
        if node_type is cst.Attribute or node_type is cst.Call:
            if self._reference_chain(node):  # type: ignore[arg-type]
                return
            if node_type is cst.Call and self._special_call(node):  # type: ignore[arg-type]
                return
        elif node_type is cst.SimpleString:
            if self._in_annotation:
                self._string_annotation(node)  # type: ignore[arg-type]
            return
        elif node_type is cst.Lambda:
            self._lambda(node)  # type: ignore[arg-type]
            return
        elif node_type in _COMPREHENSIONS:
            self._comprehension(node)
            return
        elif node_type is cst.NamedExpr:
            self._expr(node.value)  # type: ignore[attr-defined]
            self._target(node.target, node.value)  # type: ignore[attr-defined]
            return
        elif node_type is cst.IfExp or node_type is cst.BooleanOperation:
            self._conditional(node)  # type: ignore[arg-type]
            return
        if node_type is cst.Call:
            self._callee(node)  # type: ignore[arg-type]
        for child in _children(node, _code_fields(node_type)):
            if node_type is not cst.Call or child is not node.func:  # type: ignore[attr-defined]
                self._expr(child)

    def _callee(self, node: cst.Call) -> None:
        """Walk a call's callee; a private name written as the whole callee keeps the call (ESP204
        judges its arguments)."""
        count = len(self.references)
        self._expr(node.func)
        # Only a plain dotted callee (`torch._x`, `th._C._y`): in `torch._x(a)[0].f(b)` the
        # reference is `torch._x`, whose call is the inner one.
        if len(self.references) == count + 1 and isinstance(node.func, cst.Attribute) and dotted_name(node.func) is not None:
            reference = self.references[-1]
            if reference.anchor is leftmost(node.func) and reference.call is None:
                reference.call = node

    def _conditional(self, node: cst.IfExp | cst.BooleanOperation) -> None:
        """`a if hasattr(torch, "_x") else b`, `hasattr(torch, "_x") and torch._x()`: the arm that runs
        only on one outcome of the test is guarded by it."""
        if isinstance(node, cst.IfExp):
            self._test(node.test)
            for arm, outcome in ((node.body, True), (node.orelse, False)):
                saved = self._under(self._guard_reader.proven(node.test, outcome=outcome))
                self._expr(arm)
                self._guards, self._branch = saved
            return
        # The left operand is tested; the right one is too only where the whole operation is a test
        # (`if a and b:`); in `x = a and b` its value escapes.
        tested = self._in_test
        self._test(node.left)
        saved = self._under(self._guard_reader.proven(node.left, outcome=isinstance(node.operator, cst.And)))
        if tested:
            self._test(node.right)
        else:
            self._expr(node.right)
        self._guards, self._branch = saved

    def _reference_chain(self, node: cst.Attribute | cst.Call) -> bool:
        """Record a resolvable chain; True when the whole chain was handled."""
        chain = self._chain(node)
        if chain is None:
            return False
        base, written = chain
        if not any_private(written):
            self._alias_use(base)  # `dyn.disable` after `import torch._dynamo as dyn`
        else:
            qualified = ".".join([base, *written])
            if root_of(qualified, self.roots) is not None:
                probe = id(node) in self._probes
                self._record(qualified, leftmost(node), probe=probe)
                if probe:
                    # `getattr(torch._C, "_x", None) is not None` probes `_x`, as `hasattr` does; the
                    # object it probes is a use like `hasattr`'s (`torch._C`).
                    self._expr(cast("cst.Call", node).args[0].value)
        # Only getattr defaults inside a chain can hold further code.
        current: cst.CSTNode = node
        while isinstance(current, (cst.Attribute, cst.Call)):
            if isinstance(current, cst.Call):
                for arg in current.args[2:]:
                    self._expr(arg.value)
                current = current.args[0].value
            else:
                current = current.value
        return True

    def _special_call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Name) and identifier(func) == STRING_GUARD and len(node.args) == 2:
            # A guard, not a use: `hasattr(torch, "_x")` reports nothing, but its object may.
            self._expr(node.args[0].value)
            return True
        found = string_reference(node)
        if found is None:
            return False
        # `setattr(torch.backends, "_x", v)`, `mock.patch("torch._x.y")` (`analysis/strings.py`): a
        # reference at the string, then the call's arguments as usual.
        if isinstance(found, NamedAttribute):
            # As for `owner.attribute` written out: a reference where the written part says a
            # private name; an owner bound by a private import was reported at the import.
            chain = self._chain(found.owner)
            written = [] if chain is None else [*chain[1], found.attribute]
            qualified = ".".join([chain[0], *written]) if chain is not None and any_private(written) else None
            store = found.creates
        else:
            qualified, store = found.path, False
        if qualified is not None and root_of(qualified, self.roots) is not None and is_private_name(qualified, self.roots):
            self._expr(func)
            saved = self._storing
            self._storing = store
            self._record(qualified, found.string)
            self._storing = saved
            for arg in node.args:
                # The owner is part of the name just recorded, as `getattr`'s is.
                if not (isinstance(found, NamedAttribute) and arg.value is found.owner):
                    self._expr(arg.value)
            return True
        return False

    def _lambda(self, node: cst.Lambda) -> None:
        all_params = _all_params(node.params)
        for param in all_params:
            if param.default is not None:
                self._expr(param.default)
        saved = self._scope
        self._scope = Scope("function", saved.enclosing_for_functions())
        for param in all_params:
            self._scope.bind(identifier(param.name), None)
        self._expr(node.body)
        self._scope = saved

    def _comprehension(self, node: cst.CSTNode) -> None:
        for_in: cst.CompFor = node.for_in  # type: ignore[attr-defined]
        self._expr(for_in.iter)  # the first iterable is evaluated in the enclosing scope
        saved = self._scope
        self._scope = Scope("comprehension", saved)
        current: cst.CompFor | None = for_in
        first = True
        while current is not None:
            if not first:
                self._expr(current.iter)
            first = False
            self._target(current.target, None)
            for condition in current.ifs:
                self._expr(condition.test)
            current = current.inner_for_in
        if isinstance(node, cst.DictComp):
            self._expr(node.key)
            self._expr(node.value)
        else:
            self._expr(node.elt)  # type: ignore[attr-defined]
        self._scope = saved


def _catches_missing_api(handler: cst.ExceptHandler | cst.ExceptStarHandler) -> bool:
    """Whether an `except` clause catches the error a vanished private API raises."""
    caught = handler.type
    if caught is None:
        return True
    options = [element.value for element in caught.elements] if isinstance(caught, cst.Tuple) else [caught]
    for option in options:
        name = (
            identifier(option)
            if isinstance(option, cst.Name)
            else identifier(option.attr)
            if isinstance(option, cst.Attribute)
            else None
        )
        if name in FALLBACK_ERRORS:
            return True
    return False


def _falls_back(statement: cst.BaseStatement, bound: set[str], handler_binds: set[str], later: set[str]) -> bool:
    """Whether a handler that binds `handler_binds` is the fallback of one statement of a `try`
    body: the statement binds no name (a call, an attribute store: nothing is left undefined when
    it fails), the handler rebinds every name it binds, or the handler sets a flag that the body
    sets after it (`HAS_X = True` / `except ImportError: HAS_X = False`)."""
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return bound <= handler_binds
    if not bound:
        return True
    return bound <= handler_binds or bool(handler_binds & later)


def _names_bound_anywhere(statement: cst.BaseStatement) -> set[str]:
    """Names a statement binds, in the blocks of a compound statement too (not in a definition's body)."""
    if isinstance(statement, (cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar)):
        names = set(_names_bound_in(statement.body))
        for field_name in ("orelse", "finalbody"):
            part = getattr(statement, field_name, None)
            if isinstance(part, cst.If):
                names |= _names_bound_anywhere(part)
            elif part is not None:
                names |= _names_bound_in(part.body)
        if isinstance(statement, (cst.Try, cst.TryStar)):
            for handler in statement.handlers:
                names |= _names_bound_in(handler.body)
        return names
    return _names_bound_by(statement)


def _names_bound_by(statement: cst.BaseStatement) -> set[str]:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return {identifier(statement.name)}
    names: set[str] = set()
    if not isinstance(statement, cst.SimpleStatementLine):
        return names
    for small in statement.body:
        if isinstance(small, cst.Import):
            for alias in small.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names.add(identifier(alias.asname.name))
                else:
                    dotted = dotted_name(alias.name)
                    if dotted:
                        names.add(dotted.split(".")[0])
        elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
            for alias in small.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names.add(identifier(alias.asname.name))
                elif isinstance(alias.name, cst.Name):
                    names.add(identifier(alias.name))
        elif isinstance(small, cst.Assign):
            for target in small.targets:
                names.update(_target_names(target.target))
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            names.update(_target_names(small.target))
    return names


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {identifier(target)}
    if isinstance(target, (cst.Tuple, cst.List)):
        return set().union(*(_target_names(element.value) for element in target.elements))
    return set()


def _concrete(statements: Sequence[cst.BaseStatement]) -> Sequence[cst.SimpleStatementLine | cst.BaseCompoundStatement]:
    """The statements as what they are: libcst types bodies with the abstract `BaseStatement`, which
    declares no `leading_lines`; its only subclasses, the simple and the compound statements, do."""
    return cast("Sequence[cst.SimpleStatementLine | cst.BaseCompoundStatement]", statements)


def _names_bound_in(suite: cst.BaseSuite) -> set[str]:
    """Names a handler binds, looking into its nested if/else branches as well."""
    names: set[str] = set()
    statements: Sequence[cst.BaseStatement] = ()
    if isinstance(suite, cst.IndentedBlock):
        statements = suite.body
    elif isinstance(suite, cst.SimpleStatementSuite):
        statements = [cst.SimpleStatementLine(body=suite.body)]
    for statement in statements:
        names |= _names_bound_by(statement)
        if isinstance(statement, cst.If):
            names |= _names_bound_in(statement.body)
            if isinstance(statement.orelse, cst.Else):
                names |= _names_bound_in(statement.orelse.body)
    return names


_COMPREHENSIONS = frozenset({cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp})


def _imports_future_annotations(module: cst.Module) -> bool:
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.ImportFrom)
                and isinstance(small.module, cst.Name)
                and identifier(small.module) == "__future__"
                and not isinstance(small.names, cst.ImportStar)
                and any(isinstance(a.name, cst.Name) and identifier(a.name) == "annotations" for a in small.names)
            ):
                return True
    return False
