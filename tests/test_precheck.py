"""The byte pre-check (esper_lint.fast.precheck): it may only skip files that cannot report.

Its soundness on torch's own sources: tests/test_precheck_torch_sources.py; on generated
programs: tests/test_fuzz.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import may_report
from fixture_cases import config_of, fix_fixture_pairs, fixture_paths, load_case


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: p.name)
def test_precheck_never_skips_a_fixture_with_findings(path: Path) -> None:
    case = load_case(path)
    forced = analyse_source(case.source, str(path), case.config, force=True).findings
    if forced:
        assert may_report(case.source.encode(), case.config.roots)


@pytest.mark.parametrize("path", [p for pair in fix_fixture_pairs() for p in pair], ids=lambda p: p.name)
def test_precheck_never_skips_a_fix_fixture_with_findings(path: Path) -> None:
    raw = path.read_bytes()  # the bytes as they are: CRLF, a BOM, latin-1
    config = config_of(raw, str(path))
    if analyse_source(raw, str(path), config, force=True).findings:
        assert may_report(raw, config.roots)


def test_precheck_has_no_catastrophic_backtracking() -> None:
    # Comment lines full of '#' after a dot once made the byte regex backtrack exponentially.
    import subprocess
    import sys

    code = (
        "from esper_lint.fast.precheck import may_report\n"
        "source = b'import torch\\nx = a.  # ' + b'## ' * 40 + b'\\ny = 1\\n' + b'z = b. # ' + b'# #' * 40\n"
        "print(may_report(source, ('torch',)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_precheck_second_stage_follows_aliases_conservatively() -> None:
    roots = ("torch",)
    unrelated = b"import torch\nclass A:\n    def f(self, module):\n        return module._parameters, os._exit\n"
    assert may_report(unrelated, roots) is False
    for source in (
        b"import torch as th\nth._x\n",
        b"import torch\nops = (\n    torch.ops\n)\naten = ops.aten\naten._to_copy\n",
        b"import torch\nif (t := torch.nn):\n    t._reduction\n",
        b"import torch\na, b = torch.nn, 1\nb._x\n",
        b"from torch import nn as N\nN.functional._canonical_mask\n",
        b"from torch import _C\n",
        b"import torch.nn.functional as F\nF._x\n",
        b"import torch\ngetattr(torch, 'cuda')._is_in_bad_fork\n",
        b"import torch\nx = getattr(torch.cuda, '_x')\n",
        b"import torch\ndef f(:\n    obj._x\n",  # unparsable: left to the full parser
    ):
        assert may_report(source, roots), source
