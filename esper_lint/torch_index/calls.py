"""Checks against the signature and deprecation history (ESP204, ESP205).

Each function is pure: it takes the history, the private name and what the call site or the
configuration says, and returns a message detail (None when there is nothing to report). They
assert only on what the wheels show: a release whose signature is unknown or absent is not judged
(ESP201 and ESP202 speak about absent names), and a call that unpacks ``*args``/``**kwargs`` is not
judged at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from .signatures import CallShape, Deprecation, Signature, TorchSignatures, releases_text

__all__ = ["check_call", "check_deprecation", "judged_releases"]


def judged_releases(all_releases: Sequence[str], supported: Sequence[str] | None, since: str | None) -> tuple[str, ...]:
    """The releases a call is judged in: those of the supported range (or the newest release when
    no range is known), and, for a documented call, the documented "since" release and every later
    one. ``since`` is a minor release ``X.Y``."""
    chosen = set(supported) if supported else set(all_releases[-1:])
    if since is not None:
        key = _version_key(since)
        chosen.update(r for r in all_releases if _version_key(r) >= key)
    return tuple(r for r in all_releases if r in chosen)


def _version_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split(".")[:2] if part.isdigit())


def _describe(name: str, problem: tuple[str, str], call: CallShape) -> str:
    kind, subject = problem
    if kind == "keyword":
        return f"`{subject}=` is not accepted by `{name}`"
    if kind == "positional-only":
        return f"`{subject}` of `{name}` is positional-only, so `{subject}=` is not accepted"
    if kind == "positional":
        plural = "s" if subject != "1" else ""
        return f"`{name}` takes at most {subject} positional argument{plural} (the call passes {call.positional})"
    if kind == "twice":
        return f"the call passes `{subject}` of `{name}` twice (by position and as `{subject}=`)"
    if kind == "missing":
        return f"the call does not pass `{subject}`, which `{name}` requires"
    return f"no overload of `{name}` accepts the call"


def _when(bad: Sequence[str], known: Sequence[str], all_releases: Sequence[str]) -> tuple[str, str | None]:
    """(``before 2.4``, ``torch 1.11–2.3``), (``from 1.13``, ``torch 1.13–2.15``) or
    (``in torch 1.9, 2.1``, None): where ``bad`` lies among the judged releases whose signature is
    ``known``, and the releases themselves where the phrase does not list them."""
    flags = [r in bad for r in known]
    first_good = flags.index(False) if False in flags else len(flags)
    listed = f"torch {releases_text(bad, all_releases)}"
    if 0 < first_good < len(flags) and not any(flags[first_good:]):
        return f"before {known[first_good]}", listed
    first_bad = flags.index(True)
    if first_bad > 0 and all(flags[first_bad:]):
        return f"from {known[first_bad]}", listed
    return f"in {listed}", None


def check_call(
    history: TorchSignatures,
    name: str,
    call: CallShape,
    judged: Sequence[str],
    *,
    since: str | None = None,
    spec: str | None = None,
) -> str | None:
    """ESP204: the releases among ``judged`` whose signature of ``name`` does not accept ``call``.

    ``judged``: see :func:`judged_releases`; ``since`` and ``spec`` (the documented release and the
    configured range) only word the message."""
    if not call.readable:
        return None
    known: list[str] = []
    problems: dict[tuple[str, str], list[str]] = {}
    for release in judged:
        signature = history.signature(name, release)
        if not isinstance(signature, Signature) or not signature.evidence:
            continue  # absent, unknown, or only a hand-written stub: nothing to assert
        known.append(release)
        problem = signature.problem(call)
        if problem is not None:
            problems.setdefault(problem, []).append(release)
    if not problems:
        return None
    context = [f"documented since {since}"] if since else []
    if spec:
        context.append(f"supported range {spec}")
    ordered = sorted(problems.items(), key=lambda item: history.releases.index(item[1][0]))
    clauses = []
    for position, (problem, bad) in enumerate(ordered):
        phrase, listed = _when(bad, known, history.releases)
        notes = [listed] if listed else []
        if position + 1 == len(ordered):
            notes.extend(context)
        clauses.append(f"{_describe(name, problem, call)} {phrase}" + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(clauses)


def _deprecation_text(name: str, record: Deprecation, all_releases: Sequence[str]) -> str:
    releases = releases_text(record.releases, all_releases)
    if record.kind == "alias":
        what = f"`{name}` is {'a deprecated' if record.warns else 'an'} alias of `{record.target}` in torch {releases}"
        if record.warns:
            what += f" (reading or setting it warns: {record.category})"
        return what
    subject = f"importing `{record.name}`" if record.kind == "module" else f"`{name}`"
    text = f"{subject} warns ({record.category}) in torch {releases}"
    if record.message:
        text += f": \"{record.message}\""
    if record.target and record.target != name:
        text += f"; torch points to `{record.target}`"
    return text


def check_deprecation(history: TorchSignatures, name: str, supported: Sequence[str] | None) -> str | None:
    """ESP205: ``name`` warns (or is a compatibility alias) in the newest indexed release or in a
    release of the supported range. The detail names the releases and what torch points to."""
    relevant = set(supported or ()) | set(history.releases[-1:])
    records = [d for d in history.deprecations(name) if relevant.intersection(d.releases)]
    if not records:
        return None
    newest = max(records, key=lambda d: history.releases.index(d.releases[-1]))
    return _deprecation_text(name, newest, history.releases)
