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
  ruff             `ruff check --preview --select SLF001,PLC2701` (RAYON_NUM_THREADS=N);
  stat floor       an interpreter that stats every file: what a warm run cannot beat.
For each: wall time, CPU time (user+sys of the whole process tree, getrusage(RUSAGE_CHILDREN) in the
wrapper) and peak memory (the largest single process's max RSS: workers are not summed).
The fast tools run --repeat times (default 3) and the run with the median wall time is reported;
the libcst floor and TorchFix, which take minutes, run once.

The single-file section (the pre-commit case; `--only-single` runs it alone, in about a minute):
whole processes, side by side, --repeat-single rounds (default 7) each running every command once,
medians reported, every input edited before each round (pre-commit lints changed files):
  `python -c pass` (the interpreter floor) and `python -c "import libcst"` (the libcst floor);
  `esper-lint check` on a module without private use, the same module with one, and 10 "staged"
  modules (two with private uses), each as a ratio to its floor;
  `ruff check` on the same files; `flake8 --select ESP` against `flake8 --select E9` on 10 modules
  without private use (what the plugin adds to flake8).
`--only-warm` runs, of each corpus, only the warm run, the stat floor and ruff.

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


_STAT_FLOOR = "import os, sys\nfor line in open(sys.argv[1], encoding='utf-8'):\n    os.stat(line.rstrip('\\n'))\n"


def _ruff_command(ruff: Path | str, paths: list[str]) -> list[str]:
    rules = ["--preview", "--select", "SLF001,PLC2701", "--exit-zero", "--quiet"]
    return [str(ruff), "check", "--isolated", "--no-cache", *rules, *paths]


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
        if not args.only_warm:
            record("esper-lint cold", [*esper, "--no-cache", *paths])
        cache = ["--cache-dir", str(work / "cache")]
        measure([*esper, *cache, *paths], work)  # fills the cache (not reported)
        record("esper-lint warm", [*esper, *cache, *paths])
        if args.baseline_src:  # the same on an earlier checkout, with its own cache
            before = {"PYTHONPATH": str(args.baseline_src)}
            cache = ["--cache-dir", str(work / "cache-before")]
            measure([*esper, *cache, *paths], work, before)
            record("esper-lint warm [before]", [*esper, *cache, *paths], before)
    else:
        record("esper-lint cold", [*esper, *paths])
    # What a warm run cannot beat: start an interpreter and stat every file.
    record("stat floor", [PYTHON, "-c", _STAT_FLOOR, str(list_file)])
    if args.only_warm:
        if tools.get("ruff"):
            record("ruff SLF001,PLC2701", _ruff_command(tools["ruff"], paths), {"RAYON_NUM_THREADS": jobs})
        return {"files": len(files), "bytes": sum(f.stat().st_size for f in files), "tools": results}
    record("ast floor", [PYTHON, str(Path(__file__).resolve()), "_floor", "ast", str(list_file), jobs])
    record("libcst floor", [PYTHON, str(Path(__file__).resolve()), "_floor", "libcst", str(list_file), jobs], repeat=1)
    if tools.get("torchfix"):
        record(
            "TorchFix (flake8 --select TOR)",
            [str(tools["torchfix"]), "--isolated", "--select", "TOR", "--exit-zero", "-j", jobs, *paths],
            repeat=1,
        )
    if tools.get("ruff"):
        record("ruff SLF001,PLC2701", _ruff_command(tools["ruff"], paths), {"RAYON_NUM_THREADS": jobs})
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files), "tools": results}


# ---------------------------------------------------------------------------------------- single files
ONE_USE = "\n\nimport torch\n\n\ndef _fused_norms(grads):\n    return torch._foreach_norm(grads)\n"
STAGED_FILES, STAGED_PRIVATE = 10, 2


