"""Autofix (esper_lint.fix): each fix kind, its safety checks, file handling, and round trips."""

from __future__ import annotations

import ast
import os
import re
import stat
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fix import FileChangedError, fix_paths, fix_source, unified_diff, write_atomically
from esper_lint.fix import document as fix_document
from esper_lint.fix import files as fix_files
from esper_lint.fix import replace as fix_replace
from esper_lint.fix.analysis import judge_module
from esper_lint.fix.document import FALLBACK_PLACEHOLDER, VERSION_PLACEHOLDER
from esper_lint.names import covers
from fixture_cases import FIX_FIXTURES, FIXTURES, config_lines, config_of, fix_fixture_pairs, fixture_paths, load_case

FIXABLE = ("ESP101", "ESP103", "ESP301")


def fixed(source: str | bytes, config: Config | None = None, **kwargs) -> str:
    raw = source.encode() if isinstance(source, str) else source
    outcome = fix_source(raw, "example.py", config or Config(), **kwargs)
    assert outcome.error is None, outcome.error
    return outcome.new_source.decode("utf-8")


def findings(source: str | bytes, config: Config | None = None) -> list[tuple[int, str, str | None]]:
    return [(f.line, f.code, f.name) for f in analyse_source(source, "example.py", config or Config()).findings]


def codes(source: str | bytes, config: Config | None = None) -> Counter[str]:
    return Counter(code for _, code, _ in findings(source, config))


def is_placeholder(message: str) -> bool:
    return VERSION_PLACEHOLDER in message or FALLBACK_PLACEHOLDER[:40] in message


# ------------------------------------------------------------------------------ ESP301
# The replacements themselves (decorators, calls, from-imports, aliases, imports added and
# dropped) are whole-file fixtures: fixtures/fix/replace_*.py, checked below.
def test_only_reported_esp301_findings_are_fixed() -> None:
    # torch.compiler.disable is public only from 2.1: no ESP301 for a project supporting 1.13.
    config = Config().replace(torch_versions=">=1.13,<2.2", ignore=("ESP101",))
    source = "import torch\n\nf = torch._dynamo.disable\n"
    assert fixed(source, config) == source


def test_a_function_named_like_the_root_is_not_rewritten() -> None:
    source = "def f(torch):\n    return torch._dynamo.disable\n"
    assert fixed(source) == source


# ------------------------------------------------------------------------------ ESP101
# Where blocks go and what they say: fixtures/fix/document_*.py, crlf.py, utf8_bom.py, latin1_*.py.
def test_templates_are_inserted_only_on_request() -> None:
    source = "import torch\n\nx = torch._no_such_api_in_any_release\n"
    outcome = fix_source(source.encode(), "example.py", Config())
    assert outcome.new_source == source.encode() and outcome.applied == []
    assert [(fix.code, fix.template) for fix in outcome.withheld] == [("ESP101", True)]
    templated = fix_source(source.encode(), "example.py", Config(), add_templates=True)
    assert templated.fixes == [] and [fix.line for fix in templated.templates] == [3]


def test_unknown_version_is_a_placeholder_that_keeps_esp102() -> None:
    out = fixed("import torch\n\nx = torch._no_such_api_in_any_release\n", add_templates=True)
    assert f"stable since PyTorch {VERSION_PLACEHOLDER}." in out and FALLBACK_PLACEHOLDER in out
    left = analyse_source(out, "example.py", Config()).findings
    assert [f.code for f in left] == ["ESP102"]
    assert "malformed version" in left[0].message and "does not parse" in left[0].message


def test_latin1_file_keeps_its_encoding() -> None:
    source = "# -*- coding: latin-1 -*-\nimport torch\n\nname = 'café'\nx = torch._foreach_norm\n".encode("latin-1")
    out = fix_source(source, "latin1.py", Config(), add_templates=True).new_source
    text = out.decode("latin-1")
    assert text.startswith("# -*- coding: latin-1 -*-\nimport torch\n") and "name = 'café'" in text
    assert "# NOTE: Private API (torch._foreach_norm)" in text
    assert "ESP102" in {f.code for f in analyse_source(out, "latin1.py", Config()).findings}
    assert "+# NOTE: Private API (torch._foreach_norm)".encode("latin-1") in unified_diff("latin1.py", source, out)


def test_comment_only_fixes_leave_the_ast_identical() -> None:
    source = (FIXTURES / "forms.py").read_bytes()
    config = Config().replace(ignore=("ESP301",))
    out = fix_source(source, "forms.py", config, unsafe=True)
    assert out.applied and out.error is None
    assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(out.new_source))


