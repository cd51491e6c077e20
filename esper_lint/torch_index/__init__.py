"""What the torch releases contain: the private-API index (pure Python, no torch import).

>>> idx = load_index()
>>> idx.lookup("torch._foreach_norm").releases[0]
'1.11'

The data (``rules/torch-index.gz``) is built from one wheel per torch minor release by
:mod:`tools.build_torch_index`; see ``docs/torch-index.md`` and the builder's docstring
for the format. Decoding is lazy: loading parses the small JSON header, and each lookup
decompresses and decodes only the bucket of names it needs.

The reader lives in :mod:`esper_lint.torch_index.reader` and loads on first use of one of the names
below, so that the configuration, which reads a project's torch range with
:mod:`esper_lint.torch_index.versions`, never loads index code: a run whose files hold no private
reference pays for none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esper_lint.torch_index.reader import (
        INDEX_FILE,
        KIND_NAMES,
        Lookup,
        Replacement,
        TorchIndex,
        format_releases,
        load_index,
    )

__all__ = [
    "INDEX_FILE",
    "KIND_NAMES",
    "Lookup",
    "Replacement",
    "TorchIndex",
    "format_releases",
    "load_index",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from esper_lint.torch_index import reader

        value = getattr(reader, name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
