"""Resolve dotted names in the installed torch, for `esper-lint verify`.

Only torch is imported (the longest importable module prefix of each name, then attribute walks);
the linted project's code is read as text and never imported or run. Only the *installed* torch: under
`python -m esper_lint` or `python -m pytest` the working folder is first on the import path, where a
project's own `torch/` would be found first and run. While torch is found and imported
(`installed_torch_only`), the working folder and the linted folders are taken off the import path,
and a torch that comes from them anyway (imported before) is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


_SITE_FOLDERS = ("site-packages", "dist-packages")


@contextmanager
def installed_torch_only(linted: Iterable[str | os.PathLike[str]] = ()) -> Iterator[None]:
    """Find and import torch only from the installed packages: the working folder (`''`, `.`) and
    the linted folders are off `sys.path` inside, and TorchNotInstalled is raised for a torch that
    is the linted project's own (already imported from there, or found there through a `.pth`)."""
    project = _project_folders(linted)
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if not (isinstance(entry, str) and _real(entry) in project)]
    try:
        _refuse_a_local_torch(project)
        yield
        _refuse_a_local_torch(project)
    finally:
        sys.path[:] = [*saved, *(entry for entry in sys.path if entry not in saved)]


def _real(entry: str) -> str:
    return os.path.realpath(entry or os.curdir)


def _project_folders(linted: Iterable[str | os.PathLike[str]]) -> set[str]:
    folders = {_real(os.curdir)}
    for path in linted:
        real = os.path.realpath(path)
        folders.add(real if os.path.isdir(real) else os.path.dirname(real))
    return folders


def _refuse_a_local_torch(project: set[str]) -> None:
    module = sys.modules.get(VERIFIABLE_ROOT)
    locations: list[str] = []
    if module is not None:
        locations = list(getattr(module, "__path__", None) or [])
        if not locations and getattr(module, "__file__", None):
            locations = [os.path.dirname(module.__file__ or "")]
    else:
        try:
            spec = importlib.util.find_spec(VERIFIABLE_ROOT)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        package = os.path.realpath(location)
        parent = os.path.dirname(package)
        installed = any(part in _SITE_FOLDERS for part in package.split(os.sep))
        inside = any(package.startswith(folder.rstrip(os.sep) + os.sep) for folder in project)
        if parent in project or (inside and not installed):
            raise TorchNotInstalled(
                f"the torch at {package} is the linted project's own `torch/` (in the working folder or a linted"
                " folder), not an installed torch; verify only checks against the installed torch"
                " (run it from another folder, or install torch)"
            )


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


def torch_is_cpu_only() -> bool:
    """Whether the installed (already imported) torch is a build without CUDA, ROCm or XPU."""
    torch = sys.modules.get(VERIFIABLE_ROOT)
    version = getattr(torch, "version", None)
    if torch is None or version is None:
        return False
    return not (getattr(version, "cuda", None) or getattr(version, "hip", None) or getattr(version, "xpu", None))


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


def call_rejection(name: str, call: tuple[int, tuple[str, ...], bool, bool]) -> str | None:
    """Why the installed torch's `name` rejects a call of this shape (plain positional arguments,
    keyword names, unpacks `*args`, unpacks `**kwargs`): Python's own `TypeError` text from binding
    placeholder arguments to `inspect.signature`. None when the call binds, when it unpacks
    arguments, or when torch exposes no signature (C functions, operator overloads): only what the
    run time can show is asserted. Call after :func:`resolve` found the name present."""
    positional, keywords, star_args, star_kwargs = call
    if star_args or star_kwargs:
        return None
    signature = runtime_signature(name)
    if signature is None:
        return None
    try:
        signature.bind(*([None] * positional), **dict.fromkeys(keywords))
    except TypeError as exc:
        return str(exc)
    return None


@cache
def runtime_signature(name: str) -> inspect.Signature | None:
    """`inspect.signature` of the installed torch's `name` (modules already imported by
    :func:`resolve`); None where torch exposes none or the name is not callable."""
    parts = name.split(".")
    length = len(parts)
    while length and ".".join(parts[:length]) not in sys.modules:
        length -= 1
    if not length:
        return None
    current: object = sys.modules[".".join(parts[:length])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for part in parts[length:]:
                current = getattr(current, part)
            if not callable(current):
                return None
            return inspect.signature(current)
    except Exception:  # no signature (builtins), or an attribute that raises while loading
        return None