# ------------------------------------------------------------------------------ ESP103
STALE = (
    "import torch\n\n\ndef f(xs):\n    # keep me\n    # Private API, since PyTorch 1.11; fallback: [x.norm() for x in xs]\n"
    "    return [x.norm() for x in xs]  # Private API too\n"
)


def test_stale_block_is_removed_only_with_unsafe() -> None:
    assert fixed(STALE) == STALE
    out = fixed(STALE, unsafe=True)
    assert out == "import torch\n\n\ndef f(xs):\n    # keep me\n    return [x.norm() for x in xs]\n"
    assert findings(out) == []


def test_stale_fallback_lines_are_removed_with_the_marker() -> None:
    source = (
        "x = 1\n# NOTE: Private API, stable since PyTorch 1.11.\n# If this breaks, fallback is:\n"
        "#   y = 2\n#\n# unrelated note\ny = 2\n"
    )
    assert fixed(source, unsafe=True) == "x = 1\n# unrelated note\ny = 2\n"


def test_blocks_made_stale_by_a_replacement_go_with_unsafe() -> None:
    # torch._C.BoolTensor is torch.BoolTensor (torch re-exports the object): a safe swap.
    source = "import torch\n\n# Private API, since PyTorch 1.6; fallback: torch.BoolTensor\nf = torch._C.BoolTensor\n"
    safe = fixed(source)
    assert "torch.BoolTensor\nf = torch.BoolTensor\n" in safe and codes(safe) == Counter({"ESP103": 1})
    assert fixed(source, unsafe=True) == "import torch\n\nf = torch.BoolTensor\n"


# ------------------------------------------------------------------------------ select / ignore
def test_fixes_respect_select_and_ignore() -> None:
    source = "import torch\n\nf = torch._C.BoolTensor\ng = torch._foreach_norm\n"
    only_301 = fixed(source, Config().replace(select=("ESP301",)), add_templates=True)
    assert "torch.BoolTensor" in only_301 and "NOTE" not in only_301
    no_301 = fixed(source, Config().replace(ignore=("ESP301",)), add_templates=True)
    assert "torch._C.BoolTensor" in no_301 and no_301.count("NOTE: Private API") == 2
    by_callable = fixed(source, select_enabled=lambda code: code != "ESP101", add_templates=True)
    assert "torch.BoolTensor" in by_callable and "NOTE" not in by_callable
    assert fixed(source, Config().replace(ignore=("ESP",)), add_templates=True) == source
    per_file = Config().replace(per_file_ignores=(("example.py", ("ESP1",)),))
    assert "NOTE" not in fixed(source, per_file, add_templates=True)


# ------------------------------------------------------------------------------ safety
def test_nothing_changes_when_a_fix_would_change_other_code(monkeypatch: pytest.MonkeyPatch) -> None:
    source = b"import torch\n\nf = torch._C.BoolTensor\n"
    monkeypatch.setattr(fix_replace, "apply_replacements", lambda module, plan: cst.parse_module(b"import torch\n\nf = 1\n"))
    outcome = fix_source(source, "x.py", Config())
    assert outcome.new_source == source and outcome.applied == []
    assert outcome.error and "changed more code" in outcome.error


def test_nothing_changes_when_a_fix_would_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    source = b"import torch\n\nx = torch._foreach_norm\n"
    comment = cst.Comment("# NOTE: Private API")
    object.__setattr__(comment, "value", "# NOTE: Private API\nx = (")  # what validation would refuse

    monkeypatch.setattr(fix_document, "new_lines", lambda plan: [cst.EmptyLine(comment=comment)])
    outcome = fix_source(source, "x.py", Config(), add_templates=True)
    assert outcome.new_source == source and outcome.applied == []
    assert outcome.error and "does not parse" in outcome.error


def test_unparsable_source_is_returned_unchanged() -> None:
    source = (FIXTURES / "syntax_error.py").read_bytes()
    outcome = fix_source(source, "syntax_error.py", Config(), unsafe=True)
    assert outcome.new_source == source and outcome.applied == [] and outcome.error is None


# ------------------------------------------------------------------------------ files
def test_write_atomically_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.py"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    write_atomically(target, b"new\n", b"old\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_write_atomically_refuses_a_file_changed_during_the_run(tmp_path: Path) -> None:
    target = tmp_path / "a.py"
    target.write_bytes(b"edited meanwhile\n")
    with pytest.raises(FileChangedError):
        write_atomically(target, b"new\n", b"old\n")
    assert target.read_bytes() == b"edited meanwhile\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_write_atomically_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    write_atomically(link, b"new\n", b"old\n")
    assert link.is_symlink() and real.read_bytes() == b"new\n"


