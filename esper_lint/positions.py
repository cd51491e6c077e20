"""Line and column of a few nodes, without libcst's PositionProvider.

PositionProvider records a range for every node and costs about twice the parse. Findings need
the start of a handful of nodes, so this runs libcst's plain code generation once, notes the token
index where each wanted node starts, and turns those indices into line and column at the end.
Generation stops as soon as the last wanted node has started: later code cannot move it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import libcst as cst
from libcst._nodes.internal import CodegenState

_NEWLINE = re.compile(r"\r\n?|\n")


class _AllFound(Exception):
    pass


@dataclass(frozen=False)
class _MarkingCodegenState(CodegenState):
    wanted: set[int] = field(default_factory=set)
    starts: dict[int, int] = field(default_factory=dict)

    def before_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.wanted and key not in self.starts:
            self.starts[key] = len(self.tokens)
            if len(self.starts) == len(self.wanted):
                raise _AllFound


def node_starts(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, tuple[int, int]]:
    """Map id(node) to its (1-based line, 1-based column) start, columns counted in characters."""
    wanted = {id(node) for node in nodes}
    if not wanted:
        return {}
    state = _MarkingCodegenState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        wanted=wanted,
    )
    try:
        module._codegen(state)
    except _AllFound:
        pass
    offsets: dict[int, int] = {}
    by_token = sorted((index, key) for key, index in state.starts.items())
    offset = 0
    token_index = 0
    tokens = state.tokens
    for index, key in by_token:
        while token_index < index:
            offset += len(tokens[token_index])
            token_index += 1
        offsets[key] = offset
    text = "".join(tokens)
    line_starts = [0] + [match.end() for match in _NEWLINE.finditer(text)]
    result: dict[int, tuple[int, int]] = {}
    for key, char_offset in offsets.items():
        line = bisect.bisect_right(line_starts, char_offset) - 1
        result[key] = (line + 1, char_offset - line_starts[line] + 1)
    return result
