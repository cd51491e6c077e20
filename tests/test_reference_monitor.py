"""CPU tests of the reference GradientHealthMonitor (esper_lint.reference).

Tolerances against a float64 reference computed from the very same gradient values:
- fp32, fp16 and bf16 gradients: relative 1e-5 (norms are accumulated in fp32; the fp32 rounding of
  a few thousand elements stays below 1e-6, so 1e-5 leaves margin without hiding bf16-size errors,
  which are about 4e-3);
- fp64 gradients: relative 1e-12 (accumulated in fp64).
On the CPU the fused call and the fallback run the same per-tensor reduction, so they must agree
bit for bit; on CUDA (tests/gpu) they only agree within the tolerances above.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from esper_lint.reference import GradientHealthMonitor, gradient_health  # noqa: E402
from esper_lint.reference.gradient_health import (  # noqa: E402
    GRAD_RATIO_EPSILON,
    AsyncGradientStats,
    total_grad_norm_sq,
    total_norm,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOW_PRECISION_RTOL = 1e-5
FP64_RTOL = 1e-12
FLOAT_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def rtol_for(dtype: torch.dtype) -> float:
    return FP64_RTOL if dtype == torch.float64 else LOW_PRECISION_RTOL


# --------------------------------------------------------------------------- helpers


def random_grads(
    shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, seed: int = 0, scale: float = 1.0
) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype)
        for shape in shapes
    ]


def module_with_grads(grads: Sequence[Tensor | None], shapes: Sequence[tuple[int, ...]] = ()) -> nn.Module:
    """A module whose parameters carry exactly ``grads`` (``None`` entries need a shape)."""
    params = nn.ParameterList()
    shape_iter = iter(shapes)
    for grad in grads:
        if grad is None:
            param = nn.Parameter(torch.zeros(next(shape_iter)))
        else:
            param = nn.Parameter(torch.zeros_like(grad))
            param.grad = grad
        params.append(param)
    return params


def float64_norm(grads: Sequence[Tensor]) -> float:
    """The exact-as-possible L2 norm of the given (already rounded) gradient values."""
    return math.sqrt(math.fsum(float(g.to(torch.complex128).abs().pow(2).sum()) if g.is_complex()
                               else float(g.double().pow(2).sum()) for g in grads))


def monitor_for(host_grads: Sequence[Tensor], seed_grads: Sequence[Tensor] = (),
                foreach: bool | None = None) -> GradientHealthMonitor:
    monitor = GradientHealthMonitor(foreach=foreach)
    monitor.register(module_with_grads(host_grads), module_with_grads(seed_grads))
    return monitor


def original_norm_sq(grads: Sequence[Tensor]) -> Tensor:
    """The seed project's numerics: per-tensor norms in the gradient's own dtype, then
    ``stack(norms).pow(2).sum()``. (The original obtained the norms from the fused call without
    ``dtype=``; on the CPU that is this very per-tensor reduction.)"""
    norms = [torch.linalg.vector_norm(g, 2.0) for g in grads]
    return torch.stack(norms).pow(2).sum()


def original_materialize(async_stats: dict) -> dict[str, float]:
    """The seed project's materialize_gradient_stats: one blocking .item() per side."""
    host_sq, seed_sq = async_stats["_host_norm_sq"], async_stats["_seed_norm_sq"]
    host = 0.0 if host_sq is None else host_sq.item() ** 0.5
    seed = 0.0 if seed_sq is None else seed_sq.item() ** 0.5
    return {"host_grad_norm": host, "seed_grad_norm": seed}


TRANSFORMER_LIKE_SHAPES = [(96, 32), (96,), (32, 32), (32,), (32,), (32,), (128, 32), (128,), (32, 128), (32,)]


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_fused_and_fallback_agree_bitwise_on_cpu(dtype: torch.dtype) -> None:
    grads = random_grads(TRANSFORMER_LIKE_SHAPES, dtype, seed=1)
    fused = total_grad_norm_sq(grads, foreach=None)
    forced = total_grad_norm_sq(grads, foreach=True)
    fallback = total_grad_norm_sq(grads, foreach=False)
    assert fused is not None and fallback is not None and forced is not None
    assert torch.equal(fused, fallback)
    assert torch.equal(forced, fallback)
    assert fused.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)


