"""Version branches: tests on the running torch's version, and the releases each branch runs on.

Real code is written for a range of torch releases and branches on the version:

    if torch.__version__ >= "2.3":                       # TorchVersion compares as a version
    if version.parse(torch.__version__) < version.parse("2.1"):   # packaging, TorchVersion, LooseVersion
    if tuple(map(int, torch.__version__.split(".")[:2])) >= (2, 3):
    if TORCH_MAJOR >= 2 and TORCH_MINOR >= 3:            # names bound to `int(...split(".")[i])`
    if torch_version_at_least("2.11.0.dev"):             # a helper whose body is one such test
    if IS_TORCH_2_3:                                     # a module-level name bound once to one

This module reads such an expression into a `VersionCondition`, a small tree of comparisons on the
release numbers of `torch.__version__` (pre-, dev- and local parts are dropped, as in
`torch_index.versions`: `2.11.0.dev` is `(2, 11, 0)`). The resolver attaches to each reference the
conditions of the branches around it (`Reference.branch`); `TorchKnowledge.branch_releases` turns
them into the releases that may run it. A release counts when *some* patch of it may take the
branch (`2.4` may run `>= "2.4.1"`), so the narrowed range only ever drops releases that provably
never run the code.

torch's `__version__` is a `TorchVersion` since 1.10, which compares with strings as a version;
before, the string comparison agrees with the version one for every release against 2.x bounds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import libcst as cst

from esper_lint.analysis.forms import looks_like_version_flag
from esper_lint.analysis.strings import last_name, string_value
from esper_lint.torch_index.versions import SpecifierError, parse_version

_OPERATORS: Mapping[type, str] = {
    cst.GreaterThan: ">",
    cst.GreaterThanEqual: ">=",
    cst.LessThan: "<",
    cst.LessThanEqual: "<=",
    cst.Equal: "==",
    cst.NotEqual: "!=",
}
_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# `"2.3" <= v` is `v >= "2.3"`.
_MIRRORED = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
# Callables that turn a version string into a comparable version object: packaging's
# `version.parse`/`Version`, torch's `TorchVersion`, distutils' `LooseVersion`/`StrictVersion`.
# Matched by their last name: the comparison is version-wise whichever of them it is.
_VERSION_CONSTRUCTORS = frozenset({"parse", "Version", "TorchVersion", "LooseVersion", "StrictVersion", "parse_version"})
# The patches tried for each minor release: a release may run a branch if one of them does.
_PATCHES = (0, 1, 2, 3, 5, 10, 99)

# The records below are named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import
# time on every pre-commit run. They compare as tuples, so two kinds with as many fields could be
# equal; those that have as many hold values of different types (`Subject.part` is a string,
# `Negation.operand` a condition), so a record equals only a record of its own kind.


class Subject(NamedTuple):
    """A value read from torch's version: the whole release tuple, or one of its numbers."""

    part: str  # "version": the release tuple; "major" / "minor": one number; "pair": (major, minor)


VERSION = Subject("version")
MAJOR = Subject("major")
MINOR = Subject("minor")
PAIR = Subject("pair")


class Compare(NamedTuple):
    subject: Subject
    compare: str  # ">", ">=", "<", "<=", "==", "!="
    bound: tuple[int, ...] | int

    def holds(self, release: tuple[int, ...]) -> bool:
        padded = (*release, 0, 0, 0)[:3]
        value: object
        if self.subject is MAJOR:
            value = padded[0]
        elif self.subject is MINOR:
            value = padded[1]
        elif self.subject is PAIR:
            value = padded[:2]
        else:
            value = padded
        bound = self.bound
        if isinstance(bound, tuple) and isinstance(value, tuple):
            width = max(len(bound), len(value))
            value, bound = (*value, *(0,) * (width - len(value))), (*bound, *(0,) * (width - len(bound)))
        return _COMPARE[self.compare](value, bound)


class Negation(NamedTuple):
    operand: VersionCondition

    def holds(self, release: tuple[int, ...]) -> bool:
        return not self.operand.holds(release)


