"""``esper-lint explain NAME``: what the torch index knows about a name."""

from __future__ import annotations

import json
from typing import Any

from esper_lint.names import is_private

from . import TorchIndex, format_releases, load_index

__all__ = ["explain", "explain_data"]


def explain_data(name: str, index: TorchIndex | None = None) -> dict[str, Any]:
    """The facts :func:`explain` prints, as a JSON-ready dict."""
    idx = index if index is not None else load_index()
    releases = idx.releases
    indexed = f"{releases[0]}\u2013{releases[-1]}" if releases else ""
    lk = idx.lookup(name)
    repl = idx.replacement(name)
    out: dict[str, Any] = {
        "name": name,
        "private": is_private(name),
        "indexed_releases": list(releases),
        "known": lk is not None and lk.exact,
        "exact": bool(lk and lk.exact),
        "matched": lk.matched if lk else None,
        "kind": lk.kind if lk else None,
        "is_module": bool(lk and lk.is_module),
        "releases": list(lk.releases) if lk else [],
        "release_ranges": format_releases(lk.releases, releases) if lk else "",
        "first_release": None,
        "last_release": None,
        "removed_in": None,
        "provably_absent": bool(lk and lk.provably_absent),
        "replacement": None,
        "indexed_range": indexed,
    }
    if lk and lk.releases:
        first, last = lk.releases[0], lk.releases[-1]
        out["first_release"] = first
        out["last_release"] = last
        pos = releases.index(last)
        if pos + 1 < len(releases):
            out["removed_in"] = releases[pos + 1]
    if repl is not None:
        out["replacement"] = {
            "name": repl.replacement,
            "public_since": repl.public_since,
            "source": repl.source,
            "derived": repl.derived,
            "releases": format_releases(repl.releases, releases),
        }
    from .signatures import explain_facts

    out.update(explain_facts(name))  # "signatures", "deprecations", "signature_releases"
    return out


def explain(name: str, fmt: str = "text", index: TorchIndex | None = None) -> str:
    """Describe ``name``: the releases having it (as ranges like ``1.11–2.15``), when it
    appeared and disappeared, and its public replacement. ``fmt`` is ``"text"`` or
    ``"json"`` (a JSON object; ``"known": false`` for a name the index does not have)."""
    d = explain_data(name, index)
    if fmt == "json":
        return json.dumps(d, sort_keys=True, indent=2)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r} (expected 'text' or 'json')")
    lines: list[str] = []
    first_idx = d["indexed_releases"][0] if d["indexed_releases"] else None
    if d["matched"] is None:
        lines.append(
            f"{name}: not in the torch index (torch {d['indexed_range']}); neither it nor "
            f"any module above it below `torch` is known"
        )
    elif d["provably_absent"]:
        lines.append(
            f"{name}: not in any indexed torch release; `{d['matched']}` ({d['kind']}, "
            f"torch {d['release_ranges']}) lists no such name"
        )
    else:
        if d["exact"]:
            lines.append(f"{name}: {d['kind']}, in torch {d['release_ranges']}")
        else:
            lines.append(
                f"{name}: not statically visible in the index; nearest known: "
                f"`{d['matched']}` ({d['kind']}), in torch {d['release_ranges']}"
            )
        subject = name if d["exact"] else d["matched"]
        if d["first_release"] == first_idx:
            lines.append(f"  first indexed release: {first_idx} (it may be older)")
        else:
            lines.append(f"  appeared in: {d['first_release']}")
        if d["removed_in"]:
            lines.append(
                f"  removed in: {d['removed_in']} (last release with `{subject}`: "
                f"{d['last_release']})"
            )
        else:
            lines.append(f"  still present in {d['last_release']} (newest indexed release)")
        gaps = len(d["releases"]) != (
            d["indexed_releases"].index(d["last_release"])
            - d["indexed_releases"].index(d["first_release"]) + 1
        )
        if gaps:
            lines.append("  note: absent from some releases in between")
    r = d["replacement"]
    if r:
        how = "derived from torch's own re-export in " if r["derived"] else "source: "
        lines.append(
            f"  public replacement: {r['name']} (public since {r['public_since']}, in torch "
            f"{r['releases']}; {how}{r['source']})"
        )
    elif d["matched"] is not None:
        lines.append("  public replacement: none known")
    from .signatures import explain_lines

    lines.extend(explain_lines(d))
    lines.append(f"  (index: torch {d['indexed_range']}, {len(d['indexed_releases'])} minor releases)")
    return "\n".join(lines)
