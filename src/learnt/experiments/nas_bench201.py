"""``nas-bench201``: the Zoph & Le (2017) controller against random search and regularized
evolution (Real et al. 2019) on the NAS-Bench-201 cell space, rewards from its tables.

Protocol. Every method gets ``budget`` distinct cells per search; a query returns the
validation accuracy of one of the cell's training seeds (the noise a real search sees); the
incumbent is the best *observed* cell and its regret is the table optimum minus the cell's
*mean* validation accuracy. Two controllers: the paper's (``controller``: REINFORCE with a
baseline) and ours (``controller-pqt``, see :class:`PQTGrid`: the same LSTM and loss, querying
only unseen cells and imitating the best cells seen). The controllers' and evolution's
hyperparameters are tuned on the
``tune_dataset`` table (cifar10) over ``tune_searches`` searches with their own seeds (split
``val``), selected on the mean regret at ``select_at`` queries; the evaluation searches (split
``test``) then run on every table, cifar100 being transfer. Random search has nothing to tune.

Rows per table and query count: regret and best mean validation accuracy found (mean ± 95%
CI over searches) with one-sided Mann-Whitney U p-values (unpaired: searches of different
methods share nothing but their index) for "this controller's regret is lower" than evolution's
and random search's; and the
table's optimum. Only the cifar10 and cifar100 tables are accepted (the package's third
table is reserved for independent evaluation).
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnt.errors import ConfigError
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.results import stat_row
from learnt.meta.stats import mann_whitney_less, mean_ci95
from learnt.nas.bench201 import (DATASETS, Bench201Table, EvolutionConfig, ReinforceConfig,
                                 arch_string, decode, random_search, regularized_evolution, reinforce_search)
from learnt.seeding import derive_seed

log = logging.getLogger(__name__)
METHODS = ("controller", "controller-pqt", "evolution", "random")
CONTROLLERS = ("controller", "controller-pqt")


@dataclass(frozen=True)
class ControllerGrid:
    lr: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05)
    entropy_weight: tuple[float, ...] = (0.0, 0.003, 0.01)
    batch_size: tuple[int, ...] = (4, 10)
    base: ReinforceConfig = field(default_factory=ReinforceConfig)   # the fields the grid leaves fixed

    def configs(self) -> list[ReinforceConfig]:
        return [dataclasses.replace(self.base, lr=lr, entropy_weight=ew, batch_size=bs)
                for lr, ew, bs in itertools.product(self.lr, self.entropy_weight, self.batch_size)]


@dataclass(frozen=True)
class PQTGrid:
    """The controller with two additions (our variant, not the paper's): it queries only cells it
    has not seen (``unique``: a peaked policy then searches its mode's neighbourhood instead of
    re-drawing cells it knows) and it also maximises the likelihood of the best ``elite_size``
    cells seen so far (priority-queue training, Abolafia et al. 2018) beside the REINFORCE loss."""

    lr: tuple[float, ...] = (0.02, 0.05, 0.1)
    entropy_weight: tuple[float, ...] = (0.0, 0.01)
    elite_size: tuple[int, ...] = (5, 10)
    elite_weight: tuple[float, ...] = (0.3, 1.0, 3.0)
    base: ReinforceConfig = field(default_factory=lambda: ReinforceConfig(batch_size=4, unique=8))

    def configs(self) -> list[ReinforceConfig]:
        return [dataclasses.replace(self.base, lr=lr, entropy_weight=ew, elite_size=k, elite_weight=w)
                for lr, ew, k, w in itertools.product(self.lr, self.entropy_weight, self.elite_size, self.elite_weight)]


@dataclass(frozen=True)
class EvolutionGrid:
    population: tuple[int, ...] = (10, 20, 50)
    sample: tuple[int, ...] = (3, 5, 10)

    def configs(self) -> list[EvolutionConfig]:
        return [EvolutionConfig(p, s) for p, s in itertools.product(self.population, self.sample) if 2 <= s <= p]


@dataclass(frozen=True)
class Bench201Config:
    datasets: tuple[str, ...] = DATASETS
    tune_dataset: str = "cifar10"
    searches: int = 100                 # evaluation searches per method and table
    tune_searches: int = 50             # tuning searches per candidate (other seeds)
    budget: int = 300                   # distinct cells per search
    report_at: tuple[int, ...] = (10, 20, 50, 100, 200, 300)
    select_at: tuple[int, ...] = (100, 200)
    controller: ControllerGrid = field(default_factory=ControllerGrid)
    controller_pqt: PQTGrid = field(default_factory=PQTGrid)
    evolution: EvolutionGrid = field(default_factory=EvolutionGrid)

    def __post_init__(self) -> None:
        for d in (*self.datasets, self.tune_dataset):
            if d not in DATASETS:
                raise ConfigError(f"NAS-Bench-201 dataset {d!r}; expected one of {list(DATASETS)}")
        if not self.datasets:
            raise ConfigError("datasets is empty; expected at least one of cifar10, cifar100")
        if min(self.searches, self.tune_searches, self.budget) < 1:
            raise ConfigError(f"searches={self.searches}, tune_searches={self.tune_searches}, budget={self.budget}; "
                              "expected all >= 1")
        bad = [q for q in (*self.report_at, *self.select_at) if not 1 <= q <= self.budget]
        if bad or not self.report_at or not self.select_at:
            raise ConfigError(f"report_at={self.report_at}, select_at={self.select_at}; expected non-empty query "
                              f"counts in 1..budget={self.budget}")
        if not self.controller.configs() or not self.controller_pqt.configs() or not self.evolution.configs():
            raise ConfigError("empty tuning grid; expected at least one controller and one evolution setting")


def config(budget: str) -> Bench201Config:
    if budget == "quick":
        return Bench201Config(searches=10, tune_searches=3, budget=100, report_at=(10, 50, 100), select_at=(50, 100),
                              controller=ControllerGrid(lr=(0.01, 0.05), entropy_weight=(0.003,), batch_size=(4,)),
                              controller_pqt=PQTGrid(lr=(0.02,), entropy_weight=(0.01,), elite_size=(5,),
                                                     elite_weight=(0.3, 1.0)),
                              evolution=EvolutionGrid(population=(10,), sample=(3,)))
    return Bench201Config()


def _regrets(fn, table, cfg, budget: int, seeds: list[int]) -> np.ndarray:
    return np.array([fn(table, budget, s, cfg).regret for s in seeds])       # (searches, budget)


def tune(cfg: Bench201Config, seed: int, tables: dict[str, Bench201Table]) -> dict:
    """Pick the controller's and evolution's settings on the tuning table's tuning seeds."""
    table = tables[cfg.tune_dataset]
    seeds = [derive_seed(seed, "val", i) for i in range(cfg.tune_searches)]
    cols = [q - 1 for q in cfg.select_at]
    out = {}
    for name, fn, grid in (("controller", reinforce_search, cfg.controller.configs()),
                           ("controller-pqt", reinforce_search, cfg.controller_pqt.configs()),
                           ("evolution", regularized_evolution, cfg.evolution.configs())):
        scores = []
        for c in grid:
            score = float(_regrets(fn, table, c, max(cfg.select_at), seeds)[:, cols].mean())
            scores.append({"config": dataclasses.asdict(c), "mean_regret": score})
            log.info("tune %s %s: mean regret at %s = %.4f", name, c, cfg.select_at, score)
        best = min(range(len(grid)), key=lambda i: scores[i]["mean_regret"])
        out[name] = {"chosen": grid[best], "scores": scores}
    return out


def meta_train(cfg: Bench201Config, ctx: RunContext) -> dict:
    return tune(cfg, ctx.seed, {cfg.tune_dataset: Bench201Table(cfg.tune_dataset)})


def evaluate(cfg: Bench201Config, ctx: RunContext, tuned) -> tuple[list, dict, dict]:
    tuned = tuned if tuned is not None else meta_train(cfg, ctx)
    fns = {"controller": (reinforce_search, tuned["controller"]["chosen"]),
           "controller-pqt": (reinforce_search, tuned["controller-pqt"]["chosen"]),
           "evolution": (regularized_evolution, tuned["evolution"]["chosen"]), "random": (random_search, None)}
    seeds = [derive_seed(ctx.seed, "test", i) for i in range(cfg.searches)]
    rows, curves, best_cells = [], {}, {}
    for d in cfg.datasets:
        table = Bench201Table(d)
        reg = {m: _regrets(fn, table, c, cfg.budget, seeds) for m, (fn, c) in fns.items()}
        curves[d] = {}
        for m in METHODS:
            mc = [mean_ci95(reg[m][:, q]) for q in range(cfg.budget)]
            curves[d][m] = {"step": list(range(1, cfg.budget + 1)), "mean": [x[0] for x in mc], "ci95": [x[1] for x in mc]}
        for q in cfg.report_at:
            col = {m: reg[m][:, q - 1] for m in METHODS}
            for m in METHODS:
                p = ({"p_vs": {o: mann_whitney_less(col[m], col[o]) for o in ("evolution", "random")}}
                     if m in CONTROLLERS else {})
                rows.append(stat_row(m, d, f"regret@{q}", col[m], **p))
                rows.append(stat_row(m, d, f"best_val_acc@{q}", table.optimum - col[m]))
        rows.append({"method": "table optimum", "setting": d, "metric": "best_val_acc", "mean": table.optimum,
                     "ci95": float("nan"), "n": 1, "median": table.optimum, "cell": arch_string(decode(table.best))})
        best_cells[d] = arch_string(decode(table.best))
    extra = {"tuning": {m: {"chosen": dataclasses.asdict(t["chosen"]), "scores": t["scores"]} for m, t in tuned.items()},
             "optimal_cells": best_cells,
             "p_test": "one-sided Mann-Whitney U, unpaired, the controller's regret < the other method's"}
    return rows, curves, extra


def plot(results: dict, out: Path) -> list[Path]:
    from matplotlib.figure import Figure
    curves = results.get("curves", {})
    fig = Figure(figsize=(5.5 * max(1, len(curves)), 4.2), dpi=110)
    styles = {"controller": ("-", "tab:blue"), "controller-pqt": ("-", "tab:purple"), "evolution": ("-.", "tab:green"), "random": ("--", "tab:orange")}
    for i, (d, by_method) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        for m, c in by_method.items():
            x = np.asarray(c["step"])
            mean = np.asarray(c["mean"], float)
            ci = np.nan_to_num(np.asarray(c["ci95"], float), nan=0.0, posinf=0.0)
            ls, color = styles.get(m, ("-", None))
            ax.plot(x, mean, ls, color=color, label=m, lw=1.8 if m in CONTROLLERS else 1.4)
            ax.fill_between(x, np.maximum(mean - ci, 1e-3), mean + ci, color=color, alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(10, x[-1])
        ax.set_xlabel("distinct architectures queried")
        ax.set_ylabel("regret (% validation accuracy)")
        ax.set_title(f"NAS-Bench-201 {d}: mean ± 95% CI over searches", fontsize=9)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "regret_vs_queries.png"
    fig.savefig(path)
    return [path]


NAS_BENCH201 = Experiment(
    name="nas-bench201",
    description="RL controller vs regularized evolution vs random search on NAS-Bench-201 tables (Zoph & Le 2017)",
    config=config, meta_train=meta_train, evaluate=evaluate, plot=plot,
    load_pretrained=lambda cfg: None,
)