@pytest.mark.parametrize("foreach", [None, False], ids=["fused", "fallback"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_both_paths_match_float64_reference(dtype: torch.dtype, foreach: bool | None) -> None:
    host = random_grads(TRANSFORMER_LIKE_SHAPES, dtype, seed=2)
    seed = random_grads([(64, 64), (64,)], dtype, seed=3, scale=0.01)
    stats = monitor_for(host, seed, foreach=foreach).compute_gradient_health()
    assert stats["host_grad_norm"] == pytest.approx(float64_norm(host), rel=rtol_for(dtype))
    assert stats["seed_grad_norm"] == pytest.approx(float64_norm(seed), rel=rtol_for(dtype))
    expected_ratio = float64_norm(seed) / (float64_norm(host) + GRAD_RATIO_EPSILON)
    assert stats["seed_gradient_ratio"] == pytest.approx(expected_ratio, rel=3 * rtol_for(dtype))


@settings(max_examples=60, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=3),
            st.sampled_from(FLOAT_DTYPES),
            st.floats(min_value=1e-3, max_value=1e3),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_random_parameter_sets_agree_with_reference(
    specs: list[tuple[list[int], torch.dtype, float]], seed: int
) -> None:
    grads = [
        random_grads([tuple(shape)], dtype, seed=seed + index, scale=scale)[0]
        for index, (shape, dtype, scale) in enumerate(specs)
    ]
    fused = total_grad_norm_sq(grads, foreach=None)
    fallback = total_grad_norm_sq(grads, foreach=False)
    assert fused is not None and fallback is not None
    assert torch.equal(fused, fallback)
    assert math.isfinite(float(fused))
    rtol = max(rtol_for(dtype) for _, dtype, _ in specs)
    assert math.sqrt(float(fused)) == pytest.approx(float64_norm(grads), rel=rtol, abs=1e-30)


# --------------------------------------------------------------------------- numerics


def test_large_fp16_norms_are_finite_and_correct() -> None:
    # Per-tensor norms of 60000 * sqrt(4096) = 3.84e6 are far above the fp16 maximum (65504).
    grads = [torch.full((64, 64), 60000.0, dtype=torch.float16) for _ in range(3)]
    expected = float64_norm(grads)
    assert expected > 65504 * 10
    # The data really is the hard case: the original numerics overflow.
    assert math.isinf(float(original_norm_sq(grads)))
    for foreach in (None, False):
        stats = monitor_for(grads, foreach=foreach).compute_gradient_health()
        assert math.isfinite(stats["host_grad_norm"])
        assert stats["host_grad_norm"] == pytest.approx(expected, rel=LOW_PRECISION_RTOL)


def test_fp16_norm_just_above_256_does_not_overflow_when_squared() -> None:
    # A norm of 300 is representable in fp16, but its square (90000) is not.
    grad = torch.zeros(4, dtype=torch.float16)
    grad[0] = 300.0
    assert math.isinf(float(original_norm_sq([grad])))
    stats = monitor_for([grad]).compute_gradient_health()
    assert stats["host_grad_norm"] == pytest.approx(300.0, rel=LOW_PRECISION_RTOL)


def test_bf16_relative_error_is_at_fp32_level() -> None:
    # 66049 ones: the norm is exactly 257, which bf16 cannot represent (spacing 2 near 256).
    grads = [torch.ones(66049, dtype=torch.bfloat16), *random_grads([(300, 300)], torch.bfloat16, seed=4)]
    expected = float64_norm(grads)
    original = math.sqrt(float(original_norm_sq(grads)))
    assert abs(original - expected) / expected > 1e-4  # the original loses precision here ...
    for foreach in (None, False):
        measured = monitor_for(grads, foreach=foreach).compute_gradient_health()["host_grad_norm"]
        assert abs(measured - expected) / expected < LOW_PRECISION_RTOL  # ... this does not


def test_complex_gradients_are_supported() -> None:
    grads = [torch.randn(10, 3, dtype=torch.complex64), torch.randn(5, dtype=torch.complex64)]
    for foreach in (None, False):
        stats = monitor_for(grads, foreach=foreach).compute_gradient_health()
        assert stats["host_grad_norm"] == pytest.approx(float64_norm(grads), rel=LOW_PRECISION_RTOL)


# --------------------------------------------------------------------------- grouping


@pytest.fixture
def fused_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[Tensor]]:
    """Records every list handed to the fused call (and still runs it)."""
    calls: list[list[Tensor]] = []
    real = gradient_health.fused_norms

    def spy(grads: list[Tensor], norm_type: float, accumulation_dtype: torch.dtype | None) -> list[Tensor]:
        calls.append(list(grads))
        return real(grads, norm_type, accumulation_dtype)

    monkeypatch.setattr(gradient_health, "fused_norms", spy)
    return calls


@pytest.fixture
def fallback_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[Tensor]]:
    calls: list[list[Tensor]] = []
    real = gradient_health.per_tensor_norms

    def spy(grads: list[Tensor], norm_type: float, accumulation_dtype: torch.dtype | None) -> list[Tensor]:
        calls.append(list(grads))
        return real(grads, norm_type, accumulation_dtype)

    monkeypatch.setattr(gradient_health, "per_tensor_norms", spy)
    return calls


