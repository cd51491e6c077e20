"""Private uses that hide in strings and in writes by name.

`getattr(torch, "_x")` has always been a reference; these name a private torch API as surely, and
break as hard on an upgrade:

* writes and deletions by name: `setattr(torch.backends, "_x", v)`, `delattr(torch, "_x")`, and
  the test helpers that do the same: `monkeypatch.setattr(torch, "_x", v)`,
  `monkeypatch.delattr(torch, "_x")`, `mock.patch.object(torch._C, "_x")`;
* whole-string paths: `mock.patch("torch._dynamo.config.x")` (also as a decorator, and
  `patch.multiple`), `monkeypatch.setattr("torch._x.y", v)`, `monkeypatch.delattr("torch._x.y")`,
  `importlib.import_module("torch._x")`, `__import__("torch._x")`.

A whole-string path is read as written, from a root: it is not resolved through the file's aliases
(`mock.patch` imports the path itself). Each is reported at the string (`forms.py` lists the forms).
The callables are recognised by their name as written (`patch`, `mock.patch`,
`unittest.mock.patch`, any `*.setattr`), the way a reader recognises them.
"""

from __future__ import annotations

from typing import NamedTuple

import libcst as cst

from esper_lint.analysis.forms import NAMED_ATTRIBUTE_CALLS, PATCH_OBJECT, PATCH_PATH_METHODS, PATH_CALLS, TEST_HELPER_WRITES


# Named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import time on every
# pre-commit run. The two kinds have different numbers of fields, so neither equals the other.
class NamedAttribute(NamedTuple):
    """`setattr(owner, "_x", ...)`: the owner expression and the attribute's string."""

    owner: cst.BaseExpression
    attribute: str
    string: cst.SimpleString
    # Only the built-in `setattr` may create the attribute; `mock.patch.object` and
    # `monkeypatch.setattr` refuse one that does not exist, and a deletion creates nothing.
    creates: bool = False


class StringPath(NamedTuple):
    """`mock.patch("torch._x.y")`: the dotted path a string names."""

    path: str
    string: cst.SimpleString


def string_reference(call: cst.Call) -> NamedAttribute | StringPath | None:
    """The private-name-bearing string a call passes, if the call is one of the forms above."""
    if any(arg.star for arg in call.args):
        return None  # a `*args` may shift the arguments
    positional = [arg for arg in call.args if arg.keyword is None]
    func = call.func
    if isinstance(func, cst.Name):
        name = func.value
        if name in NAMED_ATTRIBUTE_CALLS and len(positional) >= 2:
            return _named(positional[0].value, positional[1].value, creates=name == "setattr")
        if name in PATH_CALLS and positional:
            return _path(positional[0].value)
        return None
    if not isinstance(func, cst.Attribute):
        return None
    method = func.attr.value
    owner_name = last_name(func.value)
    if method == PATCH_OBJECT and owner_name in PATH_CALLS:  # `mock.patch.object(obj, "_x")`
        return _named(positional[0].value, positional[1].value) if len(positional) >= 2 else None
    if method in PATCH_PATH_METHODS and owner_name in PATH_CALLS:  # `mock.patch.multiple("torch._x", ...)`
        return _path(positional[0].value) if positional else None
    if method in PATH_CALLS and positional:  # `mock.patch(...)`, `importlib.import_module(...)`
        return _path(positional[0].value)
    if method in TEST_HELPER_WRITES and positional:  # `monkeypatch.setattr(...)`, `monkeypatch.delattr(...)`
        first = string_value(positional[0].value)
        if first is not None and "." in first:  # the path form: `monkeypatch.setattr("torch._x.y", v)`
            return _path(positional[0].value)
        return _named(positional[0].value, positional[1].value) if len(positional) >= 2 else None
    return None


def _named(owner: cst.BaseExpression, attribute: cst.BaseExpression, *, creates: bool = False) -> NamedAttribute | None:
    text = string_value(attribute)
    if text is None or not text.isidentifier() or not isinstance(attribute, cst.SimpleString):
        return None
    return NamedAttribute(owner, text, attribute, creates)


def _path(node: cst.BaseExpression) -> StringPath | None:
    text = string_value(node)
    if text is None or not isinstance(node, cst.SimpleString):
        return None
    parts = text.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    return StringPath(text, node)


def last_name(node: cst.BaseExpression) -> str | None:
    """`f` of `f` or of `a.b.f`: the name a call's callee ends in."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def string_value(node: cst.BaseExpression) -> str | None:
    """The value of a plain (not bytes, not f-) string literal."""
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
