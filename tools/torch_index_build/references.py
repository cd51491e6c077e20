"""What a release's own Python code says about names it does not define.

* :func:`references`: the dotted ``torch`` names a module's code uses (``torch._C._nn.upsample_nearest2d(...)``,
  ``torch.Tensor._make_wrapper_subclass(cls, ...)``, ``from torch._C import _get_tracing_state``),
  with the names bound by its imports resolved. A use guarded by ``hasattr``/``getattr`` on the
  same name, by a ``try`` that catches ``AttributeError``/``ImportError``, or under
  ``if TYPE_CHECKING:`` is not counted: the code expects that it may be missing.
* :func:`alias_shims`: the modules a ``sys.modules[...] = ...`` assignment makes importable under
  another name (``torch/distributed/_tensor/__init__.py`` keeps ``torch.distributed._tensor.device_mesh``
  importable as ``torch.distributed.tensor.device_mesh``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping

__all__ = ["alias_shims", "references"]

_TOLERANT = frozenset({"AttributeError", "ImportError", "ModuleNotFoundError", "Exception", "BaseException", "RuntimeError"})


def _chain(node: ast.expr) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def _catches_missing(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for t in types:
        chain = _chain(t)
        if chain and chain[-1] in _TOLERANT:
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    chain = _chain(test)
    return bool(chain) and chain[-1] == "TYPE_CHECKING"  # type: ignore[index]


def _guard_string(node: ast.Call) -> str | None:
    """``hasattr(x, "name")`` / ``getattr(x, "name", default)`` -> ``"name"``: a probe for a
    name the code expects may be missing."""
    func = node.func
    if (
        isinstance(func, ast.Name)
        and func.id in ("hasattr", "getattr")
        and len(node.args) >= 2
        and (func.id == "hasattr" or len(node.args) == 3)
    ):
        arg = node.args[1]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


def _expand(parts: list[str], imports: Mapping[str, str], plain_imports: Mapping[str, str]) -> str | None:
    first = parts[0]
    base = imports.get(first) or plain_imports.get(first)
    if base is None:
        return None
    return ".".join([base, *parts[1:]])


_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = (ast.Constant, ast.Name, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.alias)


def _children(node: ast.AST) -> list[ast.AST]:
    fields = _FIELDS.get(type(node))
    if fields is None:
        fields = _FIELDS[type(node)] = tuple(f for f in node._fields if f != "ctx")
    out: list[ast.AST] = []
    for name in fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.AST) and not isinstance(v, _LEAVES))
        elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
            out.append(value)
    return out


def _unguarded_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of ``body`` outside tolerant ``try`` bodies and ``if TYPE_CHECKING:``, parents
    before children (names, constants and other leaves left out)."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handlers = node.handlers  # type: ignore[attr-defined]
            tolerant = any(_catches_missing(h) for h in handlers)
            children: list[ast.AST] = [] if tolerant else list(node.body)  # type: ignore[attr-defined]
            for h in handlers:
                children.extend(h.body)
            children.extend(node.orelse)  # type: ignore[attr-defined]
            children.extend(node.finalbody)  # type: ignore[attr-defined]
            stack.extend(reversed(children))
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        yield node
        if isinstance(node, ast.Attribute):
            # the chain's own inner attributes are part of it; only what hangs off it (a call's
            # arguments in `f(x).y`) is visited
            value = node.value
            while isinstance(value, ast.Attribute):
                value = value.value
            if not isinstance(value, _LEAVES):
                stack.append(value)
            continue
        stack.extend(reversed(_children(node)))


def references(tree: ast.Module, imports: Mapping[str, str], plain_imports: Mapping[str, str]) -> set[str]:
    """The dotted ``torch...`` names the module uses (longest attribute chains, and the
    targets of its ``from torch... import x``), read without running it."""
    guarded: set[str] = set()
    found: list[str] = []
    for node in _unguarded_nodes(tree.body):
        if isinstance(node, ast.Attribute):
            parts = _chain(node)
            if not parts:
                continue
            dotted = _expand(parts, imports, plain_imports)
            if dotted is not None and dotted.startswith("torch."):
                found.append(dotted)
        elif isinstance(node, ast.Call):
            probe = _guard_string(node)
            if probe is not None:
                guarded.add(probe)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("torch"):
            for alias in node.names:
                if alias.name != "*":
                    found.append(f"{node.module}.{alias.name}")
    return {d for d in found if not any(part in guarded for part in d.split(".")[1:])}


def _literal_lists(tree: ast.Module) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = stmt.value
            if isinstance(value, (ast.List, ast.Tuple)) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
            ):
                out[stmt.targets[0].id] = [
                    e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return out


def _text(node: ast.expr, env: Mapping[str, str]) -> str | None:
    """A string constant, or an f-string whose fields are names bound in ``env``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out.append(part.value)
            elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) and part.value.id in env:
                out.append(env[part.value.id])
            else:
                return None
        return "".join(out)
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    return None


def _shim(stmt: ast.stmt, env: Mapping[str, str], imports: Mapping[str, str], plain: Mapping[str, str]) -> tuple[str, str] | None:
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Subscript)):
        return None
    target = stmt.targets[0]
    if _chain(target.value) != ["sys", "modules"]:
        return None
    alias = _text(target.slice, env)
    value = stmt.value
    module: str | None = None
    if isinstance(value, ast.Call) and value.args and _chain(value.func) in (["import_module"], ["importlib", "import_module"]):
        module = _text(value.args[0], env)
    else:
        parts = _chain(value)
        if parts:
            module = _expand(parts, imports, plain)
    if alias and module and alias.startswith("torch.") and module.startswith("torch.") and alias != module:
        return alias, module
    return None


def alias_shims(tree: ast.Module, imports: Mapping[str, str], plain_imports: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(alias, module)`` for each module-level ``sys.modules[alias] = module`` whose both
    sides are static: string constants, f-strings over a loop of a literal list, a name
    bound by an import, or ``import_module("...")``."""
    lists = _literal_lists(tree)
    shims: list[tuple[str, str]] = []
    local_env: dict[str, str] = {}

    def visit(stmts: list[ast.stmt], env: dict[str, str]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name):
                items: list[str] | None = None
                if isinstance(stmt.iter, ast.Name):
                    items = lists.get(stmt.iter.id)
                elif isinstance(stmt.iter, (ast.List, ast.Tuple)):
                    items = [e.value for e in stmt.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                for item in items or []:
                    visit(stmt.body, {**env, stmt.target.id: item})
                continue
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                text = _text(stmt.value, env)
                if text is not None:
                    env[stmt.targets[0].id] = text
            if isinstance(stmt, (ast.If, ast.Try)):
                visit(stmt.body, env)
                continue
            found = _shim(stmt, env, imports, plain_imports)
            if found:
                shims.append(found)

    visit(tree.body, local_env)
    return shims