def test_fix_paths_diff_mode_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    source = b"import torch\n\nf = torch._C.BoolTensor\n"
    target.write_bytes(source)
    clean = tmp_path / "clean.py"
    clean.write_bytes(b"x = 1\n")
    run = fix_paths([target, clean], Config(), mode="diff", unsafe=False)
    assert target.read_bytes() == source
    assert run.fixed == 1 and run.changed_files == 1 and run.errors == []
    assert run.diff == (
        f"--- {target}\n+++ {target}\n@@ -1,3 +1,3 @@\n import torch\n \n"
        "-f = torch._C.BoolTensor\n+f = torch.BoolTensor\n"
    ).encode()
    run = fix_paths([target, clean], Config(), mode="fix", unsafe=False)
    assert target.read_bytes() == b"import torch\n\nf = torch.BoolTensor\n"
    assert run.fixed == 1 and run.files[0].written and not run.files[1].changed
    again = fix_paths([target, clean], Config(), mode="diff", unsafe=False)
    assert again.fixed == 0 and again.diff == b""


def test_fix_paths_reports_unreadable_files(tmp_path: Path) -> None:
    run = fix_paths([tmp_path / "missing.py"], Config(), mode="fix", unsafe=False)
    assert len(run.errors) == 1 and run.errors[0].startswith(f"{tmp_path / 'missing.py'}: cannot read")


def test_fix_paths_refuses_a_file_changed_during_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"import torch\n\nf = torch._C.BoolTensor\n")
    real_fix = fix_files.fix_source

    def fix_then_edit(source, path, config, **kwargs):
        outcome = real_fix(source, path, config, **kwargs)
        target.write_bytes(b"# edited by a person meanwhile\n")
        return outcome

    monkeypatch.setattr(fix_files, "fix_source", fix_then_edit)
    run = fix_paths([target], Config(), mode="fix", unsafe=False)
    assert target.read_bytes() == b"# edited by a person meanwhile\n"
    assert run.fixed == 0 and len(run.errors) == 1 and "changed on disk" in run.errors[0]


def test_diff_marks_a_missing_final_newline() -> None:
    text = unified_diff("x.py", b"a = 1", b"a = 2")
    assert text.endswith(b"+a = 2\n\\ No newline at end of file\n")


# ------------------------------------------------------------------------------ whole-file fixtures
# fixtures/fix/NAME.py is fixed (the safe fixes, with the file's `# esper-lint-config:` lines) into
# exactly fixtures/fix/NAME.fixed.py; a file with nothing to fix has an identical NAME.fixed.py.
FIX_PAIRS = fix_fixture_pairs()
_HUNK = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _lines(data: bytes) -> list[bytes]:
    """Lines split at LF only, so a CR stays part of its line (CRLF files and their diffs)."""
    return re.findall(rb"[^\n]*\n|[^\n]+\Z", data)


def _diffs_by_file(diff: bytes) -> dict[str, list[tuple[int, list[bytes]]]]:
    """A multi-file unified diff, read by its hunk counts: {path: [(old start, hunk lines)]}."""
    lines, i, files = _lines(diff), 0, {}
    while i < len(lines):
        assert lines[i].startswith(b"--- ") and lines[i + 1].startswith(b"+++ "), lines[i : i + 2]
        hunks = files.setdefault(lines[i][4:].rstrip(b"\n").decode(), [])
        i += 2
        while i < len(lines) and lines[i].startswith(b"@@ "):
            match = _HUNK.match(lines[i])
            assert match, lines[i]
            old = 1 if match.group(2) is None else int(match.group(2))
            new = 1 if match.group(4) is None else int(match.group(4))
            body, i = [], i + 1
            while old or new:
                tag = lines[i][:1]
                old -= tag in (b" ", b"-")
                new -= tag in (b" ", b"+")
                body.append(lines[i])
                i += 1
                if i < len(lines) and lines[i].startswith(b"\\"):
                    body.append(lines[i])
                    i += 1
            hunks.append((int(match.group(1)), body))
    return files


def _patched(original: bytes, hunks: list[tuple[int, list[bytes]]]) -> bytes:
    old, out, position = _lines(original), [], 0
    for start, body in hunks:
        start = max(start - 1, 0) if any(line[:1] in (b" ", b"-") for line in body) else start
        out.extend(old[position:start])
        position = start
        for index, line in enumerate(body):
            if line.startswith(b"\\"):
                continue
            tag, text = line[:1], line[1:]
            if index + 1 < len(body) and body[index + 1].startswith(b"\\"):
                text = text[:-1]  # "\\ No newline at end of file"
            if tag in (b" ", b"-"):
                assert old[position] == text, (position + 1, old[position], text)
                position += 1
            if tag in (b" ", b"+"):
                out.append(text)
    return b"".join(out + old[position:])


