"""Code-level fallbacks: the tests that prove a private name present, or narrow torch's version.

A use is guarded when the code around it has already made sure the name exists, and handles the
case where it does not (README, "Code-level fallbacks"). The resolver asks this module what a test
proves when it is true or false (`GuardReader.proven`), and which statements leave a block
(`always_exits`) or re-raise (`always_raises`). The forms:

* `hasattr(obj, "_x")`, alone or in `and`/`or`/`not` with anything else (`hasattr(torch._C, "_x")
  and callable(torch._C._x)`, `hasattr(...) and flag`);
* a `getattr(obj, "_x", default)` probe tested for truth, `is None`/`is not None` or `callable`,
  directly (`if getattr(torch._C, "_x", None) is not None:`) or through the name it was bound to
  (`fn = getattr(torch, "_x", None)`, later `if fn is None:`);
* a test on torch's version (`analysis/version_branches.py`): it does not prove a name present,
  it narrows the releases the branch runs on.

Where the outcome is known: the body of an `if` (when it has an `else` to fall back to), its
`else`, the two arms of a conditional expression, the right operand of `and`/`or`, the statements
after `assert <test>`, and the statements after an `if` whose body always leaves the block
(`if not hasattr(torch, "_x"): return` / `raise`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import libcst as cst

from esper_lint.analysis.forms import PROBE_CHECKS, STRING_GUARD, STRING_USE
from esper_lint.analysis.version_branches import VersionCondition, VersionReader

Branch = tuple[tuple[VersionCondition, bool], ...]


class Proven:
    """What a test's outcome proves: private names present, and version conditions taken. Immutable.

    A hand-written class, not a frozen dataclass: a dataclass costs about 1 ms of import time on
    every pre-commit run, and a named tuple's `+` and truth are a tuple's, not these."""

    __slots__ = ("branch", "present")
    present: tuple[str, ...]
    branch: Branch

    def __init__(self, present: tuple[str, ...] = (), branch: Branch = ()) -> None:
        object.__setattr__(self, "present", present)
        object.__setattr__(self, "branch", branch)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Proven is immutable: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Proven is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:  # the default would restore the slots by assignment
        return (Proven, (self.present, self.branch))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Proven) or other.__class__ is not self.__class__:
            return NotImplemented
        return (self.present, self.branch) == (other.present, other.branch)

    def __hash__(self) -> int:
        return hash((self.present, self.branch))

    def __repr__(self) -> str:
        return f"Proven(present={self.present!r}, branch={self.branch!r})"

    def __add__(self, other: Proven) -> Proven:
        return Proven((*self.present, *other.present), (*self.branch, *other.branch))

    def __bool__(self) -> bool:
        return bool(self.present or self.branch)


NOTHING = Proven()


class GuardReader:
    """`resolve`: the torch name an expression resolves to; `probe_of`: the private name a bare
    name was bound to by a `getattr(obj, "_x", default)` probe, or None; `versions`: reads version
    tests."""

    def __init__(
        self,
        resolve: Callable[[cst.BaseExpression], str | None],
        probe_of: Callable[[str], str | None],
        versions: VersionReader,
    ) -> None:
        self.resolve = resolve
        self.probe_of = probe_of
        self.versions = versions
        # By node: an `and` chain is asked about at every level, and must cost linear time. The
        # node is kept with its answer, so its id cannot be reused while the entry lives.
        self._proven: dict[tuple[int, bool], tuple[cst.BaseExpression, Proven]] = {}

    def proven(self, test: cst.BaseExpression, *, outcome: bool) -> Proven:
        """What `test` evaluating to `outcome` (truthy or falsy) proves."""
        key = (id(test), outcome)
        cached = self._proven.get(key)
        if cached is not None:
            return cached[1]
        found = self._proven_uncached(test, outcome)
        self._proven[key] = (test, found)
        return found

    def _proven_uncached(self, test: cst.BaseExpression, outcome: bool) -> Proven:
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            return self.proven(test.expression, outcome=not outcome)
        condition = self.versions.condition(test) or self.versions.opaque(test)
        if condition is not None:
            return Proven(branch=((condition, outcome),))
        if isinstance(test, cst.BooleanOperation):
            both = isinstance(test.operator, cst.And) == outcome  # `a and b` true / `a or b` false
            left, right = self.proven(test.left, outcome=outcome), self.proven(test.right, outcome=outcome)
            if both:
                return left + right
            # Either side alone decided the outcome: only what both prove holds.
            return Proven(tuple(name for name in left.present if name in right.present))
        present = self._present_when(test, outcome)
        return Proven((present,)) if present is not None else NOTHING

    def _present_when(self, test: cst.BaseExpression, outcome: bool) -> str | None:
        """The private name a single test proves present when it evaluates to `outcome`."""
        if isinstance(test, cst.Call):
            name = _called_builtin(test)
            if name == STRING_GUARD and outcome:
                return self.hasattr_name(test)
            if name == "callable" and outcome and len(test.args) == 1:
                return self.probed_name(test.args[0].value)
        if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
            target = test.comparisons[0]
            if isinstance(target.comparator, cst.Name) and target.comparator.value == "None":
                negated = isinstance(target.operator, (cst.IsNot, cst.NotEqual))
                if isinstance(target.operator, (cst.Is, cst.IsNot, cst.Equal, cst.NotEqual)) and outcome == negated:
                    return self.probed_name(test.left)
            return None
        if outcome:
            return self.probed_name(test)
        return None

    def hasattr_name(self, call: cst.Call) -> str | None:
        if len(call.args) != 2 or any(arg.keyword is not None or arg.star for arg in call.args):
            return None
        owner = self.resolve(call.args[0].value)
        attribute = string_value(call.args[1].value)
        if owner is None or attribute is None:
            return None
        return f"{owner}.{attribute}"

    def probed_name(self, node: cst.BaseExpression) -> str | None:
        """The private name `node` probes: a `getattr` with a default, or a name bound to one."""
        if isinstance(node, cst.Name):
            return self.probe_of(node.value)
        if isinstance(node, cst.Call) and is_probe(node):
            owner = self.resolve(node.args[0].value)
            attribute = string_value(node.args[1].value)
            return f"{owner}.{attribute}" if owner is not None and attribute is not None else None
        return None


def probe_calls(test: cst.BaseExpression) -> list[cst.Call]:
    """The `getattr(obj, "_x", default)` calls a test uses only as probes (truth, `is None`,
    `callable`): guards, not uses."""
    return [node for node in _checked_operands(test) if isinstance(node, cst.Call) and is_probe(node)]


def checked_names(test: cst.BaseExpression) -> list[str]:
    """The bare names a test checks as probes would be checked (`fn`, `fn is None`, `callable(fn)`)."""
    return [node.value for node in _checked_operands(test) if isinstance(node, cst.Name)]


def _checked_operands(node: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """The operands whose truth a test checks, through `not`, `and`/`or`, `x is None` /
    `x is not None` and `callable(x)`: what probe_calls and checked_names look among."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
        yield from _checked_operands(node.expression)
    elif isinstance(node, cst.BooleanOperation):
        yield from _checked_operands(node.left)
        yield from _checked_operands(node.right)
    elif isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
        target = node.comparisons[0]
        if isinstance(target.comparator, cst.Name) and target.comparator.value == "None":
            yield from _checked_operands(node.left)
    elif isinstance(node, cst.Call) and _called_builtin(node) in PROBE_CHECKS and len(node.args) == 1:
        yield from _checked_operands(node.args[0].value)
    else:
        yield node


