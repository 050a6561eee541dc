"""Screen the HRNN's guards on the *meta-training* distribution (never on the held-out suite
or hrnn-generalization's problems): the relative trust region
(``HierarchicalRNN(max_rel_step=rho)``) and the bound on the learned rate (``lr_bound``).

Per sampled NetFamily task, run the shipped HRNN from initial learning rates 1e-5, 1e-3 and
1e-1 with each guard setting ``rho[:lr_bound]`` (``none``: off) and report how many runs
diverge (final whole-train-set loss non-finite or above the initial loss), the spread of the
final loss over the rates (log10 worst / best: the hrnn-lr-robustness metric) and, with
``--adam``, the final loss from the user-facing rate 1e-3 against Adam tuned per task on
separate initialisations (``tools/screen_default.py``'s 7-point grid).

    python tools/screen_hrnn_guard.py --tasks 10 --workers 2 --max-horizon 500 \
        --out results/lopt-suite/design/screen_hrnn_guard.json
    python tools/screen_hrnn_guard.py --rho 0.03 0.03:100 0.03:10 --adam ...
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import sys

import numpy as np
import torch

from learnt import pretrained
from learnt.experiments.lopt_train import FamilyConfig, build_family
from learnt.seeding import make_generator

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from screen_default import GRID, map_tasks, run  # noqa: E402

from learnt.functional.rules import adam  # noqa: E402

LRS = (1e-5, 1e-3, 1e-1)


def parse_rho(text: str) -> float | None:
    if text == "none":
        return None
    try:
        rho = float(text)
    except ValueError:
        rho = math.nan
    if not (rho > 0 and math.isfinite(rho)):
        raise SystemExit(f"--rho {text!r}; expected 'none' or a finite number > 0")
    return rho


def parse_guard(text: str) -> tuple[float | None, float | None]:
    """``rho`` or ``rho:lr_bound``, each a number or ``none``."""
    rho, _, bound = text.partition(":")
    if not bound or bound == "none":
        return parse_rho(rho), None
    try:
        b = float(bound)
    except ValueError:
        b = math.nan
    if not b >= 1 or not math.isfinite(b):
        raise SystemExit(f"--rho {text!r}: lr_bound {bound!r}; expected 'none' or a finite number >= 1")
    return parse_rho(rho), b


def guard_name(rho: float | None, bound: float | None) -> str:
    return str(rho) if bound is None else f"{rho}:{bound:g}"


def screen_task(args) -> dict:
    i, seed, guards, (min_horizon, max_horizon), with_adam = args
    torch.set_num_threads(1)
    min_horizon = min(FamilyConfig().min_horizon, max_horizon) if min_horizon is None else min_horizon
    fam_cfg = dataclasses.replace(FamilyConfig(), heldout_objective=False,
                                  max_horizon=max_horizon, min_horizon=min_horizon)
    task = build_family(fam_cfg).sample(make_generator(seed, "val", i, 0))
    base = pretrained.load("hrnn", "cpu").eval()
    out = {"task": task.name, "horizon": task.horizon, "rho": {}}
    if with_adam:
        scores = {lr: float(np.mean(run(task, adam(lr), seed, 1, i)[1])) for lr in GRID}
        best = min(scores, key=lambda k: (scores[k], k))
        out["adam_lr"], out["adam_final"] = best, float(np.mean(run(task, adam(best), seed, 2, i)[1]))
    for rho, bound in guards:
        finals, diverged = {}, 0
        for lr in LRS:
            rule = copy.deepcopy(base)
            rule.init_lr, rule.max_rel_step, rule.lr_bound = lr, rho, bound
            _, f, i0 = run(task, rule, seed, 2, i)
            finals[str(lr)] = float(np.mean(f))
            diverged += int(((~np.isfinite(f)) | (f > i0)).any())
        vals = list(finals.values())
        spread = (math.log10(max(max(vals), 1e-30) / max(min(vals), 1e-30)) if all(map(math.isfinite, vals))
                  else math.inf)
        out["rho"][guard_name(rho, bound)] = {"final": finals, "diverged": diverged, "log10_worst_over_best": spread}
    adam_txt = f" adam lr {out['adam_lr']:g} final {out['adam_final']:.3g} |" if with_adam else ""
    print(f"task {i} {task.name} h={task.horizon} |{adam_txt} " + " | ".join(
        f"{r}: div {v['diverged']} spread {v['log10_worst_over_best']:.2f} final@1e-3 {v['final']['0.001']:.3g}"
        for r, v in out["rho"].items()), file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-horizon", type=int, default=500)
    ap.add_argument("--min-horizon", type=int, default=None, help="default: the family's (100) or --max-horizon")
    ap.add_argument("--rho", nargs="+", default=["none", "0.03", "0.1", "0.3"],
                    help="guard settings rho[:lr_bound], e.g. 0.03 0.03:100 none")
    ap.add_argument("--adam", action="store_true", help="also tune Adam per task and compare the final loss at lr 1e-3")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.max_horizon < 1 or (a.min_horizon is not None and not 1 <= a.min_horizon <= a.max_horizon):
        raise SystemExit(f"--min-horizon {a.min_horizon} --max-horizon {a.max_horizon}; expected 1 <= MIN <= MAX")
    guards = [parse_guard(r) for r in a.rho]
    rows = map_tasks(screen_task, [(i, a.seed, guards, (a.min_horizon, a.max_horizon), a.adam)
                                     for i in range(a.tasks)], a.workers)
    summary = {}
    for rho in (guard_name(*g) for g in guards):
        spreads = [r["rho"][rho]["log10_worst_over_best"] for r in rows]
        finite = [s for s in spreads if math.isfinite(s)]
        summary[rho] = {"diverged_runs": sum(r["rho"][rho]["diverged"] for r in rows), "runs": len(rows) * len(LRS),
                        "mean_log10_worst_over_best": float(np.mean(finite)) if finite else math.inf,
                        "tasks_with_a_nonfinite_run": len(spreads) - len(finite)}
        if a.adam:
            ratio = [math.log10(max(r["rho"][rho]["final"]["0.001"], 1e-30) / max(r["adam_final"], 1e-30))
                     if math.isfinite(r["rho"][rho]["final"]["0.001"]) else math.inf for r in rows]
            summary[rho]["median_log10_ratio_to_tuned_adam_at_1e-3"] = float(np.median(ratio))
            summary[rho]["won_vs_tuned_adam_at_1e-3"] = float(np.mean([x <= 0 for x in ratio]))
        print(f"rho {rho:6s} diverged {summary[rho]['diverged_runs']}/{summary[rho]['runs']}  mean log10 worst/best "
              f"{summary[rho]['mean_log10_worst_over_best']:.2f}  (non-finite tasks {summary[rho]['tasks_with_a_nonfinite_run']})"
              + (f"  at 1e-3: median log10(final / tuned Adam) {summary[rho]['median_log10_ratio_to_tuned_adam_at_1e-3']:+.2f}"
                 f", won {summary[rho]['won_vs_tuned_adam_at_1e-3']:.2f}" if a.adam else ""))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"command": " ".join(sys.argv), "lrs": list(LRS), "tasks": rows, "summary": summary}, fh, indent=1)


if __name__ == "__main__":
    main()
