"""Validation score of black-box proposers (what meta-training selects on): the best value
found, averaged over 10/20/50/100 queries, on the validation functions of a prior (32 per
d = 1..9, seed 0), beside uniform random search and the untrained set proposer (its Sobol
sequence). Lower is better.

    python tools/bbo_validation.py --prior gp [PROPOSER.pt ...]
    python tools/bbo_validation.py --prior search-space results/blackbox-gp/train-set-ei-gp/meta-ei/best.pt
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from learnt.blackbox import SetProposer, load_pretrained, load_proposer, pretrained_proposers
from learnt.blackbox.training import GPPrior, QueryTask, best_observed_score, validation_functions
from learnt.experiments.blackbox import ProposerConfig, gp_config

HORIZONS = (10, 20, 50, 100)


def random_score(val) -> float:
    task = QueryTask(val)
    g = torch.Generator().manual_seed(1)
    width = ProposerConfig().max_dim          # queries as the proposers see them (zero-padded)
    mask = (torch.arange(width) < task.dims[:, None]).float()[:, None, :]
    y = task(torch.rand(task.n_functions, max(HORIZONS), width, generator=g) * mask)
    best = torch.cummin(y, 1).values
    return float(torch.stack([best[:, h - 1] for h in HORIZONS]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", choices=("gp", "search-space"), default="gp")
    ap.add_argument("proposers", nargs="*")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = dataclasses.replace(gp_config("full").train, prior=GPPrior(kind=a.prior), val_functions_per_dim=32)
    val = validation_functions(cfg, 0)
    rows = [("random search", random_score(val)),
            ("untrained set proposer (Sobol)", best_observed_score(SetProposer(width=32), val, HORIZONS))]
    rows += [(f"shipped {n}", best_observed_score(load_pretrained(n), val, HORIZONS)) for n in pretrained_proposers()]
    rows += [(p, best_observed_score(load_proposer(p), val, HORIZONS)) for p in a.proposers]
    for name, score in rows:
        print(f"{score:8.4f}  {name}")


if __name__ == "__main__":
    main()