def is_probe(call: cst.Call) -> bool:
    """`getattr(obj, "_x", default)`: never raises, whatever torch has."""
    return (
        _called_builtin(call) == STRING_USE
        and len(call.args) == 3
        and not any(arg.keyword is not None or arg.star for arg in call.args)
        and string_value(call.args[1].value) is not None
    )


def always_exits(suite: cst.BaseSuite) -> bool:
    """Whether running `suite` always leaves the enclosing block (return, raise, continue, break)."""
    return _always(suite, (cst.Return, cst.Raise, cst.Continue, cst.Break))


def always_returns(suite: cst.BaseSuite) -> bool:
    """Whether running `suite` always leaves the block without an error (return, continue, break):
    a handler that does so is the fallback of everything its `try` body binds."""
    return _always(suite, (cst.Return, cst.Continue, cst.Break)) and not _always(suite, (cst.Raise,))


def always_raises(suite: cst.BaseSuite) -> bool:
    """Whether running `suite` always raises: an `except` handler that re-raises is no fallback."""
    return _always(suite, (cst.Raise,))


def _always(suite: cst.BaseSuite, kinds: tuple[type[cst.CSTNode], ...]) -> bool:
    statements: Sequence[cst.BaseStatement | cst.BaseSmallStatement]
    if isinstance(suite, (cst.SimpleStatementSuite, cst.IndentedBlock)):
        statements = suite.body
    else:
        return False
    for statement in statements:
        if isinstance(statement, kinds):
            return True
        if isinstance(statement, cst.SimpleStatementLine) and any(isinstance(small, kinds) for small in statement.body):
            return True
        if isinstance(statement, cst.If) and _if_always(statement, kinds):
            return True
    return False


def _if_always(node: cst.If, kinds: tuple[type[cst.CSTNode], ...]) -> bool:
    if not _always(node.body, kinds):
        return False
    orelse = node.orelse
    if isinstance(orelse, cst.If):
        return _if_always(orelse, kinds)
    if isinstance(orelse, cst.Else):
        return _always(orelse.body, kinds)
    return False


def _called_builtin(call: cst.Call) -> str | None:
    return call.func.value if isinstance(call.func, cst.Name) else None


def string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
