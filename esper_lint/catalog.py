"""Rule metadata, read from the `rules/ESPxxx.md` documents (their TOML front matter)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from esper_lint.data import rules_dir, tomllib

_FRONT_MATTER = re.compile(r"\A\+\+\+\n(.*?)\n\+\+\+\n", re.S)
_CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    message: str
    fixable: bool
    document: str
    example_config: str = ""  # TOML for [tool.esper-lint] under which the examples are judged

    def format(self, **values: object) -> str:
        return self.message.format(**values)

    def section(self, title: str) -> str:
        """The text of one `## title` section of the rule document."""
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", self.document, re.S | re.M)
        return match.group(1).strip() if match else ""

    def examples(self, title: str) -> list[str]:
        return _CODE_BLOCK.findall(self.section(title))


def _parse(text: str) -> Rule:
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError("rule document lacks +++ TOML front matter")
    meta = tomllib.loads(match.group(1))
    return Rule(
        code=meta["code"],
        name=meta["name"],
        summary=meta["summary"],
        message=meta["message"],
        fixable=bool(meta.get("fixable", False)),
        document=text[match.end() :],
        example_config=str(meta.get("example-config", "")),
    )


@lru_cache(maxsize=1)
def all_rules() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for entry in rules_dir().iterdir():
        if re.fullmatch(r"ESP\d{3}\.md", entry.name):
            rule = _parse(entry.read_text(encoding="utf-8"))
            rules[rule.code] = rule
    return dict(sorted(rules.items()))


def rule(code: str) -> Rule:
    return all_rules()[code]


def message(code: str, **values: object) -> str:
    return rule(code).format(**values)
