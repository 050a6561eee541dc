"""Scale-out meta-training: throughput on 1 and 2 processes, BPTT vs PES memory, 1 thread per process.

Reports, in one JSON document:

* meta-training throughput of the ``l2l-quadratic`` setup (L2L LSTM, 10-d quadratics,
  K = 128 problems per task, 100-step runs in 20-step truncations, BPTT) as optimizee
  steps per second, for one process, one process stepping 2 task shards, and 2 processes
  under ``torchrun`` (gloo, one shard each, so twice the tasks per meta-step);
* peak resident memory of one meta-gradient estimate over a truncation of 20, 100 and
  1000 steps with truncated BPTT and with PES (8 antithetic pairs), each case in a fresh
  subprocess (``ru_maxrss`` minus the RSS just before the estimate).

    python benchmarks/metatrain_scale.py [--iterations 6] [--out benchmarks/results/metatrain_scale.json]

The machine's load average is recorded beside the numbers: on a shared machine the
2-process speed-up is bounded by the free cores, not by the all-reduce.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from learnt.learned import L2LOptimizer  # noqa: E402
from learnt.meta import MetaTrainConfig, MetaTrainer, make_estimator  # noqa: E402
from learnt.seeding import make_generator  # noqa: E402
from learnt.tasks import QuadraticFamily  # noqa: E402

K, UNROLL, TRUNC = 128, 100, 20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker_throughput(iterations: int, shards: int) -> dict:
    """Run ``iterations`` meta-iterations (after one warm-up) in this process / rank."""
    torch.manual_seed(0)
    cfg = MetaTrainConfig(iterations=iterations + 1, unroll_steps=UNROLL, truncation=TRUNC, task_shards=shards)
    trainer = MetaTrainer(L2LOptimizer(), QuadraticFamily(n_problems=K), cfg, progress=False)
    trainer.run_iteration(0)
    t = time.perf_counter()
    for it in range(1, iterations + 1):
        trainer.run_iteration(it)
    sec = time.perf_counter() - t
    total = trainer.task_shards
    steps = iterations * UNROLL * total
    return {"processes": trainer.dist.world_size, "task_shards": total, "K": K, "iterations": iterations,
            "seconds": round(sec, 3), "runs_per_second": round(iterations * total / sec, 3),
            "optimizee_steps_per_second": round(steps / sec, 1),
            "problem_steps_per_second": round(steps * K / sec, 1),
            "phi_checksum": float(sum(p.detach().double().sum() for p in trainer.rule.parameters()))}


def worker_memory(estimator: str, steps: int, n_problems: int, n_pairs: int) -> dict:
    """Peak RSS of one truncation of ``steps`` steps with ``estimator`` (fresh process)."""
    torch.manual_seed(0)
    rule = L2LOptimizer()
    cfg = MetaTrainConfig(estimator=estimator, n_pairs=n_pairs, unroll_steps=steps, truncation=steps)
    est = make_estimator(cfg)
    g = make_generator(0, "train", 0)
    task = QuadraticFamily(n_problems=n_problems).sample(g)
    params = task.init_params(g)
    state = rule.init(params, task.n_problems)
    if hasattr(est, "start_run"):
        params, state = est.start_run(rule, task, params, state, g)
    before = _rss_mb()
    t = time.perf_counter()
    est.estimate(rule, task, params, state, task.batches("train", g), steps)
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"estimator": estimator, "steps": steps, "K": n_problems,
            "n_pairs": n_pairs if estimator != "bptt" else None, "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "peak_minus_before_mb": round(peak - before, 1), "seconds": round(sec, 2)}


def _run_json(cmd: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})})
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--memory-K", type=int, default=16)
    ap.add_argument("--n-pairs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--worker", choices=["throughput", "memory"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--shards", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--estimator", default="bptt", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "throughput":
        res = worker_throughput(args.iterations, args.shards)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(res), flush=True)
        return
    if args.worker == "memory":
        print(json.dumps(worker_memory(args.estimator, args.steps, args.memory_K, args.n_pairs)), flush=True)
        return

    me = [sys.executable, os.path.abspath(__file__)]
    one_thread = {"OMP_NUM_THREADS": "1"}
    base = ["--iterations", str(args.iterations)]
    load = {"loadavg_before": os.getloadavg()[0]}
    throughput = [
        _run_json(me + ["--worker", "throughput", "--shards", "1"] + base, one_thread),
        _run_json(me + ["--worker", "throughput", "--shards", "2"] + base, one_thread),
        _run_json([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   os.path.abspath(__file__), "--worker", "throughput"] + base, one_thread),
    ]
    memory = [_run_json(me + ["--worker", "memory", "--estimator", est, "--steps", str(T),
                              "--memory-K", str(args.memory_K), "--n-pairs", str(args.n_pairs)], one_thread)
              for est in ("bptt", "pes") for T in (20, 100, 1000)]
    load["loadavg_after"] = os.getloadavg()[0]
    res = {"threads_per_process": 1, "torch": torch.__version__, "cpus": os.cpu_count(), **load,
           "throughput": throughput,
           "speedup_2_processes_vs_1": round(throughput[2]["optimizee_steps_per_second"]
                                              / throughput[0]["optimizee_steps_per_second"], 2),
           "memory": memory}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
