"""Gradient health monitoring: the reference use of a private torch API.

``GradientHealthMonitor`` is a rewrite of the monitor from the ticket that started this project
(B3-DRL-13). It reports the L2 norm of a host's and a seed's gradients and their ratio, and it is
the one place in esper-lint that calls a private torch function, ``torch._foreach_norm``, under a
documentation block that esper-lint accepts (version + the exact fallback code).

What it gains over ``torch.nn.utils.get_total_norm``, in one sentence: per-tensor norms of fp16 and
bf16 gradients are computed and summed in fp32 (``get_total_norm`` keeps them in the gradient's
dtype, where fp16 overflows above 65504 and bf16 carries about 4e-3 relative error); the rest is
plumbing around that: groups cached at ``register()``, a sharded (``process_group``) mode, and one
device-to-host copy for both sides.

* **Inputs.** ``total_norm`` and ``total_grad_norm_sq`` accept what ``get_total_norm`` accepts:
  one tensor or an iterable of tensors, including DTensors (FSDP2, tensor parallel; each group is
  reduced over its own device mesh) and sparse COO gradients (``nn.Embedding(sparse=True)``: the
  norm of ``grad.coalesce().values()``; other sparse layouts are rejected with a ``TypeError``).
* **Sharded gradients** that are plain local shards (FSDP1, ZeRO) need ``process_group``: the
  local sum of squares (the max for the inf-norm) is all-reduced over it. Every rank of the group
  must make the call. Parameters that several ranks hold in full (tensor-parallel duplicates such
  as layer norms, or an embedding shared between pipeline stages) must be counted on one rank
  only: pass ``include`` to ``register`` (Megatron-LM filters the same two cases).
* **Non-finite gradients** give NaN or inf norms and a NaN ratio, never a ratio of 0.0.
* **Grouping.** ``_foreach_norm`` runs its multi-tensor kernel only on lists that share a device
  and dtype, so gradients are grouped by (device, dtype, device mesh), as ``clip_grad_norm_`` does.
  ATen still takes its per-tensor path, without saying so, for complex gradients and for tensors
  its fast-path check rejects; the result is the same, only slower.
* **Requires torch >= 2.4**, the first release whose ``_foreach_norm`` takes ``dtype=``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, TypedDict

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "GRAD_RATIO_EPSILON",
    "AsyncGradientStats",
    "GradientHealthMonitor",
    "GradientStats",
    "total_grad_norm_sq",
    "total_norm",
]

# Added to the host norm before dividing, as in the original monitor.
GRAD_RATIO_EPSILON: float = 1e-8

# Device types with foreach kernels (the CPU runs a C++ loop: still one Python call per group).
FOREACH_DEVICE_TYPES: frozenset[str] = frozenset({"cpu", "cuda", "xpu", "mtia"})

# Device types that cannot hold float64 tensors.
DEVICE_TYPES_WITHOUT_FLOAT64: frozenset[str] = frozenset({"mps"})

# Decides, per parameter name and parameter, whether this rank counts it (see ``register``).
ParameterFilter = Callable[[str, nn.Parameter], bool]


class GroupKey(NamedTuple):
    """What a list handed to one fused call shares. ``mesh`` is a DTensor's device mesh, else None."""

    device: torch.device
    dtype: torch.dtype
    mesh: object | None


class AsyncGradientStats(TypedDict):
    """What ``compute_gradient_health_async`` returns (the original's keys, kept for drop-in use).

    ``_host_norm_sq``/``_seed_norm_sq`` are 0-dim tensors holding the squared L2 norm, or ``None``
    when that side had no gradients at all (never ``None`` with a ``process_group``).
    """

    _async: bool
    _host_norm_sq: Tensor | float | None
    _seed_norm_sq: Tensor | float | None


class GradientStats(TypedDict):
    """What ``materialize_gradient_stats`` returns: plain Python floats (NaN/inf are kept)."""

    host_grad_norm: float
    seed_grad_norm: float
    seed_gradient_ratio: float


# --------------------------------------------------------------------------- tensors and groups


def dtensor_type() -> type | None:
    """The DTensor class, or ``None`` when torch.distributed.tensor has not been imported.

    A DTensor can only exist once its module has been imported, so an absent module means none
    exists; this never imports it (the import costs far more than the check).
    """
    return getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)


def is_dtensor(tensor: Tensor) -> bool:
    dtensor = dtensor_type()
    return dtensor is not None and isinstance(tensor, dtensor)


