"""Build the torch private-API index from release wheels, without importing them.

The index records, for every torch minor release from 1.6 to the newest one on PyPI, which
*private* dotted names under ``torch`` exist (see `esper_lint.names` for "private"), plus
every module path (public ones too, as anchors for lookups of deeper attributes) and the
public classes that carry private members (``torch.Tensor``, ``torch.nn.Module``); for each
name and release, its kind and the *evidence* that it is there.

Everything is read statically from one wheel per minor release: the zip is opened, Python
sources and stubs are parsed with :mod:`ast`, and the extension binaries are scanned as
bytes. Nothing from the wheel is ever imported or executed.

What is extracted from a wheel, and the evidence it gives (EV_* bits)
-------------------------------------------------------------------
* ``source``: module paths (every ``torch/**/*.py`` and package directory); module-level
  definitions, ``from``-imports (a ``from x import y`` binding is a module attribute), star
  imports resolved statically (``__all__`` when it is a literal, else the public names),
  ``del`` honoured, ``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` bodies skipped;
  class members (methods, class attributes, nested classes and their members; dunders,
  name-mangled ``__x`` and, outside stubs and NamedTuples, bare annotations skipped), also
  under the names a class is deliberately re-exported as (``torch.nn.Module._apply``). A
  package attribute that hides a submodule of the same name (``from .gradcheck import
  gradcheck``) has the attribute's kind: the kind is recorded per release.
* ``stub``: the names of the ``.pyi`` stubs (``torch._C._foo``), the members of Tensor's C base
  ``torch._C.TensorBase`` (``_TensorBase`` before 2.2), and the functions of
  ``torch/_C/_VariableFunctions.pyi`` that ``torch/__init__.py`` copies onto ``torch``
  (minus ``PRIVATE_OPS``; ``segment_reduce`` also as ``_segment_reduce``).
* ``binary`` (:mod:`tools.torch_index_build.binaries`): the identifiers of the string tables
  of ``libtorch_python`` and ``torch/_C*.so`` (binding names: they confirm a stub name and
  carry a C-extension name to the neighbouring releases whose binaries hold it), and the
  ``aten::`` schemas of ``libtorch_cpu`` (private operators no schema file lists).
* ``reference`` (:mod:`tools.torch_index_build.references`): the private names the
  release's own code uses, unguarded, below a C-extension object (``torch._C``,
  ``torch.Tensor``, ``torch.ops``).
* ``schema``: private ATen operators ``torch.ops.aten._name`` and their overloads
  (``.default`` for the unnamed one) from ``native_functions.yaml`` and
  ``RegistrationDeclarations.h``.
* ``alias``: the modules a ``sys.modules[...] = ...`` shim makes importable under another
  name, with the target module's names.

A C-extension name of a device (CUDA, XPU, MPS, ...) that a stub declares but the binaries
lack is marked absent from CPU-only builds of that release.

Replacements
------------
Curated replacements come from ``rules/replacements.toml``; each has a ``source`` and an
``applicability`` ("drop-in" or "suggestion"). The build checks each against the wheels
(the private name exists; the replacement is a public API, i.e. exported, in the releases
it lists; a drop-in is the same object there or carries an ``equivalence``) and fails
otherwise; it computes ``public_since`` and warns when the file says otherwise. It also
*derives* drop-in replacements: when a public module deliberately re-exports a private
object (``__all__``, the ``as`` idiom, a star import of a public module), the public name is
the same object; it holds in every release in which the public name resolves to the same
object (``public_since`` follows identity back, not ``__all__``).

Output
------
``rules/torch-index.gz``: a sequence of gzip members (``zcat`` shows it all), written with a
fixed gzip header (mtime 0, no name, OS 255) and sorted JSON keys, so the same wheels and the
same Python give a byte-identical file. The first member is a JSON header line::

    {"format": 3,
     "releases": ["1.6", ..., "2.15"],              # indexed minor releases, in order
     "wheels": {"1.6": "torch-1.6.0-...whl", ...},
     "sha256": {"1.6": "<the wheel's sha256>", ...},
     "python": "3.11",                              # the Python that parsed the sources
     "evidence": {"1": "source", "2": "stub", ...}, # the evidence bits
     "ranges": ["0-23", "10-23", "0-8,11-12", ...],  # release index ranges (inclusive pairs)
     "bucket_keys": "torch._C\ntorch._C._VariableFunctions\n...",  # sorted
     "bucket_sizes": [1234, ...],                   # bytes of each bucket member, in order
     "replacements": [offset, length],
     "names": 226836}

The bucket members follow the header in ``bucket_keys`` order, then the replacements
member; offsets count from the end of the header member. Each bucket member holds the names
of one bucket (``bucket_key``: the parent name, cut to 4 components) so that a lookup
decompresses only what it needs; its lines are front-coded (``encode_bucket``), kinds being
m module, c class, f function, a attribute, n dynamic namespace (torch.ops), s operator
namespace (torch.ops.aten), p operator, o overload. The replacements member is a JSON list
of ``{"private", "replacement", "public_since", "source", "derived", "applicability",
"evidence", "module", "ranges"}`` objects (``ranges``: where the replacement holds).

Usage
-----
Download one wheel per minor release into a folder (outside the repository) and build::

    python -m tools.build_torch_index --wheels /work/torch-wheels --download \\
        --out rules/torch-index.gz [--cache /tmp/torch-index-cache]

``--download`` runs ``pip download --no-deps --only-binary=:all: --platform P
--python-version V torch==X.Y.Z`` for the latest patch of every minor release from 1.6 to
the newest (found with ``pip index versions``), skipping wheels already in the folder;
macOS wheels are used because they are CPU-only and small (x86_64/cp38 up to 2.2,
arm64/cp312 from 2.3). A release that cannot be downloaded, or a minor release missing from
the folder, is an error (exit 2). ``--cache DIR`` keeps each wheel's extraction (keyed by the
wheel's sha256, this extraction code and the Python version). ``--min-release 1.6`` sets the
first release. Build-time only: neither this module nor :mod:`tools.torch_index_build` is in
the runtime wheel.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esper_lint.names import is_dunder, is_private, is_private_component
from esper_lint.torch_index.versions import parse_version
from tools.torch_index_build.binaries import BinaryStrings, read_binaries
from tools.torch_index_build.references import _chain, alias_shims, references

# --------------------------------------------------------------------------------------
# helpers

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHEEL_RE = re.compile(r"^torch-(\d+)\.(\d+)\.(\d+)(?:[-+.][^-]*)?-.*\.whl$")
_EXT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[^/]*)?\.(?:so|pyd)$")
_SCHEMA_RE = re.compile(r'"schema": "aten::([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(')
_YAML_RE = re.compile(r"^- func: ([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(", re.M)

FORMAT = 3

KIND_MODULE = "m"
KIND_CLASS = "c"
KIND_FUNCTION = "f"
KIND_ATTR = "a"
KIND_NAMESPACE = "n"  # dynamic namespace (torch.ops): deeper names are not statically visible
KIND_SCHEMA_NS = "s"  # torch.ops.aten: its private operators are listed completely
KIND_OP = "p"
KIND_OVERLOAD = "o"


# --------------------------------------------------------------------------------------
# per-module static facts


@dataclass
class ClassInfo:
    members: set[str] = field(default_factory=set)
    bases: list[str] = field(default_factory=list)
    #: members only a stub declares (C types: their evidence is the stub, not source)
    stub_members: set[str] = field(default_factory=set)
    #: nested classes, by member name (their own members are indexed too)
    nested: dict[str, ClassInfo] = field(default_factory=dict)


@dataclass
class ModuleInfo:
    name: str
    paths: list[str] = field(default_factory=list)
    is_package: bool = False
    # local name -> kind, for names defined in the module itself
    defs: dict[str, str] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    # local name -> absolute dotted target, for from-imports (recorded) ...
    imports: dict[str, str] = field(default_factory=dict)
    # ... and for plain imports (used for resolution only)
    plain_imports: dict[str, str] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)
    all_: list[str] | None = None
    # names imported with the explicit re-export idiom `from x import y as y`
    explicit: set[str] = field(default_factory=set)
    syntax_error: bool = False
    #: local names only a stub (.pyi) defines
    stub_defs: set[str] = field(default_factory=set)
    #: what kind of files make the module: "py", "pyi", "ext" (a compiled extension)
    file_kinds: set[str] = field(default_factory=set)
    #: dotted torch names its code uses (see tools.torch_index_build.references)
    references: set[str] = field(default_factory=set)
    #: (alias, module) pairs its `sys.modules[...] = ...` shims install
    shims: list[tuple[str, str]] = field(default_factory=list)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _dotted(node: ast.expr) -> str | None:
    parts = _chain(node)
    return None if parts is None else ".".join(parts)


def _target_names(target: ast.expr) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _literal_strs(node: ast.expr | None) -> list[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return None


def _class_members(
    body: list[ast.stmt], out: set[str], annotations: bool, nested: dict[str, ClassInfo] | None = None
) -> None:
    """Names a class body binds as class attributes. ``annotations``: whether a bare
    annotation (``x: int`` without a value) counts; it does in stubs (declared attributes
    and properties of C types) and NamedTuple classes, not in ordinary classes (there it
    declares an instance attribute: a dataclass field, ``self.x = ...`` in ``__init__``).
    Names starting with ``__`` (not dunders) are name-mangled and skipped."""

    def add(name: str) -> None:
        if not (name.startswith("__") and not is_dunder(name)):
            out.add(name)

    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            add(stmt.name)
            if nested is not None:
                inner = ClassInfo()
                _class_members(stmt.body, inner.members, annotations, inner.nested)
                nested[stmt.name] = inner
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                for n in _target_names(t):
                    add(n)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None or annotations:
                for n in _target_names(stmt.target):
                    add(n)
        elif isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                _class_members(stmt.body, out, annotations, nested)
            _class_members(stmt.orelse, out, annotations, nested)
        elif isinstance(stmt, ast.Try):
            _class_members(stmt.body, out, annotations, nested)
            for h in stmt.handlers:
                _class_members(h.body, out, annotations, nested)
            _class_members(stmt.orelse, out, annotations, nested)
            _class_members(stmt.finalbody, out, annotations, nested)
        elif isinstance(stmt, ast.With):
            _class_members(stmt.body, out, annotations, nested)


def _is_main_guard(test: ast.expr) -> bool:
    """``if __name__ == "__main__":``"""
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


class _ModuleVisitor:
    def __init__(self, info: ModuleInfo, stub: bool) -> None:
        self.info = info
        self.stub = stub
        pkg = info.name if info.is_package else info.name.rpartition(".")[0]
        self.package = pkg

    def _resolve_from(self, module: str | None, level: int) -> str | None:
        if level == 0:
            return module
        parts = self.package.split(".")
        if level - 1 > len(parts) - 1:
            return None
        base = parts[: len(parts) - (level - 1)]
        if module:
            base.append(module)
        return ".".join(base)

    def _def(self, name: str, kind: str) -> None:
        if self.stub:
            if name not in self.info.defs:
                self.info.stub_defs.add(name)
        else:
            self.info.stub_defs.discard(name)
        self.info.defs[name] = kind
        self.info.imports.pop(name, None)
        self.info.plain_imports.pop(name, None)

    def body(self, stmts: list[ast.stmt]) -> None:
        info = self.info
        for stmt in stmts:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._def(stmt.name, KIND_FUNCTION)
            elif isinstance(stmt, ast.ClassDef):
                self._def(stmt.name, KIND_CLASS)
                ci = ClassInfo()
                for b in stmt.bases:
                    d = _dotted(b)
                    if d:
                        ci.bases.append(d)
                named_tuple = any(b.split(".")[-1] == "NamedTuple" for b in ci.bases)
                _class_members(stmt.body, ci.members, self.stub or named_tuple, ci.nested)
                previous = info.classes.get(stmt.name)
                if self.stub:
                    # a stub adds to the class its source defines; what only it declares rests on it
                    ci.stub_members = ci.members - (previous.members if previous else set())
                    if previous is not None:
                        ci.members |= previous.members
                        ci.nested = {**ci.nested, **previous.nested}
                info.classes[stmt.name] = ci
            elif isinstance(stmt, ast.Assign):
                if (
                    len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Name)
                    and stmt.value.id == stmt.targets[0].id
                ):
                    continue  # `SDPBackend = SDPBackend` (torch/nn/attention): still the imported object
                for t in stmt.targets:
                    for n in _target_names(t):
                        if n == "__all__":
                            info.all_ = _literal_strs(stmt.value)
                        else:
                            self._def(n, KIND_ATTR)
            elif isinstance(stmt, ast.AnnAssign):
                if stmt.value is not None or self.stub:
                    for n in _target_names(stmt.target):
                        if n == "__all__":
                            info.all_ = _literal_strs(stmt.value)
                        else:
                            self._def(n, KIND_ATTR)
            elif isinstance(stmt, ast.Import):
                if self.stub:
                    continue
                for alias in stmt.names:
                    if alias.asname:
                        info.defs.pop(alias.asname, None)
                        info.plain_imports[alias.asname] = alias.name
                    else:
                        first = alias.name.split(".")[0]
                        info.defs.pop(first, None)
                        info.plain_imports[first] = first
            elif isinstance(stmt, ast.ImportFrom):
                if self.stub:
                    continue
                mod = self._resolve_from(stmt.module, stmt.level)
                if mod is None:
                    continue
                for alias in stmt.names:
                    if alias.name == "*":
                        info.stars.append(mod)
                        continue
                    local = alias.asname or alias.name
                    if alias.asname == alias.name:
                        info.explicit.add(local)
                    info.defs.pop(local, None)
                    info.plain_imports.pop(local, None)
                    info.imports[local] = f"{mod}.{alias.name}"
            elif isinstance(stmt, ast.Delete):
                for t in stmt.targets:
                    for n in _target_names(t):
                        info.defs.pop(n, None)
                        info.imports.pop(n, None)
                        info.plain_imports.pop(n, None)
                        info.classes.pop(n, None)
            elif isinstance(stmt, ast.If):
                if _is_main_guard(stmt.test):
                    continue  # runs only as a script: `python -m torch.x`
                if not _is_type_checking(stmt.test):
                    self.body(stmt.body)
                self.body(stmt.orelse)
            elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                self.body(stmt.body)  # type: ignore[attr-defined]
                for h in stmt.handlers:  # type: ignore[attr-defined]
                    self.body(h.body)
                self.body(stmt.orelse)  # type: ignore[attr-defined]
                self.body(stmt.finalbody)  # type: ignore[attr-defined]
            elif isinstance(stmt, ast.With):
                self.body(stmt.body)
            elif isinstance(stmt, ast.AugAssign):
                if isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__":
                    extra = _literal_strs(stmt.value)
                    if info.all_ is not None and extra is not None:
                        info.all_ = info.all_ + extra
            elif type(stmt).__name__ == "TypeAlias":
                alias_name = getattr(stmt, "name", None)
                if isinstance(alias_name, ast.Name):
                    self._def(alias_name.id, KIND_ATTR)


# --------------------------------------------------------------------------------------
# one release


def _module_name_for(path: str) -> tuple[str, bool] | None:
    """``torch/a/b.py`` -> ("torch.a.b", False); ``torch/a/__init__.py`` -> ("torch.a", True)."""
    parts = path.split("/")
    fname = parts[-1]
    if fname.endswith(".pyi"):
        stem = fname[:-4]
    elif fname.endswith(".py"):
        stem = fname[:-3]
    else:
        m = _EXT_RE.match(fname)
        if not m:
            return None
        stem = m.group(1)
    dirs = parts[:-1]
    if not all(_IDENT.match(p) for p in dirs) or not _IDENT.match(stem):
        return None
    if stem == "__init__":
        return ".".join(dirs), True
    return ".".join([*dirs, stem]), False


@dataclass
class Release:
    """Everything statically known about one wheel."""

    version: str  # minor release "X.Y"
    wheel: str
    modules: dict[str, ModuleInfo]
    ops: dict[str, set[str]]  # aten op name -> overload names, from the shipped schema files
    syntax_errors: list[str] = field(default_factory=list)
    init_source: str = ""  # torch/__init__.py, for PRIVATE_OPS
    binaries: BinaryStrings = field(default_factory=BinaryStrings)


def read_wheel(path: Path) -> Release:
    m = _WHEEL_RE.match(path.name)
    if not m:
        raise ValueError(f"not a torch wheel name: {path.name}")
    version = f"{m.group(1)}.{m.group(2)}"
    modules: dict[str, ModuleInfo] = {}
    ops: dict[str, set[str]] = {}
    syntax_errors: list[str] = []

    def get_module(name: str) -> ModuleInfo:
        mi = modules.get(name)
        if mi is None:
            mi = modules[name] = ModuleInfo(name)
        return mi

    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        sources: list[tuple[str, str, bool]] = []
        for entry in names:
            if not entry.startswith("torch/"):
                if entry.endswith("native_functions.yaml"):
                    text = zf.read(entry).decode("utf-8", "replace")
                    for op, ov in _YAML_RE.findall(text):
                        ops.setdefault(op, set()).add(ov or "default")
                continue
            if entry.endswith("RegistrationDeclarations.h"):
                text = zf.read(entry).decode("utf-8", "replace")
                for op, ov in _SCHEMA_RE.findall(text):
                    ops.setdefault(op, set()).add(ov or "default")
                continue
            res = _module_name_for(entry)
            if res is None:
                continue
            modname, is_pkg = res
            mi = get_module(modname)
            mi.is_package = mi.is_package or is_pkg
            mi.file_kinds.add("py" if entry.endswith(".py") else "pyi" if entry.endswith(".pyi") else "ext")
            # every directory above is a package
            parts = modname.split(".")
            for i in range(1, len(parts)):
                get_module(".".join(parts[:i])).is_package = True
            if entry.endswith((".py", ".pyi")):
                sources.append((entry, modname, entry.endswith(".pyi")))
        # .py before .pyi for the same module so that stubs only add names
        sources.sort(key=lambda s: (s[1], s[2], s[0]))
        for entry, modname, stub in sources:
            mi = modules[modname]
            mi.paths.append(entry)
            text = zf.read(entry).decode("utf-8", "replace")
            try:
                tree = ast.parse(text, filename=entry)
            except (SyntaxError, ValueError):
                mi.syntax_error = True
                syntax_errors.append(entry)
                continue
            _ModuleVisitor(mi, stub).body(tree.body)
            if not stub:
                mi.references |= references(tree, mi.imports, mi.plain_imports)
                mi.shims.extend(alias_shims(tree, mi.imports, mi.plain_imports))
        try:
            init_source = zf.read("torch/__init__.py").decode("utf-8", "replace")
        except KeyError:
            init_source = ""
        binaries = read_binaries(zf)
    return Release(version, path.name, modules, ops, syntax_errors, init_source, binaries)


class _Resolver:
    """Static name resolution inside one release."""

    def __init__(self, rel: Release) -> None:
        self.rel = rel
        self.mods = rel.modules
        self._ns_cache: dict[str, dict[str, str]] = {}
        self._export_cache: dict[str, set[str]] = {}

    def exported(self, mod: str, _seen: frozenset[str] = frozenset()) -> set[str]:
        """Names ``from mod import *`` binds."""
        if mod in self._export_cache:
            return self._export_cache[mod]
        mi = self.mods.get(mod)
        if mi is None or mod in _seen:
            return set()
        out = (
            set(mi.all_)
            if mi.all_ is not None
            else {n for n in self.namespace(mod, _seen | {mod}) if not n.startswith("_")}
        )
        self._export_cache[mod] = out
        return out

    def namespace(self, mod: str, _seen: frozenset[str] = frozenset()) -> dict[str, str]:
        """Local name -> origin ("def" | "import" | "star:<module>" | "submodule")."""
        if mod in self._ns_cache:
            return self._ns_cache[mod]
        mi = self.mods.get(mod)
        out: dict[str, str] = {}
        if mi is None:
            return out
        for star in mi.stars:
            for n in self.exported(star, _seen | {mod}):
                out[n] = "star:" + star
        for n in mi.imports:
            out[n] = "import"
        for n in mi.defs:
            out[n] = "def"
        if not _seen:
            self._ns_cache[mod] = out
        return out

    def resolve(self, dotted: str, depth: int = 0) -> tuple[str, str] | None:
        """Follow re-exports: returns (canonical name, kind) for a dotted torch name."""
        if depth > 30:
            return None
        mod, _, attr = dotted.rpartition(".")
        parent = self.mods.get(mod)
        if dotted in self.mods:
            # `from .gradcheck import gradcheck` in torch/autograd/__init__.py: the package
            # attribute is the function, which hides the submodule of the same name
            if parent is not None and attr in parent.defs and parent.defs[attr] != KIND_MODULE:
                return dotted, parent.defs[attr]
            target = parent.imports.get(attr) if parent is not None else None
            if target is not None and target != dotted:
                res = self.resolve(target, depth + 1)
                if res is not None and res[1] != KIND_MODULE:
                    return res
            return dotted, KIND_MODULE
        if not mod:
            return None
        if mod not in self.mods:
            # maybe an attribute of a class: a.b.Class.member
            owner = self.resolve(mod, depth + 1)
            if owner and owner[1] == KIND_CLASS:
                cmod, _, cname = owner[0].rpartition(".")
                ci = self.mods[cmod].classes.get(cname) if cmod in self.mods else None
                if ci and attr in ci.members:
                    return f"{owner[0]}.{attr}", KIND_ATTR
            return None
        mi = self.mods[mod]
        if attr in mi.defs:
            return dotted, mi.defs[attr]
        if attr in mi.imports:
            return self.resolve(mi.imports[attr], depth + 1)
        for star in reversed(mi.stars):
            if attr in self.exported(star):
                return self.resolve(f"{star}.{attr}", depth + 1)
        return None

    def resolve_expr(self, mod: str, expr: str) -> tuple[str, str] | None:
        """Resolve a dotted expression written inside module ``mod`` (e.g. a base class)."""
        mi = self.mods[mod]
        first, _, rest = expr.partition(".")
        if first in mi.defs:
            base = f"{mod}.{first}"
        elif first in mi.imports:
            base = mi.imports[first]
        elif first in mi.plain_imports:
            base = mi.plain_imports[first]
        else:
            return None
        return self.resolve(f"{base}.{rest}" if rest else base)


# evidence that a name is present in a release (bits of a mask)
EV_SOURCE = 1  # defined or bound by the release's Python source (.py)
EV_STUB = 2  # declared by a stub (.pyi) only
EV_BINARY = 4  # a string of the extension binaries (binding name, aten schema)
EV_REFERENCE = 8  # used, unguarded, by the release's own Python code
EV_SCHEMA = 16  # listed by the schema files the wheel ships (native_functions.yaml, ...)
EV_ALIAS = 32  # importable through a sys.modules alias shim
EVIDENCE_NAMES = {EV_SOURCE: "source", EV_STUB: "stub", EV_BINARY: "binary", EV_REFERENCE: "reference",
                  EV_SCHEMA: "schema", EV_ALIAS: "alias"}
#: evidence that fixes when a name appeared (a stub or a reference can lag behind the name)
EV_FIRM = EV_SOURCE | EV_BINARY | EV_SCHEMA | EV_ALIAS

#: C-extension names that only some builds compile (CUDA, ROCm, XPU, MPS, ...): when a stub
#: declares one and the CPU wheel's binaries lack it, it is marked absent from CPU builds
_DEVICE_RE = re.compile(
    r"cuda|cudnn|cublas|cufft|cusparse|cusolver|nccl|nvtx|nvrtc|nvshmem|cutlass|xpu|mps|metal|"
    r"rocm|hip|miopen|mtia|hpu|vulkan|_gds|tensorrt|cudagraph|_CUDA|CUDA",
    re.I,
)
#: device names that the macOS arm64 wheel has but a CPU-only build lacks
_MACOS_DEVICE_RE = re.compile(r"mps|metal", re.I)


@dataclass
class ReleaseNames:
    names: dict[str, str]  # dotted name -> kind
    # every name public modules bind (public ones too), for checking replacements
    public: set[str]
    derived: dict[tuple[str, str], str]  # (private, public) -> source file
    evidence: dict[str, int] = field(default_factory=dict)  # dotted name -> EV_* mask
    #: public names a public module deliberately exports (`__all__`, package `__init__`, `as` idiom)
    exported: set[str] = field(default_factory=set)
    #: name -> the canonical name it resolves to (the object's definition), where they differ
    canonical: dict[str, str] = field(default_factory=dict)
    #: private torch names the release's code uses (unguarded)
    references: set[str] = field(default_factory=set)
    binding_names: frozenset[str] = frozenset()
    #: names only some builds have (see _DEVICE_RE), absent from this CPU wheel
    cpu_absent: set[str] = field(default_factory=set)


def extract_names(rel: Release) -> ReleaseNames:
    r = _Resolver(rel)
    mods = rel.modules
    names: dict[str, str] = {}
    evidence: dict[str, int] = {}
    public: set[str] = set()
    exported: set[str] = set()
    canonical_of: dict[str, str] = {}
    derived: dict[tuple[str, str], str] = {}
    binding_names = rel.binaries.binding_names

    def add(name: str, kind: str, ev: int) -> None:
        if name not in names or names[name] == KIND_ATTR:
            names[name] = kind
        evidence[name] = evidence.get(name, 0) | ev

    def add_class_members(alias: str, ci: ClassInfo | None, ev: int, depth: int = 0) -> None:
        if ci is None or depth > 5:
            return
        for member in ci.members:
            if is_dunder(member):
                continue
            full = f"{alias}.{member}"
            member_ev = EV_STUB if member in ci.stub_members else ev
            if is_private(full):
                add(full, KIND_CLASS if member in ci.nested else KIND_ATTR, member_ev)
            if member in ci.nested:
                add_class_members(full, ci.nested[member], member_ev, depth + 1)

    def class_info(canonical: str) -> ClassInfo | None:
        cmod, _, cname = canonical.rpartition(".")
        return mods[cmod].classes.get(cname) if cmod in mods else None

    for modname in sorted(mods):
        kinds = mods[modname].file_kinds
        ev = EV_SOURCE if "py" in kinds else EV_BINARY if "ext" in kinds else EV_STUB if "pyi" in kinds else 0
        add(modname, KIND_MODULE, ev)
    # torch/__init__.py deletes the TensorBase its `from torch._C import *` brought in
    # (`elif __name == "TensorBase": delattr(sys.modules[__name__], __name)`)
    hidden = {"torch.TensorBase"} if re.search(r"""==\s*["']TensorBase["']""", rel.init_source) else set()
    for modname in sorted(mods):
        mi = mods[modname]
        mod_private = is_private(modname)
        ns = r.namespace(modname)
        for local, origin in ns.items():
            if is_dunder(local) or f"{modname}.{local}" in hidden:
                continue
            full = f"{modname}.{local}"
            public_binding = not mod_private and not is_private_component(local)
            if origin == "def":
                kind = mi.defs[local]
                ev = EV_STUB if local in mi.stub_defs else EV_SOURCE
                if public_binding:
                    public.add(full)
                    if mi.all_ is None or local in mi.all_:
                        exported.add(full)
                if kind == KIND_CLASS:
                    add_class_members(full, mi.classes.get(local), ev)
                if is_private(full):
                    add(full, kind, ev)
                elif full in names and names[full] == KIND_MODULE and kind != KIND_MODULE:
                    names[full] = kind  # `def gradcheck` in torch.autograd shadows its submodule
                continue
            # re-exported name (from-import or star import): the binding is in source
            res = r.resolve(full)
            target = mi.imports.get(local) if origin == "import" else None
            if res is None:
                # unresolvable (e.g. from a C extension without stub, or not torch)
                if target is not None and target.split(".")[0] == "torch" and is_private(full):
                    add(full, KIND_ATTR, EV_SOURCE)
                continue
            canonical, kind = res
            if canonical != full:
                canonical_of[full] = canonical
            if public_binding:
                public.add(full)
                # a deliberate re-export: listed in __all__, or (without __all__) bound
                # with the `from x import y as y` idiom; other imports of a public module
                # are usually for its own use (`from torch._six import string_classes`)
                deliberate = local in mi.all_ if mi.all_ is not None else local in mi.explicit
                if origin.startswith("star:") and not is_private(origin[len("star:"):]):
                    deliberate = True  # `from torch.functional import *` in torch/__init__.py
                if deliberate or (mi.all_ is None and mi.is_package and origin == "import"):
                    exported.add(full)
                if deliberate and is_private(canonical) and canonical != full:
                    src = mi.paths[0] if mi.paths else modname.replace(".", "/")
                    derived.setdefault((canonical, full), src)
            if kind == KIND_MODULE and canonical != full:
                continue  # `from torch import nn` inside a module: not an API of that module
            if full in names and names[full] == KIND_MODULE and kind != KIND_MODULE:
                # `from .gradcheck import gradcheck` in torch/autograd/__init__.py: at run time the
                # package attribute is the function, not the submodule of the same name
                names[full] = kind
            # members of a re-exported class are copied under the new name only for a
            # deliberate re-export (star import, __all__, `as` idiom, package __init__):
            # `torch.nn.Module._apply`, not `torch._inductor.codecache.FakeTensor.<all>`
            if kind == KIND_CLASS and (
                origin != "import"
                or mi.is_package
                or local in mi.explicit
                or (mi.all_ is not None and local in mi.all_)
            ):
                add_class_members(full, class_info(canonical), EV_SOURCE)
            if is_private(full):
                add(full, kind, EV_SOURCE)

    # torch.Tensor: its own members and those of the C base class
    tensor_mod = "torch._tensor" if "torch._tensor" in mods else "torch.tensor"
    tmi = mods.get(tensor_mod)
    if tmi and "Tensor" in tmi.classes:
        members = {m: EV_SOURCE for m in tmi.classes["Tensor"].members}
        for base in tmi.classes["Tensor"].bases:
            res = r.resolve_expr(tensor_mod, base)
            if res and res[1] == KIND_CLASS:
                bci = class_info(res[0])
                if bci:
                    for m in bci.members:
                        members.setdefault(m, EV_STUB if m in bci.stub_members else EV_SOURCE)
        for member, ev in members.items():
            if is_private_component(member):
                add(f"torch.Tensor.{member}", KIND_ATTR, ev)
                add(f"{tensor_mod}.Tensor.{member}", KIND_ATTR, ev)

    # torch/__init__.py copies every function of torch._C._VariableFunctions onto torch
    vf = mods.get("torch._C._VariableFunctions")
    init = mods.get("torch")
    if vf is not None and init is not None:
        private_ops: set[str] = set()
        # PRIVATE_OPS and the segment_reduce rename are read from torch/__init__.py
        init_src = rel.init_source
        found = re.search(r"^PRIVATE_OPS\s*=\s*(\(.*?\)|\[.*?\])", init_src, re.M | re.S)
        if found:
            try:
                private_ops = set(ast.literal_eval(found.group(1)))
            except (ValueError, SyntaxError):
                private_ops = set()
        segment_hidden = '"_" + __name' in init_src or "'_' + __name" in init_src
        for fname, kind in vf.defs.items():
            if kind != KIND_FUNCTION or fname.startswith("__") or fname in private_ops:
                continue
            if is_private_component(fname):
                add(f"torch.{fname}", KIND_FUNCTION, EV_STUB)
            else:
                public.add(f"torch.{fname}")
            if fname == "segment_reduce" and segment_hidden:
                add("torch._segment_reduce", KIND_FUNCTION, EV_STUB)

    # private ATen operators: the shipped schema files, and the schemas of libtorch_cpu
    add("torch.ops", KIND_NAMESPACE, EV_SOURCE)
    if rel.ops or rel.binaries.aten_schemas:
        add("torch.ops.aten", KIND_SCHEMA_NS, EV_SCHEMA if rel.ops else EV_BINARY)
        for source_ops, ev in ((rel.ops, EV_SCHEMA), (rel.binaries.aten_schemas, EV_BINARY)):
            for op, overloads in source_ops.items():
                if not is_private_component(op):
                    continue
                add(f"torch.ops.aten.{op}", KIND_OP, ev)
                for ov in overloads:
                    add(f"torch.ops.aten.{op}.{ov}", KIND_OVERLOAD, ev)

    # a name a stub declares is confirmed when the binding libraries hold it
    if binding_names:
        for name, ev in evidence.items():
            if ev & EV_STUB and name.rpartition(".")[2] in binding_names:
                evidence[name] = ev | EV_BINARY

    # sys.modules alias shims: the alias is importable and has the target module's names
    for modname in sorted(mods):
        for alias, target in mods[modname].shims:
            if target not in names or names[target] != KIND_MODULE:
                continue
            add(alias, KIND_MODULE, EV_ALIAS)
            prefix = target + "."
            for name in [n for n in names if n.startswith(prefix)]:
                aliased = alias + name[len(target):]
                if is_private(aliased):
                    add(aliased, names[name], EV_ALIAS)

    # every prefix of a known name is known (public classes holding private members), on
    # the evidence of all the names below it (whatever order sets gave them in)
    filled: set[str] = set()
    for name in sorted(names):
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in names:
                res = r.resolve(prefix)
                names[prefix] = res[1] if res else KIND_ATTR
                evidence[prefix] = 0
                filled.add(prefix)
            if prefix in filled:
                evidence[prefix] |= evidence[name]

    refs: set[str] = set()
    for mi in mods.values():
        refs |= {ref for ref in mi.references if is_private(ref)}
    return ReleaseNames(names, public, derived, evidence, exported, canonical_of, refs, binding_names)


def _importable_release_names() -> type:
    from tools.build_torch_index import ReleaseNames as importable

    return importable


def _builder_fingerprint() -> str:
    """A hash of the builder's own code: a cached extraction is reused only by the same code."""
    import hashlib

    digest = hashlib.sha256(sys.version.encode())
    here = Path(__file__).resolve()
    # only the extraction code (above the encoding section) decides what a wheel gives
    digest.update(here.read_text(encoding="utf-8").split(_ENCODING_SECTION, 1)[0].encode())
    for source in sorted((here.parent / "torch_index_build").glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


_ENCODING_SECTION = "\n# " + "-" * 86 + "\n# encoding\n"


class _BuilderUnpickler(pickle.Unpickler):
    """Reads a cached extraction whatever module name the builder ran under (``python -m``
    makes it ``__main__`` in the process that wrote the cache)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__":
            module = __name__ if __name__ != "__main__" else "tools.build_torch_index"
        return super().find_class(module, name)


def _read_summary(path: Path, cache_dir: Path | None = None) -> tuple[list[str], int, ReleaseNames]:
    """One wheel's extraction; with ``cache_dir``, kept there (keyed by the wheel's sha256, the
    builder's code and the Python version) so that a rebuild after editing the curated
    replacements reads no wheel again."""

    cached: Path | None = None
    if cache_dir is not None:
        cached = cache_dir / f"{path.name}.{sha256_of(path)[:16]}.{_builder_fingerprint()}.pickle"
        if cached.exists():
            with open(cached, "rb") as handle:
                result: tuple[list[str], int, ReleaseNames] = _BuilderUnpickler(handle).load()
            return result
    rel, rn = read_release(path)
    result = (rel.syntax_errors, len(rel.ops), rn)
    # pickled as tools.build_torch_index.ReleaseNames even under `python -m`
    rn.__class__ = ReleaseNames if __name__ != "__main__" else _importable_release_names()
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cached)
    return result


def read_release(path: Path) -> tuple[Release, ReleaseNames]:
    rel = read_wheel(path)
    return rel, extract_names(rel)


# --------------------------------------------------------------------------------------
# encoding


def ranges_of(indices: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def encode_ranges(indices: Iterable[int]) -> str:
    return ",".join(f"{a}-{b}" for a, b in ranges_of(indices))


def bucket_key(name: str) -> str:
    """A name's bucket: its parent, cut to 4 components (``torch._foreach_norm`` -> ``torch``,
    ``torch._dynamo.config.x`` -> ``torch._dynamo.config``,
    ``torch._inductor.codegen.triton.TritonKernel.x`` -> ``torch._inductor.codegen.triton``)."""
    parts = name.split(".")
    return ".".join(parts[: min(len(parts) - 1, 4)])


def gzip_member(data: bytes) -> bytes:
    """One gzip member with a fixed header (mtime 0, OS 255): reproducible on any platform."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    body = co.compress(data) + co.flush()
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + body
        + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    )


