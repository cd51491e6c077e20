"""Rule metadata, read from the `rules/ESPxxx.md` documents (their TOML front matter).

Every fact about a rule lives in its document: the code, name, summary (the one wording, used by
the README's code table, `esper-lint rule` and SARIF), the message templates, the fix safety, and
the sections (what it does, why, examples that the tests execute, fix safety, references).

Front matter keys:
- `code`, `name`, `summary`, `message`: required strings. The message is a `str.format` template;
  its placeholders are `{name}` (the private name) and `{details}` (what the judge found), plus
  any a rule needs beyond them (ESP203's `{version}`).
- `fix`: the most applicable a fix of this rule can be: `"safe"` (applied by `--fix`), `"unsafe"`
  (only with `--unsafe-fixes`), or absent (no fix). Each fix's own applicability (safe, unsafe or
  display-only) is derived from the knowledge by esper_lint/fix/safety.py and capped by this key;
  the document's "Fix safety" section says how.
- `[messages]`: further templates for variants of the finding, e.g. `declaration` for the
  central `[tool.esper-lint.private-apis]` declarations; `message(code, variant=...)` reads them.
- `uses-index`: `true` for a rule judged against the torch index (the engine loads the index only
  when such a rule is enabled).
- `default`: `"off"` for a rule that `select = ["ESP"]` and `ALL` leave out (config.OFF_BY_DEFAULT);
  absent for the others.
- `example-config`: TOML for `[tool.esper-lint]` under which the document's examples are judged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal, cast

from esper_lint.data import rules_dir, tomllib

__all__ = ["FIX_KINDS", "FixKind", "Rule", "all_rules", "codes_table", "index_codes", "message", "rule"]

_FRONT_MATTER = re.compile(r"\A\+\+\+\n(.*?)\n\+\+\+\n", re.S)
_CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_KEYS = frozenset({"code", "name", "summary", "message", "messages", "fix", "uses-index", "example-config", "default"})
FIX_KINDS = ("safe", "unsafe")

FixKind = Literal["safe", "unsafe"]


class Rule:
    """One rule document's front matter and text. Immutable.

    A hand-written class, not a frozen dataclass: a dataclass costs about 1 ms of import time on
    every pre-commit run. Not a named tuple: `messages` is a dict, which the hash leaves out."""

    __slots__ = _FIELDS = (
        "code",
        "name",
        "summary",
        "message",
        "document",
        "fix",  # None: no fix
        "messages",  # variant -> template
        "example_config",  # TOML for [tool.esper-lint] under which the examples are judged
        "uses_index",  # judged against the torch index
        "off_by_default",  # only a selector more specific than `ESP` enables it
    )
    code: str
    name: str
    summary: str
    message: str
    document: str
    fix: FixKind | None
    messages: Mapping[str, str]
    example_config: str
    uses_index: bool
    off_by_default: bool

    def __init__(
        self,
        code: str,
        name: str,
        summary: str,
        message: str,
        document: str,
        fix: FixKind | None = None,
        messages: Mapping[str, str] | None = None,
        example_config: str = "",
        uses_index: bool = False,
        off_by_default: bool = False,
    ) -> None:
        values = (
            code,
            name,
            summary,
            message,
            document,
            fix,
            {} if messages is None else messages,
            example_config,
            uses_index,
            off_by_default,
        )
        for field_name, value in zip(self._FIELDS, values, strict=True):
            object.__setattr__(self, field_name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field_name) for field_name in self._FIELDS)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Rule is immutable: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Rule is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:  # the default would restore the slots by assignment
        return (Rule, self._values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, field_name) for field_name in self._FIELDS if field_name != "messages"))

    def __repr__(self) -> str:
        return "Rule(" + ", ".join(f"{field_name}={getattr(self, field_name)!r}" for field_name in self._FIELDS) + ")"

    def template(self, variant: str | None = None) -> str:
        if variant is None:
            return self.message
        try:
            return self.messages[variant]
        except KeyError:
            raise KeyError(f"{self.code} has no {variant!r} message (its variants: {', '.join(self.messages) or 'none'})") from None

    def format(self, variant: str | None = None, **values: object) -> str:
        return self.template(variant).format(**values)

    def section(self, title: str) -> str:
        """The text of one `## title` section of the rule document."""
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", self.document, re.S | re.M)
        return match.group(1).strip() if match else ""

    def examples(self, title: str) -> list[str]:
        return _CODE_BLOCK.findall(self.section(title))


def _string(meta: Mapping[str, object], key: str, where: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: front matter `{key}` must be a non-empty string")
    return value


def _parse(text: str, where: str = "rule document") -> Rule:
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError(f"{where} lacks +++ TOML front matter")
    meta = tomllib.loads(match.group(1))
    unknown = sorted(set(meta) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown front matter key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    fix = meta.get("fix")
    if fix is not None and fix not in FIX_KINDS:
        raise ValueError(f"{where}: `fix` must be \"safe\" or \"unsafe\" (or absent for no fix), not {fix!r}")
    uses_index = meta.get("uses-index", False)
    if not isinstance(uses_index, bool):
        raise ValueError(f"{where}: `uses-index` must be true or false")
    default = meta.get("default", "on")
    if default not in ("on", "off"):
        raise ValueError(f"{where}: `default` must be \"on\" or \"off\", not {default!r}")
    messages = meta.get("messages", {})
    if not isinstance(messages, dict) or not all(isinstance(v, str) and v for v in messages.values()):
        raise ValueError(f"{where}: `[messages]` must map variant names to message templates")
    return Rule(
        code=_string(meta, "code", where),
        name=_string(meta, "name", where),
        summary=_string(meta, "summary", where),
        message=_string(meta, "message", where),
        document=text[match.end() :],
        fix=cast("FixKind | None", fix),
        messages=dict(messages),
        example_config=str(meta.get("example-config", "")),
        uses_index=uses_index,
        off_by_default=default == "off",
    )


@lru_cache(maxsize=1)
def all_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for entry in rules_dir().iterdir():
        if re.fullmatch(r"ESP\d{3}\.md", entry.name):
            rule = _parse(entry.read_text(encoding="utf-8"), f"rules/{entry.name}")
            if f"{rule.code}.md" != entry.name:
                raise ValueError(f"rules/{entry.name}: front matter says code {rule.code!r}")
            rules[rule.code] = rule
    return dict(sorted(rules.items()))


def rule(code: str) -> Rule:
    return all_rules()[code]


def message(code: str, variant: str | None = None, **values: object) -> str:
    """The finding message of `code` (or of one of its `[messages]` variants) with `values` filled in."""
    return rule(code).format(variant, **values)


@lru_cache(maxsize=1)
def index_codes() -> tuple[str, ...]:
    """The codes of the rules judged against the torch index."""
    return tuple(code for code, r in all_rules().items() if r.uses_index)


def codes_table() -> str:
    """The README's "## Codes" table: one row per rule document, its code and summary."""
    rows = ["| code | meaning |", "|---|---|"]
    rows.extend(f"| {r.code} | {r.summary.replace('|', chr(92) + '|')} |" for r in all_rules().values())
    return "\n".join(rows) + "\n"
