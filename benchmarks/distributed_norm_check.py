#!/usr/bin/env python
"""Check the reference monitor's norms on DTensor and sharded gradients across real processes.

Starts ``--nprocs`` ranks (one subprocess each, rendezvous through a file, every wait bounded by
``--timeout``) that build the same full gradients from one seed and then check, against the float64
norm of those full gradients:

- ``dtensor``: DTensor gradients (``Shard(0)``, ``Shard(1)``, ``Replicate()``; fp32 and bf16) on a
  1-D device mesh: ``compute_gradient_health()`` for every ``foreach``, and ``total_norm`` for the
  inf-norm and p=3 (FSDP2 / tensor parallel);
- ``shards``: plain local shards (FSDP1 / ZeRO style) with ``process_group``; the rank-local norm
  without it is recorded to show what goes wrong then;
- ``inf``: the inf-norm of the shards through ``total_norm(..., process_group=...)`` (max all-reduce);
- ``duplicates``: a parameter every rank holds in full (a tensor-parallel duplicate), counted on
  rank 0 only through ``register(..., include=...)``;
- ``fsdp2``: a small model wrapped with ``fully_shard`` (FSDP2 itself, not hand-made DTensors),
  trained one step on the same batch on every rank, against an unsharded copy's gradients.

    python benchmarks/distributed_norm_check.py --backend gloo --device cpu --nprocs 2 --json .bench/dist_cpu.json
    python benchmarks/distributed_norm_check.py --backend nccl --device cuda --json .bench/dist_nccl.json

Exit status: 0 when every rank passed every check, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

REPO_ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-5  # every gradient here accumulates in fp32; see tests/test_reference_monitor.py
FULL_SHAPES = [(8, 6), (6,), (4, 10)]


def full_gradients() -> list[Tensor]:
    generator = torch.Generator().manual_seed(1234)
    grads = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in FULL_SHAPES]
    return [grads[0].float(), grads[1].bfloat16(), grads[2].float()]


def float64_norm(tensors: list[Tensor]) -> float:
    return math.sqrt(math.fsum(float(t.double().pow(2).sum()) for t in tensors))


def close(measured: float, expected: float) -> bool:
    return math.isfinite(measured) and abs(measured - expected) <= RTOL * abs(expected)


def run_rank(
    rank: int, world: int, backend: str, device_type: str, store_path: str, timeout_s: float
) -> dict[str, Any]:
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Placement, Replicate, Shard, distribute_tensor

    sys.path.insert(0, str(REPO_ROOT))
    from esper_lint.reference import GradientHealthMonitor
    from esper_lint.reference.gradient_health import total_norm

    if device_type == "cuda":
        torch.cuda.set_device(rank % torch.cuda.device_count())
    device = torch.device(device_type, torch.cuda.current_device()) if device_type == "cuda" else torch.device("cpu")
    dist.init_process_group(
        backend, init_method=f"file://{store_path}", rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s)
    )
    try:
        fulls = [grad.to(device) for grad in full_gradients()]
        expected = float64_norm(fulls)
        checks: dict[str, dict[str, object]] = {}

        def record(name: str, measured: float, want: float) -> None:
            checks[name] = {"measured": measured, "expected": want, "ok": close(measured, want)}

        # DTensor gradients on a 1-D mesh (FSDP2 shards dim 0; tensor parallel shards either dim).
        mesh = init_device_mesh(device_type, (world,))
        placements: list[list[Placement]] = [[Shard(0)], [Replicate()], [Shard(1)]]
        dtensor_params = nn.ParameterList()
        for full, placement in zip(fulls, placements, strict=True):
            param = nn.Parameter(distribute_tensor(torch.zeros_like(full), mesh, placement))
            param.grad = distribute_tensor(full, mesh, placement)
            dtensor_params.append(param)
        for foreach in (None, True, False):
            monitor = GradientHealthMonitor(foreach=foreach)
            monitor.register(dtensor_params, nn.Module())
            record(f"dtensor foreach={foreach}", monitor.compute_gradient_health()["host_grad_norm"], expected)
        expected_inf = max(float(full.double().abs().max()) for full in fulls)
        dtensor_grads = [param.grad for param in dtensor_params if param.grad is not None]
        record("dtensor inf", float(total_norm(dtensor_grads, math.inf)), expected_inf)
        record("dtensor p=3", float(total_norm(dtensor_grads, 3.0)),
               math.fsum(float(full.double().abs().pow(3).sum()) for full in fulls) ** (1 / 3))

        # Plain local shards (FSDP1 / ZeRO): each rank holds one chunk of every flattened gradient.
        shard_params = nn.ParameterList()
        for full in fulls:
            chunk = full.flatten().tensor_split(world)[rank].clone()
            param = nn.Parameter(torch.zeros_like(chunk))
            param.grad = chunk
            shard_params.append(param)
        sharded = GradientHealthMonitor(process_group=dist.group.WORLD)
        sharded.register(shard_params, nn.Module())
        record("shards process_group", sharded.compute_gradient_health()["host_grad_norm"], expected)
        local = GradientHealthMonitor()
        local.register(shard_params, nn.Module())
        local_norm = local.compute_gradient_health()["host_grad_norm"]
        checks["shards without process_group (rank-local)"] = {"measured": local_norm, "expected": expected,
                                                             "ok": world == 1 or not close(local_norm, expected)}
        grads = [param.grad for param in shard_params if param.grad is not None]
        record("inf shards process_group", float(total_norm(grads, math.inf, process_group=dist.group.WORLD)),
               expected_inf)

        # A tensor-parallel duplicate: every rank holds it in full, only rank 0 counts it.
        duplicated = nn.ParameterList(list(shard_params))
        duplicate = nn.Parameter(torch.zeros(5, device=device))
        duplicate.grad = torch.full((5,), 3.0, device=device)
        duplicated.append(duplicate)
        filtered = GradientHealthMonitor(process_group=dist.group.WORLD)
        filtered.register(duplicated, nn.Module(), include=lambda name, param: rank == 0 or param is not duplicate)
        record("duplicates counted once", filtered.compute_gradient_health()["host_grad_norm"],
               math.sqrt(expected**2 + 45.0))
        # FSDP2 itself: fully_shard gives DTensor parameters and gradients (reduce-scattered and
        # averaged over the ranks; with the same batch everywhere, equal to the unsharded ones).
        from torch.distributed.fsdp import fully_shard

        torch.manual_seed(7)
        unsharded = nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 3)).to(device)
        sharded_model = nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 3)).to(device)
        sharded_model.load_state_dict(unsharded.state_dict())
        for layer in sharded_model:
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(sharded_model, mesh=mesh)
        batch = torch.randn(6, 12, generator=torch.Generator().manual_seed(8)).to(device)
        sharded_model(batch).square().sum().backward()
        unsharded(batch).square().sum().backward()
        fsdp2 = GradientHealthMonitor()
        fsdp2.register(sharded_model, nn.Module())
        record("fsdp2 fully_shard", fsdp2.compute_gradient_health()["host_grad_norm"],
               float64_norm([param.grad for param in unsharded.parameters() if param.grad is not None]))

        # Every rank done with its collectives before any tears its group down: gloo aborts a rank
        # whose peer destroys the group under it ("terminate called without an active exception").
        dist.barrier()
        return {"rank": rank, "world": world, "backend": backend, "device": str(device),
                "ok": all(check["ok"] for check in checks.values()), "checks": checks}
    finally:
        dist.destroy_process_group()


def launch(args: argparse.Namespace) -> dict[str, Any]:
    if args.device == "cuda" and not torch.cuda.is_available():
        return {"ok": False, "skipped": f"no CUDA device (torch {torch.__version__})", "ranks": []}
    nprocs = args.nprocs or (torch.cuda.device_count() if args.device == "cuda" else 2)
    with tempfile.TemporaryDirectory(prefix="esper-dist-") as scratch:
        store = os.path.join(scratch, "store")
        outputs = [os.path.join(scratch, f"rank{rank}.json") for rank in range(nprocs)]
        processes = [
            subprocess.Popen([sys.executable, __file__, "--rank", str(rank), "--nprocs", str(nprocs),
                              "--backend", args.backend, "--device", args.device, "--store", store,
                              "--rank-json", outputs[rank], "--timeout", str(args.timeout)])
            for rank in range(nprocs)
        ]
        deadline = time.monotonic() + args.timeout
        codes: list[int | None] = []
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        ranks = [json.loads(Path(out).read_text()) if os.path.exists(out) else {"ok": False} for out in outputs]
    timed_out = any(code is None for code in codes)
    return {"ok": not timed_out and all(code == 0 for code in codes) and all(r["ok"] for r in ranks),
            "timed_out": timed_out, "exit_codes": codes, "nprocs": nprocs, "torch": torch.__version__,
            "ranks": ranks}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--nprocs", type=int, default=None, help="ranks (default: 2 on CPU, one per GPU on CUDA)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole check")
    parser.add_argument("--json", default=None, help="write the result here (folders are created)")
    parser.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rank-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rank is not None:  # one rank, started by launch()
        result = run_rank(args.rank, args.nprocs, args.backend, args.device, args.store, args.timeout)
        Path(args.rank_json).write_text(json.dumps(result), encoding="utf-8")
        return 0 if result["ok"] else 1
    summary = launch(args)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
