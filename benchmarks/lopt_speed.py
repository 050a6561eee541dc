"""Whole training step (forward + backward + update) of the default learned optimizer vs
``torch.optim.Adam(foreach=True)``, 1 thread, side by side in one run.

MLPs of about 10k, 100k, 1M and 10M parameters on batch 128; each configuration times
``--steps`` consecutive steps, the two optimizers interleaved ``--repeats`` times, and the
medians are reported with their ratio. Also: optimizer-state bytes per parameter.

    python benchmarks/lopt_speed.py [--repeats 5] [--steps 20] [--out benchmarks/results/lopt_speed.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

torch.set_num_threads(1)

import learnt  # noqa: E402

SIZES = {"10k": (64, 72, 10), "100k": (200, 220, 10), "1M": (784, 700, 100), "10M": (2000, 2200, 400)}


def _mlp(d_in: int, width: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out))


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    total = 0
    for st in opt.state.values():
        total += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v))
    return total


def bench(size: str, steps: int, repeats: int) -> dict:
    d_in, width, d_out = SIZES[size]
    torch.manual_seed(0)
    x, y = torch.randn(128, d_in), torch.randint(0, d_out, (128,))
    out = {"size": size}
    models = {}
    for name in ("adam", "learnt-default"):
        torch.manual_seed(0)
        model = _mlp(d_in, width, d_out)
        opt = (torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True) if name == "adam"
               else learnt.RuleOptimizer(model.parameters(), total_steps=10_000))
        models[name] = (model, opt)
    n_params = sum(p.numel() for p in models["adam"][0].parameters())
    out["parameters"] = n_params
    times = {k: [] for k in models}

    def run(name: str) -> float:
        model, opt = models[name]
        t = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return (time.perf_counter() - t) / steps

    for name in models:      # warm-up (allocations, state creation)
        run(name)
    for _ in range(repeats):
        for name in models:
            times[name].append(run(name))
    for name in models:
        out[f"{name}_ms_per_step"] = round(1e3 * statistics.median(times[name]), 3)
        out[f"{name}_state_bytes_per_param"] = round(_state_bytes(models[name][1]) / n_params, 2)
    out["ratio_vs_adam"] = round(out["learnt-default_ms_per_step"] / out["adam_ms_per_step"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sizes", default="10k,100k,1M,10M")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lopt_speed.json"))
    args = ap.parse_args()
    rows = [bench(s, args.steps, args.repeats) for s in args.sizes.split(",")]
    doc = {"threads": torch.get_num_threads(), "torch": torch.__version__, "batch": 128,
           "rule": learnt.pretrained.info("default").get("trained_on", "")[:80], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
