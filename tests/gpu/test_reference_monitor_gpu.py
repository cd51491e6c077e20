"""GPU tests of the reference GradientHealthMonitor. Run on a CUDA machine: ``pytest -m gpu tests/gpu``.

Tolerances (relative, against float64 norms of the same gradient values): 1e-5 for fp32, fp16 and
bf16 gradients (all accumulated in fp32). On CUDA the fused kernel and the per-tensor fallback
reduce in different orders, so they agree within that tolerance, not bit for bit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import pytest

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from esper_lint.reference import GradientHealthMonitor, gradient_health  # noqa: E402
from esper_lint.reference.gradient_health import total_grad_norm_sq  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason=f"GPU suite needs a CUDA device: torch.cuda.is_available() is False (torch {torch.__version__})",
    ),
]

RTOL = 1e-5
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SHAPES = [(384, 128), (384,), (128, 128), (128,), (128,), (128,), (512, 128), (512,), (128, 512), (128,)]


# --------------------------------------------------------------------------- helpers


def grads_on(device: str, shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, seed: int,
             scale: float = 1.0) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
        for shape in shapes
    ]


def module_with_grads(grads: Sequence[Tensor]) -> nn.Module:
    params = nn.ParameterList()
    for grad in grads:
        param = nn.Parameter(torch.zeros_like(grad))
        param.grad = grad
        params.append(param)
    return params


def monitor_for(
    host: Sequence[Tensor], seed: Sequence[Tensor] = (), foreach: bool | None = None
) -> GradientHealthMonitor:
    monitor = GradientHealthMonitor(foreach=foreach)
    monitor.register(module_with_grads(host), module_with_grads(seed))
    return monitor


def float64_norm(grads: Sequence[Tensor]) -> float:
    return math.sqrt(math.fsum(float(g.detach().double().pow(2).sum().cpu()) for g in grads))


def count_device_operations(fn: Callable[[], object]) -> int:
    """Kernels, memsets and copies the CUDA device runs for one call of ``fn`` (after a warm-up)."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for event in prof.events() if event.device_type == DeviceType.CUDA)


