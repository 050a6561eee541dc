"""Black-box optimization experiments (Chen et al. 2017, Fig. 3 and the HPO study).

- ``blackbox-gp``: meta-train one proposer per loss (sum, EI, OI) on GP-prior functions of
  d = 1..9, evaluate on held-out GP functions of d = 1, 3, 6, 9;
- ``blackbox-benchmarks``: the shipped proposers on randomly perturbed Branin,
  Goldstein-Price, Hartmann3 and Hartmann6;
- ``blackbox-hpo``: Optuna studies tuning a digits MLP (learning rate, width, weight decay,
  batch size) with :class:`~learnt.blackbox.LearnedSampler` against Optuna's samplers.

Baselines are Optuna's RandomSampler, TPESampler, GPSampler and CmaEsSampler, run with the
same functions and the study seed = the function index. Metric: simple regret (best value
found minus the minimum) after n evaluations, mean ± 95% CI and median over the seeds, and
the wall time each sampler spends per suggestion (1 thread).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import torch

from learnt.blackbox import (
    AcquisitionProposer, AcquisitionTrainConfig, train_acquisition,
    BenchmarkFamily, BlackBoxTrainConfig, LearnedSampler, LSTMProposer, SetProposer, load_pretrained,
    load_proposer, pretrained_proposers, train_proposer,
)
from learnt.errors import ConfigError
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.results import stat_row
from learnt.meta.stats import mean_ci95, paired_wilcoxon_less
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

BASELINES = ("random", "tpe", "gp", "cmaes")


@dataclass(frozen=True)
class ProposerConfig:
    """The proposer to meta-train: ``arch`` "lstm" (Chen et al.'s LSTM, ``hidden`` wide) or
    "set" (:class:`~learnt.blackbox.set_proposer.SetProposer`, tokens ``hidden`` wide with
    ``heads`` attention heads and ``fourier`` random Fourier features of the locations);
    ``layers`` LSTM layers or transformer blocks."""

    max_dim: int = 10
    hidden: int = 64
    layers: int = 2
    incumbent: bool = True
    arch: str = "lstm"
    heads: int = 4
    fourier: int = 0          # set proposer: random Fourier features of the locations (0: none)

    def __post_init__(self) -> None:
        if self.arch not in ("lstm", "set"):
            raise ConfigError(f"proposer.arch={self.arch!r}; expected 'lstm' or 'set'")
        if self.arch == "set" and not self.incumbent:
            raise ConfigError("proposer.incumbent=False with arch='set'; the set proposer always uses the incumbent head")

    def build(self):
        if self.arch == "set":
            return SetProposer(max_dim=self.max_dim, width=self.hidden, heads=self.heads, layers=self.layers,
                               fourier=self.fourier)
        return LSTMProposer(max_dim=self.max_dim, hidden=self.hidden, layers=self.layers, incumbent=self.incumbent)


@dataclass(frozen=True)
class SuiteConfig:
    """How methods are compared on a set of functions."""

    n_seeds: int = 30                       # functions (= study seeds) per setting
    evals: int = 100
    report_at: tuple[int, ...] = (10, 20, 50, 100)
    baselines: tuple[str, ...] = BASELINES
    gp_evals: int = 100                     # Optuna's GPSampler is by far the slowest baseline
    timing_seeds: int = 3                   # LearnedSampler studies timed through Optuna per setting
    timing_window: int = 10                 # per-suggestion time at n = mean over the last 10 trials

    def __post_init__(self) -> None:
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ConfigError(f"baselines={self.baselines!r}; unknown {sorted(unknown)}, expected some of {BASELINES}")
        if self.n_seeds < 2 or self.evals < 1 or not self.report_at or max(self.report_at) > self.evals:
            raise ConfigError(f"n_seeds={self.n_seeds}, evals={self.evals}, report_at={self.report_at}; "
                              f"expected n_seeds >= 2 and report points within 1..evals")


ACQ = "acq"   # the name of the learned acquisition proposer among the ``losses`` (trained by regression)
ACQ_HORIZON = 200


@dataclass(frozen=True)
class BlackBoxGPConfig:
    """``losses``: the LSTM proposers to meta-train (one per Chen et al. loss) and ``"acq"``, the
    learned acquisition proposer (:mod:`learnt.blackbox.acquisition`, trained with ``acq``)."""

    proposer: ProposerConfig = field(default_factory=ProposerConfig)
    train: BlackBoxTrainConfig = field(default_factory=BlackBoxTrainConfig)
    losses: tuple[str, ...] = ("oi", "ei", "sum", ACQ)
    acq: AcquisitionTrainConfig = field(default_factory=lambda: AcquisitionTrainConfig(iterations=600, val_every=150))
    dims: tuple[int, ...] = (1, 3, 6, 9)
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    device: str = "cpu"


@dataclass(frozen=True)
class BlackBoxBenchmarksConfig:
    functions: tuple[str, ...] = ("branin", "goldstein_price", "hartmann3", "hartmann6")
    losses: tuple[str, ...] = ("sum", "ei", "oi", ACQ)
    translate: float = 0.1
    scale_range: tuple[float, float] = (0.5, 2.0)
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    device: str = "cpu"


@dataclass(frozen=True)
class BlackBoxHPOConfig:
    losses: tuple[str, ...] = ("ei", ACQ)
    epochs: int = 4
    suite: SuiteConfig = field(default_factory=lambda: SuiteConfig(evals=50, report_at=(10, 20, 50), gp_evals=50))
    device: str = "cpu"


# --------------------------------------------------------------------------- Optuna runs
class TimedSampler(optuna.samplers.BaseSampler):
    """Wraps an Optuna sampler and adds up, per trial, the wall time spent inside it."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = defaultdict(float)

    def _timed(self, trial, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        self.seconds[trial.number] += time.perf_counter() - t0
        return out

    def infer_relative_search_space(self, study, trial):
        return self._timed(trial, self.inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, space):
        return self._timed(trial, self.inner.sample_relative, study, trial, space)

    def sample_independent(self, study, trial, name, dist):
        return self._timed(trial, self.inner.sample_independent, study, trial, name, dist)

    def before_trial(self, study, trial):
        return self._timed(trial, self.inner.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):
        return self._timed(trial, self.inner.after_trial, study, trial, state, values)

    def reseed_rng(self):
        self.inner.reseed_rng()


def make_sampler(method: str, seed: int, models: dict[str, LSTMProposer]):
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if method.startswith("learned-"):
        return LearnedSampler(models[method[len("learned-"):]], seed=seed)
    raise ConfigError(f"method={method!r}; expected one of {BASELINES} or learned-<loss> (learned-acq)")


def run_study(method: str, objective: Callable, n_trials: int, seed: int, models: dict | None = None,
              direction: str = "minimize") -> tuple[np.ndarray, np.ndarray]:
    """One Optuna study; returns the objective values (n_trials,) and seconds per suggestion (n_trials,)."""
    sampler = TimedSampler(make_sampler(method, seed, models or {}))
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # thousands of studies: no per-trial lines
    try:
        study = optuna.create_study(sampler=sampler, direction=direction)
        study.optimize(objective, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(previous)            # the caller's setting, as it was
    trials = sorted(study.trials, key=lambda t: t.number)
    vals = np.array([t.value if t.value is not None else np.nan for t in trials], dtype=np.float64)
    secs = np.array([sampler.seconds[t.number] for t in trials], dtype=np.float64)
    return vals, secs


def run_method(method: str, objective: Callable[[int], Callable], n_seeds: int, suite: SuiteConfig,
               models: dict | None = None, progress: bool = False, desc: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``n_seeds`` studies of one method (study i optimises ``objective(i)`` with seed i):
    values (n_seeds, suite.evals), NaN past the method's budget, and seconds per suggestion."""
    budget = suite.gp_evals if method == "gp" else suite.evals
    runs = [run_study(method, objective(i), budget, i, models) for i in _bar(range(n_seeds), progress, f"{desc} {method}")]
    values = np.full((n_seeds, suite.evals), np.nan)
    values[:, :budget] = np.stack([r[0] for r in runs])
    return values, np.stack([r[1] for r in runs])


def cube_objective(fns, k: int, dim: int) -> Callable:
    """Optuna objective for function ``k`` of a batch on [0, 1]^d (parameters x0..x{d-1})."""
    width = len(str(dim - 1))

    def objective(trial) -> float:
        x = torch.zeros(fns.n_functions, dim, dtype=torch.float64)
        x[k] = torch.tensor([trial.suggest_float(f"x{i:0{width}d}", 0.0, 1.0) for i in range(dim)],
                            dtype=torch.float64)
        with torch.no_grad():
            return float(fns(x.to(_dtype(fns)))[k])
    return objective


def _dtype(fns) -> torch.dtype:
    t = getattr(fns, "omega", None)
    return t.dtype if t is not None else fns.scale.dtype


# --------------------------------------------------------------------------- one suite
def evaluate_setting(setting: str, fns, dim: int, min_value: torch.Tensor | None, models: dict[str, LSTMProposer],
                     suite: SuiteConfig, progress: bool = False) -> tuple[list, dict, dict]:
    """All methods on the K functions ``fns``; rows (regret at each report point, time per
    suggestion), regret curves and raw values."""
    k, n = fns.n_functions, suite.evals
    values: dict[str, np.ndarray] = {}
    seconds: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for loss, m in models.items():
            values[f"learned-{loss}"] = m.rollout(fns, dim, n).y.double().numpy()
    for loss, m in models.items():  # time the real Optuna path of each learned sampler
        secs = [run_study(f"learned-{loss}", cube_objective(fns, i, dim), n, i, models)[1]
                for i in range(min(suite.timing_seeds, k))]
        seconds[f"learned-{loss}"] = np.stack(secs)
    for method in suite.baselines:
        values[method], seconds[method] = run_method(method, lambda i: cube_objective(fns, i, dim), k, suite,
                                                     models, progress, setting)
    found = np.nanmin(np.stack([np.nanmin(v, axis=1) for v in values.values()]), axis=0)  # (K,)
    if min_value is None:
        true_min = found
    else:
        true_min = np.minimum(min_value.double().numpy(), found)
    rows, curves = summarise(setting, values, seconds, true_min, suite)
    return rows, curves, {"true_min": true_min.tolist()}


def summarise(setting: str, values: dict[str, np.ndarray], seconds: dict[str, np.ndarray], true_min: np.ndarray,
              suite: SuiteConfig, absolute: str | None = None) -> tuple[list, dict]:
    """Rows (regret at each report point, with paired p-values for learned methods; the
    per-suggestion time over the last ``timing_window`` trials) and regret curves, from each
    method's objective values (K, n) and seconds per suggestion. With ``absolute``, also a
    row of the best value itself (regret + ``true_min``) under that metric name."""
    n = suite.evals
    best = {m: _regret(v, true_min, suite.gp_evals if m == "gp" else n) for m, v in values.items()}
    rows, curves = [], {}
    for method, reg in best.items():
        for at in suite.report_at:
            col = reg[:, at - 1]
            if np.isnan(col).any():
                continue
            extra = {}
            if method.startswith("learned-"):
                extra["p_vs"] = {b: paired_wilcoxon_less(col, best[b][:, at - 1]) for b in suite.baselines
                                 if not np.isnan(best[b][:, at - 1]).any()}
            rows.append(stat_row(method, setting, f"regret@{at}", col, **extra))
            if absolute:
                rows.append(stat_row(method, setting, f"{absolute}@{at}", col + true_min))
        secs = seconds[method]
        t = secs.shape[1]
        w = min(suite.timing_window, t)
        rows.append(stat_row(method, setting, f"suggest_ms@{t}", 1e3 * secs[:, t - w:].mean(axis=1)))
        ok = ~np.isnan(reg).any(axis=0)
        means, cis = zip(*[mean_ci95(reg[:, j])[:2] for j in range(n) if ok[j]]) if ok.any() else ((), ())
        curves[method] = {"step": [j + 1 for j in range(n) if ok[j]], "mean": list(means), "ci95": list(cis)}
    return rows, curves


def _regret(values: np.ndarray, true_min: np.ndarray, budget: int) -> np.ndarray:
    """Simple regret after each evaluation (K, n); NaN after a method's budget. Failed trials (NaN) count as no progress."""
    reg = np.fmin.accumulate(values, axis=1) - true_min[:, None]
    reg[:, budget:] = np.nan
    return reg


def _bar(it, progress: bool, desc: str):
    if not progress:
        return it
    from tqdm.auto import tqdm
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)


def _regret_plot(results: dict, path: Path, title: str) -> Path:
    from learnt.plotting import plt
    panels = results["curves"]
    n = len(panels)
    cols = min(n, 4)
    rows_ = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.4 * cols, 3.6 * rows_), dpi=110, squeeze=False)
    for ax, (setting, curves) in zip(axes.ravel(), panels.items()):
        for name, c in curves.items():
            step, mean, ci = (np.asarray(c[k], dtype=float) for k in ("step", "mean", "ci95"))
            if not len(step):
                continue
            learned = name.startswith("learned-")
            (line,) = ax.plot(step, mean, "-" if learned else "--", lw=2.0 if learned else 1.3, label=name)
            ax.fill_between(step, mean - ci, mean + ci, color=line.get_color(), alpha=0.12, lw=0)
        ax.set_title(setting)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("simple regret")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- blackbox-gp
def gp_config(budget: str) -> BlackBoxGPConfig:
    cfg = BlackBoxGPConfig(train=BlackBoxTrainConfig(iterations=400, functions_per_dim=8, meta_lr=5e-3,
                                                     curriculum_fraction=0.5, parallel=(1, 1, 1, 1, 2),
                                                     val_every=25, checkpoint_every=25),
                           suite=SuiteConfig(gp_evals=50))
    if budget == "quick":
        cfg = dataclasses.replace(
            cfg, proposer=ProposerConfig(hidden=32),
            train=dataclasses.replace(cfg.train, iterations=40, horizon_end=20, functions_per_dim=4, val_every=20,
                                      val_functions_per_dim=8, val_horizons=(10, 20)),
            dims=(1, 3, 6), suite=SuiteConfig(n_seeds=6, evals=20, report_at=(10, 20), gp_evals=12, timing_seeds=1),
            acq=AcquisitionTrainConfig(iterations=6, dims=(1, 3, 6), functions_per_dim=2, max_history=20, val_every=3,
                                       checkpoint_every=3, val_functions_per_dim=2, val_horizons=(10, 20)))
    return cfg


def gp_meta_train(cfg: BlackBoxGPConfig, ctx: RunContext) -> dict[str, LSTMProposer]:
    models = {}
    for loss in cfg.losses:
        if loss == ACQ:
            models[ACQ] = _train_acq(cfg, ctx)
            continue
        # one initialisation per loss (seeding by len(loss) gave "oi" and "ei" the same weights)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(ctx.seed, "train", 0, *map(ord, loss)))
            model = cfg.proposer.build().to(cfg.device)
        out = ctx.out / f"meta-{loss}"
        resume = ctx.resume and (out / "checkpoint.pt").exists()
        res = train_proposer(model, dataclasses.replace(cfg.train, loss=loss), seed=ctx.seed, out_dir=out,
                             progress=ctx.progress, resume=resume)
        log.info("proposer %s: best validation %.4f at iteration %d", loss, res.best_score, res.best_iteration)
        model.meta = {"horizon": cfg.train.horizon_end, "loss": loss}
        models[loss] = model.cpu().eval()
    return models


def _train_acq(cfg: BlackBoxGPConfig, ctx: RunContext) -> AcquisitionProposer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(ctx.seed, "train", 0, *map(ord, ACQ)))
        model = AcquisitionProposer(max_dim=cfg.proposer.max_dim)
    out = ctx.out / f"meta-{ACQ}"
    resume = ctx.resume and (out / "checkpoint.pt").exists()
    res = train_acquisition(model, cfg.acq, seed=ctx.seed, out_dir=out, progress=ctx.progress, resume=resume)
    log.info("proposer %s: best validation %.4f at iteration %d", ACQ, res.best_score, res.best_iteration)
    model.meta = {"horizon": ACQ_HORIZON, "loss": ACQ, "best_iteration": res.best_iteration}
    return model.eval()