def _fixture_config(path: Path) -> Config:
    # The project root is the fixtures' folder (no line length configured: 88), as in the CLI runs.
    return config_of(path.read_bytes(), str(path)).replace(project_root=FIX_FIXTURES)


# `# esper-lint-fix: --unsafe-fixes --add-templates` in a fix fixture: the options it is fixed with.
_FIX_OPTIONS = re.compile(rb"^# esper-lint-fix: (.*)$", re.M)
_OPTION_ARGUMENTS = {"--unsafe-fixes": "unsafe", "--add-templates": "add_templates"}


def _fix_options(raw: bytes) -> list[str]:
    options = [word.decode() for line in _FIX_OPTIONS.findall(raw) for word in line.split()]
    unknown = set(options) - set(_OPTION_ARGUMENTS)
    assert not unknown, f"unknown fix options {unknown}"
    return options


def _fix_kwargs(raw: bytes) -> dict[str, bool]:
    return {_OPTION_ARGUMENTS[option]: True for option in _fix_options(raw)}


_LEAVES = re.compile(rb"^# esper-lint-fix-leaves: (ESP\d{3})\[(\S+)\]", re.M)


def _after_fix_leaves_only_what_a_person_must_do(before: bytes, after: bytes, path: Path, withheld=()) -> None:
    """What `check` reports on the fixed file: ESP101 or ESP301 only where the fix was withheld
    (display-only, unsafe, a template not asked for) or the fixture says it is left
    (`# esper-lint-fix-leaves: ESP101[name]`, e.g. in the except branch of a fallback idiom) or a
    template above it in its scope covers it; ESP102
    only for the fixer's placeholders (or blocks a person wrote wrongly before), anything else only
    if it was there before."""
    config = _fixture_config(path)
    was = Counter((f.code, f.name) for f in analyse_source(before, str(path), config).findings)
    left = {(fix.code, fix.name) for fix in withheld} | {(c.decode(), n.decode()) for c, n in _LEAVES.findall(before)}
    found = analyse_source(after, str(path), config).findings
    templated = {f.name for f in found if f.code == "ESP102" and is_placeholder(f.message) and f.name}
    for finding in found:
        if finding.code == "ESP101" and any(covers(name, finding.name) for name in templated):
            continue  # a later use in the scope of a template: covered once a person fills it in
        if finding.code in ("ESP101", "ESP301"):
            assert (finding.code, finding.name) in left, finding
            continue
        if finding.code == "ESP102" and is_placeholder(finding.message):
            continue
        assert (finding.code, finding.name) in was, finding


def test_the_fix_fixtures_are_pairs() -> None:
    assert len(FIX_PAIRS) >= 15
    names = {p.name for p in FIX_FIXTURES.glob("*.py")}
    assert names == {p.name for pair in FIX_PAIRS for p in pair}, "every NAME.py needs a NAME.fixed.py and back"
    assert any(source.read_bytes() == expected.read_bytes() for source, expected in FIX_PAIRS), "a no-op pair"
    assert any(b"\r\n" in source.read_bytes() for source, _ in FIX_PAIRS), "a CRLF pair"


@pytest.mark.parametrize(("source", "expected"), FIX_PAIRS, ids=lambda p: p.name)
def test_fix_source_gives_the_expected_file_and_is_idempotent(source: Path, expected: Path) -> None:
    raw, want = source.read_bytes(), expected.read_bytes()
    config = _fixture_config(source)
    options = _fix_kwargs(raw)
    outcome = fix_source(raw, str(source), config, **options)
    assert outcome.error is None, outcome.error
    assert outcome.new_source == want, unified_diff(expected.name, want, outcome.new_source)
    assert bool(outcome.applied) == (raw != want)
    ast.parse(want)
    again = fix_source(want, str(expected), config, **options)
    assert again.new_source == want and again.applied == [] and again.error is None
    _after_fix_leaves_only_what_a_person_must_do(raw, want, source, outcome.withheld)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[tuple[int, list[bytes]]] | None, bytes, bytes]]:
    """`esper-lint check --diff`, then `--fix`, on copies of the inputs, one folder per configuration:
    {name: (the diff's hunks for the file or None, the file after --diff, the file after --fix)}."""
    import subprocess
    import sys

    groups: dict[tuple[str, tuple[str, ...]], list[Path]] = {}
    for source, _ in FIX_PAIRS:
        raw = source.read_bytes()
        groups.setdefault((config_lines(raw), tuple(_fix_options(raw))), []).append(source)
    results = {}
    for number, ((table, options), sources) in enumerate(groups.items()):
        folder = tmp_path_factory.mktemp(f"fix{number}")
        (folder / "pyproject.toml").write_text(f'[project]\nname = "fixtures"\n\n[tool.esper-lint]\n{table}\n')
        names = [source.name for source in sources]
        for source in sources:
            (folder / source.name).write_bytes(source.read_bytes())
        command = [sys.executable, "-m", "esper_lint", "check", "--no-cache", *options]
        diff = subprocess.run([*command, "--diff", *names], cwd=folder, capture_output=True, timeout=300)
        assert diff.returncode in (0, 1) and not diff.stderr, diff.stderr.decode(errors="replace")
        after_diff = {name: (folder / name).read_bytes() for name in names}
        fix = subprocess.run([*command, "--fix", *names], cwd=folder, capture_output=True, timeout=300)
        assert fix.returncode in (0, 1) and b"Traceback" not in fix.stderr, fix.stderr.decode(errors="replace")
        per_file = _diffs_by_file(diff.stdout)
        for name in names:
            results[name] = (per_file.get(name), after_diff[name], (folder / name).read_bytes())
    return results


