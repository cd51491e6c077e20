"""What a run imports: facts, not times (the times are benchmarks/bench_lint.py's single-file rows).

A run pays for libcst and the torch index only when a file needs them: a file that fails the byte
pre-check never loads libcst, the index loads only when an index-backed code is enabled and a
reference needs it, and flake8's start-up (it imports every plugin) loads neither. A run that does
need libcst makes no dataclass of its own (making one costs about 1 ms). Each case runs the CLI in
a fresh interpreter and records `sys.modules` (and the dataclasses made) when it is done.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from esper_lint.config import Config
from esper_lint.fast.precheck import bytes_may_reference

CLEAN = (
    "import torch\nimport torch.nn as nn\n\n\nclass Block(nn.Module):\n"
    "    def __init__(self) -> None:\n        super().__init__()\n        self._scale = nn.Linear(4, 4)\n\n"
    "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        return self._scale(x)\n"
)
ONE_USE = "import torch\n\n\ndef norms(grads):\n    return torch._foreach_norm(grads)\n"
# Modules that only a file needing a parse may load: libcst itself and everything built on it.
PARSING = ("libcst", "esper_lint.parsing", "esper_lint.analysis.resolver", "esper_lint.analysis.judge", "esper_lint.fast.reduction")
# The index: its reader and what judges references with it. `esper_lint.torch_index` itself is a small
# package that loads its reader on first use; the configuration imports its version parser
# (`esper_lint.torch_index.versions`) to read a project's torch range.
INDEX = (
    "esper_lint.torch_index.reader",
    "esper_lint.torch_index.checks",
    "esper_lint.torch_index.explain",
    "esper_lint.torch_index.signatures",
    "esper_lint.torch_index.calls",
    "esper_lint.analysis.knowledge",
)

# Besides the modules: the classes of esper-lint's modules that were made dataclasses there (a
# subclass of libcst's dataclass state that adds no fields is no new one). `dataclasses` is looked
# up, not imported, so that the record does not load it.
_WRAPPER = """
import sys
out, argv = sys.argv[1], sys.argv[2:]
from esper_lint.frontends.cli import main

def made_dataclasses():
    module_of_dataclasses = sys.modules.get("dataclasses")
    if module_of_dataclasses is None:
        return []
    found, seen = [], set()
    def visit(namespace, module_name):  # a module's classes, and the classes nested in them
        for value in list(namespace.values()):
            if isinstance(value, type) and value.__module__ == module_name and value not in seen:
                seen.add(value)
                if module_of_dataclasses.is_dataclass(value) and "__dataclass_fields__" in vars(value):
                    found.append(module_name + "." + value.__qualname__)
                visit(vars(value), module_name)
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "esper_lint" or name.startswith("esper_lint.")):
            visit(vars(module), name)
    return sorted(found)

try:
    code = main(argv)
finally:
    modules = sorted(sys.modules)  # before this wrapper's own json import
    reader = sys.modules.get("esper_lint.torch_index.reader")
    loaded = bool(reader and reader.load_index.cache_info().currsize)
    made = made_dataclasses()
    import json
    with open(out, "w") as handle:
        json.dump({"modules": modules, "index_loaded": loaded, "dataclasses": made}, handle)
sys.exit(code)
"""


def record_cli(tmp_path: Path, *args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    """The CLI's exit code, and what `_WRAPPER` recorded when it was done."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(out), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in done.stderr, done.stderr
    recorded: dict[str, Any] = json.loads(out.read_text())
    return done.returncode, recorded


