"""Autofix (esper_lint.fix): each fix kind, its safety checks, file handling, and round trips."""

from __future__ import annotations

import ast
import os
import stat
from collections import Counter
from dataclasses import replace
from pathlib import Path

import libcst as cst
import pytest

from esper_lint.fix import api as fixes
from esper_lint.fix import files as fix_files
from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fix import FileChangedError, fix_paths, fix_source, unified_diff, write_atomically
from esper_lint.fix.document import FALLBACK_PLACEHOLDER, VERSION_PLACEHOLDER
from fixture_cases import FIXTURES, fixture_paths, load_case

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
def test_attribute_chain_is_rewritten_in_place() -> None:
    out = fixed("import torch\n\n\ndef f(fn):\n    return torch._dynamo.disable(fn, recursive=False)\n")
    assert "return torch.compiler.disable(fn, recursive=False)\n" in out
    assert "_dynamo" not in out and findings(out) == []


def test_the_users_alias_is_kept() -> None:
    out = fixed("import torch as th\n\n\n@th._dynamo.disable\ndef f():\n    pass\n")
    assert out == "import torch as th\n\n\n@th.compiler.disable\ndef f():\n    pass\n"


def test_from_import_moves_to_the_public_module() -> None:
    assert fixed("from torch._dynamo import disable\n") == "from torch.compiler import disable\n"
    assert fixed("from torch._dynamo import disable as d\n") == "from torch.compiler import disable as d\n"


def test_a_renamed_replacement_keeps_the_local_name() -> None:
    out = fixed("from torch._C import _get_tracing_state\n\nx = _get_tracing_state()\n")
    assert out.startswith("from torch.jit import is_tracing as _get_tracing_state\n")


def test_from_import_with_names_staying_private_is_split() -> None:
    out = fixed("from torch._dynamo import reset, config  # tuning\n", unsafe=True)
    assert "from torch._dynamo import config  # tuning\nfrom torch.compiler import reset\n" in out


def test_from_import_whose_names_move_to_several_modules() -> None:
    only_301 = {"select_enabled": lambda code: code == "ESP301"}
    assert fixed("from torch._C import AnyType, BoolTensor\n", **only_301) == (
        "from torch.jit.annotations import AnyType\nfrom torch import BoolTensor\n"
    )


def test_an_import_is_added_when_import_torch_may_not_load_the_module() -> None:
    out = fixed("import torch\n\n\ndef shard(m):\n    return torch.distributed._composable.fsdp.fully_shard(m)\n")
    assert out.startswith("import torch\nimport torch.distributed.fsdp\n")
    assert "return torch.distributed.fsdp.fully_shard(m)" in out
    assert findings(out) == []


def test_no_import_is_added_for_a_module_import_torch_loads() -> None:
    out = fixed("import torch\n\n\ndef collate(b):\n    return torch.utils.data._utils.collate.default_collate(b)\n")
    assert out == "import torch\n\n\ndef collate(b):\n    return torch.utils.data.default_collate(b)\n"


def test_the_import_follows_the_docstring_and_future_imports() -> None:
    source = '"""Doc."""\nfrom __future__ import annotations\n\nimport torch.distributed as dist\n\nx = dist._tensor.DTensor\n'
    out = fixed(source)
    assert out == (
        '"""Doc."""\nfrom __future__ import annotations\n\nimport torch.distributed as dist\n'
        "import torch.distributed.tensor\n\nx = dist.tensor.DTensor\n"
    )


def test_a_private_import_no_longer_used_is_removed() -> None:
    source = "import torch\nimport torch._dynamo\n\n\n@torch._dynamo.disable\ndef f():\n    pass\n"
    assert fixed(source) == "import torch\n\n\n@torch.compiler.disable\ndef f():\n    pass\n"


def test_a_removed_private_import_still_binds_the_root_when_needed() -> None:
    source = "import torch._dynamo\n\n\n@torch._dynamo.disable\ndef f():\n    pass\n"
    assert fixed(source) == "import torch\n\n\n@torch.compiler.disable\ndef f():\n    pass\n"


def test_a_private_import_still_used_is_kept() -> None:
    source = "import torch._dynamo\n\ntorch._dynamo.config.verbose = True\ntorch._dynamo.reset()\n"
    out = fixed(source, replace(Config(), ignore=("ESP101",)))
    assert out == "import torch._dynamo\n\ntorch._dynamo.config.verbose = True\ntorch.compiler.reset()\n"


