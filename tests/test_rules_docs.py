"""rules/ is the single source of truth: every rule document is complete and its examples are executed."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from esper_lint import catalog
from esper_lint.config import config_from_table
from esper_lint.data import tomllib
from esper_lint.engine import analyse_source
from esper_lint.fix import FIXABLE_CODES, UNSAFE_CODES
from esper_lint.fix.registry import FIX_CAPS, FIXERS
from esper_lint.frontends import cli
from esper_lint.testing import missing_private_apis

RULES = list(catalog.all_rules().values())
SECTIONS = ("What it does", "Why it matters", "Example", "Use instead", "Fix safety", "Options")  # every document has these
OPTIONAL_SECTIONS = ("References",)
PLACEHOLDERS = {"name", "details", "version"}  # the private name, what the judge found, ESP203's torch version
PACKAGE = Path(catalog.__file__).resolve().parent
REPOSITORY = PACKAGE.parent
RULES_DIR = REPOSITORY / "rules"


def _codes_in_the_package() -> dict[str, list[str]]:
    """Every string constant of the package that is a whole code (ESP101), with where it occurs."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"ESP\d{3}", node.value):
                found.setdefault(node.value, []).append(f"{path.relative_to(REPOSITORY)}:{node.lineno}")
    return found


def test_every_code_the_package_emits_has_a_document_and_every_document_is_emitted() -> None:
    emitted = _codes_in_the_package()
    documented = set(catalog.all_rules())
    undocumented = {code: where for code, where in emitted.items() if code not in documented}
    assert not undocumented, f"codes without a rules/ESPxxx.md document: {undocumented}"
    assert not documented - set(emitted), f"documented codes the package never emits: {sorted(documented - set(emitted))}"


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_document_has_every_section(rule: catalog.Rule) -> None:
    for title in SECTIONS:
        assert rule.section(title), f"{rule.code} lacks '## {title}'"
    titles = re.findall(r"^## (.+)$", rule.document, re.M)
    assert set(titles) <= set(SECTIONS + OPTIONAL_SECTIONS), f"{rule.code} has unknown sections: {titles}"
    assert rule.document.startswith(f"# {rule.code}: {rule.name}\n"), f"{rule.code}: the title is not '# CODE: name'"
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name), f"{rule.code}: the name is not kebab-case"
    assert rule.summary.strip() and "\n" not in rule.summary, f"{rule.code}: the summary must be one line"
    for template in (rule.message, *rule.messages.values()):  # ESP103's have no placeholder, or only {name}
        assert _fields(template) <= PLACEHOLDERS, f"{rule.code}: {template!r} uses placeholders beyond {PLACEHOLDERS}"
        assert template.format(name="torch._x", details="d", version="2.4").strip(), f"{rule.code}: empty message"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_fix_safety_section_says_what_the_front_matter_says(rule: catalog.Rule) -> None:
    """Every document has '## Fix safety', as ruff's do: "This fix is <fix>" where the front matter
    has `fix` (the most applicable its fixes can be), "There is no fix" where it has none."""
    section = rule.section("Fix safety")
    if rule.fix is None:
        assert section.startswith("There is no fix"), f"{rule.code}: no `fix`, so '## Fix safety' opens with 'There is no fix'"
        return
    assert section.startswith(f"This fix is {rule.fix}"), f"{rule.code}: '## Fix safety' must open with 'This fix is {rule.fix}'"
    assert "--unsafe-fixes" in section or (rule.fix == "safe" and "--fix" in section), f"{rule.code}: say which flag applies it"
    if rule.fix == "unsafe":
        assert "--unsafe-fixes" in section, f"{rule.code}: an unsafe fix needs --unsafe-fixes: say so"


def test_the_fixer_registry_and_the_catalog_name_the_same_codes() -> None:
    registered = [fixer.code for fixer in FIXERS]
    documented = {rule.code for rule in RULES if rule.fix is not None}
    assert len(registered) == len(set(registered))
    assert set(registered) == documented, "each fix needs a `fix` key in its rule document, and each `fix` key a registered fixer"
    assert FIXABLE_CODES == ("ESP301", "ESP101", "ESP103")  # the application order
    assert UNSAFE_CODES == {rule.code for rule in RULES if rule.fix == "unsafe"} == {"ESP103"}
    assert {rule.code: rule.fix for rule in RULES if rule.fix is not None} == FIX_CAPS  # the cap the fixers apply
    for fixer in FIXERS:
        entry = fixer.rewrite or fixer.comment
        assert (fixer.rewrite is None) != (fixer.comment is None), f"{fixer.code}: a fixer rewrites code or edits comments"
        assert entry is not None and entry.__module__.startswith("esper_lint.fix."), fixer


