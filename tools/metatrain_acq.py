"""Meta-train the acquisition proposer (learnt.blackbox.acquisition) in resumable chunks and
write the validation-selected proposer as a model file.

    python tools/metatrain_acq.py OUT [--iterations N] [--prior gp|search-space|mixed] [--seed S]

Run it again with the same arguments to resume from OUT/checkpoint.pt (after a kill, too);
OUT/best.pt is written when the run reaches its iterations.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from learnt.blackbox.acquisition import AcquisitionProposer, AcquisitionTrainConfig, train_acquisition
from learnt.learned import save_rule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--iterations", type=int, default=1200)
    ap.add_argument("--prior", default="mixed", choices=("gp", "search-space", "mixed"))
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = AcquisitionTrainConfig(iterations=a.iterations, prior=a.prior, val_every=a.val_every)
    model = AcquisitionProposer()
    resume = (a.out / "checkpoint.pt").exists()
    res = train_acquisition(model, cfg, seed=a.seed, out_dir=a.out, progress=False, resume=resume)
    save_rule(model, a.out / "proposer.pt", {"horizon": 200, "prior": a.prior, "iterations": a.iterations,
                                             "best_iteration": res.best_iteration, "best_val": res.best_score,
                                             "seed": a.seed, "trained_by": "tools/metatrain_acq.py"})
    print(f"best validation {res.best_score:.4f} at iteration {res.best_iteration}; wrote {a.out / 'proposer.pt'}")


if __name__ == "__main__":
    main()
