"""Evaluate any update rule on a split's problems with paired seeds, and tune baselines."""
from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from learnt.functional.rules import make_rule
from learnt.meta.stats import finite_or_inf
from learnt.meta.unroll import unroll
from learnt.seeding import make_generator

log = logging.getLogger(__name__)


def run_on_split(rule, family, split: str, *, n_tasks: int, steps: int, seed: int = 0,
                 n_problems: int | None = None, lr: float | None = None,
                 metrics_split: str | None = None):
    """Loss curves of ``rule`` on the first ``n_tasks`` tasks of ``split``.

    Task ``i`` and its initial parameters and minibatch order come from
    ``make_generator(seed, split, i)``, so every rule sees exactly the same problems
    (paired comparisons). Returns losses of shape (steps + 1, n_tasks * K), detached.
    With ``metrics_split`` (tasks with a ``metrics`` method, e.g. image classifiers) it
    returns ``(curves, metrics)`` where ``metrics`` maps names such as ``loss`` and
    ``accuracy`` on that held-out split, at the final step, to (n_tasks * K,) tensors.
    """
    curves, metrics = [], []
    was_training = getattr(rule, "training", None)
    if was_training:
        rule.eval()  # evaluation mode: e.g. no random initial learning rates
    try:
        for i in range(n_tasks):
            g = make_generator(seed, split, i)
            task = family.sample(g, n_problems)
            params = task.init_params(g)
            state = rule.init(params, task.n_problems)
            res = unroll(task, rule, params, state, task.batches(split, g), steps,
                         differentiable=False, lr=lr, check=False)
            curves.append(res.losses)
            if metrics_split is not None:
                metrics.append(task.metrics(res.params, metrics_split))
    finally:
        if was_training:
            rule.train()
    curves = torch.cat(curves, dim=1)
    if metrics_split is None:
        return curves
    return curves, {k: torch.cat([m[k] for m in metrics]) for k in metrics[0]}


def lr_grid(low: float = 1e-4, high: float = 10.0, per_decade: int = 3) -> list[float]:
    """Log-spaced learning rates from ``low`` to ``high`` inclusive, ``per_decade`` per decade."""
    if not (0 < low < high) or per_decade < 1:
        raise ValueError(f"lr_grid(low={low}, high={high}, per_decade={per_decade}); expected 0 < low < high, per_decade >= 1")
    n = int(round(math.log10(high / low) * per_decade)) + 1
    return [float(x) for x in np.logspace(math.log10(low), math.log10(high), n)]


def tune_lr(name: str, lrs: Sequence[float], score: Callable[[object], float]) -> tuple[float, dict[float, float]]:
    """Pick the learning rate of hand-designed rule ``name`` that minimises ``score(rule)``.

    Diverged runs score +inf. Logs a warning when the best rate sits on the grid's edge,
    since the true optimum may then lie outside it.
    """
    scores = {}
    for lr in lrs:
        s = float(score(make_rule(name, lr)))
        scores[lr] = s if math.isfinite(s) else math.inf
    best = min(scores, key=scores.get)
    if best in (min(lrs), max(lrs)):
        log.warning("%s: best lr %.3g is on the edge of the grid [%.3g, %.3g]", name, best, min(lrs), max(lrs))
    return best, scores


def final_mean(curves: Tensor) -> float:
    """Mean final loss over problems (+inf if any diverged)."""
    return float(finite_or_inf(curves[-1].cpu().numpy()).mean())


RATIO_FLOOR = 1e-8


def per_problem(curves: Tensor, metric: str = "final_loss") -> np.ndarray:
    """One number per problem from (steps + 1, n) loss curves.

    ``final_loss``: the loss at the last step. ``log10_ratio``: ``log10(f_T / f_0)`` (scale
    free; for losses >= 0 such as gaps to a lower bound), floored at ``log10(RATIO_FLOOR)``
    = -8 so that problems solved to float32 precision count as solved rather than as -30.
    Diverged runs give +inf.
    """
    c = curves.detach().double().cpu().numpy()
    if metric == "final_loss":
        return finite_or_inf(c[-1])
    if metric == "log10_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log10(np.maximum(c[-1] / np.maximum(c[0], 1e-30), RATIO_FLOOR))
        return finite_or_inf(np.where(np.isfinite(c[-1]), r, np.inf))
    raise ValueError(f"unknown metric {metric!r}; expected 'final_loss' or 'log10_ratio'")
