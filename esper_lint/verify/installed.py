"""Resolve dotted names in the installed torch, for `esper-lint verify`.

Only torch is imported (the longest importable module prefix of each name, then attribute walks);
the linted project's code is read as text and never imported or run.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

VERIFIABLE_ROOT = "torch"


class TorchNotInstalled(Exception):
    """verify needs a torch to verify against."""


@dataclass(frozen=True)
class Resolution:
    name: str
    present: bool
    missing_component: str | None = None  # the first dotted prefix that does not exist
    detail: str = ""


_NOT_INSTALLED = "`esper-lint verify` needs torch installed in the same environment as esper-lint (e.g. pip install torch)"


def torch_found() -> None:
    """TorchNotInstalled unless a torch can be found; nothing is imported (a run with no private
    name to check never pays for importing torch)."""
    try:
        found = importlib.util.find_spec(VERIFIABLE_ROOT) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise TorchNotInstalled(_NOT_INSTALLED)


def torch_version_unimported() -> str:
    """The found torch's version, read from its `version.py` without importing torch."""
    try:
        spec = importlib.util.find_spec(VERIFIABLE_ROOT)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for location in locations:
            with open(f"{location}/version.py", encoding="utf-8") as handle:
                match = re.search(r"^__version__\s*=\s*['\"]([^'\"\n]{1,64})['\"]", handle.read(1 << 16), re.M)
            if match:
                return match.group(1)
    except (ImportError, ValueError, OSError):
        pass
    return "unknown"


def torch_version() -> str:
    try:
        if importlib.util.find_spec(VERIFIABLE_ROOT) is None:
            raise TorchNotInstalled(_NOT_INSTALLED)
        torch = _quiet_import(VERIFIABLE_ROOT)
    except TorchNotInstalled:
        raise
    except Exception as exc:  # a broken torch install must read as a clear error, not a traceback
        raise TorchNotInstalled(f"{_NOT_INSTALLED}; importing torch failed: {type(exc).__name__}: {exc}") from None
    return str(getattr(torch, "__version__", "unknown"))


def verifiable(name: str) -> bool:
    return name == VERIFIABLE_ROOT or name.startswith(VERIFIABLE_ROOT + ".")


def _quiet_import(name: str) -> object:
    """Import a torch module without its import-time warnings (e.g. "Failed to initialize NumPy"),
    which would otherwise land in verify's output as if they were findings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


@cache
def resolve(name: str) -> Resolution:
    """Import the longest importable module prefix of `name`, then walk the remaining attributes."""
    parts = name.split(".")
    module = None
    imported = 0
    import_error = ""
    for length in range(len(parts), 0, -1):
        candidate = ".".join(parts[:length])
        try:
            module = _quiet_import(candidate)
        except ImportError as exc:
            import_error = import_error or f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # torch modules may fail for environmental reasons; say which
            import_error = f"importing {candidate} raised {type(exc).__name__}: {exc}"
            continue
        imported = length
        break
    if module is None:
        return Resolution(name, present=False, missing_component=parts[0], detail=import_error)
    current: object = module
    for index in range(imported, len(parts)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                current = getattr(current, parts[index])
        except AttributeError:
            missing = ".".join(parts[: index + 1])
            detail = import_error if index == imported and import_error else ""
            return Resolution(name, present=False, missing_component=missing, detail=detail)
        except Exception as exc:  # a lazy attribute can raise anything while loading
            missing = ".".join(parts[: index + 1])
            return Resolution(name, present=False, missing_component=missing, detail=f"{type(exc).__name__}: {exc}")
    return Resolution(name, present=True)


def resolve_all(names: Iterable[str]) -> dict[str, Resolution]:
    return {name: resolve(name) for name in sorted(set(names)) if verifiable(name)}
