"""ESP301: replace a private reference with its public replacement.

Two forms are rewritten, both keeping the names the user chose:

- an attribute chain rooted at a name bound to a torch module is rewritten in place
  (`th._dynamo.disable` -> `th.compiler.disable`); when the replacement is not under the
  alias's module, the chain is written from the root name (`torch.compiler.disable`) if that
  name is free or bound to the root where the chain is;
- a from-import of the private name imports the replacement instead
  (`from torch._dynamo import disable as d` -> `from torch.compiler import disable as d`; a
  renamed replacement keeps the local name: `from torch.jit import is_tracing as
  _get_tracing_state`). A from-import that also imports names staying private is split.

`import <module>` is added where isort would put it (among the file's imports of the root, sorted)
when the replacement's module may not be loaded by `import torch` in every supported release, and a plain `import torch._x` that only the
rewritten chains used is dropped (or becomes `import torch` when something else needs the root
bound, or when comments sit on it). Other forms (`getattr` strings, `import torch._x as y`,
string annotations) are left for a person.

Only swaps whose applicability allows it are made (`AdmitByApplicability`: safe ones, unsafe ones
with `--unsafe-fixes`); the others are recorded as withheld with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst

from esper_lint.analysis.judge import Verdict
from esper_lint.analysis.knowledge import TorchKnowledge
from esper_lint.analysis.resolver import Reference, ReferenceCollector, dotted_name, leftmost
from esper_lint.fast.positions import node_starts
from esper_lint.fix.analysis import Judged, judge_module
from esper_lint.fix.edits import AppliedFix, FixState
from esper_lint.fix.safety import Applicability, applicable_releases, check_parses, check_replacement_ast, rewrite_applicability
from esper_lint.fix.tree import TargetedTransformer, paths_to, walk
from esper_lint.names import covers, is_private_name
from esper_lint.torch_index import TorchIndex, load_index

# Submodules that `import torch` itself loads in every release that has them (checked against the
# sources of torch/__init__.py); any other module a replacement lives in gets an explicit import.
EAGER_MODULES = frozenset(
    {
        "torch",
        "torch.autograd",
        "torch.backends",
        "torch.compiler",
        "torch.cuda",
        "torch.distributions",
        "torch.fft",
        "torch.func",
        "torch.functional",
        "torch.hub",
        "torch.jit",
        "torch.linalg",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.nn.utils",
        "torch.optim",
        "torch.random",
        "torch.serialization",
        "torch.sparse",
        "torch.special",
        "torch.testing",
        "torch.utils",
        "torch.utils.data",
    }
)


@dataclass
class Replaced:
    """One fixed finding, for FixOutcome.applied."""

    verdict: Verdict
    reference: Reference
    replacement: str
    description: str


@dataclass
class ReplacementPlan:
    chains: dict[int, cst.BaseExpression] = field(default_factory=dict)  # id(Attribute) -> new chain
    nodes: list[cst.CSTNode] = field(default_factory=list)  # the nodes the rewrite edits
    whole_imports: dict[int, tuple[str, list[cst.ImportAlias]]] = field(default_factory=dict)
    split_imports: dict[int, list[tuple[str, cst.ImportAlias]]] = field(default_factory=dict)  # id(ImportFrom) -> moved aliases
    split_aliases: dict[int, dict[int, tuple[str, cst.ImportAlias]]] = field(default_factory=dict)
    imports_needed: set[str] = field(default_factory=set)
    old_chains: set[str] = field(default_factory=set)
    new_chains: set[str] = field(default_factory=set)
    replaced_names: set[str] = field(default_factory=set)
    private_imports: dict[str, cst.CSTNode] = field(default_factory=dict)  # `import torch._x` -> its first anchor
    done: list[Replaced] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.done


def module_of(index: TorchIndex, dotted: str) -> str:
    """The longest prefix of `dotted` (itself included) that the index knows as a module."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        prefix = ".".join(parts[:end])
        lookup = index.lookup(prefix)
        if lookup is not None and lookup.exact and lookup.is_module:
            return prefix
    return parts[0]