@pytest.mark.parametrize(("source", "expected"), FIX_PAIRS, ids=lambda p: p.name)
def test_cli_fix_writes_the_expected_file(source: Path, expected: Path, cli_runs) -> None:
    assert cli_runs[source.name][2] == expected.read_bytes()


@pytest.mark.parametrize(("source", "expected"), FIX_PAIRS, ids=lambda p: p.name)
def test_cli_diff_applies_to_give_the_expected_file(source: Path, expected: Path, cli_runs) -> None:
    hunks, after_diff, _ = cli_runs[source.name]
    raw, want = source.read_bytes(), expected.read_bytes()
    assert after_diff == raw, "--diff changed the file"
    assert (hunks is None) == (raw == want)
    assert _patched(raw, hunks or []) == want


# ------------------------------------------------------------------------------ round trips
ROUND_TRIP = [path for path in fixture_paths() if path.name != "syntax_error.py"]


@pytest.mark.parametrize("path", ROUND_TRIP, ids=lambda p: p.name)
def test_every_fixture_round_trips(path: Path) -> None:
    case = load_case(path)
    source = case.source.encode()
    before = analyse_source(source, str(path), case.config).findings
    outcome = fix_source(source, str(path), case.config, unsafe=True, add_templates=True)
    assert outcome.error is None
    new = outcome.new_source
    cst.parse_module(new)
    ast.parse(new)
    after = analyse_source(new, str(path), case.config).findings
    # Left: swaps not applied (display-only), uses in the except branch of a fallback idiom, and
    # later uses in the scope of a template (one per scope: they are covered once it is filled in).
    withheld = {(fix.code, fix.name) for fix in outcome.withheld}
    templated = {f.name for f in after if f.code == "ESP102" and is_placeholder(f.message) and f.name}
    assert all(fix.applicability == "display-only" and not fix.template for fix in outcome.withheld)
    judged = judge_module(cst.parse_module(new), new, str(path), case.config)
    branches = fix_document.except_branches_of_fallback_idioms(judged)
    in_branches = {r.name for r in judged.collection.references if id(r.statement.node) in branches}
    for finding in after:
        if finding.code == "ESP301":
            assert (finding.code, finding.name) in withheld, finding
        elif finding.code == "ESP101":
            assert finding.name in in_branches or any(covers(name, finding.name) for name in templated), finding
        else:
            assert finding.code not in FIXABLE, finding
    # ESP102s left: the fixer's placeholders, or blocks a person wrote wrongly before
    written_before = Counter(f.name for f in before if f.code == "ESP102")
    other_102 = Counter(f.name for f in after if f.code == "ESP102" and not is_placeholder(f.message))
    assert other_102 <= written_before
    placeholders = sum(1 for f in after if f.code == "ESP102" and is_placeholder(f.message))
    assert placeholders >= sum(1 for f in outcome.applied if "placeholders" in f.description)
    again = fix_source(new, str(path), case.config, unsafe=True, add_templates=True)
    assert again.new_source == new and again.applied == [] and again.error is None
    if not any(f.code == "ESP301" for f in outcome.applied):
        assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(new))


