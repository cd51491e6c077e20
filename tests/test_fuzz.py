"""Property-based fuzzing of the engine with generated Python programs (hypothesmith).

Programs come from hypothesmith's grammar-based generator (syntactically plausible, often not
compilable) and its libcst-node generator (valid code), then get torch flavour: an import prefix and
private references spliced in at the indentation of a random line. Two properties:

* `analyse_source` never raises and reports only positions >= 1:1 and codes from the rule catalog;
* the byte pre-check is sound: whenever a forced analysis reports anything but ESP001 (files that
  are not parsed are not reported, by design), `precheck.may_report` says the file may report;
* the reduction (`esper_lint.fast.reduction`) is invisible: the usual analysis, which gives libcst a
  reduced file, reports the same findings and references as a forced analysis of the whole file.
  Generated programs carry no comments, so the fixtures, with comments and documentation blocks
  inserted at random lines and indentations, are fuzzed for this property as well.

`benchmarks/fuzz_long.py` runs the same properties with thousands of examples.
"""

from __future__ import annotations

import ast
import re

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esper_lint import catalog
from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import may_report
from esper_lint.fast.reduction import reduce_source
from fixture_cases import fixture_paths, load_case

PREFIXES = (
    "",
    "import torch\n",
    "import torch as th\n",
    "import torch.nn.functional as F\n",
    "from torch import _foreach_norm as fn\n",
    "import torch._dynamo\n",
    "from torch._dynamo import disable\n",
    "# Private API, since PyTorch 1.11; fallback: [g.norm() for g in gs]\nimport torch\n",
)
SPLICES = (
    "torch._foreach_norm(xs)",
    "th._foreach_norm(xs)",
    "F._canonical_mask(m)",
    "torch._dynamo.config.suppress_errors = True",
    "aten = torch.ops.aten; aten._to_copy.default",
    "y = getattr(torch, '_foreach_norm')",
    "y = getattr(torch.cuda, '_is_in_bad_fork', None)",
    "torch.Tensor._make_subclass",
    "self._x = torch.ones(1)",
    "torch._C  # Private API, since PyTorch 1.0; fallback: None",
    "# Private API, stable since PyTorch 1.11.\n{indent}# fallback is:\n{indent}#   y = 1\n{indent}y = torch._foreach_norm(xs)",
    "if hasattr(torch, '_foo'):\n{indent}    torch._foo()\n{indent}else:\n{indent}    pass",
    "fn(xs)",
)
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


