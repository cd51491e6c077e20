"""What a torch wheel's extension binaries say, read as bytes (nothing is loaded or run).

* ``libtorch_python`` and the ``torch/_C*.so`` extension modules hold the names of the
  Python bindings (``PyMethodDef`` tables: ``_make_wrapper_subclass``, ``_get_tracing_state``,
  ``upsample_nearest2d``) as NUL-terminated C strings. Each such string that is an
  identifier is collected: evidence that a C-extension name whose stub appeared later was
  already there, and (when a stub-declared device name is missing) that this build lacks it.
* ``libtorch_cpu`` holds the ``aten::`` operator schemas the dispatcher registers, among them
  the JIT-only private operators that no ``native_functions.yaml`` lists
  (``aten::_grad_sum_to_size(Tensor(a) self, int[]? size) -> Tensor(a)``,
  ``aten::_set_item.str(...)``).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field

__all__ = ["BinaryStrings", "read_binaries"]

# an identifier standing alone between two NULs: a C string literal of the binary
_C_IDENT = re.compile(rb"(?<=\x00)[A-Za-z_][A-Za-z0-9_]{1,100}(?=\x00)")
# an operator schema: `aten::name(` or `aten::name.overload(`
_ATEN_SCHEMA = re.compile(rb"aten::([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_]+))?\(")
# read in pieces so that a 350 MB library never sits in memory whole
_CHUNK = 32 << 20
_OVERLAP = 4096


@dataclass
class BinaryStrings:
    """The evidence read from one wheel's binaries."""

    #: identifiers found as C strings of the Python binding libraries
    binding_names: frozenset[str] = frozenset()
    #: aten operator -> overloads (``default`` for the unnamed one) from schema strings
    aten_schemas: dict[str, set[str]] = field(default_factory=dict)
    #: the member names read (empty when the wheel has none of the expected libraries)
    sources: tuple[str, ...] = ()

    @property
    def scanned(self) -> bool:
        return bool(self.binding_names)


def _is_binding_library(entry: str) -> bool:
    base = entry.rsplit("/", 1)[-1]
    return entry.startswith("torch/") and (
        base.startswith("libtorch_python.") or (base.startswith("_C") and base.endswith((".so", ".pyd")))
    )


def _is_operator_library(entry: str) -> bool:
    base = entry.rsplit("/", 1)[-1]
    return entry.startswith("torch/lib/") and base.startswith(("libtorch_cpu.", "libtorch."))


def _scan(zf: zipfile.ZipFile, entry: str, pattern: re.Pattern[bytes]) -> list[tuple[bytes, ...]]:
    """Every match of ``pattern`` in a zip member, read in overlapping chunks.

    Each round keeps the matches that *start* before its last ``_OVERLAP`` bytes; those bytes
    (plus one before them, for a look-behind) begin the next round, whose matches count from
    there. A match is far shorter than the overlap, so none is cut or counted twice."""
    found: list[tuple[bytes, ...]] = []  # the groups, not the matches: those would keep each chunk alive
    with zf.open(entry) as handle:
        data = b""
        first = 0  # matches starting before this position were taken in the round before
        while True:
            chunk = handle.read(_CHUNK)
            data += chunk
            last_round = not chunk
            cut = len(data) if last_round else len(data) - _OVERLAP
            for match in pattern.finditer(data):
                if first <= match.start() < cut:
                    found.append((match.group(0), *match.groups()))
            if last_round:
                break
            keep = max(cut - 1, 0)
            data = data[keep:]
            first = cut - keep
    return found


def read_binaries(zf: zipfile.ZipFile) -> BinaryStrings:
    names: set[str] = set()
    schemas: dict[str, set[str]] = {}
    sources: list[str] = []
    for entry in sorted(zf.namelist()):
        if _is_binding_library(entry):
            sources.append(entry)
            for whole, *_ in _scan(zf, entry, _C_IDENT):
                names.add(whole.decode("ascii"))
        elif _is_operator_library(entry):
            sources.append(entry)
            for _, op, overload in _scan(zf, entry, _ATEN_SCHEMA):
                schemas.setdefault(op.decode("ascii"), set()).add(overload.decode("ascii") if overload else "default")
    return BinaryStrings(frozenset(names), schemas, tuple(sources))