def test_only_reported_esp301_findings_are_fixed() -> None:
    # torch.compiler.disable is public only from 2.1: no ESP301 for a project supporting 1.13.
    config = replace(Config(), torch_versions=">=1.13,<2.2", ignore=("ESP101",))
    source = "import torch\n\nf = torch._dynamo.disable\n"
    assert fixed(source, config) == source


def test_a_function_named_like_the_root_is_not_rewritten() -> None:
    source = "def f(torch):\n    return torch._dynamo.disable\n"
    assert fixed(source) == source


# ------------------------------------------------------------------------------ ESP101
def test_block_in_the_first_layout_with_since_from_the_index() -> None:
    out = fixed("import torch\n\n\ndef norms(xs):\n    return torch._foreach_norm(xs)\n")
    assert out == (
        "import torch\n\n\ndef norms(xs):\n"
        "    # NOTE: Private API (torch._foreach_norm), stable since PyTorch 1.11.\n"
        "    # If this breaks in future PyTorch, fallback is:\n"
        f"    #   {FALLBACK_PLACEHOLDER}\n"
        "    return torch._foreach_norm(xs)\n"
    )
    left = analyse_source(out, "example.py", Config()).findings
    assert [f.code for f in left] == ["ESP102"] and is_placeholder(left[0].message)
    assert "since PyTorch 1.11" in out  # no ESP201 either: the index agrees


def test_fallback_from_the_replacement_registry_makes_a_valid_block() -> None:
    config = replace(Config(), torch_versions=">=2.0,<2.2")  # torch.compiler is not public in 2.0: no ESP301
    out = fixed("import torch\n\nstep = torch._dynamo.disable(step)\n", config)
    assert out == (
        "import torch\n\n"
        "# NOTE: Private API (torch._dynamo.disable), stable since PyTorch 2.0.\n"
        "# If this breaks in future PyTorch, fallback is:\n"
        "#   torch.compiler.disable\n"
        "step = torch._dynamo.disable(step)\n"
    )
    assert findings(out, config) == []  # a valid block: documented, and the index agrees with 2.0


def test_unknown_version_is_a_placeholder_that_keeps_esp102() -> None:
    out = fixed("import torch\n\nx = torch._no_such_api_in_any_release\n")
    assert f"stable since PyTorch {VERSION_PLACEHOLDER}." in out and FALLBACK_PLACEHOLDER in out
    left = analyse_source(out, "example.py", Config()).findings
    assert [f.code for f in left] == ["ESP102"]
    assert "malformed version" in left[0].message and "does not parse" in left[0].message


def test_one_block_per_statement_with_the_latest_first_release() -> None:
    out = fixed("import torch\n\n\ndef f(xs):\n    return torch._foreach_norm(xs) + torch._foreach_mul(xs, 2)\n")
    assert out.count("Private API") == 1
    assert "# NOTE: Private API (torch._foreach_norm, torch._foreach_mul), stable since PyTorch 1.11." in out


def test_decorated_definition_gets_the_block_above_its_first_decorator() -> None:
    config = replace(Config(), ignore=("ESP301",))
    source = "import torch\n\n\n# keeps this comment\n@staticmethod\n@torch._dynamo.disable\ndef f():\n    pass\n"
    out = fixed(source, config)
    assert out == (
        "import torch\n\n\n# keeps this comment\n"
        "# NOTE: Private API (torch._dynamo.disable), stable since PyTorch 2.0.\n"
        "# If this breaks in future PyTorch, fallback is:\n"
        "#   torch.compiler.disable\n"
        "@staticmethod\n@torch._dynamo.disable\ndef f():\n    pass\n"
    )
    assert findings(out, config) == []


def test_indented_statements_get_indented_blocks() -> None:
    source = (
        "import torch\n\n\nclass C:\n    def f(self, xs):\n        if xs:\n"
        "            y = torch._foreach_norm(xs)  # own comment\n        return y\n"
    )
    out = fixed(source)
    assert (
        "        if xs:\n"
        "            # NOTE: Private API (torch._foreach_norm), stable since PyTorch 1.11.\n"
        "            # If this breaks in future PyTorch, fallback is:\n"
        f"            #   {FALLBACK_PLACEHOLDER}\n"
        "            #\n"
        "            y = torch._foreach_norm(xs)  # own comment\n"
    ) in out
    assert [code for _, code, _ in findings(out)] == ["ESP102"]