def gp_evaluate(cfg: BlackBoxGPConfig, ctx: RunContext, models: dict[str, LSTMProposer]):
    rows, curves, extra = [], {}, {"true_min": {}}
    for d in cfg.dims:
        prior = cfg.train.prior
        fns = prior.family(d, cfg.suite.n_seeds).sample(make_generator(ctx.seed, "test", d))
        approx = fns.approx_min(8192, g=make_generator(ctx.seed, "test", d, 1), n_starts=16, n_steps=100)
        setting = f"gp-d{d}"
        r, c, e = evaluate_setting(setting, fns, d, approx, models, cfg.suite, ctx.progress)
        rows += r
        curves[setting] = c
        extra["true_min"][setting] = e["true_min"]
    return rows, curves, extra


def gp_plot(results: dict, out: Path) -> list[Path]:
    return [_regret_plot(results, out / "regret_vs_evals.png",
                         "Held-out GP functions: best observed regret vs evaluations (mean ± 95% CI)")]


def load_models(cfg: Any, path: str) -> dict[str, LSTMProposer]:
    """A proposer file, or a ``blackbox-gp`` output folder with ``meta-<loss>/best.pt`` files."""
    p = Path(path)
    if p.is_dir():
        found = {q.parent.name[len("meta-"):]: load_proposer(q) for q in sorted(p.glob("meta-*/best.pt"))}
        if not found:
            raise ConfigError(f"--checkpoint {path!r}: no meta-<loss>/best.pt files in this folder")
        return found
    m = load_proposer(p)
    return {m.meta.get("loss", "custom"): m}