def test_the_fixable_fixture_becomes_what_it_should() -> None:
    case = load_case(FIXTURES / "fixable.py")
    out = fix_source(case.source.encode(), "fixable.py", case.config, unsafe=True, add_templates=True)
    text = out.new_source.decode()
    assert "from torch.compiler import disable as off\n" in text
    assert "from torch._dynamo import config\nfrom torch.compiler import reset\n" in text
    assert "@th.compiler.disable\n" in text
    assert "return torch.utils.data.default_collate(batch)" in text
    assert "# the norms of every gradient at once\n        # NOTE: Private API (torch._foreach_norm)" in text
    assert "# NOTE: Private API (torch._foreach_norm, torch._foreach_mul), stable since PyTorch 1.11." in text
    assert "fallback: [x.norm() for x in xs]" not in text
    assert Counter(f.code for f in out.applied) == Counter({"ESP301": 4, "ESP101": 3, "ESP103": 1})
    assert len(out.templates) == 3 and all(f.code == "ESP101" for f in out.templates)  # one per block


def test_a_sample_of_torchs_own_sources_round_trips() -> None:
    """The bulk script on a fixed sample of torch's sources (the full run: benchmarks/fix_torch_sources.py)."""
    import importlib.util
    import sys

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (install the `test` extra)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import fix_torch_sources
    finally:
        sys.path.pop(0)
    sample = int(os.environ.get("ESPER_FIX_TORCH_SAMPLE", "40"))
    assert fix_torch_sources.run(sample=sample, jobs=2, quiet=True) == 0


# ------------------------------------------------------------------------------ applicability
def _replacement(name: str):
    from esper_lint.torch_index import load_index

    found = load_index().replacement(name)
    assert found is not None, name
    return found


def test_a_drop_in_swap_public_in_the_whole_range_is_safe() -> None:
    from esper_lint.fix.safety import applicable_releases, rewrite_applicability
    from esper_lint.torch_index import load_index

    index = load_index()
    releases = applicable_releases(">=2.1,<2.16", index)
    assert releases.declared and releases.releases[0] == "2.1"
    kind, reason = rewrite_applicability(_replacement("torch._C._autograd.kineto_available"), releases, index)
    assert kind == "safe", reason


def test_a_replacement_missing_from_a_release_of_the_range_is_display_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.compiler.PrecompileError is public from 2.14: with torch 2.13 installed and no declared
    # range, the range is 2.13 and newer, and the swap would break on 2.13.
    from esper_lint.fix import safety
    from esper_lint.torch_index import load_index

    index = load_index()
    monkeypatch.setattr(safety, "installed_torch_release", lambda: "2.13")
    releases = safety.applicable_releases(None, index)
    assert not releases.declared and releases.releases[0] == "2.13"
    assert "installed torch 2.13 and newer (no declared range)" in releases.description
    kind, reason = safety.rewrite_applicability(_replacement("torch._precompile.PrecompileError"), releases, index)
    assert kind == "display-only" and "missing from torch 2.13" in reason
    monkeypatch.setattr(safety, "installed_torch_release", lambda: "2.14")
    newer = safety.applicable_releases(None, index)
    kind, _ = safety.rewrite_applicability(_replacement("torch._precompile.PrecompileError"), newer, index)
    assert kind == "safe"


def test_without_any_range_a_swap_must_hold_in_every_indexed_release(monkeypatch: pytest.MonkeyPatch) -> None:
    from esper_lint.fix import safety
    from esper_lint.torch_index import load_index

    index = load_index()
    monkeypatch.setattr(safety, "installed_torch_release", lambda: None)
    releases = safety.applicable_releases(None, index)
    assert releases.releases == index.releases and releases.unknown and "no installed torch" in releases.description
    # torch.BoolTensor is in every indexed release: safe whatever the range; torch.profiler's
    # kineto_available is not in 1.6-1.12: unsafe, since nobody said whether the code runs there.
    assert safety.rewrite_applicability(_replacement("torch._C.BoolTensor"), releases, index)[0] == "safe"
    kind, reason = safety.rewrite_applicability(_replacement("torch._C._autograd.kineto_available"), releases, index)
    assert kind == "unsafe" and "set torch-versions" in reason


def test_the_index_label_decides_between_drop_in_and_suggestion() -> None:
    from esper_lint.fix.safety import applicable_releases, replacement_kind, rewrite_applicability
    from esper_lint.torch_index import load_index

    index = load_index()
    releases = applicable_releases(">=2.5,<2.16", index)
    drop_in = _replacement("torch._dynamo.disable")  # torch.compiler.disable calls it (the builder's evidence)
    assert drop_in.applicability == "drop-in" and replacement_kind(drop_in, index) == "drop-in"
    assert rewrite_applicability(drop_in, releases, index)[0] == "safe"
    suggestion = _replacement("torch._C._get_tracing_state")  # a TracingState or None against a bool
    assert suggestion.applicability == "suggestion" and replacement_kind(suggestion, index) == "suggestion"
    kind, reason = rewrite_applicability(suggestion, releases, index)
    assert kind == "display-only" and "suggestion" in reason
    older = applicable_releases(">=2.0,<2.16", index)  # torch.compiler.disable arrived in 2.1
    assert rewrite_applicability(drop_in, older, index)[0] == "display-only"


