"""The reduction libcst parses instead of the whole file: what it cuts, what it keeps, and that
findings and their positions never change (the fuzz suite checks the same on generated code)."""

from __future__ import annotations

import ast
import textwrap

import libcst as cst
import pytest

from esper_lint import engine
from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fast.reduction import reduce_source

CONFIG = Config()


@pytest.fixture(params=["tree kept", "reduced text parsed again"])
def tree_placement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the engine places findings: with the file's CPython tree, or (for big files) with
    a CPython parse of the reduced text after the first tree was dropped."""
    if request.param != "tree kept":
        monkeypatch.setattr(engine, "_KEEP_TREE_BELOW", 0)
    return str(request.param)


def reduced(source: str) -> str:
    raw = source.encode()
    reduction = reduce_source(raw, ast.parse(raw), CONFIG.roots)
    assert reduction.reportable
    return reduction.source.decode()


def assert_same_findings(source: str) -> None:
    usual = analyse_source(source.encode(), "f.py", CONFIG, with_references=True)
    full = analyse_source(source.encode(), "f.py", CONFIG, with_references=True, force=True)
    assert usual.findings == full.findings
    assert usual.references == full.references


def test_unrelated_statements_become_pass_and_lines_stay() -> None:
    source = textwrap.dedent(
        '''\
        """Module docstring."""
        from __future__ import annotations
        import os
        import torch


        def unrelated(path):
            """Docs."""
            return os.path.join(path, "x")


        def uses(xs):
            total = sum(len(x) for x in xs)
            return torch._foreach_norm(xs)
        '''
    )
    text = reduced(source)
    assert text.count("\n") == source.count("\n")
    lines = text.splitlines()
    assert lines[0] == '"""Module docstring."""'  # a __future__ import may only follow it
    assert lines[1] == "from __future__ import annotations"
    assert lines[2] == "pass"  # `import os` binds nothing torch
    # the whole unrelated function: one logical line, so libcst builds one node for it
    assert lines[6:9] == ["pass \\", "\\", ""]
    assert lines[12] == "    pass"
    assert lines[13] == "    return torch._foreach_norm(xs)"
    compile(text, "reduced.py", "exec")
    assert_same_findings(source)


def test_a_replaced_statement_keeps_its_blank_lines_where_a_continuation_is_unsafe() -> None:
    no_final_newline = "import torch\ntorch._C\ndef unrelated():\n    return 1"
    assert reduced(no_final_newline).split("\n")[2:] == ["pass", ""]
    crlf = no_final_newline.replace("\n", "\r\n") + "\r\n"
    assert reduced(crlf).split("\r\n")[2:] == ["pass \\", "", ""]
    for source in (no_final_newline, crlf):
        assert_same_findings(source)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\rdef unrelated():\r    return 1\rtorch._C\r",
        # found by the fuzz suite: emptying `yield\n` after `\\\r` made one CRLF of two line breaks
        "class A:\n def A(): A =\\\n\\\ryield\ntorch._foreach_norm(xs)\n",
        "class A:\n def A(): A =\\\r\\\nyield\ntorch._C  # Private API, since PyTorch 1.0; fallback: None\n",
    ],
)
def test_files_with_a_lone_cr_are_not_reduced(source: str) -> None:
    raw = source.encode()
    assert reduce_source(raw, ast.parse(raw), CONFIG.roots).source is raw
    assert_same_findings(source)


def test_nothing_reportable_when_no_private_name_hangs_off_torch() -> None:
    raw = b"import torch\nfrom torch import nn\nx = torch.zeros(3)\nself._cache = nn.Linear(1, 1)\n"
    assert not reduce_source(raw, ast.parse(raw), CONFIG.roots).reportable


def test_bindings_of_torch_names_are_kept_wherever_they_are() -> None:
    source = textwrap.dedent(
        """\
        import torch
        ops = torch.ops
        aten = ops.aten


        def later():
            return aten._to_copy.default


        torch = None
        """
    )
    text = reduced(source)
    assert "aten = ops.aten" in text and "torch = None" in text
    assert_same_findings(source)


def test_thinned_arguments_keep_every_later_column() -> None:
    source = 'import torch\ny = f("ééé", [1, 2, 3], torch._foreach_norm(xs), key={"a": 1})\n'
    text = reduced(source)
    assert text.splitlines()[1] == 'y = f(0    , 0        , torch._foreach_norm(xs), key=0       )'
    assert_same_findings(source)


def test_assigned_tuples_and_getattr_arguments_are_left_whole() -> None:
    source = "import torch\na, b = torch.ops, torch.cuda\nc = getattr(torch.ops, 'aten')._foo\nb._x\n"
    text = reduced(source)
    assert "a, b = torch.ops, torch.cuda" in text
    assert "getattr(torch.ops, 'aten')._foo" in text
    assert_same_findings(source)


def test_a_compound_statement_followed_by_deeper_comments_is_entered_not_replaced() -> None:
    # libcst gives the indented comment to the function's block; a `pass` in the function's place
    # would hand it, with its marker, to the next statement.
    source = textwrap.dedent(
        """\
        import torch
        def helper():
            return 1
            # Private API, since PyTorch 1.11; fallback: [x.norm() for x in xs]
        y = torch._foreach_norm(xs)
        """
    )
    text = reduced(source)
    assert text.splitlines()[1] == "def helper():"
    assert text.splitlines()[2] == "    pass"
    assert_same_findings(source)


def test_try_handlers_stay_whole_for_the_code_level_fallback() -> None:
    source = textwrap.dedent(
        """\
        import torch
        try:
            norms = torch._foreach_norm(xs)
        except AttributeError:
            norms = [x.norm() for x in xs]
        """
    )
    text = reduced(source)  # `norms` never holds a torch name, yet the handler must stay
    assert "    norms = [x.norm() for x in xs]" in text
    assert_same_findings(source)
    assert analyse_source(source.encode(), "f.py", CONFIG).findings == []


def test_documentation_comments_inside_a_statement_are_never_thinned_away() -> None:
    source = textwrap.dedent(
        """\
        import torch
        y = torch._foreach_norm(  # Private API, since PyTorch 1.11
            # fallback: [x.norm() for x in xs]
            f(a, b),
        )
        """
    )
    assert reduced(source) == source
    assert analyse_source(source.encode(), "f.py", CONFIG).findings == []
    assert_same_findings(source)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nif a:\n    pass\nelif torch._C._get_tracing_state():\n    pass\n",
        "import torch\n@decorate(1, 2)\n@torch._dynamo.disable\ndef f(x=g(1)): pass\n",
        "import torch\nclass A(Base, metaclass=M):\n    x: 'T' = torch._C\n",
        "import torch\nclass P:\n    def entry(\n        self, key: object\n    ) -> torch._C.FunctionSchema | None: ...\n",
        "# -*- coding: latin-1 -*-\nimport torch\ns = 'caf\xe9'; torch._C\n",
        "\ufeffimport torch\nf(1, 2); torch._C._x\n",
        "import torch\nx = [\n    1,\n    torch._C,\n]\r\ny = 2\r\n",
    ],
)
def test_positions_match_the_whole_file_analysis(source: str, tree_placement: str) -> None:
    raw = source.encode("latin-1" if "latin-1" in source else "utf-8")
    usual = analyse_source(raw, "f.py", CONFIG, with_references=True)
    full = analyse_source(raw, "f.py", CONFIG, with_references=True, force=True)
    assert usual.references and usual.references == full.references
    assert usual.findings == full.findings


def test_a_big_file_is_placed_by_parsing_its_reduced_text_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the size limit the first CPython tree is not kept while libcst parses: the reduced
    text (same statements, same lines) is parsed again, and the positions are the same."""
    body = "".join(f"def helper_{i}(values):\n    return sorted(values)[{i}]\n\n" for i in range(6000))
    source = f"import torch\n{body}def norms(xs):\n    return torch._foreach_norm(xs)\n"
    assert len(source) > engine._KEEP_TREE_BELOW
    parsed_again: list[bytes | str] = []
    original = engine._statement_tree

    def spy(text: bytes | str) -> ast.Module | None:
        parsed_again.append(text)
        return original(text)

    monkeypatch.setattr(engine, "_statement_tree", spy)
    usual = analyse_source(source.encode(), "big.py", CONFIG, with_references=True)
    assert len(parsed_again) == 1 and b"sorted" not in parsed_again[0]  # the reduced text, not the file
    assert [(f.line, f.column, f.name) for f in usual.findings] == [(source.count("\n"), 12, "torch._foreach_norm")]
    full = analyse_source(source.encode(), "big.py", CONFIG, with_references=True, force=True)
    assert usual.findings == full.findings and usual.references == full.references