def mixed_dtype_grads() -> list[Tensor]:
    grads: list[Tensor] = []
    for index, dtype in enumerate([torch.float32, torch.float16, torch.bfloat16, torch.float64] * 3):
        grads += random_grads([(7, index + 1)], dtype, seed=10 + index)
    return grads


def test_mixed_dtypes_are_grouped_one_fused_call_per_dtype(
    fused_calls: list[list[Tensor]], fallback_calls: list[list[Tensor]]
) -> None:
    grads = mixed_dtype_grads()
    result = total_grad_norm_sq(grads, foreach=None)
    assert result is not None
    assert len(fused_calls) == 4 and not fallback_calls
    for call in fused_calls:
        assert len(call) == 3
        assert len({(g.device, g.dtype) for g in call}) == 1
    assert sorted(str(call[0].dtype) for call in fused_calls) == sorted(
        str(d) for d in [torch.float32, torch.float16, torch.bfloat16, torch.float64]
    )
    # fp64 gradients are present, so the total is combined in fp64.
    assert result.dtype == torch.float64
    assert math.sqrt(float(result)) == pytest.approx(float64_norm(grads), rel=LOW_PRECISION_RTOL)


def test_fallback_path_never_calls_the_fused_norm(
    fused_calls: list[list[Tensor]], fallback_calls: list[list[Tensor]]
) -> None:
    total_grad_norm_sq(mixed_dtype_grads(), foreach=False)
    assert not fused_calls
    assert len(fallback_calls) == 4


def test_unsupported_device_falls_back_or_raises(
    fused_calls: list[list[Tensor]], fallback_calls: list[list[Tensor]]
) -> None:
    meta_grads = [torch.empty(3, 3, device="meta"), torch.empty(4, device="meta")]
    result = total_grad_norm_sq(meta_grads, foreach=None)
    assert result is not None and result.device.type == "meta"
    assert not fused_calls and len(fallback_calls) == 1
    with pytest.raises(RuntimeError, match="foreach=True"):
        total_grad_norm_sq(meta_grads, foreach=True)


