"""Build the signature and deprecation history of torch's private callables from release wheels.

A companion of :mod:`tools.build_torch_index` (which records *which* private names exist): this
builder records *how* each private callable may be called in each release, and which private names
warn when used. Like the index builder it reads one wheel per minor release statically (``zipfile``
and ``ast``, plus the operator schemas the wheel ships as text); nothing from a wheel is imported.

Signatures
----------
A signature is the *shape* of a callable's parameters: their names, which are positional-only or
keyword-only, which have defaults, and whether ``*args``/``**kwargs`` are taken (annotations and
default values are left out: they do not decide whether a call binds). It is read from:

* ``def`` in the ``.py`` sources: module functions, methods (as reached through the class, so an
  instance method keeps ``self``, a ``classmethod`` drops ``cls``) and classes (their own
  ``__init__`` without ``self``). A decorator that is not known to keep the signature
  (``functools.lru_cache``, ``contextmanager``, ``torch.no_grad``, ``staticmethod``...) makes the
  signature unknown (``?``) rather than guessed; so does a second binding of the same name that is
  not a ``def``, and a class with its own ``__new__``, a metaclass or an ``Enum``/``NamedTuple``
  base;
* the stubs (``torch/_C/*.pyi``), every ``@overload`` kept (a call is fine if any overload takes
  it); a ``__x`` parameter of a stub is positional-only (the pre-PEP 570 stub convention). The
  functions of ``torch/_C/_VariableFunctions.pyi`` are also recorded under ``torch.`` (where
  ``torch/__init__.py`` copies them: ``torch._foreach_norm``). ``torch.Tensor`` also gets the
  methods of its C base (``torch._C.TensorBase``/``_TensorBase``) that it does not define itself;
* the ATen schemas (``native_functions.yaml``, else ``RegistrationDeclarations.h``) for
  ``torch.ops.aten._op.overload`` (``default`` for the unnamed overload) and ``torch.ops.aten._op``
  (the packet: any of its overloads);
* ``from``-imports and ``__all__``-listed star imports: a private name that re-exports a callable
  gets its signature (``torch._dynamo.disable`` is ``torch._dynamo.decorators.disable``); the
  members of a class are copied only for a deliberate re-export (a package ``__init__``, ``__all__``
  or the ``as`` idiom), as in the index.

Only private names (a component after ``torch`` starts with ``_``) are stored.

Deprecations
------------
For each private name, the releases in which using it warns, and what the warning points to where
its text names a dotted replacement (``use `torch.x.y` instead``):

* a function, method or class (its ``__init__``) whose body starts, unconditionally, with
  ``warnings.warn(..., DeprecationWarning|FutureWarning)`` (``category=`` too); a helper whose own
  name contains ``warn`` is left out (warning is its job, not a deprecation);
* ``@deprecated(...)`` (``typing_extensions``, ``warnings``) unless ``category=None``;
* a module whose top level warns that way (warns on import; ``kind`` ``module``);
* ``torch.utils._config_module`` entries: ``Config(alias="torch._dynamo.config.recompile_limit")``
  (``kind`` ``alias``; it warns only if also ``deprecated=True``) and ``Config(deprecated=True)``
  (``kind`` ``config``): these warn in the releases whose ``_config_module.py`` implements
  ``deprecated``.

Output
------
``rules/torch-signatures.gz``: gzip members (``zcat`` shows them all) with fixed headers and sorted
JSON keys, so the same wheels read by the same Python give a byte-identical file. The first member is a
JSON header line::

    {"format": 1, "releases": ["1.6", ...], "python": "3.11",
     "wheels": {"1.6": {"file": "torch-1.6.0-...whl", "sha256": "..."}, ...},
     "bucket_keys": "torch\\ntorch._C\\n...", "bucket_sizes": [...],
     "deprecations": [offset, length], "counts": {...}}

Each bucket member (a name's parent cut to 3 components, ``bucket_key``) is a JSON object
``{name relative to the bucket key: [[release index, value], ...]}`` listing only the releases
where the value changes.
A value is ``""`` (no such callable in that release), ``"?"`` (a callable whose signature cannot be
read statically), or ``"<source>|<overload>;<overload>..."`` where source is ``py`` (a ``def``),
``gen`` (a stub torchgen generates from the schemas: ``_VariableFunctions``, ``_nn``, ``_fft``,
``_linalg``, ``_nested``, ``_sparse``, ``_special``), ``pyi`` (a stub written by hand, at least in
part: shown, not asserted on) or ``schema`` and an overload is its parameters joined by ``,``: ``name`` (required), ``name=`` (has
a default), ``/`` (the parameters before it are positional-only), ``*`` (the ones after it are
keyword-only), ``*name`` and ``**name``. The deprecations member is a JSON list of
``{"name", "kind", "category", "message", "target", "source", "ranges"}`` objects (``ranges``:
release index ranges ``"0-3,5-5"`` in which that record holds).

Usage
-----
::

    python -m tools.build_torch_signatures --wheels /work/torch-wheels \\
        --out rules/torch-signatures.gz

uses the newest patch of each minor release in the folder (1.6 on; ``--min-release``). A wheel
that cannot be read is an error, not a silently missing release.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from esper_lint.names import is_dunder, is_private, is_private_component
from esper_lint.torch_index.versions import parse_version
from tools.build_torch_index import (  # the same AST reading and wheel handling as the index
    _dotted,
    _literal_strs,
    _module_name_for,
    _target_names,
    sha256_of,
)

FORMAT = 1
UNKNOWN = "?"
ABSENT = ""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHEEL_RE = re.compile(r"^torch-(\d+)\.(\d+)\.(\d+)(?:[-+.][^-]*)?-.*\.whl$")
_YAML_FUNC = re.compile(r"^- func: (.*)$", re.M)
_DECL_SCHEMA = re.compile(r'"schema": "aten::(.*?)", "compound"')
_DECL_SCHEMA_ANY = re.compile(r'"schema": "aten::((?:[^"\\]|\\.)*)"')

# Decorators that return the function itself or a wrapper taking the same arguments.
_KEEPS_SIGNATURE = frozenset(
    {
        "staticmethod",
        "classmethod",
        "overload",
        "typing.overload",
        "lru_cache",
        "functools.lru_cache",
        "cache",
        "functools.cache",
        "contextmanager",
        "contextlib.contextmanager",
        "abstractmethod",
        "abc.abstractmethod",
        "no_type_check",
        "final",
        "typing.final",
        "override",
        "typing_extensions.override",
        "torch.no_grad",
        "no_grad",
        "torch.enable_grad",
        "torch.jit.ignore",
        "torch.jit.unused",
        "torch.jit.export",
        "deprecated",
        "typing_extensions.deprecated",
        "warnings.deprecated",
    }
)
_NOT_CALLABLE_DECORATORS = frozenset(
    {"property", "cached_property", "functools.cached_property", "abstractproperty", "abc.abstractproperty"}
)
_DEPRECATION_DECORATORS = frozenset({"deprecated", "typing_extensions.deprecated", "warnings.deprecated"})
# Stubs torchgen writes whole from the operator schemas, with the names torch's argument parser
# accepts. The others (`torch/_C/__init__.pyi`, `_distributed_c10d.pyi`...) are written by hand, at
# least in part, and lag behind the C++ bindings: on torch's own 2.13 sources they rejected calls
# that work (`torch._C.import_ir_module` with 5 arguments), so ESP204 does not assert on them.
_GENERATED_STUBS = frozenset(
    f"torch/_C/{name}.pyi" for name in ("_VariableFunctions", "_nn", "_fft", "_linalg", "_nested", "_sparse", "_special")
)
_INSTALLS_CONFIG = re.compile(r"install_config_module\(\s*sys\.modules\[__name__\]\s*\)")
_WARNING_CATEGORIES = frozenset({"DeprecationWarning", "FutureWarning"})
_CLASS_DECORATORS_KEEPING_INIT = frozenset(
    {"dataclass", "dataclasses.dataclass", "final", "typing.final", "total_ordering", "functools.total_ordering"}
)
_SPECIAL_BASES = ("Enum", "IntEnum", "Flag", "IntFlag", "NamedTuple", "Protocol", "TypedDict", "Generic")
# "use `torch.x` instead", "in favor of torch.x", "renamed to `x.y`": a dotted name the text points to
_TARGET = re.compile(
    r"(?:\buse|\bcall|replaced (?:by|with)|in favou?r of|renamed to|moved to|switch to|migrate to|alias (?:of|for))"
    r"\s+(?:the\s+)?`?(torch(?:\.[A-Za-z_]\w*)+)(?![\w*])",
    re.I,
)


# --------------------------------------------------------------------------------------
# signatures of one `def`


def _decorator_name(node: ast.expr) -> str | None:
    return _dotted(node.func if isinstance(node, ast.Call) else node)


def encode_parameters(args: ast.arguments, *, drop_first: bool = False, stub: bool = False) -> str:
    """The shape of a parameter list: ``a,b=,/,*,c=,**kw`` (see the module docstring)."""
    positional = [*args.posonlyargs, *args.args]
    defaults_from = len(positional) - len(args.defaults)
    posonly = len(args.posonlyargs)
    if stub and posonly == 0:
        # pre-PEP 570 stubs: leading `__x` parameters are positional-only
        while posonly < len(positional) and positional[posonly].arg.startswith("__") and not is_dunder(positional[posonly].arg):
            posonly += 1
    tokens: list[str] = []
    first = 1 if drop_first and positional else 0
    for index, arg in enumerate(positional):
        if index >= first:
            tokens.append(arg.arg + ("=" if index >= defaults_from else ""))
        if index + 1 == posonly and posonly > first:
            tokens.append("/")
    if args.vararg is not None:
        tokens.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        tokens.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        tokens.append(arg.arg + ("=" if default is not None else ""))
    if args.kwarg is not None:
        tokens.append("**" + args.kwarg.arg)
    return ",".join(tokens)


@dataclass
class _Callable:
    """What one module says about one local dotted name (``f`` or ``Cls.m``)."""

    overloads: list[str] = field(default_factory=list)
    unknown: bool = False
    not_callable: bool = False
    source: str = "py"

    def value(self) -> str:
        if self.not_callable:
            return ABSENT
        if self.unknown or not self.overloads:
            return UNKNOWN
        return f"{self.source}|{';'.join(sorted(set(self.overloads)))}"


@dataclass(frozen=True)
class Deprecation:
    local: str  # "" for the module itself
    kind: str  # "warns" | "decorator" | "module" | "alias" | "config"
    category: str
    message: str
    target: str
    warns: bool = True


@dataclass
class ModuleFacts:
    name: str
    path: str
    is_package: bool
    stub: bool
    source: str = "py"  # what a signature read from this file is: py, gen (generated stub) or pyi
    callables: dict[str, _Callable] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)  # local dotted class names
    class_bases: dict[str, list[str]] = field(default_factory=dict)
    rebound: set[str] = field(default_factory=set)  # top-level names also bound otherwise
    imports: dict[str, str] = field(default_factory=dict)  # local -> absolute dotted target
    explicit: set[str] = field(default_factory=set)  # `from x import y as y`
    stars: list[str] = field(default_factory=list)
    all_: list[str] | None = None
    deprecations: list[Deprecation] = field(default_factory=list)
    config_module: bool = False


def _string_of(node: ast.expr | None) -> str | None:
    """The text of a string literal, an f-string (``{...}`` for its fields) or a `+` of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{...}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_of(node.left), _string_of(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _clean_message(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 300 else flat[:297] + "..."


def _target_in(message: str) -> str:
    match = _TARGET.search(message)
    return match.group(1).rstrip(".") if match else ""


def _warning_call(stmt: ast.stmt) -> tuple[str, str] | None:
    """(category, message) of an unconditional ``warnings.warn(msg, DeprecationWarning)``."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    if _dotted(call.func) not in ("warnings.warn", "warn"):
        return None
    category_node: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    message_node: ast.expr | None = call.args[0] if call.args else None
    for keyword in call.keywords:
        if keyword.arg == "category":
            category_node = keyword.value
        elif keyword.arg == "message":
            message_node = keyword.value
    category = _dotted(category_node) if category_node is not None else None
    category = category.rsplit(".", 1)[-1] if category else None
    if category not in _WARNING_CATEGORIES:
        return None
    return category, _clean_message(_string_of(message_node) or "")


def _body_warning(body: list[ast.stmt]) -> tuple[str, str] | None:
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        found = _warning_call(stmt)
        if found is not None:
            return found
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue  # `import warnings` before the warning
        return None
    return None


def _decorator_deprecation(decorators: list[ast.expr]) -> tuple[str, str] | None:
    for decorator in decorators:
        if _decorator_name(decorator) not in _DEPRECATION_DECORATORS or not isinstance(decorator, ast.Call):
            continue
        category = "DeprecationWarning"
        for keyword in decorator.keywords:
            if keyword.arg == "category":
                if isinstance(keyword.value, ast.Constant) and keyword.value.value is None:
                    return None  # `category=None`: no warning at run time
                category = (_dotted(keyword.value) or category).rsplit(".", 1)[-1]
        message = _string_of(decorator.args[0]) if decorator.args else None
        return category, _clean_message(message or "")
    return None


class _ModuleReader:
    """Walk one module's top level (and class bodies) recording callables and deprecations."""

    def __init__(self, facts: ModuleFacts) -> None:
        self.facts = facts

    def module(self, tree: ast.Module) -> None:
        self.body(tree.body, prefix="", top=True)
        found = None
        for stmt in tree.body:
            found = _warning_call(stmt)
            if found is not None:
                break
        if found is not None:
            category, message = found
            self.facts.deprecations.append(Deprecation("", "module", category, message, _target_in(message)))

    def body(self, stmts: list[ast.stmt], prefix: str, top: bool) -> None:
        for stmt in stmts:
            self.statement(stmt, prefix, top)

    def statement(self, stmt: ast.stmt, prefix: str, top: bool) -> None:
        facts = self.facts
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(stmt, prefix)
        elif isinstance(stmt, ast.ClassDef):
            self.klass(stmt, prefix)
        elif isinstance(stmt, ast.If):
            if _is_type_checking(stmt.test) and not facts.stub:
                self.body(stmt.orelse, prefix, top)
                return
            if _is_main_guard(stmt.test):
                return
            self.body(stmt.body, prefix, top)
            self.body(stmt.orelse, prefix, top)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            self.body(stmt.body, prefix, top)  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                self.body(handler.body, prefix, top)
            self.body(stmt.orelse, prefix, top)  # type: ignore[attr-defined]
            self.body(stmt.finalbody, prefix, top)  # type: ignore[attr-defined]
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for name in _target_names(target):
                    self.rebind(prefix + name)
                    if top and name == "__all__" and isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                        facts.all_ = _literal_strs(stmt.value)
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None and facts.config_module:
                names = [n for t in targets for n in _target_names(t)]
                if len(names) == 1:
                    self.config_entry(prefix + names[0], stmt.value)
        elif isinstance(stmt, ast.Import) and top:
            for alias in stmt.names:
                if alias.asname:
                    self.rebind(alias.asname)
        elif isinstance(stmt, ast.ImportFrom) and top:
            self.import_from(stmt)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                for name in _target_names(target):
                    self.rebind(prefix + name)

    def rebind(self, local: str) -> None:
        self.facts.rebound.add(local)

    def import_from(self, stmt: ast.ImportFrom) -> None:
        facts = self.facts
        if stmt.level:
            package = facts.name if facts.is_package else facts.name.rpartition(".")[0]
            parts = package.split(".")
            if stmt.level > 1:
                parts = parts[: len(parts) - (stmt.level - 1)]
            base = ".".join(parts + ([stmt.module] if stmt.module else []))
        else:
            base = stmt.module or ""
        if base.split(".")[0] != "torch":
            for alias in stmt.names:
                self.rebind(alias.asname or alias.name)
            return
        for alias in stmt.names:
            if alias.name == "*":
                facts.stars.append(base)
                continue
            local = alias.asname or alias.name
            facts.imports[local] = f"{base}.{alias.name}"
            if alias.asname == alias.name:
                facts.explicit.add(local)

    def config_entry(self, local: str, value: ast.expr) -> None:
        if not (isinstance(value, ast.Call) and (_dotted(value.func) or "").rsplit(".", 1)[-1] == "Config"):
            return
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        alias = keywords.get("alias")
        deprecated = keywords.get("deprecated")
        is_deprecated = isinstance(deprecated, ast.Constant) and deprecated.value is True
        message = _clean_message(_string_of(keywords.get("deprecation_message")) or "")
        if isinstance(alias, ast.Constant) and isinstance(alias.value, str):
            category = "FutureWarning" if is_deprecated else ""
            self.facts.deprecations.append(Deprecation(local, "alias", category, message, alias.value, is_deprecated))
        elif is_deprecated:
            self.facts.deprecations.append(Deprecation(local, "config", "FutureWarning", message, _target_in(message)))

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str) -> None:
        facts = self.facts
        local = prefix + node.name
        names = [_decorator_name(d) for d in node.decorator_list]
        entry = facts.callables.setdefault(local, _Callable(source=facts.source))
        if any(n in _NOT_CALLABLE_DECORATORS or (n or "").endswith((".setter", ".getter", ".deleter")) for n in names):
            entry.not_callable = True
            return
        if "overload" in names or "typing.overload" in names:
            if not facts.stub:
                return  # the implementation that follows decides what a call binds to
        elif not facts.stub and any(n not in _KEEPS_SIGNATURE for n in names):
            entry.unknown = True
        drop_first = bool(prefix) and "classmethod" in names  # a method: reached through its class
        entry.overloads.append(encode_parameters(node.args, drop_first=drop_first, stub=facts.stub))
        if _warning_helper(node.name):
            return
        found = _decorator_deprecation(node.decorator_list)
        kind = "decorator"
        if found is None and not facts.stub:
            found, kind = _body_warning(node.body), "warns"
        if found is not None:
            category, message = found
            facts.deprecations.append(Deprecation(local, kind, category, message, _target_in(message)))

    def klass(self, node: ast.ClassDef, prefix: str) -> None:
        facts = self.facts
        local = prefix + node.name
        facts.classes.add(local)
        facts.class_bases[local] = [b for b in (_dotted(base) for base in node.bases) if b]
        members = prefix + node.name + "."
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(stmt, members)
            elif isinstance(stmt, ast.ClassDef):
                self.klass(stmt, members)
            else:
                self.statement(stmt, members, top=False)
        init = facts.callables.get(members + "__init__")
        decorators = [_decorator_name(d) for d in node.decorator_list]
        special = (
            any(k.arg == "metaclass" for k in node.keywords)
            or any(b.rsplit(".", 1)[-1] in _SPECIAL_BASES for b in facts.class_bases[local])
            or members + "__new__" in facts.callables
            or any(d not in _CLASS_DECORATORS_KEEPING_INIT and d not in _DEPRECATION_DECORATORS for d in decorators)
        )
        constructor = facts.callables.setdefault(local, _Callable(source=facts.source))
        if init is None or special or init.unknown or not init.overloads:
            constructor.unknown = True
        else:
            constructor.overloads.extend(_drop_first(o) for o in init.overloads)
        if not _warning_helper(node.name):
            found = _decorator_deprecation(node.decorator_list)
            if found is None and init is not None:
                found = next((d[2:4] for d in _own_deprecation(facts, members + "__init__")), None)
            if found is not None:
                category, message = found
                kind = "decorator" if node.decorator_list else "warns"
                facts.deprecations.append(Deprecation(local, kind, category, message, _target_in(message)))


def _warning_helper(name: str) -> bool:
    """`_warn_once`, `_deprecated(name)`: helpers whose job is to warn about something else."""
    lowered = name.lower()
    return "warn" in lowered or "deprecat" in lowered


def _own_deprecation(facts: ModuleFacts, local: str) -> Iterator[tuple[str, str, str, str]]:
    for d in facts.deprecations:
        if d.local == local:
            yield (d.local, d.kind, d.category, d.message)


def _drop_first(encoded: str) -> str:
    tokens = encoded.split(",") if encoded else []
    if tokens and not tokens[0].startswith("*") and tokens[0] != "/":
        tokens = tokens[1:]
        if tokens and tokens[0] == "/":
            tokens = tokens[1:]
    return ",".join(tokens)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


# --------------------------------------------------------------------------------------
# ATen schemas


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def parse_schema(schema: str) -> tuple[str, str, str] | None:
    """``_foreach_norm.Scalar(Tensor[] self, Scalar ord=2) -> Tensor[]`` ->
    ``("_foreach_norm", "Scalar", "self,ord=")``."""
    match = re.match(r"([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(", schema)
    if match is None:
        return None
    depth = 0
    start = match.end() - 1
    end = -1
    for index in range(start, len(schema)):
        if schema[index] == "(":
            depth += 1
        elif schema[index] == ")":
            depth -= 1
            if depth == 0:
                end = index
                break
    if end < 0:
        return None
    tokens: list[str] = []
    for arg in _split_top_level(schema[start + 1 : end]):
        if arg == "*":
            tokens.append("*")
            continue
        declaration, has_default, _ = arg.partition("=")
        name = declaration.split()[-1] if declaration.split() else ""
        if not _IDENT.match(name):
            return None
        tokens.append(name + ("=" if has_default else ""))
    return match.group(1), match.group(2) or "default", ",".join(tokens)


# --------------------------------------------------------------------------------------
# one release


@dataclass
class ReleaseFacts:
    version: str
    wheel: str
    sha256: str
    signatures: dict[str, str]  # private dotted name -> value
    deprecations: list[tuple[str, Deprecation, str]]  # (full name, record, source file)
    syntax_errors: int


def read_release(path: Path) -> ReleaseFacts:
    match = _WHEEL_RE.match(path.name)
    if match is None:
        raise ValueError(f"not a torch wheel name: {path.name}")
    version = f"{match.group(1)}.{match.group(2)}"
    modules: dict[str, ModuleFacts] = {}
    schemas: list[str] = []
    yaml_schemas: list[str] = []
    syntax_errors = 0
    with zipfile.ZipFile(path) as zf:
        entries = sorted(zf.namelist())
        config_source = ""
        if "torch/utils/_config_module.py" in entries:
            config_source = zf.read("torch/utils/_config_module.py").decode("utf-8", "replace")
        sources: list[tuple[str, str, bool, bool]] = []
        for entry in entries:
            if entry.endswith("/native/native_functions.yaml"):
                text = zf.read(entry).decode("utf-8", "replace")
                yaml_schemas = [line.strip().strip("'\"") for line in _YAML_FUNC.findall(text)]
                continue
            if entry.endswith("include/ATen/RegistrationDeclarations.h"):
                text = zf.read(entry).decode("utf-8", "replace")
                schemas = [s.encode().decode("unicode_escape") for s in _DECL_SCHEMA_ANY.findall(text)]
                continue
            if not entry.startswith("torch/") or not entry.endswith((".py", ".pyi")):
                continue
            found = _module_name_for(entry)
            if found is not None:
                sources.append((entry, found[0], found[1], entry.endswith(".pyi")))
        for entry, name, is_package, stub in sources:
            text = zf.read(entry).decode("utf-8", "replace")
            try:
                tree = ast.parse(text, filename=entry)
            except (SyntaxError, ValueError):
                syntax_errors += 1
                continue
            key = name + (".pyi" if stub else "")
            facts = ModuleFacts(name, entry, is_package, stub, ("gen" if entry in _GENERATED_STUBS else "pyi") if stub else "py")
            facts.config_module = _INSTALLS_CONFIG.search(text) is not None
            _ModuleReader(facts).module(tree)
            modules[key] = facts
    config_warns = bool(re.search(r"^\s+deprecated: bool", config_source, re.M)) and "warnings.warn" in config_source
    signatures, deprecations = _resolve(modules, version, config_warns)
    for schema in yaml_schemas or schemas:
        parsed = parse_schema(schema)
        if parsed is None:
            continue
        op, overload, params = parsed
        if not is_private_component(op):
            continue
        signatures[f"torch.ops.aten.{op}.{overload}"] = f"schema|{params}"
        packet = f"torch.ops.aten.{op}"
        previous = signatures.get(packet, "schema|")
        merged = sorted({*filter(None, previous.partition("|")[2].split(";")), params} if previous != "schema|" else {params})
        signatures[packet] = "schema|" + ";".join(merged)
    return ReleaseFacts(version, path.name, sha256_of(path), signatures, deprecations, syntax_errors)


def _resolve(
    modules: dict[str, ModuleFacts], version: str, config_warns: bool
) -> tuple[dict[str, str], list[tuple[str, Deprecation, str]]]:
    """Every private dotted name with a signature value, and the deprecations by full name."""
    # Per module, the local dotted name -> value; a .py module wins over its stub.
    local_values: dict[str, dict[str, str]] = {}
    classes: dict[str, set[str]] = {}
    bases: dict[str, dict[str, list[str]]] = {}
    for key in sorted(modules, key=lambda k: (k.endswith(".pyi"), k)):
        facts = modules[key]
        values = local_values.setdefault(facts.name, {})
        for local, entry in facts.callables.items():
            if local in values:
                continue
            rebound = local in facts.rebound or local.split(".")[0] in facts.rebound
            values[local] = UNKNOWN if rebound and not facts.stub else entry.value()
        classes.setdefault(facts.name, set()).update(facts.classes)
        for cls, cls_bases in facts.class_bases.items():
            bases.setdefault(facts.name, {}).setdefault(cls, cls_bases)
    by_name = {facts.name: facts for key, facts in sorted(modules.items(), key=lambda kv: (not kv[0].endswith(".pyi"), kv[0]))}

    def locate(dotted: str, depth: int = 0) -> tuple[str, str] | None:
        """(module, local dotted name) that a dotted torch name is defined as."""
        if depth > 12:
            return None
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:cut])
            if module not in local_values:
                continue
            local = ".".join(parts[cut:])
            head = parts[cut]
            if local in local_values[module] or local in classes.get(module, ()):
                return module, local
            facts = by_name.get(module)
            if facts is not None and head in facts.imports:
                rest = ".".join(parts[cut + 1 :])
                target = facts.imports[head] + (f".{rest}" if rest else "")
                return locate(target, depth + 1)
            if facts is not None:
                for star in reversed(facts.stars):
                    if head in _exported(star):
                        return locate(f"{star}.{local}", depth + 1)
            return None
        return None

    export_cache: dict[str, set[str]] = {}

    def _exported(module: str) -> set[str]:
        if module not in export_cache:
            export_cache[module] = set()
            facts = by_name.get(module)
            if facts is not None:
                if facts.all_ is not None:
                    export_cache[module] = set(facts.all_)
                else:
                    names = set(local_values.get(module, {})) | set(facts.imports)
                    export_cache[module] = {n for n in names if "." not in n and not n.startswith("_")}
        return export_cache[module]

    out: dict[str, str] = {}
    canonical_of: dict[str, str] = {}  # a re-exported name -> the name it was defined as

    def put(name: str, value: str, *, over_unknown: bool = True) -> None:
        """Record a name; a known signature may replace an unknown one of an alias, never of a
        name the code itself binds (``over_unknown=False``: a Python override of a C method)."""
        if is_private(name) and (name not in out or (over_unknown and out[name] == UNKNOWN)):
            out[name] = value

    def copy_members(alias: str, module: str, cls: str) -> None:
        prefix = cls + "."
        for local, value in local_values.get(module, {}).items():
            if local.startswith(prefix) and not is_dunder(local.rpartition(".")[2]):
                put(f"{alias}.{local[len(prefix):]}", value)
                canonical_of.setdefault(f"{alias}.{local[len(prefix):]}", f"{module}.{local}")

    for module in sorted(local_values):
        for local, value in sorted(local_values[module].items()):
            if not is_dunder(local.rpartition(".")[2]):
                put(f"{module}.{local}", value)
    for module in sorted(by_name):
        facts = by_name[module]
        deliberate = set(facts.explicit) | set(facts.all_ or ())
        candidates = sorted(set(facts.imports) | {n for star in facts.stars for n in _exported(star)})
        for local in candidates:
            if local in local_values.get(module, {}) or local in classes.get(module, ()):
                continue
            found = locate(f"{module}.{local}")
            if found is None:
                continue
            target_module, target_local = found
            canonical_of.setdefault(f"{module}.{local}", f"{target_module}.{target_local}")
            target_value = local_values[target_module].get(target_local)
            if target_value is not None:
                put(f"{module}.{local}", target_value)
            if target_local in classes.get(target_module, ()) and (
                facts.is_package or local in deliberate or local not in facts.imports
            ):
                copy_members(f"{module}.{local}", target_module, target_local)
    # torch/__init__.py copies the functions of torch._C._VariableFunctions onto torch
    for local, value in sorted(local_values.get("torch._C._VariableFunctions", {}).items()):
        if "." not in local and is_private_component(local):
            put(f"torch.{local}", value, over_unknown=False)
    # torch.Tensor: the C base's methods it does not define itself
    tensor_module = "torch._tensor" if "torch._tensor" in local_values else "torch.tensor"
    for base_name in ("TensorBase", "_TensorBase"):
        if base_name in classes.get("torch._C", ()):
            for local, value in sorted(local_values["torch._C"].items()):
                if local.startswith(base_name + ".") and not is_dunder(local.rpartition(".")[2]):
                    member = local[len(base_name) + 1 :]
                    for owner in ("torch.Tensor", f"{tensor_module}.Tensor"):
                        put(f"{owner}.{member}", value, over_unknown=False)
            break

    by_canonical: dict[str, list[tuple[Deprecation, str]]] = {}
    for key in sorted(modules):
        facts = modules[key]
        for record in facts.deprecations:
            name = f"{facts.name}.{record.local}" if record.local else facts.name
            if record.kind in ("alias", "config"):
                warns = record.warns and config_warns
                record = Deprecation(record.local, record.kind, record.category if warns else "", record.message, record.target, warns)
            if not is_dunder(name.rpartition(".")[2]):
                by_canonical.setdefault(name, []).append((record, facts.path))
    deprecations: list[tuple[str, Deprecation, str]] = []
    for name, records in sorted(by_canonical.items()):
        deprecations.extend((name, record, path) for record, path in records if is_private(name))
    # the same object under a re-exported private name (`torch.distributed._all_gather_base`)
    for alias, canonical in sorted(canonical_of.items()):
        if alias != canonical and is_private(alias):
            deprecations.extend((alias, record, path) for record, path in by_canonical.get(canonical, ()))
    return out, deprecations


