"""Differential check of the reduction on real code: usual analysis == forced whole-file analysis.

    python benchmarks/differential.py --torch                 # the installed torch's own sources
    python benchmarks/differential.py path/to/src other.py    # any files or folders

For every file: `analyse_source` as `check` runs it (byte pre-check, CPython's tree, the reduced
file for libcst, positions generated per statement) against `analyse_source(..., force=True)`
(the whole file, the whole module generated), comparing findings and references with their
positions. Also checks that each reduced file parses with libcst and keeps every line. Prints each
mismatch, then a summary; exits 1 when any file differs.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import libcst as cst

from esper_lint.analysis.forms import MARKER_BYTES
from esper_lint.config import Config
from esper_lint.engine import analyse_source
from esper_lint.fast.precheck import bytes_may_reference
from esper_lint.fast.reduction import reduce_source
from torch_sources import torch_source_files

CONFIG = Config()


def compare(path: str) -> tuple[str, str | None, int, int]:
    """(path, problem or None, bytes, bytes libcst was given)."""
    raw = Path(path).read_bytes()
    usual = analyse_source(raw, path, CONFIG, with_references=True)
    full = analyse_source(raw, path, CONFIG, with_references=True, force=True)
    given = 0
    if MARKER_BYTES.search(raw) or bytes_may_reference(raw, CONFIG.roots):
        given = len(raw)
        try:
            tree = ast.parse(raw)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        if tree is not None:
            reduction = reduce_source(raw, tree, CONFIG.roots)
            given = len(reduction.source) if reduction.reportable else 0
            if reduction.reportable and reduction.source is not raw:
                if reduction.source.count(b"\n") != raw.count(b"\n"):
                    return path, "the reduced file has other lines", len(raw), given
                try:
                    cst.parse_module(reduction.source)
                except Exception as exc:  # reported, not raised: the run goes on
                    return path, f"the reduced file does not parse: {str(exc)[:200]}", len(raw), given
    if usual.findings != full.findings:
        only_usual = [f for f in usual.findings if f not in full.findings]
        only_full = [f for f in full.findings if f not in usual.findings]
        return path, f"findings differ: usual only {only_usual[:3]}, forced only {only_full[:3]}", len(raw), given
    if sorted(usual.references, key=repr) != sorted(full.references, key=repr):
        return path, "references differ", len(raw), given
    return path, None, len(raw), given


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--torch", action="store_true", help="the installed torch's own sources")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    files = torch_source_files() if args.torch else []
    for path in args.paths:
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    if not files:
        parser.error("give paths or --torch")
    start = time.perf_counter()
    differing = total = given = 0
    with Pool(args.jobs) as pool:
        for path, problem, size, passed in pool.imap_unordered(compare, [str(f) for f in files], chunksize=8):
            total += size
            given += passed
            if problem is not None:
                differing += 1
                print(f"{path}: {problem}")
    print(
        f"{len(files)} files, {differing} differing; {total:,} bytes, {given:,} given to libcst "
        f"after the pre-check and the reduction; {time.perf_counter() - start:.1f} s"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