def encode_bucket(key: str, entries: list[tuple[str, str, str, str]]) -> str:
    """Front-coded lines ``<shared prefix length>|<rest of name>|<kinds>[|<evidence>[|<cpu>]]``.

    Names are relative to ``key`` (``key`` is a proper prefix of each name) and sorted;
    the shared prefix length (empty for 0) counts characters shared with the previous line.
    ``kinds``: ``<kind><range id>`` per kind, comma-separated (``m3,f7``: a module in the
    releases of range 3, a function in those of range 7); their union is where the name is.
    ``evidence``: ``<mask>.<range id>`` pairs (EV_* bits); empty when the evidence is source
    in every release. ``cpu``: the range id of the releases whose CPU builds lack the name.
    Trailing empty fields are left out.
    """
    lines = []
    prev = ""
    for name, kinds, evidence, cpu in entries:
        rel = name[len(key) + 1 :] if key else name
        n = 0
        limit = min(len(rel), len(prev))
        while n < limit and rel[n] == prev[n]:
            n += 1
        line = f"{n or ''}|{rel[n:]}|{kinds}"
        if evidence or cpu:
            line += f"|{evidence}"
        if cpu:
            line += f"|{cpu}"
        lines.append(line)
        prev = rel
    return "\n".join(lines)


APPLICABILITIES = ("drop-in", "suggestion")


