"""What every fix must preserve (the result parses, its encoding is the original's, and its AST
changes only where a fix meant it to), and how applicable each fix is (`rewrite_applicability`)."""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import libcst as cst

from esper_lint import parsing
from esper_lint.names import is_private
from esper_lint.torch_index import Replacement, TorchIndex, format_releases
from esper_lint.torch_index.versions import SpecifierError, minor_release, parse_version, releases_in_range


class UnsafeFix(Exception):
    """A fix would change the code in a way it did not mean to; nothing is written."""


def python_ast(source: bytes) -> ast.Module:
    return ast.parse(source)


def check_parses(new: bytes, original: cst.Module) -> cst.Module:
    guarded = parsing.guard(new, "<fixed>")
    parsed = parsing.parse(new, "<fixed>", guarded=guarded) if guarded.tree is not None else None
    if parsed is None or parsed.module is None:
        failure = parsed.failure if parsed is not None else guarded.failure
        reason = failure.message if failure is not None else "CPython refuses it"
        raise UnsafeFix(f"the fixed code does not parse: {reason}")
    module = parsed.module
    if module.encoding != original.encoding or new.startswith(b"\xef\xbb\xbf") != original.bytes.startswith(b"\xef\xbb\xbf"):
        raise UnsafeFix("the fix would change the file's encoding")
    return module


def check_same_ast(old: bytes, new: bytes) -> None:
    """Comment-only fixes: the AST must be identical."""
    if ast.dump(python_ast(old)) != ast.dump(python_ast(new)):
        raise UnsafeFix("a comment-only fix changed the code")


class _Mask(ast.NodeTransformer):
    """Replace the rewritten chains by one placeholder and drop imports under the roots."""

    def __init__(self, chains: set[str], roots: Sequence[str]) -> None:
        self.chains = chains
        self.roots = tuple(roots)

    def _under_root(self, dotted: str | None) -> bool:
        return dotted is not None and any(dotted == r or dotted.startswith(r + ".") for r in self.roots)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        text = ast_dotted(node)
        if text is not None and text in self.chains:
            return ast.copy_location(ast.Name(id="__esper_lint_chain__", ctx=node.ctx), node)
        return self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        return None if any(self._under_root(alias.name) for alias in node.names) else node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        return None if not node.level and self._under_root(node.module) else node


def ast_dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = ast_dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def check_replacement_ast(old: bytes, new: bytes, chains: Iterable[str], roots: Sequence[str]) -> None:
    """Code fixes: equal ASTs once the replaced chains and the imports under the roots are masked."""
    mask = _Mask(set(chains), roots)
    before = ast.dump(mask.visit(python_ast(old)))
    after = ast.dump(mask.visit(python_ast(new)))
    if before != after:
        raise UnsafeFix("the replacement changed more code than the replaced names and their imports")


# ------------------------------------------------------------------ applicability
# As in ruff: a *safe* fix is applied by `--fix`, an *unsafe* one only with `--unsafe-fixes`, a
# *display-only* one is shown (`--show-fixes`) and never applied. Each fix's applicability is
# derived here, from the knowledge (the replacement registry and the torch index), in one place;
# a rule document's `fix` key is the most a fix of that rule can be (registry.py caps with it).
Applicability = Literal["safe", "unsafe", "display-only"]
APPLICABILITIES: tuple[Applicability, ...] = ("safe", "unsafe", "display-only")  # most to least applicable


def weakest(*kinds: Applicability) -> Applicability:
    """The least applicable of `kinds` (a rule's cap and a fix's own applicability)."""
    return max(kinds, key=APPLICABILITIES.index)


def applies(kind: Applicability, *, unsafe: bool) -> bool:
    """Whether a fix of this applicability is applied: safe ones always, unsafe ones with `--unsafe-fixes`."""
    return kind == "safe" or (kind == "unsafe" and unsafe)


@dataclass(frozen=True)
class ApplicableReleases:
    """The torch releases a fix must work on at one reference, and where that range comes from."""

    releases: tuple[str, ...]  # indexed minor releases, oldest first
    declared: bool  # from `torch-versions` or the project's torch requirement, not assumed
    description: str  # said in --show-fixes: "torch-versions >=2.1", "installed torch 2.13 and newer (no declared range)"
    unknown: bool = False  # nothing declared and no torch installed: every indexed release, as the widest guess


# A distribution's metadata folder as installers name it: `torch-2.13.0+cpu.dist-info`.
_TORCH_METADATA = re.compile(r"torch-(?P<version>[^-]+?)(?:-py\d.*)?\.(?:dist|egg)-info")


