"""Trace the shipped HRNN's learned learning rate on one of hrnn-generalization's problems.

For each initial learning rate, run 500 steps (``--steps``) on 8 stacked test problems and
print the minibatch loss and the mean learned rate every 100 steps (``--every``), then the
loss on the next minibatch (docs/architecture.md quotes it). ``--max-rel-step none`` runs the
weights without the shipped trust region.

    python tools/hrnn_rate_trace.py "mlp sigmoid"
    python tools/hrnn_rate_trace.py "mlp relu" --lrs 1e-3 --steps 1200 --every 200
"""
from __future__ import annotations

import argparse
import copy
import math

import torch

from learnt import pretrained
from learnt.experiments.hrnn import GEN_SETTINGS
from learnt.seeding import make_generator


def trace(rule, fam, steps: int = 500, every: int = 100) -> tuple[list[str], float]:
    g = make_generator(0, "test", 0)
    task = fam.sample(g, 8)
    params = task.init_params(g)
    state = rule.init(params, task.n_problems)
    batches = task.batches("test", g)
    out = []
    for t in range(steps):
        ps = {k: v.detach().requires_grad_() for k, v in params.items()}
        loss = task.loss(ps, next(batches))
        grads = dict(zip(ps, torch.autograd.grad(loss.sum(), list(ps.values()))))
        with torch.no_grad():
            upd, state = rule.update(grads, state, params)
            params = {k: params[k] + upd[k] for k in params}
        if t % every == 0:
            rate = math.exp(torch.cat([state[k]["log_lr"].reshape(-1) for k in params]).mean().item())
            out.append(f"step {t}: loss {loss.mean().item():.3g}, rate {rate:.2g}")
    with torch.no_grad():
        final = float(task.loss(params, next(batches)).mean())
    return out, final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problem", choices=list(GEN_SETTINGS))
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--max-rel-step", default=None, help="override the shipped trust region: a number or 'none'")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1:
        raise SystemExit(f"--steps {a.steps} --every {a.every}; expected both >= 1")
    torch.set_num_threads(1)
    base = pretrained.load("hrnn", "cpu").eval()
    if a.max_rel_step is not None and a.max_rel_step != "none":
        try:
            rho = float(a.max_rel_step)
        except ValueError:
            rho = math.nan
        if not (rho > 0 and math.isfinite(rho)):
            raise SystemExit(f"--max-rel-step {a.max_rel_step!r}; expected 'none' or a finite number > 0")
        base.max_rel_step = rho
    elif a.max_rel_step == "none":
        base.max_rel_step = None
    fam = GEN_SETTINGS[a.problem]("cpu")
    finals = []
    for lr in a.lrs:
        rule = copy.deepcopy(base)
        rule.init_lr = lr
        lines, final = trace(rule, fam, a.steps, a.every)
        finals.append(final)
        print(f"initial lr {lr:g}: " + " | ".join(lines) + f" | final {final:.3g}", flush=True)
    ok = [f for f in finals if math.isfinite(f)]
    print(f"worst / best final loss over the lrs: {max(finals) / min(ok):.3g}" if ok else "every run diverged")


if __name__ == "__main__":
    main()
