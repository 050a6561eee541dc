"""Screen hand-designed variants of the default learned optimizer on the *meta-training*
distribution (never on the held-out suite): per sampled NetFamily task, tune Adam's lr over a
7-point log grid on tuning initialisations, then run every variant and tuned Adam on separate
evaluation initialisations, and report the suite's metrics (speed-up to tuned Adam's final
smoothed training loss, final whole-train-set loss ratio, divergence).

    python tools/screen_default.py --tasks 24 --workers 2 --out /tmp/screen.json \
        --variant decay_start=0.7 --variant decay_start=0.3

Each variant is ``key=value[,key=value]`` over :class:`ControllerConfig`'s fields, plus
``decay_floor`` (the schedule's end value, 0.02 in the shipped knots; the knots are the
rule's parameters, so a floor is a different initialisation, not a config key).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from learnt.experiments.lopt_suite import _smooth, steps_to_reach
from learnt.experiments.lopt_train import ControllerConfig, FamilyConfig, build_controller, build_family
from learnt.functional.rules import adam
from learnt.learned.adam_controller import decay_knots
from learnt.meta.stats import finite_or_inf
from learnt.meta.trainer import init_state
from learnt.meta.unroll import unroll
from learnt.seeding import make_generator

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def parse_variant(text: str) -> dict:
    out = {}
    types = {f.name: f.type for f in dataclasses.fields(ControllerConfig)}
    types["decay_floor"] = float
    for part in filter(None, text.split(",")):
        k, v = part.split("=")
        if k not in types:
            raise SystemExit(f"unknown controller field {k!r}; expected one of {sorted(types)}")
        out[k] = int(v) if types[k] in (int, "int") else float(v)
    return out


def run(task, rule, seed: int, split: int, index: int):
    """One run of the task's horizon; ``split`` 1 = tuning initialisations, 2 = evaluation."""
    g = make_generator(seed, "val", index, split)
    params = task.init_params(g)
    init = task.metrics(params, "train")["loss"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        res = unroll(task, rule, params, init_state(rule, params, task), task.batches("train", g), task.horizon,
                     differentiable=False, check=False)
    ok = all(torch.isfinite(p).all() for p in res.params.values())
    final = task.metrics(res.params, "train")["loss"] if ok else torch.full_like(init, math.inf)
    return res.losses.numpy(), finite_or_inf(final.numpy()), init.numpy()


def map_tasks(fn, jobs: list, workers: int) -> list:
    """``[fn(j) for j in jobs]``, in ``workers`` processes when more than one."""
    if workers <= 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(fn, jobs))


def build_variant(kw: dict):
    """The default with the variant's config fields and, given ``decay_floor``, its knots re-made."""
    kw = dict(kw)
    floor = kw.pop("decay_floor", None)
    cfg = dataclasses.replace(ControllerConfig(), **kw)
    rule = build_controller(cfg).eval()
    if floor is not None:
        if not 0 < floor <= 1:
            raise SystemExit(f"decay_floor={floor}; expected 0 < decay_floor <= 1")
        with torch.no_grad():
            rule.knots.copy_(decay_knots(cfg.n_knots, cfg.decay_start, floor))
    return rule


def screen_task(args) -> dict:
    i, seed, variants, horizons = args
    torch.set_num_threads(1)
    fam_cfg = dataclasses.replace(FamilyConfig(), heldout_objective=False)
    if horizons is not None:
        fam_cfg = dataclasses.replace(fam_cfg, min_horizon=horizons[0], max_horizon=horizons[1])
    fam = build_family(fam_cfg)
    task = fam.sample(make_generator(seed, "val", i, 0))
    scores = {lr: float(np.mean(run(task, adam(lr), seed, 1, i)[1])) for lr in GRID}
    best = min(scores, key=lambda k: (scores[k], k))
    window = max(1, int(0.05 * task.horizon))
    curve, final, init = run(task, adam(best), seed, 2, i)
    target = _smooth(curve, window)[-1]
    ref_steps = steps_to_reach(curve, target, window)
    out = {"task": task.name, "horizon": task.horizon, "adam_lr": best, "adam_final": float(np.mean(final)), "variants": {}}
    for name, kw in variants.items():
        rule = build_variant(kw)
        c, f, i0 = run(task, rule, seed, 2, i)
        speed = ref_steps / np.maximum(steps_to_reach(c, target, window), 1.0)
        out["variants"][name] = {"final": float(np.mean(f)), "speedup": float(np.median(speed)),
                                 "diverged": bool(((~np.isfinite(f)) | (f > i0)).any())}
    print(f"task {i} {task.name} h={task.horizon} adam lr {best:g} final {out['adam_final']:.3g} | "
          + " | ".join(f"{n}: {v['final']:.3g} x{v['speedup']:.2f}" for n, v in out["variants"].items()),
          file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--out", default=None)
    ap.add_argument("--horizons", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                    help="run lengths (log-uniform) instead of the family's 100-1000; the suite runs 1,000-3,000")
    a = ap.parse_args()
    if a.horizons is not None and not 1 <= a.horizons[0] <= a.horizons[1]:
        raise SystemExit(f"--horizons {a.horizons[0]} {a.horizons[1]}; expected 1 <= MIN <= MAX")
    variants = {v or "default": parse_variant(v) for v in (a.variant or [""])}
    rows = map_tasks(screen_task, [(i, a.seed, variants, a.horizons) for i in range(a.tasks)], a.workers)
    summary = {}
    for name in variants:
        sp = [r["variants"][name]["speedup"] for r in rows]
        ratio = [math.log10(max(r["variants"][name]["final"], 1e-30) / max(r["adam_final"], 1e-30)) for r in rows]
        won = [r["variants"][name]["final"] <= r["adam_final"] for r in rows]
        summary[name] = {"median_speedup": float(np.median(sp)), "won": float(np.mean(won)),
                         "median_log10_ratio": float(np.median(ratio)),
                         "diverged": sum(r["variants"][name]["diverged"] for r in rows)}
        print(f"{name:40s} median speed-up {summary[name]['median_speedup']:.2f}  won {summary[name]['won']:.2f}  "
              f"median log10 ratio {summary[name]['median_log10_ratio']:+.2f}  diverged {summary[name]['diverged']}")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"command": " ".join(sys.argv), "tasks": rows, "summary": summary}, fh, indent=1)


if __name__ == "__main__":
    main()