def test_one_scalar_per_device_crosses_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many CPU tensors in three dtype groups plus "meta" tensors (a second device we can create
    # without a GPU): the CPU groups must be reduced on the CPU and cross over as one scalar.
    cpu_grads = mixed_dtype_grads()[:9]
    meta_grads = [torch.empty(5, device="meta"), torch.empty(2, 2, device="meta")]
    crossings: list[tuple[str, str]] = []
    real_to = torch.Tensor.to

    def counting_to(self: Tensor, *args: object, **kwargs: object) -> Tensor:
        out = real_to(self, *args, **kwargs)
        if out.device != self.device:
            crossings.append((str(self.device), str(out.device)))
        return out

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    result = total_grad_norm_sq(cpu_grads + meta_grads)
    assert result is not None and result.device.type == "meta"  # the accelerator-like device wins
    assert crossings == [("cpu", "meta")]


# --------------------------------------------------------------------------- None / empty / zero


def test_none_grads_are_skipped_and_frozen_params_are_not_registered() -> None:
    present = random_grads([(4, 4), (4,)], torch.float32, seed=5)
    host = module_with_grads([present[0], None, present[1]], shapes=[(3,)])
    frozen = nn.Parameter(torch.zeros(2), requires_grad=False)
    frozen.grad = torch.full((2,), 1000.0)  # must be ignored: not registered
    host.append(frozen)
    monitor = GradientHealthMonitor()
    monitor.register(host, nn.Module())
    stats = monitor.compute_gradient_health()
    assert stats["host_grad_norm"] == pytest.approx(float64_norm(present), rel=LOW_PRECISION_RTOL)


def test_empty_parameter_lists_give_none_without_calling_the_fused_norm(
    fused_calls: list[list[Tensor]],
) -> None:
    monitor = GradientHealthMonitor()
    monitor.register(nn.Module(), nn.Module())
    stats = monitor.compute_gradient_health_async()
    assert stats == {"_async": True, "_host_norm_sq": None, "_seed_norm_sq": None}
    assert not fused_calls
    assert monitor.materialize_gradient_stats(stats) == {
        "host_grad_norm": 0.0, "seed_grad_norm": 0.0, "seed_gradient_ratio": 0.0
    }
    # Parameters registered but no backward pass yet: still "no grads".
    monitor.register(nn.Linear(3, 3), nn.Linear(3, 3))
    assert monitor.compute_gradient_health_async()["_host_norm_sq"] is None
    assert not fused_calls


def test_zero_grads_differ_from_no_grads(fused_calls: list[list[Tensor]]) -> None:
    zeros = [torch.zeros(3, 3), torch.zeros(3)]
    stats = monitor_for(zeros, seed_grads=[]).compute_gradient_health_async()
    host_sq = stats["_host_norm_sq"]
    assert isinstance(host_sq, Tensor) and float(host_sq) == 0.0
    assert stats["_seed_norm_sq"] is None
    # Gradients that exist but hold no elements are also "zero grads", and never reach the fused call.
    empty = total_grad_norm_sq([torch.zeros(0), torch.zeros(0, 5)])
    assert isinstance(empty, Tensor) and float(empty) == 0.0
    assert all(len(call) > 0 for call in fused_calls)
    assert all(g.numel() > 0 for call in fused_calls for g in call)


# --------------------------------------------------------------------------- ratio


@pytest.mark.parametrize(
    ("host_sq", "seed_sq", "expected_ratio"),
    [
        (4.0, 9.0, 3.0 / (2.0 + GRAD_RATIO_EPSILON)),
        (0.0, 9.0, 0.0),  # host gradients exist but are zero
        (None, 9.0, 0.0),  # no host gradients
        (4.0, None, 0.0),  # no seed gradients
        (None, None, 0.0),
        (0.0, 0.0, 0.0),
        (1e-20, 1e-20, 1e-10 / (1e-10 + GRAD_RATIO_EPSILON)),  # tiny host norm: eps dominates
        (math.inf, 1.0, math.nan),  # a non-finite norm is surfaced, never read as 'host dominates'
        (4.0, math.nan, math.nan),
        (math.nan, 9.0, math.nan),
    ],
)
def test_ratio_edge_cases(host_sq: float | None, seed_sq: float | None, expected_ratio: float) -> None:
    monitor = GradientHealthMonitor()
    as_tensor = lambda v: None if v is None else torch.tensor(v, dtype=torch.float32)  # noqa: E731
    for convert in (lambda v: v, as_tensor):
        stats = monitor.materialize_gradient_stats(
            {"_async": True, "_host_norm_sq": convert(host_sq), "_seed_norm_sq": convert(seed_sq)}
        )
        assert stats["seed_gradient_ratio"] == pytest.approx(expected_ratio, rel=1e-6, nan_ok=True)
        assert monitor.host_grad_norm == pytest.approx(stats["host_grad_norm"], nan_ok=True)
        assert monitor.seed_grad_norm == pytest.approx(stats["seed_grad_norm"], nan_ok=True)


# --------------------------------------------------------------------------- API and state


def test_sync_form_equals_async_then_materialize_and_stores_norms() -> None:
    monitor = monitor_for(random_grads([(8, 8)], torch.float32, 6), random_grads([(8,)], torch.float32, 7))
    via_async = monitor.materialize_gradient_stats(monitor.compute_gradient_health_async())
    assert monitor.compute_gradient_health() == via_async
    assert monitor.host_grad_norm == via_async["host_grad_norm"] > 0
    assert monitor.seed_grad_norm == via_async["seed_grad_norm"] > 0
    assert set(via_async) == {"host_grad_norm", "seed_grad_norm", "seed_gradient_ratio"}
    assert all(type(value) is float for value in via_async.values())


def test_reset_clears_norms_and_parameters() -> None:
    monitor = monitor_for(random_grads([(8, 8)], torch.float32, 8), random_grads([(8,)], torch.float32, 9))
    monitor.compute_gradient_health()
    assert monitor.host_grad_norm > 0 and monitor.seed_grad_norm > 0
    monitor.reset()
    assert monitor.host_grad_norm == 0.0 and monitor.seed_grad_norm == 0.0
    stats = monitor.compute_gradient_health_async()
    assert stats["_host_norm_sq"] is None and stats["_seed_norm_sq"] is None


def test_async_computation_does_not_build_an_autograd_graph() -> None:
    param = nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3, requires_grad=True)  # even a grad that requires grad
    monitor = GradientHealthMonitor()
    monitor.register(nn.ParameterList([param]), nn.Module())
    host_sq = monitor.compute_gradient_health_async()["_host_norm_sq"]
    assert isinstance(host_sq, Tensor) and not host_sq.requires_grad