def _is_module(index: TorchIndex, dotted: str) -> bool:
    if "." not in dotted:
        return True
    lookup = index.lookup(dotted)
    return lookup is not None and lookup.exact and lookup.is_module


def _needs_import(module: str, base: str | None) -> bool:
    if module in EAGER_MODULES:
        return False
    return base is None or not covers(module, base)


# Decides, for one ESP301 finding, whether its swap is applied now (see `AdmitByApplicability`).
Admit = Callable[[Verdict, Reference], bool]


class AdmitByApplicability:
    """The swaps applied now: those whose applicability (safety.rewrite_applicability, capped by
    ESP301's rule document) allows it; the others are withheld with the reason. `kinds` keeps the
    applicability of each admitted swap, by id of its finding's anchor."""

    def __init__(self, state: FixState, index: TorchIndex) -> None:
        self.state = state
        self.index = index
        self.kinds: dict[int, Applicability] = {}

    def __call__(self, verdict: Verdict, reference: Reference) -> bool:
        replacement = self.index.replacement(reference.name)
        if replacement is None:
            return False
        releases = applicable_releases(self.state.config.torch_versions, self.index, reference)
        own, reason = rewrite_applicability(replacement, releases, self.index)
        kind, apply = self.state.decide("ESP301", own)
        if apply:
            self.kinds[id(verdict.anchor)] = kind
        else:
            description = f"replace `{reference.name}` with `{replacement.replacement}`"
            self.state.withhold(verdict.anchor, "ESP301", reference.name, description, kind, reason)
        return apply


def plan_replacements(
    judged: Judged, index: TorchIndex, roots: Sequence[str], admit: Admit | None = None
) -> ReplacementPlan:
    plan = ReplacementPlan()
    knowledge = judged.knowledge
    targets = [
        (verdict, reference)
        for verdict, reference in judged.references_for("ESP301")
        if admit is None or admit(verdict, reference)
    ]
    for reference in judged.collection.references:
        node = reference.statement.node
        if isinstance(node, cst.SimpleStatementLine) and any(isinstance(s, cst.Import) for s in node.body):
            plan.private_imports.setdefault(reference.name, reference.anchor)
    if knowledge is None or not targets:
        return plan
    by_anchor = {id(reference.anchor): (verdict, reference) for verdict, reference in targets}
    chains: dict[int, tuple[cst.Attribute, Verdict, Reference]] = {}
    froms: dict[int, tuple[cst.ImportFrom, list[tuple[cst.ImportAlias, Verdict, Reference]]]] = {}
    statements = {id(reference.statement.node): reference.statement.node for _, reference in targets}
    for statement_node in statements.values():
        for node in walk(statement_node):
            if isinstance(node, cst.Attribute):
                left = leftmost(node)
                hit = by_anchor.get(id(left))
                if hit is not None and isinstance(left, cst.Name) and id(left) not in chains and dotted_name(node):
                    chains[id(left)] = (node, *hit)
            elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    hit = by_anchor.get(id(alias.name))
                    if hit is not None:
                        froms.setdefault(id(node), (node, []))[1].append((alias, *hit))
    for attribute, verdict, reference in chains.values():
        _plan_chain(plan, index, knowledge, roots, attribute, verdict, reference)
    for import_from, hits in froms.values():
        _plan_from_import(plan, index, knowledge, import_from, hits)
    return plan


def _replacement(knowledge: TorchKnowledge, reference: Reference) -> str | None:
    """The replacement ESP301 named for this use: judged, as the judge does, on the releases its
    version branch runs on (`TorchKnowledge.branch_releases`)."""
    found = knowledge.replacement(
        reference.name, releases=knowledge.branch_releases(reference.branch), branch=reference.branch
    )
    return found[0] if found is not None else None


