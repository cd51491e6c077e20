"""Edit a few nodes of a large libcst tree without rebuilding all of it.

libcst's transformers rebuild every node they pass, which costs several times the parse on large
files. The fixes touch a handful of nodes, so they walk the dataclass fields once (cheap) to find
the ancestors of those nodes and let the transformer descend only along those paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import libcst as cst

from esper_lint.analysis.resolver import children


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under `node` (itself included), parents before children, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def paths_to(root: cst.CSTNode, targets: Iterable[cst.CSTNode]) -> set[int]:
    """ids of the targets and of every node on the way from `root` to them."""
    wanted = {id(node) for node in targets}
    if not wanted:
        return set()
    parents: dict[int, cst.CSTNode] = {}
    found: list[cst.CSTNode] = []
    stack = [root]
    remaining = len(wanted)
    while stack and remaining:
        current = stack.pop()
        if id(current) in wanted:
            found.append(current)
            remaining -= 1
        for child in children(current):
            parents[id(child)] = current
            stack.append(child)
    result: set[int] = set()
    for node in found:
        key = id(node)
        while key not in result:
            result.add(key)
            parent = parents.get(key)
            if parent is None:
                break
            key = id(parent)
    return result


class TargetedTransformer(cst.CSTTransformer):
    """A transformer that only descends into nodes whose id is in `self.paths`."""

    def __init__(self, paths: set[int]) -> None:
        super().__init__()
        self.paths = paths

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) not in self.paths:
            return False
        return super().on_visit(node)
