"""Build the torch private-API index from release wheels, without importing them.

The index records, for every torch minor release from 1.6 to the newest one on PyPI, which
*private* dotted names under ``torch`` exist (see `esper_lint.names` for "private"), plus
every module path (public ones too, as anchors for lookups of deeper attributes) and the
public classes that carry private members (``torch.Tensor``, ``torch.nn.Module``).

Everything is read statically from one wheel per minor release: the zip is opened, Python
sources and stubs are parsed with :mod:`ast`, and the operator schemas are read from the
text files the wheel ships. Nothing from the wheel is ever imported or executed.

What is extracted from a wheel
------------------------------
* module paths: every ``torch/**/*.py``, ``*.pyi`` and extension module (``*.so``/``*.pyd``)
  and every package directory above them (``torch._dynamo``, ``torch.distributed._tensor``);
* module-level definitions: functions, classes, assignments and ``from``-imports (a
  ``from x import y`` binding is a module attribute; plain ``import x`` bindings and imports
  of a whole module under another name are not recorded, nor are non-torch imports), star
  imports resolved statically (``__all__`` when it is a literal, else the public names),
  ``del`` honoured, ``if TYPE_CHECKING:`` and ``if __name__ == "__main__":`` bodies skipped;
* class members (methods, class attributes, nested classes; dunders, name-mangled ``__x``
  and, outside stubs and NamedTuples, bare annotations, which declare instance attributes,
  skipped), also under the names a class is deliberately re-exported as (star import,
  ``__all__``, ``as`` idiom, package ``__init__``: ``torch.nn.Module._apply``);
* ``torch.Tensor``: members of ``class Tensor`` in ``torch/_tensor.py`` (``torch/tensor.py``
  before 1.8) *plus* the members of its C base ``torch._C.TensorBase`` (``_TensorBase``
  before 2.2) from ``torch/_C/__init__.pyi``;
* the names in ``torch/_C/*.pyi`` (``torch._C._foo``) and the functions of
  ``torch/_C/_VariableFunctions.pyi`` re-exported onto ``torch`` the way ``torch/__init__.py``
  does it at import time (``for name in dir(_C._VariableFunctions): ... globals()[name] = ...``,
  minus ``PRIVATE_OPS`` and with ``segment_reduce`` also exposed as ``_segment_reduce``): so
  ``torch._foreach_norm`` is a name of the ``torch`` module;
* private ATen operators ``torch.ops.aten._name`` and their overloads (``.default`` for the
  unnamed one) from ``torchgen/packaged/ATen/native/native_functions.yaml`` and
  ``RegistrationDeclarations.h`` (present in every wheel since 1.6).

Replacements
------------
Curated replacements come from ``rules/replacements.toml``; the builder checks each
``public_since`` against the wheels (the replacement must exist in that release and every
later one; it warns otherwise) and stores them with the release ranges in which the
replacement exists. It also *derives* replacements: when a public module (no private
component in its path) binds a public name by ``from torch._foo import bar [as baz]``, the
public name is the same object as the private one, so it is recorded as its replacement from
the first release that re-exports it (``source`` is the re-exporting file).

Output
------
``rules/torch-index.gz``: a sequence of gzip members (``zcat`` shows it all), written with a
fixed gzip header (mtime 0, no name, OS 255) and sorted JSON keys, so the same wheels give a
byte-identical file. The first member is a JSON header line::

    {"format": 2,
     "releases": ["1.6", ..., "2.15"],              # indexed minor releases, in order
     "wheels": {"1.6": "torch-1.6.0-...whl", ...},
     "ranges": ["0-23", "10-23", "0-8,11-12", ...],  # release index ranges (inclusive pairs)
     "bucket_keys": "torch._C\ntorch._C._VariableFunctions\n...",  # sorted
     "bucket_sizes": [1234, ...],                   # bytes of each bucket member, in order
     "replacements": [offset, length],
     "names": 226836}

The bucket members follow the header in ``bucket_keys`` order, then the replacements
member; offsets count from the end of the header member. Each bucket member holds the names of one
bucket (``bucket_key``: the parent name, cut to 4 components) so that a lookup decompresses and
decodes only what it needs; its lines are front-coded ``<shared>|<rest>|<kind><range id>``
(``encode_bucket``), kinds being m module, c class, f function, a attribute, n dynamic
namespace (torch.ops), s operator namespace (torch.ops.aten), p operator, o overload. The
replacements member is a JSON list of ``{"private", "replacement", "public_since",
"source", "derived", "module", "ranges"}`` objects (``ranges``: where the replacement exists).

Usage
-----
Download one wheel per minor release into a folder (outside the repository) and build::

    python -m tools.build_torch_index --wheels /work/torch-wheels --download \\
        --out rules/torch-index.gz

``--download`` runs ``pip download --no-deps --only-binary=:all: --platform P
--python-version V torch==X.Y.Z`` for the latest patch of every minor release from 1.6 to
the newest (found with ``pip index versions``), skipping wheels already in the folder;
macOS wheels are used because they are CPU-only and small (x86_64/cp38 up to 2.2,
arm64/cp312 from 2.3). Without ``--download`` the wheels already in the folder are used
(the newest patch of each minor release). ``--min-release 1.6`` sets the first release.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from esper_lint.names import is_dunder, is_private, is_private_component
from esper_lint.torch_index.versions import parse_version

# --------------------------------------------------------------------------------------
# helpers

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHEEL_RE = re.compile(r"^torch-(\d+)\.(\d+)\.(\d+)(?:[-+.][^-]*)?-.*\.whl$")
_EXT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[^/]*)?\.(?:so|pyd)$")
_SCHEMA_RE = re.compile(r'"schema": "aten::([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(')
_YAML_RE = re.compile(r"^- func: ([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(", re.M)

FORMAT = 2

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


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


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


def _class_members(body: list[ast.stmt], out: set[str], annotations: bool) -> None:
    """Names a class body binds as class attributes. ``annotations``: whether a bare
    annotation (``x: int`` without a value) counts; it does in stubs (declared attributes
    and properties of C types) and NamedTuple classes, not in ordinary classes (there it
    declares an instance attribute: a dataclass field, ``self.x = ...`` in ``__init__``).
    Names starting with ``__`` (not dunders) are name-mangled and skipped."""

    def add(name: str) -> None:
        if not (name.startswith("__") and not is_dunder(name)):
            out.add(name)

    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
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
                _class_members(stmt.body, out, annotations)
            _class_members(stmt.orelse, out, annotations)
        elif isinstance(stmt, ast.Try):
            _class_members(stmt.body, out, annotations)
            for h in stmt.handlers:
                _class_members(h.body, out, annotations)
            _class_members(stmt.orelse, out, annotations)
            _class_members(stmt.finalbody, out, annotations)
        elif isinstance(stmt, ast.With):
            _class_members(stmt.body, out, annotations)


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
                _class_members(stmt.body, ci.members, self.stub or named_tuple)
                info.classes[stmt.name] = ci
            elif isinstance(stmt, ast.Assign):
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
    ops: dict[str, set[str]]  # aten op name -> overload names
    syntax_errors: list[str] = field(default_factory=list)
    init_source: str = ""  # torch/__init__.py, for PRIVATE_OPS


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
        try:
            init_source = zf.read("torch/__init__.py").decode("utf-8", "replace")
        except KeyError:
            init_source = ""
    return Release(version, path.name, modules, ops, syntax_errors, init_source)


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
        if dotted in self.mods:
            return dotted, KIND_MODULE
        mod, _, attr = dotted.rpartition(".")
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


@dataclass
class ReleaseNames:
    names: dict[str, str]  # dotted name -> kind
    # every name public modules bind (public ones included), for checking replacements
    public: set[str]
    derived: dict[tuple[str, str], str]  # (private, public) -> source file


def extract_names(rel: Release) -> ReleaseNames:
    r = _Resolver(rel)
    mods = rel.modules
    names: dict[str, str] = {}
    public: set[str] = set()
    derived: dict[tuple[str, str], str] = {}

    def add(name: str, kind: str) -> None:
        if name not in names or names[name] == KIND_ATTR:
            names[name] = kind

    def add_class_members(alias: str, canonical: str) -> None:
        cmod, _, cname = canonical.rpartition(".")
        ci = mods[cmod].classes.get(cname) if cmod in mods else None
        if ci is None:
            return
        for member in ci.members:
            if is_dunder(member):
                continue
            full = f"{alias}.{member}"
            if is_private(full):
                add(full, KIND_ATTR)

    for modname in sorted(mods):
        add(modname, KIND_MODULE)
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
            if origin == "def":
                kind = mi.defs[local]
                if not mod_private and not is_private_component(local):
                    public.add(full)
                if kind == KIND_CLASS:
                    add_class_members(full, full)
                if is_private(full):
                    add(full, kind)
                continue
            # re-exported name (from-import or star import)
            res = r.resolve(full)
            target = mi.imports.get(local) if origin == "import" else None
            if res is None:
                # unresolvable (e.g. from a C extension without stub, or not torch)
                if target is not None and target.split(".")[0] == "torch" and is_private(full):
                    add(full, KIND_ATTR)
                continue
            canonical, kind = res
            if not mod_private and not is_private_component(local):
                public.add(full)
                # a deliberate re-export: listed in __all__, or (without __all__) bound
                # with the `from x import y as y` idiom; other imports of a public module
                # are usually for its own use (`from torch._six import string_classes`)
                deliberate = local in mi.all_ if mi.all_ is not None else local in mi.explicit
                if deliberate and is_private(canonical) and canonical != full:
                    src = mi.paths[0] if mi.paths else modname.replace(".", "/")
                    derived.setdefault((canonical, full), src)
            if kind == KIND_MODULE and canonical != full:
                continue  # `from torch import nn` inside a module: not an API of that module
            # members of a re-exported class are copied under the new name only for a
            # deliberate re-export (star import, __all__, `as` idiom, package __init__):
            # `torch.nn.Module._apply`, not `torch._inductor.codecache.FakeTensor.<all>`
            if kind == KIND_CLASS and (
                origin != "import"
                or mi.is_package
                or local in mi.explicit
                or (mi.all_ is not None and local in mi.all_)
            ):
                add_class_members(full, canonical)
            if is_private(full):
                add(full, kind)

    # torch.Tensor: its own members and those of the C base class
    tensor_mod = "torch._tensor" if "torch._tensor" in mods else "torch.tensor"
    tmi = mods.get(tensor_mod)
    if tmi and "Tensor" in tmi.classes:
        members = set(tmi.classes["Tensor"].members)
        for base in tmi.classes["Tensor"].bases:
            res = r.resolve_expr(tensor_mod, base)
            if res and res[1] == KIND_CLASS:
                bmod, _, bname = res[0].rpartition(".")
                bci = mods[bmod].classes.get(bname)
                if bci:
                    members |= bci.members
        for member in members:
            if is_private_component(member):
                add(f"torch.Tensor.{member}", KIND_ATTR)
                add(f"{tensor_mod}.Tensor.{member}", KIND_ATTR)

    # torch/__init__.py copies every function of torch._C._VariableFunctions onto torch
    vf = mods.get("torch._C._VariableFunctions")
    init = mods.get("torch")
    if vf is not None and init is not None:
        private_ops: set[str] = set()
        # PRIVATE_OPS and the segment_reduce rename are read from torch/__init__.py
        init_src = rel.init_source
        m = re.search(r"^PRIVATE_OPS\s*=\s*(\(.*?\)|\[.*?\])", init_src, re.M | re.S)
        if m:
            try:
                private_ops = set(ast.literal_eval(m.group(1)))
            except (ValueError, SyntaxError):
                private_ops = set()
        segment_hidden = '"_" + __name' in init_src or "'_' + __name" in init_src
        for fname, kind in vf.defs.items():
            if kind != KIND_FUNCTION or fname.startswith("__") or fname in private_ops:
                continue
            if is_private_component(fname):
                add(f"torch.{fname}", KIND_FUNCTION)
            else:
                public.add(f"torch.{fname}")
            if fname == "segment_reduce" and segment_hidden:
                add("torch._segment_reduce", KIND_FUNCTION)

    # private ATen operators
    add("torch.ops", KIND_NAMESPACE)
    if rel.ops:
        add("torch.ops.aten", KIND_SCHEMA_NS)
        for op, overloads in rel.ops.items():
            if not is_private_component(op):
                continue
            add(f"torch.ops.aten.{op}", KIND_OP)
            for ov in overloads:
                add(f"torch.ops.aten.{op}.{ov}", KIND_OVERLOAD)

    # every prefix of a known name is known (public classes holding private members)
    for name in list(names):
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in names:
                res = r.resolve(prefix)
                names[prefix] = res[1] if res else KIND_ATTR
    return ReleaseNames(names, public, derived)


def _read_summary(path: Path) -> tuple[list[str], int, ReleaseNames]:
    rel, rn = read_release(path)
    return rel.syntax_errors, len(rel.ops), rn


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


def encode_bucket(key: str, entries: list[tuple[str, str, int]]) -> str:
    """Front-coded lines ``<shared prefix length>|<rest of name>|<kind><range id>``.

    Names are relative to ``key`` (``key`` is a proper prefix of each name) and sorted;
    the shared prefix length (empty for 0) counts characters shared with the previous line.
    """
    lines = []
    prev = ""
    for name, kind, range_id in entries:
        rel = name[len(key) + 1 :] if key else name
        n = 0
        limit = min(len(rel), len(prev))
        while n < limit and rel[n] == prev[n]:
            n += 1
        lines.append(f"{n or ''}|{rel[n:]}|{kind}{range_id}")
        prev = rel
    return "\n".join(lines)


def _load_curated(path: Path) -> list[dict[str, str]]:
    from esper_lint.data import tomllib

    with open(path, "rb") as f:
        data = tomllib.load(f)
    out = []
    for entry in data.get("replacement", []):
        out.append(
            {
                "private": entry["private"],
                "replacement": entry["replacement"],
                "public_since": entry["public_since"],
                "source": entry["source"],
                "check": entry.get("check", entry["replacement"]),
            }
        )
    return out


def build_index(
    wheels: list[Path],
    curated_path: Path | None = None,
    log: Callable[[str], object] | None = None,
    jobs: int = 1,
) -> tuple[bytes, list[str]]:
    """Build the gzip'ed index from the wheels; returns (bytes, warnings)."""
    warnings: list[str] = []
    log = log or (lambda msg: None)
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
    releases = sorted(by_release, key=lambda v: parse_version(v))
    kinds: dict[str, list[str]] = {}  # name -> kind per release (last wins)
    presence: dict[str, list[int]] = {}
    public_presence: dict[str, list[int]] = {}
    derived_presence: dict[tuple[str, str], list[int]] = {}
    derived_source: dict[tuple[str, str], str] = {}
    paths = [by_release[v] for v in releases]
    if jobs > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as ex:
            results = list(ex.map(_read_summary, paths))
    else:
        results = [_read_summary(p) for p in paths]
    for idx, (version, (syntax_errors, n_ops, rn)) in enumerate(zip(releases, results, strict=True)):
        path = by_release[version]
        log(f"{version}: {path.name}: {len(rn.names)} names, {n_ops} aten ops"
            + (f", {len(syntax_errors)} files not parsed" if syntax_errors else ""))
        for f in syntax_errors:
            warnings.append(f"{version}: could not parse {f}")
        for name, kind in rn.names.items():
            presence.setdefault(name, []).append(idx)
            kinds.setdefault(name, []).append(kind)
        for name in rn.public:
            public_presence.setdefault(name, []).append(idx)
        for pair, src in rn.derived.items():
            derived_presence.setdefault(pair, []).append(idx)
            derived_source.setdefault(pair, src)

    def present(name: str) -> list[int]:
        return presence.get(name) or public_presence.get(name) or []

    range_ids: dict[str, int] = {}
    range_list: list[str] = []

    def rid(indices: Iterable[int]) -> int:
        enc = encode_ranges(indices)
        if enc not in range_ids:
            range_ids[enc] = len(range_list)
            range_list.append(enc)
        return range_ids[enc]

    buckets: dict[str, list[str]] = {}
    for name in sorted(presence):
        buckets.setdefault(bucket_key(name), []).append(name)
    encoded: dict[str, str] = {}
    for key, members in sorted(buckets.items()):
        encoded[key] = encode_bucket(
            key, [(name, kinds[name][-1], rid(presence[name])) for name in members]
        )

    replacements: list[dict[str, object]] = []
    # curated
    if curated_path is not None and curated_path.exists():
        for entry in _load_curated(curated_path):
            priv, repl, since = entry["private"], entry["replacement"], entry["public_since"]
            # `check` names what proves the replacement usable (default: the replacement
            # itself); for a module that existed before it became the public home of the
            # API, it is the API's main name (torch.distributed.tensor.DTensor)
            check = entry["check"]
            have = present(check)
            if check != repl:
                have = sorted(set(have) & set(present(repl)))
            if not have:
                warnings.append(f"curated: replacement {check} not found in any indexed release")
            else:
                first = releases[min(have)]
                if first != since:
                    warnings.append(
                        f"curated: {check} is first found in {first}, replacements.toml says {since}"
                    )
                start = releases.index(since) if since in releases else 0
                missing = [releases[i] for i in range(start, len(releases)) if i not in have]
                if missing:
                    warnings.append(f"curated: {check} missing from {', '.join(missing)}")
            if not present(priv):
                warnings.append(f"curated: private name {priv} not found in any indexed release")
            replacements.append(
                {
                    "private": priv,
                    "replacement": repl,
                    "public_since": since,
                    "source": entry["source"],
                    "derived": False,
                    "ranges": encode_ranges(have),
                    "module": present(priv) != [] and kinds.get(priv, ["?"])[-1] == KIND_MODULE,
                }
            )
    curated_private = {r["private"] for r in replacements}
    # expansions of curated module replacements: private names under the module whose
    # mapped public name exists
    for curated in list(replacements):
        if not curated["module"]:
            continue
        priv, repl = str(curated["private"]), str(curated["replacement"])
        for name in sorted(presence):
            if not name.startswith(priv + "."):
                continue
            mapped = repl + name[len(priv):]
            if is_private(mapped):
                continue
            have = present(mapped)
            if have and name not in curated_private:
                replacements.append(
                    {
                        "private": name,
                        "replacement": mapped,
                        "public_since": releases[min(have)],
                        "source": curated["source"],
                        "derived": False,
                        "ranges": encode_ranges(have),
                        "module": kinds[name][-1] == KIND_MODULE,
                    }
                )
                curated_private.add(name)
    # derived: choose, per private name, the public path exported the longest (then
    # shortest, then alphabetically first)
    best: dict[str, tuple[str, list[int]]] = {}
    for (priv, pub), idxs in derived_presence.items():
        if priv in curated_private or priv not in presence:
            continue
        cur = best.get(priv)
        cand = (pub, idxs)

        def score(c: tuple[str, list[int]]) -> tuple[int, int, int, str]:
            return (-max(c[1]), -len(c[1]), len(c[0]), c[0])

        if cur is None or score(cand) < score(cur):
            best[priv] = cand
    for priv in sorted(best):
        pub, idxs = best[priv]
        replacements.append(
            {
                "private": priv,
                "replacement": pub,
                "public_since": releases[min(idxs)],
                "source": derived_source[(priv, pub)],
                "derived": True,
                "ranges": encode_ranges(idxs),
                "module": kinds[priv][-1] == KIND_MODULE,
            }
        )
    replacements.sort(key=lambda r: (str(r["private"]), bool(r["derived"])))

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
        "ranges": range_list,
        "bucket_keys": "\n".join(keys),
        "bucket_sizes": sizes,
        "replacements": repl_loc,
        "names": len(presence),
    }
    data = gzip_member(dumps(header) + b"\n") + b"".join(blobs)
    return data, warnings


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
            log(f"warning: no wheel found for torch=={version}")


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
    args = ap.parse_args(argv)
    if args.download:
        download(args.wheels, args.min_release)
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
    data, warnings = build_index(wheels, curated, log=lambda m: print(m, file=sys.stderr),
                                 jobs=args.jobs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