@cache
def installed_torch_release() -> str | None:
    """The installed torch's minor release ("2.13"), from the name of its metadata folder on
    sys.path, the first found winning as for an import: torch is never imported for this, and
    neither is importlib.metadata, whose import alone costs a pre-commit run more than a file's
    fix. None when torch is not installed or its version does not parse."""
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in sorted(names):
            match = _TORCH_METADATA.fullmatch(name)
            if match is None:
                continue
            try:
                return minor_release(match.group("version").split("+")[0])
            except SpecifierError:
                return None
    return None


def applicable_releases(
    torch_versions: str | None, index: TorchIndex, reference: object = None
) -> ApplicableReleases:
    """The releases that apply at `reference`: the declared range, or with none declared the
    installed torch and every newer indexed release, or with no torch installed either every
    indexed release (each said so in `description`). `reference` is accepted for the
    narrowed range inside version branches, which is not wired in yet: today every reference of a
    file gets the file's range."""
    del reference  # the narrowed range inside `if torch.__version__ ...` branches comes here
    if torch_versions:
        try:
            releases = releases_in_range(torch_versions, index.releases)
        except SpecifierError:
            releases = ()
        return ApplicableReleases(releases, declared=True, description=f"torch-versions {torch_versions}")
    installed = installed_torch_release()
    if installed is None:
        shown = format_releases(index.releases, index.releases)
        description = f"every indexed release, {shown} (no declared range, no installed torch)"
        return ApplicableReleases(index.releases, declared=False, description=description, unknown=True)
    try:
        floor = parse_version(installed)
        newer = tuple(release for release in index.releases if parse_version(release) >= floor)
    except SpecifierError:
        newer = ()
    return ApplicableReleases(newer, declared=False, description=f"installed torch {installed} and newer (no declared range)")


def replacement_kind(replacement: Replacement, index: TorchIndex) -> str:
    """"drop-in" (the same object, or proven equivalent) or "suggestion" (different semantics, or
    a name nothing proves exists): the index's label (`Replacement.applicability`, checked against
    the wheels by the builder). A name mapped through its module's entry (`torch.a._b.X` ->
    `torch.a.b.X`, where the registry holds nothing for the name itself) is a suggestion whatever
    the module's label: nothing proves the mapped name is the same object, or public."""
    if not is_registry_entry(replacement, index):
        return "suggestion"
    return "drop-in" if replacement.applicability == "drop-in" else "suggestion"


def is_registry_entry(replacement: Replacement, index: TorchIndex) -> bool:
    """Whether the registry holds `replacement` for its private name itself, not mapped through
    the entry of a module above it."""
    return replacement.private in _direct_replacements(index)


def _direct_replacements(index: TorchIndex) -> frozenset[str]:
    cached = _DIRECT.get(id(index))
    if cached is None or cached[0] is not index:
        cached = (index, frozenset(item.private for item in index.replacements()))
        _DIRECT[id(index)] = cached
    return cached[1]


_DIRECT: dict[int, tuple[TorchIndex, frozenset[str]]] = {}


def rewrite_applicability(
    replacement: Replacement, releases: ApplicableReleases, index: TorchIndex
) -> tuple[Applicability, str]:
    """How applicable swapping a private name for `replacement` is, and why (for --show-fixes).

    Safe only when the replacement is drop-in and public in every release that applies at the
    reference. A suggestion is display-only, and so is a replacement missing from some release of
    the range (the rewritten code would fail there). Unsafe: a curated replacement not labelled
    drop-in, and, where no range is known at all (nothing declared, no torch installed), a
    replacement missing from some indexed release: each may well be right, but nothing proves it."""
    if is_private(replacement.replacement):
        return "display-only", f"`{replacement.replacement}` is not a public name"
    kind = replacement_kind(replacement, index)
    if kind == "suggestion":
        return "display-only", f"`{replacement.replacement}` is a suggestion, not proven to behave the same: for a person to weigh"
    have = set(replacement.releases)
    lookup = index.lookup(replacement.replacement)
    if lookup is not None and lookup.exact:
        have &= set(lookup.releases)
    missing = [release for release in releases.releases if release not in have]
    if missing and releases.unknown:  # the code may well not run on those releases: nobody said
        return "unsafe", (
            f"`{replacement.replacement}` is missing from torch {format_releases(missing, index.releases)}, and no"
            " range says whether the code runs there (set torch-versions)"
        )
    if missing:
        return "display-only", (
            f"`{replacement.replacement}` is missing from torch {format_releases(missing, index.releases)}"
            f" ({releases.description})"
        )
    return "safe", f"drop-in and public in every release of {releases.description}"
