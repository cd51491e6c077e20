"""What every fix must preserve: the result parses, its encoding is the original's, and its AST
changes only where a fix meant it to."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

import libcst as cst

from esper_lint import parsing


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
