#!/usr/bin/env python
"""Benchmark gradient-norm strategies on transformer-like parameter sets (a script, not a test).

Compares, on the same gradients in one run, for one dtype on one device:
- ``monitor``: ``GradientHealthMonitor().compute_gradient_health_async`` for one side (groups cached
  at ``register()``, one ``_foreach_norm`` per group with fp32 accumulation);
- ``total_grad_norm_sq``: the same numerics through the general function (groups every call);
- ``norms squared``: the monitor's kernels alone for one group (``_foreach_norm(..., dtype=float32)``,
  ``stack``, ``square``, ``sum``), without the monitor's plumbing: what ``powsum`` is compared with;
- ``powsum``: ``torch._foreach_powsum(..., dtype=float32)`` summed (squared sums directly, no norms);
- ``per-tensor``: ``GradientHealthMonitor(foreach=False)`` (the documented fallback);
- ``original``: the seed project's algorithm (ungrouped ``_foreach_norm`` in the gradient's dtype,
  every per-tensor norm moved to one device, ``stack(norms).pow(2).sum()``);
- ``get_total_norm``: ``torch.nn.utils.get_total_norm``;
- ``one read``: ``flat.sum(dtype=float32)`` over one buffer holding all gradients, a measured floor;
- on CUDA, ``monitor (graph)``: the monitor's call captured once in a CUDA graph and replayed.

Columns: ``host ms`` is the wall time of the Python call (enqueue only on CUDA; everything on a
CPU); on CUDA ``device ms`` is the busy time of the kernels the call launched (torch.profiler, sum of
kernel and copy durations), ``e2e ms`` the CUDA-event time from before the call to after its last
kernel, with the L2 cache flushed before each call (``--no-flush`` turns that off), and
``x read`` the device time over the time to read the gradients once at the card's peak bandwidth.
The JSON records the tensors per ``multi_tensor_apply`` launch this build uses, as measured:
the number of ``_foreach_norm`` kernels launched for the largest set.

    python benchmarks/bench_gradient_health.py --device cpu --max-params 2000000
    python benchmarks/bench_gradient_health.py --device cuda --dtype bfloat16 --json .bench/gpu_bf16.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from esper_lint.reference import GradientHealthMonitor
from esper_lint.reference.gradient_health import total_grad_norm_sq

# Peak HBM bandwidth in bytes per second, matched against torch.cuda.get_device_name().
PEAK_BANDWIDTH = [("H200", 4.8e12), ("H100 NVL", 3.9e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12)]
# (name, layers, model width): 12 tensors per layer + a final norm; about 12 * width**2 per layer.
# The last two are the 1B-parameter sets (962 and 1,922 tensors).
CONFIGS = [("16x256", 16, 256), ("40x512", 40, 512), ("80x1024", 80, 1024), ("160x720", 160, 720)]
ALIGNMENT = 64  # elements; keeps every gradient view 128-byte aligned like separate allocations
L2_FLUSH_BYTES = 256 * 2**20  # larger than any current GPU's L2 cache (H200: 60 MiB)


@dataclass
class Row:
    config: str
    tensors: int
    params: int
    bytes: int
    method: str
    host_ms: float
    device_ms: float | None
    e2e_ms: float | None
    device_ops: int | None
    x_read_once_at_peak: float | None
    capped: bool


def layer_shapes(width: int) -> list[tuple[int, ...]]:
    return [
        (3 * width, width), (3 * width,),  # attention in-projection
        (width, width), (width,),  # attention out-projection
        (width,), (width,),  # first layer norm
        (4 * width, width), (4 * width,),  # MLP up
        (width, 4 * width), (width,),  # MLP down
        (width,), (width,),  # second layer norm
    ]


def model_shapes(layers: int, width: int) -> list[tuple[int, ...]]:
    return [shape for _ in range(layers) for shape in layer_shapes(width)] + [(width,), (width,)]


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def capped_width(layers: int, width: int, max_params: int | None) -> int:
    """Shrink the width (not the tensor count) until the model fits under ``max_params``."""
    while max_params is not None and width > 8 and sum(map(numel, model_shapes(layers, width))) > max_params:
        width -= 8
    return width


def carve(flat: Tensor, shapes: list[tuple[int, ...]]) -> list[Tensor]:
    views, offset = [], 0
    for shape in shapes:
        views.append(flat[offset : offset + numel(shape)].view(shape))
        offset += -(-numel(shape) // ALIGNMENT) * ALIGNMENT
    return views


def build_model(shapes: list[tuple[int, ...]], dtype: torch.dtype, device: str) -> tuple[nn.ParameterList, Tensor]:
    """Parameters whose gradients are views of one flat buffer (returned for the one-read floor)."""
    total = sum(-(-numel(shape) // ALIGNMENT) * ALIGNMENT for shape in shapes)
    flat_grads = torch.randn(total, dtype=dtype, device=device)
    flat_params = torch.zeros(total, dtype=dtype, device=device)
    params = nn.ParameterList()
    for param_view, grad_view in zip(carve(flat_params, shapes), carve(flat_grads, shapes), strict=True):
        param = nn.Parameter(param_view)
        param.grad = grad_view
        params.append(param)
    return params, flat_grads


def original_algorithm(grads: list[Tensor]) -> Tensor:
    """The seed project's compute_gradient_health_async for one side, as it was."""
    # NOTE: Private API, stable since PyTorch 1.11.
    # If this breaks in future PyTorch, fallback is:
    #   norms = [torch.linalg.vector_norm(g) for g in grads]
    norms = torch._foreach_norm(grads)
    device = norms[0].device
    return torch.stack([norm.to(device) for norm in norms]).pow(2).sum()


