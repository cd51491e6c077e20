"""Where the installed torch's sources are: the corpus the benchmark scripts read (never import)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def torch_package_dir() -> Path:
    # find_spec locates the package without running its __init__.
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("torch is not installed in this interpreter: pip install torch==2.13.0")
    return Path(next(iter(spec.submodule_search_locations)))


def torch_source_files() -> list[Path]:
    return sorted(path for path in torch_package_dir().rglob("*.py") if path.is_file())