def test_a_name_mapped_through_its_modules_entry_is_a_suggestion() -> None:
    from esper_lint.fix.safety import replacement_kind
    from esper_lint.torch_index import load_index

    index = load_index()
    mapped = index.replacement("torch.distributed._tensor.not_an_indexed_helper")
    assert mapped is not None and mapped.replacement == "torch.distributed.tensor.not_an_indexed_helper"
    assert replacement_kind(mapped, index) == "suggestion"


def test_withheld_swaps_are_listed_with_the_reason() -> None:
    config = Config().replace(torch_versions=">=2.1,<2.16")
    source = b"import torch\n\nf = torch._C._get_tracing_state\n"  # a suggestion: a TracingState or None, not a bool
    outcome = fix_source(source, "x.py", config)
    swaps = [fix for fix in outcome.withheld if fix.code == "ESP301"]
    assert [(fix.line, fix.applicability) for fix in swaps] == [(3, "display-only")]
    assert swaps[0].description == "replace `torch._C._get_tracing_state` with `torch.jit.is_tracing`"
    assert "suggestion" in swaps[0].reason
    unsafe = fix_source(source, "x.py", config, unsafe=True)  # display-only: never applied
    assert b"torch.jit.is_tracing" not in unsafe.new_source
    assert not [fix for fix in unsafe.applied if fix.code == "ESP301"]


def test_esp103_is_listed_but_not_applied_without_unsafe() -> None:
    outcome = fix_source(STALE.encode(), "x.py", Config(), show_withheld=True)
    assert outcome.new_source == STALE.encode()
    assert [(fix.code, fix.applicability) for fix in outcome.withheld] == [("ESP103", "unsafe")]


# ------------------------------------------------------------------------------ documentation honesty
def test_since_comes_only_from_the_exact_name() -> None:
    from esper_lint.fix.document import exact_since
    from esper_lint.torch_index import load_index

    index = load_index()
    assert exact_since(index, "torch._foreach_norm").release == "1.11"
    assert not exact_since(index, "torch._foreach_norm").at_least
    assert exact_since(index, "torch._C._nn").at_least  # in 1.6, the first indexed release
    assert exact_since(index, "torch.ops._c10d_functional.all_reduce") is None  # only torch.ops is indexed
    assert exact_since(index, "torch.ops.torchrec._jagged_to_padded") is None
    assert exact_since(index, "torch._foreach_norm.not_indexed_below_it") is None
    assert exact_since(index, "numpy._core") is None


def test_one_template_per_scope_is_idempotent_with_add_templates() -> None:
    source = "import torch\n\n\nclass C:\n    a = torch.jit._drop\n    b = torch.jit._drop\n"
    once = fixed(source, add_templates=True)
    assert once.count("NOTE: Private API") == 1
    assert fixed(once, add_templates=True) == once


# ------------------------------------------------------------------------------ style
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 88),
        ({"pyproject.toml": "[tool.ruff]\nline-length = 120\n[tool.black]\nline-length = 100\n"}, 120),
        ({"pyproject.toml": "[tool.black]\nline-length = 100\n"}, 100),
        ({"ruff.toml": "line-length = 79\n", "pyproject.toml": "[tool.ruff]\nline-length = 120\n"}, 79),
        ({"setup.cfg": "[flake8]\nmax-line-length = 110\n"}, 110),
        ({"tox.ini": "[flake8]\nmax_line_length = 99\n"}, 99),
        ({".flake8": "[flake8]\nmax-line-length = 101\n", "setup.cfg": "[flake8]\nmax-line-length = 110\n"}, 101),
        ({"pyproject.toml": "[tool.ruff]\nline-length = 'wide'\n"}, 88),  # not a number: passed over
        ({"pyproject.toml": "not toml ["}, 88),
        ({"setup.cfg": "[flake8\nmax-line-length = 110\n"}, 88),
    ],
)
def test_the_project_line_length_is_read_like_the_formatters(tmp_path: Path, files: dict[str, str], expected: int) -> None:
    from esper_lint.fix.style import project_line_length

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert project_line_length(tmp_path) == expected


