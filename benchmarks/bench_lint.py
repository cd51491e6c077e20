"""Benchmark esper-lint against its floors and neighbouring tools, on one machine in one run.

    python benchmarks/bench_lint.py --corpus both --jobs 2 --limit 300

Corpora (every tool is given the same explicit list of .py files):
  torch       the installed torch package's own sources (found without importing torch);
  downstream  benchmarks/make_corpus.py's seeded 3,000-file training code base, ~13% of files
              using private torch names.
Tools, each in a fresh process tree, measured by a wrapper process:
  esper-lint cold  `esper-lint check --no-cache -j N` (every file read, pre-checked, parsed if needed);
  esper-lint warm  the same with a result cache that a previous run filled;
  ast floor        `ast.parse` of every file in a multiprocessing pool of N processes;
  libcst floor     `libcst.parse_module` of every file in the same pool;
  TorchFix         `flake8 --select TOR -j N` from its own virtualenv (TorchFix pins libcst);
  ruff             `ruff check --preview --select SLF001,PLC2701` (RAYON_NUM_THREADS=N).
For each: wall time, CPU time (user+sys of the whole process tree, getrusage(RUSAGE_CHILDREN) in the
wrapper) and peak memory (the largest single process's max RSS: workers are not summed).
The fast tools run --repeat times (default 3) and the run with the median wall time is reported;
the libcst floor and TorchFix, which take minutes, run once.
Also: one `esper-lint check FILE` on a single file (the pre-commit case), and bare interpreter start.
Writes results.json, results.md and chart.png under --out (default .bench/, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from torch_sources import torch_source_files

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("ESPER_BENCH_VENVS", "/work/bench-venvs"))
PYTHON = sys.executable

# ---------------------------------------------------------------------------------------- floors
_FLOOR_MAX_FILES = 100_000


def _floor_parse(task: tuple[str, str]) -> int:
    kind, path = task
    data = Path(path).read_bytes()
    try:
        if kind == "ast":
            import ast

            ast.parse(data)
        else:
            import libcst

            libcst.parse_module(data)
    except Exception:  # a file either parser refuses still counts as work done
        return 0
    return 1


def floor_main(kind: str, list_file: str, jobs: int) -> None:
    """Runs in the measured child: parse every listed file in a pool of `jobs` processes."""
    import multiprocessing

    files = Path(list_file).read_text(encoding="utf-8").splitlines()[:_FLOOR_MAX_FILES]
    tasks = [(kind, f) for f in files]
    if jobs == 1:
        parsed = sum(map(_floor_parse, tasks))
    else:
        chunk = max(1, min(64, len(tasks) // (jobs * 8)))
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parsed = sum(pool.imap_unordered(_floor_parse, tasks, chunksize=chunk))
    print(json.dumps({"parsed": parsed, "files": len(files)}))


# ---------------------------------------------------------------------------------------- measuring
_WRAPPER = r"""
import json, os, resource, subprocess, sys, time
with open(sys.argv[1], encoding="utf-8") as handle:
    command, extra_env = json.load(handle)
