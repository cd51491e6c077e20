"""GPU suite: every test here is marked ``gpu`` and skipped, with the reason, where CUDA is absent.

Run it on a CUDA machine with ``pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

try:
    import torch
except ImportError:  # the suite still collects (and skips) without the `reference` extra
    torch = None  # type: ignore[assignment]

CUDA_AVAILABLE: bool = torch is not None and torch.cuda.is_available()
SKIP_REASON = (
    "GPU suite needs a CUDA device: torch is not installed"
    if torch is None
    else f"GPU suite needs a CUDA device: torch.cuda.is_available() is False (torch {torch.__version__})"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every ``gpu``-marked test without CUDA, so a CPU run reports skips, never errors."""
    if CUDA_AVAILABLE:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def restore_sync_debug_mode() -> Iterator[None]:
    """A failing test must not leave CUDA sync debugging switched on for the next one."""
    if not CUDA_AVAILABLE:
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    yield
    torch.cuda.set_sync_debug_mode(previous)