def _plan_chain(
    plan: ReplacementPlan,
    index: TorchIndex,
    knowledge: TorchKnowledge,
    roots: Sequence[str],
    attribute: cst.Attribute,
    verdict: Verdict,
    reference: Reference,
) -> None:
    written = dotted_name(attribute)
    replacement = _replacement(knowledge, reference)
    if written is None or replacement is None:
        return
    parent = replacement.rpartition(".")[0]
    known = index.lookup(parent) if "." in parent else None
    if "." in parent and not (known is not None and known.exact):
        return  # the replacement's owner is unknown: a module-prefix mapping may have crossed a function
    alias, _, rest = written.partition(".")
    if not rest or not reference.name.endswith("." + rest):
        return
    base = reference.name[: -len(rest) - 1]
    module = module_of(index, replacement)
    if replacement.startswith(base + "."):
        new_text = alias + replacement[len(base) :]
        needs = _needs_import(module, base)
    else:
        root = replacement.split(".")[0]
        found, value = reference.statement.scope.lookup(root)
        if found and value != root:
            return  # the root name means something else here
        new_text = replacement
        needs = _needs_import(module, None) or not found
    if is_private_name(replacement, roots):
        return
    try:
        new_node = cst.parse_expression(new_text)
    except cst.ParserSyntaxError:
        return
    plan.chains[id(attribute)] = new_node
    plan.nodes.append(attribute)
    if needs:
        plan.imports_needed.add(module)
    plan.old_chains.add(written)
    plan.new_chains.add(new_text)
    plan.replaced_names.add(reference.name)
    extra = f" (adding `import {module}`)" if needs else ""
    plan.done.append(Replaced(verdict, reference, replacement, f"replace `{written}` with `{new_text}`{extra}"))


def _plan_from_import(
    plan: ReplacementPlan,
    index: TorchIndex,
    knowledge: TorchKnowledge,
    import_from: cst.ImportFrom,
    hits: Sequence[tuple[cst.ImportAlias, Verdict, Reference]],
) -> None:
    moved: dict[int, tuple[str, cst.ImportAlias, Verdict, Reference, str]] = {}
    for alias, verdict, reference in hits:
        replacement = _replacement(knowledge, reference)
        if replacement is None or "." not in replacement:
            continue
        new_module, _, new_name = replacement.rpartition(".")
        if not _is_module(index, new_module):
            continue  # `from <class> import <attribute>` is no import
        if not isinstance(alias.name, cst.Name):
            continue  # a from-import imports plain names
        imported = alias.name.value
        bound_as = alias.asname.name if alias.asname is not None else None
        local = bound_as.value if isinstance(bound_as, cst.Name) else imported
        asname = None
        if local != new_name:
            asname = alias.asname if alias.asname is not None else cst.AsName(name=cst.Name(local))
        new_alias = alias.with_changes(name=cst.Name(new_name), asname=asname)
        moved[id(alias)] = (new_module, new_alias, verdict, reference, replacement)
    if not moved or isinstance(import_from.names, cst.ImportStar):
        return
    names = list(import_from.names)
    plan.nodes.append(import_from)
    targets = {entry[0] for entry in moved.values()}
    old_module = dotted_name(import_from.module) if import_from.module is not None else None
    if len(moved) == len(names) and len(targets) == 1:
        plan.whole_imports[id(import_from)] = (targets.pop(), [moved[id(alias)][1] for alias in names])
    else:
        plan.split_aliases[id(import_from)] = {key: (value[0], value[1]) for key, value in moved.items()}
    for new_module, new_alias, verdict, reference, replacement in moved.values():
        plan.replaced_names.add(reference.name)
        bound_as = new_alias.asname.name if new_alias.asname is not None else None
        shown = f" as {bound_as.value}" if isinstance(bound_as, cst.Name) else ""
        plan.done.append(
            Replaced(
                verdict,
                reference,
                replacement,
                f"import `{new_alias.name.value}` from `{new_module}` instead of `{old_module}`{shown}",
            )
        )