def test_except_and_elif_statements() -> None:
    source = (
        "import torch\n\ntry:\n    pass\nexcept torch._C._OutOfMemoryError:\n    pass\n"
        "if False:\n    pass\nelif torch._C._has_cuda:\n    pass\n"
    )
    out = fixed(source)
    ast.parse(out)
    assert out.count("# NOTE: Private API") == 2
    assert {code for _, code, _ in findings(out)} == {"ESP102"}


def test_a_valid_inserted_block_covers_later_uses_in_its_scope() -> None:
    config = replace(Config(), torch_versions=">=2.0,<2.2", ignore=("ESP202",))
    source = "import torch\n\na = torch._dynamo.disable(a)\nb = torch._dynamo.disable(b)\n"
    out = fixed(source, config)
    assert out.count("Private API") == 1 and findings(out, config) == []


def test_crlf_file_keeps_its_newlines() -> None:
    source = b"import torch\r\n\r\n\r\ndef f(xs):\r\n    return torch._foreach_norm(xs)\r\n"
    out = fix_source(source, "crlf.py", Config()).new_source
    assert out.count(b"\r\n") == out.count(b"\n") == 8
    assert b"    # NOTE: Private API (torch._foreach_norm), stable since PyTorch 1.11.\r\n" in out


def test_bom_file_keeps_its_bom() -> None:
    source = b"\xef\xbb\xbfimport torch\n\nx = torch._foreach_norm\n"
    out = fix_source(source, "bom.py", Config()).new_source
    assert out.startswith(b"\xef\xbb\xbfimport torch\n\n# NOTE: Private API")
    assert out.count(b"\xef\xbb\xbf") == 1


def test_latin1_file_keeps_its_encoding() -> None:
    source = "# -*- coding: latin-1 -*-\nimport torch\n\nname = 'café'\nx = torch._foreach_norm\n".encode("latin-1")
    out = fix_source(source, "latin1.py", Config()).new_source
    text = out.decode("latin-1")
    assert text.startswith("# -*- coding: latin-1 -*-\nimport torch\n") and "name = 'café'" in text
    assert "# NOTE: Private API (torch._foreach_norm)" in text
    assert "ESP102" in {f.code for f in analyse_source(out, "latin1.py", Config()).findings}
    assert "+# NOTE: Private API (torch._foreach_norm)" in unified_diff("latin1.py", source, out)


def test_comment_only_fixes_leave_the_ast_identical() -> None:
    source = (FIXTURES / "forms.py").read_bytes()
    config = replace(Config(), ignore=("ESP301",))
    out = fix_source(source, "forms.py", config, unsafe=True)
    assert out.applied and out.error is None
    assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(out.new_source))


# ------------------------------------------------------------------------------ ESP103
STALE = "import torch\n\n\ndef f(xs):\n    # keep me\n    # Private API, since PyTorch 1.11; fallback: [x.norm() for x in xs]\n    return [x.norm() for x in xs]  # Private API too\n"


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
    source = "import torch\n\n# Private API, since PyTorch 2.0; fallback: torch.compiler.disable\nf = torch._dynamo.disable\n"
    safe = fixed(source)
    assert "torch.compiler.disable\nf = torch.compiler.disable\n" in safe and codes(safe) == Counter({"ESP103": 1})
    assert fixed(source, unsafe=True) == "import torch\n\nf = torch.compiler.disable\n"


# ------------------------------------------------------------------------------ select / ignore
def test_fixes_respect_select_and_ignore() -> None:
    source = "import torch\n\nf = torch._dynamo.disable\ng = torch._foreach_norm\n"
    only_301 = fixed(source, replace(Config(), select=("ESP301",)))
    assert "torch.compiler.disable" in only_301 and "NOTE" not in only_301
    no_301 = fixed(source, replace(Config(), ignore=("ESP301",)))
    assert "torch._dynamo.disable" in no_301 and no_301.count("NOTE: Private API") == 2
    by_callable = fixed(source, select_enabled=lambda code: code != "ESP101")
    assert "torch.compiler.disable" in by_callable and "NOTE" not in by_callable
    assert fixed(source, replace(Config(), ignore=("ESP",))) == source
    per_file = replace(Config(), per_file_ignores=(("example.py", ("ESP1",)),))
    assert "NOTE" not in fixed(source, per_file)


# ------------------------------------------------------------------------------ safety
def test_nothing_changes_when_a_fix_would_change_other_code(monkeypatch: pytest.MonkeyPatch) -> None:
    source = b"import torch\n\nf = torch._dynamo.disable\n"
    monkeypatch.setattr(fixes, "apply_replacements", lambda module, plan: cst.parse_module(b"import torch\n\nf = 1\n"))
    outcome = fix_source(source, "x.py", Config())
    assert outcome.new_source == source and outcome.applied == []
    assert outcome.error and "changed more code" in outcome.error