env = dict(os.environ, **extra_env)
before = resource.getrusage(resource.RUSAGE_CHILDREN)
start = time.perf_counter()
done = subprocess.run(command, cwd=sys.argv[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall": wall,
    "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    "max_rss_mib": after.ru_maxrss / 1024,
    "rc": done.returncode,
    "stdout_tail": done.stdout[-400:].decode("utf-8", "replace"),
    "stderr_tail": done.stderr[-400:].decode("utf-8", "replace"),
}))
"""


def measure(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run `command` under a fresh wrapper process, so RUSAGE_CHILDREN covers this tool alone."""
    spec = cwd / "command.json"  # one argv string may not exceed 128 KiB: the file list goes in a file
    spec.write_text(json.dumps([command, env or {}]), encoding="utf-8")
    out = subprocess.run([PYTHON, "-c", _WRAPPER, str(spec), str(cwd)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------- corpora
def downstream_files(out: Path, files: int) -> list[Path]:
    corpus = out / "corpus-downstream"
    stamp = corpus / ".complete"
    if not stamp.exists() or stamp.read_text() != str(files):
        shutil.rmtree(corpus, ignore_errors=True)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from make_corpus import generate

        generate(corpus, files=files, private_share=0.13, seed=0)
        stamp.write_text(str(files))
    return sorted(corpus.rglob("*.py"))


# ---------------------------------------------------------------------------------------- tools
def ensure_venv(name: str, packages: list[str], executable: str) -> Path | None:
    venv = VENVS / name
    tool = venv / "bin" / executable
    if tool.exists():
        return tool
    on_path = shutil.which(executable) if name == "ruff" else None
    if on_path:
        return Path(on_path)
    print(f"creating {venv} ({' '.join(packages)}) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"  could not create {venv}: {exc}; skipping {name}", flush=True)
        return None
    return tool


def esper_supports(option: str) -> bool:
    text = subprocess.run([PYTHON, "-m", "esper_lint", "check", "--help"], capture_output=True, text=True).stdout
    return option in text


def run_corpus(name: str, files: list[Path], args: argparse.Namespace, tools: dict[str, Path | None]) -> dict:
    out: Path = args.out
    work = out / f"work-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    list_file = work / "files.txt"
    list_file.write_text("\n".join(str(f) for f in files) + "\n", encoding="utf-8")
    config = work / "pyproject.toml"
    config.write_text("[tool.esper-lint]\n", encoding="utf-8")  # defaults, whatever project is around
    paths = [str(f) for f in files]
    jobs = str(args.jobs)
    esper = [PYTHON, "-m", "esper_lint", "check", "--config", str(config), "--exit-zero", "--format", "json"]
    if esper_supports("--jobs"):
        esper += ["--jobs", jobs]
    results: dict[str, dict] = {}

    def record(label: str, command: list[str], env: dict[str, str] | None = None, repeat: int = args.repeat) -> None:
        """The run with the median wall time of `repeat`: on a shared VM one run of a few seconds
        can land in a busy moment. The two slow runs (libcst floor, TorchFix) run once: over
        minutes such moments average out."""
        print(f"  [{name}] {label} ...", end="", flush=True)
        samples = sorted((measure(command, work, env) for _ in range(repeat)), key=lambda r: r["wall"])
        result = dict(samples[len(samples) // 2], samples_wall=[round(r["wall"], 2) for r in samples])
        results[label] = result
        spread = f" (runs: {', '.join(f'{r:.2f}' for r in result['samples_wall'])})" if repeat > 1 else ""
        print(
            f" {result['wall']:.2f} s wall, {result['cpu']:.2f} s CPU, {result['max_rss_mib']:.0f} MiB, rc {result['rc']}{spread}",
            flush=True,
        )

    if esper_supports("--no-cache"):
        record("esper-lint cold", [*esper, "--no-cache", *paths])
        cache = ["--cache-dir", str(work / "cache")]
        measure([*esper, *cache, *paths], work)  # fills the cache (not reported)
        record("esper-lint warm", [*esper, *cache, *paths])
    else:
        record("esper-lint cold", [*esper, *paths])
    record("ast floor", [PYTHON, str(Path(__file__).resolve()), "_floor", "ast", str(list_file), jobs])
    record("libcst floor", [PYTHON, str(Path(__file__).resolve()), "_floor", "libcst", str(list_file), jobs], repeat=1)
    if tools.get("torchfix"):
        record(
            "TorchFix (flake8 --select TOR)",
            [str(tools["torchfix"]), "--isolated", "--select", "TOR", "--exit-zero", "-j", jobs, *paths],
            repeat=1,
        )
    if tools.get("ruff"):
        record(
            "ruff SLF001,PLC2701",
            [str(tools["ruff"]), "check", "--isolated", "--no-cache", "--preview", "--select", "SLF001,PLC2701",
             "--exit-zero", "--quiet", *paths],
            {"RAYON_NUM_THREADS": jobs},
        )
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files), "tools": results}


def single_file(args: argparse.Namespace, sample: Path) -> dict:
    work = args.out / "work-single"
    work.mkdir(parents=True, exist_ok=True)
    target = work / "one_file.py"
    target.write_bytes(sample.read_bytes())
    runs = {
        "python -c pass (interpreter start)": [PYTHON, "-c", "pass"],
        "esper-lint check one_file.py": [PYTHON, "-m", "esper_lint", "check", "--exit-zero", "one_file.py"],
    }
    if shutil.which("esper-lint", path=str(Path(PYTHON).parent)):
        console_script = str(Path(PYTHON).parent / "esper-lint")
        runs["esper-lint check one_file.py (console script)"] = [console_script, "check", "--exit-zero", "one_file.py"]
    # `pip install` byte-compiles a package as it installs it; an editable install under
    # PYTHONDONTWRITEBYTECODE never does, and would pay for compiling esper_lint on every run.
    package = Path(__file__).resolve().parent.parent / "esper_lint"
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)
    results = {}
    for label, command in runs.items():
        samples = [measure(command, work) for _ in range(args.repeat_single)]
        best = min(samples, key=lambda r: r["cpu"])
        results[label] = best
        print(f"  [single] {label}: {best['wall']:.3f} s wall, {best['cpu']:.3f} s CPU (best of {len(samples)})", flush=True)
    return results


# ---------------------------------------------------------------------------------------- report
def ratio(corpus: dict | None, top: str, bottom: str, what: str = "wall") -> str:
    if not corpus:
        return "n/a"
    tools = corpus["tools"]
    if top not in tools or bottom not in tools or not tools[bottom][what]:
        return "n/a"
    return f"{tools[top][what] / tools[bottom][what]:.2f}x"


def report(results: dict) -> str:
    lines = []
    for name in ("downstream", "torch"):
        corpus = results["corpora"].get(name)
        if not corpus:
            continue
        lines.append(f"\n**{name}**: {corpus['files']} files, {corpus['bytes'] / 1e6:.1f} MB, --jobs {results['jobs']}\n")
        lines.append("| tool | wall s | CPU s | peak RSS MiB | exit |")
        lines.append("|---|---:|---:|---:|---:|")
        for tool, r in corpus["tools"].items():
            lines.append(f"| {tool} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['max_rss_mib']:.0f} | {r['rc']} |")
    down, torch = results["corpora"].get("downstream"), results["corpora"].get("torch")
    lines.append("\n| ratio | wall | CPU |")
    lines.append("|---|---:|---:|")
    for label, corpus, top, bottom in (
        ("esper-lint cold / ast floor (downstream)", down, "esper-lint cold", "ast floor"),
        ("esper-lint cold / libcst floor (torch)", torch, "esper-lint cold", "libcst floor"),
        ("TorchFix / esper-lint cold (torch)", torch, "TorchFix (flake8 --select TOR)", "esper-lint cold"),
        ("esper-lint warm / cold (downstream)", down, "esper-lint warm", "esper-lint cold"),
    ):
        lines.append(f"| {label} | {ratio(corpus, top, bottom)} | {ratio(corpus, top, bottom, 'cpu')} |")
    if results.get("single"):
        lines.append("\n| single file (pre-commit case) | wall s | CPU s |")
        lines.append("|---|---:|---:|")
        for label, r in results["single"].items():
            lines.append(f"| {label} | {r['wall']:.3f} | {r['cpu']:.3f} |")
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)")
        return
    corpora = [(n, c) for n, c in results["corpora"].items() if c]
    figure, axes = plt.subplots(1, len(corpora), figsize=(6.5 * len(corpora), 4.2), squeeze=False)
    for axis, (name, corpus) in zip(axes[0], corpora, strict=True):
        labels = list(corpus["tools"])
        wall = [corpus["tools"][t]["wall"] for t in labels]
        cpu = [corpus["tools"][t]["cpu"] for t in labels]
        y = range(len(labels))
        axis.barh([i + 0.2 for i in y], wall, height=0.4, label="wall s")
        axis.barh([i - 0.2 for i in y], cpu, height=0.4, label="CPU s")
        axis.set_yticks(list(y), labels)
        axis.invert_yaxis()
        axis.set_xscale("log")
        axis.set_title(f"{name}: {corpus['files']} files, -j {results['jobs']}")
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"chart: {path}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_floor":
        floor_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("torch", "downstream", "both"), default="both")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    parser.add_argument("--limit", type=int, default=None, help="only the first N files of each corpus (sorted paths)")
    parser.add_argument("--downstream-files", type=int, default=3000)
    parser.add_argument("--skip-torchfix", action="store_true")
    parser.add_argument("--skip-ruff", action="store_true")
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--repeat-single", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast tool; the median wall time is reported")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    tools: dict[str, Path | None] = {}
    if not args.skip_torchfix:
        tools["torchfix"] = ensure_venv("torchfix", ["torchfix", "flake8"], "flake8")
    if not args.skip_ruff:
        tools["ruff"] = ensure_venv("ruff", ["ruff"], "ruff")
    results: dict = {
        "jobs": args.jobs,
        "limit": args.limit,
        "python": sys.version.split()[0],
        "corpora": {},
        "tools": {k: str(v) for k, v in tools.items()},
    }
    downstream: list[Path] = []
    if args.corpus in ("downstream", "both"):
        downstream = downstream_files(args.out, args.downstream_files)[: args.limit]
        results["corpora"]["downstream"] = run_corpus("downstream", downstream, args, tools)
    if args.corpus in ("torch", "both"):
        results["corpora"]["torch"] = run_corpus("torch", torch_source_files()[: args.limit], args, tools)
    if not args.skip_single:
        sample = next((p for p in downstream if b"torch._" in p.read_bytes()), None) or Path(__file__)
        results["single"] = single_file(args, sample)
    text = report(results)
    print(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "results.md").write_text(text, encoding="utf-8")
    chart(results, args.out / "chart.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
