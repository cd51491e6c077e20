"""The signature and deprecation history of torch's private callables (pure Python, no torch import).

>>> sigs = load_signatures()
>>> sigs.signature("torch._foreach_norm", "1.11").overloads[0].text()
'(tensors, ord=…)'

The data (``rules/torch-signatures.gz``) is built from the same wheels as the index by
:mod:`tools.build_torch_signatures` (its docstring describes the format). Loading parses a small JSON
header; each lookup decompresses only the bucket of names it needs, and the deprecations are read on
their first use. This module is imported only when ESP204, ESP205 or ``explain`` needs it.

A release's signature is one of three things: absent (the release has no such callable), unknown (a
callable whose parameters cannot be read statically: a decorator that may change them, a rebinding)
or a :class:`Signature`. Checks assert only on a :class:`Signature` that is evidence: a ``def``, a
stub generated from the operator schemas, or a schema (not a hand-written stub; ``ASSERTED_SOURCES``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, NamedTuple

from esper_lint.data import read_rules_bytes

__all__ = [
    "ASSERTED_SOURCES",
    "SIGNATURES_FILE",
    "CallShape",
    "Deprecation",
    "Overload",
    "Parameter",
    "Signature",
    "TorchSignatures",
    "load_signatures",
]

SIGNATURES_FILE = "torch-signatures.gz"

#: names torch exposes under a second path at run time (``torch._VF`` proxies the C functions)
_PATH_ALIASES = {"torch._VF": "torch._C._VariableFunctions"}

ParameterKind = Literal["positional-only", "positional-or-keyword", "keyword-only", "var-positional", "var-keyword"]


# Named tuples, not frozen dataclasses: a dataclass costs about 1 ms of import time on every
# pre-commit run.
class Parameter(NamedTuple):
    name: str
    kind: ParameterKind
    has_default: bool = False

    def text(self) -> str:
        if self.kind == "var-positional":
            return f"*{self.name}"
        if self.kind == "var-keyword":
            return f"**{self.name}"
        return f"{self.name}=…" if self.has_default else self.name


class CallShape(NamedTuple):
    """How a call site passes its arguments: the number of plain positional arguments and the
    keyword names, and whether it unpacks ``*args``/``**kwargs`` (then it cannot be judged)."""

    positional: int
    keywords: tuple[str, ...]
    star_args: bool = False
    star_kwargs: bool = False

    @property
    def readable(self) -> bool:
        return not (self.star_args or self.star_kwargs)


class Overload(NamedTuple):
    parameters: tuple[Parameter, ...]

    @classmethod
    def decode(cls, encoded: str) -> Overload:
        tokens = [t for t in encoded.split(",") if t]
        posonly_end = tokens.index("/") if "/" in tokens else 0
        parameters: list[Parameter] = []
        keyword_only = False
        seen = 0
        for token in tokens:
            if token == "/":
                continue
            if token == "*":
                keyword_only = True
                continue
            if token.startswith("**"):
                parameters.append(Parameter(token[2:], "var-keyword"))
                continue
            if token.startswith("*"):
                parameters.append(Parameter(token[1:], "var-positional"))
                keyword_only = True
                continue
            name, has_default = (token[:-1], True) if token.endswith("=") else (token, False)
            kind: ParameterKind
            if keyword_only:
                kind = "keyword-only"
            elif seen < posonly_end:
                kind = "positional-only"
            else:
                kind = "positional-or-keyword"
            seen += 1
            parameters.append(Parameter(name, kind, has_default))
        return cls(tuple(parameters))

    def text(self) -> str:
        """``(tensors, ord=…, /, *, dtype=…)``, as Python would print the parameters."""
        parts: list[str] = []
        kinds = [p.kind for p in self.parameters]
        for index, parameter in enumerate(self.parameters):
            if parameter.kind == "keyword-only" and "var-positional" not in kinds and (index == 0 or kinds[index - 1] != "keyword-only"):
                parts.append("*")
            parts.append(parameter.text())
            if parameter.kind == "positional-only" and (index + 1 == len(kinds) or kinds[index + 1] != "positional-only"):
                parts.append("/")
        return f"({', '.join(parts)})"

    def problem(self, call: CallShape) -> tuple[str, str] | None:
        """Why ``call`` does not bind to these parameters, as ``(kind, subject)``; None when it does.
        Kinds: ``keyword`` (an unknown keyword), ``positional-only`` (such a parameter passed by
        keyword), ``positional`` (too many positional arguments; subject: the most accepted),
        ``twice`` (a parameter given positionally and by keyword), ``missing`` (a required one)."""
        positional = [p for p in self.parameters if p.kind in ("positional-only", "positional-or-keyword")]
        by_name = {p.name: p for p in self.parameters if p.kind not in ("var-positional", "var-keyword")}
        var_positional = any(p.kind == "var-positional" for p in self.parameters)
        var_keyword = any(p.kind == "var-keyword" for p in self.parameters)
        filled = {p.name for p in positional[: call.positional]}
        for keyword in call.keywords:
            parameter = by_name.get(keyword)
            if parameter is None or parameter.kind == "positional-only":
                if var_keyword:
                    continue
                return ("positional-only" if parameter is not None else "keyword", keyword)
            if keyword in filled:
                return ("twice", keyword)
            filled.add(keyword)
        if call.positional > len(positional) and not var_positional:
            return ("positional", str(len(positional)))
        for parameter in self.parameters:
            if parameter.kind in ("var-positional", "var-keyword") or parameter.has_default:
                continue
            if parameter.name not in filled:
                return ("missing", parameter.name)
        return None


#: the sources a check may assert on: a ``def``, a stub torchgen generates from the schemas, a schema.
#: A hand-written stub (``pyi``: ``torch/_C/__init__.pyi``...) lags behind the C++ bindings.
ASSERTED_SOURCES = frozenset({"py", "gen", "schema"})


class Signature(NamedTuple):
    source: str  #: ``py`` (a ``def``), ``gen`` (a generated stub), ``pyi`` (a hand-written stub) or ``schema``
    overloads: tuple[Overload, ...]

    @property
    def evidence(self) -> bool:
        """Whether a check may assert on it (see ASSERTED_SOURCES)."""
        return self.source in ASSERTED_SOURCES

    @classmethod
    def decode(cls, value: str) -> Signature:
        source, _, rest = value.partition("|")
        return cls(source, tuple(Overload.decode(o) for o in rest.split(";")))

    def text(self) -> str:
        return " | ".join(o.text() for o in self.overloads)

    def problem(self, call: CallShape) -> tuple[str, str] | None:
        """None when some overload accepts ``call``; else the problem all overloads share, or
        ``("overloads", "")`` when they fail for different reasons."""
        problems = []
        for overload in self.overloads:
            found = overload.problem(call)
            if found is None:
                return None
            problems.append(found)
        return problems[0] if len(set(problems)) == 1 else ("overloads", "")


class Deprecation(NamedTuple):
    """A private name that warns (or is an alias kept for compatibility) in some releases."""

    name: str
    kind: str  #: ``warns`` (its body), ``decorator`` (``@deprecated``), ``module`` (on import), ``alias``, ``config``
    category: str  #: ``DeprecationWarning``/``FutureWarning``; empty for an alias that does not warn
    message: str  #: the warning's text as written (``{...}`` for f-string fields); may be empty
    target: str  #: the dotted torch name the text or the alias points to; empty when none is stated
    source: str  #: the file that says so (in the newest release with this record)
    releases: tuple[str, ...]

    @property
    def warns(self) -> bool:
        return bool(self.category)


UNKNOWN = "?"
State = Signature | Literal["absent", "unknown"]


def _decode_ranges(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return tuple(out)


def _bucket_key(name: str) -> str:
    # must agree with tools.build_torch_signatures.bucket_key: the parent name, cut to 3 components
    parts = name.split(".")
    return ".".join(parts[: min(len(parts) - 1, 3)])


class TorchSignatures:
    """Query the signature and deprecation history."""

    def __init__(self, header: dict[str, Any], blobs: bytes = b"") -> None:
        if header.get("format") != 1:
            raise ValueError(f"unsupported torch signatures format {header.get('format')!r}")
        self.releases: tuple[str, ...] = tuple(header["releases"])
        self.python: str = header.get("python", "")
        self.wheels: dict[str, dict[str, str]] = dict(header.get("wheels", {}))
        self.counts: dict[str, Any] = dict(header.get("counts", {}))
        self._blobs = blobs
        self._locations: dict[str, tuple[int, int]] = {}
        offset = 0
        for key, size in zip(header["bucket_keys"].split("\n"), header["bucket_sizes"], strict=True):
            self._locations[key] = (offset, size)
            offset += size
        deprecations_offset, deprecations_size = header["deprecations"]
        self._deprecations_at = (int(deprecations_offset), int(deprecations_size))
        self._buckets: dict[str, dict[str, list[list[Any]]]] = {}
        self._deprecations: dict[str, list[Deprecation]] | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> TorchSignatures:
        decompressor = zlib.decompressobj(31)
        header = json.loads(decompressor.decompress(data))
        return cls(header, decompressor.unused_data)

    def _member(self, offset: int, size: int) -> Any:
        return json.loads(zlib.decompress(self._blobs[offset : offset + size], 31))

    def _history(self, name: str) -> list[list[Any]] | None:
        for alias, target in _PATH_ALIASES.items():
            if name.startswith(alias + "."):
                name = target + name[len(alias) :]
        key = _bucket_key(name)
        bucket = self._buckets.get(key)
        if bucket is None:
            location = self._locations.get(key)
            bucket = self._member(*location) if location else {}
            self._buckets[key] = bucket
        return bucket.get(name[len(key) + 1 :])

    def state(self, name: str, release: str) -> State:
        """The signature of ``name`` in ``release``, ``"unknown"`` or ``"absent"``."""
        history = self._history(name)
        if history is None or release not in self.releases:
            return "absent"
        position = self.releases.index(release)
        value = ""
        for index, encoded in history:
            if index > position:
                break
            value = encoded
        if not value:
            return "absent"
        return "unknown" if value == UNKNOWN else Signature.decode(value)

    def signature(self, name: str, release: str) -> Signature | None:
        """The signature of ``name`` in ``release``; None when absent or unknown."""
        state = self.state(name, release)
        return state if isinstance(state, Signature) else None

    def history(self, name: str) -> list[tuple[tuple[str, ...], State]]:
        """The runs of releases over which the signature of ``name`` stays the same, oldest first
        (absent runs included); empty when the name is not a known callable."""
        history = self._history(name)
        if not history:
            return []
        runs: list[tuple[tuple[str, ...], State]] = []
        for position, (index, encoded) in enumerate(history):
            end = history[position + 1][0] if position + 1 < len(history) else len(self.releases)
            state: State = "absent" if not encoded else "unknown" if encoded == UNKNOWN else Signature.decode(encoded)
            runs.append((self.releases[index:end], state))
        return runs

    def _deprecation_map(self) -> dict[str, list[Deprecation]]:
        if self._deprecations is None:
            found: dict[str, list[Deprecation]] = {}
            for record in self._member(*self._deprecations_at):
                releases = tuple(self.releases[i] for i in _decode_ranges(record["ranges"]))
                entry = Deprecation(
                    record["name"], record["kind"], record["category"], record["message"], record["target"], record["source"], releases
                )
                found.setdefault(entry.name, []).append(entry)
            self._deprecations = found
        return self._deprecations

    def deprecations(self, name: str) -> list[Deprecation]:
        """The deprecation records of ``name`` itself and of a module above it that warns on
        import, in release order."""
        found = self._deprecation_map()
        parts = name.split(".")
        records = list(found.get(name, ()))
        for cut in range(len(parts) - 1, 1, -1):
            records.extend(d for d in found.get(".".join(parts[:cut]), ()) if d.kind == "module")
        return sorted(records, key=lambda d: (self.releases.index(d.releases[0]) if d.releases else 0, d.kind, d.message))

    def all_deprecations(self) -> list[Deprecation]:
        return [d for records in self._deprecation_map().values() for d in records]


def releases_text(releases: Sequence[str], all_releases: Sequence[str]) -> str:
    """``1.11–1.13, 2.1`` for the given releases, runs in the order of ``all_releases``."""
    positions = sorted(all_releases.index(r) for r in releases if r in all_releases)
    runs: list[list[int]] = []
    for position in positions:
        if runs and runs[-1][1] == position - 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return ", ".join(all_releases[a] if a == b else f"{all_releases[a]}\u2013{all_releases[b]}" for a, b in runs)


@cache
def load_signatures() -> TorchSignatures:
    """The packaged signature history (cached)."""
    return TorchSignatures.from_bytes(read_rules_bytes(SIGNATURES_FILE))


# -- `esper-lint explain` ------------------------------------------------------------------------


def explain_facts(name: str, history: TorchSignatures | None = None) -> dict[str, Any]:
    """The signature history and deprecations of ``name``, JSON-ready, for ``explain``:
    ``{"signatures": [{"releases", "state", "signature", "source"}], "deprecations": [...],
    "signature_releases": "1.6–2.14"}`` (runs without the name are left out)."""
    data = history if history is not None else load_signatures()
    runs = []
    for releases, state in data.history(name):
        if state == "absent":
            continue
        runs.append(
            {
                "releases": releases_text(releases, data.releases),
                "state": state if isinstance(state, str) else "known",
                "signature": state.text() if isinstance(state, Signature) else None,
                "source": state.source if isinstance(state, Signature) else None,
            }
        )
    deprecations = [
        {
            "name": d.name,
            "kind": d.kind,
            "category": d.category or None,
            "message": d.message or None,
            "target": d.target or None,
            "source": d.source,
            "releases": releases_text(d.releases, data.releases),
        }
        for d in data.deprecations(name)
    ]
    covered = f"{data.releases[0]}\u2013{data.releases[-1]}" if data.releases else ""
    return {"signatures": runs, "deprecations": deprecations, "signature_releases": covered}


_SOURCES = {"py": "def", "gen": "generated stub", "pyi": "hand-written stub, not asserted on", "schema": "ATen schema"}


def explain_lines(facts: dict[str, Any]) -> list[str]:
    """The text lines of :func:`explain_facts`."""
    lines: list[str] = []
    if facts["signatures"]:
        lines.append(f"  signature history (torch {facts['signature_releases']}):")
        for run in facts["signatures"]:
            if run["state"] == "unknown":
                lines.append(f"    {run['releases']}: not statically known")
            else:
                lines.append(f"    {run['releases']}: {run['signature']} ({_SOURCES.get(run['source'], run['source'])})")
    for record in facts["deprecations"]:
        subject = f"importing {record['name']}" if record["kind"] == "module" else "it"
        if record["kind"] == "alias":
            text = f"  alias of {record['target']} in torch {record['releases']}"
            text += f" ({record['category']} on use)" if record["category"] else " (no warning)"
        else:
            text = f"  deprecated: {subject} warns ({record['category']}) in torch {record['releases']}"
            if record["target"]:
                text += f"; points to {record['target']}"
        if record["message"]:
            text += f": \"{record['message']}\""
        lines.append(f"{text} [{record['source']}]")
    return lines
