"""Learned optimizers vs tuned hand-designed baselines on one optimizee family.

Shared by every optimizer experiment: baselines get their learning rate tuned on
validation problems, then every method runs on the same test problems (paired seeds).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from learnt.experiments.results import curve_summary, stat_row
from learnt.meta.evaluate import RATIO_FLOOR, lr_grid, per_problem, run_on_split, tune_lr
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
    metric: str = "final_loss"   # or "log10_ratio" (scale free, for mixed problem families)


def make_validator(family, ev: EvalConfig, seed: int, steps: int | None = None):
    """``validate(rule)``: mean of ``ev.metric`` over the validation problems (lower is better)."""
    steps = ev.steps if steps is None else steps

    def validate(rule) -> float:
        curves = run_on_split(rule, family, "val", n_tasks=ev.val_tasks, n_problems=ev.val_problems,
                              steps=steps, seed=seed)
        return float(per_problem(curves, ev.metric).mean())
    return validate


def meta_train_rule(rule, family, train_cfg, ev: EvalConfig, ctx, val_family=None):
    """Meta-train ``rule`` on ``family`` with selection on validation problems; returns the best rule.

    Checkpoints, the JSONL log and ``best.pt`` go to ``ctx.out / "meta"``.
    """
    from learnt.meta.trainer import MetaTrainer

    trainer = MetaTrainer(rule, family, train_cfg, seed=ctx.seed,
                          validate=make_validator(val_family or family, ev, ctx.seed),
                          out_dir=ctx.out / "meta", progress=ctx.progress)
    res = trainer.train(resume=ctx.resume)
    rule.load_state_dict(res.best_state)
    return rule


def tune_baselines(family, base: BaselineConfig, ev: EvalConfig, seed: int, steps: int | None = None) -> dict[str, tuple[float, dict]]:
    """Best learning rate of each baseline on validation problems: name -> (lr, scores).

    Scored by mean final loss at ``steps`` (the evaluation horizon, so each horizon gets
    its own tuned rate)."""
    grid = lr_grid(base.lr_low, base.lr_high, base.per_decade)
    score = make_validator(family, ev, seed, steps)
    out = {}
    for name in base.methods:
        out[name] = tune_lr(name, grid, score)
        log.info("tuned %s: lr=%.3g (val final loss %.4g)", name, out[name][0], out[name][1][out[name][0]])
    return out


def compare(learned: dict, tuned: dict[str, tuple[float, dict]], family, ev: EvalConfig, seed: int, *,
            setting: str = "test", steps: int | None = None,
            metrics_split: str | None = None) -> tuple[list[dict], dict, dict[str, np.ndarray]]:
    """Run learned rules and tuned baselines on the same test problems.

    Returns rows (``ev.metric`` per method at the last step, plus ``heldout_<name>`` rows
    when ``metrics_split`` is given, e.g. held-out image loss and accuracy), with ``lr`` on
    baseline rows and a paired one-sided Wilcoxon ``p_vs`` and ``wins`` on learned rows
    (``accuracy`` is tested for *higher*); curve summaries; the raw (steps + 1, n) losses.
    """
    from learnt.functional.rules import make_rule

    steps = ev.steps if steps is None else steps
    rules = {**learned, **{name: make_rule(name, lr) for name, (lr, _) in tuned.items()}}
    raw: dict[str, np.ndarray] = {}
    final: dict[str, dict[str, np.ndarray]] = {}
    for name, rule in rules.items():
        out = run_on_split(rule, family, "test", n_tasks=ev.test_tasks, n_problems=ev.test_problems,
                           steps=steps, seed=seed, metrics_split=metrics_split)
        curves_t, metrics = out if metrics_split is not None else (out, {})
        raw[name] = curves_t.cpu().numpy()
        final[name] = {ev.metric: per_problem(curves_t, ev.metric),
                       **{f"heldout_{k}": v.cpu().numpy() for k, v in metrics.items()}}
    rows = []
    for metric in final[next(iter(final))]:
        higher = metric.endswith("accuracy")
        for name in rules:
            extra = {"step": steps}
            if name in tuned:
                extra["lr"] = tuned[name][0]
            else:
                sign = -1.0 if higher else 1.0
                mine = sign * final[name][metric]
                others = [b for b in rules if b != name]
                extra["p_vs"] = {b: paired_wilcoxon_less(mine, sign * final[b][metric]) for b in others}
                extra["wins"] = {b: int(np.sum(finite_or_inf(mine) < finite_or_inf(sign * final[b][metric])))
                                 for b in others}
            rows.append(stat_row(name, setting, metric, final[name][metric], **extra))
    if ev.metric == "log10_ratio":  # mixed problems: average progress, not raw losses
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = {k: np.log10(np.maximum(a / np.maximum(a[:1], 1e-30), RATIO_FLOOR)) for k, a in raw.items()}
    curves = {name: curve_summary(arr) for name, arr in raw.items()}
    return rows, curves, raw
