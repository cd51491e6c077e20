#!/usr/bin/env python
"""Benchmark gradient-norm strategies on transformer-like parameter sets (a script, not a test).

Compares, for one dtype on one device:
- ``fused``: ``GradientHealthMonitor()`` (grouped ``_foreach_norm`` with fp32 accumulation);
- ``per-tensor``: ``GradientHealthMonitor(foreach=False)`` (the documented fallback);
- ``original``: the seed project's algorithm (ungrouped ``_foreach_norm`` in the gradient's dtype,
  every per-tensor norm moved to one device, ``stack(norms).pow(2).sum()``);
- ``get_total_norm``: ``torch.nn.utils.get_total_norm`` where this torch has it;
- ``one read``: ``flat.sum(dtype=float32)`` over one buffer holding all gradients, a measured floor.

Reports milliseconds per call (median), device operations per call on CUDA (kernels, memsets and
copies counted with torch.profiler), and on a GPU the achieved bytes per second against the card's
peak memory bandwidth and the time relative to reading the gradients once at that peak.

    python benchmarks/bench_gradient_health.py --device cpu --max-params 2000000
    python benchmarks/bench_gradient_health.py --device cuda --dtype bfloat16 --json results.json
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

# Peak HBM bandwidth in bytes per second, matched against torch.cuda.get_device_name().
PEAK_BANDWIDTH = [("H200", 4.8e12), ("H100 NVL", 3.9e12), ("H100 PCIe", 2.0e12), ("H100", 3.35e12)]
# (name, layers, model width): 12 tensors per layer + a final norm; about 12 * width**2 per layer.
CONFIGS = [("16x256", 16, 256), ("40x512", 40, 512), ("80x1024", 80, 1024), ("160x720", 160, 720)]
ALIGNMENT = 64  # elements; keeps every gradient view 128-byte aligned like separate allocations


@dataclass
class Row:
    config: str
    tensors: int
    params: int
    bytes: int
    method: str
    ms: float
    device_ops: int | None
    gb_per_s: float
    fraction_of_peak: float | None
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


def methods(params: nn.ParameterList, flat: Tensor) -> dict[str, Callable[[], object]]:
    grads = [param.grad for param in params]
    fused, per_tensor = GradientHealthMonitor(), GradientHealthMonitor(foreach=False)
    fused.register(params, nn.Module())
    per_tensor.register(params, nn.Module())
    candidates: dict[str, Callable[[], object]] = {
        "fused": fused.compute_gradient_health_async,
        "per-tensor": per_tensor.compute_gradient_health_async,
        "original": lambda: original_algorithm(grads),
    }
    if hasattr(torch.nn.utils, "get_total_norm"):
        candidates["get_total_norm"] = lambda: torch.nn.utils.get_total_norm(grads)
    candidates["one read"] = lambda: flat.sum(dtype=torch.float32)
    return candidates


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(fn: Callable[[], object], device: str, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(samples)


def device_operations(fn: Callable[[], object], device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for event in prof.events() if event.device_type == DeviceType.CUDA)


def peak_bandwidth(device: str, override_tbps: float | None) -> tuple[str, float | None]:
    if not device.startswith("cuda"):
        return f"cpu, {torch.get_num_threads()} thread(s)", None
    name = torch.cuda.get_device_name(torch.device(device))
    if override_tbps is not None:
        return name, override_tbps * 1e12
    for marker, peak in PEAK_BANDWIDTH:
        if marker in name:
            return name, peak
    return name, None


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, object]]:
    dtype = getattr(torch, args.dtype)
    device_name, peak = peak_bandwidth(args.device, args.peak_tbps)
    rows: list[Row] = []
    for config, layers, width in CONFIGS:
        used_width = capped_width(layers, width, args.max_params)
        shapes = model_shapes(layers, used_width)
        params, flat = build_model(shapes, dtype, args.device)
        nbytes = sum(numel(shape) for shape in shapes) * flat.element_size()
        for method, fn in methods(params, flat).items():
            ms = median_ms(fn, args.device, args.warmup, args.repeats)
            gb_per_s = nbytes / (ms / 1e3) / 1e9
            rows.append(Row(
                config=config if used_width == width else f"{config}->w{used_width}",
                tensors=len(shapes),
                params=sum(numel(shape) for shape in shapes),
                bytes=nbytes,
                method=method,
                ms=ms,
                device_ops=device_operations(fn, args.device),
                gb_per_s=gb_per_s,
                fraction_of_peak=None if peak is None else gb_per_s * 1e9 / peak,
                x_read_once_at_peak=None if peak is None else (ms / 1e3) / (nbytes / peak),
                capped=used_width != width,
            ))
        del params, flat
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    meta = {
        "device": device_name, "dtype": args.dtype, "torch": torch.__version__, "max_params": args.max_params,
        "peak_bytes_per_s": peak, "warmup": args.warmup, "repeats": args.repeats,
    }
    return rows, meta


def format_table(rows: list[Row], meta: dict[str, object]) -> str:
    header = (
        f"{'config':<16}{'tensors':>8}{'params':>14}{'MB':>9}  {'method':<15}"
        f"{'ms':>10}{'dev ops':>9}{'GB/s':>9}{'%peak':>7}{'x read':>8}"
    )
    title = f"# {meta['device']}, {meta['dtype']}, torch {meta['torch']}, median of {meta['repeats']}"
    lines = [title, header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.config:<16}{row.tensors:>8}{row.params:>14,}{row.bytes / 1e6:>9.1f}  {row.method:<15}{row.ms:>10.3f}"
            f"{'-' if row.device_ops is None else row.device_ops:>9}{row.gb_per_s:>9.1f}"
            f"{'-' if row.fraction_of_peak is None else f'{100 * row.fraction_of_peak:.0f}%':>7}"
            f"{'-' if row.x_read_once_at_peak is None else f'{row.x_read_once_at_peak:.2f}':>8}"
        )
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
        axis.plot([row.tensors for row in points], [row.ms for row in points], marker="o", label=method)
    for row in rows:
        if row.method == "fused":
            axis.annotate(f"{row.params / 1e6:.1f}M", (row.tensors, row.ms), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("gradient tensors (labels: parameters)")
    axis.set_ylabel("ms per call (median)")
    axis.set_title(f"Gradient norm, {meta['dtype']} on {meta['device']}")
    axis.grid(visible=True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--max-params", type=int, default=None,
                        help="shrink model widths to at most this many parameters "
                             "(default: 2,000,000 on CPU, no cap on GPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: 1 on CPU, for numbers that survive a busy machine)")
    parser.add_argument("--peak-tbps", type=float, default=None,
                        help="peak memory bandwidth in TB/s, overriding the detection")
    parser.add_argument("--out", type=Path, default=None,
                        help="PNG plot path (default: .bench/gradient_health_<device>_<dtype>.png, git-ignored)")
    parser.add_argument("--json", default=None, help="write machine-readable results to this path ('-': stdout)")
    args = parser.parse_args(argv)
    on_cpu = not args.device.startswith("cuda")
    if args.max_params is None and on_cpu:
        args.max_params = 2_000_000
    if args.threads is None and on_cpu:
        args.threads = 1
    if args.out is None:
        args.out = Path(".bench") / f"gradient_health_{args.device.replace(':', '')}_{args.dtype}.png"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
            Path(args.json).write_text(payload + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
