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

This imports torch and many of its private modules: run it in a throw-away process, never
from the linter itself.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.validate_torch_index")
    ap.add_argument("--sample", type=int, default=0, help="check N random names (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results as JSON to this file")
    ap.add_argument("--examples", type=int, default=8)
    args = ap.parse_args(argv)

    import torch

    from esper_lint.torch_index import load_index
    from esper_lint.torch_index.versions import minor_release

    idx = load_index()
    release = minor_release(torch.__version__)
    if release not in idx.releases:
        print(f"torch {torch.__version__}: release {release} is not indexed", file=sys.stderr)
        return 2
    entries = [(n, k) for n, k, rels in idx.iter_names() if release in rels]
    module_names = {n for n, k in entries if k == "module"}
    names = sorted(n for n, _ in entries)
    if args.sample and args.sample < len(names):
        names = sorted(random.Random(args.seed).sample(names, args.sample))
    cache: dict[str, BaseException | None] = {}
    failures: dict[str, list[str]] = collections.defaultdict(list)
    for name in names:
        cause = _resolve(name, module_names, cache)
        if cause is not None:
            failures[cause].append(name)
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
                },
                f, indent=1, sort_keys=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