# --------------------------------------------------------------------------- one transfer

# Every way a tensor's value reaches Python. For CUDA tensors each is a device-to-host copy and a
# synchronisation; on the CPU we count the calls (the GPU suite proves it with sync debug mode).
HOST_MATERIALISING_METHODS = ["item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__"]


@contextmanager
def count_host_transfers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    with monkeypatch.context() as patch:
        for name in HOST_MATERIALISING_METHODS:
            real = getattr(torch.Tensor, name)

            def counting(self: Tensor, *args: object, _name: str = name, _real: Callable = real, **kw: object):
                calls.append(_name)
                return _real(self, *args, **kw)

            patch.setattr(torch.Tensor, name, counting)
        yield calls


def test_counter_detects_the_original_two_item_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    stats = {"_host_norm_sq": torch.tensor(4.0), "_seed_norm_sq": torch.tensor(9.0)}
    with count_host_transfers(monkeypatch) as calls:
        original_materialize(stats)
    assert calls == ["item", "item"]


def test_async_makes_no_host_transfer_and_materialize_exactly_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = monitor_for(mixed_dtype_grads(), random_grads([(16, 16), (16,)], torch.bfloat16, 11))
    with count_host_transfers(monkeypatch) as calls:
        stats = monitor.compute_gradient_health_async()
    assert calls == []
    with count_host_transfers(monkeypatch) as calls:
        result = monitor.materialize_gradient_stats(stats)
    assert len(calls) == 1, calls
    assert result["host_grad_norm"] > 0 and result["seed_grad_norm"] > 0


@pytest.mark.parametrize("present", ["host", "seed", "none"])
def test_materialize_transfers_at_most_once_per_call(monkeypatch: pytest.MonkeyPatch, present: str) -> None:
    grads = random_grads([(4, 4)], torch.float32, 12)
    monitor = monitor_for(grads if present == "host" else [], grads if present == "seed" else [])
    stats = monitor.compute_gradient_health_async()
    with count_host_transfers(monkeypatch) as calls:
        monitor.materialize_gradient_stats(stats)
    assert len(calls) == (0 if present == "none" else 1)


# --------------------------------------------------------------------------- packaging


def test_importing_esper_lint_does_not_import_torch() -> None:
    code = "import sys, esper_lint; sys.exit(1 if 'torch' in sys.modules else 0)"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


# --------------------------------------------------------------------------- API (get_total_norm's inputs)


def test_total_grad_norm_sq_accepts_a_single_tensor_and_any_iterable() -> None:
    grads = random_grads([(5, 3), (7,)], torch.float32, seed=13)
    from_list = total_grad_norm_sq(grads)
    from_generator = total_grad_norm_sq(g for g in grads)
    single = total_grad_norm_sq(grads[0])
    assert from_list is not None and from_generator is not None and single is not None
    assert torch.equal(from_list, from_generator)
    assert math.sqrt(float(single)) == pytest.approx(float64_norm(grads[:1]), rel=LOW_PRECISION_RTOL)


def test_total_grad_norm_sq_runs_under_no_grad() -> None:
    leaf = torch.randn(6, requires_grad=True)
    result = total_grad_norm_sq([leaf * 2])  # an input that is part of an autograd graph
    assert result is not None and not result.requires_grad and result.grad_fn is None


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_total_norm_matches_get_total_norm(dtype: torch.dtype, norm_type: float) -> None:
    grads = random_grads(TRANSFORMER_LIKE_SHAPES, dtype, seed=14)
    for tensors in (grads, grads[0], iter(grads)):
        expected = torch.nn.utils.get_total_norm(list(tensors) if not isinstance(tensors, Tensor) else tensors,
                                                 norm_type)
        for foreach in (None, False):
            measured = total_norm(grads if not isinstance(tensors, Tensor) else tensors, norm_type, foreach=foreach)
            assert float(measured) == pytest.approx(float(expected), rel=rtol_for(dtype))
    assert float(total_norm([])) == 0.0 == float(torch.nn.utils.get_total_norm([]))


def test_total_norm_accumulates_bf16_in_fp32_where_get_total_norm_does_not() -> None:
    grads = [torch.ones(66049, dtype=torch.bfloat16)]  # norm exactly 257; not a bf16 value
    assert float(total_norm(grads)) == 257.0
    assert float(torch.nn.utils.get_total_norm(grads)) != 257.0