def shipped_models(cfg: Any, ctx: RunContext | None = None) -> dict[str, LSTMProposer]:
    have = pretrained_proposers()
    missing = [loss for loss in cfg.losses if loss not in have]
    if missing:
        raise ConfigError(f"no shipped proposer for losses {missing}; shipped: {have} "
                          f"(train them with `learnt reproduce blackbox-gp`, or pass --checkpoint)")
    return {loss: load_pretrained(loss) for loss in cfg.losses}


# --------------------------------------------------------------------------- blackbox-benchmarks
def bench_config(budget: str) -> BlackBoxBenchmarksConfig:
    cfg = BlackBoxBenchmarksConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, functions=("branin", "hartmann3"),
                                  suite=SuiteConfig(n_seeds=6, evals=20, report_at=(10, 20), gp_evals=12, timing_seeds=1))
    return cfg


def bench_evaluate(cfg: BlackBoxBenchmarksConfig, ctx: RunContext, models: dict[str, LSTMProposer]):
    rows, curves, extra = [], {}, {"true_min": {}}
    for i, name in enumerate(cfg.functions):
        fam = BenchmarkFamily(name, n_functions=cfg.suite.n_seeds, translate=cfg.translate,
                              scale_range=cfg.scale_range)
        fns = fam.sample(make_generator(ctx.seed, "test", i))
        r, c, e = evaluate_setting(name, fns, fns.dim, fns.min_value, models, cfg.suite, ctx.progress)
        rows += r
        curves[name] = c
        extra["true_min"][name] = e["true_min"]
    return rows, curves, extra


