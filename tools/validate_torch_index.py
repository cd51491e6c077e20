"""Validate the torch index against the installed torch by real imports.

    python -m tools.validate_torch_index [--sample N] [--seed S] [--json OUT]

Takes every name (or a random sample of N names) that the index says exists, exactly, in the
installed torch's minor release, and resolves it: the longest prefix the index marks as a
module is imported (falling back to shorter module prefixes when that fails), then the
remaining components are walked with ``getattr``. Prints the agreement rate (names that
resolve / names checked) and groups the disagreements by cause:

* ``import-error:<Exception>``: a module could not be imported here (a missing optional
  dependency such as triton, onnx or tensorboard, or a module only importable on some
  platform or build);
* ``missing-attribute:on-module`` / ``on-class`` / ``on-other``: the module imported but an
  attribute on the way is absent (a name only defined on CUDA/MPS/distributed builds or
  behind another run-time condition the static extraction cannot evaluate, a class-level
  annotation that declares an instance attribute, a name deleted at run time);
* ``error:<Exception>``: a ``getattr`` raised something else (lazy attributes that need a
  device, deprecated properties).

It also checks the operators: every private ``aten`` operator and overload that exists at
run time (``torch._C._jit_get_all_schemas()``) must be indexed for the release, and the names
the index marks absent from CPU-only builds are compared with what this build has.

This imports torch and many of its private modules: run it in a throw-away process, never
from the linter itself.

    python -m tools.validate_torch_index --references --wheels DIR [--cache DIR] [--index FILE]

does not import torch: for every release, it counts the private names that the release's own
Python code uses (unguarded, see ``tools.torch_index_build.references``) but that the index
says are absent from that release, split by where the name would live: below a C-extension
object (``torch._C``, ``torch.Tensor``, ``torch.ops``: the index should have it) or below a
Python module or class (names set at run time, code for other builds or dead code, which no
static evidence can show). ``--index`` may name an index of the previous format (2) to
measure the index before this one.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import io
import json
import random
import sys
import types
import warnings
from typing import Any


def _hidden_modules(entries: list[tuple[str, str]]) -> set[str]:
    """Names of another kind that are also submodules: a name with indexed names below it whose
    file exists in the installed torch (``torch/_higher_order_ops/cond.py``)."""
    import os

    import torch

    root = os.path.dirname(torch.__file__)
    parents = {n.rpartition(".")[0] for n, _ in entries}
    out = set()
    for name, kind in entries:
        if kind != "module" and name in parents:
            rel = os.path.join(root, *name.split(".")[1:])
            if os.path.exists(rel + ".py") or os.path.exists(os.path.join(rel, "__init__.py")):
                out.add(name)
    return out


def _resolve(name: str, module_names: set[str], import_cache: dict[str, BaseException | None]) -> str | None:
    """None when ``name`` resolves, else the cause."""
    parts = name.split(".")
    obj = None
    start = 0
    cause: str | None = None
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if n > 1 and prefix not in module_names:
            continue
        if prefix not in import_cache:
            try:
                with (
                    contextlib.redirect_stdout(io.StringIO()),
                    contextlib.redirect_stderr(io.StringIO()),
                    warnings.catch_warnings(),
                ):
                    warnings.simplefilter("ignore")
                    importlib.import_module(prefix)
                import_cache[prefix] = None
            except BaseException as e:  # SystemExit etc. from odd modules
                import_cache[prefix] = e
        err = import_cache[prefix]
        if err is None:
            obj = sys.modules[prefix]
            start = n
            break
        if cause is None:
            cause = f"import-error:{type(err).__name__}"
    if obj is None:
        return cause or "import-error"
    for i in range(start, len(parts)):
        part = parts[i]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nxt = getattr(obj, part)
        except AttributeError:
            here = ".".join(parts[: i + 1])
            if import_cache.get(here) is not None:
                return cause or "import-error"
            if isinstance(obj, type):
                return "missing-attribute:on-class"
            if isinstance(obj, types.ModuleType):
                return "missing-attribute:on-module"
            return "missing-attribute:on-other"
        except BaseException as e:
            return f"error:{type(e).__name__}"
        obj = nxt
    return None


class _Presence:
    """``present(name, release)`` as the checks see it (the nearest known prefix counts, an
    unknown name below a complete operator namespace is absent), for an index file of format 3
    (read with the reader) or 2 (the format before it, decoded here)."""

    def __init__(self, path: str | None) -> None:
        import zlib

        from esper_lint.torch_index import TorchIndex, load_index

        self.old: dict[str, tuple[str, tuple[str, ...]]] | None = None
        if not path:
            self.index = load_index()
            self.releases = self.index.releases
            return
        with open(path, "rb") as handle:
            data = handle.read()
        header: dict[str, Any] = json.loads(zlib.decompressobj(31).decompress(data))
        if header["format"] == 3:
            self.index = TorchIndex.from_bytes(data)
            self.releases = self.index.releases
            return
        decoder = zlib.decompressobj(31)
        decoder.decompress(data)
        blobs = decoder.unused_data
        self.releases = tuple(header["releases"])
        ranges = header["ranges"]
        self.old = {}
        offset = 0
        for key, size in zip(header["bucket_keys"].split("\n"), header["bucket_sizes"], strict=False):
            raw = zlib.decompress(blobs[offset : offset + size], 31).decode()
            offset += size
            prev = ""
            for line in raw.split("\n"):
                shared, rest, tail = line.split("|")
                rel = prev[: int(shared)] + rest if shared else rest
                prev = rel
                present: list[str] = []
                for part in ranges[int(tail[1:])].split(","):
                    a, _, b = part.partition("-")
                    present.extend(self.releases[i] for i in range(int(a), int(b or a) + 1))
                self.old[f"{key}.{rel}" if key else rel] = (tail[0], tuple(present))

    def present_in(self, name: str) -> tuple[str, ...] | None:
        """None when the index knows nothing above the name."""
        if self.old is None:
            lk = self.index.lookup(name)
            return None if lk is None else lk.present_in
        parts = name.split(".")
        for n in range(len(parts), 1, -1):
            entry = self.old.get(".".join(parts[:n]))
            if entry is not None:
                if n != len(parts) and entry[0] in ("s", "p"):
                    return ()
                return entry[1]
        return None


def references_report(args: argparse.Namespace) -> int:
    """Per release: private names the release's own code uses that the index says it lacks."""
    from pathlib import Path

    from esper_lint.names import is_private_component
    from tools.build_torch_index import _read_summary, select_wheels

    presence = _Presence(args.index)
    by_release = select_wheels(sorted(Path(args.wheels).glob("torch-*.whl")))
    results: dict[str, dict[str, object]] = {}
    for release in presence.releases:
        if release not in by_release:
            continue
        _, _, rn = _read_summary(by_release[release], Path(args.cache) if args.cache else None)
        below_c: list[str] = []
        below_python: list[str] = []
        for ref in sorted(rn.references):
            present = presence.present_in(ref)
            if present is None or release in present:
                continue
            parts = ref.split(".")
            c_owner = parts[1] in ("_C", "Tensor", "ops", "_VF") or (len(parts) == 2 and is_private_component(parts[1]))
            (below_c if c_owner else below_python).append(ref)
        results[release] = {
            "references": len(rn.references),
            "absent": len(below_c) + len(below_python),
            "absent_below_c_extension": len(below_c),
            "absent_below_python": len(below_python),
            "examples_c": below_c[: args.examples],
            "examples_python": below_python[: args.examples],
        }
        print(f"{release}: {len(below_c) + len(below_python)} of {len(rn.references)} used private names absent "
              f"({len(below_c)} below a C-extension object, {len(below_python)} below Python code)"
              + (f"; e.g. {', '.join(below_c[:3])}" if below_c else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    return 0


def operators_report(idx: object, release: str, torch: object) -> dict[str, object]:
    """Private aten operators and overloads that exist at run time but are not indexed."""
    schemas = torch._C._jit_get_all_schemas()  # type: ignore[attr-defined]
    runtime: set[str] = set()
    for schema in schemas:
        ns, _, op = schema.name.partition("::")
        if ns != "aten" or not op.startswith("_") or (op.startswith("__") and op.endswith("__")):
            continue  # public operators, and dunders (`__and__`), which the index does not list as private
        runtime.add(f"torch.ops.aten.{op}")
        runtime.add(f"torch.ops.aten.{op}.{schema.overload_name or 'default'}")
    missing = sorted(
        n for n in runtime
        if not ((lk := idx.lookup(n)) is not None and lk.exact and release in lk.releases)  # type: ignore[attr-defined]
    )
    ops_missing = [n for n in missing if n.count(".") == 3]
    print(f"  private aten operators at run time: {sum(1 for n in runtime if n.count('.') == 3)} operators, "
          f"{sum(1 for n in runtime if n.count('.') == 4)} overloads; not indexed for {release}: "
          f"{len(ops_missing)} operators, {len(missing) - len(ops_missing)} overloads"
          + (f" (e.g. {', '.join(missing[:5])})" if missing else ""))
    return {"runtime": len(runtime), "missing": missing}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.validate_torch_index")
    ap.add_argument("--sample", type=int, default=0, help="check N random names (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results as JSON to this file")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--references", action="store_true",
                    help="count per release the used private names the index lacks (needs --wheels)")
    ap.add_argument("--wheels", default=None, help="folder of torch wheels (for --references)")
    ap.add_argument("--cache", default=None, help="the builder's extraction cache (for --references)")
    ap.add_argument("--index", default=None, help="an index file to check (default: the packaged one)")
    args = ap.parse_args(argv)
    if args.references:
        if not args.wheels:
            ap.error("--references needs --wheels")
        return references_report(args)

    import torch

    from esper_lint.torch_index import load_index
    from esper_lint.torch_index.versions import minor_release

    idx = load_index()
    release = minor_release(torch.__version__)
    if release not in idx.releases:
        print(f"torch {torch.__version__}: release {release} is not indexed", file=sys.stderr)
        return 2
    entries = [(n, k) for n, k, rels in idx.iter_names() if release in rels]
    # a module hidden by a package attribute of the same name (torch._higher_order_ops.cond, a
    # function of the package and a module) is still importable: its names resolve through it
    module_names = {n for n, k in entries if k == "module"} | _hidden_modules(entries)
    names = sorted(n for n, _ in entries)
    if args.sample and args.sample < len(names):
        names = sorted(random.Random(args.seed).sample(names, args.sample))
    cache: dict[str, BaseException | None] = {}
    failures: dict[str, list[str]] = collections.defaultdict(list)
    for name in names:
        cause = _resolve(name, module_names, cache)
        if cause is not None:
            failures[cause].append(name)
    failed = {n for items in failures.values() for n in items}
    cpu_marked = {n for n in names if (lk := idx.lookup(n)) is not None and lk.cpu_absent_at(release)}
    missing_attr = {n for k, items in failures.items() if k.startswith("missing-attribute") for n in items}
    bad = sum(len(v) for v in failures.values())
    ok = len(names) - bad
    rate = ok / len(names) if names else 1.0
    print(f"torch {torch.__version__} (index release {release}): {ok}/{len(names)} names "
          f"resolve ({rate:.2%})")
    unimportable = sum(len(v) for k, v in failures.items() if k.startswith("import-error"))
    importable = len(names) - unimportable
    rate_importable = ok / importable if importable else 1.0
    print(f"  excluding {unimportable} names in modules that cannot be imported here: "
          f"{ok}/{importable} ({rate_importable:.2%})")
    by_area: dict[str, collections.Counter[str]] = {}
    for cause, items in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        area = collections.Counter(".".join(n.split(".")[:2]) for n in items)
        by_area[cause] = area
        print(f"  {cause}: {len(items)}  (top areas: "
              + ", ".join(f"{a} {c}" for a, c in area.most_common(5)) + ")")
        for n in items[: args.examples]:
            print(f"      {n}")
    failed_imports = collections.Counter(
        f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
        for e in cache.values() if e is not None
    )
    if failed_imports:
        print(f"  modules that failed to import: {sum(failed_imports.values())}; most common errors:")
        for msg, c in failed_imports.most_common(8):
            print(f"      {c} x {msg}")
    wrongly_marked = sorted(cpu_marked - failed)
    print(f"  marked absent from CPU-only builds: {len(cpu_marked)}; of them resolve here anyway: {len(wrongly_marked)}"
          + (f" (e.g. {', '.join(wrongly_marked[:5])})" if wrongly_marked else ""))
    unmarked_c = sorted(n for n in missing_attr - cpu_marked if n.startswith("torch._C."))
    print(f"  missing torch._C names not marked absent from CPU-only builds: {len(unmarked_c)}"
          + (f" (e.g. {', '.join(unmarked_c[:5])})" if unmarked_c else ""))
    ops = operators_report(idx, release, torch)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "torch": torch.__version__,
                    "release": release,
                    "checked": len(names),
                    "resolved": ok,
                    "rate": rate,
                    "unimportable": unimportable,
                    "rate_importable": rate_importable,
                    "failures": {k: v for k, v in sorted(failures.items())},
                    "cpu_absent_marked": len(cpu_marked),
                    "cpu_absent_marked_but_resolve": wrongly_marked,
                    "missing_c_names_not_marked": unmarked_c,
                    "operators": ops,
                },
                f, indent=1, sort_keys=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