class BuildError(Exception):
    """The wheels or the curated data cannot give a correct index (a missing release, a curated
    replacement the wheels contradict)."""


def _load_curated(path: Path) -> list[dict[str, str]]:
    from esper_lint.data import tomllib

    with open(path, "rb") as f:
        data = tomllib.load(f)
    out = []
    for entry in data.get("replacement", []):
        applicability = entry.get("applicability", "")
        if applicability not in APPLICABILITIES:
            raise BuildError(
                f"{path}: {entry.get('private')}: applicability must be one of {', '.join(APPLICABILITIES)}"
            )
        if not entry.get("source"):
            raise BuildError(f"{path}: {entry.get('private')}: every curated replacement needs a source")
        out.append(
            {
                "private": entry["private"],
                "replacement": entry["replacement"],
                "public_since": entry["public_since"],
                "source": entry["source"],
                "check": entry.get("check", entry["replacement"]),
                "applicability": applicability,
                "equivalence": entry.get("equivalence", ""),
                "documented": entry.get("documented", ""),
            }
        )
    return out


def expected_releases(newest: str, min_release: str = "1.6") -> list[str]:
    """Every torch minor release from ``min_release`` to ``newest`` (1.x ends at 1.13)."""
    lo, hi = parse_version(min_release)[:2], parse_version(newest)[:2]
    out = []
    for major, last in ((1, 13), (2, hi[1] if hi[0] == 2 else -1)):
        for minor in range(last + 1):
            if lo <= (major, minor) <= hi:
                out.append(f"{major}.{minor}")
    return out


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select_wheels(wheels: list[Path], min_release: str | None = None) -> dict[str, Path]:
    """The wheel of each minor release (its newest patch); BuildError when a minor release
    between the first and the newest one is missing."""
    by_release: dict[str, Path] = {}
    for w in wheels:
        m = _WHEEL_RE.match(w.name)
        if not m:
            continue
        minor = f"{int(m.group(1))}.{int(m.group(2))}"
        patch = int(m.group(3))
        prev = by_release.get(minor)
        if prev is None or _patch_of(prev) < patch or (_patch_of(prev) == patch and w.name < prev.name):
            by_release[minor] = w
    if by_release:
        releases = sorted(by_release, key=parse_version)
        missing = [v for v in expected_releases(releases[-1], min_release or releases[0]) if v not in by_release]
        if missing:
            raise BuildError(f"no wheel for torch {', '.join(missing)}: every minor release must be indexed")
    return by_release