def _dotted_expr(dotted: str) -> cst.Attribute | cst.Name:
    expression = cst.parse_expression(dotted)
    assert isinstance(expression, (cst.Attribute, cst.Name)), dotted
    return expression


class _Rewriter(TargetedTransformer):
    def __init__(self, plan: ReplacementPlan, paths: set[int]) -> None:
        super().__init__(paths)
        self.plan = plan

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        new = self.plan.chains.get(id(original_node))
        if new is None:
            return updated_node
        return new.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if isinstance(original_node.names, cst.ImportStar) or isinstance(updated_node.names, cst.ImportStar):
            return updated_node  # never planned: a star import names nothing to replace
        whole = self.plan.whole_imports.get(id(original_node))
        if whole is not None:
            module, aliases = whole
            names = [new.with_changes(comma=old.comma) for old, new in zip(updated_node.names, aliases, strict=False)]
            return updated_node.with_changes(module=_dotted_expr(module), names=names)
        split = self.plan.split_aliases.get(id(original_node))
        if split is None:
            return updated_node
        kept = [
            updated
            for original, updated in zip(original_node.names, updated_node.names, strict=False)
            if id(original) not in split
        ]
        moved: dict[str, list[cst.ImportAlias]] = {}
        for original in original_node.names:
            if id(original) in split:
                module, alias = split[id(original)]
                moved.setdefault(module, []).append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        result = updated_node
        if not kept:  # every name moves, to several modules: this import takes the first of them
            first = next(iter(moved))
            kept = moved.pop(first)
            result = result.with_changes(module=_dotted_expr(first))
        if not updated_node.lpar:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        self.plan.split_imports[id(original_node)] = [
            (module, alias) for module, aliases in moved.items() for alias in aliases
        ]
        return result.with_changes(names=kept)

    def _extras(
        self, original_body: Sequence[cst.BaseSmallStatement], updated_body: Sequence[cst.BaseSmallStatement]
    ) -> tuple[list[cst.BaseSmallStatement], int]:
        body: list[cst.BaseSmallStatement] = []
        extras = 0
        for original, updated in zip(original_body, updated_body, strict=False):
            body.append(updated)
            moved = self.plan.split_imports.get(id(original))
            if moved:
                by_module: dict[str, list[cst.ImportAlias]] = {}
                for module, alias in moved:
                    by_module.setdefault(module, []).append(alias)
                for module, aliases in by_module.items():
                    body.append(cst.ImportFrom(module=_dotted_expr(module), names=aliases))
                    extras += 1
        return body, extras

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        body, extras = self._extras(original_node.body, updated_node.body)
        if not extras:
            return updated_node
        if len(original_node.body) == 1:
            return cst.FlattenSentinel(
                [updated_node, *(cst.SimpleStatementLine(body=[statement]) for statement in body[1:])]
            )
        return updated_node.with_changes(body=body)

    def leave_SimpleStatementSuite(
        self, original_node: cst.SimpleStatementSuite, updated_node: cst.SimpleStatementSuite
    ) -> cst.SimpleStatementSuite:
        body, extras = self._extras(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body) if extras else updated_node


def apply_replacements(module: cst.Module, plan: ReplacementPlan) -> cst.Module:
    module = module.visit(_Rewriter(plan, paths_to(module, plan.nodes)))
    return add_imports(module, plan.imports_needed)


