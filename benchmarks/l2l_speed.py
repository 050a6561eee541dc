"""Speed of the L2L LSTM optimizer, 1 thread pinned.

Reports meta-training throughput (optimizee steps per second, truncated BPTT with
meta-updates) on the quadratic family and apply-mode step time of the learned optimizer
inside a torch training loop against ``torch.optim.Adam`` on the same model.

    python benchmarks/l2l_speed.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

torch.set_num_threads(1)

from learnt.learned import L2LOptimizer  # noqa: E402
from learnt.meta import MetaTrainConfig, MetaTrainer  # noqa: E402
from learnt.optim import RuleOptimizer  # noqa: E402
from learnt.tasks import QuadraticFamily  # noqa: E402


def meta_train_throughput(repeats: int) -> dict:
    cfg = MetaTrainConfig(iterations=1, unroll_steps=100, truncation=20)
    trainer = MetaTrainer(L2LOptimizer(), QuadraticFamily(n_problems=128), cfg, progress=False)
    trainer.run_iteration(0)  # warm-up
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        trainer.run_iteration(i + 1)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"task": "quadratic 128x10 (1280 coords)", "seconds_per_run_of_100_steps": med,
            "optimizee_steps_per_second": 100 / med, "problem_steps_per_second": 100 * 128 / med}


def apply_step_time(n_params_target: int, repeats: int) -> dict:
    width = max(8, int((n_params_target / 2) ** 0.5))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width), nn.Sigmoid(), nn.Linear(width, width))
    n = sum(p.numel() for p in model.parameters())
    x = torch.randn(64, width)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    out = {"params": n}
    for name, opt in (("adam", torch.optim.Adam(model.parameters(), lr=1e-3)),
                      ("l2l-lstm", RuleOptimizer(model.parameters(), L2LOptimizer()))):
        for _ in range(3):
            opt.step()
        reps = max(5, repeats * 4)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t)
        out[f"{name}_step_ms"] = 1e3 * statistics.median(times)
    out["ratio_l2l_over_adam"] = out["l2l-lstm_step_ms"] / out["adam_step_ms"]
    del x
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    res = {"threads": torch.get_num_threads(), "torch": torch.__version__,
           "meta_training": meta_train_throughput(args.repeats),
           "apply_mode": [apply_step_time(n, args.repeats) for n in (10_000, 100_000)]}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