def _c_backed(mask: int) -> bool:
    """Present only by a stub or the binaries: a C-extension name."""
    return bool(mask & (EV_STUB | EV_BINARY)) and not mask & (EV_SOURCE | EV_SCHEMA | EV_ALIAS)


_TENSOR_CLASSES = frozenset({"torch.Tensor", "torch._tensor.Tensor", "torch.tensor.Tensor"})


def _c_object(name: str, mask: int) -> bool:
    """Whether ``name`` is a C-extension object whose members the binaries define: ``torch._C``
    and everything below it (bound by Python code too, `from torch import _C`), torch.Tensor
    (its C base's methods), or a name present only by a stub or the binaries."""
    return name == "torch._C" or name.startswith("torch._C.") or name in _TENSOR_CLASSES or _c_backed(mask)
_OPEN_KINDS = frozenset({KIND_NAMESPACE, KIND_SCHEMA_NS, KIND_OP})


class _Facts:
    """Per name and release: kind and evidence mask (the index's content before encoding)."""

    def __init__(self, per: list[ReleaseNames]) -> None:
        self.per = per
        self.kind: dict[str, dict[int, str]] = {}
        self.ev: dict[str, dict[int, int]] = {}
        for i, rn in enumerate(per):
            for name, kind in rn.names.items():
                self.kind.setdefault(name, {})[i] = kind
                self.ev.setdefault(name, {})[i] = rn.evidence.get(name, EV_SOURCE)

    def drop_pattern_overloads(self) -> int:
        """``aten::_add_relu(%a, %b, %alpha)`` in a JIT fusion pattern of libtorch_cpu reads like
        the schema of an unnamed overload. For an operator the schema files list, they list
        its unnamed overload too when it has one: a ``.default`` only the binary shows is such
        a pattern, and is dropped (named overloads, such as the JIT's
        ``_unsafe_index.Tensor_hacked_twin``, are kept). Returns release facts dropped."""
        dropped = 0
        for name in [n for n in self.ev if n.startswith("torch.ops.aten.") and n.endswith(".default")]:
            op = name[: -len(".default")]
            for i, mask in list(self.ev[name].items()):
                if mask == EV_BINARY and self.ev.get(op, {}).get(i, 0) & EV_SCHEMA:
                    del self.ev[name][i]
                    del self.kind[name][i]
                    dropped += 1
            if not self.ev[name]:
                del self.ev[name]
                del self.kind[name]
        return dropped

    def has(self, name: str, i: int) -> bool:
        return i in self.kind.get(name, {})

    def set(self, name: str, i: int, kind: str, ev: int) -> None:
        kinds = self.kind.setdefault(name, {})
        kinds.setdefault(i, kind)
        evs = self.ev.setdefault(name, {})
        evs[i] = evs.get(i, 0) | ev

    def any_kind(self, name: str) -> str:
        kinds = self.kind.get(name)
        return kinds[max(kinds)] if kinds else KIND_ATTR

    def extend_by_binaries(self) -> int:
        """A C-extension name whose stub came late, skipped a release or was dropped while the
        name stayed: walk from the releases having it to the neighbouring ones whose binding
        libraries hold its name (its parent present there). Returns release facts added."""
        extended = 0
        n = len(self.per)
        for name in sorted(self.ev, key=lambda n: (n.count("."), n)):
            evs = self.ev[name]
            if not any(_c_backed(mask) for mask in evs.values()) and not (
                name.startswith("torch._C.") and not any(mask & EV_SOURCE for mask in evs.values())
            ):
                continue
            parent, _, last = name.rpartition(".")
            kind = self.kind[name][max(evs)]

            def binary_has(i: int, parent: str = parent, last: str = last) -> bool:
                names = self.per[i].binding_names
                return bool(names) and last in names and self.has(parent, i) and _c_object(parent, self.ev[parent][i])

            changed = True
            while changed:
                changed = False
                for i in range(n):
                    if i in evs:
                        continue
                    if (i - 1 in evs or i + 1 in evs) and binary_has(i):
                        self.set(name, i, kind, EV_BINARY)
                        extended += 1
                        changed = True
        return extended

    def add_references(self) -> int:
        """A private name the release's own code uses, below a C-extension object (or a
        C-extension name of other releases): present, on the evidence of that use."""
        added = 0
        for i, rn in enumerate(self.per):
            for ref in sorted(rn.references):
                if self.has(ref, i):
                    self.ev[ref][i] |= EV_REFERENCE
                    continue
                parts = ref.split(".")
                n = len(parts) - 1
                while n > 1 and not self.has(".".join(parts[:n]), i):
                    n -= 1
                prefix = ".".join(parts[:n])
                if not self.has(prefix, i):
                    continue
                below_c = (
                    _c_object(prefix, self.ev[prefix][i])
                    or self.kind[prefix][i] in _OPEN_KINDS
                    or any(_c_backed(m) for m in self.ev.get(ref, {}).values())
                )
                if not below_c:
                    continue
                for k in range(n + 1, len(parts) + 1):
                    name = ".".join(parts[:k])
                    self.set(name, i, self.any_kind(name), EV_REFERENCE)
                added += 1
        return added

    def cpu_absent(self) -> dict[str, list[int]]:
        """Releases in which a name exists only in other builds (CUDA, XPU, MPS, ...): it is a
        C-extension name of a device (see _DEVICE_RE) that the CPU wheel's binaries lack, or an
        MPS name (the macOS wheels have MPS, a CPU-only build does not)."""
        out: dict[str, list[int]] = {}
        for name in sorted(self.ev, key=lambda n: (n.count("."), n)):
            parent = name.rpartition(".")[0]
            # only C-extension names: torch._C and what it defines (a Python module that
            # mentions a device is in every build)
            if not (name.startswith("torch._C.") or parent in _TENSOR_CLASSES or parent == "torch"):
                continue
            parent_is_module = self.any_kind(parent) == KIND_MODULE
            last = name.rpartition(".")[2]
            for i, mask in sorted(self.ev[name].items()):
                if mask & (EV_SOURCE | EV_SCHEMA | EV_ALIAS):
                    continue
                below = i in out.get(parent, ())
                device = bool(_DEVICE_RE.search(last))
                missing = not mask & EV_BINARY and bool(self.per[i].binding_names)
                # an MPS function or class of a module (not an enum member such as
                # DispatchKey.MPS, which every build has): the macOS wheel has it, CPU-only builds do not
                macos_only = parent_is_module and bool(_MACOS_DEVICE_RE.search(last))
                if below or (device and missing) or macos_only:
                    out.setdefault(name, []).append(i)
        return out


