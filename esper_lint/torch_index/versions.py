"""Torch version strings and PEP 440-style specifiers, without the ``packaging`` library.

* :func:`parse_version` turns ``"1.11"``, ``"2.4.1"``, ``"2.13.0+cpu"``, ``"2.5.0rc1"`` or
  ``"2.6.0.dev20241001"`` into a tuple of ints (the release segment only).
* :func:`minor_release` gives the ``"X.Y"`` minor release of a version.
* :func:`releases_in_range` selects the indexed minor releases a specifier admits.

The range rule: a minor release ``X.Y`` is in range when *any* of its patch versions
``X.Y.0`` ... ``X.Y.99`` satisfies every clause of the specifier. So ``">=2.4.1"`` admits
2.4 (2.4.1 qualifies), ``">2.4"`` admits 2.4 (2.4.1 > 2.4), ``"<2.4"`` does not admit 2.4
(2.4.0 == 2.4), ``"!=2.4.*"`` excludes 2.4, ``"~=2.4"`` means ``>=2.4,==2.*`` and
``"~=2.4.1"`` means ``>=2.4.1,==2.4.*``. Pre-, post- and dev-release markers and local
versions (``+cpu``) are ignored: only the release numbers are compared, zero-padded as in
PEP 440 (``2.4 == 2.4.0``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "SpecifierError",
    "minor_release",
    "parse_specifier",
    "parse_version",
    "quote_short",
    "releases_in_range",
    "supported_range_from_pyproject",
    "version_matches",
]


class SpecifierError(ValueError):
    """A version or specifier that cannot be parsed."""


# PEP 440's layout: each of the pre-, post- and dev-release parts at most once, in that order.
# Every repetition is unambiguous, so matching takes linear time whatever the text (a repeated
# group of alternatives that overlap, such as `(?:r|c|rc)*`, made `1rcrc...rc!` exponential).
_VERSION_RE = re.compile(
    r"\s*v?(\d+(?:\.\d+)*)"  # release segment
    r"(?:[-_.]?(?:alpha|beta|preview|pre|rc|a|b|c)(?:[-_.]?\d+)?)?"  # pre-release
    r"(?:-\d+|[-_.]?(?:post|rev|r)(?:[-_.]?\d+)?)?"  # post-release
    r"(?:[-_.]?dev(?:[-_.]?\d+)?)?"  # development release
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*",  # local version (the text is lowercased first)
)
# No release has a number this long; Python refuses to convert one of 4,300 digits or more.
_MAX_DIGITS = 32


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; raises :class:`SpecifierError` (and nothing else) when
    invalid."""
    m = _VERSION_RE.fullmatch(text.lower())  # lowercased: a case-blind pattern costs 1 ms more to compile
    if not m:
        raise SpecifierError(f"not a version: {quote_short(text)}")
    parts = m.group(1).split(".")
    if any(len(part) > _MAX_DIGITS for part in parts):
        raise SpecifierError(f"not a version: {quote_short(text)} (a number longer than {_MAX_DIGITS} digits)")
    return tuple(int(p) for p in parts)


