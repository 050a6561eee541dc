"""Meta-gradient estimators: truncated BPTT, antithetic ES and persistent ES (PES).

All three sit behind one seam::

    params, state, meta_loss, losses = estimator.estimate(rule, task, params, state, batches, steps, f0)

which advances the optimizee run by one truncation of ``steps`` steps, *adds* its estimate
of d(meta-objective)/d(phi) to ``.grad`` of the rule's parameters (as ``backward`` does),
and returns the truncation's end point, the objective value (float) and the (steps + 1, K)
losses. Estimators that keep per-run memory (ES's noise stream, PES's particles and
perturbation accumulators) also have ``start_run(rule, task, params, state, g) -> (params,
state)``: the trainer calls it once at the start of every optimizee run, which is *the*
reset point, and then threads the returned opaque ``state`` through ``estimate``. Keeping
that memory in the run's ``state`` rather than in the estimator object is what lets one
process step several task shards (each its own run) with one estimator.

ES and PES never backpropagate through the unroll (each particle is an evaluation-mode
unroll), so their memory does not grow with the truncation length; they estimate the
gradient of the Gaussian-smoothed objective ``E_eps[L(phi + eps)]``, eps ~ N(0, sigma^2 I),
including the dependence through the optimizee's gradients that first-order BPTT drops.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import Tensor

from learnt.errors import NonFiniteError
from learnt.functional.base import tree_detach
from learnt.meta.objectives import get_objective
from learnt.meta.unroll import unroll

ESTIMATORS = ("bptt", "es", "pes")


class TruncatedBPTT:
    """Meta-gradient estimator: backpropagate the objective through one truncation.

    ``estimate`` leaves the gradient in ``.grad`` of phi and returns the truncation's end
    point (detached) and the objective value. Memory grows linearly with ``steps``.
    """

    def __init__(self, objective: str = "sum", second_order: bool = False) -> None:
        self.objective = get_objective(objective)
        self.second_order = second_order

    def estimate(self, rule, task, params, state, batches, steps, f0=None):
        res = unroll(task, rule, params, state, batches, steps, differentiable=True,
                     second_order=self.second_order)
        meta_loss = self.objective(res.losses, f0)
        if not torch.isfinite(meta_loss):
            raise NonFiniteError(f"meta-loss is {meta_loss.item()}; expected a finite value")
        meta_loss.backward()
        return {k: p.detach() for k, p in res.params.items()}, tree_detach(res.state), float(meta_loss.detach()), res.losses.detach()


class _Perturber:
    """Sets phi to ``phi0 + sign * eps`` in place and restores ``phi0`` exactly afterwards."""

    def __init__(self, rule) -> None:
        self.phi = [p for p in rule.parameters() if p.requires_grad]
        self.phi0 = [p.detach().clone() for p in self.phi]

    def noise(self, g: torch.Generator, sigma: float) -> list[Tensor]:
        return [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device).mul_(sigma) for p in self.phi]

    @torch.no_grad()
    def set(self, eps: list[Tensor] | None, sign: float = 1.0) -> None:
        for p, p0, e in zip(self.phi, self.phi0, eps or [None] * len(self.phi)):
            p.copy_(p0)
            if e is not None:
                p.add_(e, alpha=sign)

    def restore(self) -> None:
        self.set(None)

    def add_grad(self, grads: list[Tensor]) -> None:
        for p, gr in zip(self.phi, grads):
            p.grad = gr if p.grad is None else p.grad + gr


def _forward(rule, task, params, state, chunk: list, steps: int):
    """Evaluation-mode unroll on a replayed list of ``steps + 1`` batches."""
    return unroll(task, rule, params, state, iter(chunk), steps, differentiable=False)


def _value(objective, losses: Tensor, f0) -> float:
    v = float(objective(losses, f0))
    if v != v or v in (float("inf"), float("-inf")):
        raise NonFiniteError(f"meta-loss is {v}; expected a finite value")
    return v


def _check(sigma: float, n_pairs: int) -> None:
    if not sigma > 0:
        raise ValueError(f"sigma={sigma!r}; expected > 0")
    if n_pairs < 1:
        raise ValueError(f"n_pairs={n_pairs!r}; expected >= 1")


@dataclass
class ESRun:
    """Per-run memory of :class:`AntitheticES`: the optimizee's rule state and the noise stream."""

    state: Any
    g: torch.Generator


