"""The version phrase of the comment contract: `since PyTorch`/`since torch`, or a configured root's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from esper_lint.config import Config, load_config
from esper_lint.engine import analyse_source

REPO_ROOT = Path(__file__).resolve().parent.parent


def findings(source: str, roots: tuple[str, ...]) -> list[tuple[int, str, str | None, str]]:
    config = Config(roots=roots)
    return [(f.line, f.code, f.name, f.message) for f in analyse_source(source, "t.py", config).findings]


LIBCST_USE = "import libcst\n# Private API, since {package} 1.1; fallback: libcst.parse_module(text)\nlibcst._parse(text)\n"


@pytest.mark.parametrize("package", ["libcst", "LibCST"])
def test_a_configured_root_names_its_own_release(package: str) -> None:
    assert findings(LIBCST_USE.format(package=package), ("libcst",)) == []


def test_pytorch_and_torch_stay_accepted_for_any_root() -> None:
    assert findings(LIBCST_USE.format(package="PyTorch"), ("libcst",)) == []
    assert findings(LIBCST_USE.format(package="torch"), ("libcst",)) == []


def test_a_package_that_is_not_a_root_gives_no_version() -> None:
    ((line, code, name, message),) = findings(LIBCST_USE.format(package="numpy"), ("libcst",))
    assert (line, code, name) == (3, "ESP102", "libcst._parse")
    assert "no version: say 'since libcst X.Y'" in message


def test_the_torch_wording_is_kept_where_torch_is_a_root() -> None:
    source = "import torch\n# Private API, since libcst 1.1; fallback: x\ntorch._x\n"
    ((_, code, _, message),) = findings(source, ("torch",))
    assert code == "ESP102" and "no version: say 'since PyTorch X.Y'" in message
    ((_, code, _, message),) = findings(source.replace("since libcst 1.1", "since torch one"), ("torch", "libcst"))
    assert code == "ESP102" and "malformed version: 'since PyTorch' is followed by 'one'" in message


def test_a_dotted_root_and_its_top_level_package() -> None:
    source = "import torch.distributed as dist\n# Private API, since {phrase} 2.1; fallback: None\ndist._x\n"
    for phrase in ("torch.distributed", "torch", "PyTorch"):
        assert findings(source.format(phrase=phrase), ("torch.distributed",)) == [], phrase
    ((_, code, _, message),) = findings(source.format(phrase="torch.distributedx"), ("torch.distributed",))
    assert code == "ESP102" and "malformed version" in message


def test_the_index_rules_pass_names_of_other_roots_by() -> None:
    # The torch index knows nothing of libcst: no ESP201/ESP202/ESP301 for its names.
    config = Config(roots=("torch", "libcst"), torch_versions=">=1.11")
    source = "import libcst\n# Private API, since libcst 0.1; fallback: None\nlibcst._nodes.internal.CodegenState\n"
    assert analyse_source(source, "t.py", config).findings == []


def test_esper_lint_documents_its_own_private_apis() -> None:
    config = load_config(explicit=REPO_ROOT / "tools" / "esper-lint-self.toml")
    assert set(config.roots) == {"torch", "libcst"}
    path = REPO_ROOT / "esper_lint" / "fast" / "positions.py"
    analysis = analyse_source(path.read_bytes(), str(path), config, with_references=True)
    assert analysis.findings == []
    assert [(r.name, r.documented) for r in analysis.references] == [("libcst._nodes.internal.CodegenState", True)]
