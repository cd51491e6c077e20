"""Run every autofix over a copy of the installed torch package's own sources and check it at scale.

torch's sources reference private torch names on nearly every page, so they exercise every fix
kind thousands of times. The package is found with importlib.util.find_spec (torch is never
imported), its *.py files are copied to a temporary folder, and

1. `fix_paths(mode="fix", unsafe=True, add_templates=True)` fixes them all (ESP301, ESP101 and
   ESP103, with the documentation templates), or with `--safe-only` applies only what `--fix` alone
   applies, which must insert no placeholder at all;
2. every changed file must parse (libcst and CPython); files changed only by comment fixes must have
   an identical AST; files with ESP301 rewrites may differ only in dotted names that changed and in
   imports under `torch` (derived here from the two ASTs, not from the fixer's own bookkeeping);
3. a second run must change nothing;
4. `check` on the fixed copy must report no ESP101, ESP103 or ESP301 that a fix could have handled:
   leftovers are counted and shown, and ESP102s are split into placeholder ones and others.

    python benchmarks/fix_torch_sources.py [--sample N] [--jobs N] [--keep DIR] [--safe-only]

Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst

from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fix import fix_paths
from esper_lint.fix.document import FALLBACK_PLACEHOLDER, VERSION_PLACEHOLDER
from esper_lint.fix.safety import ast_dotted
from torch_sources import torch_package_dir


def source_files(root: Path, sample: int | None) -> list[Path]:
    files = sorted(p for p in root.rglob("*.py") if p.is_file())
    if sample and sample < len(files):
        step = len(files) / sample
        files = [files[int(i * step)] for i in range(sample)]
    return files


def copy_sources(files: list[Path], root: Path, target: Path) -> list[Path]:
    copies = []
    for path in files:
        copy = target / path.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def _chains(tree: ast.AST) -> Counter[str]:
    return Counter(text for node in ast.walk(tree) if isinstance(node, ast.Attribute) and (text := ast_dotted(node)))


class _Mask(ast.NodeTransformer):
    def __init__(self, chains: set[str]) -> None:
        self.chains = chains

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if ast_dotted(node) in self.chains:
            return ast.Name(id="__chain__", ctx=node.ctx)
        return self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        return None if any(a.name == "torch" or a.name.startswith("torch.") for a in node.names) else node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        module = node.module or ""
        return None if not node.level and (module == "torch" or module.startswith("torch.")) else node


def ast_problem(old: bytes, new: bytes, codes: set[str]) -> str | None:
    try:
        cst.parse_module(new)
        new_tree = ast.parse(new)
    except Exception as exc:  # any failure is the finding
        return f"does not parse: {exc}"
    old_tree = ast.parse(old)
    if "ESP301" not in codes:
        return None if ast.dump(old_tree) == ast.dump(new_tree) else "comment-only fix changed the AST"
    old_chains, new_chains = _chains(old_tree), _chains(new_tree)
    changed = {c for c in old_chains if old_chains[c] != new_chains.get(c, 0)}
    changed |= {c for c in new_chains if new_chains[c] != old_chains.get(c, 0)}
    if ast.dump(_Mask(changed).visit(old_tree)) != ast.dump(_Mask(changed).visit(new_tree)):
        return "ESP301 changed more than dotted names and torch imports"
    return None


def _ast_task(task: tuple[str, bytes, list[str], str]) -> str | None:
    path, old, codes, display = task
    problem = ast_problem(old, Path(path).read_bytes(), set(codes))
    return f"{display}: {problem}" if problem else None


def _check_task(task: tuple[str, str, Config]) -> tuple[Counter[str], dict[str, list[str]]]:
    path, display, config = task
    left: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for finding in analyse_source(Path(path).read_bytes(), display, config).findings:
        code = finding.code
        if code == "ESP102":
            placeholder = VERSION_PLACEHOLDER in finding.message or FALLBACK_PLACEHOLDER[:40] in finding.message
            code = "ESP102 (placeholder)" if placeholder else "ESP102 (other)"
        left[code] += 1
        if finding.code in ("ESP101", "ESP103", "ESP301"):
            examples.setdefault(finding.code, []).append(f"{finding.path}:{finding.line} {finding.name}")
    return left, examples


def _map(function, tasks, jobs):
    workers = max(1, jobs or os.cpu_count() or 1)
    if workers == 1 or len(tasks) < 16:
        return list(map(function, tasks))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, tasks, chunksize=max(1, min(32, len(tasks) // (workers * 8)))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, help="fix an evenly spaced sample of N files instead of all")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--keep", type=Path, help="copy to this folder (kept) instead of a temporary one")
    parser.add_argument("--safe-only", action="store_true", help="apply only the safe fixes, as `--fix` alone does")
    args = parser.parse_args(argv)
    return run(sample=args.sample, jobs=args.jobs, keep=args.keep, safe_only=args.safe_only)


def run(
    *,
    sample: int | None = None,
    jobs: int | None = None,
    keep: Path | None = None,
    quiet: bool = False,
    safe_only: bool = False,
) -> int:
    say = (lambda *a: None) if quiet else print
    root = torch_package_dir()
    files = source_files(root, sample)
    workdir = Path(tempfile.mkdtemp(prefix="esper-fix-torch-")) if keep is None else keep
    try:
        copies = copy_sources(files, root, workdir)
        before = {path: path.read_bytes() for path in copies}
        config = Config(project_root=workdir)
        say(f"torch sources: {root} ({len(copies)} files, {sum(map(len, before.values())) / 1e6:.1f} MB)")

        started = time.perf_counter()
        options = {"unsafe": not safe_only, "add_templates": not safe_only}
        first = fix_paths(copies, config, mode="fix", jobs=jobs, **options)
        fix_seconds = time.perf_counter() - started
        by_code = Counter(fix.code for item in first.files for fix in item.applied if not fix.template)
        by_kind = Counter(fix.applicability for item in first.files for fix in item.applied if not fix.template)
        withheld = Counter(
            "template" if fix.template else fix.applicability for item in first.files for fix in item.withheld
        )
        say(f"fix run ({'safe fixes only' if safe_only else 'unsafe fixes and templates too'}): {fix_seconds:.1f} s, "
            f"{first.changed_files} files changed, {first.fixed} fixes "
            f"({', '.join(f'{code} {count}' for code, count in sorted(by_code.items()))}; "
            f"{', '.join(f'{kind} {count}' for kind, count in sorted(by_kind.items()))}), "
            f"{first.templates} templates inserted, {len(first.errors)} refused; not applied: "
            + (", ".join(f"{kind} {count}" for kind, count in sorted(withheld.items())) or "none"))
        for error in first.errors[:20]:
            say(f"  refused: {error}")

        problems: list[str] = []
        started = time.perf_counter()
        tasks = [
            (str(item.path), before[item.path], sorted({fix.code for fix in item.applied}), item.display)
            for item in first.files
            if item.changed
        ]
        for problem in _map(_ast_task, tasks, jobs):
            if problem:
                problems.append(problem)
        say(f"parse/AST checks: {time.perf_counter() - started:.1f} s, {len(problems)} problems")
        for problem in problems[:20]:
            say(f"  {problem}")

        started = time.perf_counter()
        second = fix_paths(copies, config, mode="diff", jobs=jobs, **options)
        say(f"second run: {time.perf_counter() - started:.1f} s, {second.changed_files} files would change, "
            f"{second.fixed} fixes")
        for item in second.files:
            if item.changed:
                problems.append(f"{item.display}: second run changes it again")
                say(f"  not idempotent: {item.display}: {[f.description for f in item.applied][:3]}")

        started = time.perf_counter()
        left: Counter[str] = Counter()
        examples: dict[str, list[str]] = {}
        for counts, shown in _map(_check_task, [(str(p), str(p.relative_to(workdir)), config) for p in copies], jobs):
            left.update(counts)
            for code, items in shown.items():
                examples.setdefault(code, []).extend(items)
        say(f"check after fixing: {time.perf_counter() - started:.1f} s; findings left: "
            + ", ".join(f"{code} {count}" for code, count in sorted(left.items())))
        for code, shown in sorted(examples.items()):
            for example in shown[:5]:
                say(f"  {code} left: {example}")
        if safe_only and left["ESP102 (placeholder)"]:
            problems.append(f"--fix alone left {left['ESP102 (placeholder)']} placeholder(s)")
        ok = not problems and not first.errors
        say("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
