"""Meta-training the proposer on GP-prior functions with the shared :class:`MetaTrainer`.

The four seams of the design (docs/architecture.md) map onto the black-box problem as follows: the rule is the
:class:`~learnt.blackbox.proposer.LSTMProposer`; a *task* is a :class:`QueryTask` (K GP
functions in each of several dimensions); the unroll is the query sequence of length T; the
estimator (:class:`QuerySequenceBPTT`) backpropagates a Chen et al. loss through it; phi is
updated by the trainer's Adam. The horizon curriculum (T from 10 to 100) is a schedule of
the one "truncation" of each iteration, so checkpoints, resume, validation-based selection,
logs and the NaN guard are the trainer's.

Example:
    >>> from learnt.blackbox.proposer import LSTMProposer
    >>> cfg = BlackBoxTrainConfig(iterations=2, functions_per_dim=2, dims=(1, 2), horizon_start=3, horizon_end=4)
    >>> res = train_proposer(LSTMProposer(max_dim=2, hidden=8), cfg, progress=False)
    >>> res.iterations
    2
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from learnt.blackbox.gp import GPFunctionFamily, GPFunctions
from learnt.blackbox.prior import SearchSpacePrior
from learnt.blackbox.losses import get_loss, loss_ei, loss_oi, loss_sum
from learnt.blackbox.proposer import LSTMProposer, Rollout
from learnt.errors import ConfigError, NonFiniteError
from learnt.meta.trainer import MetaTrainConfig, MetaTrainer, TrainResult
from learnt.seeding import make_generator


def length_scale_range(dim: int, base: tuple[float, float]) -> tuple[float, float]:
    """Length scales grow with sqrt(d): the typical distance between points of the cube does."""
    s = dim ** 0.5
    return (base[0] * s, base[1] * s)


@dataclass(frozen=True)
class GPPrior:
    """The GP prior of training, validation and test functions (one per dimension)."""

    kernel: str = "rbf"
    length_scale: tuple[float, float] = (0.1, 0.4)   # scaled by sqrt(d)
    signal_var: tuple[float, float] = (1.0, 1.0)
    n_features: int = 256
    # "gp": smooth isotropic GP samples (the paper's prior; kernel, length_scale and
    # signal_var above); "search-space": learnt.blackbox.prior.SearchSpacePrior's defaults
    # (ARD, four kernels, grid / categorical dimensions, warps, plateaus, failure regions, noise)
    kind: str = "gp"

    def __post_init__(self) -> None:
        if self.kind not in ("gp", "search-space"):
            raise ConfigError(f"prior kind={self.kind!r}; expected 'gp' or 'search-space'")

    def family(self, dim: int, n_functions: int):
        if self.kind == "search-space":
            return SearchSpacePrior(dim=dim, n_functions=n_functions, n_features=self.n_features)
        return GPFunctionFamily(dim=dim, kernel=self.kernel, length_scale_range=length_scale_range(dim, self.length_scale),
                                signal_var_range=self.signal_var, n_features=self.n_features, n_functions=n_functions)


class QueryTask:
    """K functions in each of several dimensions: one meta-training batch.

    ``groups`` is a list of (dim, functions) pairs; ``n_problems`` the total K. It offers
    the parts of the Task contract the trainer calls (no parameters, no batches).
    """

    def __init__(self, groups: list[tuple[int, GPFunctions]]) -> None:
        self.groups = groups
        self.sizes = [f.n_functions for _, f in groups]
        self.n_problems = self.n_functions = sum(self.sizes)
        self.dims = torch.cat([torch.full((n,), d) for (d, _), n in zip(groups, self.sizes)])

    def __call__(self, x: Tensor) -> Tensor:
        """Zero-padded queries (K, max_dim) or (K, T, max_dim) -> results (K,) or (K, T), group by group."""
        out = [fns(xg[..., :d]) for (d, fns), xg in zip(self.groups, torch.split(x, self.sizes))]
        return torch.cat(out)

    def init_params(self, g: torch.Generator) -> dict:
        return {}

    def batches(self, split: str, g: torch.Generator):
        return None


@dataclass(frozen=True)
class GPQueryFamily:
    """Samples a :class:`QueryTask` with ``functions_per_dim`` GP functions for every d in ``dims``."""

    dims: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    functions_per_dim: int = 16
    prior: GPPrior = GPPrior()

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> QueryTask:
        return QueryTask([(d, self.prior.family(d, self.functions_per_dim).sample(g)) for d in self.dims])


class QuerySequenceBPTT:
    """Meta-gradient estimator: backpropagate a Chen et al. loss through the query sequence.

    ``estimate`` has the trainer's estimator signature; ``steps`` is the horizon T. The
    parallelism P of each batch is drawn from ``parallel`` (a tuple of choices) with torch's
    global generator, which :class:`~learnt.meta.trainer.MetaTrainer` seeds per iteration and
    shard (``derive_seed(seed, "train", iteration, 2[, shard])``), so fresh and resumed runs
    draw the same P; outside the trainer, seed torch first.
    """

    def __init__(self, loss: str = "oi", parallel: tuple[int, ...] = (1,), ei_noise: float = 1e-4) -> None:
        self.loss = get_loss(loss)
        self.parallel = tuple(parallel)
        if not self.parallel or min(self.parallel) < 1:
            raise ConfigError(f"parallel={parallel!r}; expected a non-empty tuple of integers >= 1")
        self.ei_noise = ei_noise

    def group_loss(self, run: Rollout, fns: GPFunctions) -> Tensor:
        if self.loss == "sum":
            return loss_sum(run.y)
        if self.loss == "oi":
            return loss_oi(run.y)
        return loss_ei(run.x, run.y, fns.kernel, self.ei_noise)

    def estimate(self, rule: LSTMProposer, task: QueryTask, params, state, batches, steps, f0=None):
        p = self.parallel[int(torch.randint(len(self.parallel), ()).item())]
        run = rule.rollout(task, task.dims, steps, parallel=p)
        total = 0.0
        for (dim, fns), xg, yg in zip(task.groups, torch.split(run.x, task.sizes), torch.split(run.y, task.sizes)):
            total = total + self.group_loss(Rollout(xg[..., :dim], yg), fns) / len(task.groups)
        if not torch.isfinite(total):
            raise NonFiniteError(f"meta-loss is {float(total)}; expected a finite value")
        total.backward()
        curve = run.best_so_far().mean(0).detach()
        return params, state, float(total.detach()), torch.cat([curve[:1], curve]).unsqueeze(1)


@dataclass(frozen=True)
class BlackBoxTrainConfig:
    """Meta-training of a proposer (Chen et al. 2017 settings where the paper gives them)."""

    iterations: int = 1500
    loss: str = "oi"
    dims: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    functions_per_dim: int = 16
    prior: GPPrior = GPPrior()
    horizon_start: int = 10
    horizon_end: int = 100
    curriculum_fraction: float = 0.6     # T reaches horizon_end after this fraction of iterations
    parallel: tuple[int, ...] = (1, 1, 1, 2, 4)
    meta_lr: float = 3e-3
    clip_norm: float = 1.0
    val_every: int = 50
    checkpoint_every: int = 50
    val_functions_per_dim: int = 32
    val_horizons: tuple[int, ...] = (10, 20, 50, 100)

    def __post_init__(self) -> None:
        get_loss(self.loss)
        if not 1 <= self.horizon_start <= self.horizon_end:
            raise ConfigError(f"horizon_start={self.horizon_start}, horizon_end={self.horizon_end}; "
                              f"expected 1 <= start <= end")
        if not 0.0 < self.curriculum_fraction <= 1.0:
            raise ConfigError(f"curriculum_fraction={self.curriculum_fraction}; expected a value in (0, 1]")
        if not self.dims or min(self.dims) < 1:
            raise ConfigError(f"dims={self.dims!r}; expected a non-empty tuple of dimensions >= 1")

    def horizon(self, it: int) -> int:
        """T of iteration ``it``: linear from ``horizon_start`` to ``horizon_end``."""
        ramp = max(1, int(self.curriculum_fraction * self.iterations))
        frac = min(1.0, it / ramp)
        return int(round(self.horizon_start + frac * (self.horizon_end - self.horizon_start)))

    def trainer_config(self) -> MetaTrainConfig:
        return MetaTrainConfig(iterations=self.iterations, unroll_steps=self.horizon_end, truncation=self.horizon_end,
                               meta_lr=self.meta_lr, clip_norm=self.clip_norm, val_every=self.val_every,
                               checkpoint_every=self.checkpoint_every)


class HorizonCurriculumTrainer(MetaTrainer):
    """The shared trainer with one truncation per iteration whose length follows the curriculum."""

    def __init__(self, rule, family, config: BlackBoxTrainConfig, **kw) -> None:
        super().__init__(rule, family, config.trainer_config(), **kw)
        self.bb_cfg = config

    def truncation_lengths(self, it: int, task=None) -> list[int]:
        return [self.bb_cfg.horizon(it)]


def best_observed_score(model: LSTMProposer, groups: list[tuple[int, GPFunctions]], horizons: tuple[int, ...]) -> float:
    """Validation score (lower is better): best value found, averaged over ``horizons`` and functions."""
    task = QueryTask(groups)
    with torch.no_grad():
        best = model.rollout(task, task.dims, max(horizons)).best_so_far()
    return float(torch.stack([best[:, h - 1] for h in horizons]).mean())


def validation_functions(cfg: BlackBoxTrainConfig, seed: int, split: str = "val") -> list[tuple[int, GPFunctions]]:
    """Fixed functions of a split, one generator per dimension (disjoint from training's)."""
    return [(d, cfg.prior.family(d, cfg.val_functions_per_dim).sample(make_generator(seed, split, d)))
            for d in cfg.dims]


def train_proposer(model: LSTMProposer, cfg: BlackBoxTrainConfig, *, seed: int = 0,
                   out_dir: str | Path | None = None, progress: bool = True, resume: bool = False,
                   validate: Callable[[LSTMProposer], float] | None = None) -> TrainResult:
    """Meta-train ``model`` on GP functions; selection on validation functions; returns the trainer's result."""
    if max(cfg.dims) > model.max_dim:
        raise ConfigError(f"dims={cfg.dims!r} exceed the proposer's max_dim={model.max_dim}")
    if validate is None:
        val = validation_functions(cfg, seed)
        horizons = tuple(h for h in cfg.val_horizons if h <= cfg.horizon_end) or (cfg.horizon_end,)
        validate = lambda m: best_observed_score(m, val, horizons)  # noqa: E731
    family = GPQueryFamily(cfg.dims, cfg.functions_per_dim, cfg.prior)
    trainer = HorizonCurriculumTrainer(model, family, cfg, seed=seed, validate=validate, out_dir=out_dir,
                                       progress=progress, estimator=QuerySequenceBPTT(cfg.loss, cfg.parallel))
    result = trainer.train(resume=resume)
    model.load_state_dict(result.best_state)
    return result


__all__ = ["BlackBoxTrainConfig", "GPPrior", "GPQueryFamily", "HorizonCurriculumTrainer", "QuerySequenceBPTT",
           "QueryTask", "best_observed_score", "train_proposer", "validation_functions"]
