"""``esper-lint explain NAME``: what the torch index knows about a name."""

from __future__ import annotations

import json
from typing import Any

from esper_lint.names import is_private

from . import TorchIndex, format_releases, load_index

__all__ = ["explain", "explain_data"]


def explain_data(name: str, index: TorchIndex | None = None) -> dict[str, Any]:
    """The facts :func:`explain` prints, as a JSON-ready dict.

    ``first_release``/``last_release``/``removed_in`` describe ``name`` itself and are null
    unless the index holds it exactly (``matched`` and ``releases`` tell about the nearest
    known prefix otherwise). ``lower_bound`` is true when ``name`` may be older than
    ``first_release`` (say "at least since"); ``evidence`` gives, per release, what shows the
    name there; ``cpu_absent_in`` the releases whose CPU-only builds lack it."""
    idx = index if index is not None else load_index()
    releases = idx.releases
    indexed = f"{releases[0]}\u2013{releases[-1]}" if releases else ""
    lk = idx.lookup(name)
    repl = idx.replacement(name)
    exact = bool(lk and lk.exact)
    out: dict[str, Any] = {
        "name": name,
        "private": is_private(name),
        "indexed_releases": list(releases),
        "known": exact,
        "exact": exact,
        "matched": lk.matched if lk else None,
        "kind": lk.kind if lk else None,
        "kinds": [{"release": r, "kind": k} for r, k in lk.kinds] if lk else [],
        "is_module": bool(lk and lk.is_module),
        "releases": list(lk.releases) if lk else [],
        "release_ranges": format_releases(lk.releases, releases) if lk else "",
        "first_release": None,
        "last_release": None,
        "removed_in": None,
        "lower_bound": bool(lk and lk.lower_bound),
        "gaps_proven": bool(lk and lk.gaps_proven),
        "evidence": {r: list(labels) for r, labels in lk.evidence} if lk else {},
        "cpu_absent_in": list(lk.cpu_absent_in) if lk else [],
        "provably_absent": bool(lk and lk.provably_absent),
        "replacement": None,
        "indexed_range": indexed,
    }
    if lk and lk.exact and lk.releases:
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
            "applicability": repl.applicability,
            "evidence": repl.evidence,
            "releases": format_releases(repl.releases, releases),
        }
    from .signatures import explain_facts

    out.update(explain_facts(name))  # "signatures", "deprecations", "signature_releases"
    return out


def _kind_history(d: dict[str, Any]) -> str | None:
    """``"module in 1.6–1.9, function in 1.10–2.15"`` when the kind changed, else None."""
    runs: list[tuple[str, list[str]]] = []
    for item in d["kinds"]:
        if runs and runs[-1][0] == item["kind"]:
            runs[-1][1].append(item["release"])
        else:
            runs.append((item["kind"], [item["release"]]))
    if len(runs) < 2:
        return None
    return ", ".join(f"{kind} in {format_releases(rels, tuple(d['indexed_releases']))}" for kind, rels in runs)


def explain(name: str, fmt: str = "text", index: TorchIndex | None = None) -> str:
    """Describe ``name``: the releases having it (as ranges like ``1.11–2.15``), when it
    appeared ("at least since" where the evidence is only a lower bound) and disappeared, what
    shows it, whether CPU builds lack it, and its public replacement. ``fmt`` is ``"text"`` or
    ``"json"`` (a JSON object; ``"known": false`` for a name the index does not have)."""
    d = explain_data(name, index)
    if fmt == "json":
        return json.dumps(d, sort_keys=True, indent=2)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r} (expected 'text' or 'json')")
    lines: list[str] = []
    all_releases = tuple(d["indexed_releases"])
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
                f"{name}: not statically visible in the index (first and last release unknown); "
                f"nearest known: `{d['matched']}` ({d['kind']}), in torch {d['release_ranges']}"
            )
        subject = name if d["exact"] else d["matched"]
        first = d["releases"][0]
        last = d["releases"][-1]
        if d["lower_bound"]:
            why = (
                "the first indexed release"
                if first == all_releases[0]
                else "the evidence there is only " + " and ".join(d["evidence"].get(first, []) or ["a stub"])
            )
            lines.append(f"  `{subject}` at least since {first} (it may be older: {why})")
        else:
            lines.append(f"  `{subject}` appeared in: {first}")
        pos = all_releases.index(last)
        if pos + 1 < len(all_releases):
            lines.append(f"  removed in: {all_releases[pos + 1]} (last release with `{subject}`: {last})")
        else:
            lines.append(f"  still present in {last} (newest indexed release)")
        gaps = len(d["releases"]) != all_releases.index(last) - all_releases.index(first) + 1
        if gaps and d["gaps_proven"]:
            lines.append("  note: absent from some releases in between")
        elif gaps:
            lines.append(
                "  note: not seen in some releases in between (where the evidence is only a stub or a use, "
                "that proves nothing: it may have been there)"
            )
        history = _kind_history(d)
        if history:
            lines.append(f"  kind: {history}")
        by_evidence: dict[str, list[str]] = {}
        for release, labels in d["evidence"].items():
            by_evidence.setdefault(", ".join(labels), []).append(release)
        lines.append(
            "  evidence: "
            + "; ".join(f"{labels} in {format_releases(rels, all_releases)}" for labels, rels in by_evidence.items())
        )
        if d["cpu_absent_in"]:
            lines.append(
                f"  build: a CUDA/ROCm/XPU/MPS C-extension name, absent from CPU-only builds of torch "
                f"{format_releases(d['cpu_absent_in'], all_releases)} (the CPU wheel's binaries lack it; "
                "a build with that device has it)"
            )
    r = d["replacement"]
    if r:
        how = "derived from torch's own re-export in " if r["derived"] else "source: "
        what = (
            "public replacement"
            if r["applicability"] == "drop-in"
            else "public alternative (different semantics: a suggestion, never applied by --fix)"
        )
        lines.append(
            f"  {what}: {r['name']} (public since {r['public_since']}, in torch "
            f"{r['releases']}; {how}{r['source']})"
        )
    elif d["matched"] is not None:
        lines.append("  public replacement: none known")
    from .signatures import explain_lines

    lines.extend(explain_lines(d))
    lines.append(f"  (index: torch {d['indexed_range']}, {len(d['indexed_releases'])} minor releases)")
    return "\n".join(lines)