def test_parsing_skips_libcst_validation_only_while_parsing() -> None:
    hook = cst.CSTNode.__dict__["__post_init__"]
    analyse_source(b"import torch\ntorch._C\n", "f.py", CONFIG)
    assert cst.CSTNode.__dict__["__post_init__"] is hook
    with pytest.raises(cst.CSTValidationError):
        cst.Name("1abc")


ADVERSARIAL = [
    # bindings of torch names in every form the resolver knows
    "import torch\nif (t := torch.ops):\n    pass\nt._x\n",
    "import torch\nys = [(a := torch.cuda) for _ in range(2)]\na._lazy_init()\n",
    "import torch\ndef f():\n    global torch\n    torch = None\ndef g():\n    return torch._C\n",
    "import torch\nclass A:\n    torch = None\n    def m(self):\n        return torch._C\n",
    "import torch\ndel torch\ntorch._C\n",
    "from torch._C import *\nimport torch\nunrelated(1)\n",
    "import torch\nfor torch in range(3):\n    pass\ntorch._C\n",
    "import torch\nwith open('f') as torch:\n    pass\ntorch._C\n",
    "import torch\ntry:\n    pass\nexcept Exception as torch:\n    pass\ntorch._C\n",
    "import torch\nmatch x:\n    case {'k': torch}:\n        pass\n    case _:\n        torch._C\n",
    "import torch\ndef outer():\n    t = torch.cuda\n    def inner():\n        nonlocal t\n        t = None\n    return t._lazy_init()\n",
    "import torch\nf = lambda torch=torch._C: torch._x\n",
    "import torch\nasync def f():\n    async with a as b:\n        async for c in torch._d():\n            await b\n",
    # typing-only, guards and code-level fallbacks
    (
        "from typing import TYPE_CHECKING\nimport torch\nif TYPE_CHECKING:\n    from torch._C import Graph\n"
        "else:\n    Graph = None\nx: 'Graph'\n"
    ),
    "import torch\nif hasattr(torch, '_foreach_norm'):\n    n = torch._foreach_norm(xs)\nelse:\n    n = [x.norm() for x in xs]\n",
    "import torch\ntry:\n    from torch._dynamo import disable\nexcept ImportError:\n    def disable(fn):\n        return fn\n",
    # layout: one-liners, semicolons, continuations, tabs, form feeds, strings and comments
    "import torch\nif x: torch._a(); y = 1\nelse: pass\n",
    "import torch\nx = 1; y = torch._b\n",
    "import torch\nx = f(1,\n      2) + \\\n    torch._c\n",
    "import torch\ndef f():\n\tif x:\n\t\treturn g(1, 2)\n\treturn torch._d\n",
    "import torch\n\x0cdef f():\n    return torch._e\n",
    "import torch\ns = '# Private API, since PyTorch 1.0; fallback: x'\nz = torch._f\n",
    "import torch\nx = torch._g(  # Private API, since PyTorch 1.0\n    a,  # fallback: y = 1\n)\n",
    (
        "import torch\n# Private API, since PyTorch 1.11\n# fallback: [x.norm() for x in xs]\ndef f(xs):\n"
        "    '''doc'''\n    return torch._foreach_norm(xs)\n"
    ),
    "import torch\n# Private API, since PyTorch 1.11; fallback: pass\ndef unrelated():\n    return 1\n",
    "import torch\nclass A(torch.nn.Module):\n    # Private API, since PyTorch 2.0; fallback: pass\n    x = 1\n    y = torch._h\n",
    # found by the fuzz suite: a statement whose logical line goes on past it
    "# Private API, since PyTorch 1.11; fallback: [g.norm() for g in gs]\n\x0cpass\\\n;\r\n",
    "import torch\n# Private API, since PyTorch 1.11\nx = 1\\\n;\ny = torch._i\n",
]