def test_total_norm_rejects_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="norm_type must be positive"):
        total_norm([torch.ones(3)], 0.0)
    with pytest.raises(RuntimeError, match="non-finite"):
        total_norm([torch.tensor([1.0, math.nan])], error_if_nonfinite=True)


# --------------------------------------------------------------------------- groups cached at register()


def test_a_call_does_no_per_tensor_grouping_or_validation(
    monkeypatch: pytest.MonkeyPatch, fused_calls: list[list[Tensor]]
) -> None:
    monitor = monitor_for(mixed_dtype_grads(), random_grads([(16, 16), (16,)], torch.bfloat16, 15))
    per_tensor_work: list[str] = []
    for name in ("group_key", "dense_values", "grouped_partials"):
        real = getattr(gradient_health, name)

        def spy(*args: object, _real: Callable = real, _name: str = name, **kwargs: object) -> object:
            per_tensor_work.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(gradient_health, name, spy)
    monitor.compute_gradient_health_async()
    assert per_tensor_work == []  # grouped and validated once, in register()
    assert len(fused_calls) == 5  # one fused call per (device, dtype) group: 4 host + 1 seed


def test_register_rejects_forced_fusion_on_a_device_without_foreach_kernels() -> None:
    meta = nn.ParameterList([nn.Parameter(torch.empty(3, device="meta"))])
    with pytest.raises(RuntimeError, match="foreach=True was passed"):
        GradientHealthMonitor(foreach=True).register(meta, nn.Module())


def test_include_filter_and_tied_parameters_are_counted_once() -> None:
    shared = nn.Parameter(torch.zeros(4))
    shared.grad = torch.full((4,), 2.0)
    other = nn.Parameter(torch.zeros(3))
    other.grad = torch.full((3,), 5.0)
    host = nn.ParameterDict({"a": shared, "b": shared, "other": other})  # tied: yielded once
    monitor = GradientHealthMonitor()
    monitor.register(host, nn.Module())
    assert monitor.compute_gradient_health()["host_grad_norm"] == pytest.approx(math.sqrt(16 + 75))
    monitor.register(host, nn.Module(), include=lambda name, param: name != "other")
    assert monitor.compute_gradient_health()["host_grad_norm"] == pytest.approx(4.0)


# --------------------------------------------------------------------------- non-finite gradients


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_non_finite_host_gradients_are_surfaced(bad: float) -> None:
    host = random_grads([(4, 4)], torch.float32, 16)
    host[0][1, 2] = bad
    stats = monitor_for(host, random_grads([(4,)], torch.float32, 17)).compute_gradient_health()
    assert not math.isfinite(stats["host_grad_norm"])
    assert math.isnan(stats["seed_gradient_ratio"])  # never 0.0, the value of "host dominates"


# --------------------------------------------------------------------------- sparse gradients


def test_sparse_embedding_gradients_are_handled() -> None:
    embedding = nn.Embedding(20, 4, sparse=True)
    head = nn.Linear(4, 2)
    head(embedding(torch.tensor([3, 3, 7, 11, 3]))).sum().backward()  # repeated rows: uncoalesced
    grad = embedding.weight.grad
    assert grad is not None and grad.layout == torch.sparse_coo and not grad.is_coalesced()
    dense = [grad.to_dense()]
    for foreach in (None, False):
        monitor = GradientHealthMonitor(foreach=foreach)
        monitor.register(nn.ModuleList([embedding, head]), nn.Module())
        stats = monitor.compute_gradient_health()
        expected = float64_norm(dense + [p.grad for p in head.parameters()])  # type: ignore[misc]
        assert stats["host_grad_norm"] == pytest.approx(expected, rel=LOW_PRECISION_RTOL)
    assert float(total_grad_norm_sq([grad])) == pytest.approx(float64_norm(dense) ** 2, rel=LOW_PRECISION_RTOL)


def test_other_sparse_layouts_are_rejected_with_a_clear_message() -> None:
    csr = torch.eye(3).to_sparse_csr()
    with pytest.raises(TypeError, match=r"torch.sparse_csr gradients are not supported .*\.to_dense\(\)"):
        total_grad_norm_sq([torch.ones(2), csr])


# --------------------------------------------------------------------------- devices without float64