def build_index(
    wheels: list[Path],
    curated_path: Path | None = None,
    log: Callable[[str], object] | None = None,
    jobs: int = 1,
    min_release: str | None = None,
    cache_dir: Path | None = None,
) -> tuple[bytes, list[str]]:
    """Build the gzip'ed index from the wheels; returns (bytes, warnings). Raises BuildError
    for a missing minor release or a curated replacement the wheels disprove."""
    warnings: list[str] = []
    log = log or (lambda msg: None)
    by_release = select_wheels(wheels, min_release)
    releases = sorted(by_release, key=lambda v: parse_version(v))
    paths = [by_release[v] for v in releases]
    if jobs > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as ex:
            results = list(ex.map(_read_summary, paths, [cache_dir] * len(paths)))
    else:
        results = [_read_summary(p, cache_dir) for p in paths]
    per: list[ReleaseNames] = []
    for version, (syntax_errors, n_ops, rn) in zip(releases, results, strict=True):
        log(f"{version}: {by_release[version].name}: {len(rn.names)} names, {n_ops} aten ops, "
            f"{len(rn.binding_names)} binding strings, {len(rn.references)} private references"
            + (f", {len(syntax_errors)} files not parsed" if syntax_errors else ""))
        for f in syntax_errors:
            warnings.append(f"{version}: could not parse {f}")
        per.append(rn)
    facts = _Facts(per)
    log(f"operator patterns: {facts.drop_pattern_overloads()} binary-only .default overloads dropped")
    log(f"binaries: {facts.extend_by_binaries()} release facts added")
    log(f"references: {facts.add_references()} release facts added")
    cpu_absent = facts.cpu_absent()

    range_ids: dict[str, int] = {}
    range_list: list[str] = []

    def rid(indices: Iterable[int]) -> int:
        enc = encode_ranges(indices)
        if enc not in range_ids:
            range_ids[enc] = len(range_list)
            range_list.append(enc)
        return range_ids[enc]

    def facts_of(name: str) -> tuple[str, str, str]:
        by_kind: dict[str, list[int]] = {}
        for i, kind in sorted(facts.kind[name].items()):
            by_kind.setdefault(kind, []).append(i)
        kinds = ",".join(f"{k}{rid(ix)}" for k, ix in sorted(by_kind.items(), key=lambda kv: kv[1][0]))
        by_mask: dict[int, list[int]] = {}
        for i, mask in sorted(facts.ev[name].items()):
            by_mask.setdefault(mask, []).append(i)
        ev = "" if set(by_mask) == {EV_SOURCE} else ",".join(
            f"{mask}.{rid(ix)}" for mask, ix in sorted(by_mask.items(), key=lambda kv: kv[1][0])
        )
        cpu = str(rid(cpu_absent[name])) if name in cpu_absent else ""
        return kinds, ev, cpu

    buckets: dict[str, list[str]] = {}
    for name in sorted(facts.kind):
        buckets.setdefault(bucket_key(name), []).append(name)
    encoded: dict[str, str] = {}
    for key, members in sorted(buckets.items()):
        encoded[key] = encode_bucket(key, [(name, *facts_of(name)) for name in members])

    replacements = _replacements(releases, per, facts, curated_path, warnings)

    def dumps(obj: object) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    blobs: list[bytes] = []
    offset = 0
    keys = sorted(encoded)
    sizes: list[int] = []
    for key in keys:
        blob = gzip_member(encoded[key].encode("utf-8"))
        sizes.append(len(blob))
        offset += len(blob)
        blobs.append(blob)
    blob = gzip_member(dumps(replacements))
    repl_loc = [offset, len(blob)]
    blobs.append(blob)
    header = {
        "format": FORMAT,
        "releases": releases,
        "wheels": {v: by_release[v].name for v in releases},
        "sha256": {v: sha256_of(by_release[v]) for v in releases},
        "python": "{}.{}".format(*sys.version_info[:2]),
        "evidence": {str(bit): label for bit, label in EVIDENCE_NAMES.items()},
        "ranges": range_list,
        "bucket_keys": "\n".join(keys),
        "bucket_sizes": sizes,
        "replacements": repl_loc,
        "names": len(facts.kind),
    }
    data = gzip_member(dumps(header) + b"\n") + b"".join(blobs)
    return data, warnings