def _single_inputs(work: Path) -> dict[str, list[str]]:
    """The pre-commit cases, written under `work`: a module without private use (it fails the byte
    pre-check), the same module with one private use, and ten "staged" modules, two of them with
    private uses, from the downstream corpus's generator."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import random

    from make_corpus import make_module

    clean = make_module(random.Random("single-clean"), private=False)
    (work / "clean.py").write_text(clean, encoding="utf-8")
    (work / "one_use.py").write_text(clean + ONE_USE, encoding="utf-8")
    staged = []
    for index in range(STAGED_FILES):
        path = work / "staged" / f"module_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_module(random.Random(f"staged-{index}"), private=index < STAGED_PRIVATE), encoding="utf-8")
        staged.append(str(path.relative_to(work)))
    clean_staged = []
    for index in range(STAGED_FILES):
        path = work / "clean_staged" / f"module_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_module(random.Random(f"clean-staged-{index}"), private=False), encoding="utf-8")
        clean_staged.append(str(path.relative_to(work)))
    return {"clean": ["clean.py"], "one use": ["one_use.py"], "10 staged": staged, "10 clean": clean_staged}


def _edit(work: Path, files: list[str], round_number: int) -> None:
    """Each round edits every input first, as a commit does: pre-commit lints changed files, so a
    tool's cache (esper-lint's, ruff's) misses as it would there."""
    for name in files:
        path = work / name
        text = path.read_text(encoding="utf-8")
        base = text.split("\n# edit ", 1)[0].rstrip("\n")
        path.write_text(f"{base}\n# edit {round_number}\n", encoding="utf-8")


def _tool(name: str) -> str | None:
    """A console script beside this interpreter, else in the benchmark virtualenvs, else on PATH."""
    for candidate in (Path(PYTHON).parent / name, VENVS / name / "bin" / name):
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def single_file(args: argparse.Namespace) -> dict:
    """Whole processes, side by side: every round runs each command once (so a busy moment of the
    shared machine hits every row alike), and each row reports its median over the rounds."""
    work = args.out / "work-single"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # A project as pre-commit sees one: its own pyproject.toml (a torch dependency, an esper-lint table).
    (work / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\ndependencies = ["torch>=2.1"]\n\n[tool.esper-lint]\n', encoding="utf-8"
    )
    inputs = _single_inputs(work)
    # `pip install` byte-compiles a package as it installs it; an editable install under
    # PYTHONDONTWRITEBYTECODE never does, and would pay for compiling esper_lint on every run.
    before = {"PYTHONPATH": str(args.baseline_src)} if args.baseline_src else None
    for env in (None, before) if before else (None,):
        package = subprocess.run(
            [PYTHON, "-c", "import esper_lint, os; print(os.path.dirname(esper_lint.__file__))"],
            capture_output=True, text=True, check=True, env=dict(os.environ, **(env or {})), cwd=work,  # as the runs see it
        ).stdout.strip()
        subprocess.run([PYTHON, "-m", "compileall", "-q", package], check=True)
    console = _tool("esper-lint") if Path(PYTHON).parent.joinpath("esper-lint").exists() else None
    esper = [console] if console else [PYTHON, "-m", "esper_lint"]
    runs: dict[str, tuple[list[str], dict[str, str] | None]] = {}
    commands: dict[str, list[str]] = {
        "python -c pass": [PYTHON, "-c", "pass"],
        'python -c "import libcst"': [PYTHON, "-c", "import libcst"],
    }
    for label, files in inputs.items():
        if label != "10 clean":
            commands[f"esper-lint check: {label}"] = [*esper, "check", *files]
    ruff = None if args.skip_ruff else _tool("ruff")
    if ruff:
        for label, files in inputs.items():
            if label != "10 clean":
                rules = ["--select", "SLF001,PLC2701", "--exit-zero", "--quiet"]
                commands[f"ruff check: {label}"] = [ruff, "check", "--isolated", "--preview", *rules, *files]
    flake8 = _tool("flake8") if Path(PYTHON).parent.joinpath("flake8").exists() else None
    if flake8:  # the venv's own flake8, where esper-lint's plugin is registered
        commands["flake8 --select E9: 10 clean"] = [flake8, "--isolated", "-j", "1", "--select", "E9", *inputs["10 clean"]]
        commands["flake8 --select ESP: 10 clean"] = [flake8, "--isolated", "-j", "1", "--select", "ESP", *inputs["10 clean"]]
        # flake8's own run varies by more than 30 ms between rounds: the plugin's share is also timed
        # inside one process, after importing what flake8 itself loads (application, checker,
        # pycodestyle, pyflakes): the plugin's import and its work on the 10 files.
        commands[PLUGIN_ALONE] = [PYTHON, "-c", _PLUGIN_ALONE, *inputs["10 clean"]]
    for label, command in commands.items():
        runs[label] = (command, None)
        if before and (label.startswith("esper-lint") or "ESP" in label or label == PLUGIN_ALONE):
            if console and command[0] == console:  # what an earlier console script ran: cli.main, after `import re`
                command = [PYTHON, "-c", _EARLIER_CONSOLE_SCRIPT, *command[1:]]
            runs[f"{label} [before]"] = (command, before)  # the same command on --baseline-src's esper_lint
    edited = [name for files in inputs.values() for name in files]
    samples: dict[str, list[dict]] = {label: [] for label in runs}
    print(f"  [single] {len(runs)} commands, {args.repeat_single} rounds ...", flush=True)
    for round_number in range(args.repeat_single):
        _edit(work, edited, round_number)
        for label, (command, env) in runs.items():
            samples[label].append(measure(command, work, env))
    results = {}
    for label, runs_of in samples.items():
        walls = sorted(r["wall"] for r in runs_of)
        cpus = sorted(r["cpu"] for r in runs_of)
        median = len(walls) // 2
        inner = sorted(_seconds(r["stdout_tail"]) for r in runs_of) if label.startswith(PLUGIN_ALONE) else None
        results[label] = {
            "inner": inner[median] if inner else None,
            "wall": walls[median],
            "cpu": cpus[median],
            "max_rss_mib": max(r["max_rss_mib"] for r in runs_of),
            "rc": runs_of[-1]["rc"],
            "samples_wall": [round(r["wall"], 4) for r in runs_of],
            "stdout_tail": runs_of[-1]["stdout_tail"],
            "stderr_tail": runs_of[-1]["stderr_tail"],
        }
        shown = f"{walls[median]:.3f} s wall, {cpus[median]:.3f} s CPU (median of {len(walls)})"
        print(f"  [single] {label}: {shown}, rc {results[label]['rc']}", flush=True)
    return results


