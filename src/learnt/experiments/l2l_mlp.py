"""L2L on neural-network optimizees (Andrychowicz et al. 2016, Fig. 4 centre/right, Fig. 5).

``l2l-mlp``: the LSTM meta-trained on a 64-20-10 sigmoid MLP on digits for 100 steps,
tested on 100-step runs and on 200-step runs (beyond its training horizon).
``l2l-generalization``: that optimizer, unchanged, on 40 hidden units, 2 hidden layers and
ReLU. ``l2l-conv``: the two-LSTM optimizer on a small conv net with batch norm.
Every comparison is against SGD / NAG / RMSprop / Adam with learning rates tuned on
validation problems for the same horizon, on the same test problems (paired seeds).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.compare import BaselineConfig, EvalConfig, compare, meta_train_rule, tune_baselines
from learnt.experiments.l2l_quadratic import L2LConfig
from learnt.experiments.plots import loss_panels
from learnt.learned import L2LOptimizer, PartitionedRule, load_rule
from learnt.meta.trainer import MetaTrainConfig
from learnt.tasks.mlp import ConvFamily, MLPFamily


@dataclass(frozen=True)
class MLPTaskConfig:
    hidden: tuple[int, ...] = (20,)
    activation: str = "sigmoid"
    n_problems: int = 1          # K problems stepped together per meta-iteration
    batch_size: int = 128
    dataset: str = "digits"      # or "mnist" with data_path
    data_path: str = ""


@dataclass(frozen=True)
class L2LMLPConfig:
    task: MLPTaskConfig = field(default_factory=MLPTaskConfig)
    optimizer: L2LConfig = field(default_factory=L2LConfig)
    train: MetaTrainConfig = field(default_factory=lambda: MetaTrainConfig(iterations=3000, val_every=50))
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(val_problems=32, test_problems=100))
    long_steps: int = 200
    device: str = "cpu"


def mlp_family(t: MLPTaskConfig, device: str, **changes) -> MLPFamily:
    fields = {**dataclasses.asdict(t), **changes}
    fields["hidden"] = tuple(fields["hidden"])
    return MLPFamily(**fields, device=device)


def _quick(cfg):
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, iterations=150, val_every=25),
        eval=dataclasses.replace(cfg.eval, val_problems=16, test_problems=40))


def _two_horizons(learned: dict, fam, cfg, ctx, label: str = ""):
    rows, panels = [], {}
    for steps in (cfg.eval.steps, cfg.long_steps):
        setting = f"{label}{steps} steps"
        tuned = tune_baselines(fam, cfg.baselines, cfg.eval, ctx.seed, steps=steps)
        r, curves, _ = compare(learned, tuned, fam, cfg.eval, ctx.seed, setting=setting, steps=steps,
                               metrics_split="test")
        rows += r
        panels[setting] = curves
    return rows, panels


# ------------------------------------------------------------------ l2l-mlp
def mlp_config(budget: str) -> L2LMLPConfig:
    return _quick(L2LMLPConfig()) if budget == "quick" else L2LMLPConfig()


def mlp_meta_train(cfg: L2LMLPConfig, ctx: RunContext) -> L2LOptimizer:
    rule = L2LOptimizer(**dataclasses.asdict(cfg.optimizer)).to(cfg.device)
    return meta_train_rule(rule, mlp_family(cfg.task, cfg.device), cfg.train, cfg.eval, ctx,
                           val_family=mlp_family(cfg.task, cfg.device, n_problems=1))


def mlp_evaluate(cfg: L2LMLPConfig, ctx: RunContext, rule):
    fam = mlp_family(cfg.task, cfg.device, n_problems=1)
    rows, panels = _two_horizons({"lstm": rule.to(cfg.device)}, fam, cfg, ctx)
    first = next(iter(panels))
    return rows, panels[first], {"curves_by_setting": panels}


def panels_plot(results: dict, out: Path, name: str, learned=("lstm",)) -> list[Path]:
    return [loss_panels(results["curves_by_setting"], out / name, learned=learned,
                        ylabel="training loss (minibatch)")]


L2L_MLP = Experiment(
    name="l2l-mlp",
    description="L2L LSTM on a 64-20-10 sigmoid MLP on digits, 100 and 200 steps (Andrychowicz 2016, Fig. 4)",
    config=mlp_config, meta_train=mlp_meta_train, evaluate=mlp_evaluate,
    plot=lambda res, out: panels_plot(res, out, "loss_vs_step.png"),
    load_trained=lambda cfg, path: load_rule(path, expected_kind=L2LOptimizer.kind),
)


# ------------------------------------------------------------------ l2l-generalization
@dataclass(frozen=True)
class GeneralizationConfig:
    base: L2LMLPConfig = field(default_factory=L2LMLPConfig)
    source: str = "pretrained"   # "pretrained" (the shipped l2l-mlp rule), "train", or a rule file path
    settings: tuple[str, ...] = ("base", "40 units", "2 layers", "relu")
    device: str = "cpu"


SETTINGS = {"base": {}, "40 units": {"hidden": (40,)}, "2 layers": {"hidden": (20, 20)},
            "relu": {"activation": "relu"}}


def gen_config(budget: str) -> GeneralizationConfig:
    cfg = GeneralizationConfig()
    return dataclasses.replace(cfg, base=_quick(cfg.base)) if budget == "quick" else cfg


def gen_meta_train(cfg: GeneralizationConfig, ctx: RunContext):
    unknown = set(cfg.settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown generalization settings {sorted(unknown)}; expected some of {list(SETTINGS)}")
    if cfg.source == "pretrained":
        from learnt import pretrained
        return pretrained.load("l2l-mlp", cfg.device)
    if cfg.source == "train":
        return mlp_meta_train(dataclasses.replace(cfg.base, device=cfg.device), ctx)
    return load_rule(cfg.source, expected_kind=L2LOptimizer.kind)


def gen_evaluate(cfg: GeneralizationConfig, ctx: RunContext, rule):
    base = dataclasses.replace(cfg.base, device=cfg.device)
    rows, panels = [], {}
    for setting in cfg.settings:
        fam = mlp_family(base.task, cfg.device, n_problems=1, **SETTINGS[setting])
        tuned = tune_baselines(fam, base.baselines, base.eval, ctx.seed, steps=base.eval.steps)
        r, curves, _ = compare({"lstm": rule.to(cfg.device)}, tuned, fam, base.eval, ctx.seed,
                               setting=setting, steps=base.eval.steps, metrics_split="test")
        rows += r
        panels[setting] = curves
    return rows, panels[cfg.settings[0]], {"curves_by_setting": panels}


L2L_GENERALIZATION = Experiment(
    name="l2l-generalization",
    description="the l2l-mlp optimizer, unchanged, on 40 units / 2 layers / ReLU (Andrychowicz 2016, Fig. 5)",
    config=gen_config, meta_train=gen_meta_train, evaluate=gen_evaluate,
    plot=lambda res, out: panels_plot(res, out, "generalization.png"),
    load_trained=lambda cfg, path: load_rule(path, expected_kind=L2LOptimizer.kind),
)


# ------------------------------------------------------------------ l2l-conv
@dataclass(frozen=True)
class ConvTaskConfig:
    channels: tuple[int, ...] = (16, 16, 16)
    fc_hidden: int = 32
    n_problems: int = 1
    batch_size: int = 128
    dataset: str = "digits"
    data_path: str = ""


@dataclass(frozen=True)
class L2LConvConfig:
    task: ConvTaskConfig = field(default_factory=ConvTaskConfig)
    optimizer: L2LConfig = field(default_factory=L2LConfig)
    train: MetaTrainConfig = field(default_factory=lambda: MetaTrainConfig(iterations=1000, val_every=50))
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(val_problems=16, test_problems=50))
    long_steps: int = 200
    device: str = "cpu"


def conv_family(t: ConvTaskConfig, device: str, **changes) -> ConvFamily:
    fields = {**dataclasses.asdict(t), **changes}
    fields["channels"] = tuple(fields["channels"])
    return ConvFamily(**fields, device=device)


def conv_config(budget: str) -> L2LConvConfig:
    cfg = L2LConvConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=60, val_every=20),
                                  eval=dataclasses.replace(cfg.eval, val_problems=8, test_problems=20))
    return cfg


def conv_meta_train(cfg: L2LConvConfig, ctx: RunContext) -> PartitionedRule:
    rule = PartitionedRule.two_lstm(**dataclasses.asdict(cfg.optimizer)).to(cfg.device)
    return meta_train_rule(rule, conv_family(cfg.task, cfg.device), cfg.train, cfg.eval, ctx,
                           val_family=conv_family(cfg.task, cfg.device, n_problems=1))


def conv_evaluate(cfg: L2LConvConfig, ctx: RunContext, rule):
    fam = conv_family(cfg.task, cfg.device, n_problems=1)
    rows, panels = _two_horizons({"lstm-2": rule.to(cfg.device)}, fam, cfg, ctx)
    first = next(iter(panels))
    return rows, panels[first], {"curves_by_setting": panels}


L2L_CONV = Experiment(
    name="l2l-conv",
    description="two-LSTM optimizer (conv / fc) on a conv net with batch norm on digits (Andrychowicz 2016, Fig. 7)",
    config=conv_config, meta_train=conv_meta_train, evaluate=conv_evaluate,
    plot=lambda res, out: panels_plot(res, out, "loss_vs_step.png", learned=("lstm-2",)),
    load_trained=lambda cfg, path: load_rule(path, expected_kind=PartitionedRule.kind),
)
