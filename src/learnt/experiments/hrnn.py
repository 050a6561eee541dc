"""Hierarchical RNN optimizer experiments (Wichrowska et al. 2017).

``hrnn-ensemble``: meta-train on the training ensemble (log-ratio objective, heavy-tailed
truncations), test on held-out problems from the same families.
``hrnn-generalization``: the trained optimizer on problems it never saw (digits MLP with
sigmoid and ReLU, two hidden layers, the digits conv net) for many more steps than it was
trained on. ``hrnn-lr-robustness``: final loss as the initial learning rate sweeps several
decades, against Adam's and RMSprop's learning rate over the same span (the paper's Fig. 5).
All against tuned SGD / RMSprop / Adam and the L2L LSTM (the shipped ``l2l-mlp`` rule).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.compare import BaselineConfig, EvalConfig, compare, meta_train_rule, tune_baselines
from learnt.experiments.plots import loss_panels
from learnt.experiments.results import stat_row
from learnt.functional.rules import make_rule
from learnt.learned import HierarchicalRNN, load_rule
from learnt.meta.evaluate import lr_grid, per_problem, run_on_split
from learnt.meta.trainer import MetaTrainConfig
from learnt.tasks.ensemble import ENSEMBLE_FAMILIES, EnsembleFamily
from learnt.tasks.mlp import ConvFamily, MLPFamily


@dataclass(frozen=True)
class EnsembleConfig:
    names: tuple[str, ...] = tuple(ENSEMBLE_FAMILIES)
    n_problems: int = 8
    p_sum: float = 0.1
    p_log: float = 0.2
    p_rescaled: float = 0.2
    p_sparse: float = 0.2
    p_noisy: float = 0.2


@dataclass(frozen=True)
class HRNNConfig:
    param_hidden: int = 10
    tensor_hidden: int = 20
    global_hidden: int = 20
    n_scales: int = 4
    init_lr: float = 1e-3        # the rate users set at test time
    init_lr_low: float = 1e-6    # meta-training draws initial rates from [low, high]
    init_lr_high: float = 1e-2


def _train_default() -> MetaTrainConfig:
    return MetaTrainConfig(iterations=1000, truncation=20, truncation_sampling="heavy_tailed",
                           truncations_mean=5.0, truncation_extra_mean=20.0, objective="log_ratio",
                           meta_lr=1e-3, clip_norm=1.0, val_every=50, checkpoint_every=25)


@dataclass(frozen=True)
class HRNNEnsembleConfig:
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    optimizer: HRNNConfig = field(default_factory=HRNNConfig)
    train: MetaTrainConfig = field(default_factory=_train_default)
    baselines: BaselineConfig = field(default_factory=lambda: BaselineConfig(methods=("sgd", "rmsprop", "adam")))
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(
        steps=200, val_tasks=8, val_problems=8, test_tasks=24, test_problems=8, metric="log10_ratio"))
    lstm: str = "l2l-mlp"        # shipped L2L rule shown beside the HRNN ("" for none)
    device: str = "cpu"


def ensemble_family(cfg: HRNNEnsembleConfig) -> EnsembleFamily:
    e = cfg.ensemble
    return EnsembleFamily(names=tuple(e.names), n_problems=e.n_problems, p_sum=e.p_sum, p_log=e.p_log,
                          p_rescaled=e.p_rescaled, p_sparse=e.p_sparse, p_noisy=e.p_noisy, gap=True,
                          device=cfg.device)


def build_hrnn(o: HRNNConfig) -> HierarchicalRNN:
    return HierarchicalRNN(o.param_hidden, o.tensor_hidden, o.global_hidden, o.n_scales, o.init_lr,
                           (o.init_lr_low, o.init_lr_high))


def _learned(rule, lstm_name: str, device: str) -> dict:
    out = {"hrnn": rule.to(device).eval()}
    if lstm_name:
        from learnt import pretrained
        out["lstm"] = pretrained.load(lstm_name, device)
    return out


def ensemble_config(budget: str) -> HRNNEnsembleConfig:
    cfg = HRNNEnsembleConfig()
    if budget == "quick":
        cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, iterations=40, val_every=20, truncations_mean=2.0),
            eval=dataclasses.replace(cfg.eval, steps=100, val_tasks=4, test_tasks=8))
    return cfg


def ensemble_meta_train(cfg: HRNNEnsembleConfig, ctx: RunContext) -> HierarchicalRNN:
    return meta_train_rule(build_hrnn(cfg.optimizer).to(cfg.device), ensemble_family(cfg), cfg.train, cfg.eval, ctx)


def ensemble_evaluate(cfg: HRNNEnsembleConfig, ctx: RunContext, rule):
    fam = ensemble_family(cfg)
    tuned = tune_baselines(fam, cfg.baselines, cfg.eval, ctx.seed)
    rows, curves, _ = compare(_learned(rule, cfg.lstm, cfg.device), tuned, fam, cfg.eval, ctx.seed,
                              setting="held-out ensemble")
    return rows, curves, {"curves_by_setting": {"held-out ensemble problems": curves}}


def _plot_panels(results: dict, out: Path, name: str, ylabel: str, logy: bool) -> list[Path]:
    return [loss_panels(results["curves_by_setting"], out / name, learned=("hrnn", "lstm"), ylabel=ylabel, logy=logy)]


HRNN_ENSEMBLE = Experiment(
    name="hrnn-ensemble",
    description="hierarchical RNN optimizer meta-trained on the problem ensemble, held-out problems (Wichrowska 2017)",
    config=ensemble_config, meta_train=ensemble_meta_train, evaluate=ensemble_evaluate,
    plot=lambda res, out: _plot_panels(res, out, "progress_vs_step.png", "mean log10(f_t / f_0)", False),
    load_trained=lambda cfg, path: load_rule(path, expected_kind=HierarchicalRNN.kind),
)


# ------------------------------------------------------------------ generalization
GEN_SETTINGS = {
    "mlp sigmoid": lambda dev: MLPFamily(hidden=(20,), activation="sigmoid", device=dev),
    "mlp relu": lambda dev: MLPFamily(hidden=(20,), activation="relu", device=dev),
    "mlp 2 layers": lambda dev: MLPFamily(hidden=(20, 20), activation="sigmoid", device=dev),
    "conv": lambda dev: ConvFamily(device=dev),
}


@dataclass(frozen=True)
class HRNNGeneralizationConfig:
    source: str = "pretrained"   # "pretrained" (shipped hrnn), "train" (hrnn-ensemble's recipe) or a rule file
    training: HRNNEnsembleConfig = field(default_factory=HRNNEnsembleConfig)
    settings: tuple[str, ...] = tuple(GEN_SETTINGS)
    baselines: BaselineConfig = field(default_factory=lambda: BaselineConfig(methods=("sgd", "rmsprop", "adam")))
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(steps=2400, val_problems=4, test_problems=16))
    lstm: str = "l2l-mlp"
    device: str = "cpu"


def _source(source: str, training: HRNNEnsembleConfig, ctx: RunContext, device: str):
    if source == "pretrained":
        from learnt import pretrained
        return pretrained.load("hrnn", device)
    if source == "train":
        return ensemble_meta_train(dataclasses.replace(training, device=device), ctx)
    return load_rule(source, expected_kind=HierarchicalRNN.kind)


def gen_config(budget: str) -> HRNNGeneralizationConfig:
    cfg = HRNNGeneralizationConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, steps=200, test_problems=8),
                                  training=ensemble_config("quick"))
    return cfg


def gen_evaluate(cfg: HRNNGeneralizationConfig, ctx: RunContext, rule):
    unknown = set(cfg.settings) - set(GEN_SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; expected some of {list(GEN_SETTINGS)}")
    rows, panels = [], {}
    for setting in cfg.settings:
        fam = GEN_SETTINGS[setting](cfg.device)
        tuned = tune_baselines(fam, cfg.baselines, cfg.eval, ctx.seed)
        r, curves, _ = compare(_learned(rule, cfg.lstm, cfg.device), tuned, fam, cfg.eval, ctx.seed,
                               setting=setting, metrics_split="test")
        rows += r
        panels[setting] = curves
    return rows, panels[cfg.settings[0]], {"curves_by_setting": panels}


HRNN_GENERALIZATION = Experiment(
    name="hrnn-generalization",
    description="the ensemble-trained HRNN on digits MLPs (sigmoid, ReLU, 2 layers) and a conv net, long runs",
    config=gen_config, meta_train=lambda cfg, ctx: _source(cfg.source, cfg.training, ctx, cfg.device),
    evaluate=gen_evaluate,
    plot=lambda res, out: _plot_panels(res, out, "generalization.png", "training loss (minibatch)", True),
    load_trained=lambda cfg, path: load_rule(path, expected_kind=HierarchicalRNN.kind),
)


# ------------------------------------------------------------------ learning-rate robustness
@dataclass(frozen=True)
class LRRobustnessConfig:
    source: str = "pretrained"
    training: HRNNEnsembleConfig = field(default_factory=HRNNEnsembleConfig)
    problem: str = "mlp sigmoid"
    lr_low: float = 1e-5
    lr_high: float = 1e-1
    per_decade: int = 2
    methods: tuple[str, ...] = ("rmsprop", "adam")
    steps: int = 500
    test_problems: int = 16
    device: str = "cpu"


def lr_config(budget: str) -> LRRobustnessConfig:
    cfg = LRRobustnessConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, steps=100, test_problems=8, training=ensemble_config("quick"))
    return cfg


def lr_evaluate(cfg: LRRobustnessConfig, ctx: RunContext, rule):
    if cfg.problem not in GEN_SETTINGS:
        raise ValueError(f"problem={cfg.problem!r}; expected one of {list(GEN_SETTINGS)}")
    if math.log10(cfg.lr_high / cfg.lr_low) < 4 - 1e-9:
        raise ValueError(f"lr_low={cfg.lr_low}, lr_high={cfg.lr_high} span less than 4 decades")
    fam = GEN_SETTINGS[cfg.problem](cfg.device)
    grid = lr_grid(cfg.lr_low, cfg.lr_high, cfg.per_decade)
    rows, sweep = [], {}
    for method in ("hrnn", *cfg.methods):
        finals = []
        for lr in grid:
            if method == "hrnn":
                r = copy.deepcopy(rule).to(cfg.device).eval()
                r.init_lr = lr
            else:
                r = make_rule(method, lr)
            curves = run_on_split(r, fam, "test", n_tasks=1, n_problems=cfg.test_problems, steps=cfg.steps,
                                  seed=ctx.seed)
            vals = per_problem(curves, "final_loss")
            finals.append(float(np.mean(vals)))
            rows.append(stat_row(method, cfg.problem, "final_loss", vals, lr=lr, step=cfg.steps))
        finite = [f for f in finals if math.isfinite(f)]
        worst = max(finals) if finite else math.inf
        ratio = worst / min(finite) if finite else math.inf
        best_i = int(np.argmin([f if math.isfinite(f) else math.inf for f in finals]))
        rows.append({"method": method, "setting": cfg.problem, "metric": "worst_to_best_ratio", "mean": ratio,
                     "ci95": math.nan, "n": len(grid), "lr_span": [cfg.lr_low, cfg.lr_high],
                     "best": finals[best_i], "best_lr": grid[best_i], "worst": worst,
                     "worst_lr": grid[int(np.argmax(finals))]})
        sweep[method] = {"lr": grid, "final_loss": finals}
    return rows, {}, {"sweep": sweep}


def lr_plot(results: dict, out: Path) -> list[Path]:
    from learnt.plotting import plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for method, s in results["sweep"].items():
        y = np.array([np.inf if v in ("inf", None) else v for v in s["final_loss"]], dtype=float)
        ok = np.isfinite(y)
        ax.plot(np.array(s["lr"])[ok], y[ok], "-o" if method == "hrnn" else "--o", lw=2 if method == "hrnn" else 1.3,
                label=method + (" (initial lr)" if method == "hrnn" else " (lr)"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final training loss")
    ax.set_title(f"learning-rate robustness: {results['config']['problem']}, {results['config']['steps']} steps")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "lr_robustness.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]


HRNN_LR_ROBUSTNESS = Experiment(
    name="hrnn-lr-robustness",
    description="final loss vs initial learning rate over 4 decades: HRNN vs Adam and RMSprop (Wichrowska 2017, Fig. 5)",
    config=lr_config, meta_train=lambda cfg, ctx: _source(cfg.source, cfg.training, ctx, cfg.device),
    evaluate=lr_evaluate, plot=lr_plot,
    load_trained=lambda cfg, path: load_rule(path, expected_kind=HierarchicalRNN.kind),
)
