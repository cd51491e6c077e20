"""A deterministic downstream-like corpus: a training code base where a minority of files use
private torch names.

    python benchmarks/make_corpus.py OUT_DIR [--files 3000] [--private-share 0.13] [--seed 0]

Each module is 100-400 lines of realistic code: imports of torch, torch.nn and numpy, classes with
`self._x` attributes and underscore helpers (never reportable), functions, docstrings, comments.
About 13% of the files also reference private torch names in the forms users write them: attribute
chains, module and submodule aliases, from-imports, private-module imports, decorators, private ops,
getattr strings, assignment aliases; some of those are documented. The same seed gives the same
bytes, so runs on different machines lint the same corpus.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

IMPORTS = [
    "import os",
    "import math",
    "import json",
    "import logging",
    "from dataclasses import dataclass, field",
    "from typing import Any, Optional",
    "import numpy as np",
    "import torch",
    "import torch.nn as nn",
    "import torch.nn.functional as F",
    "from torch.utils.data import DataLoader, Dataset",
]
PRIVATE_USES = [
    ("import torch", "{i}norms = torch._foreach_norm(grads)"),
    ("import torch as th", "{i}th._assert(x.dim() == 2, 'expected a matrix')"),
    ("import torch.nn.functional as F", "{i}mask = F._canonical_mask(mask, 'mask', None, 'other', x.dtype)"),
    ("from torch import _foreach_norm as fused_norm", "{i}norms = fused_norm(grads)"),
    ("from torch._dynamo import disable", "{i}fn = disable(fn)"),
    ("import torch._dynamo", "{i}torch._dynamo.config.suppress_errors = True"),
    ("import torch", "{i}aten = torch.ops.aten\n{i}y = aten._to_copy.default(x)"),
    ("import torch", "{i}bad_fork = getattr(torch.cuda, '_is_in_bad_fork', None)"),
    ("import torch", "{i}t = torch.Tensor._make_subclass(cls, data, False)"),
    ("import torch", "{i}x = torch._C._get_tracing_state()"),
    (
        "import torch",
        "{i}# NOTE: Private API, stable since PyTorch 1.11.\n"
        "{i}# If this breaks in future PyTorch, fallback is:\n"
        "{i}#   norms = [g.norm() for g in grads]\n"
        "{i}norms = torch._foreach_norm(grads)",
    ),
    ("import torch", "{i}y = torch._utils._rebuild_tensor_v2  # Private API, since PyTorch 1.0; fallback: None"),
]
WORDS = [
    "loss", "scale", "grad", "step", "batch", "epoch", "model", "layer", "weight", "bias", "hidden", "output",
    "input", "state", "buffer", "optimizer", "scheduler", "metric", "logits", "target", "mask", "feature",
    "token", "embed", "head", "block", "norm", "cache",
]


def _name(rng: random.Random, parts: int = 2) -> str:
    return "_".join(rng.choice(WORDS) for _ in range(parts))


def _class(rng: random.Random) -> list[str]:
    name = "".join(w.capitalize() for w in (rng.choice(WORDS), rng.choice(WORDS)))
    attrs = [_name(rng) for _ in range(rng.randint(2, 5))]
    lines = [f"class {name}(nn.Module):", f'    """{name}: {" ".join(rng.sample(WORDS, 6))}."""', ""]
    lines.append("    def __init__(self, dim: int = 64) -> None:")
    lines.append("        super().__init__()")
    for attr in attrs:
        lines.append(f"        self._{attr} = nn.Linear(dim, dim)")
    lines.append("        self._cache: dict[str, Any] = {}")
    lines.append("")
    lines.append("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
    for attr in attrs:
        lines.append(f"        x = F.relu(self._{attr}(x))  # layer {attr}")
    lines.append("        return x")
    for _ in range(rng.randint(1, 4)):
        helper = _name(rng)
        lines += ["", f"    def _{helper}(self, value: float) -> float:", f'        """Private helper {helper}."""']
        lines += [f"        value = value * {rng.random():.3f} + math.sqrt(abs(value))" for _ in range(rng.randint(2, 6))]
        lines.append("        return value")
    return [*lines, "", ""]


def _function(rng: random.Random, private_use: str | None = None) -> list[str]:
    name = _name(rng)
    lines = [f"def {name}(x, grads, mask=None, fn=None, cls=None, data=None):", f'    """Compute {name.replace("_", " ")}."""']
    body = [f"    {_name(rng, 1)} = np.asarray([{rng.randint(0, 9)}, {rng.randint(0, 9)}]).mean()" for _ in range(rng.randint(2, 5))]
    body += [f"    x = x * {rng.random():.4f} + torch.ones_like(x)" for _ in range(rng.randint(1, 4))]
    if private_use is not None:
        body.insert(rng.randint(0, len(body)), private_use.format(i="    "))
    if rng.random() < 0.3:
        body += ["    for step in range(10):", "        if step % 2 == 0:", "            x = x.clamp(min=0)"]
        body += ["        else:", "            x = x - 1"]
    return lines + body + ["    return x", "", ""]


def make_module(rng: random.Random, private: bool) -> str:
    header = [f'"""{" ".join(rng.sample(WORDS, 8)).capitalize()}.', "", "Generated for the esper-lint benchmark.", '"""', ""]
    always = {"import torch", "import torch.nn as nn", "import torch.nn.functional as F", "import math", "import numpy as np"}
    always.add("from typing import Any")
    imports = sorted(set(rng.sample(IMPORTS, rng.randint(4, len(IMPORTS)))) | always)
    uses = rng.sample(PRIVATE_USES, rng.randint(1, 3)) if private else []
    for needed, _ in uses:
        if needed not in imports:
            imports.append(needed)
    body: list[str] = ["", "", "logger = logging.getLogger(__name__)" if "import logging" in imports else "LOG = None", "", ""]
    target = rng.randint(100, 400)
    pending = [use for _, use in uses]
    while len(header) + len(imports) + len(body) < target:
        if rng.random() < 0.35:
            body += _class(rng)
        else:
            body += _function(rng, pending.pop() if pending and rng.random() < 0.5 else None)
    for use in pending:
        body += _function(rng, use)
    return "\n".join(header + imports + body).rstrip() + "\n"


def generate(out: Path, files: int = 3000, private_share: float = 0.13, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    private_indices = set(rng.sample(range(files), round(files * private_share)))
    written = []
    for index in range(files):
        package = out / f"pkg_{index // 100:02d}"
        package.mkdir(parents=True, exist_ok=True)
        path = package / f"module_{index:04d}.py"
        path.write_text(make_module(random.Random(f"{seed}-{index}"), index in private_indices), encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--private-share", type=float, default=0.13)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    written = generate(args.out, args.files, args.private_share, args.seed)
    print(f"wrote {len(written)} files to {args.out}")


if __name__ == "__main__":
    main()