@pytest.fixture
def cpu_without_float64(monkeypatch: pytest.MonkeyPatch) -> list[torch.dtype]:
    """Pretend the CPU is a device that cannot hold float64 (as MPS cannot); record every dtype
    produced on it by ``Tensor.to`` and ``torch.stack``."""
    monkeypatch.setattr(gradient_health, "DEVICE_TYPES_WITHOUT_FLOAT64", frozenset({"cpu"}), raising=False)
    produced: list[torch.dtype] = []
    real_to, real_stack = torch.Tensor.to, torch.stack

    def recording_to(self: Tensor, *args: object, **kwargs: object) -> Tensor:
        out = real_to(self, *args, **kwargs)
        produced.append(out.dtype)
        return out

    def recording_stack(tensors: Sequence[Tensor], *args: object, **kwargs: object) -> Tensor:
        out = real_stack(tensors, *args, **kwargs)
        produced.append(out.dtype)
        return out

    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    monkeypatch.setattr(torch, "stack", recording_stack)
    return produced


def test_materialize_never_packs_float64_on_a_device_without_it(cpu_without_float64: list[torch.dtype]) -> None:
    monitor = monitor_for(random_grads([(8, 8)], torch.bfloat16, 18), random_grads([(8,)], torch.float16, 19))
    stats = monitor.compute_gradient_health_async()
    cpu_without_float64.clear()
    health = monitor.materialize_gradient_stats(stats)
    assert cpu_without_float64 and torch.float64 not in cpu_without_float64
    assert health["host_grad_norm"] > 0 and health["seed_grad_norm"] > 0


def test_partials_are_combined_without_float64_on_a_device_without_it(
    cpu_without_float64: list[torch.dtype],
) -> None:
    # fp64 meta gradients cannot exist on such a device; mixing groups must not create them either.
    grads = random_grads([(6, 6)], torch.float32, 20) + random_grads([(6,)], torch.bfloat16, 21)
    result = total_grad_norm_sq(grads)
    assert result is not None and result.dtype == torch.float32
    assert torch.float64 not in cpu_without_float64


# --------------------------------------------------------------------------- reset() during a call


def test_reset_from_another_thread_never_yields_a_partial_sum() -> None:
    """Thread B resets the monitor while thread A is half-way through collecting gradients.

    The pause is deterministic: the 50th gradient read hands control to B and waits for it.
    """
    grads = [torch.full((3,), float(i + 1)) for i in range(100)]
    in_call, reset_done = threading.Event(), threading.Event()
    reads = {"count": 0}

    class PausingParameter(nn.Parameter):
        @property  # type: ignore[override]
        def grad(self) -> Tensor | None:
            reads["count"] += 1
            if reads["count"] == 50:
                in_call.set()
                assert reset_done.wait(timeout=30)
            return self._stored_grad  # type: ignore[attr-defined]

    params = nn.ParameterList()
    for grad in grads:
        param = PausingParameter(torch.zeros(3))
        param._stored_grad = grad  # type: ignore[attr-defined]
        params.append(param)
    monitor = GradientHealthMonitor()
    monitor.register(params, nn.Module())
    results: list[AsyncGradientStats] = []
    caller = threading.Thread(target=lambda: results.append(monitor.compute_gradient_health_async()))
    caller.start()
    assert in_call.wait(timeout=30)
    monitor.reset()
    reset_done.set()
    caller.join(timeout=30)
    assert not caller.is_alive() and len(results) == 1
    host_sq = results[0]["_host_norm_sq"]
    assert isinstance(host_sq, Tensor)
    assert float(host_sq) == pytest.approx(float64_norm(grads) ** 2, rel=LOW_PRECISION_RTOL)  # all 100, not 49
    assert monitor.compute_gradient_health_async()["_host_norm_sq"] is None  # and the reset took effect


# --------------------------------------------------------------------------- DTensor and sharded gradients


