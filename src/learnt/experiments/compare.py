"""Learned optimizers vs tuned hand-designed baselines on one optimizee family.

Shared by every optimizer experiment: baselines get their learning rate tuned on
validation problems, then every method runs on the same test problems (paired seeds).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from learnt.experiments.results import curve_summary, stat_row
from learnt.meta.evaluate import final_mean, lr_grid, run_on_split, tune_lr
from learnt.meta.stats import finite_or_inf, paired_wilcoxon_less

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineConfig:
    """Hand-designed baselines and their learning-rate grid (log-spaced)."""

    methods: tuple[str, ...] = ("sgd", "nag", "rmsprop", "adam")
    lr_low: float = 1e-4
    lr_high: float = 10.0
    per_decade: int = 3


@dataclass(frozen=True)
class EvalConfig:
    """Validation (selection, tuning) and test problem counts and horizon."""

    steps: int = 100
    val_tasks: int = 1
    val_problems: int = 128
    test_tasks: int = 1
    test_problems: int = 100


def tune_baselines(family, base: BaselineConfig, ev: EvalConfig, seed: int, steps: int | None = None) -> dict[str, tuple[float, dict]]:
    """Best learning rate of each baseline on validation problems: name -> (lr, scores)."""
    steps = ev.steps if steps is None else steps
    grid = lr_grid(base.lr_low, base.lr_high, base.per_decade)

    def score(rule):
        return final_mean(run_on_split(rule, family, "val", n_tasks=ev.val_tasks, n_problems=ev.val_problems,
                                       steps=steps, seed=seed))
    out = {}
    for name in base.methods:
        out[name] = tune_lr(name, grid, score)
        log.info("tuned %s: lr=%.3g (val final loss %.4g)", name, out[name][0], out[name][1][out[name][0]])
    return out


def compare(learned: dict, tuned: dict[str, tuple[float, dict]], family, ev: EvalConfig, seed: int, *,
            setting: str = "test", steps: int | None = None, metric: str = "final_loss",
            report_steps: tuple[int, ...] = ()) -> tuple[list[dict], dict, dict[str, np.ndarray]]:
    """Run learned rules and tuned baselines on the same test problems.

    Returns rows (final loss per method, with ``lr`` on baseline rows and ``p_vs`` / ``wins``
    on learned rows), curve summaries, and the raw (steps + 1, n) loss arrays.
    """
    from learnt.functional.rules import make_rule

    steps = ev.steps if steps is None else steps
    raw: dict[str, np.ndarray] = {}
    for name, rule in learned.items():
        raw[name] = run_on_split(rule, family, "test", n_tasks=ev.test_tasks, n_problems=ev.test_problems,
                                 steps=steps, seed=seed).cpu().numpy()
    for name, (lr, _) in tuned.items():
        raw[name] = run_on_split(make_rule(name, lr), family, "test", n_tasks=ev.test_tasks,
                                 n_problems=ev.test_problems, steps=steps, seed=seed).cpu().numpy()
    rows = []
    for t in (*report_steps, steps):
        suffix = "" if t == steps else f"@{t}"
        for name, arr in raw.items():
            extra = {"step": t}
            if name in tuned:
                extra["lr"] = tuned[name][0]
            else:
                extra["p_vs"] = {b: paired_wilcoxon_less(arr[t], raw[b][t]) for b in tuned}
                extra["wins"] = {b: int(np.sum(finite_or_inf(arr[t]) < finite_or_inf(raw[b][t])))
                                 for b in tuned}
            rows.append(stat_row(name, setting, metric + suffix, arr[t], **extra))
    curves = {name: curve_summary(arr) for name, arr in raw.items()}
    return rows, curves, raw