def test_message_variants_are_read_from_the_documents() -> None:
    assert catalog.message("ESP102", variant="declaration", name="torch._x", details="no `fallback` code") == (
        "invalid Private API documentation for `torch._x`: no `fallback` code (central declaration)"
    )
    assert catalog.message("ESP103", variant="declaration", name="torch._x") == (
        "stale central declaration: no linted file uses `torch._x` or a name under it"
    )
    assert catalog.message("ESP102", name="torch._x", details="no version") == (
        "invalid Private API documentation for `torch._x`: no version"
    )
    with pytest.raises(KeyError, match="ESP101 has no 'declaration' message"):
        catalog.message("ESP101", variant="declaration", name="torch._x")


@pytest.mark.parametrize(
    ("front_matter", "error"),
    [
        ('fixable = true', "unknown front matter key"),
        ('fix = "maybe"', "`fix` must be"),
        ('[messages]\ndeclaration = 1', "`[messages]`"),
    ],
)
def test_front_matter_is_validated(front_matter: str, error: str) -> None:
    text = f'+++\ncode = "ESP999"\nname = "x"\nsummary = "s"\nmessage = "m"\n{front_matter}\n+++\n# ESP999: x\n'
    with pytest.raises(ValueError, match=re.escape(error)):
        catalog._parse(text)


def _readme_codes_table() -> str:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Codes\n\n((?:\|.*\n)+)", readme, re.M)
    assert match is not None, "README.md lacks a '## Codes' section that starts with a table"
    return match.group(1)


def test_the_readme_codes_table_is_made_from_the_rule_documents() -> None:
    assert _readme_codes_table() == catalog.codes_table(), (
        "README.md's '## Codes' table differs from the rule documents' summaries: replace it with the "
        "output of `python -m esper_lint rule --table`"
    )


def test_rule_table_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rule", "--table"]) == cli.EXIT_CLEAN
    assert capsys.readouterr().out == catalog.codes_table()
    assert cli.main(["rule"]) == cli.EXIT_ERROR
    assert cli.main(["rule", "ESP101", "--table"]) == cli.EXIT_ERROR


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_relative_links_in_rule_documents_resolve(rule: catalog.Rule) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", rule.document):
        if re.match(r"[a-z]+://", target):
            assert target.startswith("https://"), f"{rule.code}: {target}"
            continue
        relative, _, anchor = target.partition("#")
        path = (RULES_DIR / relative).resolve()
        assert path.is_file(), f"{rule.code}: link to {target}, which is not a file of the repository"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{rule.code}: {target} names no heading of {relative}"


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


def test_the_index_rules_are_the_codes_the_index_judge_emits() -> None:
    """`uses-index = true` decides when the engine loads the index: it must name exactly the codes
    that `analysis/judge.py`'s index verdicts emit."""
    import ast
    import inspect

    from esper_lint.analysis import judge

    source = inspect.getsource(judge._index_verdicts)
    emitted = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"ESP\d{3}", node.value)
    }
    assert emitted and set(catalog.index_codes()) == emitted


def test_the_rules_off_by_default_are_those_the_configuration_leaves_out() -> None:
    """config.OFF_BY_DEFAULT is written out (a clean run never loads the catalog): it must match the
    documents' `default = "off"`."""
    from esper_lint.config import OFF_BY_DEFAULT, code_enabled

    assert {rule.code for rule in RULES if rule.off_by_default} == OFF_BY_DEFAULT == {"ESP002"}
    for rule in RULES:
        assert code_enabled(rule.code, ("ESP",), ()) is not rule.off_by_default
        assert code_enabled(rule.code, (rule.code,), ())


FIXABLE_RULES = [rule for rule in RULES if rule.fix is not None]


@pytest.mark.parametrize("rule", FIXABLE_RULES, ids=lambda r: r.code)
def test_the_fix_turns_the_example_into_what_to_use_instead(rule: catalog.Rule) -> None:
    """`esper-lint check --fix --select CODE` (with --unsafe-fixes for an unsafe fix) makes each
    "Example" of a fixable rule into its "Use instead", byte for byte."""
    from esper_lint.fix import fix_source

    examples, wanted = rule.examples("Example"), rule.examples("Use instead")
    assert len(examples) == len(wanted), f"{rule.code}: one 'Use instead' per 'Example'"
    config = config_from_table(tomllib.loads(rule.example_config), f"rules/{rule.code}.md")
    for example, expected in zip(examples, wanted, strict=True):
        outcome = fix_source(
            example.encode(), "example.py", config, select_enabled=lambda code: code == rule.code, unsafe=rule.fix == "unsafe"
        )
        assert outcome.error is None, outcome.error
        assert outcome.new_source.decode() == expected, f"{rule.code}: --fix gives\n{outcome.new_source.decode()}"