class AntitheticES:
    """Antithetic evolution strategies over one truncation (no backprop through the unroll).

    For ``n_pairs`` draws eps_i ~ N(0, sigma^2 I) the truncation is run from the same start
    with phi + eps_i and phi - eps_i on the same batches, and

        grad = 1 / (2 n sigma^2) * sum_i eps_i (L(phi + eps_i) - L(phi - eps_i)).

    The run itself advances with the unperturbed phi (one more evaluation-mode unroll), whose
    objective and losses are returned. Like truncated BPTT it ignores how phi affected the
    truncation's starting point (biased for long runs); see :class:`PES`. Cost: 2 n + 1
    evaluation-mode unrolls; memory constant in ``steps``.

    Example:
        >>> from learnt.tasks import QuadraticFamily
        >>> from learnt.learned import L2LOptimizer
        >>> g = torch.Generator().manual_seed(0)
        >>> task = QuadraticFamily(dim=3, n_problems=2).sample(g)
        >>> rule, est = L2LOptimizer(hidden_size=4), AntitheticES(n_pairs=2)
        >>> p = task.init_params(g)
        >>> p, s = est.start_run(rule, task, p, rule.init(p), g)
        >>> p, s, v, losses = est.estimate(rule, task, p, s, task.batches("train", g), 5)
        >>> losses.shape, rule.head.bias.grad is not None
        (torch.Size([6, 2]), True)
    """

    def __init__(self, objective: str = "sum", sigma: float = 0.01, n_pairs: int = 8, seed: int = 0) -> None:
        _check(sigma, n_pairs)
        self.objective = get_objective(objective)
        self.sigma, self.n_pairs, self.seed = float(sigma), int(n_pairs), int(seed)

    def start_run(self, rule, task, params, state, g: torch.Generator):
        """Begin an optimizee run: noise for this run is drawn from a generator seeded from ``g``."""
        sub = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
        return params, ESRun(state, sub)

    def estimate(self, rule, task, params, state, batches: Iterator, steps: int, f0=None):
        run = state if isinstance(state, ESRun) else ESRun(state, torch.Generator().manual_seed(self.seed))
        chunk = [next(batches) for _ in range(steps + 1)]
        pert = _Perturber(rule)
        base = _forward(rule, task, params, run.state, chunk, steps)
        meta = _value(self.objective, base.losses, f0)
        grads = [torch.zeros_like(p) for p in pert.phi]
        try:
            for _ in range(self.n_pairs):
                eps = pert.noise(run.g, self.sigma)
                vals = []
                for sign in (1.0, -1.0):
                    pert.set(eps, sign)
                    vals.append(_value(self.objective, _forward(rule, task, params, run.state, chunk, steps).losses, f0))
                w = (vals[0] - vals[1]) / (2 * self.n_pairs * self.sigma ** 2)
                for gr, e in zip(grads, eps):
                    gr.add_(e, alpha=w)
        finally:
            pert.restore()
        pert.add_grad(grads)
        return base.params, ESRun(base.state, run.g), meta, base.losses


@dataclass
class PESRun:
    """Per-run memory of :class:`PES`.

    ``particles[2 i]`` / ``particles[2 i + 1]`` are the (params, rule state) of the runs
    stepped with phi + eps and phi - eps of pair i; ``xi[i]`` (one tensor per parameter of
    phi) is the sum of pair i's perturbations over the truncations so far.
    """

    particles: list[tuple[Any, Any]]
    xi: list[list[Tensor]]
    g: torch.Generator
    truncations: int = 0
    extra: dict = field(default_factory=dict)