def test_inserted_lines_respect_the_project_line_length(tmp_path: Path) -> None:
    from esper_lint.fix.style import project_line_length

    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 64\n")
    source = "import torch\n\n\ndef f(xs):\n    return torch._foreach_norm(xs), torch._foreach_mul(xs, 2)\n"
    out = fixed(source, Config().replace(project_root=tmp_path), add_templates=True)
    assert max(len(line) for line in out.splitlines() if line.lstrip().startswith("#")) <= 64
    assert "# NOTE: Private API (torch._foreach_norm," in out and "since PyTorch 1.11." in out
    assert codes(out) == Counter({"ESP102": 2})  # a template: still to fill in, but read as one block
    # A line that cannot be wrapped (the placeholder is one line of code) and does not fit: no block.
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 60\n")
    project_line_length.cache_clear()
    assert fixed(source, Config().replace(project_root=tmp_path), add_templates=True) == source


# ------------------------------------------------------------------------------ command line
def _cli(folder: Path, *arguments: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", *arguments], cwd=folder, capture_output=True, timeout=300
    )


def test_cli_counts_templates_apart_from_fixes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.esper-lint]\ntorch-versions = ">=2.1,<2.16"\n')
    target = tmp_path / "m.py"
    source = b"import torch\n\nf = torch._C.BoolTensor\ng = torch._foreach_norm\nh = torch._C._get_tracing_state\n"
    target.write_bytes(source)
    run = _cli(tmp_path, "--fix", "m.py")
    assert run.returncode == 1
    lines = run.stderr.decode().strip().splitlines()
    summary = next(line for line in lines if line.startswith("esper-lint: fixed"))
    # what is left is reported, and none of it is promised to --fix: the fixer withheld it
    assert lines[-1] == "Found 3 findings.", lines
    assert summary == (
        "esper-lint: fixed 1 finding(s) in 1 file(s); not applied: 1 display-only fix(es) (--show-fixes lists them), "
        "2 template(s) with --add-templates"
    ), summary
    assert b"<FALLBACK" not in target.read_bytes()
    run = _cli(tmp_path, "--fix", "--add-templates", "m.py")
    assert "inserted 2 template(s) to fill in" in run.stderr.decode() and "fixed 0 finding(s)" in run.stderr.decode()
    assert target.read_bytes().count(b"<FALLBACK") == 2  # one per module-level statement, as check judges them


def test_cli_show_fixes_lists_every_fix_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.esper-lint]\ntorch-versions = ">=2.1,<2.16"\n')
    target = tmp_path / "m.py"
    source = b"import torch\n\nf = torch._C.BoolTensor\ng = torch._foreach_norm\nh = torch._C._get_tracing_state\n"
    target.write_bytes(source)
    run = _cli(tmp_path, "--show-fixes", "m.py")
    assert target.read_bytes() == source
    lines = run.stderr.decode().splitlines()
    assert "m.py:3: ESP301 replace `torch._C.BoolTensor` with `torch.BoolTensor` [would apply]" in lines
    assert any(line.startswith("m.py:4: ESP101 insert a documentation template") and "with --add-templates" in line for line in lines)
    shown = [line for line in lines if line.startswith("m.py:5: ESP301 replace `torch._C._get_tracing_state`")]
    assert len(shown) == 1 and "[display-only:" in shown[0]


def test_cli_add_templates_needs_fix_or_diff(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    run = _cli(tmp_path, "--add-templates", "m.py")
    assert run.returncode == 2 and b"--add-templates needs --fix" in run.stderr


def test_a_noqa_comment_keeps_the_fixer_off_its_line() -> None:
    """`check` does not report what `# noqa` suppresses, so `--fix` does not touch it either."""
    source = b"import torch\n\ntorch._dynamo.disable(f)  # noqa: ESP101\ntorch._dynamo.disable(g)\n"
    outcome = fix_source(source, "m.py", Config(torch_versions=">=2.0,<2.16"))  # no swap: 2.0 lacks torch.compiler
    lines = outcome.new_source.decode().splitlines()
    assert lines[2] == "torch._dynamo.disable(f)  # noqa: ESP101"  # no block above it
    assert lines[3].startswith("# NOTE: Private API (torch._dynamo.disable)")
    assert [fix.line for fix in outcome.applied if fix.code == "ESP101"] == [4]
    everything = fix_source(b"import torch\n\ntorch._dynamo.disable(f)  # noqa\n", "m.py", Config(), unsafe=True)
    assert everything.new_source == b"import torch\n\ntorch._dynamo.disable(f)  # noqa\n" and everything.applied == []


def test_the_installed_torch_release_is_the_one_importlib_metadata_reports() -> None:
    import importlib.metadata

    from esper_lint.fix import safety
    from esper_lint.torch_index.versions import minor_release

    try:
        expected: str | None = minor_release(importlib.metadata.version("torch").split("+")[0])
    except importlib.metadata.PackageNotFoundError:
        expected = None
    assert safety.installed_torch_release() == expected
