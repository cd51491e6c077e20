"""Validate the signature history against the installed torch, by real imports.

    python -m tools.validate_torch_signatures [--sample N] [--seed S] [--json OUT]

Takes every private name (or a random sample of N) whose signature the history knows for the
installed torch's minor release, resolves it (imports the longest importable module prefix, then
walks attributes) and compares the stored parameter shape with ``inspect.signature`` of the object:
parameter names in order, positional-only/keyword-only, defaults, ``*args``/``**kwargs``. Prints the
agreement among the names torch exposes a signature for, and groups the rest by cause:

* ``unresolved``: the name cannot be reached here (a module needing an optional dependency, a
  CUDA-only name);
* ``no-runtime-signature``: torch exposes none (C functions, builtins): not checkable;
* ``differs``: both exist and disagree (listed with ``--json``).

This imports torch and many of its private modules: run it in a throw-away process, never from the
linter itself.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import inspect
import io
import json
import random
import sys
import warnings
from typing import Any

from esper_lint.torch_index.signatures import load_signatures


def _runtime_object(name: str, imported: dict[str, bool]) -> tuple[bool, Any]:
    parts = name.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if prefix not in imported:
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    importlib.import_module(prefix)
                imported[prefix] = True
            except BaseException:  # SystemExit and friends from odd modules
                imported[prefix] = False
        if not imported[prefix]:
            continue
        current: Any = sys.modules[prefix]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for part in parts[length:]:
                    current = getattr(current, part)
        except BaseException:
            return False, None
        return True, current
    return False, None


def encode_runtime(signature: inspect.Signature) -> str:
    """``inspect.Signature`` in the history's encoding (see tools.build_torch_signatures)."""
    tokens: list[str] = []
    kinds = [p.kind for p in signature.parameters.values()]
    for index, parameter in enumerate(signature.parameters.values()):
        kind = parameter.kind
        if kind is parameter.VAR_POSITIONAL:
            tokens.append("*" + parameter.name)
            continue
        if kind is parameter.VAR_KEYWORD:
            tokens.append("**" + parameter.name)
            continue
        if kind is parameter.KEYWORD_ONLY and (index == 0 or kinds[index - 1] not in (parameter.KEYWORD_ONLY, parameter.VAR_POSITIONAL)):
            tokens.append("*")
        tokens.append(parameter.name + ("=" if parameter.default is not parameter.empty else ""))
        if kind is parameter.POSITIONAL_ONLY and (index + 1 == len(kinds) or kinds[index + 1] is not parameter.POSITIONAL_ONLY):
            tokens.append("/")
    return ",".join(tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.validate_torch_signatures", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="check a random sample of N names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the disagreements to this file")
    args = parser.parse_args(argv)
    import torch

    release = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    history = load_signatures()
    if release not in history.releases:
        print(f"torch {torch.__version__} is not an indexed release", file=sys.stderr)
        return 2
    position = history.releases.index(release)
    names: list[tuple[str, str]] = []  # (name, stored parameters) of one-overload `def`s
    for key in sorted(history._locations):
        bucket = history._member(*history._locations[key])
        for relative, changes in sorted(bucket.items()):
            value = ""
            for index, encoded in changes:
                if index <= position:
                    value = encoded
            source, _, parameters = value.partition("|")
            if source == "py" and ";" not in parameters:
                names.append((f"{key}.{relative}" if key else relative, parameters))
    if args.sample and args.sample < len(names):
        names = sorted(random.Random(args.seed).sample(names, args.sample))
    imported: dict[str, bool] = {}
    causes: collections.Counter[str] = collections.Counter()
    differs: list[dict[str, str]] = []
    for name, stored in names:
        found, obj = _runtime_object(name, imported)
        if not found:
            causes["unresolved"] += 1
            continue
        try:
            runtime = inspect.signature(obj)
        except (TypeError, ValueError):
            causes["no-runtime-signature"] += 1
            continue
        encoded = encode_runtime(runtime)
        if encoded == stored:
            causes["agrees"] += 1
        else:
            causes["differs"] += 1
            differs.append({"name": name, "stored": stored, "runtime": encoded})
    checkable = causes["agrees"] + causes["differs"]
    print(f"torch {torch.__version__}: {len(names)} names with a `def` signature for {release}")
    for cause, count in sorted(causes.items()):
        print(f"  {cause}: {count}")
    if checkable:
        print(f"agreement: {causes['agrees'] / checkable:.2%} of {checkable} names with a run-time signature")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"release": release, "causes": dict(causes), "differs": differs}, handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
