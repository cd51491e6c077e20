"""What the torch index says about a reference: wrong "since" claims, range gaps, public replacements.

The index is loaded on first use, so files without private references never pay for it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from esper_lint.torch_index import TorchIndex, load_index
from esper_lint.torch_index.checks import check_range, check_replacement, check_since
from esper_lint.torch_index.versions import SpecifierError, minor_release, releases_in_range

if TYPE_CHECKING:  # the signature history loads on the first call or deprecation it judges
    from esper_lint.model import CallShapeTuple
    from esper_lint.torch_index.signatures import TorchSignatures

INDEXED_ROOT = "torch"


class TorchKnowledge:
    def __init__(self, torch_versions: str | None) -> None:
        self.spec = torch_versions
        self._since: dict[tuple[str, str], str | None] = {}
        self._range: dict[str, str | None] = {}
        self._replacement: dict[str, tuple[str, str] | None] = {}
        self._call: dict[tuple[str, CallShapeTuple, str | None, tuple[str, ...] | None], str | None] = {}
        self._deprecation: dict[str, str | None] = {}

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

    @cached_property
    def signatures(self) -> TorchSignatures:
        from esper_lint.torch_index.signatures import load_signatures

        return load_signatures()

    def call_problem(
        self, name: str, shape: CallShapeTuple, since: str | None, supported: tuple[str, ...] | None = None
    ) -> str | None:
        """ESP204: the releases (of the supported range, and from the documented `since` on) whose
        signature of `name` does not accept a call of this shape (see `judge.call_shape`).
        `supported`: a narrower range than the configured one (a version branch); None: the
        configured range."""
        key = (name, shape, since, supported)
        if key not in self._call:
            self._call[key] = self._judge_call(name, shape, since, supported) if self.indexed(name) else None
        return self._call[key]

    def _judge_call(self, name: str, shape: CallShapeTuple, since: str | None, supported: tuple[str, ...] | None) -> str | None:
        from esper_lint.torch_index.calls import check_call, judged_releases
        from esper_lint.torch_index.signatures import CallShape

        try:
            since_release = minor_release(since) if since is not None else None
        except SpecifierError:
            since_release = None  # ESP201 reports a version that is no torch version
        history = self.signatures
        judged = judged_releases(history.releases, supported if supported is not None else self.supported, since_release)
        return check_call(history, name, CallShape(*shape), judged, since=since_release, spec=self.spec)

    def deprecation_problem(self, name: str) -> str | None:
        """ESP205: `name` warns, or is a compatibility alias, in the newest indexed release or in
        a release of the supported range."""
        if name not in self._deprecation:
            if self.indexed(name):
                from esper_lint.torch_index.calls import check_deprecation

                self._deprecation[name] = check_deprecation(self.signatures, name, self.supported)
            else:
                self._deprecation[name] = None
        return self._deprecation[name]
