"""Gradient health monitoring: the reference use of a private torch API.

``GradientHealthMonitor`` is a drop-in rewrite of the monitor from the ticket that started this
project (B3-DRL-13). It reports the L2 norm of the host's and the seed's gradients and their ratio,
and it is the one place in esper-lint that calls a private torch function, ``torch._foreach_norm``,
under a documentation block that esper-lint accepts (version + the exact fallback code).

What changed from the original, and why
---------------------------------------
* **Version.** ``torch._foreach_norm`` first shipped in PyTorch 1.11, not 1.9.
* **fp32 accumulation.** Per-tensor norms are produced in fp32 (fp64 for fp64 gradients) and summed
  in that dtype. The original kept fp16/bf16 norms in the gradient's dtype: fp16 norms above 65504
  became inf and ``stack(norms).pow(2)`` overflowed once a norm passed about 256; bf16 norms carried
  about 4e-3 relative error.
* **Grouping by (device, dtype).** ``_foreach_norm`` only takes its fused multi-tensor kernel when
  every tensor in the list has the same device and dtype; a mixed list silently falls back to one
  kernel per tensor. Gradients are grouped first, as ``clip_grad_norm_`` does.
* **Reduce per device, then move one scalar per device**, instead of copying every per-tensor norm
  to one device. The result lives on the first non-CPU device that holds a gradient (else on the
  CPU), so combining partial sums never needs a device-to-host copy and never blocks.
* **One transfer.** ``materialize_gradient_stats`` packs both sums into one tensor and copies it to
  the host once (``.tolist()``), instead of two blocking ``.item()`` calls.
* **Empty lists.** ``_foreach_norm`` raises on an empty list; a side with no gradients returns
  ``None`` ("no grads") without calling it, which stays distinct from all-zero gradients.

Version and ``dtype=`` handling
-------------------------------
The ``dtype=`` keyword of ``torch._foreach_norm`` (fp32 output for fp16/bf16 input) first shipped in
PyTorch 2.4. It is detected from ``torch.__version__`` (public; no private name, no trial call):

* torch >= 2.4: the fused call passes ``dtype=`` the accumulation dtype.
* torch < 2.4 (and 2.4 nightlies, ``2.4.0a0``/``.dev``, some of which predate the keyword): the fused
  call is used only for groups already in their accumulation dtype (fp32, fp64), where leaving out
  ``dtype=`` computes the same thing. fp16/bf16 groups take the documented fallback, one fp32
  ``torch.linalg.vector_norm`` per tensor. We deliberately do not upcast copies of the gradients to
  feed the fused kernel: the casts cost one kernel per tensor anyway, plus a full extra read and
  write of the gradients and the memory for the copy. ``foreach=True`` raises there instead of
  silently taking a slow or lossy path.

Kernel launches
---------------
Per (device, dtype) group the fused path issues ``_foreach_norm`` (a few launches; internally it
batches about a hundred tensors per launch), one ``stack`` (batched copies) and two reductions; per
extra group and device a few more. The ``foreach=False`` fallback issues one norm kernel per tensor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TypedDict, cast

import torch
from torch import Tensor, nn

__all__ = [
    "FOREACH_NORM_ACCEPTS_DTYPE",
    "GRAD_RATIO_EPSILON",
    "AsyncGradientStats",
    "GradientHealthMonitor",
    "GradientStats",
    "torch_release_at_least",
    "total_grad_norm_sq",
]

# Added to the host norm before dividing, as in the original monitor.
GRAD_RATIO_EPSILON: float = 1e-8

# Device types with fused foreach kernels (CPU runs a C++ loop, still one Python call).
FOREACH_DEVICE_TYPES: frozenset[str] = frozenset({"cpu", "cuda", "xpu", "mtia"})

# Nightly/alpha builds of a release may predate features that shipped in it.
_PRERELEASE_SUFFIX = re.compile(r"^(a\d*|\.?dev)")
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?(.*)$")


def torch_release_at_least(version: str, minimum: tuple[int, int]) -> bool:
    """Whether a torch version string is release ``minimum`` (major, minor) or later.

    Nightlies of exactly ``minimum`` (``2.4.0a0``, ``2.4.0.dev20240501``) count as older, because a
    feature of that release may not have landed yet; local suffixes (``+cu121``) are ignored.
    """
    match = _RELEASE.match(str(version))
    if match is None:
        return False
    release = (int(match.group(1)), int(match.group(2)))
    if release != minimum:
        return release > minimum
    return _PRERELEASE_SUFFIX.match(match.group(3)) is None


# `torch._foreach_norm(..., dtype=)` first shipped in PyTorch 2.4.
FOREACH_NORM_ACCEPTS_DTYPE: bool = torch_release_at_least(torch.__version__, (2, 4))

GroupKey = tuple[torch.device, torch.dtype]
NormSquared = Tensor | float | None


class AsyncGradientStats(TypedDict):
    """What ``compute_gradient_health_async`` returns (the original's keys, kept for drop-in use).

    ``_host_norm_sq``/``_seed_norm_sq`` are 0-dim tensors holding the squared L2 norm, or ``None``
    when that side had no gradients at all.
    """

    _async: bool
    _host_norm_sq: NormSquared
    _seed_norm_sq: NormSquared


class GradientStats(TypedDict):
    """What ``materialize_gradient_stats`` returns: plain Python floats."""

    host_grad_norm: float
    seed_grad_norm: float
    seed_gradient_ratio: float


def accumulation_dtype(grad_dtype: torch.dtype) -> torch.dtype | None:
    """The dtype norms of ``grad_dtype`` gradients are computed and summed in.

    fp16/bf16 norms overflow or lose precision in their own dtype, so everything narrower than fp64
    accumulates in fp32. ``None`` (complex gradients) lets torch pick the real counterpart.
    """
    if grad_dtype == torch.float64:
        return torch.float64
    if grad_dtype.is_floating_point:
        return torch.float32
    return None


def group_by_device_and_dtype(grads: Iterable[Tensor]) -> dict[GroupKey, list[Tensor]]:
    """Split gradients into lists that ``_foreach_norm`` can handle with its fused kernel."""
    groups: dict[GroupKey, list[Tensor]] = {}
    for grad in grads:
        groups.setdefault((grad.device, grad.dtype), []).append(grad)
    return groups


def fused_path_unavailable_reason(
    device: torch.device, dtype: torch.dtype, grads: Sequence[Tensor]
) -> str | None:
    """Why the fused call cannot serve this group, or ``None`` when it can."""
    if device.type not in FOREACH_DEVICE_TYPES:
        return f"there are no foreach kernels for {device.type} tensors"
    if any(type(grad) is not Tensor or grad.layout != torch.strided for grad in grads):
        return "tensor subclasses and sparse gradients are not supported by foreach kernels"
    accumulate_in = accumulation_dtype(dtype)
    if not FOREACH_NORM_ACCEPTS_DTYPE and accumulate_in not in (None, dtype):
        return (
            f"torch {torch.__version__} predates the dtype= argument of the fused norm (2.4), "
            f"so {dtype} norms could not be accumulated in {accumulate_in}"
        )
    return None


def fused_norms(grads: list[Tensor], accumulation_dtype: torch.dtype | None) -> list[Tensor]:
    """Per-tensor L2 norms in ``accumulation_dtype`` with one fused multi-tensor call.

    ``grads`` must share one device and dtype and be non-empty (see ``group_by_device_and_dtype``).
    """
    # Before 2.4 the call has no dtype= argument; callers only get here then when the gradients are
    # already in the accumulation dtype (see fused_path_unavailable_reason), so it can be left out.
    pass_dtype = FOREACH_NORM_ACCEPTS_DTYPE and accumulation_dtype is not None
    dtype_argument = {"dtype": accumulation_dtype} if pass_dtype else {}
    # NOTE: Private API, stable since PyTorch 1.11.
    # If this breaks in future PyTorch, fallback is:
    #   norms = [torch.linalg.vector_norm(g, 2.0, dtype=accumulation_dtype) for g in grads]
    norms = torch._foreach_norm(grads, 2.0, **dtype_argument)
    return list(norms)


def per_tensor_norms(grads: Sequence[Tensor], accumulation_dtype: torch.dtype | None) -> list[Tensor]:
    """The documented fallback of ``fused_norms``: one public norm call per tensor."""
    norms = [torch.linalg.vector_norm(g, 2.0, dtype=accumulation_dtype) for g in grads]
    return norms


def group_norms(
    device: torch.device, dtype: torch.dtype, grads: list[Tensor], foreach: bool | None
) -> list[Tensor]:
    """Per-tensor norms of one (device, dtype) group, fused where allowed and possible."""
    accumulate_in = accumulation_dtype(dtype)
    if foreach is False:
        return per_tensor_norms(grads, accumulate_in)
    reason = fused_path_unavailable_reason(device, dtype, grads)
    if reason is None:
        return fused_norms(grads, accumulate_in)
    if foreach:
        raise RuntimeError(f"foreach=True was passed, but {reason}")
    return per_tensor_norms(grads, accumulate_in)


def widest_dtype(tensors: Iterable[Tensor]) -> torch.dtype:
    """The dtype partial sums are combined in (fp64 as soon as one group accumulated in fp64)."""
    widest = torch.float32
    for tensor in tensors:
        widest = torch.promote_types(widest, tensor.dtype)
    return widest


def sum_partials(partials: list[Tensor]) -> Tensor:
    """Sum 0-dim tensors that already share a device."""
    if len(partials) == 1:
        return partials[0]
    dtype = widest_dtype(partials)
    return torch.stack([partial.to(dtype) for partial in partials]).sum()


def result_device(devices: Iterable[torch.device]) -> torch.device:
    """Where a side's total is assembled: the first accelerator, so that no copy goes to the host.

    Copying a CPU scalar to an accelerator does not wait for the device; the reverse would.
    """
    devices = list(devices)
    for device in devices:
        if device.type != "cpu":
            return device
    return devices[0]


def total_grad_norm_sq(grads: Sequence[Tensor], foreach: bool | None = None) -> Tensor | None:
    """Squared L2 norm of all ``grads`` together, as a 0-dim tensor; never synchronises.

    Returns ``None`` for an empty sequence ("no grads"), and a zero tensor when gradients exist but
    hold no elements or only zeros ("zero grads").
    """
    if not grads:
        return None
    # Empty tensors contribute nothing; dropping them on the host saves a kernel each on CUDA.
    nonempty = [grad for grad in grads if grad.numel() > 0]
    if not nonempty:
        return torch.zeros((), dtype=torch.float32, device=result_device(g.device for g in grads))

    partials_by_device: dict[torch.device, list[Tensor]] = {}
    for (device, dtype), group in group_by_device_and_dtype(nonempty).items():
        norms = group_norms(device, dtype, group, foreach)
        partials_by_device.setdefault(device, []).append(torch.stack(norms).square().sum())

    per_device = {device: sum_partials(partials) for device, partials in partials_by_device.items()}
    target = result_device(per_device)
    dtype = widest_dtype(per_device.values())
    # One scalar per device crosses devices; non_blocking keeps a CPU-to-accelerator copy async.
    moved = [total.to(device=target, dtype=dtype, non_blocking=True) for total in per_device.values()]
    return moved[0] if len(moved) == 1 else torch.stack(moved).sum()


def fetch_to_host(values: Sequence[NormSquared]) -> list[float | None]:
    """Python floats for ``values`` (tensors, floats or ``None``) with one device-to-host copy.

    All tensors are packed into one fp64 vector on one device, then copied with a single
    ``.tolist()``: one transfer and one synchronisation however many values there are.
    """
    tensor_slots = [index for index, value in enumerate(values) if isinstance(value, Tensor)]
    fetched: dict[int, float] = {}
    if tensor_slots:
        tensors = [cast(Tensor, values[index]) for index in tensor_slots]
        target = result_device(tensor.device for tensor in tensors)
        packed = torch.stack(
            [
                tensor.detach().reshape(()).to(device=target, dtype=torch.float64, non_blocking=True)
                for tensor in tensors
            ]
        )
        fetched = dict(zip(tensor_slots, packed.tolist(), strict=True))
    return [
        None if value is None else fetched[index] if index in fetched else float(cast(float, value))
        for index, value in enumerate(values)
    ]


def gradient_ratio(host_norm: float, seed_norm: float) -> float:
    """seed / (host + eps) when the host has a positive norm, else 0 (the original's rule)."""
    return seed_norm / (host_norm + GRAD_RATIO_EPSILON) if host_norm > 0 else 0.0


def present_grads(params: Iterable[nn.Parameter]) -> list[Tensor]:
    """The gradients that exist; a parameter whose ``.grad`` is ``None`` had none this step."""
    return [param.grad for param in params if param.grad is not None]


class GradientHealthMonitor:
    """Gradient norms of a host and a seed module, and their ratio, for the G2 gate.

    ``foreach``: ``None`` (default) uses the fused multi-tensor norm wherever it is supported and
    the documented per-tensor fallback elsewhere; ``False`` always uses the fallback; ``True``
    always uses the fused norm and raises where it cannot.

    Typical use inside a CUDA stream::

        stats = monitor.compute_gradient_health_async()   # no host synchronisation
        stream.synchronize()
        health = monitor.materialize_gradient_stats(stats)  # one device-to-host copy
    """

    def __init__(self, foreach: bool | None = None) -> None:
        self.foreach = foreach
        self.host_grad_norm: float = 0.0
        self.seed_grad_norm: float = 0.0
        self._host_params: list[nn.Parameter] = []
        self._seed_params: list[nn.Parameter] = []

    def register(self, host: nn.Module, seed: nn.Module) -> None:
        """Keep the parameters of both modules that require grad."""
        self._host_params = [param for param in host.parameters() if param.requires_grad]
        self._seed_params = [param for param in seed.parameters() if param.requires_grad]

    @torch.no_grad()
    def compute_gradient_health(self) -> GradientStats:
        """Synchronous form: compute and materialise at once (one host synchronisation)."""
        return self.materialize_gradient_stats(self.compute_gradient_health_async())

    @torch.no_grad()
    def compute_gradient_health_async(self) -> AsyncGradientStats:
        """Squared gradient norms as device tensors, without ever synchronising with the host.

        A side with no gradients yields ``None``, distinct from a side whose gradients are zero.
        Safe inside CUDA streams and CUDA graph capture (for gradients on a single device).
        """
        return {
            "_async": True,
            "_host_norm_sq": total_grad_norm_sq(present_grads(self._host_params), self.foreach),
            "_seed_norm_sq": total_grad_norm_sq(present_grads(self._seed_params), self.foreach),
        }

    def materialize_gradient_stats(self, async_stats: AsyncGradientStats) -> GradientStats:
        """Turn ``compute_gradient_health_async``'s tensors into floats with one transfer.

        Call after synchronising the stream the stats were computed on. Stores both norms on the
        instance (``host_grad_norm``, ``seed_grad_norm``); a side without gradients reads as 0.0.
        """
        host_sq, seed_sq = fetch_to_host([async_stats["_host_norm_sq"], async_stats["_seed_norm_sq"]])
        host_norm = 0.0 if host_sq is None else host_sq**0.5
        seed_norm = 0.0 if seed_sq is None else seed_sq**0.5
        self.host_grad_norm = host_norm
        self.seed_grad_norm = seed_norm
        return {
            "host_grad_norm": host_norm,
            "seed_grad_norm": seed_norm,
            "seed_gradient_ratio": gradient_ratio(host_norm, seed_norm),
        }

    def reset(self) -> None:
        """Forget the last norms and the registered parameters."""
        self.host_grad_norm = 0.0
        self.seed_grad_norm = 0.0
        self._host_params.clear()
        self._seed_params.clear()