def _replacements(
    releases: list[str],
    per: list[ReleaseNames],
    facts: _Facts,
    curated_path: Path | None,
    warnings: list[str],
) -> list[dict[str, object]]:
    """Curated replacements (checked against the wheels) and derived ones (a public module
    re-exporting the private object), each with the releases in which it holds."""
    n = len(releases)

    def present(name: str, i: int) -> bool:
        return facts.has(name, i) or name in per[i].public

    def public_in(name: str, i: int) -> bool:
        """``name`` is a public API in release ``i``: no private component, and exported by its
        module (``__all__``, package ``__init__``, ``as`` idiom) or a public module itself."""
        if is_private(name):
            return False
        return name in per[i].exported or facts.kind.get(name, {}).get(i) == KIND_MODULE

    def canonical(name: str, i: int) -> str:
        return per[i].canonical.get(name, name)

    def same_object(a: str, b: str, i: int) -> bool:
        return present(a, i) and present(b, i) and canonical(a, i) == canonical(b, i)

    def since(have: list[int]) -> str | None:
        """The first release of the run of ``have`` that reaches the newest release."""
        if not have or max(have) != n - 1:
            return releases[min(have)] if have else None
        first = n - 1
        while first - 1 in have:
            first -= 1
        return releases[first]

    def kind_now(name: str) -> str:
        return facts.any_kind(name)

    out: list[dict[str, object]] = []
    curated_private: set[str] = set()
    if curated_path is not None and curated_path.exists():
        for entry in _load_curated(curated_path):
            priv, repl, claimed = entry["private"], entry["replacement"], entry["public_since"]
            check = entry["check"]
            if not any(facts.has(priv, i) for i in range(n)):
                raise BuildError(f"curated: private name {priv} is in no indexed release")
            if entry["documented"]:
                # public by its documentation although no `__all__` lists it (torch.jit.is_tracing)
                have = [i for i in range(n) if not is_private(repl) and present(repl, i)]
            else:
                have = [
                    i for i in range(n)
                    if public_in(repl, i) and (check == repl or public_in(check, i) or present(check, i))
                ]
            if not have:
                raise BuildError(f"curated: replacement {repl} is public in no indexed release")
            identity = [i for i in have if same_object(priv, repl, i)]
            applicability = entry["applicability"]
            if applicability == "drop-in" and not identity and not entry["equivalence"]:
                raise BuildError(
                    f"curated: {priv} -> {repl} is marked drop-in, but the wheels never show the same object "
                    "and no `equivalence` says why it is equivalent"
                )
            first = since(have)
            if first != claimed:
                warnings.append(f"curated: {check} is first found in {first}, replacements.toml says {claimed}")
            out.append(
                {
                    "private": priv,
                    "replacement": repl,
                    "public_since": first or claimed,
                    "source": entry["source"],
                    "derived": False,
                    "applicability": applicability,
                    "evidence": "same object" if identity else entry["equivalence"],
                    "ranges": encode_ranges(have),
                    "module": kind_now(priv) == KIND_MODULE,
                }
            )
            curated_private.add(priv)
    # expansions of curated module replacements: the names under the private module whose
    # mapped name is a public API (exported) of the public module
    for curated in list(out):
        if not curated["module"]:
            continue
        priv, repl = str(curated["private"]), str(curated["replacement"])
        for name in sorted(facts.kind):
            if not name.startswith(priv + ".") or name in curated_private:
                continue
            mapped = repl + name[len(priv):]
            have = [i for i in range(n) if public_in(mapped, i)]
            if not have or not any(facts.has(name, i) for i in have):
                continue
            identity = [i for i in have if same_object(name, mapped, i)]
            out.append(
                {
                    "private": name,
                    "replacement": mapped,
                    "public_since": since(have),
                    "source": curated["source"],
                    "derived": False,
                    # the modules differ, but a name below them that is the same object is a drop-in
                    "applicability": "drop-in" if identity else "suggestion",
                    "evidence": "same object" if identity else "",
                    "ranges": encode_ranges(have),
                    "module": kind_now(name) == KIND_MODULE,
                }
            )
            curated_private.add(name)
    # derived: a public module deliberately re-exports the private object; it holds in every
    # release where the public name is the same object (back before `__all__` listed it)
    pairs: set[tuple[str, str]] = set()
    sources: dict[tuple[str, str], str] = {}
    for rn in per:
        for pair, src in rn.derived.items():
            pairs.add(pair)
            sources.setdefault(pair, src)
    best: dict[str, tuple[str, list[int]]] = {}

    def score(c: tuple[str, list[int]]) -> tuple[int, int, int, int, str]:
        return (-max(c[1]), c[0].count("."), -len(c[1]), len(c[0]), c[0])

    for priv, pub in sorted(pairs):
        if priv in curated_private or priv not in facts.kind:
            continue
        idxs = [i for i in range(n) if same_object(priv, pub, i) and pub in per[i].public]
        if not idxs or not public_in(pub, max(idxs)):
            continue
        cand = (pub, idxs)
        cur = best.get(priv)
        if cur is None or score(cand) < score(cur):
            best[priv] = cand
    for priv in sorted(best):
        pub, idxs = best[priv]
        out.append(
            {
                "private": priv,
                "replacement": pub,
                "public_since": since(idxs),
                "source": sources[(priv, pub)],
                "derived": True,
                "applicability": "drop-in",
                "evidence": "same object",
                "ranges": encode_ranges(idxs),
                "module": kind_now(priv) == KIND_MODULE,
            }
        )
    out.sort(key=lambda r: (str(r["private"]), bool(r["derived"])))
    return out