def add_imports(module: cst.Module, modules: Iterable[str]) -> cst.Module:
    """`import <module>` for each module not imported so at the top level, where isort (and ruff's
    `I` rules, by default) would put it: among the file's top-level plain imports of the same root
    package, in sorted order (plain imports before from-imports in a section); without any, before
    the root's first top-level from-import; without that either, after the file's leading
    docstring, `__future__` imports and absolute imports (before its relative imports)."""
    present: set[str | None] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    present.update(dotted_name(a.name) for a in small.names if a.asname is None)
    needed = sorted(set(modules) - present)
    if not needed:
        return module
    body: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = list(module.body)
    for name in reversed(needed):  # each inserted at its own place; reversed keeps equal places in order
        position = _import_position(body, name)
        new = cst.SimpleStatementLine(body=[cst.Import(names=[cst.ImportAlias(name=_dotted_expr(name))])])
        if position < len(body) and _opens_the_group(body, position, name):
            new, body[position] = _take_leading_lines(new, body[position])
        body.insert(position, new)
    return module.with_changes(body=body)


def _sort_key(dotted: str) -> str:
    return dotted.lower()  # isort's default `force_sort_within_sections = false`, case-insensitive


def _plain_import_of(statement: cst.CSTNode, root: str) -> str | None:
    """The first module a top-level `import root...` statement imports, or None."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if not isinstance(small, cst.Import):
        return None
    first = dotted_name(small.names[0].name)
    return first if first is not None and (first == root or first.startswith(root + ".")) else None


def _from_import_of(statement: cst.CSTNode, root: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.ImportFrom) or small.relative or small.module is None:
        return False
    module = dotted_name(small.module)
    return module is not None and (module == root or module.startswith(root + "."))


def _import_position(body: Sequence[cst.BaseStatement], name: str) -> int:
    root = name.split(".")[0]
    plain = [(index, found) for index, statement in enumerate(body) if (found := _plain_import_of(statement, root))]
    if plain:
        after = [index for index, found in plain if _sort_key(found) <= _sort_key(name)]
        return after[-1] + 1 if after else plain[0][0]
    froms = [index for index, statement in enumerate(body) if _from_import_of(statement, root)]
    if froms:
        return froms[0]
    return _after_leading_imports(body)


def _after_leading_imports(body: Sequence[cst.BaseStatement]) -> int:
    position = 0
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        if index == 0 and len(statement.body) == 1 and isinstance(statement.body[0], cst.Expr) and isinstance(
            statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString)
        ):
            position = 1
            continue
        if all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body):
            if any(isinstance(small, cst.ImportFrom) and small.relative for small in statement.body):
                break  # relative imports come last: the new absolute import goes before them
            position = index + 1
            continue
        break
    return position


def _opens_the_group(body: Sequence[cst.BaseStatement], position: int, name: str) -> bool:
    """Whether the statement at `position` is the first of an import group (its comment lines or
    blank lines above belong to the group, so they go above the new import)."""
    statement = body[position]
    return isinstance(statement, cst.SimpleStatementLine) and bool(statement.leading_lines) and (
        _plain_import_of(statement, name.split(".")[0]) is not None or _from_import_of(statement, name.split(".")[0])
    )


def _take_leading_lines(
    new: cst.SimpleStatementLine, statement: cst.SimpleStatementLine | cst.BaseCompoundStatement
) -> tuple[cst.SimpleStatementLine, cst.SimpleStatementLine | cst.BaseCompoundStatement]:
    """Move the blank and comment lines above `statement` to `new`, inserted just before it."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return new, statement
    return new.with_changes(leading_lines=statement.leading_lines), statement.with_changes(leading_lines=())


# ------------------------------------------------------------------ unused private imports
def unused_private_imports(module: cst.Module, plan: ReplacementPlan, roots: Sequence[str]) -> set[str]:
    """Plain `import torch._x` statements that only the rewritten chains used."""
    candidates = {
        name for name in plan.private_imports if any(covers(name, replaced) and name != replaced for replaced in plan.replaced_names)
    }
    if not candidates:
        return set()
    collection = ReferenceCollector(roots, check_typing_only=True).collect(module)
    import_anchors: set[int] = set()
    for node in walk(module):
        if isinstance(node, cst.Import):
            import_anchors.update(id(leftmost(alias.name)) for alias in node.names)
    still_used: set[str] = set()
    for reference in collection.references:
        if id(reference.anchor) in import_anchors:
            continue
        still_used.update(name for name in candidates if covers(name, reference.name) or covers(reference.name, name))
    return candidates - still_used