def group_key(tensor: Tensor) -> GroupKey:
    mesh = tensor.device_mesh if is_dtensor(tensor) else None  # type: ignore[attr-defined]
    return GroupKey(tensor.device, tensor.dtype, mesh)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype | None:
    """fp64 for fp64, fp32 for every narrower float; ``None`` (the real counterpart) for complex."""
    if dtype == torch.float64:
        return torch.float64
    return torch.float32 if dtype.is_floating_point else None


def device_supports_float64(device: torch.device) -> bool:
    return device.type not in DEVICE_TYPES_WITHOUT_FLOAT64


def dense_values(tensor: Tensor) -> Tensor:
    """A strided tensor with the same norm: sparse COO gradients become their coalesced values."""
    if tensor.layout == torch.strided:
        return tensor
    if tensor.layout == torch.sparse_coo:
        # Coalescing sums duplicate indices; without it the norm of the values would be wrong.
        return tensor.coalesce().values()
    raise TypeError(
        f"gradient norm: {tensor.layout} gradients are not supported (only strided and sparse_coo); "
        "convert them with .to_dense() first"
    )


def as_tensor_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def check_norm_type(norm_type: float) -> float:
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"gradient norm: norm_type must be positive or inf, got {norm_type}")
    return norm_type


# --------------------------------------------------------------------------- norms of one group


def fused_norms(grads: list[Tensor], norm_type: float, accumulation_dtype: torch.dtype | None) -> list[Tensor]:
    """Per-tensor norms of one (device, dtype, mesh) group with one multi-tensor call."""
    # NOTE: Private API, stable since PyTorch 2.4.
    # If this breaks in future PyTorch, fallback is:
    #   norms = [torch.linalg.vector_norm(g, norm_type, dtype=accumulation_dtype) for g in grads]
    norms = torch._foreach_norm(grads, norm_type, dtype=accumulation_dtype)
    return list(norms)


def per_tensor_norms(grads: list[Tensor], norm_type: float, accumulation_dtype: torch.dtype | None) -> list[Tensor]:
    """The documented fallback of ``fused_norms``: one public norm call per tensor."""
    norms = [torch.linalg.vector_norm(g, norm_type, dtype=accumulation_dtype) for g in grads]
    return norms


def group_partial(key: GroupKey, grads: list[Tensor], norm_type: float, foreach: bool | None) -> Tensor:
    """Sum of |x|**p over one group (the max of |x| for the inf-norm), as a plain 0-dim tensor.

    A DTensor group is reduced over its device mesh here (one collective), so that what leaves is
    the same plain tensor on every rank of the mesh.
    """
    accumulate_in = accumulation_dtype(key.dtype)
    if foreach is False or (foreach is None and key.device.type not in FOREACH_DEVICE_TYPES):
        norms = per_tensor_norms(grads, norm_type, accumulate_in)
    elif key.device.type not in FOREACH_DEVICE_TYPES:
        raise RuntimeError(f"foreach=True was passed, but there are no foreach kernels for {key.device.type} tensors")
    else:
        norms = fused_norms(grads, norm_type, accumulate_in)
    stacked = torch.stack(norms)
    if norm_type == math.inf:
        partial = stacked.max()
    elif norm_type == 2.0:
        partial = stacked.square().sum()
    else:
        partial = stacked.pow(norm_type).sum()
    return partial.full_tensor() if key.mesh is not None else partial  # type: ignore[attr-defined]


@dataclass
class Partials:
    """Group partials of one side: rank-local ones (plain tensors) and mesh-wide ones (DTensors)."""

    local: list[Tensor] = field(default_factory=list)
    mesh_wide: list[Tensor] = field(default_factory=list)

    def add(self, key: GroupKey, partial: Tensor) -> None:
        (self.local if key.mesh is None else self.mesh_wide).append(partial)

    def all(self) -> list[Tensor]:
        return self.local + self.mesh_wide


def grouped_partials(
    grads: Iterable[Tensor], norm_type: float, foreach: bool | None, into: Partials | None = None
) -> Partials:
    """The general path: any gradients, validated and grouped on every call (``group_key`` inlined)."""
    dtensor = dtensor_type()
    groups: dict[tuple[torch.device, torch.dtype, object | None], list[Tensor]] = {}
    for grad in grads:
        if grad.layout != torch.strided:
            grad = dense_values(grad)
        if grad.numel() == 0:  # nothing to add; skipping it saves a kernel on CUDA
            continue
        mesh = grad.device_mesh if dtensor is not None and isinstance(grad, dtensor) else None  # type: ignore[attr-defined]
        groups.setdefault((grad.device, grad.dtype, mesh), []).append(grad)
    partials = Partials() if into is None else into
    for (device, dtype, mesh), group in groups.items():
        key = GroupKey(device, dtype, mesh)
        partials.add(key, group_partial(key, group, norm_type, foreach))
    return partials


