"""Index-backed checks the engine runs on a private torch name (ESP201, ESP202, ESP301).

Each function is pure: it takes the index, the private name and the documented or
configured facts, and returns a message (or None when there is nothing to report).

How a lookup that is not exact counts (``Lookup.present_in``): a name below a known module,
class, function or attribute that the index does not list is *not statically visible*
(module ``__getattr__``, attributes set at run time, names inherited from a base class,
C-extension names missing from the stubs), so it is counted as present wherever its nearest
known prefix is present; the checks never claim more than that prefix proves. Below the
completely listed operator namespaces (``torch.ops.aten`` and each private operator's
overloads) an unlisted name is absent from every release.

How far the evidence goes (``Lookup.lower_bound``, ``Lookup.gaps_proven``): a first release
that is the first indexed one, or that rests only on a stub or on a use by torch's own code,
is a lower bound; the name may be older, so a "since" before it, or a supported release
before it, is not reported. A release missing between two that rest on such evidence is not
reported either. The checks stay silent rather than claim more than the wheels show.
"""

from __future__ import annotations

from . import TorchIndex, format_releases
from .versions import SpecifierError, minor_release, parse_version, quote_short

__all__ = ["check_range", "check_replacement", "check_since", "known_torch_release"]


def known_torch_release(index: TorchIndex, release: str) -> bool:
    """Whether ``X.Y`` names a torch minor release: 0.1-0.4, 1.0-1.13, or 2.0 up to the
    newest indexed release."""
    try:
        v = parse_version(release)[:2]
    except SpecifierError:
        return False
    if len(v) < 2:
        v = (v[0], 0)
    if v[0] == 0:
        return 1 <= v[1] <= 4
    if v[0] == 1:
        return 0 <= v[1] <= 13
    newest = parse_version(index.releases[-1])[:2] if index.releases else (2, 0)
    return v[0] >= 2 and (2, 0) <= v <= newest


def check_since(index: TorchIndex, name: str, since: str) -> str | None:
    """ESP201: is the documented "since PyTorch X.Y" contradicted by the index?

    Reports when ``since`` names no torch release, when it is earlier than the first
    release having the name (only provable when that first release is not the first
    indexed one: the index starts at 1.6), and when the name is absent from the ``since``
    release itself. For a non-exact lookup the nearest known prefix is used (a name cannot
    predate its module). None when fine or when the index does not know the name.
    """
    try:
        rel = minor_release(since)
    except SpecifierError:
        return f"the comment's version {quote_short(since)} is not a torch version"
    if not known_torch_release(index, rel):
        newest = index.releases[-1] if index.releases else "?"
        return (
            f"the comment says `{name}` is stable since PyTorch {since}, "
            f"which is not a torch release (newest indexed: {newest})"
        )
    lk = index.lookup(name)
    if lk is None:
        return None
    present = lk.present_in
    what = f"`{name}`" if lk.exact else f"`{lk.matched}` (and so `{name}`)"
    if not present:
        return f"`{name}` is in no indexed torch release; the comment says {since}"
    first = present[0]
    pos = {r: i for i, r in enumerate(index.releases)}
    if parse_version(rel) < parse_version(first):
        if lk.lower_bound:
            return None  # the name may well predate its first indexed release
        return f"{what} first shipped in {first}; the comment says {since}"
    if rel in pos and rel not in present and (lk.gaps_proven or parse_version(rel) > parse_version(present[-1])):
        return (
            f"{what} is not in torch {rel} (present in "
            f"{format_releases(present, index.releases)}); the comment says {since}"
        )
    return None


def check_range(
    index: TorchIndex, name: str, supported: tuple[str, ...], spec: str | None = None
) -> str | None:
    """ESP202: the releases of the supported range that lack the name.

    ``supported`` is the tuple of indexed releases in the range
    (``versions.releases_in_range(spec, index.releases)``); ``spec`` (optional) is only
    used in the message. A non-exact lookup below a module/class counts as present where
    that prefix is present. None when nothing is missing, the range is empty or the index
    does not know the name.
    """
    if not supported:
        return None
    lk = index.lookup(name)
    if lk is None:
        return None
    present = set(lk.present_in)
    ordered = lk.present_in
    missing = [r for r in supported if r not in present]
    if ordered and not lk.provably_absent:
        first, last = parse_version(ordered[0]), parse_version(ordered[-1])
        if lk.lower_bound:
            missing = [r for r in missing if parse_version(r) > first]  # it may be older than its first release
        if not lk.gaps_proven:
            missing = [r for r in missing if not first < parse_version(r) < last]
    if not missing:
        return None
    rng = f"supported range {spec}" if spec else f"supported releases {format_releases(supported, index.releases)}"
    subject = f"`{name}`" if lk.exact or lk.provably_absent else f"`{lk.matched}` (needed by `{name}`)"
    return f"{subject} is missing from torch {', '.join(missing)} ({rng})"


def check_replacement(
    index: TorchIndex, name: str, supported: tuple[str, ...] | None
) -> tuple[str, str] | None:
    """ESP301: ``(replacement, message)`` when a public replacement exists in every release
    of the supported range. With no range known (``None`` or empty), the replacement only
    has to be public in the newest indexed release."""
    r = index.replacement(name)
    if r is None:
        return None
    have = set(r.releases)
    needed = tuple(supported) if supported else index.releases[-1:]
    if not needed or any(rel not in have for rel in needed):
        return None
    kind = "derived from torch's own re-export" if r.derived else r.source
    if r.applicability != "drop-in":
        return (
            r.replacement,
            f"`{name}` has a public alternative `{r.replacement}` with different semantics, to adapt the code to "
            f"by hand (public since {r.public_since}; {kind})",
        )
    return (
        r.replacement,
        f"`{name}` has a public replacement `{r.replacement}` (public since {r.public_since}; "
        f"{kind})",
    )