class _ImportPruner(TargetedTransformer):
    def __init__(self, unused: set[str], root_imported_at_top: set[str], paths: set[int]) -> None:
        super().__init__(paths)
        self.unused = unused
        self.root_imported_at_top = root_imported_at_top
        self.depth = 0
        self.removed: list[str] = []

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self.depth += 1

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        self.depth -= 1
        return updated_node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        if len(updated_node.body) != 1 or not isinstance(updated_node.body[0], cst.Import):
            return updated_node
        statement: cst.Import = updated_node.body[0]
        names = [dotted_name(alias.name) for alias in statement.names]
        hits = [alias.asname is None and name in self.unused for alias, name in zip(statement.names, names, strict=True)]
        if not any(hits):
            return updated_node
        has_comments = any(line.comment is not None for line in updated_node.leading_lines) or (
            updated_node.trailing_whitespace.comment is not None
        )
        kept: list[cst.ImportAlias] = []
        bound_roots = {name.split(".")[0] for name, hit in zip(names, hits, strict=True) if not hit and name}
        for alias, name, hit in zip(statement.names, names, hits, strict=True):
            if not hit or name is None:  # a hit's name is in `unused`, so never None
                kept.append(alias)
                continue
            self.removed.append(name)
            root = name.split(".")[0]
            if root in bound_roots:
                continue
            if self.depth == 0 and root in self.root_imported_at_top and not has_comments:
                continue
            kept.append(alias.with_changes(name=cst.Name(root)))
            bound_roots.add(root)
        if not kept:
            return cst.RemoveFromParent()
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(body=[statement.with_changes(names=kept)])


def prune_imports(module: cst.Module, unused: set[str]) -> tuple[cst.Module, list[str]]:
    top_roots: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        if alias.asname is None and isinstance(alias.name, cst.Name):
                            top_roots.add(alias.name.value)
    targets = [
        node
        for node in walk(module)
        if isinstance(node, cst.Import) and any(dotted_name(alias.name) in unused for alias in node.names)
    ]
    pruner = _ImportPruner(unused, top_roots, paths_to(module, targets))
    module = module.visit(pruner)
    return module, pruner.removed


def replace_with_public(state: FixState) -> None:
    """The ESP301 fixer: private references become their public replacements, private imports that
    only they used are dropped, and the result is checked to differ only there."""
    module, current, roots = state.module, state.source, state.config.roots
    judged = judge_module(module, current, state.path, state.config)
    index = load_index()
    admit = AdmitByApplicability(state, index)
    plan = plan_replacements(judged, index, roots, admit)
    state.resolve_withheld(module)
    if plan.empty:
        return
    starts = node_starts(module, [*(item.verdict.anchor for item in plan.done), *plan.private_imports.values()])
    fixed = apply_replacements(module, plan)
    unused = unused_private_imports(fixed, plan, roots)
    removed: list[str] = []
    if unused:
        fixed, removed = prune_imports(fixed, unused)
    new = fixed.bytes
    reparsed = check_parses(new, module)
    check_replacement_ast(current, new, plan.old_chains | plan.new_chains, roots)
    for item in plan.done:
        line = starts.get(id(item.verdict.anchor), (1, 1))[0]
        kind = admit.kinds.get(id(item.verdict.anchor), "safe")
        state.applied.append(AppliedFix("ESP301", line, item.reference.name, item.description, kind))
    for dropped in dict.fromkeys(removed):
        anchor = plan.private_imports.get(dropped)
        line = starts.get(id(anchor), (1, 1))[0] if anchor is not None else 1
        state.applied.append(AppliedFix("ESP301", line, dropped, f"drop `import {dropped}`, which only the replaced names used"))
    state.module, state.source = reparsed, new
