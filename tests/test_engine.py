"""Engine behaviour that fixtures cannot show: positions, encodings, bad bytes, messages."""

from __future__ import annotations

import codecs

from esper_lint.config import Config
from esper_lint.engine import analyse_source


def findings(source: str | bytes, **config: object) -> list[tuple[int, int, str, str | None]]:
    return [(f.line, f.column, f.code, f.name) for f in analyse_source(source, "t.py", Config(**config)).findings]  # type: ignore[arg-type]


def test_columns_are_one_based_at_the_start_of_the_chain() -> None:
    assert findings("import torch\nx = 1; y = torch._foreach_norm(x)\n") == [(2, 12, "ESP101", "torch._foreach_norm")]


def test_from_import_is_reported_at_the_imported_name() -> None:
    assert findings("from torch import nn, _C as c\n") == [(1, 23, "ESP101", "torch._C")]


def test_getattr_is_reported_at_the_call() -> None:
    assert findings("import torch\nv = getattr(torch, '_x')\n") == [(2, 5, "ESP101", "torch._x")]


def test_non_ascii_text_counts_columns_in_characters() -> None:
    assert findings("import torch\ns = 'é'; torch._x\n") == [(2, 10, "ESP101", "torch._x")]


def test_crlf_and_lone_cr_newlines() -> None:
    assert findings(b"import torch\r\n\r\ntorch._x\r\n") == [(3, 1, "ESP101", "torch._x")]
    assert findings(b"import torch\r\rtorch._x\r") == [(3, 1, "ESP101", "torch._x")]


def test_utf8_bom_and_latin1_cookie() -> None:
    assert findings(codecs.BOM_UTF8 + b"import torch\ntorch._x\n") == [(2, 1, "ESP101", "torch._x")]
    latin1 = "# -*- coding: latin-1 -*-\nimport torch\ns = 'caf\xe9'; torch._x\n".encode("latin-1")
    assert findings(latin1) == [(3, 13, "ESP101", "torch._x")]


def test_undecodable_bytes_are_esp001_at_their_line() -> None:
    result = findings(b"import torch\n\ntorch._x  # \xff\xfe\n")
    assert [(line, code) for line, _, code, _ in result] == [(3, "ESP001")]


def test_syntax_error_is_esp001_with_the_reason() -> None:
    result = analyse_source("import torch\ntorch._x(\n", "t.py", Config()).findings
    assert [f.code for f in result] == ["ESP001"]
    assert "syntax error" in result[0].message and result[0].name is None


def test_null_bytes_and_python2_are_esp001_not_crashes() -> None:
    assert [c for _, _, c, _ in findings(b"import torch\x00\ntorch._x\n")] == ["ESP001"]
    assert [c for _, _, c, _ in findings("import torch\nprint 'x', torch._x\n")] == ["ESP001"]


def test_files_without_the_root_are_not_parsed() -> None:
    assert findings("def broken(:\n") == []
    assert findings("import numpy\nnumpy._x\n") == []


def test_configured_roots() -> None:
    assert findings("import numpy as np\nnp._NoValue\n", roots=("torch", "numpy")) == [(2, 1, "ESP101", "numpy._NoValue")]


def test_dotted_root() -> None:
    source = "import torch.distributed as dist\nimport torch\ndist._x\ntorch._y\n"
    assert findings(source, roots=("torch.distributed",)) == [(3, 1, "ESP101", "torch.distributed._x")]


def test_two_references_in_one_statement_are_two_findings() -> None:
    assert len(findings("import torch\ntorch._a(torch._a)\n")) == 2


def test_esp102_message_names_the_api_and_the_problem() -> None:
    source = "import torch\n# Private API since PyTorch 1.11\ntorch._foreach_norm(x)\n"
    (finding,) = analyse_source(source, "t.py", Config()).findings
    assert finding.code == "ESP102" and "`torch._foreach_norm`" in finding.message and "no fallback" in finding.message