def sync_warnings(fn: Callable[[], object]) -> int:
    """How many synchronising CUDA operations ``fn`` performs, per torch's sync debug mode."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum(1 for w in caught if "synchroniz" in str(w.message).lower())


def without_synchronising(fn: Callable[[], object]) -> object:
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        return fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.fixture
def path_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[Tensor]]]:
    calls: dict[str, list[list[Tensor]]] = {"fused": [], "fallback": []}
    for key, name in (("fused", "fused_norms"), ("fallback", "per_tensor_norms")):
        real = getattr(gradient_health, name)

        def spy(grads: list[Tensor], norm_type: float, accumulation_dtype: torch.dtype | None,
                _real: Callable = real, _key: str = key) -> list[Tensor]:
            calls[_key].append(list(grads))
            return _real(grads, norm_type, accumulation_dtype)

        monkeypatch.setattr(gradient_health, name, spy)
    return calls


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fused_and_fallback_agree_with_each_other_and_float64(dtype: torch.dtype, path_calls: dict) -> None:
    host = grads_on("cuda", SHAPES, dtype, seed=1)
    seed = grads_on("cuda", [(256, 256), (256,)], dtype, seed=2, scale=0.01)
    fused = monitor_for(host, seed, foreach=None).compute_gradient_health()
    assert len(path_calls["fused"]) == 2 and not path_calls["fallback"]  # the fused kernel really ran
    fallback = monitor_for(host, seed, foreach=False).compute_gradient_health()
    on_cpu = monitor_for([g.cpu() for g in host], [g.cpu() for g in seed]).compute_gradient_health()
    for key in ("host_grad_norm", "seed_grad_norm", "seed_gradient_ratio"):
        assert fused[key] == pytest.approx(fallback[key], rel=RTOL)
        assert fused[key] == pytest.approx(on_cpu[key], rel=RTOL)
    assert fused["host_grad_norm"] == pytest.approx(float64_norm(host), rel=RTOL)
    assert fused["seed_grad_norm"] == pytest.approx(float64_norm(seed), rel=RTOL)
    assert fallback["host_grad_norm"] == pytest.approx(float64_norm(host), rel=RTOL)


def test_large_fp16_norms_are_finite_and_correct_on_cuda() -> None:
    grads = [torch.full((64, 64), 60000.0, dtype=torch.float16, device="cuda") for _ in range(3)]
    for foreach in (None, False):
        norm = monitor_for(grads, foreach=foreach).compute_gradient_health()["host_grad_norm"]
        assert math.isfinite(norm)
        assert norm == pytest.approx(float64_norm(grads), rel=RTOL)


def test_bf16_relative_error_is_at_fp32_level_on_cuda() -> None:
    grads = [torch.ones(66049, dtype=torch.bfloat16, device="cuda")]  # norm exactly 257, not a bf16 value
    grads += grads_on("cuda", [(300, 300)], torch.bfloat16, seed=3)
    for foreach in (None, False):
        norm = monitor_for(grads, foreach=foreach).compute_gradient_health()["host_grad_norm"]
        assert abs(norm - float64_norm(grads)) / float64_norm(grads) < RTOL


def test_mixed_dtypes_on_cuda_one_fused_call_per_group(path_calls: dict) -> None:
    grads = [g for i, dtype in enumerate(DTYPES * 4) for g in grads_on("cuda", [(33, i + 1)], dtype, seed=i)]
    result = total_grad_norm_sq(grads)
    assert result is not None and result.device.type == "cuda"
    assert len(path_calls["fused"]) == 3 and not path_calls["fallback"]
    assert all(len({(g.device, g.dtype) for g in call}) == 1 for call in path_calls["fused"])
    assert math.sqrt(float(result)) == pytest.approx(float64_norm(grads), rel=RTOL)


# --------------------------------------------------------------------------- synchronisation


def test_sync_debug_mode_detects_a_synchronisation() -> None:
    """The harness can fail: an .item() under 'error' mode raises."""
    with pytest.raises(RuntimeError):
        without_synchronising(lambda: torch.ones(1, device="cuda").item())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_async_never_synchronises(dtype: torch.dtype) -> None:
    mixed = [g for i, d in enumerate(DTYPES) for g in grads_on("cuda", [(64, 64), (64,)], d, seed=10 + i)]
    monitor = monitor_for(grads_on("cuda", SHAPES, dtype, seed=4), mixed)
    monitor.compute_gradient_health_async()  # warm-up: lazy CUDA initialisation is not under test
    stats = without_synchronising(monitor.compute_gradient_health_async)
    torch.cuda.synchronize()
    health = monitor.materialize_gradient_stats(stats)  # type: ignore[arg-type]
    assert health["seed_grad_norm"] == pytest.approx(float64_norm(mixed), rel=RTOL)


def test_materialize_synchronises_exactly_once() -> None:
    monitor = monitor_for(grads_on("cuda", SHAPES, torch.bfloat16, seed=5),
                          grads_on("cuda", [(64, 64)], torch.float32, seed=6))
    stats = monitor.compute_gradient_health_async()
    torch.cuda.synchronize()
    assert sync_warnings(lambda: monitor.materialize_gradient_stats(stats)) == 1
    # The seed project's version, two .item() calls, is seen as two.
    assert sync_warnings(lambda: [stats["_host_norm_sq"].item(), stats["_seed_norm_sq"].item()]) == 2


# --------------------------------------------------------------------------- kernel launches


def fused_and_fallback_operations(grads: list[Tensor]) -> tuple[int, int]:
    fused = count_device_operations(lambda: total_grad_norm_sq(grads, foreach=None))
    fallback = count_device_operations(lambda: total_grad_norm_sq(grads, foreach=False))
    return fused, fallback


def test_kernel_launches_follow_groups_not_tensors() -> None:
    few = grads_on("cuda", [(1024,)] * 10, torch.float32, seed=7)
    many = grads_on("cuda", [(1024,)] * 1000, torch.float32, seed=8)
    fused_few, _ = fused_and_fallback_operations(few)
    fused_many, fallback_many = fused_and_fallback_operations(many)
    # The counter sees per-tensor work: the fallback runs one norm kernel per tensor.
    assert fallback_many >= 1000
    # The fused path batches about a hundred tensors per launch inside _foreach_norm and the stack,
    # so going from 10 to 1,000 tensors adds at most one launch per 25 tensors ...
    assert fused_many <= fused_few + 1000 // 25, (fused_few, fused_many)
    # ... and stays at least 20 times below one launch per tensor.
    assert fused_many * 20 <= fallback_many, (fused_many, fallback_many)


def test_kernel_launches_grow_with_dtype_groups() -> None:
    one_group = grads_on("cuda", [(1024,)] * 10, torch.float32, seed=9)
    three_groups = [g for i, d in enumerate(DTYPES) for g in grads_on("cuda", [(1024,)] * 10, d, seed=20 + i)]
    one = count_device_operations(lambda: total_grad_norm_sq(one_group))
    three = count_device_operations(lambda: total_grad_norm_sq(three_groups))
    assert three >= 2 * one, (one, three)  # each group pays its own handful of launches ...
    assert three <= 3 * one + 6, (one, three)  # ... plus a small constant to combine the groups


# --------------------------------------------------------------------------- CUDA graphs


def test_capture_and_replay_in_a_cuda_graph() -> None:
    host_values = [grads_on("cuda", SHAPES, torch.bfloat16, seed=s) for s in (30, 31, 32)]
    seed_values = [grads_on("cuda", [(128, 128), (128,)], torch.float32, seed=s) for s in (40, 41, 42)]
    host, seed = module_with_grads(host_values[0]), module_with_grads(seed_values[0])
    # Gradients are static buffers: later steps copy new values into them.
    for param, grad in zip(host.parameters(), host_values[0], strict=True):
        param.grad = grad.clone()
    for param, grad in zip(seed.parameters(), seed_values[0], strict=True):
        param.grad = grad.clone()
    monitor = GradientHealthMonitor()
    monitor.register(host, seed)

    side = torch.cuda.Stream()  # warm up on a side stream, as CUDA graph capture requires
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            monitor.compute_gradient_health_async()
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # capture fails on any synchronisation
        static_stats = monitor.compute_gradient_health_async()

    for step in (1, 2):
        with torch.no_grad():
            for param, grad in zip(host.parameters(), host_values[step], strict=True):
                param.grad.copy_(grad)
            for param, grad in zip(seed.parameters(), seed_values[step], strict=True):
                param.grad.copy_(grad)
        graph.replay()
        torch.cuda.synchronize()
        health = monitor.materialize_gradient_stats(static_stats)
        assert health["host_grad_norm"] == pytest.approx(float64_norm(host_values[step]), rel=RTOL)
        assert health["seed_grad_norm"] == pytest.approx(float64_norm(seed_values[step]), rel=RTOL)


def test_graph_replay_follows_training_steps_with_zero_grad_set_to_none_false() -> None:
    """The documented condition for graph replay: the same grad tensors at every replay.

    ``zero_grad(set_to_none=False)`` zeroes them in place and backward accumulates into them, so a
    graph captured once keeps reading the current gradients step after step.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 8)).cuda()
    seed = nn.Linear(8, 8).cuda()
    monitor = GradientHealthMonitor()
    monitor.register(model, seed)

    def step(batch: Tensor) -> None:
        model.zero_grad(set_to_none=False)
        seed.zero_grad(set_to_none=False)
        seed(model(batch)).square().sum().backward()

    step(torch.randn(16, 64, device="cuda"))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            monitor.compute_gradient_health_async()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_stats = monitor.compute_gradient_health_async()
    for _ in range(3):
        step(torch.randn(16, 64, device="cuda"))
        graph.replay()
        torch.cuda.synchronize()
        replayed = monitor.materialize_gradient_stats(static_stats)
        fresh = monitor.compute_gradient_health()
        assert replayed["host_grad_norm"] == pytest.approx(fresh["host_grad_norm"], rel=RTOL)
        assert replayed["seed_grad_norm"] == pytest.approx(fresh["seed_grad_norm"], rel=RTOL)


