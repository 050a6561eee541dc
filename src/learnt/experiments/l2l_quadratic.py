"""``l2l-quadratic``: Andrychowicz et al. (2016), Fig. 4 left.

A coordinatewise LSTM meta-trained on random 10-d quadratics ||W theta - y||^2 (100-step
runs, 20-step truncations), against SGD, NAG, RMSprop and Adam with learning rates tuned on
validation quadratics, on 100 held-out test quadratics with paired seeds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.compare import BaselineConfig, EvalConfig, compare, meta_train_rule, tune_baselines
from learnt.experiments.plots import loss_curves
from learnt.learned.lstm import L2LOptimizer
from learnt.learned.serialization import load_rule
from learnt.meta.trainer import MetaTrainConfig
from learnt.tasks.quadratic import QuadraticFamily


@dataclass(frozen=True)
class QuadraticTaskConfig:
    dim: int = 10
    n_problems: int = 128
    distribution: str = "gaussian"
    init_std: float = 0.01


@dataclass(frozen=True)
class L2LConfig:
    hidden_size: int = 20
    num_layers: int = 2
    preproc_p: float = 10.0
    output_scale: float = 0.1


@dataclass(frozen=True)
class L2LQuadraticConfig:
    task: QuadraticTaskConfig = field(default_factory=QuadraticTaskConfig)
    optimizer: L2LConfig = field(default_factory=L2LConfig)
    train: MetaTrainConfig = field(default_factory=lambda: MetaTrainConfig(iterations=3000, val_every=50))
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: str = "cpu"


def config(budget: str) -> L2LQuadraticConfig:
    cfg = L2LQuadraticConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=150, val_every=25))
    return cfg


def family(cfg: L2LQuadraticConfig) -> QuadraticFamily:
    t = cfg.task
    return QuadraticFamily(t.dim, t.n_problems, t.distribution, t.init_std, cfg.device)


def build_rule(cfg: L2LQuadraticConfig) -> L2LOptimizer:
    return L2LOptimizer(**dataclasses.asdict(cfg.optimizer))


def meta_train(cfg: L2LQuadraticConfig, ctx: RunContext) -> L2LOptimizer:
    return meta_train_rule(build_rule(cfg).to(cfg.device), family(cfg), cfg.train, cfg.eval, ctx)


def evaluate(cfg: L2LQuadraticConfig, ctx: RunContext, rule):
    fam = family(cfg)
    rule = rule.to(cfg.device)
    tuned = tune_baselines(fam, cfg.baselines, cfg.eval, ctx.seed)
    rows, curves, _ = compare({"lstm": rule}, tuned, fam, cfg.eval, ctx.seed)
    extra = {"lr_scores": {name: {f"{lr:.4g}": s for lr, s in scores.items()} for name, (_, scores) in tuned.items()}}
    return rows, curves, extra


def plot(results: dict, out: Path) -> list[Path]:
    return [loss_curves(results["curves"], out / "loss_vs_step.png", learned=("lstm",),
                        title="10-d quadratics, held-out (mean ± 95% CI)", ylabel="loss f(θ_t)")]


def load_trained(cfg: L2LQuadraticConfig, path: str):
    return load_rule(path, expected_kind=L2LOptimizer.kind)


EXPERIMENT = Experiment(
    name="l2l-quadratic",
    description="L2L LSTM vs tuned SGD/NAG/RMSprop/Adam on 10-d quadratics (Andrychowicz 2016, Fig. 4 left)",
    config=config, meta_train=meta_train, evaluate=evaluate, plot=plot, load_trained=load_trained,
)
