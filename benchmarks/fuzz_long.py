"""Long fuzzing run: the properties of tests/test_fuzz.py with thousands of generated programs.

    python benchmarks/fuzz_long.py --examples 5000

Failures are counted, not shrunk: every failing program is written to --out (default .bench/fuzz)
so it can be turned into a regression test. Prints examples, failures and wall time per property.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_fuzz import (  # noqa: E402
    PROGRAMS,
    check_analysis,
    check_precheck_soundness,
    check_reduction_is_invisible,
    commented_fixtures,
)

PROPERTIES = {
    "analysis": check_analysis,
    "precheck-soundness": check_precheck_soundness,
    "reduction-invisible": check_reduction_is_invisible,
}


def run_property(name: str, check, examples: int, out: Path, seed: int | None) -> tuple[int, int, float]:
    seen = 0
    failures = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(PROGRAMS, commented_fixtures()) if name == "reduction-invisible" else PROGRAMS)
    def probe(source: str) -> None:
        nonlocal seen, failures
        seen += 1
        try:
            check(source)
        except Exception:  # counted and kept, never shrunk
            failures += 1
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}-{failures:04d}.py").write_text(source, encoding="utf-8", errors="surrogatepass")
            (out / f"{name}-{failures:04d}.txt").write_text(traceback.format_exc(), encoding="utf-8")

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        probe = hypothesis_seed(seed)(probe)
    start = time.perf_counter()
    probe()
    return seen, failures, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000, help="examples per property (default 5000)")
    parser.add_argument("--property", choices=[*PROPERTIES, "all"], default="all")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, for a repeatable run")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "fuzz", help="where failing programs go")
    args = parser.parse_args()
    chosen = PROPERTIES if args.property == "all" else {args.property: PROPERTIES[args.property]}
    total_failures = 0
    print(f"{'property':<20} {'examples':>9} {'failures':>9} {'wall s':>8}")
    for name, check in chosen.items():
        seen, failures, wall = run_property(name, check, args.examples, args.out, args.seed)
        total_failures += failures
        print(f"{name:<20} {seen:>9} {failures:>9} {wall:>8.1f}", flush=True)
    if total_failures:
        print(f"failing programs written to {args.out}")
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
