"""Per-suggestion wall time of LearnedSampler vs Optuna's samplers, 1 thread pinned.

Each method runs ``--seeds`` studies of ``--trials`` trials on a perturbed Hartmann6
(6 float parameters); the time a sampler spends per trial (search-space inference,
relative and independent sampling, before/after-trial hooks) is recorded, and the
per-suggestion time "at n trials" is the mean over trials n-9..n.

    python benchmarks/blackbox_speed.py [--trials 100] [--seeds 3] [--out benchmarks/results/blackbox_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="learned-oi,random,tpe,cmaes,gp")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/blackbox_speed.json"))
    args = ap.parse_args()
    from learnt.blackbox import BenchmarkFamily, pretrained_proposers, load_pretrained, LSTMProposer
    from learnt.experiments.blackbox import cube_objective, run_study

    models = {"oi": load_pretrained("oi") if "oi" in pretrained_proposers() else LSTMProposer()}
    fns = BenchmarkFamily("hartmann6", n_functions=args.seeds).sample(torch.Generator().manual_seed(0))
    out = {"trials": args.trials, "seeds": args.seeds, "function": "hartmann6 (perturbed)", "threads": 1,
           "torch": torch.__version__, "python": platform.python_version(), "methods": {}}
    for method in args.methods.split(","):
        per_seed = []
        for s in range(args.seeds):
            _, secs = run_study(method, cube_objective(fns, s, 6), args.trials, s, models)
            per_seed.append(secs)
        at = {}
        for n in (10, 20, 50, 100):
            if n <= args.trials:
                vals = [1e3 * statistics.fmean(sec[n - 10:n]) for sec in per_seed]
                at[str(n)] = {"mean_ms": statistics.fmean(vals), "min_ms": min(vals), "max_ms": max(vals)}
        out["methods"][method] = {"suggest_ms_at": at,
                                  "total_s": statistics.fmean(float(sec.sum()) for sec in per_seed)}
        print(f"{method:12s} " + "  ".join(f"@{k}: {v['mean_ms']:8.3f} ms" for k, v in at.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
