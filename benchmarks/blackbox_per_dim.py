"""One proposer for every dimension vs a proposer trained for one dimension only.

Chen et al. trained one network per input dimension; learnt ships one network for d = 1..10.
This trains a d-only proposer with the same loss, budget and functions per iteration as the
shipped joint one (blackbox-gp's full config, all functions in dimension d), and evaluates
both on blackbox-gp's 30 held-out test functions of that dimension (same seed).

    python benchmarks/blackbox_per_dim.py [--dim 6] [--loss ei] [--out benchmarks/results/blackbox_per_dim.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

torch.set_num_threads(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--loss", default="ei")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/blackbox_per_dim.json"))
    args = ap.parse_args()
    from learnt.blackbox import LSTMProposer, load_pretrained, train_proposer
    from learnt.experiments.blackbox import ProposerConfig, gp_config
    from learnt.meta.stats import mean_ci95, paired_wilcoxon_less
    from learnt.seeding import derive_seed, make_generator

    cfg = gp_config("full")
    joint_cfg = cfg.train
    per_dim_cfg = dataclasses.replace(joint_cfg, loss=args.loss, dims=(args.dim,),
                                      functions_per_dim=joint_cfg.functions_per_dim * len(joint_cfg.dims))
    torch.manual_seed(derive_seed(args.seed, "train", 0, len(args.loss)))
    model = LSTMProposer(**dataclasses.asdict(ProposerConfig()))
    t0 = time.perf_counter()
    res = train_proposer(model, per_dim_cfg, seed=args.seed, progress=False)
    train_s = time.perf_counter() - t0
    joint = load_pretrained(args.loss)
    fns = joint_cfg.prior.family(args.dim, cfg.suite.n_seeds).sample(make_generator(args.seed, "test", args.dim))
    with torch.no_grad():
        curves = {name: m.eval().rollout(fns, args.dim, 100).best_so_far() for name, m in
                  (("joint (shipped)", joint), (f"d={args.dim} only", model))}
    out = {"dim": args.dim, "loss": args.loss, "seed": args.seed, "n_functions": cfg.suite.n_seeds,
           "train_seconds": round(train_s, 1), "per_dim_best_iteration": res.best_iteration,
           "metric": "best value found (lower is better; same functions, paired)", "rows": []}
    names = list(curves)
    for at in (10, 20, 50, 100):
        a, b = (curves[n][:, at - 1].double().numpy() for n in names)
        for n, v in zip(names, (a, b)):
            mean, ci, k = mean_ci95(v)
            out["rows"].append({"method": n, "metric": f"best@{at}", "mean": mean, "ci95": ci, "n": k})
        out["rows"][-2]["p_joint_lower"] = paired_wilcoxon_less(a, b)
        print(f"@{at}: joint {a.mean():.3f}  d-only {b.mean():.3f}  p(joint < d-only) {out['rows'][-2]['p_joint_lower']:.3g}",
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