class PES:
    """Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein, ICML 2021).

    Each of ``2 n_pairs`` particles keeps its own optimizee trajectory for the whole run.
    In truncation t particle (i, +) steps with phi + eps_{i,t} and (i, -) with phi - eps_{i,t};
    the accumulator xi_i = sum_{s <= t} eps_{i,s} remembers every perturbation that shaped the
    particle's current state, and

        grad_t = 1 / (2 n sigma^2) * sum_i xi_i (L_t(i, +) - L_t(i, -)).

    Summed over a run's truncations this is an unbiased estimate of the gradient of the
    smoothed *full-run* objective (truncated BPTT and ES drop the earlier truncations' effect
    and are biased). ``start_run`` resets particles and accumulators: the trainer calls it at
    the start of every run. Returns the first particle's end point, and the particles' mean
    objective and losses. Cost: 2 n evaluation-mode unrolls per truncation; memory constant
    in ``steps`` (2 n copies of the optimizee state).
    """

    def __init__(self, objective: str = "sum", sigma: float = 0.01, n_pairs: int = 8, seed: int = 0) -> None:
        _check(sigma, n_pairs)
        self.objective = get_objective(objective)
        self.sigma, self.n_pairs, self.seed = float(sigma), int(n_pairs), int(seed)

    def start_run(self, rule, task, params, state, g: torch.Generator):
        """Reset: every particle starts at (``params``, ``state``) with xi = 0."""
        sub = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
        return params, self._fresh(rule, params, state, sub)

    def _fresh(self, rule, params, state, g: torch.Generator) -> PESRun:
        phi = [p for p in rule.parameters() if p.requires_grad]
        return PESRun([(params, state)] * (2 * self.n_pairs),
                      [[torch.zeros_like(p) for p in phi] for _ in range(self.n_pairs)], g)

    def estimate(self, rule, task, params, state, batches: Iterator, steps: int, f0=None):
        run = state if isinstance(state, PESRun) else \
            self._fresh(rule, params, state, torch.Generator().manual_seed(self.seed))
        chunk = [next(batches) for _ in range(steps + 1)]
        pert = _Perturber(rule)
        grads = [torch.zeros_like(p) for p in pert.phi]
        particles, values, curves = list(run.particles), [], []
        try:
            for i in range(self.n_pairs):
                eps = pert.noise(run.g, self.sigma)
                vals = []
                for j, sign in ((2 * i, 1.0), (2 * i + 1, -1.0)):
                    pert.set(eps, sign)
                    p_j, s_j = particles[j]
                    res = _forward(rule, task, p_j, s_j, chunk, steps)
                    vals.append(_value(self.objective, res.losses, f0))
                    particles[j] = (res.params, res.state)
                    curves.append(res.losses)
                xi = [x + e for x, e in zip(run.xi[i], eps)]
                run.xi[i] = xi
                w = (vals[0] - vals[1]) / (2 * self.n_pairs * self.sigma ** 2)
                for gr, x in zip(grads, xi):
                    gr.add_(x, alpha=w)
                values.extend(vals)
        finally:
            pert.restore()
        pert.add_grad(grads)
        run.particles, run.truncations = particles, run.truncations + 1
        curve = torch.stack(curves).mean(0)
        return particles[0][0], run, sum(values) / len(values), curve


def make_estimator(cfg, seed: int = 0):
    """The estimator a :class:`~learnt.meta.trainer.MetaTrainConfig` selects (``cfg.estimator``)."""
    name = getattr(cfg, "estimator", "bptt")
    if name == "bptt":
        return TruncatedBPTT(cfg.objective, cfg.second_order)
    if name == "es":
        return AntitheticES(cfg.objective, cfg.sigma, cfg.n_pairs, seed)
    if name == "pes":
        return PES(cfg.objective, cfg.sigma, cfg.n_pairs, seed)
    raise ValueError(f"estimator={name!r}; expected one of {list(ESTIMATORS)}")