def test_nan_gradients_on_cuda_give_a_nan_ratio() -> None:
    host = grads_on("cuda", SHAPES, torch.bfloat16, seed=70)
    host[0][0, 0] = float("nan")
    stats = monitor_for(host, grads_on("cuda", [(64,)], torch.float32, seed=71)).compute_gradient_health()
    assert math.isnan(stats["host_grad_norm"]) and math.isnan(stats["seed_gradient_ratio"])


def test_sparse_embedding_gradients_on_cuda() -> None:
    embedding = nn.Embedding(1000, 64, sparse=True).cuda()
    embedding(torch.tensor([3, 3, 7], device="cuda")).sum().backward()
    monitor = GradientHealthMonitor()
    monitor.register(embedding, nn.Module())
    expected = float64_norm([embedding.weight.grad.to_dense()])  # type: ignore[union-attr]
    assert monitor.compute_gradient_health()["host_grad_norm"] == pytest.approx(expected, rel=RTOL)


# --------------------------------------------------------------------------- devices


def test_parameters_split_across_cpu_and_cuda() -> None:
    host = grads_on("cpu", SHAPES[:5], torch.float32, seed=50) + grads_on("cuda", SHAPES[5:], torch.bfloat16, seed=51)
    seed = grads_on("cuda", [(64, 64)], torch.float16, seed=52) + grads_on("cpu", [(64,)], torch.float16, seed=53)
    monitor = monitor_for(host, seed)
    monitor.compute_gradient_health_async()  # warm-up
    stats = without_synchronising(monitor.compute_gradient_health_async)
    assert stats["_host_norm_sq"].device.type == "cuda"  # type: ignore[union-attr]
    assert stats["_seed_norm_sq"].device.type == "cuda"  # type: ignore[union-attr]
    torch.cuda.synchronize()
    health = monitor.materialize_gradient_stats(stats)  # type: ignore[arg-type]
    assert health["host_grad_norm"] == pytest.approx(float64_norm(host), rel=RTOL)
    assert health["seed_grad_norm"] == pytest.approx(float64_norm(seed), rel=RTOL)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_parameters_split_across_two_gpus() -> None:
    grads = grads_on("cuda:0", SHAPES, torch.float32, seed=60) + grads_on("cuda:1", SHAPES, torch.bfloat16, seed=61)
    result = total_grad_norm_sq(grads)
    assert result is not None and result.device == torch.device("cuda:0")
    assert math.sqrt(float(result)) == pytest.approx(float64_norm(grads), rel=RTOL)