def _patch_of(path: Path) -> int:
    m = _WHEEL_RE.match(path.name)
    return int(m.group(3)) if m else -1


# --------------------------------------------------------------------------------------
# downloading

# (first minor release, platform, python version) to try, newest first
_PLATFORMS: list[tuple[tuple[int, int], str, str]] = [
    ((2, 3), "macosx_14_0_arm64", "3.12"),
    ((1, 0), "macosx_10_9_x86_64", "3.8"),
]


def available_versions(pip: list[str]) -> list[str]:
    """All torch versions PyPI offers as macOS wheels, across the platforms used."""
    found: set[str] = set()
    for _, platform, py in _PLATFORMS:
        out = subprocess.run(
            [*pip, "index", "versions", "torch", "--only-binary=:all:",
             "--platform", platform, "--python-version", py],
            capture_output=True, text=True, check=False,
        ).stdout
        m = re.search(r"Available versions: (.*)", out)
        if m:
            found.update(v.strip() for v in m.group(1).split(","))
    return sorted((v for v in found if re.fullmatch(r"\d+\.\d+\.\d+", v)), key=parse_version)


def latest_patches(versions: list[str], min_release: str) -> list[str]:
    latest: dict[tuple[int, ...], str] = {}
    lo = parse_version(min_release)[:2]
    for v in versions:
        p = parse_version(v)
        if p[:2] < lo:
            continue
        if p[:2] not in latest or parse_version(latest[p[:2]]) < p:
            latest[p[:2]] = v
    return [latest[k] for k in sorted(latest)]


