"""One answer from every door: `esper-lint check .`, the pre-commit hook's call (`esper-lint check`
with the files named, as pre-commit passes them) and `flake8 --select ESP` report the same findings
on every fixture, with noqa comments and configuration in play.

The project built here holds every fixture (but the syntax error, which flake8 reports as its own
E999 and never hands to plugins), with noqa comments of every kind added on the lines that have
findings, a root `[tool.esper-lint]` with `per-file-ignores` and ESP002 on, and, for the fixtures
that carry their own configuration, a nested `esper-lint.toml` that governs their folder only.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_cases import FIXTURES, config_lines, fixture_paths, load_case

ROOT = Path(__file__).resolve().parent.parent
Row = tuple[str, int, int, str]

# The noqa comments added in turn to the lines the fixtures expect findings on: specific, bare,
# another tool's code, a prefix, none, and a code that suppresses nothing there (ESP002's case).
VARIANTS = ("  # noqa: {code}", "  # noqa", "  # noqa: E501", "  # noqa: {prefix}", "", "  # noqa:ESP301,ESP203")


def _with_noqa(source: str, lines: list[tuple[int, str]]) -> str:
    """The fixture with noqa comments appended where the result still parses the same way."""
    text = source.splitlines(keepends=True)
    for turn, (number, code) in enumerate(lines):
        variant = VARIANTS[turn % len(VARIANTS)]
        if not variant:
            continue
        original = text[number - 1]
        body = original.rstrip("\r\n")
        if body.endswith("\\"):
            continue
        text[number - 1] = body + variant.format(code=code, prefix=code[:4]) + original[len(body) :]
        try:
            ast.parse("".join(text))
        except SyntaxError:  # the line ends inside a string: leave it as it was
            text[number - 1] = original
    return "".join(text)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity") / "project"
    (root / ".git").mkdir(parents=True)  # the repository's root: the configuration search stops here
    (root / "pyproject.toml").write_text(
        '[tool.esper-lint]\nselect = ["ESP", "ESP002"]\nper-file-ignores = { "plain/forms.py" = ["ESP101"] }\n'
        # A valid central declaration documents its uses under every door alike.
        '[tool.esper-lint.private-apis."torch._foreach_norm"]\nsince = "1.11"\nfallback = "[g.norm() for g in grads]"\n',
        encoding="utf-8",
    )
    for path in fixture_paths():
        if path.name == "syntax_error.py":
            continue
        case = load_case(path)
        lines = sorted({(item.line, item.code) for item in case.expected})
        own = config_lines(path.read_bytes())
        folder = root / (path.stem if own else "plain")
        folder.mkdir(exist_ok=True)
        if own:
            (folder / "esper-lint.toml").write_text(own + '\nselect = ["ESP", "ESP002"]\n', encoding="utf-8")
        (folder / path.name).write_text(_with_noqa(case.source, lines), encoding="utf-8")
    example = root / "example"  # the README's example, as it stands
    example.mkdir()
    for path in (FIXTURES / "example").glob("*.py"):
        (example / path.name).write_bytes(path.read_bytes())
    return root


def _cli(project: Path, *paths: str) -> set[Row]:
    result = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", "--format", "json", *paths],
        cwd=project, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    return {(Path(r["path"]).as_posix(), r["line"], r["column"], r["code"]) for r in json.loads(result.stdout)}


def _flake8(project: Path) -> set[Row]:
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "ESP", "--format=%(path)s|%(row)d|%(col)d|%(code)s", "."],
        cwd=project, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    rows = (line.split("|") for line in result.stdout.splitlines())
    return {(Path(p).as_posix(), int(r), int(c), code) for p, r, c, code in rows}


def test_cli_hook_and_flake8_agree_on_every_fixture_with_noqa_and_configuration(project: Path) -> None:
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*.py"))
    everything = _cli(project, ".")
    assert not any(path.endswith(".toml") for path, _, _, _ in everything)  # the declaration is valid and used
    cli = {row for row in everything if row[0].endswith(".py")}
    hook = _cli(project, *files)
    flake8 = _flake8(project)
    assert cli == hook == flake8, (sorted(cli ^ flake8), sorted(cli ^ hook))
    # The comments and the configuration were in play, not beside the point:
    codes = {row[3] for row in cli}
    assert "ESP002" in codes  # the comments listing ESP301 and ESP203 in vain (ESP002 is on at the root and nested)
    assert not any(path == "plain/forms.py" and code == "ESP101" for path, _, _, code in cli)  # per-file-ignores
    assert {path.split("/")[0] for path, _, _, _ in cli} >= {"plain", "typing_only_checked", "index_checks", "example"}


@pytest.mark.parametrize("folder", ["typing_only_checked", "index_checks"])
def test_a_sub_package_configuration_applies_whichever_paths_are_given(project: Path, folder: str) -> None:
    """`check .` and `check FOLDER` judge the nested folder under its own esper-lint.toml."""
    whole = {row for row in _cli(project, ".") if row[0].startswith(f"{folder}/")}
    alone = _cli(project, folder)
    assert whole and alone == whole
    # and that configuration is not the root's: under it, the same file gives other findings
    (project / "elsewhere").mkdir(exist_ok=True)
    source = next((project / folder).glob("*.py"))
    (project / "elsewhere" / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        under_root = {(line, column, code) for _, line, column, code in _cli(project, "elsewhere")}
    finally:
        (project / "elsewhere" / source.name).unlink()
        (project / "elsewhere").rmdir()
    assert under_root != {(line, column, code) for _, line, column, code in whole}
