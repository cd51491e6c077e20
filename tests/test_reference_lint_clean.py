"""The reference module must pass its own linter, and its documentation block must tell the truth.

The CLI tests run ``python -m esper_lint check`` (text format ``path:line:col: CODE message``;
exit 0 without findings, 1 with findings). The other tests read the module's source directly and
need neither the CLI nor torch.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PACKAGE = REPO_ROOT / "esper_lint" / "reference"
REFERENCE_MODULE = REFERENCE_PACKAGE / "gradient_health.py"
PRIVATE_CALL = "torch._foreach_norm"
FINDING_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) (?P<message>.*)$")


def run_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--quiet", *map(str, paths)],  # no summary line: stderr holds errors only
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def source_lines() -> list[str]:
    return REFERENCE_MODULE.read_text(encoding="utf-8").splitlines()


def private_call_index(lines: list[str]) -> int:
    """0-based index of the one line that calls the private function."""
    matches = [i for i, line in enumerate(lines) if f"{PRIVATE_CALL}(" in line and not line.lstrip().startswith("#")]
    assert len(matches) == 1, matches
    return matches[0]


def documentation_block(lines: list[str]) -> list[str]:
    """The run of full-line comments directly above the private call (README, "The comment contract")."""
    index = private_call_index(lines)
    block: list[str] = []
    for line in reversed(lines[:index]):
        if not line.lstrip().startswith("#"):
            break
        block.insert(0, line.strip())
    return block


def block_fallback_code(block: list[str]) -> str:
    """The fallback as the README's comment contract reads it: after 'fallback is:', dedented, to a blank comment."""
    texts = [line[1:] for line in block]  # drop the '#'
    for position, text in enumerate(texts):
        marker = re.search(r"fallback(?: is| to)?:(.*)$", text, flags=re.IGNORECASE)
        if marker is None:
            continue
        if marker.group(1).strip():
            return marker.group(1).strip()
        following: list[str] = []
        for continuation in texts[position + 1 :]:
            if not continuation.strip():
                break
            following.append(continuation)
        return textwrap.dedent("\n".join(following)).strip()
    raise AssertionError(f"no fallback in block {block}")


# --------------------------------------------------------------------------- the CLI contract


def test_reference_package_lints_clean() -> None:
    completed = run_check(REFERENCE_PACKAGE)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout == ""
    assert completed.stderr == ""


def test_removing_the_documentation_block_is_reported(tmp_path: Path) -> None:
    lines = source_lines()
    block = documentation_block(lines)
    assert block, "the private call has no documentation block to remove"
    call = private_call_index(lines)
    stripped = lines[: call - len(block)] + lines[call:]
    assert len(stripped) == len(lines) - len(block)
    copy = tmp_path / "gradient_health.py"
    copy.write_text("\n".join(stripped) + "\n", encoding="utf-8")

    completed = run_check(copy)

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "ESP101" in completed.stdout
    assert PRIVATE_CALL in completed.stdout
    findings = [FINDING_LINE.match(line) for line in completed.stdout.splitlines() if line.strip()]
    assert all(findings), completed.stdout
    esp101 = [f for f in findings if f and f["code"] == "ESP101"]
    # Reported where the private name enters the code: the call, now without its block.
    assert [int(f["line"]) for f in esp101] == [call - len(block) + 1]


# --------------------------------------------------------------------------- the block itself


def test_block_uses_the_first_layout_with_the_correct_version() -> None:
    # 2.4, not 1.11: the function shipped in 1.11, but the call as written passes dtype=, which
    # first shipped in 2.4 (the "since" is that of the call, not of the name).
    block = documentation_block(source_lines())
    assert block[0] == "# NOTE: Private API, stable since PyTorch 2.4."
    assert block[1] == "# If this breaks in future PyTorch, fallback is:"
    assert len(block) == 3 and block[2].startswith("#   ")


def test_documented_fallback_is_exactly_what_the_fallback_path_runs() -> None:
    fallback = block_fallback_code(documentation_block(source_lines()))
    fallback_tree = ast.parse(fallback)
    module_tree = ast.parse(REFERENCE_MODULE.read_text(encoding="utf-8"))
    functions = {node.name: node for node in ast.walk(module_tree) if isinstance(node, ast.FunctionDef)}
    fallback_path = functions["per_tensor_norms"]
    runs = next(stmt for stmt in fallback_path.body if not isinstance(stmt, ast.Expr))  # skip the docstring
    assert ast.dump(fallback_tree.body[0]) == ast.dump(runs)
    # ... and the fused function's variables are the ones the fallback names.
    fused_parameters = [arg.arg for arg in functions["fused_norms"].args.args]
    assert fused_parameters == ["grads", "norm_type", "accumulation_dtype"]
    assert [arg.arg for arg in fallback_path.args.args] == fused_parameters


def test_the_private_call_passes_every_argument_literally() -> None:
    """No ``**kwargs``/``*args``: a static reader (and esper-lint) sees the ``dtype=`` keyword."""
    tree = ast.parse(REFERENCE_MODULE.read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and ast.unparse(node.func) == PRIVATE_CALL]
    assert len(calls) == 1
    call = calls[0]
    assert all(keyword.arg is not None for keyword in call.keywords)
    assert not any(isinstance(arg, ast.Starred) for arg in call.args)
    assert [keyword.arg for keyword in call.keywords] == ["dtype"]


def test_the_reference_requires_the_torch_release_its_block_names() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^reference = \["torch>=2\.4"\]', pyproject, flags=re.MULTILINE), "the extra must pin torch>=2.4"


def private_torch_references(tree: ast.AST) -> list[str]:
    """An independent, deliberately simple count of private torch names in a module."""
    aliases: dict[str, str] = {}
    found: list[str] = []

    def is_private(dotted: str) -> bool:
        return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
                   for part in dotted.split(".")[1:])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                if name.name.split(".")[0] == "torch":
                    aliases[(name.asname or name.name).split(".")[0]] = name.name if name.asname else "torch"
                    if is_private(name.name):
                        found.append(name.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
            for name in node.names:
                full = f"{node.module}.{name.name}"
                aliases[name.asname or name.name] = full
                if is_private(full):
                    found.append(full)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "_parent", None), ast.Attribute):
            parts: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                parts.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                dotted = ".".join([aliases[inner.id], *parts])
                if is_private(dotted):
                    found.append(dotted)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            name = node.args[1] if len(node.args) >= 2 else None
            if isinstance(name, ast.Constant) and str(name.value).startswith("_"):
                found.append(f"getattr(..., {name.value!r})")
    return found


def test_the_module_has_exactly_one_private_torch_reference() -> None:
    tree = ast.parse(REFERENCE_MODULE.read_text(encoding="utf-8"))
    for parent in ast.walk(tree):  # mark chains so only whole chains are counted
        for child in ast.iter_child_nodes(parent):
            child._parent = parent  # type: ignore[attr-defined]
    assert private_torch_references(tree) == [PRIVATE_CALL]
    for other in REFERENCE_PACKAGE.glob("*.py"):
        if other != REFERENCE_MODULE:
            assert private_torch_references(ast.parse(other.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("snippet", ["torch._foreach_norm(xs)", "from torch._C import x", "getattr(torch, '_x')"])
def test_the_private_reference_counter_can_see_private_names(snippet: str) -> None:
    tree = ast.parse("import torch\n" + snippet)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child._parent = parent  # type: ignore[attr-defined]
    assert len(private_torch_references(tree)) == 1
