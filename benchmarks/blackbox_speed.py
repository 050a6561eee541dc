"""Per-suggestion wall time of LearnedSampler vs Optuna's samplers, 1 thread pinned.

Each method runs ``--seeds`` studies of ``--trials`` trials on a perturbed Hartmann6
(6 float parameters); the time a sampler spends per trial (search-space inference,
relative and independent sampling, before/after-trial hooks) is recorded, and the
per-suggestion time "at n trials" is the mean over trials n-9..n.

    python benchmarks/blackbox_speed.py [--trials 200] [--seeds 3] [--set-proposer PATH]
        [--out benchmarks/results/blackbox_speed.json]

``learned-acq`` is the learned acquisition proposer (shipped, else untrained: the time does
not depend on the weights), its horizon set to the study's length; ``learned-oi`` is the shipped LSTM (handles the first 100 trials, then Optuna's TPE as its
fallback); ``learned-set`` a set proposer (``--set-proposer``, default the architecture
tools/metatrain_bbo.sh trains, untrained: the time does not depend on the weights) with its
horizon set to the study's length, so every suggestion up to the last is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

# one thread everywhere, numpy's BLAS included: set before numpy / torch are imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

torch.set_num_threads(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="learned-acq,learned-set,learned-oi,random,tpe,cmaes,gp")
    ap.add_argument("--set-proposer", default=None, help="a saved set proposer (default: untrained, width 32)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/blackbox_speed.json"))
    args = ap.parse_args()
    from learnt.blackbox import BenchmarkFamily, LSTMProposer, SetProposer, load_pretrained, load_proposer, pretrained_proposers
    from learnt.experiments.blackbox import cube_objective, run_study

    set_model = load_proposer(args.set_proposer) if args.set_proposer else SetProposer(width=32, heads=4, layers=2)
    set_model.meta = {**getattr(set_model, "meta", {}), "horizon": args.trials}
    from learnt.blackbox.acquisition import AcquisitionProposer
    acq = load_pretrained("acq") if "acq" in pretrained_proposers() else AcquisitionProposer()
    acq.meta = {**getattr(acq, "meta", {}), "horizon": args.trials}
    models = {"oi": load_pretrained("oi") if "oi" in pretrained_proposers() else LSTMProposer(), "set": set_model,
              "acq": acq}
    fns = BenchmarkFamily("hartmann6", n_functions=args.seeds).sample(torch.Generator().manual_seed(0))
    out = {"set_proposer": args.set_proposer or "untrained SetProposer(width=32, heads=4, layers=2)",
           "trials": args.trials, "seeds": args.seeds, "function": "hartmann6 (perturbed)", "threads": 1,
           "torch": torch.__version__, "python": platform.python_version(), "methods": {}}
    for method in args.methods.split(","):
        per_seed = []
        for s in range(args.seeds):
            _, secs = run_study(method, cube_objective(fns, s, 6), args.trials, s, models)
            per_seed.append(secs)
        at = {}
        for n in (10, 20, 50, 100, 200):
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
