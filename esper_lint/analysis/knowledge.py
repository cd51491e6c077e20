"""What the torch index says about a reference: wrong "since" claims, range gaps, public replacements.

The index is loaded on first use, so files without private references never pay for it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from esper_lint.torch_index import Replacement, TorchIndex, format_releases, load_index
from esper_lint.torch_index.checks import check_range, check_replacement, check_since
from esper_lint.torch_index.versions import SpecifierError, minor_release, releases_in_range

if TYPE_CHECKING:  # the signature history loads on the first call or deprecation it judges
    from esper_lint.analysis.guards import Branch  # libcst: `inventory` and `explain` may never parse
    from esper_lint.model import CallShapeTuple
    from esper_lint.torch_index.signatures import TorchSignatures

INDEXED_ROOT = "torch"


class TorchKnowledge:
    def __init__(self, torch_versions: str | None) -> None:
        self.spec = torch_versions
        self._since: dict[tuple[str, str], str | None] = {}
        self._range: dict[tuple[str, tuple[str, ...] | None], str | None] = {}
        self._replacement: dict[tuple[str, tuple[str, ...] | None], tuple[str, str] | None] = {}
        self._branches: dict[Branch, tuple[str, ...] | None] = {}
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

    def branch_releases(self, branch: Branch) -> tuple[str, ...] | None:
        """The releases code under a version branch may run on: the supported range (every indexed
        release when none is configured) cut to those where some patch takes every test of the
        branch. None when that narrows nothing (no version test, or only tests every release may take
        either way)."""
        if not branch:
            return None
        if branch not in self._branches:
            from esper_lint.analysis.version_branches import releases_taking

            base = self.supported if self.supported is not None else self.index.releases
            narrowed = releases_taking(branch, base)
            self._branches[branch] = None if narrowed == base else narrowed
        return self._branches[branch]

    def range_problem(self, name: str, releases: tuple[str, ...] | None = None) -> str | None:
        """ESP202's message: the releases of the supported range, or of `releases` (a version
        branch's, from `branch_releases`), that lack `name`. Only judged under a configured range."""
        key = (name, releases)
        if key not in self._range:
            supported = self.supported
            if not supported or not self.indexed(name):
                self._range[key] = None
            elif releases is None:
                self._range[key] = check_range(self.index, name, supported, self.spec)
            else:
                narrowed = f"{self.spec}, narrowed by a version test to {format_releases(releases, self.index.releases)}"
                self._range[key] = check_range(self.index, name, releases, narrowed) if releases else None
        return self._range[key]

    def replacement(
        self, name: str, releases: tuple[str, ...] | None = None, *, branch: Branch = ()
    ) -> tuple[str, str] | None:
        """ESP301's `(replacement, message)` when the public replacement exists in every release of
        the supported range, or of `releases` (a version branch's, from `branch_releases(branch)`):
        never inside a branch whose releases lack it, nor in a branch no indexed release runs, nor
        under a version test whose releases are unknown (`branch`: the reference's tests)."""
        from esper_lint.analysis.version_branches import claimed_releases, is_opaque

        if branch and is_opaque(branch):
            # A flag of another module: only where its name states a bound (`WITH_PT23`), judged on
            # the releases the name claims.
            base = self.supported if self.supported is not None else self.index.releases
            releases = claimed_releases(branch, base)
            if releases is None:
                return None
        key = (name, releases)
        if key not in self._replacement:
            if not self.indexed(name) or releases == ():
                self._replacement[key] = None
            else:
                self._replacement[key] = check_replacement(
                    self.index, name, releases if releases is not None else self.supported
                )
        return self._replacement[key]

    def replacement_info(
        self, name: str, releases: tuple[str, ...] | None = None, *, branch: Branch = ()
    ) -> Replacement | None:
        """The replacement `replacement()` reports, with its facts: `applicability` ("drop-in",
        the only kind a fix may apply, or "suggestion"), `public_since`, `source`, `evidence`."""
        if self.replacement(name, releases, branch=branch) is None:
            return None
        return self.index.replacement(name)

    @cached_property
    def signatures(self) -> TorchSignatures:
        from esper_lint.torch_index.signatures import load_signatures

        return load_signatures()

    def call_problem(
        self, name: str, shape: CallShapeTuple, since: str | None, supported: tuple[str, ...] | None = None
    ) -> str | None:
        """ESP204: the releases (of the supported range, and from the documented `since` on) whose
        signature of `name` does not accept a call of this shape (see `judge.call_shape`).
        `supported`: a version branch's releases (`branch_releases`): the call runs only there, so
        it is judged only there, whatever the range or the "since" would add; None: not narrowed."""
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
        judged = judged_releases(history.releases, self.supported, since_release)
        if supported is not None:
            judged = tuple(release for release in judged if release in supported)
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