# --------------------------------------------------------------------------------------
# encoding


def gzip_member(data: bytes) -> bytes:
    """One gzip member with a fixed header (mtime 0, OS 255): reproducible on any platform."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    body = compressor.compress(data) + compressor.flush()
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def bucket_key(name: str) -> str:
    """A name's bucket: its parent, cut to 3 components (``torch._foreach_norm`` -> ``torch``,
    ``torch._dynamo.config.x`` -> ``torch._dynamo.config``)."""
    parts = name.split(".")
    return ".".join(parts[: min(len(parts) - 1, 3)])


def encode_ranges(indices: Iterable[int]) -> str:
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" for a, b in runs)


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(releases: list[ReleaseFacts]) -> bytes:
    names = sorted({name for rel in releases for name in rel.signatures})
    histories: dict[str, list[list[object]]] = {}
    for name in names:
        changes: list[list[object]] = []
        previous: str | None = ABSENT
        for index, rel in enumerate(releases):
            value = rel.signatures.get(name, ABSENT)
            if value != previous:
                changes.append([index, value])
                previous = value
        histories[name] = changes
    buckets: dict[str, dict[str, list[list[object]]]] = {}
    for name, changes in histories.items():
        key = bucket_key(name)
        buckets.setdefault(key, {})[name[len(key) + 1 :]] = changes
    members: list[bytes] = []
    keys = sorted(buckets)
    for key in keys:
        members.append(gzip_member(_json(buckets[key])))
    merged: dict[tuple[str, str, str, str, str], tuple[set[int], str]] = {}
    for index, rel in enumerate(releases):
        for name, record, source in rel.deprecations:
            k = (name, record.kind, record.category, record.message, record.target)
            indices, _ = merged.get(k, (set(), source))
            indices.add(index)
            merged[k] = (indices, source)
    deprecations = [
        {"name": k[0], "kind": k[1], "category": k[2], "message": k[3], "target": k[4], "source": source, "ranges": encode_ranges(indices)}
        for k, (indices, source) in sorted(merged.items())
    ]
    deprecation_member = gzip_member(_json(deprecations))
    with_signature = sum(1 for rel in releases for v in rel.signatures.values() if v not in (UNKNOWN, ABSENT))
    header = {
        "format": FORMAT,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "releases": [rel.version for rel in releases],
        "wheels": {rel.version: {"file": rel.wheel, "sha256": rel.sha256} for rel in releases},
        "bucket_keys": "\n".join(keys),
        "bucket_sizes": [len(m) for m in members],
        "deprecations": [sum(len(m) for m in members), len(deprecation_member)],
        "counts": {
            "names": len(names),
            "names_with_signature": sum(1 for h in histories.values() if any(v not in (UNKNOWN, ABSENT) for _, v in h)),
            "release_signatures": with_signature,
            "deprecated_names": len({d["name"] for d in deprecations}),
            "deprecation_records": len(deprecations),
            "syntax_errors": {rel.version: rel.syntax_errors for rel in releases},
        },
    }
    return gzip_member(_json(header) + b"\n") + b"".join(members) + deprecation_member


# --------------------------------------------------------------------------------------
# command line


def pick_wheels(folder: Path, min_release: str) -> list[Path]:
    """The newest patch of each minor release in ``folder`` from ``min_release`` on, oldest first."""
    lowest = parse_version(min_release)[:2]
    newest: dict[tuple[int, int], tuple[int, Path]] = {}
    for wheel in sorted(folder.glob("torch-*.whl")):
        match = _WHEEL_RE.match(wheel.name)
        if match is None:
            continue
        key = (int(match.group(1)), int(match.group(2)))
        if key < lowest:
            continue
        patch = int(match.group(3))
        if key not in newest or newest[key][0] < patch:
            newest[key] = (patch, wheel)
    return [newest[key][1] for key in sorted(newest)]


def build(wheels: list[Path], jobs: int = 1) -> bytes:
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            releases = list(pool.map(read_release, wheels))
    else:
        releases = [read_release(w) for w in wheels]
    return encode(releases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_torch_signatures", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder of torch wheels (one or more per minor release)")
    parser.add_argument("--min-release", default="1.6")
    parser.add_argument("--out", type=Path, default=Path("rules/torch-signatures.gz"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="wheels read in parallel (default: CPU count)")
    args = parser.parse_args(argv)
    wheels = pick_wheels(args.wheels, args.min_release)
    if not wheels:
        print(f"error: no torch wheels from {args.min_release} on in {args.wheels}", file=sys.stderr)
        return 2
    try:
        data = build(wheels, args.jobs)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        print(f"error: cannot read the wheels: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data):,} bytes, {len(wheels)} releases)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