def download(wheels_dir: Path, min_release: str = "1.6", log: Callable[[str], object] = print) -> None:
    pip = [sys.executable, "-m", "pip"]
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for version in latest_patches(available_versions(pip), min_release):
        if any(wheels_dir.glob(f"torch-{version}-*.whl")):
            continue
        key = parse_version(version)[:2]
        for first, platform, py in _PLATFORMS:
            if key < first:
                continue
            log(f"downloading torch=={version} ({platform}, cp{py.replace('.', '')})")
            res = subprocess.run(
                [*pip, "download", "--no-deps", "--only-binary=:all:", "--platform", platform,
                 "--python-version", py, "-d", str(wheels_dir), f"torch=={version}"],
                check=False,
            )
            if res.returncode == 0:
                break
        else:
            raise BuildError(f"no wheel found for torch=={version} (a missing release would leave a gap in the index)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.build_torch_index",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheels", type=Path, required=True, help="folder of torch wheels")
    ap.add_argument("--download", action="store_true", help="download missing wheels first")
    ap.add_argument("--min-release", default="1.6")
    ap.add_argument("--out", type=Path, default=Path("rules/torch-index.gz"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="wheels read in parallel (default: CPU count)")
    ap.add_argument("--replacements", type=Path, default=None,
                    help="curated replacements (default: replacements.toml next to --out)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep each wheel's extraction here (reused by the same builder code and Python)")
    args = ap.parse_args(argv)
    try:
        if args.download:
            download(args.wheels, args.min_release)
        return _build(args)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _build(args: argparse.Namespace) -> int:
    lo = parse_version(args.min_release)[:2]
    wheels = []
    for w in sorted(args.wheels.glob("torch-*.whl")):
        m = _WHEEL_RE.match(w.name)
        if m and (int(m.group(1)), int(m.group(2))) >= lo:
            wheels.append(w)
    if not wheels:
        print(f"no torch wheels in {args.wheels}", file=sys.stderr)
        return 2
    curated = args.replacements or args.out.parent / "replacements.toml"
    start = time.perf_counter()
    data, warnings = build_index(wheels, curated, log=lambda m: print(m, file=sys.stderr),
                                 jobs=args.jobs, min_release=args.min_release, cache_dir=args.cache)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