def test_nothing_changes_when_a_fix_would_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    source = b"import torch\n\nx = torch._foreach_norm\n"
    comment = cst.Comment("# NOTE: Private API")
    object.__setattr__(comment, "value", "# NOTE: Private API\nx = (")  # what validation would refuse

    monkeypatch.setattr(fixes, "new_lines", lambda plan: [cst.EmptyLine(comment=comment)])
    outcome = fix_source(source, "x.py", Config())
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
    source = b"import torch\n\nf = torch._dynamo.disable\n"
    target.write_bytes(source)
    clean = tmp_path / "clean.py"
    clean.write_bytes(b"x = 1\n")
    run = fix_paths([target, clean], Config(), mode="diff", unsafe=False)
    assert target.read_bytes() == source
    assert run.fixed == 1 and run.changed_files == 1 and run.errors == []
    assert run.diff == (
        f"--- {target}\n+++ {target}\n@@ -1,3 +1,3 @@\n import torch\n \n"
        "-f = torch._dynamo.disable\n+f = torch.compiler.disable\n"
    )
    run = fix_paths([target, clean], Config(), mode="fix", unsafe=False)
    assert target.read_bytes() == b"import torch\n\nf = torch.compiler.disable\n"
    assert run.fixed == 1 and run.files[0].written and not run.files[1].changed
    again = fix_paths([target, clean], Config(), mode="diff", unsafe=False)
    assert again.fixed == 0 and again.diff == ""


def test_fix_paths_reports_unreadable_files(tmp_path: Path) -> None:
    run = fix_paths([tmp_path / "missing.py"], Config(), mode="fix", unsafe=False)
    assert len(run.errors) == 1 and run.errors[0].startswith(f"{tmp_path / 'missing.py'}: cannot read")


def test_fix_paths_refuses_a_file_changed_during_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"import torch\n\nf = torch._dynamo.disable\n")
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
    assert text.endswith("+a = 2\n\\ No newline at end of file\n")


# ------------------------------------------------------------------------------ round trips
ROUND_TRIP = [path for path in fixture_paths() if path.name != "syntax_error.py"]


@pytest.mark.parametrize("path", ROUND_TRIP, ids=lambda p: p.name)
def test_every_fixture_round_trips(path: Path) -> None:
    case = load_case(path)
    source = case.source.encode()
    before = analyse_source(source, str(path), case.config).findings
    outcome = fix_source(source, str(path), case.config, unsafe=True)
    assert outcome.error is None
    new = outcome.new_source
    cst.parse_module(new)
    ast.parse(new)
    after = analyse_source(new, str(path), case.config).findings
    assert [f for f in after if f.code in FIXABLE] == []
    # ESP102s left: the fixer's placeholders, or blocks a person wrote wrongly before
    written_before = Counter(f.name for f in before if f.code == "ESP102")
    other_102 = Counter(f.name for f in after if f.code == "ESP102" and not is_placeholder(f.message))
    assert other_102 <= written_before
    placeholders = sum(1 for f in after if f.code == "ESP102" and is_placeholder(f.message))
    assert placeholders >= sum(1 for f in outcome.applied if "placeholders" in f.description)
    again = fix_source(new, str(path), case.config, unsafe=True)
    assert again.new_source == new and again.applied == [] and again.error is None
    if not any(f.code == "ESP301" for f in outcome.applied):
        assert ast.dump(ast.parse(source)) == ast.dump(ast.parse(new))


def test_the_fixable_fixture_becomes_what_it_should() -> None:
    case = load_case(FIXTURES / "fixable.py")
    out = fix_source(case.source.encode(), "fixable.py", case.config, unsafe=True)
    text = out.new_source.decode()
    assert "from torch.compiler import disable as off\n" in text
    assert "from torch._dynamo import config\nfrom torch.compiler import reset\n" in text
    assert "@th.compiler.disable\n" in text
    assert "return torch.utils.data.default_collate(batch)" in text
    assert "# the norms of every gradient at once\n        # NOTE: Private API (torch._foreach_norm)" in text
    assert "# NOTE: Private API (torch._foreach_norm, torch._foreach_mul), stable since PyTorch 1.11." in text
    assert "fallback: [x.norm() for x in xs]" not in text
    assert Counter(f.code for f in out.applied) == Counter({"ESP301": 4, "ESP101": 4, "ESP103": 1})


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