# --------------------------------------------------------------------------- combining groups


def result_device(devices: Iterable[torch.device]) -> torch.device:
    """The first accelerator: copying a CPU scalar to it does not wait, the reverse would."""
    devices = list(devices)
    return next((device for device in devices if device.type != "cpu"), devices[0])


def combine_dtype(tensors: Iterable[Tensor], device: torch.device) -> torch.dtype:
    """fp64 as soon as one value is fp64 and ``device`` can hold it, else fp32."""
    wide = any(tensor.dtype == torch.float64 for tensor in tensors)
    return torch.float64 if wide and device_supports_float64(device) else torch.float32


def reduce_scalars(scalars: list[Tensor], norm_type: float, device: torch.device) -> Tensor:
    """Sum (max for the inf-norm) of 0-dim tensors, moved to ``device`` as one scalar per source device."""
    dtype = combine_dtype(scalars, device)
    by_device: dict[torch.device, list[Tensor]] = {}
    for scalar in scalars:
        by_device.setdefault(scalar.device, []).append(scalar.to(dtype))
    reduced = []
    for same_device in by_device.values():
        stacked = same_device[0] if len(same_device) == 1 else torch.stack(same_device)
        total = stacked.max() if norm_type == math.inf else stacked.sum()
        # non_blocking keeps a CPU-to-accelerator copy asynchronous.
        reduced.append(total.to(device=device, non_blocking=True))
    if len(reduced) == 1:
        return reduced[0]
    stacked = torch.stack(reduced)
    return stacked.max() if norm_type == math.inf else stacked.sum()