def run_cli(tmp_path: Path, *args: str, cwd: Path) -> tuple[int, set[str], bool]:
    code, recorded = record_cli(tmp_path, *args, cwd=cwd)
    return code, set(recorded["modules"]), recorded["index_loaded"]


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def project(tmp_path: Path, pyproject: str, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


PLAIN = '[project]\nname = "p"\nversion = "0"\n'
WITH_TORCH = '[project]\nname = "p"\nversion = "0"\ndependencies = ["torch>=2.1"]\n\n[tool.esper-lint]\n'


def test_the_clean_file_fails_the_byte_precheck() -> None:
    assert not bytes_may_reference(CLEAN.encode(), Config().roots)
    assert bytes_may_reference(ONE_USE.encode(), Config().roots)


@pytest.mark.parametrize("cache", ["--no-cache", "cache"])
def test_a_clean_run_imports_neither_libcst_nor_the_index(tmp_path: Path, cache: str) -> None:
    root = project(tmp_path, PLAIN, {"a.py": CLEAN, "b.py": CLEAN.replace("Block", "Other")})
    options = ["--no-cache"] if cache == "--no-cache" else []
    for _ in range(2):  # the second run with a cache is served from it
        code, modules, index_loaded = run_cli(tmp_path, "check", *options, "a.py", "b.py", cwd=root)
        assert code == 0
        assert loaded(modules, PARSING) == []
        assert loaded(modules, INDEX) == []
        assert not index_loaded
        # nor the noqa machinery (no finding to suppress), nor the rule documents (the summary
        # counts fixable findings only when there are findings)
        assert loaded(modules, ("esper_lint.noqa", "esper_lint.catalog")) == []
        # nor the cache, the worker pool or `dataclasses` (which imports `inspect`): a few files
        # are read and pre-checked first (frontends/runner.py)
        assert loaded(modules, ("esper_lint.frontends.cache", "esper_lint.frontends.pool", "dataclasses")) == []
        # nor the stdlib that only a parse, the index or a cache entry needs
        assert loaded(modules, ("ast", "json", "threading")) == []
        if not options:  # pre-commit's plain `check FILE...`: no argparse (frontends/options.py)
            assert loaded(modules, ("argparse", "esper_lint.frontends.arguments")) == []
            # nor pathlib (with urllib.parse and ipaddress: a tenth of the run): paths are strings
            # there, spelled as pathlib spells them (frontends/paths.py)
            assert loaded(modules, ("pathlib", "urllib", "ipaddress")) == []


def test_a_clean_run_in_a_project_with_a_torch_range_loads_no_index(tmp_path: Path) -> None:
    """The configuration reads the project's torch range with the version parser
    (esper_lint.torch_index.versions); the index itself is never read."""
    root = project(tmp_path, WITH_TORCH, {"a.py": CLEAN})
    code, modules, index_loaded = run_cli(tmp_path, "check", "a.py", cwd=root)
    assert code == 0
    assert loaded(modules, PARSING) == []
    assert loaded(modules, INDEX) == []
    assert not index_loaded
    assert loaded(modules, ("pathlib",)) == []  # the index's header is read without it (data.open_rules_file)


def test_a_clean_folder_walk_imports_no_pathlib(tmp_path: Path) -> None:
    """`check .` in a repository: the configuration search, the walk and its .gitignore work on
    strings too (frontends/paths.py)."""
    root = project(tmp_path, WITH_TORCH, {"a.py": CLEAN, ".gitignore": "build/\n"})
    (root / ".git").mkdir()
    (root / "pkg").mkdir()
    (root / "pkg" / "b.py").write_text(CLEAN, encoding="utf-8")
    (root / "build").mkdir()
    (root / "build" / "c.py").write_text(ONE_USE, encoding="utf-8")  # ignored: never read
    code, modules, index_loaded = run_cli(tmp_path, "check", ".", cwd=root)
    assert code == 0
    assert loaded(modules, PARSING + INDEX) == [] and not index_loaded
    assert loaded(modules, ("pathlib", "urllib", "ipaddress")) == []


def test_a_private_use_loads_the_index_only_for_index_backed_codes(tmp_path: Path) -> None:
    root = project(tmp_path, WITH_TORCH, {"a.py": ONE_USE})
    code, modules, index_loaded = run_cli(tmp_path, "check", "--no-cache", "--select", "ESP1", "a.py", cwd=root)
    assert code == 1
    assert "libcst" in modules  # this file needs the parse
    assert loaded(modules, INDEX) == []
    assert not index_loaded
    # With ESP2xx and ESP301 selected (the default), the same file does read the index.
    code, modules, index_loaded = run_cli(tmp_path, "check", "--no-cache", "a.py", cwd=root)
    assert code == 1
    assert "esper_lint.analysis.knowledge" in modules and index_loaded


def test_a_warm_run_over_a_private_use_imports_no_libcst(tmp_path: Path) -> None:
    root = project(tmp_path, WITH_TORCH, {"a.py": ONE_USE})
    first = run_cli(tmp_path, "check", "a.py", cwd=root)
    assert first[0] == 1 and "libcst" in first[1]
    code, modules, index_loaded = run_cli(tmp_path, "check", "a.py", cwd=root)
    assert code == 1
    assert loaded(modules, PARSING) == [] and not index_loaded


def test_a_run_over_private_uses_makes_no_dataclass(tmp_path: Path) -> None:
    """Making a dataclass runs generated code, about 1 ms a class (a frozen one more): on the path of
    a file with a private use, esper-lint's records are named tuples and slotted classes. libcst
    imports `dataclasses` itself, so the classes are what is checked, not the module."""
    noqa_use = "import torch\n\ntorch._C._get_tracing_state()  # noqa: ESP101\n"
    root = project(tmp_path, WITH_TORCH, {"a.py": ONE_USE, "b.py": noqa_use})
    code, recorded = record_cli(tmp_path, "check", "a.py", "b.py", cwd=root)
    assert code == 1
    modules = set(recorded["modules"])
    # The run went through the parse, the judge, the index with its signatures, positions, the noqa
    # comments, the rule documents and the cache, and libcst brought `dataclasses` along.
    path = (
        "dataclasses",
        "esper_lint.analysis.judge",
        "esper_lint.analysis.knowledge",
        "esper_lint.torch_index.calls",
        "esper_lint.fast.positions",
        "esper_lint.noqa",
        "esper_lint.catalog",
        "esper_lint.frontends.cache",
    )
    assert [name for name in path if name not in modules] == []
    assert recorded["index_loaded"]
    assert recorded["dataclasses"] == []


@pytest.mark.parametrize("args", [("rule", "ESP101"), ("rule", "--table"), ("explain", "torch._foreach_norm")])
def test_rule_and_explain_import_no_libcst(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, modules, _ = run_cli(tmp_path, *args, cwd=tmp_path)
    assert code == 0
    assert loaded(modules, PARSING) == []


def test_verify_without_private_names_imports_neither_torch_nor_libcst(tmp_path: Path) -> None:
    root = project(tmp_path, PLAIN, {"a.py": CLEAN})
    code, modules, _ = run_cli(tmp_path, "verify", "--no-cache", cwd=root)
    assert code == 0
    assert "torch" not in modules
    assert loaded(modules, PARSING) == []


def test_inventory_of_files_without_private_names_imports_no_libcst(tmp_path: Path) -> None:
    root = project(tmp_path, WITH_TORCH, {"a.py": CLEAN})
    code, modules, index_loaded = run_cli(tmp_path, "inventory", "--no-cache", cwd=root)
    assert code == 0
    assert loaded(modules, PARSING) == []
    assert not index_loaded


def test_importing_the_flake8_plugin_imports_no_libcst() -> None:
    """flake8 imports every registered plugin at start, whatever is selected."""
    code = (
        "import json, sys\n"
        "import esper_lint.flake8_plugin, esper_lint.frontends.flake8_plugin\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    modules = set(json.loads(done.stdout))
    assert loaded(modules, PARSING) == []
    assert loaded(modules, ("esper_lint.torch_index", *INDEX)) == []  # not even the version parser


def test_flake8_over_a_clean_file_imports_no_libcst(tmp_path: Path) -> None:
    pytest.importorskip("flake8")
    (tmp_path / "a.py").write_text(CLEAN, encoding="utf-8")
    code = (
        "import json, sys\n"
        "from flake8.main.cli import main\n"
        "code = main(['--isolated', '--select', 'ESP', '-j', '1', 'a.py'])\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    exit_code, modules = json.loads(done.stdout.splitlines()[-1])
    assert exit_code == 0
    assert "esper_lint.frontends.flake8_plugin" in modules  # the plugin did run
    assert loaded(set(modules), PARSING) == []