def norms_squared_algorithm(grads: list[Tensor]) -> Tensor:
    """The monitor's kernel sequence for one (device, dtype) group, with nothing around it."""
    # NOTE: Private API, stable since PyTorch 2.4.
    # If this breaks in future PyTorch, fallback is:
    #   norms = [torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]
    norms = torch._foreach_norm(grads, 2.0, dtype=torch.float32)
    return torch.stack(norms).square().sum()


def powsum_algorithm(grads: list[Tensor]) -> Tensor:
    """Squared sums straight from the multi-tensor kernel (one dtype group, fp32 accumulation)."""
    if hasattr(torch, "_foreach_powsum"):
        # NOTE: Private API, stable since PyTorch 2.11.
        # If this breaks in future PyTorch, fallback is:
        #   sums = [torch.linalg.vector_norm(g, dtype=torch.float32).square() for g in grads]
        sums = list(torch._foreach_powsum(grads, 2.0, dtype=torch.float32))
    else:
        sums = [torch.linalg.vector_norm(g, dtype=torch.float32).square() for g in grads]
    return torch.stack(sums).sum()


def load_baseline(path: Path) -> type:
    """``GradientHealthMonitor`` from another version of the module (``git show REV:path > file``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_gradient_health", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradientHealthMonitor


def methods(params: nn.ParameterList, flat: Tensor, baseline: type | None = None) -> dict[str, Callable[[], object]]:
    """Every method starts from the parameters, as a training step does: reading ``param.grad``
    creates a Python object per gradient (autograd's gradients have none), which is part of the cost."""
    param_tuple = tuple(params)

    def grads() -> list[Tensor]:
        return [grad for param in param_tuple if (grad := param.grad) is not None]

    monitor, per_tensor = GradientHealthMonitor(), GradientHealthMonitor(foreach=False)
    monitor.register(params, nn.Module())
    per_tensor.register(params, nn.Module())
    candidates: dict[str, Callable[[], object]] = {
        "monitor": monitor.compute_gradient_health_async,
        "total_grad_norm_sq": lambda: total_grad_norm_sq(grads()),
    }
    if baseline is not None:
        before = baseline()
        before.register(params, nn.Module())
        candidates["monitor (baseline)"] = before.compute_gradient_health_async
    candidates["norms squared"] = lambda: norms_squared_algorithm(grads())
    if hasattr(torch, "_foreach_powsum"):  # torch >= 2.11
        candidates["powsum"] = lambda: powsum_algorithm(grads())
    candidates["per-tensor"] = per_tensor.compute_gradient_health_async
    candidates["original"] = lambda: original_algorithm(grads())
    candidates["get_total_norm"] = lambda: torch.nn.utils.get_total_norm(grads())
    candidates["one read"] = lambda: flat.sum(dtype=torch.float32)
    return candidates


def on_cuda(device: str) -> bool:
    return device.startswith("cuda")


def host_ms(candidates: dict[str, Callable[[], object]], device: str, warmup: int, repeats: int) -> dict[str, float]:
    """Median wall time of each Python call; on CUDA only the enqueue (synchronised between calls).

    The methods take turns call by call, so that a machine whose load drifts slows all of them alike.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            if on_cuda(device):
                torch.cuda.synchronize()
            begin = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - begin) * 1e3)
    if on_cuda(device):
        torch.cuda.synchronize()
    return {name: statistics.median(times) for name, times in samples.items()}


def e2e_ms(fn: Callable[[], object], flush: Tensor | None, repeats: int) -> float:
    """Median CUDA-event time of one call, each after an L2 flush (the flush is outside the events)."""
    samples = []
    for _ in range(repeats):
        if flush is not None:
            flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return statistics.median(samples)


def profile_device(fn: Callable[[], object]) -> tuple[int, float, dict[str, int]]:
    """(device operations, their summed busy milliseconds, launches per kernel name) for one call."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    events = [event for event in prof.events() if event.device_type == DeviceType.CUDA]
    kernels: dict[str, int] = {}
    for event in events:
        kernels[event.name] = kernels.get(event.name, 0) + 1
    busy_us = sum(event.time_range.elapsed_us() for event in events)
    return len(events), busy_us / 1e3, kernels


def graph_replay(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` captured once in a CUDA graph; the returned callable replays it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def peak_bandwidth(device: str, override_tbps: float | None) -> tuple[str, float | None]:
    if not on_cuda(device):
        return f"cpu, {torch.get_num_threads()} thread(s)", None
    name = torch.cuda.get_device_name(torch.device(device))
    if override_tbps is not None:
        return name, override_tbps * 1e12
    for marker, peak in PEAK_BANDWIDTH:
        if marker in name:
            return name, peak
    return name, None


def foreach_launches(kernels: dict[str, int], tensors: int) -> dict[str, object]:
    """The multi_tensor_apply configuration as measured: kernels and tensors per launch."""
    multi = {name: count for name, count in kernels.items() if "multi_tensor" in name or "foreach" in name.lower()}
    launches = sum(multi.values())
    return {"tensors": tensors, "kernels": multi, "tensors_per_launch": tensors / launches if launches else None}


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, object]]:
    dtype = getattr(torch, args.dtype)
    device_name, peak = peak_bandwidth(args.device, args.peak_tbps)
    cuda = on_cuda(args.device)
    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device=args.device) if cuda and args.flush else None
    rows: list[Row] = []
    multi_tensor_apply: dict[str, object] | None = None
    configs = [config for config in CONFIGS if args.configs is None or config[0] in args.configs]
    for config, layers, width in configs:
        used_width = capped_width(layers, width, args.max_params)
        shapes = model_shapes(layers, used_width)
        if args.python_only:
            shapes = [(1,)] * len(shapes)
        params, flat = build_model(shapes, dtype, args.device)
        nbytes = sum(numel(shape) for shape in shapes) * flat.element_size()
        candidates = methods(params, flat, load_baseline(args.baseline) if args.baseline else None)
        if cuda:
            candidates["monitor (graph)"] = graph_replay(candidates["monitor"])
        host_times = host_ms(candidates, args.device, args.warmup, args.repeats)
        for method, fn in candidates.items():
            host = host_times[method]
            device_ms = e2e = x_read = None
            ops: int | None = None
            if cuda:
                ops, device_ms, kernels = profile_device(fn)
                e2e = e2e_ms(fn, flush, args.repeats)
                x_read = None if peak is None else (device_ms / 1e3) / (nbytes / peak)
                if method == "monitor":
                    multi_tensor_apply = foreach_launches(kernels, len(shapes))
            rows.append(Row(
                config=config if used_width == width else f"{config}->w{used_width}",
                tensors=len(shapes), params=sum(numel(shape) for shape in shapes), bytes=nbytes,
                method=method, host_ms=host, device_ms=device_ms, e2e_ms=e2e, device_ops=ops,
                x_read_once_at_peak=x_read, capped=used_width != width,
            ))
        del params, flat, candidates
        if cuda:
            torch.cuda.empty_cache()
    meta = {
        "device": device_name, "dtype": args.dtype, "torch": torch.__version__, "max_params": args.max_params,
        "peak_bytes_per_s": peak, "warmup": args.warmup, "repeats": args.repeats,
        "l2_flush_bytes": L2_FLUSH_BYTES if flush is not None else 0, "threads": torch.get_num_threads(),
        "multi_tensor_apply": multi_tensor_apply,
    }
    return rows, meta


def cell(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[Row], meta: dict[str, object]) -> str:
    header = (
        f"{'config':<16}{'tensors':>8}{'params':>15}{'MB':>9}  {'method':<19}"
        f"{'host ms':>9}{'device ms':>10}{'e2e ms':>9}{'dev ops':>8}{'x read':>8}"
    )
    title = f"# {meta['device']}, {meta['dtype']}, torch {meta['torch']}, median of {meta['repeats']}"
    lines = [title, header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.config:<16}{row.tensors:>8}{row.params:>15,}{row.bytes / 1e6:>9.1f}  {row.method:<19}"
            f"{row.host_ms:>9.3f}{cell(row.device_ms, '.3f'):>10}{cell(row.e2e_ms, '.3f'):>9}"
            f"{cell(row.device_ops, 'd'):>8}{cell(row.x_read_once_at_peak, '.2f'):>8}"
        )
    if meta.get("multi_tensor_apply"):
        lines.append(f"multi_tensor_apply (measured on the largest set): {meta['multi_tensor_apply']}")
    return "\n".join(lines)


def plot(rows: list[Row], meta: dict[str, object], out: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed; no plot written to {out}", file=sys.stderr)
        return False
    figure, axis = plt.subplots(figsize=(8, 5))
    for method in dict.fromkeys(row.method for row in rows):
        points = [row for row in rows if row.method == method]
        times = [row.host_ms if row.device_ms is None else max(row.host_ms, row.device_ms) for row in points]
        axis.plot([row.tensors for row in points], times, marker="o", label=method)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("gradient tensors")
    axis.set_ylabel("ms per call (median; max of host and device)")
    axis.set_title(f"Gradient norm, {meta['dtype']} on {meta['device']}")
    axis.grid(visible=True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--configs", nargs="+", default=None, choices=[name for name, _, _ in CONFIGS],
                        help="parameter sets to run (default: all)")
    parser.add_argument("--max-params", type=int, default=None,
                        help="shrink model widths to at most this many parameters "
                             "(default: 2,000,000 on CPU, no cap on GPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: 1 on CPU, for numbers that survive a busy machine)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another version of gradient_health.py, timed as 'monitor (baseline)' on the same tensors")
    parser.add_argument("--python-only", action="store_true",
                        help="one-element gradients and a multi-tensor norm that returns cached results: "
                             "times the per-call Python work around the kernels")
    parser.add_argument("--no-flush", dest="flush", action="store_false", help="do not flush the L2 cache (CUDA)")
    parser.add_argument("--peak-tbps", type=float, default=None,
                        help="peak memory bandwidth in TB/s, overriding the detection")
    parser.add_argument("--out", type=Path, default=None,
                        help="PNG plot path (default: .bench/gradient_health_<device>_<dtype>.png, git-ignored)")
    parser.add_argument("--json", default=None,
                        help="write machine-readable results to this path ('-': stdout); folders are created")
    args = parser.parse_args(argv)
    on_cpu = not on_cuda(args.device)
    if args.max_params is None and on_cpu:
        args.max_params = 2_000_000
    if args.threads is None and on_cpu:
        args.threads = 1
    if args.out is None:
        args.out = Path(".bench") / f"gradient_health_{args.device.replace(':', '')}_{args.dtype}.png"
    return args


def stub_multi_tensor_norms() -> None:
    """Make the multi-tensor norms return cached zeros, so that only the Python around them is timed."""
    cache: dict[tuple[int, torch.device], list[Tensor]] = {}

    def cached(tensors: list[Tensor], *args: object, **kwargs: object) -> list[Tensor]:
        key = (len(tensors), tensors[0].device)
        if key not in cache:
            cache[key] = [torch.zeros((), device=tensors[0].device) for _ in tensors]
        return cache[key]

    for name in ("_foreach_norm", "_foreach_powsum"):
        setattr(torch, name, cached)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.python_only:
        stub_multi_tensor_norms()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows, meta = run(args)
    print(format_table(rows, meta))
    if plot(rows, meta, args.out):
        print(f"plot written to {args.out}")
    if args.json is not None:
        payload = json.dumps({"meta": meta, "rows": [asdict(row) for row in rows]}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(payload + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