def default_collective_device(process_group: dist.ProcessGroup) -> torch.device:
    """Where a rank without gradients puts its zero: CUDA for NCCL groups, else the CPU."""
    if dist.get_backend(process_group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def combine_partials(
    partials: Partials, norm_type: float, process_group: dist.ProcessGroup | None
) -> Tensor | None:
    """The total of all group partials, or ``None`` when there are none and no ``process_group``.

    With a ``process_group`` the rank-local partials are all-reduced over it (every rank must
    call, also one without gradients, which contributes zero); DTensor partials are already global.
    """
    every = partials.all()
    if process_group is None:
        return reduce_scalars(every, norm_type, result_device(p.device for p in every)) if every else None
    device = result_device(p.device for p in every) if every else default_collective_device(process_group)
    if partials.local:
        shard_total = reduce_scalars(partials.local, norm_type, device).clone()  # all_reduce writes in place
    else:
        shard_total = torch.zeros((), dtype=torch.float32, device=device)
    operation = dist.ReduceOp.MAX if norm_type == math.inf else dist.ReduceOp.SUM
    dist.all_reduce(shard_total, op=operation, group=process_group)
    return reduce_scalars([shard_total, *partials.mesh_wide], norm_type, device)


# --------------------------------------------------------------------------- public functions


@torch.no_grad()
def total_grad_norm_sq(
    tensors: Tensor | Iterable[Tensor],
    foreach: bool | None = None,
    process_group: dist.ProcessGroup | None = None,
) -> Tensor | None:
    """Squared L2 norm of all ``tensors`` together, as a 0-dim tensor, without a host synchronisation
    (except where sparse gradients must be coalesced; with a ``process_group`` the all-reduce is a
    collective every rank must join).

    ``None`` for no tensors ("no grads"; never with a ``process_group``, since whether other ranks
    had any is not known without synchronising); a zero tensor when tensors exist but hold no
    elements or only zeros. fp16/bf16/fp32 accumulate in fp32, fp64 in fp64.
    ``foreach``: ``None`` fused where the device has foreach kernels, ``False`` the per-tensor
    fallback, ``True`` fused or ``RuntimeError``.
    """
    grads = as_tensor_list(tensors)
    partials = grouped_partials(grads, 2.0, foreach)
    if grads and not partials.all() and process_group is None:  # only tensors without elements
        return torch.zeros((), dtype=torch.float32, device=result_device(g.device for g in grads))
    return combine_partials(partials, 2.0, process_group)


@torch.no_grad()
def total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
    process_group: dist.ProcessGroup | None = None,
) -> Tensor:
    """``torch.nn.utils.get_total_norm`` with fp32 accumulation, DTensor and ``process_group`` support.

    Same arguments and result (a 0-dim tensor; 0.0 for no tensors), for ``norm_type`` > 0 or inf.
    ``error_if_nonfinite=True`` raises ``RuntimeError`` on a NaN or inf total (that check
    synchronises, as in torch).
    """
    norm_type = check_norm_type(norm_type)
    grads = as_tensor_list(tensors)
    total = combine_partials(grouped_partials(grads, norm_type, foreach), norm_type, process_group)
    if total is None:
        return torch.zeros((), dtype=torch.float32, device=result_device(g.device for g in grads) if grads else None)
    if norm_type not in (1.0, math.inf):
        total = total.pow(1.0 / norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise RuntimeError(f"gradient norm: the total norm of order {norm_type} is non-finite ({float(total)})")
    return total


# --------------------------------------------------------------------------- host side


def fetch_to_host(values: list[Tensor | float | None]) -> list[float | None]:
    """Python floats for ``values`` (tensors, floats or ``None``) with one device-to-host copy.

    The tensors are packed into one vector in the widest dtype among them (fp32 or fp64), on
    their result device, and copied with one ``.tolist()``. Where that device cannot hold the dtype
    (fp64 on MPS), they are packed on the host instead: correct, at one copy per tensor.
    """
    tensors = {
        index: value.full_tensor() if is_dtensor(value) else value  # type: ignore[attr-defined]
        for index, value in enumerate(values)
        if isinstance(value, Tensor)
    }
    fetched: dict[int, float] = {}
    if tensors:
        wide = any(tensor.dtype == torch.float64 for tensor in tensors.values())
        dtype = torch.float64 if wide else torch.float32
        target = result_device(tensor.device for tensor in tensors.values())
        if dtype == torch.float64 and not device_supports_float64(target):
            target = torch.device("cpu")
        packed = torch.stack([
            tensor.detach().reshape(()).to(device=target, dtype=dtype, non_blocking=target.type != "cpu")
            for tensor in tensors.values()
        ])
        fetched = dict(zip(tensors, packed.tolist(), strict=True))
    return [
        None if value is None else fetched[index] if index in fetched else float(value)
        for index, value in enumerate(values)
    ]


def gradient_ratio(host_norm: float, seed_norm: float) -> float:
    """seed / (host + eps) when the host norm is positive, 0 when it is zero, NaN when either is not finite."""
    if not (math.isfinite(host_norm) and math.isfinite(seed_norm)):
        return math.nan
    return seed_norm / (host_norm + GRAD_RATIO_EPSILON) if host_norm > 0 else 0.0


# --------------------------------------------------------------------------- the monitor


@dataclass(frozen=True)
class ParameterGroup:
    """Parameters whose gradients go into one fused call (autograd gives a gradient its parameter's
    device and dtype, and ``param.grad = x`` refuses any other, so the key holds for every call)."""

    key: GroupKey
    params: tuple[nn.Parameter, ...]


def parameter_groups(module: nn.Module, include: ParameterFilter | None) -> tuple[ParameterGroup, ...]:
    """The parameters of ``module`` that require grad, pass ``include`` and have elements, grouped."""
    groups: dict[GroupKey, list[nn.Parameter]] = {}
    for name, param in module.named_parameters():  # shared (tied) parameters are yielded once
        if param.requires_grad and param.numel() > 0 and (include is None or include(name, param)):
            groups.setdefault(group_key(param), []).append(param)
    return tuple(ParameterGroup(key, tuple(params)) for key, params in groups.items())


def side_norm_sq(
    groups: tuple[ParameterGroup, ...], foreach: bool | None, process_group: dist.ProcessGroup | None
) -> Tensor | None:
    """Squared L2 norm of one side's present gradients: one fused call per cached group."""
    partials = Partials()
    for group in groups:
        grads = [grad for param in group.params if (grad := param.grad) is not None]
        if not grads:
            continue
        try:
            partials.add(group.key, group_partial(group.key, grads, 2.0, foreach))
        except NotImplementedError:
            if all(grad.layout == torch.strided for grad in grads):
                raise
            # Sparse gradients (nn.Embedding(sparse=True)) have no norm kernel: take the general path.
            grouped_partials(grads, 2.0, foreach, into=partials)
    return combine_partials(partials, 2.0, process_group)


class GradientHealthMonitor:
    """Gradient norms of a host and a seed module, and their ratio, for the G2 gate.

    ``foreach``: ``None`` (default) fused wherever the device has foreach kernels, the documented
    per-tensor fallback elsewhere; ``False`` always the fallback; ``True`` fused or ``RuntimeError``.
    ``process_group``: all-reduce the norms of plain local gradient shards (FSDP1, ZeRO) over it;
    DTensor gradients (FSDP2, tensor parallel) need none. Typical use inside a CUDA stream::

        stats = monitor.compute_gradient_health_async()   # no host synchronisation
        stream.synchronize()
        health = monitor.materialize_gradient_stats(stats)  # one device-to-host copy
    """

    def __init__(self, foreach: bool | None = None, process_group: dist.ProcessGroup | None = None) -> None:
        self.foreach = foreach
        self.process_group = process_group
        self.host_grad_norm: float = 0.0
        self.seed_grad_norm: float = 0.0
        self._host_groups: tuple[ParameterGroup, ...] = ()
        self._seed_groups: tuple[ParameterGroup, ...] = ()

    def register(self, host: nn.Module, seed: nn.Module, include: ParameterFilter | None = None) -> None:
        """Keep, grouped once for every later call, the parameters of both modules that require grad.

        ``include(name, param)``, when given, decides which parameters this rank counts: with a
        ``process_group`` spanning tensor-parallel ranks, count a duplicated (non-split) parameter on
        one rank only, and a parameter shared between pipeline stages on one stage only.
        """
        host_groups, seed_groups = parameter_groups(host, include), parameter_groups(seed, include)
        if self.foreach:
            for group in host_groups + seed_groups:
                if group.key.device.type not in FOREACH_DEVICE_TYPES:
                    raise RuntimeError(
                        f"foreach=True was passed, but there are no foreach kernels for {group.key.device.type} tensors"
                    )
        self._host_groups, self._seed_groups = host_groups, seed_groups

    def compute_gradient_health(self) -> GradientStats:
        """Synchronous form: compute and materialise at once (one host synchronisation)."""
        return self.materialize_gradient_stats(self.compute_gradient_health_async())

    @torch.no_grad()
    def compute_gradient_health_async(self) -> AsyncGradientStats:
        """Squared gradient norms as device tensors, without synchronising with the host (sparse
        gradients excepted: coalescing them synchronises on CUDA).

        A side with no gradients yields ``None``, distinct from a side whose gradients are zero.
        Can be captured in a CUDA graph (single device, no ``process_group``, no sparse gradients);
        a replay reads the gradient tensors that existed at capture, so they must stay the same
        tensors: ``zero_grad(set_to_none=True)``, torch's default, replaces them, and a replay then
        reads stale memory. Use ``zero_grad(set_to_none=False)`` with graphs.
        """
        host_groups, seed_groups = self._host_groups, self._seed_groups  # reset() rebinds, never mutates
        return {
            "_async": True,
            "_host_norm_sq": side_norm_sq(host_groups, self.foreach, self.process_group),
            "_seed_norm_sq": side_norm_sq(seed_groups, self.foreach, self.process_group),
        }

    def materialize_gradient_stats(self, async_stats: AsyncGradientStats) -> GradientStats:
        """Turn ``compute_gradient_health_async``'s tensors into floats with one transfer.

        Stores both norms on the instance; a side without gradients reads as 0.0. A NaN or inf
        norm is kept as it is, and the ratio is then NaN.
        """
        host_sq, seed_sq = fetch_to_host([async_stats["_host_norm_sq"], async_stats["_seed_norm_sq"]])
        host_norm = 0.0 if host_sq is None else math.sqrt(host_sq)
        seed_norm = 0.0 if seed_sq is None else math.sqrt(seed_sq)
        self.host_grad_norm = host_norm
        self.seed_grad_norm = seed_norm
        return {
            "host_grad_norm": host_norm,
            "seed_grad_norm": seed_norm,
            "seed_gradient_ratio": gradient_ratio(host_norm, seed_norm),
        }

    def reset(self) -> None:
        """Forget the last norms and the registered parameters (a running call keeps its own)."""
        self.host_grad_norm = 0.0
        self.seed_grad_norm = 0.0
        self._host_groups = ()
        self._seed_groups = ()
