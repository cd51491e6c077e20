"""Byte patterns that the pre-check and the reduction both scan source for."""

from __future__ import annotations

import re

# The documentation marker (SPEC §2), as `contract.MARKER` reads it in comment text.
MARKER_BYTES = re.compile(rb"private[ \t]+api", re.I)

# A private component written after a dot: dots and names possibly separated by whitespace, line
# continuations or comments inside brackets. Each alternative consumes a distinct kind of byte and
# a comment runs to its line's end, so the loop cannot split one input several ways (no
# exponential backtracking on `# ## ###` lines). Dunders (`super().__init__`) are public and
# everywhere, so they do not count; `__x` does.
PRIVATE_AFTER_DOT_SOURCE = rb"\.(?:[ \t\f\r\n]|\\(?=[\r\n])|#[^\r\n]*(?=[\r\n]))*_(?!_[A-Za-z0-9_]*__(?![A-Za-z0-9_]))"
PRIVATE_AFTER_DOT = re.compile(PRIVATE_AFTER_DOT_SOURCE)
