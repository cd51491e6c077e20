"""What the torch index says about a reference: wrong "since" claims, range gaps, public replacements.

The index is loaded on first use, so files without private references never pay for it.
"""

from __future__ import annotations

from functools import cached_property

from esper_lint.torch_index import Replacement, TorchIndex, load_index
from esper_lint.torch_index.checks import check_range, check_replacement, check_since
from esper_lint.torch_index.versions import releases_in_range

INDEXED_ROOT = "torch"


class TorchKnowledge:
    def __init__(self, torch_versions: str | None) -> None:
        self.spec = torch_versions
        self._since: dict[tuple[str, str], str | None] = {}
        self._range: dict[str, str | None] = {}
        self._replacement: dict[str, tuple[str, str] | None] = {}

    @cached_property
    def index(self) -> TorchIndex:
        return load_index()

    @cached_property
    def supported(self) -> tuple[str, ...] | None:
        """The indexed minor releases inside the configured range; None when no range is known."""
        if not self.spec:
            return None
        return releases_in_range(self.spec, self.index.releases)

    @staticmethod
    def indexed(name: str) -> bool:
        return name.startswith(INDEXED_ROOT + ".")

    def since_problem(self, name: str, since: str) -> str | None:
        key = (name, since)
        if key not in self._since:
            self._since[key] = check_since(self.index, name, since) if self.indexed(name) else None
        return self._since[key]

    def range_problem(self, name: str) -> str | None:
        if name not in self._range:
            supported = self.supported
            self._range[name] = (
                check_range(self.index, name, supported, self.spec) if supported and self.indexed(name) else None
            )
        return self._range[name]

    def replacement(self, name: str) -> tuple[str, str] | None:
        if name not in self._replacement:
            self._replacement[name] = (
                check_replacement(self.index, name, self.supported) if self.indexed(name) else None
            )
        return self._replacement[name]

    def replacement_info(self, name: str) -> Replacement | None:
        """The replacement `replacement()` reports, with its facts: `applicability` ("drop-in",
        the only kind a fix may apply, or "suggestion"), `public_since`, `source`, `evidence`."""
        if self.replacement(name) is None:
            return None
        return self.index.replacement(name)
