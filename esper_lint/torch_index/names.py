"""Privacy of dotted names (SPEC.md section 1)."""

from __future__ import annotations


def is_dunder(part: str) -> bool:
    """``__version__`` is a dunder; ``__x`` and ``_x_`` are not."""
    return len(part) > 4 and part.startswith("__") and part.endswith("__")


def is_private_part(part: str) -> bool:
    return part.startswith("_") and not is_dunder(part)


def is_private(name: str) -> bool:
    """True when a component after the root starts with ``_`` and is not a dunder."""
    return any(is_private_part(p) for p in name.split(".")[1:])
