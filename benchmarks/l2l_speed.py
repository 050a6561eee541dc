"""Speed and memory of the L2L LSTM optimizer, 1 thread pinned.

Reports, in one JSON document:

* meta-training throughput (truncated BPTT with meta-updates): optimizee steps per second
  on the quadratic family and on the ``l2l-mlp`` optimizee at K = 1 and K = 8 tasks
  stepped together;
* the LSTM's achieved matmul GFLOP/s in meta-training (forward + backward) and in apply
  mode, next to what ``torch.mm`` alone reaches on the same gate shapes in the same run;
* whole training-step time (forward + backward + update) with the learned optimizer vs
  ``torch.optim.Adam`` on MLPs of about 10k, 100k and 1M parameters;
* resident memory after each of 10 truncations of meta-training (must be flat).

    python benchmarks/l2l_speed.py [--repeats 5] [--out benchmarks/results/l2l_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

import torch
from torch import nn

torch.set_num_threads(1)

from learnt.learned import L2LOptimizer  # noqa: E402
from learnt.meta import MetaTrainConfig, MetaTrainer  # noqa: E402
from learnt.optim import RuleOptimizer  # noqa: E402
from learnt.seeding import make_generator  # noqa: E402
from learnt.tasks import QuadraticFamily  # noqa: E402
from learnt.tasks.mlp import MLPFamily  # noqa: E402


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def meta_train_throughput(family, label: str, repeats: int) -> dict:
    trainer = MetaTrainer(L2LOptimizer(), family, MetaTrainConfig(iterations=1, unroll_steps=100, truncation=20),
                          progress=False)
    it = iter(range(10_000))
    sec = _median_time(lambda: trainer.run_iteration(next(it)), repeats, warmup=1)
    k = family.n_problems
    return {"task": label, "K": k, "seconds_per_100_step_run": round(sec, 4),
            "optimizee_steps_per_second": round(100 / sec, 1),
            "task_steps_per_second": round(100 * k / sec, 1)}


def _lstm_flops(rule: L2LOptimizer, n: int) -> int:
    H, L = rule.hidden_size, rule.num_layers
    f = 0
    for layer in range(L):
        fan_in = 2 if layer == 0 else H
        f += 2 * n * 4 * H * (fan_in + H)
    return f + 2 * n * H


def _mm_reference(rule: L2LOptimizer, n: int, backward: bool) -> float:
    """Time of the LSTM's matmuls alone (torch.mm on the same shapes)."""
    H, L = rule.hidden_size, rule.num_layers
    shapes = [(4 * H, 2 if layer == 0 else H) for layer in range(L)] + [(4 * H, H)] * L
    mats = [(torch.randn(a, b), torch.randn(b, n)) for a, b in shapes] + [(torch.randn(1, H), torch.randn(H, n))]
    grads = [torch.randn(w.shape[0], n) for w, _ in mats]

    def run():
        for (w, x), g in zip(mats, grads):
            torch.mm(w, x)
            if backward:
                torch.mm(g, x.t())   # dW
                torch.mm(w.t(), g)   # dx
    return _median_time(run, 7)


def lstm_gflops(n: int, mode: str) -> dict:
    rule = L2LOptimizer()
    g = make_generator(0, "test", 0)
    grads = {"w": torch.randn(n, generator=g) * 1e-3}
    params = {"w": torch.zeros(n)}
    flops = _lstm_flops(rule, n)
    if mode == "apply":
        state = rule.init(params)
        sec = _median_time(lambda: rule.update_(grads, state, params), 7)
        ref = _mm_reference(rule, n, backward=False)
    else:
        flops *= 3  # forward + two backward matmuls per forward matmul
        state = rule.init(params)
        weight = torch.randn(n)

        def step():
            rule.zero_grad(set_to_none=True)
            u, _ = rule.update(grads, state, params)
            (u["w"] * weight).sum().backward()
        sec = _median_time(step, 7)
        ref = _mm_reference(rule, n, backward=True)
    return {"mode": mode, "coordinates": n, "lstm_gflops": round(flops / sec / 1e9, 2),
            "torch_mm_gflops_same_shapes": round(flops / ref / 1e9, 2),
            "fraction_of_mm": round(ref / sec, 3), "ms_per_step": round(sec * 1e3, 3)}


def training_step(n_params: int, repeats: int) -> dict:
    d = {10_000: 100, 100_000: 310, 1_000_000: 995}[n_params]
    torch.manual_seed(0)
    x, y = torch.randn(128, d), torch.randint(0, 10, (128,))
    out = {}
    for name in ("adam", "l2l-lstm"):
        model = nn.Sequential(nn.Linear(d, d), nn.Sigmoid(), nn.Linear(d, 10))
        opt = (torch.optim.Adam(model.parameters(), lr=1e-3) if name == "adam"
               else RuleOptimizer(model.parameters(), L2LOptimizer()))

        def step():
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        out[f"{name}_ms"] = round(_median_time(step, repeats) * 1e3, 3)
        out["params"] = sum(p.numel() for p in model.parameters())
    out["ratio"] = round(out["l2l-lstm_ms"] / out["adam_ms"], 2)
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def memory_over_truncations(n: int = 10) -> dict:
    fam = MLPFamily(n_problems=1)
    trainer = MetaTrainer(L2LOptimizer(), fam, MetaTrainConfig(iterations=1, unroll_steps=20 * n, truncation=20),
                          progress=False)
    g = make_generator(0, "train", 0)
    task = fam.sample(g)
    params = task.init_params(g)
    state = trainer.rule.init(params)
    batches = task.batches("train", g)
    rss = []
    for _ in range(n):
        trainer.meta_opt.zero_grad()
        params, state, _, _ = trainer.estimator.estimate(trainer.rule, task, params, state, batches, 20)
        trainer.meta_opt.step()
        rss.append(round(_rss_mb(), 1))
    return {"rss_mb_after_each_truncation": rss, "growth_mb_from_2nd_to_last": round(rss[-1] - rss[1], 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    res = {
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "meta_training": [
            meta_train_throughput(QuadraticFamily(n_problems=128), "quadratic 10-d, 128 functions", args.repeats),
            meta_train_throughput(MLPFamily(n_problems=1), "l2l-mlp 64-20-10 sigmoid", args.repeats),
            meta_train_throughput(MLPFamily(n_problems=8), "l2l-mlp 64-20-10 sigmoid", args.repeats),
        ],
        "lstm_gflops": [lstm_gflops(10_600, "meta-training"), lstm_gflops(100_000, "meta-training"),
                        lstm_gflops(100_000, "apply"), lstm_gflops(1_000_000, "apply")],
        "training_step": [training_step(n, args.repeats) for n in (10_000, 100_000, 1_000_000)],
        "memory": memory_over_truncations(),
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