@pytest.mark.parametrize(
    "source",
    [
        b"# Private API, since PyTorch 1.11; fallback: [g.norm() for g in gs]\n\x0cpass\\\n;\r\n",
        b"# Private API, since PyTorch 1.11\nx = 1 ; \\\n\n",
        b"# Private API, since PyTorch 1.11\nif x:\n    y = (1,\n 2)\\\n;\nz = 1\n",
    ],
)
def test_a_statement_continued_past_its_end_keeps_its_continuation(source: bytes) -> None:
    """`pass \\` then `;` on the next line is one logical line: replacing the statement dropped the
    backslash, the reduced text no longer parsed, and the engine fell back to the whole file."""
    reduction = reduce_source(source, ast.parse(source), CONFIG.roots)
    cst.parse_module(reduction.source)
    assert len(reduction.source.splitlines()) == len(source.splitlines())


@pytest.mark.parametrize("source", ADVERSARIAL)
def test_the_reduction_is_invisible_on_tricky_code(source: str, tree_placement: str) -> None:
    for config in (CONFIG, Config(documentation_scope="statement")):
        usual = analyse_source(source.encode(), "f.py", config, with_references=True)
        full = analyse_source(source.encode(), "f.py", config, with_references=True, force=True)
        assert usual.findings == full.findings
        assert usual.references == full.references
