"""The index reader: `load_index()` and the `TorchIndex` it returns (see the package's docstring).

>>> idx = load_index()
>>> idx.lookup("torch._foreach_norm").releases[0]
'1.11'

Importing `esper_lint.torch_index` does not import this module: the package loads it on first use of
one of its names, so reading a project's torch range (`torch_index.versions`) costs no index code.
"""


from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any, NamedTuple

from esper_lint.data import read_rules_bytes
from esper_lint.names import is_private

__all__ = [
    "INDEX_FILE",
    "KIND_NAMES",
    "Lookup",
    "Replacement",
    "TorchIndex",
    "format_releases",
    "load_index",
]

INDEX_FILE = "torch-index.gz"

#: one-letter kinds of the data file -> readable names
KIND_NAMES = {
    "m": "module",
    "c": "class",
    "f": "function",
    "a": "attribute",
    "n": "namespace",  # torch.ops: names below it are created at run time
    "s": "operator namespace",  # torch.ops.aten: its private operators are all listed
    "p": "operator",
    "o": "operator overload",
}

#: kinds whose children are listed completely: a name below them that the index does not
#: know is absent (for the others it is merely not statically visible)
COMPLETE_KINDS = frozenset({"operator namespace", "operator"})

#: evidence bits of the data file (the builder's EV_* constants) -> readable names
EVIDENCE_NAMES = {1: "source", 2: "stub", 4: "binary", 8: "reference", 16: "schema", 32: "alias"}
#: evidence that fixes when a name appeared: Python source, the binaries' string tables, the
#: shipped schema files, an alias shim. A stub or a use by torch's own code can lag behind
#: the name (the early stubs were incomplete), so a first release resting on them alone, or
#: the first indexed release, is only a lower bound.
FIRM_EVIDENCE = 1 | 4 | 16 | 32


# Named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import time on every
# pre-commit run.
class Lookup(NamedTuple):
    name: str  #: the queried name
    matched: str  #: the longest prefix of ``name`` the index knows (``name`` when exact)
    exact: bool
    releases: tuple[str, ...]  #: the releases having ``matched``
    is_module: bool  #: whether ``matched`` is a module (in the newest release having it)
    kind: str = "attribute"  #: kind of ``matched`` in the newest release having it (see KIND_NAMES)
    #: True when ``matched`` may have existed before ``releases[0]``: that release is the first
    #: indexed one, or the evidence for it there is only a stub or a use by torch's own code
    lower_bound: bool = False
    #: ``(release, kind)`` for each release having ``matched`` (a name can change kind)
    kinds: tuple[tuple[str, str], ...] = ()
    #: ``(release, evidence names)`` for each release having ``matched`` (see EVIDENCE_NAMES)
    evidence: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: releases whose CPU-only builds lack ``matched`` (a CUDA/XPU/MPS-only C-extension name)
    cpu_absent_in: tuple[str, ...] = ()

    @property
    def provably_absent(self) -> bool:
        """A non-exact match below a completely listed namespace (an unknown aten op or
        overload): the name is absent from every release, not merely invisible."""
        return not self.exact and self.kind in COMPLETE_KINDS

    @property
    def cpu_absent(self) -> bool:
        """Whether a CPU-only build of the newest release having ``matched`` lacks it (it is
        only in CUDA, ROCm, XPU or MPS builds)."""
        return bool(self.releases) and self.releases[-1] in self.cpu_absent_in

    @property
    def gaps_proven(self) -> bool:
        """Whether every release having ``matched`` rests on firm evidence, so that a release
        missing between them is really missing (a stub that skipped a release proves nothing)."""
        firm = {label for bit, label in EVIDENCE_NAMES.items() if bit & FIRM_EVIDENCE}
        return all(firm.intersection(labels) for _, labels in self.evidence)

    def cpu_absent_at(self, release: str) -> bool:
        """Whether a CPU-only build of ``release`` lacks ``matched`` while other builds have it."""
        return release in self.cpu_absent_in

    def kind_in(self, release: str) -> str | None:
        """The kind of ``matched`` in ``release`` (None when absent there)."""
        return dict(self.kinds).get(release)

    @property
    def present_in(self) -> tuple[str, ...]:
        """Releases in which the name is (or, for a non-exact match below a module, class
        or other object, may be) present: ``releases``, or none if provably absent."""
        return () if self.provably_absent else self.releases


class Replacement(NamedTuple):
    private: str  #: the private name asked about
    replacement: str  #: its public equivalent
    public_since: str  #: the first minor release in which ``replacement`` is public
    source: str  #: release notes / PR URL (curated) or the re-exporting file (derived)
    derived: bool  #: found by the builder from a public re-export, not curated
    releases: tuple[str, ...] = ()  #: the indexed releases in which the replacement holds
    #: "drop-in": the same object (or a public wrapper proven equivalent, see ``evidence``),
    #: public in ``releases``: the only kind a fix may apply. "suggestion": a public API for
    #: the same purpose with other semantics: shown, never applied.
    applicability: str = "suggestion"
    #: why a drop-in is one: "same object" (checked in the wheels) or the curated equivalence
    evidence: str = ""