class Conjunction(NamedTuple):
    operands: tuple[VersionCondition, ...]
    every: bool  # True: `and`; False: `or`

    def holds(self, release: tuple[int, ...]) -> bool:
        results = (operand.holds(release) for operand in self.operands)
        return all(results) if self.every else any(results)


class Opaque(NamedTuple):
    """A test that reads like a version test but whose releases cannot be read here: a flag or
    helper from another module (`torch_geometric.typing.WITH_PT23`, `is_torch_greater_or_equal("2.3")`).
    It narrows nothing (either outcome may happen on any release). A public replacement is
    suggested under it only where its name states a lower bound (`WITH_PT23`, `TORCH_GE_2_3`,
    `TORCH_VERSION_AT_LEAST_2_5`, `_TORCH_GREATER_EQUAL_2_1`, `is_torch_greater_or_equal("2.3")`:
    `bound`) and the replacement exists in every release the name claims (`claimed_releases`)."""

    name: str
    bound: tuple[int, ...] | None = None  # the `>=` bound the name (or the helper's argument) states

    def holds(self, release: tuple[int, ...]) -> bool:
        raise TypeError("an opaque version test has no known outcome")


VersionCondition = Compare | Negation | Conjunction | Opaque

# `WITH_PT23`, `PT_2_3`, `TORCH_GE_2_3`, `_TORCH_GREATER_EQUAL_2_1`, `TORCH_VERSION_AT_LEAST_2_5`,
# `TORCH_VERSION_AFTER_2_5`, `is_torch_greater_or_equal_than_2_0`: a name that states `>= X.Y`.
_NAMED_LOWER_BOUND = re.compile(
    r"(?:(?:^|_)(?:with_)?(?:pt|torch)|_ge|greater_?(?:or_?)?equal(?:_?than)?|at_?least|after)_?v?(\d)_?(\d{1,2})$",
    re.I,
)
# A helper whose name states `>=` and whose one argument is the version: `is_torch_greater_or_equal("2.3")`.
_LOWER_BOUND_HELPER = re.compile(r"(?:greater_?(?:or_?)?equal|at_?least|_ge)$", re.I)


