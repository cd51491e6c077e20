"""rules/ is the single source of truth: every rule document is complete and its examples are executed."""

from __future__ import annotations

import pytest

from pathlib import Path

from esper_lint import catalog
from esper_lint.data import tomllib
from esper_lint.config import config_from_table
from esper_lint.engine import analyse_source
from esper_lint.testing import missing_private_apis

RULES = list(catalog.all_rules().values())
SECTIONS = ("What it does", "Why it matters", "Example", "Use instead", "Options")


def test_the_core_codes_are_documented() -> None:
    assert {"ESP001", "ESP101", "ESP102", "ESP103", "ESP201", "ESP202", "ESP203", "ESP301"} <= set(catalog.all_rules())


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_document_has_every_section(rule: catalog.Rule) -> None:
    for title in SECTIONS:
        assert rule.section(title), f"{rule.code} lacks '## {title}'"
    assert rule.summary and rule.name and "{" in rule.message or rule.code == "ESP103"


def codes_for(rule: catalog.Rule, example: str, tmp_path: Path) -> set[str]:
    """Run an example through the front end that reports the rule: `verify` for ESP203, else `check`."""
    if rule.code == "ESP203":
        pytest.importorskip("torch", reason="ESP203 is verified against an installed torch")
        target = tmp_path / "example.py"
        target.write_text(example, encoding="utf-8")
        return {f.code for f in missing_private_apis(target)}
    config = config_from_table(tomllib.loads(rule.example_config), f"rules/{rule.code}.md")
    return {f.code for f in analyse_source(example, "example.py", config).findings}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_bad_example_yields_the_code(rule: catalog.Rule, tmp_path: Path) -> None:
    examples = rule.examples("Example")
    assert examples, f"{rule.code} has no python example"
    for example in examples:
        codes = codes_for(rule, example, tmp_path)
        assert rule.code in codes, f"{rule.code} example gave {codes}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_good_example_yields_nothing(rule: catalog.Rule, tmp_path: Path) -> None:
    examples = rule.examples("Use instead")
    assert examples, f"{rule.code} has no 'use instead' code"
    for example in examples:
        assert codes_for(rule, example, tmp_path) == set()