def bench_plot(results: dict, out: Path) -> list[Path]:
    return [_regret_plot(results, out / "regret_vs_evals.png",
                         "Perturbed benchmarks: best observed regret vs evaluations (mean ± 95% CI)")]


# --------------------------------------------------------------------------- blackbox-hpo
def hpo_config(budget: str) -> BlackBoxHPOConfig:
    cfg = BlackBoxHPOConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, epochs=1, suite=SuiteConfig(n_seeds=3, evals=12, report_at=(10, 12),
                                                                   gp_evals=12, timing_seeds=1))
    return cfg


class DigitsMLPObjective:
    """Validation error of a one-hidden-layer MLP on scikit-learn digits, trained with SGD +
    momentum for ``epochs`` epochs; tunes learning rate, width, weight decay, batch size."""

    def __init__(self, seed: int, epochs: int, device: str = "cpu") -> None:
        from learnt.tasks.datasets import load_digits
        data = load_digits()
        self.train_x, self.train_y = data.x_train.flatten(1).to(device), data.y_train.to(device)
        self.val_x, self.val_y = data.x_val.flatten(1).to(device), data.y_val.to(device)
        self.seed, self.epochs, self.device = seed, epochs, device

    def __call__(self, trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        width = trial.suggest_int("width", 8, 256, log=True)
        wd = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        bs = trial.suggest_categorical("batch_size", [16, 32, 64, 128])
        g = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = torch.nn.Sequential(torch.nn.Linear(self.train_x.shape[1], width), torch.nn.ReLU(),
                                      torch.nn.Linear(width, 10)).to(self.device)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
        n = self.train_x.shape[0]
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                loss = torch.nn.functional.cross_entropy(net(self.train_x[idx]), self.train_y[idx])
                if not torch.isfinite(loss):
                    return 1.0  # diverged: as bad as it gets
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            return float((net(self.val_x).argmax(1) != self.val_y).float().mean())


def hpo_evaluate(cfg: BlackBoxHPOConfig, ctx: RunContext, models: dict[str, LSTMProposer]):
    suite = cfg.suite
    values, seconds = {}, {}
    methods = [f"learned-{loss}" for loss in models] + list(suite.baselines)
    for method in methods:
        values[method], seconds[method] = run_method(
            method, lambda i: DigitsMLPObjective(derive_seed(ctx.seed, "test", i), cfg.epochs, cfg.device),
            suite.n_seeds, suite, models, ctx.progress, "hpo")
    floor = np.nanmin(np.stack([np.nanmin(v, axis=1) for v in values.values()]), axis=0)
    rows, curves = summarise("digits-mlp", values, seconds, floor, suite, absolute="val_error")
    return rows, {"digits-mlp": curves}, {"best_val_error": floor.tolist()}


def hpo_plot(results: dict, out: Path) -> list[Path]:
    return [_regret_plot(results, out / "regret_vs_evals.png",
                         "Digits MLP hyperparameters via Optuna: validation-error regret (mean ± 95% CI)")]


BLACKBOX_GP = Experiment(
    name="blackbox-gp",
    description="Learned black-box optimizers (acquisition default; LSTM sum/EI/OI) vs random, TPE, GP, CMA-ES on held-out GP functions (Chen 2017)",
    config=gp_config, meta_train=gp_meta_train, evaluate=gp_evaluate, plot=gp_plot, load_trained=load_models,
    load_pretrained=shipped_models,
)
BLACKBOX_BENCHMARKS = Experiment(
    name="blackbox-benchmarks",
    description="Shipped proposers vs Optuna samplers on perturbed Branin, Goldstein-Price, Hartmann3/6 (Chen 2017)",
    config=bench_config, meta_train=shipped_models, evaluate=bench_evaluate, plot=bench_plot, load_trained=load_models,
    load_pretrained=shipped_models,
)
BLACKBOX_HPO = Experiment(
    name="blackbox-hpo",
    description="LearnedSampler vs Optuna samplers tuning a digits MLP (lr, width, weight decay, batch size)",
    config=hpo_config, meta_train=shipped_models, evaluate=hpo_evaluate, plot=hpo_plot, load_trained=load_models,
    load_pretrained=shipped_models,
)