def _named_bound(name: str) -> tuple[int, ...] | None:
    match = _NAMED_LOWER_BOUND.search(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _claimed(condition: VersionCondition) -> VersionCondition | None:
    """The condition with each opaque test read as the `>=` its name states; None where one states none."""
    if isinstance(condition, Opaque):
        return None if condition.bound is None else Compare(VERSION, ">=", condition.bound)
    if isinstance(condition, Negation):
        inner = _claimed(condition.operand)
        return None if inner is None else Negation(inner)
    if isinstance(condition, Conjunction):
        operands = [_claimed(operand) for operand in condition.operands]
        if any(operand is None for operand in operands):
            return None
        return Conjunction(tuple(o for o in operands if o is not None), condition.every)
    return condition


def claimed_releases(
    branch: tuple[tuple[VersionCondition, bool], ...], releases: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The releases a branch runs on if its opaque tests mean what their names say; None where a
    name states no bound."""
    claimed: list[tuple[VersionCondition, bool]] = []
    for condition, outcome in branch:
        read = _claimed(condition)
        if read is None:
            return None
        claimed.append((read, outcome))
    return releases_taking(tuple(claimed), releases)

def is_opaque(branch: tuple[tuple[VersionCondition, bool], ...]) -> bool:
    """Whether some test of the branch is a version test whose releases are unknown."""
    return any(_has_opaque(condition) for condition, _ in branch)


def _has_opaque(condition: VersionCondition) -> bool:
    if isinstance(condition, Opaque):
        return True
    if isinstance(condition, Negation):
        return _has_opaque(condition.operand)
    if isinstance(condition, Conjunction):
        return any(_has_opaque(operand) for operand in condition.operands)
    return False


@lru_cache(maxsize=4096)
def may_take(condition: VersionCondition, outcome: bool, release: str) -> bool:
    """Whether some patch of minor release `release` ("X.Y") gives `condition` this outcome."""
    if _has_opaque(condition):
        return True
    try:
        major, minor = parse_version(release)[:2]
    except (SpecifierError, ValueError):
        return True
    return any(condition.holds((major, minor, patch)) is outcome for patch in _PATCHES)


def releases_taking(branch: tuple[tuple[VersionCondition, bool], ...], releases: tuple[str, ...]) -> tuple[str, ...]:
    """The releases that may run code under every (condition, outcome) of `branch`."""
    return tuple(release for release in releases if all(may_take(c, o, release) for c, o in branch))


# ---------------------------------------------------------------------------- reading expressions
# What a name or a call means for versions, as the resolver knows it: a `Subject` (a value read
# from torch's version), a `VersionCondition` (a test), or a `Helper` (a function whose body is one
# test on its parameter).
class Helper(NamedTuple):
    parameter: str | None  # the parameter compared with torch's version; None: a test on constants
    body: cst.BaseExpression


Meaning = Subject | Compare | Negation | Conjunction | Opaque | Helper


class VersionReader:
    """Reads version expressions; `resolve` gives the torch name an expression resolves to (or
    None), `meaning` what a bare name was bound to (a module-level constant, a helper)."""

    def __init__(
        self,
        resolve: Callable[[cst.BaseExpression], str | None],
        meaning: Callable[[str], Meaning | None],
    ) -> None:
        self.resolve = resolve
        self.meaning = meaning
        self._conditions: dict[int, tuple[cst.BaseExpression, VersionCondition | None]] = {}

    # -- values
    def subject(self, node: cst.BaseExpression, substitutions: Mapping[str, object] | None = None) -> Subject | None:
        """What part of torch's version `node` reads, if it reads one."""
        if isinstance(node, cst.Attribute) and node.attr.value in ("release", "base_version", "major", "minor"):
            # `version.parse(torch.__version__).release >= (2, 3)`, `Version(torch.__version__).minor >= 3`
            if self.subject(node.value, substitutions) is not VERSION:
                return None
            return {"major": MAJOR, "minor": MINOR}.get(node.attr.value, VERSION)
        if isinstance(node, cst.Tuple) and len(node.elements) == 2:
            # `(TORCH_MAJOR, TORCH_MINOR) >= (2, 3)`
            parts = [self.subject(element.value, substitutions) for element in node.elements]
            return PAIR if parts == [MAJOR, MINOR] else None
        if isinstance(node, (cst.Attribute, cst.Name)):
            if isinstance(node, cst.Name) and substitutions is None:
                meant = self.meaning(node.value)
                if isinstance(meant, Subject):
                    return meant
            qualified = self.resolve(node)
            if qualified in ("torch.__version__", "torch.version.__version__"):
                return VERSION
            return None
        if isinstance(node, cst.Call):
            name = last_name(node.func)
            arguments = [arg for arg in node.args if arg.keyword is None and not arg.star]
            if name in _VERSION_CONSTRUCTORS and len(arguments) == 1:
                return VERSION if self.subject(arguments[0].value, substitutions) is VERSION else None
            if name == "int" and len(arguments) == 1:
                return self._split_item(arguments[0].value)
            if name == "tuple" and len(arguments) == 1:
                return self._split_prefix_as_ints(arguments[0].value)
        return None

    def _split_item(self, node: cst.BaseExpression) -> Subject | None:
        """`torch.__version__.split(".")[0]` / `[1]`."""
        if not (isinstance(node, cst.Subscript) and len(node.slice) == 1):
            return None
        index = node.slice[0].slice
        if not (isinstance(index, cst.Index) and isinstance(index.value, cst.Integer)):
            return None
        if not self._is_split(node.value):
            return None
        number = _integer(index.value)
        return MAJOR if number == 0 else MINOR if number == 1 else None

    def _split_prefix_as_ints(self, node: cst.BaseExpression) -> Subject | None:
        """`map(int, torch.__version__.split(".")[:2])` or `(int(x) for x in ...split(".")[:2])`."""
        source: cst.BaseExpression | None = None
        if isinstance(node, cst.Call) and last_name(node.func) == "map" and len(node.args) == 2:
            if isinstance(node.args[0].value, cst.Name) and node.args[0].value.value == "int":
                source = node.args[1].value
        elif isinstance(node, cst.GeneratorExp) and node.for_in.inner_for_in is None and not node.for_in.ifs:
            element = node.elt
            if (
                isinstance(element, cst.Call)
                and last_name(element.func) == "int"
                and len(element.args) == 1
                and isinstance(element.args[0].value, cst.Name)
                and isinstance(node.for_in.target, cst.Name)
                and element.args[0].value.value == node.for_in.target.value
            ):
                source = node.for_in.iter
        if source is None or not (isinstance(source, cst.Subscript) and len(source.slice) == 1):
            return None
        part = source.slice[0].slice
        if not (isinstance(part, cst.Slice) and part.lower is None and part.step is None):
            return None
        if not (isinstance(part.upper, cst.Integer) and _integer(part.upper) == 2):
            return None
        return PAIR if self._is_split(source.value) else None

    def _is_split(self, node: cst.BaseExpression) -> bool:
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "split"):
            return False
        if len(node.args) != 1 or string_value(node.args[0].value) != ".":
            return False
        base = node.func.value
        # `torch.__version__.split(".")` or `str(torch.__version__).split(".")`
        if isinstance(base, cst.Call) and last_name(base.func) == "str" and len(base.args) == 1:
            base = base.args[0].value
        return self.subject(base) is VERSION

    # -- tests
    def condition(
        self, node: cst.BaseExpression, substitutions: Mapping[str, object] | None = None
    ) -> VersionCondition | None:
        """The version test `node` is, if it is one through and through."""
        if substitutions is not None:
            return self._condition(node, substitutions)
        cached = self._conditions.get(id(node))
        if cached is None:
            cached = self._conditions[id(node)] = (node, self._condition(node, None))
        return cached[1]

    def _condition(
        self, node: cst.BaseExpression, substitutions: Mapping[str, object] | None
    ) -> VersionCondition | None:
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            inner = self.condition(node.expression, substitutions)
            return None if inner is None else Negation(inner)
        if isinstance(node, cst.BooleanOperation):
            left = self.condition(node.left, substitutions)
            right = self.condition(node.right, substitutions)
            if left is None or right is None:
                return None
            return Conjunction((left, right), every=isinstance(node.operator, cst.And))
        if isinstance(node, cst.Comparison):
            return self._comparison(node, substitutions)
        if isinstance(node, cst.Name) and substitutions is None:
            meant = self.meaning(node.value)
            if isinstance(meant, (Compare, Negation, Conjunction, Opaque)):
                return meant
            return None
        if isinstance(node, cst.Call) and substitutions is None:
            return self._helper_call(node)
        return None

    def opaque(self, node: cst.BaseExpression) -> Opaque | None:
        """A flag or helper call that says it is about torch's version, where `condition` could
        not read it: `typing.WITH_PT23`, `is_torch_greater_or_equal("2.3")`."""
        argument: str | None = None
        if isinstance(node, cst.Call):
            if len(node.args) == 1 and node.args[0].keyword is None:
                argument = string_value(node.args[0].value)
            node = node.func
        name = node.value if isinstance(node, cst.Name) else node.attr.value if isinstance(node, cst.Attribute) else None
        if name is None or not looks_like_version_flag(name):
            return None
        bound = _named_bound(name)
        if bound is None and argument is not None and _LOWER_BOUND_HELPER.search(name):
            try:
                bound = parse_version(argument)
            except SpecifierError:
                bound = None
        return Opaque(name, bound)

    def _comparison(self, node: cst.Comparison, substitutions: Mapping[str, object] | None) -> VersionCondition | None:
        parts: list[VersionCondition] = []
        left = node.left
        for target in node.comparisons:
            compare = _OPERATORS.get(type(target.operator))
            if compare is None:
                return None
            part = self._one_comparison(left, compare, target.comparator, substitutions)
            if part is None:
                return None
            parts.append(part)
            left = target.comparator
        return parts[0] if len(parts) == 1 else Conjunction(tuple(parts), every=True)

    def _one_comparison(
        self,
        left: cst.BaseExpression,
        compare: str,
        right: cst.BaseExpression,
        substitutions: Mapping[str, object] | None,
    ) -> Compare | None:
        subject = self.subject(left, substitutions)
        other = right
        if subject is None:
            subject = self.subject(right, substitutions)
            other = left
            if subject is None:
                return None
            compare = _MIRRORED[compare]
        bound = self._bound(other, subject, substitutions)
        if bound is None:
            return None
        return Compare(subject, compare, bound)

    def _bound(
        self, node: cst.BaseExpression, subject: Subject, substitutions: Mapping[str, object] | None
    ) -> tuple[int, ...] | int | None:
        if subject is MAJOR or subject is MINOR:
            return _integer(node) if isinstance(node, cst.Integer) else None
        if (subject is PAIR or subject is VERSION) and isinstance(node, cst.Tuple) and node.elements:
            numbers = [_integer(element.value) for element in node.elements]
            return None if any(n is None for n in numbers) else tuple(n for n in numbers if n is not None)
        if subject is VERSION:
            text = self._version_text(node, substitutions)
            if text is None:
                return None
            try:
                return parse_version(text)
            except SpecifierError:
                return None
        return None

    def _version_text(self, node: cst.BaseExpression, substitutions: Mapping[str, object] | None) -> str | None:
        text = string_value(node)
        if text is not None:
            return text
        if isinstance(node, cst.Name) and substitutions is not None:
            value = substitutions.get(node.value)
            return value if isinstance(value, str) else None
        if isinstance(node, cst.Call):
            name = last_name(node.func)
            if name in _VERSION_CONSTRUCTORS and len(node.args) == 1 and node.args[0].keyword is None:
                return self._version_text(node.args[0].value, substitutions)
        return None

    def _helper_call(self, node: cst.Call) -> VersionCondition | None:
        if not isinstance(node.func, cst.Name):
            return None
        helper = self.meaning(node.func.value)
        if not isinstance(helper, Helper):
            return None
        if helper.parameter is None:
            return self.condition(helper.body, {}) if not node.args else None
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            return None
        argument = string_value(node.args[0].value)
        if argument is None:
            return None
        return self.condition(helper.body, {helper.parameter: argument})


def helper_of(function: cst.FunctionDef) -> Helper | None:
    """A function whose body is one `return <test>` on at most one parameter: a version helper
    candidate (whether the test reads torch's version is decided when it is called)."""
    params = function.params
    if isinstance(params.star_arg, cst.Param) or params.star_kwarg is not None:
        return None
    names = [param.name.value for param in (*params.posonly_params, *params.params, *params.kwonly_params)]
    if len(names) > 1:
        return None
    body = function.body
    statements: list[cst.BaseSmallStatement] = []
    if isinstance(body, cst.SimpleStatementSuite):
        statements = list(body.body)
    elif isinstance(body, cst.IndentedBlock):
        concrete = [s for s in body.body if not _is_docstring(s)]
        if len(concrete) != 1 or not isinstance(concrete[0], cst.SimpleStatementLine):
            return None
        statements = list(concrete[0].body)
    if len(statements) != 1 or not isinstance(statements[0], cst.Return) or statements[0].value is None:
        return None
    return Helper(names[0] if names else None, statements[0].value)


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _integer(node: cst.BaseExpression) -> int | None:
    if not isinstance(node, cst.Integer):
        return None
    try:
        return int(node.value.replace("_", ""), 0)
    except ValueError:
        return None
