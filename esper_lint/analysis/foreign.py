"""Names under `torch` that are not torch's: they are left out of every check.

* **Custom operator namespaces.** `torch.ops.<namespace>` holds the operators of whoever registered
  the namespace: `torch.ops.xformers._x`, `torch.ops.torchao._x`, `torch.ops.torchrec._x` are
  xformers', torchao's and torchrec's, and their private names are those projects' business. An
  operator under a namespace torch registers itself (`aten`, `prims`, `_c10d_functional`,
  `quantized`, ...) stays a torch reference.
* **Attributes a project writes onto torch itself.** `torch.cuda._unsloth_marker = True` (or
  `setattr(torch, "_marker", v)`) creates the name; later reads of it in the same file read the
  project's own value. A written name counts as the project's when the torch index knows it in no
  release; a write to a name torch has (`torch._dynamo.config.suppress_errors = True`) stays a
  reference.

The namespaces torch registers are the index's operator namespaces (`TorchIndex.lookup`, exact, of
kind "operator namespace") and `TORCH_OPERATOR_NAMESPACES`: every namespace in torch 2.13's
dispatcher (`torch._C._dispatch_get_all_op_names()` on the CPU wheel), those torch's own Python code
registers (`torch.library.Library("ns", ...)`, `custom_op("ns::...")` in the wheel's sources, test and
documentation examples aside), TorchScript's (`prim`, `onnx`), and earlier releases' (`_caffe2`,
`nvprims`, `c10d_functional`). A namespace missing from the list would lose a true finding, so the list
errs towards torch: it is only ever extended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from esper_lint.names import covers

if TYPE_CHECKING:
    from esper_lint.analysis.resolver import Reference
    from esper_lint.torch_index import TorchIndex

_OPS_PREFIX = "torch.ops."

TORCH_OPERATOR_NAMESPACES = frozenset(
    {
        # torch 2.13's dispatcher (CPU wheel, after `import torch`)
        "_c10d_functional", "_c10d_functional_autograd", "_dtensor", "_native", "_quantized", "_test",
        "aten", "c10d", "debug_mode_ops", "debugprims", "export", "inductor", "inductor_prims", "mkl",
        "mkldnn", "mkldnn_prepacked", "onednn", "prims", "profiler", "quantization", "quantized",
        "rngprims", "sparse", "static_runtime", "symm_mem",
        # registered by torch's own Python code when the module defining them is imported
        "_TorchScriptTesting", "_inductor_debug", "_inductor_test", "_torch_testing", "ao", "bucketing",
        "c10d_functional", "device_mesh", "fsdp", "higher_order", "pippy", "quantized_decomposed",
        "semi_structured", "streams", "torch_attn", "triton",
        # TorchScript's symbol namespaces, and namespaces of earlier releases
        "prim", "onnx", "_caffe2", "nvprims", "_nvprims", "cuda", "_prims",
    }
)  # fmt: skip


def operator_namespace(name: str) -> str | None:
    """`torch.ops.xformers._x` -> `xformers`; None for a name not below `torch.ops.<namespace>`."""
    if not name.startswith(_OPS_PREFIX):
        return None
    namespace = name[len(_OPS_PREFIX) :].split(".", 1)[0]
    return namespace or None


def is_torch_namespace(namespace: str, index: TorchIndex | None) -> bool:
    if namespace in TORCH_OPERATOR_NAMESPACES:
        return True
    if index is None:
        return False
    found = index.lookup(_OPS_PREFIX + namespace)
    return found is not None and found.exact and found.kind == "operator namespace"


def foreign_names(references: Sequence[Reference], roots: Iterable[str]) -> set[str]:
    """The names (and the names under them) that the references below them do not count as torch's:
    custom operator namespaces, and the private attributes this file writes onto torch that torch
    has in no indexed release."""
    if "torch" not in roots:
        return set()
    needs_index = [
        reference
        for reference in references
        if reference.store or (operator_namespace(reference.name) or "aten") not in TORCH_OPERATOR_NAMESPACES
    ]
    if not needs_index:
        return set()
    from esper_lint.torch_index import load_index

    index = load_index()
    foreign: set[str] = set()
    for reference in needs_index:
        namespace = operator_namespace(reference.name)
        if namespace is not None and not is_torch_namespace(namespace, index):
            foreign.add(_OPS_PREFIX + namespace)
        elif reference.store and namespace is None and _unknown_to_torch(reference.name, index):
            foreign.add(reference.name)
    return foreign


def _unknown_to_torch(name: str, index: TorchIndex) -> bool:
    """A written name the index has in no release: `torch.cuda._unsloth_marker`. A name below a
    dynamic namespace or an unlisted operator is no project attribute."""
    found = index.lookup(name)
    parent = name.rpartition(".")[0]
    if found is None:
        return parent == "torch"
    return not found.exact and found.matched == parent and found.kind in ("module", "class")


def is_foreign(name: str, foreign: set[str]) -> bool:
    return any(covers(owner, name) for owner in foreign)
