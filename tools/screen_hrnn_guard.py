"""Screen the HRNN's relative trust region (``HierarchicalRNN(max_rel_step=rho)``) on the
*meta-training* distribution (never on the held-out suite or hrnn-generalization's problems).

Per sampled NetFamily task, run the shipped HRNN from initial learning rates 1e-5, 1e-3 and
1e-1 with each ``rho`` (``none``: no trust region) and report how many runs diverge (final
whole-train-set loss non-finite or above the initial loss) and the spread of the final loss
over the rates (log10 worst / best: the hrnn-lr-robustness metric).

    python tools/screen_hrnn_guard.py --tasks 10 --workers 2 --max-horizon 500 \
        --out results/lopt-suite/design/screen_hrnn_guard.json
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
from screen_default import map_tasks, run  # noqa: E402

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


def screen_task(args) -> dict:
    i, seed, rhos, max_horizon = args
    torch.set_num_threads(1)
    fam_cfg = dataclasses.replace(FamilyConfig(), heldout_objective=False,
                                  max_horizon=max_horizon, min_horizon=min(FamilyConfig().min_horizon, max_horizon))
    task = build_family(fam_cfg).sample(make_generator(seed, "val", i, 0))
    base = pretrained.load("hrnn", "cpu").eval()
    out = {"task": task.name, "horizon": task.horizon, "rho": {}}
    for rho in rhos:
        finals, diverged = {}, 0
        for lr in LRS:
            rule = copy.deepcopy(base)
            rule.init_lr, rule.max_rel_step = lr, rho
            _, f, i0 = run(task, rule, seed, 2, i)
            finals[str(lr)] = float(np.mean(f))
            diverged += int(((~np.isfinite(f)) | (f > i0)).any())
        vals = list(finals.values())
        spread = (math.log10(max(max(vals), 1e-30) / max(min(vals), 1e-30)) if all(map(math.isfinite, vals))
                  else math.inf)
        out["rho"][str(rho)] = {"final": finals, "diverged": diverged, "log10_worst_over_best": spread}
    print(f"task {i} {task.name} h={task.horizon} | " + " | ".join(
        f"rho {r}: div {v['diverged']} spread {v['log10_worst_over_best']:.2f}" for r, v in out["rho"].items()),
        file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-horizon", type=int, default=500)
    ap.add_argument("--rho", nargs="+", default=["none", "0.03", "0.1", "0.3"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.max_horizon < 1:
        raise SystemExit(f"--max-horizon {a.max_horizon}; expected >= 1")
    rhos = [parse_rho(r) for r in a.rho]
    rows = map_tasks(screen_task, [(i, a.seed, rhos, a.max_horizon) for i in range(a.tasks)], a.workers)
    summary = {}
    for rho in map(str, rhos):
        spreads = [r["rho"][rho]["log10_worst_over_best"] for r in rows]
        finite = [s for s in spreads if math.isfinite(s)]
        summary[rho] = {"diverged_runs": sum(r["rho"][rho]["diverged"] for r in rows), "runs": len(rows) * len(LRS),
                        "mean_log10_worst_over_best": float(np.mean(finite)) if finite else math.inf,
                        "tasks_with_a_nonfinite_run": len(spreads) - len(finite)}
        print(f"rho {rho:6s} diverged {summary[rho]['diverged_runs']}/{summary[rho]['runs']}  mean log10 worst/best "
              f"{summary[rho]['mean_log10_worst_over_best']:.2f}  (non-finite tasks {summary[rho]['tasks_with_a_nonfinite_run']})")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"command": " ".join(sys.argv), "lrs": list(LRS), "tasks": rows, "summary": summary}, fh, indent=1)


if __name__ == "__main__":
    main()