@pytest.fixture
def one_rank_gloo_group(tmp_path: Path) -> Iterator[object]:
    """A single-process gloo group (file rendezvous: no port) and a 1-rank CPU device mesh."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch was built without torch.distributed")
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1,
                            timeout=timedelta(seconds=60))
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def test_dtensor_gradients_on_a_one_rank_mesh(one_rank_gloo_group: object) -> None:
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    fulls = random_grads([(8, 4), (6,), (5, 3)], torch.float32, 22)
    fulls[1] = fulls[1].bfloat16()
    params = nn.ParameterList()
    for full, placement in zip(fulls, [Shard(0), Replicate(), Shard(1)], strict=True):
        param = nn.Parameter(distribute_tensor(torch.zeros_like(full), one_rank_gloo_group, [placement]))
        param.grad = distribute_tensor(full, one_rank_gloo_group, [placement])
        params.append(param)
    for foreach in (None, True, False):  # foreach=True accepts DTensor: _foreach_norm has a DTensor rule
        monitor = GradientHealthMonitor(foreach=foreach)
        monitor.register(params, nn.Module())
        stats = monitor.compute_gradient_health()  # the seed's .tolist() refused DTensor here
        assert stats["host_grad_norm"] == pytest.approx(float64_norm(fulls), rel=LOW_PRECISION_RTOL)
    grads = [param.grad for param in params]
    assert float(total_norm(grads)) == pytest.approx(float64_norm(fulls), rel=LOW_PRECISION_RTOL)


def test_process_group_on_one_rank_is_the_local_norm(one_rank_gloo_group: object) -> None:
    import torch.distributed as dist

    grads = random_grads(TRANSFORMER_LIKE_SHAPES, torch.float32, 23)
    monitor = GradientHealthMonitor(process_group=dist.group.WORLD)
    monitor.register(module_with_grads(grads), nn.Module())
    stats = monitor.compute_gradient_health_async()
    assert isinstance(stats["_seed_norm_sq"], Tensor) and float(stats["_seed_norm_sq"]) == 0.0  # never None
    assert monitor.materialize_gradient_stats(stats)["host_grad_norm"] == pytest.approx(
        float64_norm(grads), rel=LOW_PRECISION_RTOL)


def test_two_processes_dtensor_and_sharded_global_norms(tmp_path: Path) -> None:
    """Two gloo ranks on the CPU: DTensor grads, plain shards with process_group, the inf-norm and
    a tensor-parallel duplicate counted once all give the norm of the unsharded gradients."""
    out = tmp_path / "fresh" / "dist.json"  # a folder that does not exist yet
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "distributed_norm_check.py"), "--backend", "gloo",
         "--device", "cpu", "--nprocs", "2", "--timeout", "150", "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=200,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    summary = json.loads(out.read_text())
    assert summary["ok"] and summary["nprocs"] == 2 and len(summary["ranks"]) == 2
    for rank in summary["ranks"]:
        checks = rank["checks"]
        assert checks["shards process_group"]["ok"] and checks["dtensor foreach=True"]["ok"]
        assert checks["fsdp2 fully_shard"]["ok"], checks["fsdp2 fully_shard"]  # FSDP2 itself, 2 ranks
        # Without the process group each rank sees only its shard: the silently wrong norm.
        local = checks["shards without process_group (rank-local)"]
        assert local["measured"] < local["expected"]


# --------------------------------------------------------------------------- benchmark output


def test_benchmark_writes_json_into_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    out = tmp_path / ".bench" / "x.json"
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_gradient_health.py"), "--device", "cpu",
         "--configs", "16x256", "--max-params", "20000", "--warmup", "0", "--repeats", "1", "--json", str(out),
         "--out", str(tmp_path / "plots" / "p.png")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    payload = json.loads(out.read_text())
    # The comparisons the benchmark exists for, on the same tensors in one run.
    expected = {"monitor", "total_grad_norm_sq", "norms squared", "get_total_norm", "per-tensor", "one read"}
    if hasattr(torch, "_foreach_powsum"):  # torch >= 2.11
        expected.add("powsum")
    assert {row["method"] for row in payload["rows"]} >= expected


def test_gpu_check_script_runs_its_cpu_mode_from_a_fresh_checkout(tmp_path: Path) -> None:
    """benchmarks/gpu_check.sh --cpu: the steps a GPU run makes, small and on the CPU, into an output
    folder that does not exist yet, started from another directory (the distributed step has its
    own test above)."""
    out = tmp_path / "not" / "yet" / "there"
    completed = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "gpu_check.sh"), "--cpu", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHON": sys.executable, "SKIP_DISTRIBUTED": "1"},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "cpu"
    assert {name: step["exit_code"] for name, step in summary["steps"].items()} == {
        "gpu_suite": 0, "bench_bfloat16": 0, "bench_float32": 0}
    # Without CUDA the GPU suite is collected and every test skipped, none failed.
    assert summary["gpu_suite"]["tests"] > 0
    assert summary["gpu_suite"]["skipped"] == summary["gpu_suite"]["tests"]
    monitor_rows = [row for row in summary["largest_sets"] if row["method"] == "monitor"]
    assert {row["dtype"] for row in monitor_rows} == {"bfloat16", "float32"}
    assert all(row["host_ms"] > 0 for row in monitor_rows)