def test_fallback_resolves_aliases_of_the_file() -> None:
    source = "import torch as th\n# Private API since PyTorch 1.11; fallback: th._slow(x)\nth._fast(x)\n"
    (finding,) = analyse_source(source, "t.py", Config()).findings
    assert finding.code == "ESP102" and "`torch._slow`" in finding.message


def test_marker_is_case_insensitive_and_torch_spelling_accepted() -> None:
    source = "import torch\n# PRIVATE API since torch 2.0, Fallback to: x\ntorch._y\n"
    assert findings(source) == []


def test_select_and_ignore() -> None:
    source = "import torch\ntorch._x\n"
    assert findings(source, select=("ESP1",), ignore=("ESP101",)) == []
    assert findings(source, select=("ESP101",), ignore=("ESP1",)) == [(2, 1, "ESP101", "torch._x")]


def test_comment_block_above_first_statement_of_module() -> None:
    source = "# Private API, since PyTorch 2.0; fallback: import torch.compiler\nimport torch._dynamo\ntorch._dynamo.reset()\n"
    assert findings(source, select=("ESP1",)) == []


def test_deeply_nested_code_is_esp001_not_a_crash() -> None:
    source = "import torch\nx = " + "(" * 500 + "torch._x" + ")" * 500 + "\n"
    result = findings(source)
    assert result and all(code in ("ESP001", "ESP101") for _, _, code, _ in result)


def test_long_binary_chain_does_not_crash() -> None:
    source = "import torch\nx = torch._x" + " + 1" * 2000 + "\n"
    assert [code for _, _, code, _ in findings(source)] == ["ESP101"]


def test_index_rules_use_the_projects_own_torch_dependency(tmp_path) -> None:
    from esper_lint.config import load_config

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["torch>=1.13,<2.2"]\n')
    config = load_config([tmp_path])
    assert config.torch_versions == ">=1.13,<2.2"
    result = analyse_source("from torch._six import inf\n", "t.py", config).findings
    assert [(f.code, f.name) for f in result] == [("ESP101", "torch._six.inf"), ("ESP202", "torch._six.inf")]
    assert "missing from torch 2.0, 2.1" in result[1].message


def test_esp201_message_states_the_facts() -> None:
    source = "import torch\n# Private API, stable since PyTorch 1.9; fallback: [g.norm() for g in gs]\ntorch._foreach_norm(gs)\n"
    (finding,) = analyse_source(source, "t.py", Config()).findings
    assert finding.code == "ESP201" and "`torch._foreach_norm` first shipped in 1.11; the comment says 1.9" in finding.message


def test_esp301_names_the_replacement() -> None:
    (finding,) = analyse_source("import torch\ntorch._dynamo.reset()\n", "t.py", Config(select=("ESP3",))).findings
    assert "`torch.compiler.reset`" in finding.message


def test_cyclic_collector_is_paused_only_while_a_file_is_analysed() -> None:
    """The engine pauses CPython's cyclic collector per file (it is a sixth of the CPU time) and
    must hand it back as it found it, including to a host such as flake8 that disabled it."""
    import gc

    source = "import torch\nx = torch._foreach_norm(y)\n"
    assert gc.isenabled()
    assert findings(source) == [(2, 5, "ESP101", "torch._foreach_norm")]
    assert gc.isenabled()
    gc.disable()
    try:
        assert findings(source) == [(2, 5, "ESP101", "torch._foreach_norm")]
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_cycles_left_by_an_analysis_are_freed_once_the_collector_resumes() -> None:
    """References and their statements point at each other: with the collector paused they
    outlive the file, and the first collection afterwards must free every one of them."""
    import gc

    import libcst as cst

    source = "import torch\n" + "".join(f"def f{i}(x):\n    return torch._foreach_norm(x)\n" for i in range(50))
    gc.collect()
    before = sum(issubclass(type(obj), cst.CSTNode) for obj in gc.get_objects())
    for _ in range(5):
        findings(source)
    gc.collect()
    after = sum(issubclass(type(obj), cst.CSTNode) for obj in gc.get_objects())
    assert after <= before