@st.composite
def torch_flavoured(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A generated program with a torch prefix, spliced private uses, and maybe a renamed identifier."""
    source = draw(base)
    lines = source.splitlines(keepends=True) or [""]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        indent = _indent_of(lines[at - 1]) if at > 0 else ""
        splice = draw(st.sampled_from(SPLICES)).replace("{indent}", indent)
        lines.insert(at, f"{indent}{splice}\n")
    program = draw(st.sampled_from(PREFIXES)) + "".join(lines)
    names = sorted(set(_NAME.findall(source)) - {"import", "from", "as", "def", "class", "lambda"})
    if names and draw(st.booleans()):
        name = draw(st.sampled_from(names))
        program = re.sub(rf"\b{re.escape(name)}\b", draw(st.sampled_from(("torch._priv", "th._q", "torch"))), program)
    return program


PROGRAMS = st.one_of(
    torch_flavoured(hypothesmith.from_grammar()),
    torch_flavoured(hypothesmith.from_node()),
)
CODES = frozenset(catalog.all_rules())
CONFIG = Config()


def check_analysis(source: str) -> None:
    """Property 1: never raises; positions are 1-based; codes come from the rule catalog."""
    for forced in (False, True):
        analysis = analyse_source(source, "f.py", CONFIG, force=forced, with_references=forced)
        for finding in analysis.findings:
            assert finding.line >= 1 and finding.column >= 1, finding
            assert finding.code in CODES, finding
            assert finding.path == "f.py"
        for reference in analysis.references:
            assert reference.line >= 1 and reference.column >= 1, reference


def check_precheck_soundness(source: str) -> None:
    """Property 2: a file the pre-check skips yields nothing when forced (other than ESP001)."""
    raw = source.encode("utf-8", "surrogatepass")
    findings = [f for f in analyse_source(raw, "f.py", CONFIG, force=True).findings if f.code != "ESP001"]
    if findings:
        assert may_report(raw, ("torch",)), (findings, source)


def check_reduction_is_invisible(source: str) -> None:
    """Property 3: cutting the file down before libcst changes no finding and no reference."""
    raw = source.encode("utf-8", "surrogatepass")
    usual = analyse_source(raw, "f.py", CONFIG, with_references=True)
    full = analyse_source(raw, "f.py", CONFIG, with_references=True, force=True)
    if any(f.code == "ESP001" for f in full.findings):
        return  # files libcst cannot parse are reported only when they may hold a reference
    assert usual.findings == full.findings, source
    assert sorted(usual.references, key=repr) == sorted(full.references, key=repr), source
    try:
        tree = ast.parse(raw)
    except SyntaxError:
        return  # CPython refuses what libcst took (an odd indentation after a continuation): nothing is reduced
    reduced = reduce_source(raw, tree, CONFIG.roots).source
    cst.parse_module(reduced)  # the engine would fall back to the whole file: fail here instead
    assert len(reduced.splitlines()) == len(raw.splitlines()), "lines must stay where they were"


COMMENTS = (
    "",  # a line of whitespace only: libcst gives indented ones to the block above
    "# a note",
    "# Private API, since PyTorch 1.11; fallback: y = [g.norm() for g in gs]",
    "# Private API: torch._foreach_norm",
    "# fallback: y = 1",
    "# since PyTorch 2.0",
)
FIXTURE_SOURCES = [load_case(path).source for path in fixture_paths()]


@st.composite
def commented_fixtures(draw: st.DrawFn) -> str:
    """A fixture with comment lines (documentation blocks among them) inserted anywhere."""
    lines = draw(st.sampled_from(FIXTURE_SOURCES)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(lines)))
        near = _indent_of(lines[at - 1]) if at > 0 else ""
        indent = draw(st.sampled_from(("", near, near + "    ", near[:-4], "        ")))
        lines.insert(at, f"{indent}{draw(st.sampled_from(COMMENTS))}\n")
    return "".join(lines)


FUZZ_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@given(PROGRAMS)
def test_analysis_never_raises_and_reports_sane_findings(source: str) -> None:
    check_analysis(source)


@FUZZ_SETTINGS
@given(PROGRAMS)
def test_precheck_is_sound_on_generated_programs(source: str) -> None:
    check_precheck_soundness(source)


@FUZZ_SETTINGS
@given(st.one_of(PROGRAMS, commented_fixtures()))
def test_reduction_is_invisible(source: str) -> None:
    check_reduction_is_invisible(source)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch._foreach_norm(xs)\n",
        "import torch as th\nif x:\n    th._C\nelse:\n    pass\n",
        "from torch import _foreach_norm as fn\nfn(xs)\n",
        "def f(:\n  torch._x\n",
        "",
        # found by the fuzz suite
        "class A:\n def A(): A =\\\n\\\ryield\ntorch._foreach_norm(xs)\n",
        "pass\ndef Öthen(): Lequal =\\\ntorch._foreach_norm(xs)\n \\\nyield\n",
        # a statement whose logical line goes on past it (`pass \` then `;`): the reduction dropped the backslash
        "# Private API, since PyTorch 1.11; fallback: [g.norm() for g in gs]\n\x0cpass\\\n;\r\n",
    ],
)
def test_properties_hold_on_known_programs(source: str) -> None:
    check_analysis(source)
    check_precheck_soundness(source)
    check_reduction_is_invisible(source)
