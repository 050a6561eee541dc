"""``l2l-quadratic-pes``: the L2L LSTM of ``l2l-quadratic`` meta-trained with PES instead of BPTT.

Persistent evolution strategies (Vicol et al. 2021) estimate the meta-gradient from
antithetic perturbations of phi with no backpropagation through the unroll. Everything
else is ``l2l-quadratic``: the same 2-layer, 20-unit coordinatewise LSTM, 10-d quadratics,
100-step runs in 20-step truncations, the same validation selection and the same 100
held-out test quadratics with tuned SGD/NAG/RMSprop/Adam. The BPTT-trained rule that
``l2l-quadratic`` shipped (``learnt.pretrained.load("l2l-quadratic")``) is run on the same
test problems as ``lstm-bptt``, so the two estimators are compared paired; the
``lstm-pes`` row records whether its mean lies within the BPTT row's 95% CI.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from learnt.experiments import l2l_quadratic as quad
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.compare import BaselineConfig, EvalConfig, compare, tune_baselines
from learnt.experiments.plots import loss_curves
from learnt.io import read_jsonl
from learnt.meta.trainer import MetaTrainConfig

log = logging.getLogger(__name__)


def _pes_train() -> MetaTrainConfig:
    return MetaTrainConfig(iterations=500, unroll_steps=100, truncation=20, estimator="pes", sigma=0.01,
                           n_pairs=8, meta_lr=1e-2, val_every=25, checkpoint_every=25)


@dataclass(frozen=True)
class L2LQuadraticPESConfig:
    """``l2l-quadratic``'s config with PES meta-training.

    Each PES particle steps its own copy of a task of ``task.n_problems`` quadratics, so the
    training task is smaller than BPTT's 128 (16 particles x 16 problems per truncation);
    validation and test problems are the same as ``l2l-quadratic``'s."""

    task: quad.QuadraticTaskConfig = field(default_factory=lambda: quad.QuadraticTaskConfig(n_problems=16))
    optimizer: quad.L2LConfig = field(default_factory=quad.L2LConfig)
    train: MetaTrainConfig = field(default_factory=_pes_train)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    bptt_reference: str = "l2l-quadratic"   # shipped pretrained rule run beside PES ("" to skip)
    device: str = "cpu"


def config(budget: str) -> L2LQuadraticPESConfig:
    cfg = L2LQuadraticPESConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=20, val_every=10,
                                                                 checkpoint_every=10))
    return cfg


def meta_train(cfg: L2LQuadraticPESConfig, ctx: RunContext):
    return quad.meta_train(cfg, ctx)


def _bptt_rule(cfg: L2LQuadraticPESConfig):
    from learnt import pretrained
    rule = pretrained.load(cfg.bptt_reference, cfg.device)
    if rule.config() != quad.build_rule(cfg).config():
        raise ValueError(f"bptt_reference={cfg.bptt_reference!r} is a {rule.config()} rule; expected the "
                         f"architecture being PES-trained, {quad.build_rule(cfg).config()}")
    return rule


def _val_history(ctx: RunContext) -> list[dict]:
    path = ctx.out / "meta" / "log.jsonl"
    if not path.exists():
        return []
    recs = read_jsonl(path)
    return [{"iteration": r["iteration"] + 1, "val": r["val"], "meta_loss": r["meta_loss"]} for r in recs if "val" in r]


def evaluate(cfg: L2LQuadraticPESConfig, ctx: RunContext, rule):
    fam = quad.family(cfg)
    learned = {"lstm-pes": rule.to(cfg.device)}
    if cfg.bptt_reference:
        learned["lstm-bptt"] = _bptt_rule(cfg)
    tuned = tune_baselines(fam, cfg.baselines, cfg.eval, ctx.seed)
    rows, curves, _ = compare(learned, tuned, fam, cfg.eval, ctx.seed)
    by = {r["method"]: r for r in rows}
    if "lstm-bptt" in by:
        pes, bptt = by["lstm-pes"], by["lstm-bptt"]
        pes["within_bptt_ci95"] = bool(abs(pes["mean"] - bptt["mean"]) <= bptt["ci95"])
        bptt["source"] = f"learnt.pretrained.load({cfg.bptt_reference!r}) (results/l2l-quadratic, BPTT)"
    extra = {"lr_scores": {name: {f"{lr:.4g}": s for lr, s in scores.items()} for name, (_, scores) in tuned.items()},
             "val_history": _val_history(ctx),
             "command": f"learnt reproduce l2l-quadratic-pes --seed {ctx.seed}" + (" --quick" if ctx.budget == "quick" else "")}
    return rows, curves, extra


def plot(results: dict, out: Path) -> list[Path]:
    paths = [loss_curves(results["curves"], out / "loss_vs_step.png", learned=("lstm-pes", "lstm-bptt"),
                         title="10-d quadratics, held-out: PES vs BPTT (mean ± 95% CI)",
                         ylabel="loss f(θ_t)")]
    hist = results.get("val_history") or []
    if hist:
        from learnt.plotting import plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([h["iteration"] for h in hist], [h["val"] for h in hist], marker="o", label="PES (validation)")
        bptt = next((r for r in results["rows"] if r["method"] == "lstm-bptt"), None)
        if bptt is not None:
            ax.axhline(bptt["mean"], color="k", ls="--", label="BPTT rule (test mean)")
        ax.set_yscale("log")
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("mean final loss")
        ax.set_title("PES meta-training progress")
        ax.legend()
        fig.tight_layout()
        path = out / "pes_validation.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def load_trained(cfg: L2LQuadraticPESConfig, path: str):
    return quad.load_trained(cfg, path)


L2L_QUADRATIC_PES = Experiment(
    name="l2l-quadratic-pes",
    description="L2L LSTM meta-trained with PES (no backprop through the unroll) vs the BPTT rule and "
                "tuned baselines on 10-d quadratics (Vicol 2021 estimator, Andrychowicz 2016 setup)",
    config=config, meta_train=meta_train, evaluate=evaluate, plot=plot, load_trained=load_trained,
)