# The console script as pip wrote it before `cli.entry` existed: an earlier checkout has no `entry`.
_EARLIER_CONSOLE_SCRIPT = "import re, sys\nfrom esper_lint.frontends.cli import main\nsys.exit(main())"

PLUGIN_ALONE = "flake8 plugin alone: import + 10 clean"
_PLUGIN_ALONE = """
import sys, time
import flake8.checker, flake8.main.application, pycodestyle, pyflakes.checker  # what flake8 has loaded before plugins run
start = time.perf_counter()
from esper_lint.frontends.flake8_plugin import EsperLintChecker
for name in sys.argv[1:]:
    with open(name, encoding="utf-8") as handle:
        lines = handle.readlines()
    list(EsperLintChecker(None, name, lines).run())
print(time.perf_counter() - start)
"""


def _seconds(text: str) -> float:
    try:
        return float(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return float("nan")


# (row, its floor, goal as a ratio) for the single-file table
SINGLE_FLOORS = [
    ("esper-lint check: clean", "python -c pass", 4.0),
    ("esper-lint check: one use", 'python -c "import libcst"', 1.3),
    ("esper-lint check: 10 staged", 'python -c "import libcst"', None),
    ("ruff check: clean", "python -c pass", None),
    ("ruff check: one use", "python -c pass", None),
    ("ruff check: 10 staged", "python -c pass", None),
    ('python -c "import libcst"', "python -c pass", None),
    ("flake8 --select ESP: 10 clean", "flake8 --select E9: 10 clean", None),
]
PLUGIN_GOAL_S = 0.030


def single_report(single: dict) -> list[str]:
    lines = ["\n| single file (pre-commit case), median of rounds | wall s | CPU s | floor | wall / floor | CPU / floor | goal |"]
    lines.append("|---|---:|---:|---|---:|---:|---|")
    floors = {row: (floor, goal) for row, floor, goal in SINGLE_FLOORS}
    for label, r in single.items():
        floor, goal = floors.get(label.removesuffix(" [before]"), (None, None))
        if floor and floor in single:
            base = single[floor]
            wall_ratio, cpu_ratio = r["wall"] / base["wall"], r["cpu"] / base["cpu"]
            met = "" if goal is None else f"<= {goal}x: {'yes' if wall_ratio <= goal else 'no'}"
            lines.append(f"| {label} | {r['wall']:.3f} | {r['cpu']:.3f} | {floor} | {wall_ratio:.2f}x | {cpu_ratio:.2f}x | {met} |")
        else:
            lines.append(f"| {label} | {r['wall']:.3f} | {r['cpu']:.3f} | | | | |")
    bare = single.get("flake8 --select E9: 10 clean")
    for suffix in ("", " [before]"):
        alone = single.get(PLUGIN_ALONE + suffix)
        if alone and alone.get("inner") is not None:
            met = "yes" if alone["inner"] <= PLUGIN_GOAL_S else "no"
            lines.append(
                f"\nThe plugin{suffix}'s own work, timed inside one process after flake8's imports (the plugin's import,"
                " then 10 files without private use):"
                f" {alone['inner'] * 1000:.1f} ms (goal <= 30 ms added to flake8: {met})."
            )
        plugin = single.get(f"flake8 --select ESP: 10 clean{suffix}")
        if plugin and bare:
            added = plugin["wall"] - bare["wall"]
            met = "yes" if added <= PLUGIN_GOAL_S else "no"
            cpu = (plugin["cpu"] - bare["cpu"]) * 1000
            lines.append(
                f"\nThe plugin{suffix} adds {added * 1000:.0f} ms wall ({cpu:.0f} ms CPU) to flake8 -j 1 on 10 files without"
                f" private use (goal <= 30 ms: {met})."
            )
    return lines


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
    rows = (
        ("esper-lint cold / ast floor (downstream)", down, "esper-lint cold", "ast floor"),
        ("esper-lint cold / libcst floor (torch)", torch, "esper-lint cold", "libcst floor"),
        ("TorchFix / esper-lint cold (torch)", torch, "TorchFix (flake8 --select TOR)", "esper-lint cold"),
        ("esper-lint warm / cold (downstream)", down, "esper-lint warm", "esper-lint cold"),
        ("esper-lint warm / stat floor (downstream)", down, "esper-lint warm", "stat floor"),
        ("esper-lint warm / stat floor (torch)", torch, "esper-lint warm", "stat floor"),
        ("esper-lint warm [before] / stat floor (torch)", torch, "esper-lint warm [before]", "stat floor"),
        ("esper-lint warm / ruff (torch)", torch, "esper-lint warm", "ruff SLF001,PLC2701"),
    )
    if down or torch:
        lines.append("\n| ratio | wall | CPU |")
        lines.append("|---|---:|---:|")
        for label, corpus, top, bottom in rows:
            lines.append(f"| {label} | {ratio(corpus, top, bottom)} | {ratio(corpus, top, bottom, 'cpu')} |")
    if results.get("single"):
        lines.extend(single_report(results["single"]))
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
    if not corpora:
        return
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
    parser.add_argument("--corpus", choices=("torch", "downstream", "both", "none"), default="both")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    parser.add_argument("--limit", type=int, default=None, help="only the first N files of each corpus (sorted paths)")
    parser.add_argument("--downstream-files", type=int, default=3000)
    parser.add_argument("--skip-torchfix", action="store_true")
    parser.add_argument("--skip-ruff", action="store_true")
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--only-single", action="store_true", help="only the single-file section (about a minute)")
    parser.add_argument("--only-warm", action="store_true", help="of each corpus, only the warm run, the stat floor and ruff")
    parser.add_argument("--repeat-single", type=int, default=7, help="rounds of the single-file section; medians are reported")
    parser.add_argument(
        "--baseline-src", type=Path, default=None,
        help="a checkout of an earlier esper-lint: its single-file rows run in the same rounds, and its warm run, marked [before]",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast tool; the median wall time is reported")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only_single:
        args.corpus, args.skip_torchfix = "none", True
    tools: dict[str, Path | None] = {}
    if not args.skip_torchfix:
        tools["torchfix"] = ensure_venv("torchfix", ["torchfix", "flake8"], "flake8")
    if not args.skip_ruff and args.corpus != "none":
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
        results["single"] = single_file(args)
    text = report(results)
    print(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "results.md").write_text(text, encoding="utf-8")
    chart(results, args.out / "chart.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
