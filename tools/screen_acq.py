"""Screen design choices of the untrained acquisition proposer on a prior's *validation*
functions (32 per dimension, the ``val`` split; never the test functions or the benchmarks).

Mean regret of the best value found at 10 / 20 / 50 / 100 queries; on the GP prior against
each function's approximate minimum, on the search-space prior against the lowest value any
variant or 8,192 random points found.

    python tools/screen_acq.py --prior gp --dims 1,3,6,9 --steps 50 --variant default --variant cap=48
    python tools/screen_acq.py --prior search-space --dims 2,4,7 --variant warps=standardise --variant warps=copula
    python tools/screen_acq.py --prior gp --dims 1,3,6 --variant noises=1e-2 --variant noises=1e-4

Variants: ``cap=N`` (results the smoothers and GPs read), ``warps=standardise|copula|both``,
``noises=V[,V...]`` (GP noise variances), ``default``.
"""
from __future__ import annotations

import argparse

import torch

import learnt.blackbox.acquisition as A
from learnt.blackbox.training import GPPrior
from learnt.seeding import make_generator

WARPS = {"standardise": ("standardise",), "copula": ("copula",), "both": ("standardise", "copula")}


def configure(variant: str) -> None:
    A.GP_MAX, A.GP_WARPS, A.GP_MODELS = 64, WARPS["both"], tuple((s, v) for v in (1e-4, 1e-2) for s in A.GP_SCALES)
    if variant != "default":
        key, value = variant.split("=", 1)
        if key == "cap":
            A.GP_MAX = int(value)
        elif key == "warps":
            A.GP_WARPS = WARPS[value]
        elif key == "noises":
            A.GP_MODELS = tuple((s, float(v)) for v in value.split(",") for s in A.GP_SCALES)
        else:
            raise SystemExit(f"variant {variant!r}; expected cap=N, warps=..., noises=... or default")
    A.GP_BLOCK = 4 * len(A.GP_MODELS) + 1
    A.N_FEATURES = 5 * len(A.NW_SCALES) + len(A.GP_WARPS) * A.GP_BLOCK + 1 + 8
    A.BMA_EI = 5 * len(A.NW_SCALES) + len(A.GP_WARPS) * A.GP_BLOCK


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", choices=("gp", "search-space"), default="gp")
    ap.add_argument("--dims", default="1,3,6,9")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--functions", type=int, default=32)
    ap.add_argument("--variant", action="append", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    prior = GPPrior(kind=a.prior)
    budgets = [b for b in (10, 20, 50, 100) if b <= a.steps]
    for d in (int(v) for v in a.dims.split(",")):
        fns = prior.family(d, a.functions).sample(make_generator(0, "val", d))
        if a.prior == "gp":
            ref = fns.approx_min(4096, g=make_generator(0, "val", d, 1), n_starts=8, n_steps=60)
        else:
            ref = fns(torch.rand(a.functions, 8192, d, generator=torch.Generator().manual_seed(1))).min(1).values
        best = {}
        for v in a.variant or ["default"]:
            configure(v)
            best[v] = A.AcquisitionProposer().rollout(fns, d, a.steps).best_so_far()
        if a.prior != "gp":
            ref = torch.minimum(ref, torch.stack([b[:, -1] for b in best.values()]).min(0).values)
        for v, b in best.items():
            reg = b - ref[:, None]
            print(f"d={d} {v:22s} " + "  ".join(f"@{t}: {float(reg[:, t - 1].mean()):.3g}" for t in budgets), flush=True)


if __name__ == "__main__":
    main()