def quote_short(text: str, limit: int = 60) -> str:
    """`text` for a message: quoted, and cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def minor_release(text: str) -> str:
    """``"2.4.1"`` -> ``"2.4"``; ``"2"`` -> ``"2.0"``."""
    v = parse_version(text)
    return f"{v[0]}.{v[1] if len(v) > 1 else 0}"


def _pad(v: tuple[int, ...], n: int) -> tuple[int, ...]:
    return v + (0,) * (n - len(v))


_CLAUSE_RE = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,;]+)\s*$")


def parse_specifier(spec: str) -> list[tuple[str, str]]:
    """Split ``">=2.1, <2.16"`` into ``[(">=", "2.1"), ("<", "2.16")]`` (validated)."""
    clauses: list[tuple[str, str]] = []
    text = spec.strip()
    if not text:
        return clauses
    for part in text.split(","):
        m = _CLAUSE_RE.match(part)
        if not m:
            raise SpecifierError(f"invalid version specifier clause {part.strip()!r} in {spec!r}")
        op, ver = m.groups()
        star = ver.endswith(".*")
        if star and op not in ("==", "!="):
            raise SpecifierError(f"'.*' is only allowed with == and != in {spec!r}")
        parse_version(ver[:-2] if star else ver)
        if op == "~=" and len(parse_version(ver)) < 2:
            raise SpecifierError(f"~= needs at least two version components in {spec!r}")
        clauses.append((op, ver))
    return clauses


# A clause read once: (operator, its version's numbers, whether the version ends in ".*").
_Clause = tuple[str, tuple[int, ...], bool]


def _read_clauses(spec: str) -> list[_Clause]:
    """The clauses of ``spec`` with their versions parsed: matching many versions against one
    specifier (`releases_in_range` tries up to 100 patches of each release) parses each once."""
    read: list[_Clause] = []
    for op, ver in parse_specifier(spec):
        star = ver.endswith(".*")
        read.append((op, parse_version(ver[:-2] if star else ver), star))
    return read


def _clause_matches(clause: _Clause, v: tuple[int, ...]) -> bool:
    op, target, star = clause
    if star:
        hit = _pad(v, len(target))[: len(target)] == target
        return hit if op == "==" else not hit
    n = max(len(v), len(target))
    a, b = _pad(v, n), _pad(target, n)
    if op in ("==", "==="):
        return a == b
    if op == "!=":
        return a != b
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == "~=":
        prefix = target[:-1]
        return a >= b and _pad(v, len(prefix))[: len(prefix)] == prefix
    raise SpecifierError(f"unknown operator {op!r}")  # pragma: no cover


_RELEASES_KEY = re.compile(rb'"releases":\[([^\]]*)\]')
_RELEASE_ITEM = re.compile(rb'"(\d+\.\d+)"')


@lru_cache(maxsize=1)
def indexed_releases() -> tuple[str, ...]:
    """The minor releases the bundled index covers, read from its header alone: the range check of
    a configuration needs them on every run, and loading the whole index costs ten times more. The
    header is decompressed only as far as its `releases` list (the file is 1.2 MB, the list sits
    in its first tenth), and the list of plain "X.Y" strings is read without the json module."""
    import zlib

    from esper_lint.data import open_rules_file

    decoder = zlib.decompressobj(31)  # the header is the first gzip member
    header = b""
    with open_rules_file("torch-index.gz") as handle:
        while not decoder.eof:
            chunk = handle.read(1 << 16)
            if not chunk:
                break
            header += decoder.decompress(chunk)
            match = _RELEASES_KEY.search(header)
            if match is not None:
                items = match.group(1).split(b",")
                releases = [_RELEASE_ITEM.fullmatch(item) for item in items]
                if not all(releases):  # pragma: no cover - the index's format test guards the header
                    raise ValueError(f"the torch index header lists a release that is not X.Y: {match.group(1)[:200]!r}")
                return tuple(release.group(1).decode("ascii") for release in releases if release is not None)
    raise ValueError("the torch index header lists no releases")  # pragma: no cover - guarded as above


def version_matches(spec: str, version: str) -> bool:
    """Whether one version satisfies every clause of the specifier."""
    v = parse_version(version)
    return all(_clause_matches(clause, v) for clause in _read_clauses(spec))


def releases_in_range(spec: str, releases: Iterable[str]) -> tuple[str, ...]:
    """The minor releases ``X.Y`` of which some patch ``X.Y.0``..``X.Y.99`` satisfies ``spec``.

    >>> releases_in_range(">=2.1,<2.4", ["2.0", "2.1", "2.2", "2.3", "2.4"])
    ('2.1', '2.2', '2.3')
    """
    clauses = _read_clauses(spec)
    patches = _deciding_patches(clauses)
    out = []
    for rel in releases:
        base = _pad(parse_version(rel)[:2], 2)
        if any(all(_clause_matches(clause, (*base, patch)) for clause in clauses) for patch in patches):
            out.append(rel)
    return tuple(out)


def _deciding_patches(clauses: list[_Clause]) -> list[int]:
    """The patches of 0..99 worth trying: the ends, and each clause's own patch number with its
    neighbours. Over the patches of one minor release each clause holds on an interval, or on all
    but one patch (`!=`), so if any patch satisfies every clause, the lowest one does, and that is
    an end, a clause's patch or the patch after one (tests/test_torch_index.py checks all 100)."""
    patches = {0, 99}
    for _op, target, _star in clauses:
        if len(target) > 2:
            patches.update(p for p in (target[2] - 1, target[2], target[2] + 1) if 0 <= p <= 99)
    return sorted(patches)


_REQ_RE = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?(.*)", re.S)


def _normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_specifier(req: str, package: str = "torch") -> str | None:
    """The specifier of a requirement string for ``package``; ``""`` when it has none,
    ``None`` when the requirement is for another package (or a direct URL)."""
    m = _REQ_RE.fullmatch(req.split(";", 1)[0])  # the environment marker, after `;`, is not read
    if not m or _normalize_name(m.group(1)) != _normalize_name(package):
        return None
    rest = m.group(3).strip()
    if rest.startswith("@"):
        return ""
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    return re.sub(r"\s+", "", rest)


def supported_range_from_pyproject(pyproject: Mapping[str, Any], package: str = "torch") -> str | None:
    """The torch specifier the project itself declares, e.g. ``">=2.1,<2.16"``.

    Looks at ``[project] dependencies`` first, then the ``optional-dependencies`` groups in
    file order; the first requirement for torch that carries a specifier wins. A bare
    ``torch`` (or a direct URL reference) gives ``None``.
    """
    project = pyproject.get("project") or {}
    groups: list[Iterable[str]] = [project.get("dependencies") or []]
    optional = project.get("optional-dependencies") or {}
    groups.extend(optional.values())
    for group in groups:
        for req in group:
            if not isinstance(req, str):
                continue
            spec = requirement_specifier(req, package)
            if spec:
                try:
                    parse_specifier(spec)
                except SpecifierError:
                    continue
                return spec
    return None