def format_releases(releases: Iterable[str], all_releases: tuple[str, ...]) -> str:
    """``("1.11", "1.12", "1.13", "2.1")`` -> ``"1.11–1.13, 2.1"`` (runs in index order)."""
    pos = {r: i for i, r in enumerate(all_releases)}
    idx = sorted(pos[r] for r in releases if r in pos)
    runs: list[list[int]] = []
    for i in idx:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(
        all_releases[a] if a == b else f"{all_releases[a]}\u2013{all_releases[b]}" for a, b in runs
    )


def _decode_ranges(text: str) -> tuple[int, ...]:
    out: list[int] = []
    if text:
        for part in text.split(","):
            a, _, b = part.partition("-")
            out.extend(range(int(a), int(b or a) + 1))
    return tuple(out)


class _Facts(NamedTuple):
    kinds: tuple[tuple[int, str], ...]  #: (release index, kind), for each release having the name
    evidence: dict[int, int]  #: release index -> evidence mask
    cpu_absent: tuple[int, ...]  #: release indices whose CPU builds lack the name


def _bucket_key(parts: list[str]) -> str:
    # must agree with builder.bucket_key: the parent name, cut to 4 components
    return ".".join(parts[: min(len(parts) - 1, 4)])


class TorchIndex:
    """Query the torch private-API index."""

    def __init__(self, header: dict[str, Any], blobs: bytes = b"") -> None:
        if header.get("format") != 3:
            raise ValueError(f"unsupported torch index format {header.get('format')!r}")
        self.releases: tuple[str, ...] = tuple(header["releases"])
        self.wheels: dict[str, str] = dict(header.get("wheels", {}))
        self._blobs = blobs
        self._ranges_raw: list[str] = header["ranges"]
        self._ranges: dict[int, tuple[str, ...]] = {}
        self._bucket_keys: str = header["bucket_keys"]
        self._bucket_sizes: list[int] = header["bucket_sizes"]
        self._bucket_locs_cache: dict[str, tuple[int, int]] | None = None
        self._buckets: dict[str, dict[str, str]] = {}  # name -> its undecoded facts
        self._replacements_loc: list[int] | None = header.get("replacements")
        self._replacements: dict[str, dict[str, Any]] | None = None

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> TorchIndex:
        """Parse the index file's bytes (a header gzip member followed by data members)."""
        d = zlib.decompressobj(31)
        header = json.loads(d.decompress(data))
        return cls(header, d.unused_data)

    # -- internals ----------------------------------------------------------------------

    @property
    def _bucket_locs(self) -> dict[str, tuple[int, int]]:
        locs = self._bucket_locs_cache
        if locs is None:
            locs = {}
            offset = 0
            for key, size in zip(self._bucket_keys.split("\n"), self._bucket_sizes, strict=False):
                locs[key] = (offset, size)
                offset += size
            self._bucket_locs_cache = locs
        return locs

    def _bucket(self, key: str) -> dict[str, str]:
        """The names of one bucket, each with its facts still encoded (decoded on lookup)."""
        b = self._buckets.get(key)
        if b is None:
            b = {}
            loc = self._bucket_locs.get(key)
            if loc is not None:
                raw = zlib.decompress(self._blobs[loc[0] : loc[0] + loc[1]], 31).decode("utf-8")
                prev = ""
                for line in raw.split("\n"):
                    shared, rest, tail = line.split("|", 2)
                    rel = prev[: int(shared)] + rest if shared else rest
                    prev = rel
                    b[f"{key}.{rel}" if key else rel] = tail
            self._buckets[key] = b
        return b

    def _entry(self, name: str) -> _Facts | None:
        tail = self._bucket(_bucket_key(name.split("."))).get(name)
        return None if tail is None else self._facts(tail)

    def _facts(self, tail: str) -> _Facts:
        """Decode ``<kinds>[|<evidence>[|<cpu>]]`` (see the builder's ``encode_bucket``)."""
        fields = tail.split("|")
        kinds: list[tuple[int, str]] = []
        for part in fields[0].split(","):
            kind = KIND_NAMES.get(part[0], "attribute")
            kinds.extend((i, kind) for i in _decode_ranges(self._ranges_raw[int(part[1:])]))
        kinds.sort()
        evidence: dict[int, int] = {i: 1 for i, _ in kinds}
        if len(fields) > 1 and fields[1]:
            for part in fields[1].split(","):
                mask, _, range_id = part.partition(".")
                for i in _decode_ranges(self._ranges_raw[int(range_id)]):
                    evidence[i] = int(mask)
        cpu = _decode_ranges(self._ranges_raw[int(fields[2])]) if len(fields) > 2 and fields[2] else ()
        return _Facts(tuple(kinds), evidence, cpu)

    def _release_tuple(self, range_id: int) -> tuple[str, ...]:
        r = self._ranges.get(range_id)
        if r is None:
            r = tuple(self.releases[i] for i in _decode_ranges(self._ranges_raw[range_id]))
            self._ranges[range_id] = r
        return r

    # -- queries ------------------------------------------------------------------------

    def iter_names(self) -> Iterator[tuple[str, str, tuple[str, ...]]]:
        """Yield ``(name, kind, releases)`` for every indexed name (decodes everything); the
        kind is the one of the newest release having the name."""
        for key in self._bucket_locs:
            for name, tail in self._bucket(key).items():
                facts = self._facts(tail)
                yield name, facts.kinds[-1][1], tuple(self.releases[i] for i, _ in facts.kinds)

    def __contains__(self, name: str) -> bool:
        return self._entry(name) is not None

    def lookup(self, name: str) -> Lookup | None:
        """The index's knowledge of ``name`` (see :class:`Lookup`); None when not even
        ``torch.<first component>`` is known."""
        parts = name.split(".")
        for n in range(len(parts), 1, -1):
            prefix = ".".join(parts[:n])
            facts = self._entry(prefix)
            if facts is not None:
                rel = self.releases
                kind = facts.kinds[-1][1]
                first = facts.kinds[0][0]
                return Lookup(
                    name=name,
                    matched=prefix,
                    exact=n == len(parts),
                    releases=tuple(rel[i] for i, _ in facts.kinds),
                    is_module=kind == "module",
                    kind=kind,
                    lower_bound=first == 0 or not facts.evidence.get(first, 0) & FIRM_EVIDENCE,
                    kinds=tuple((rel[i], k) for i, k in facts.kinds),
                    evidence=tuple(
                        (rel[i], tuple(label for bit, label in EVIDENCE_NAMES.items() if facts.evidence.get(i, 0) & bit))
                        for i, _ in facts.kinds
                    ),
                    cpu_absent_in=tuple(rel[i] for i in facts.cpu_absent),
                )
        return None

    def first_release(self, name: str) -> str | None:
        """The first indexed release having ``name`` exactly (None when unknown/inexact)."""
        lk = self.lookup(name)
        return lk.releases[0] if lk and lk.exact and lk.releases else None

    def last_release(self, name: str) -> str | None:
        """The last indexed release having ``name`` exactly (None when unknown/inexact)."""
        lk = self.lookup(name)
        return lk.releases[-1] if lk and lk.exact and lk.releases else None

    def _replacement_map(self) -> dict[str, dict[str, Any]]:
        if self._replacements is None:
            m: dict[str, dict[str, Any]] = {}
            raw: list[dict[str, Any]] = []
            if self._replacements_loc is not None:
                a, n = self._replacements_loc
                raw = json.loads(zlib.decompress(self._blobs[a : a + n], 31))
            for r in raw:
                # curated entries are listed before derived ones for the same name
                m.setdefault(r["private"], r)
            self._replacements = m
        return self._replacements

    def replacements(self) -> list[Replacement]:
        """Every stored replacement (curated and derived)."""
        return [self._make_replacement(r["private"], r, "") for r in self._replacement_map().values()]

    def _make_replacement(self, name: str, r: dict[str, Any], suffix: str) -> Replacement:
        return Replacement(
            private=name,
            replacement=r["replacement"] + suffix,
            public_since=r["public_since"],
            source=r["source"],
            derived=bool(r["derived"]),
            releases=tuple(self.releases[i] for i in _decode_ranges(r["ranges"])),
            applicability=str(r.get("applicability", "suggestion")),
            evidence=str(r.get("evidence", "")),
        )

    def replacement(self, name: str) -> Replacement | None:
        """The public equivalent of ``name``, if one is known.

        A name below a replaced module or class is mapped through the prefix
        (``torch.distributed._tensor.DTensor`` -> ``torch.distributed.tensor.DTensor``),
        unless the mapped name is still private, or the name is in the index but the
        builder found no public counterpart for it.
        """
        m = self._replacement_map()
        r = m.get(name)
        if r is not None:
            return self._make_replacement(name, r, "")
        parts = name.split(".")
        for n in range(len(parts) - 1, 1, -1):
            prefix = ".".join(parts[:n])
            r = m.get(prefix)
            if r is None:
                continue
            suffix = name[len(prefix) :]
            mapped = r["replacement"] + suffix
            if is_private(mapped):
                return None
            target = self.lookup(r["replacement"])
            if r["derived"] and not (target is not None and target.exact and target.kind in ("module", "class")):
                # Only a module or class has members to map through: `torch.cond` is the
                # function torch re-exports from `torch._higher_order_ops.cond`, not that module.
                return None
            if not r["derived"] and name in self:
                # curated module entries were expanded name by name where the public
                # name exists; an indexed name without its own entry has none
                return None
            found = self._make_replacement(name, r, suffix)
            if found.applicability == "drop-in":
                # mapped through a prefix, the name is not one the builder checked in the wheels:
                # the same object under the public path is likely but not proven
                found = found._replace(applicability="suggestion", evidence="")
            return found
        return None


@cache
def load_index() -> TorchIndex:
    """The packaged index (cached)."""
    return TorchIndex.from_bytes(read_rules_bytes(INDEX_FILE))
