"""Task transformations of Wichrowska et al. (2017), each itself a :class:`~learnt.tasks.Task`.

* :class:`NoisyGradient` adds Gaussian noise to the gradient (loss values unchanged).
* :class:`SparseGradient` zeroes a random fraction of gradient coordinates each step.
* :class:`RescaledParams` optimizes ``f(theta * s)`` for fixed per-coordinate scales s.
* :class:`LogObjective` optimizes ``log(f - lower_bound + eps)``.
* :class:`SumOfProblems` optimizes the sum of two or more tasks with the same K.

Randomness comes only from ``torch.Generator`` objects passed in. The two gradient
transforms draw fresh noise / masks on every loss evaluation from a seed carried in the
minibatch: their ``batches(split, g)`` yields ``(inner_batch, seed)`` pairs, so an unroll
from the same generator seed is reproducible. Called with ``batch=None`` (or without
gradients) they reduce to the inner task.

Wrappers keep ``lower_bound``/``min_value`` of the inner task where they still hold, and
:func:`describe` names the composition, e.g. ``"rosenbrock[d=2]+log+noisy"``.

Example:
    >>> from learnt.tasks.functions import RosenbrockFamily
    >>> g = torch.Generator().manual_seed(0)
    >>> task = LogObjective(NoisyGradient(RosenbrockFamily(n_problems=2).sample(g), scale=0.5))
    >>> describe(task)
    'rosenbrock[d=2]+noisy+log'
    >>> task.loss(task.init_params(g), next(task.batches("train", g))).shape
    torch.Size([2])
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from learnt.functional.base import Params

_SEED_HIGH = 2 ** 62


def describe(task: Any) -> str:
    """A short name of a (possibly wrapped) task, e.g. ``'sum(bowl[d=2],booth[d=2])+sparse'``."""
    if hasattr(task, "describe"):
        return task.describe()
    return str(getattr(task, "name", type(task).__name__))


def _draw_seed(g: torch.Generator) -> int:
    return int(torch.randint(_SEED_HIGH, (1,), generator=g))


def _per_problem(x: Tensor) -> Tensor:
    """Sum of a (K, ...) tensor over all but the leading dim: (K,)."""
    return x.reshape(x.shape[0], -1).sum(-1)


class TaskWrapper:
    """Base of the transforms: forwards everything to the wrapped ``task``."""

    tag = "wrapped"

    def __init__(self, task: Any) -> None:
        self.task = task
        self.n_problems = task.n_problems

    def init_params(self, g: torch.Generator) -> Params:
        return self.task.init_params(g)

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        return self.task.loss(params, batch)

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[Any]:
        return self.task.batches(split, g)

    @property
    def lower_bound(self) -> float:
        return getattr(self.task, "lower_bound", -math.inf)

    @property
    def min_value(self) -> float | None:
        return getattr(self.task, "min_value", None)

    def describe(self) -> str:
        return f"{describe(self.task)}+{self.tag}"


class _PerCallRandom(TaskWrapper):
    """Wrappers that draw new randomness on every loss call from a seed carried in the batch."""

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[tuple[Any, int]]:
        """Endless ``(inner_batch, seed)`` pairs; seeds come from a stream derived from ``g``."""
        g = g if g is not None else torch.Generator().manual_seed(0)
        seeds = torch.Generator().manual_seed(_draw_seed(g))
        for inner in self.task.batches(split, g):
            yield inner, _draw_seed(seeds)

    @staticmethod
    def _split(batch: Any) -> tuple[Any, int | None]:
        if batch is None:
            return None, None
        if not (isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[1], int)):
            raise ValueError(f"expected a batch (inner_batch, seed: int) from this task's batches(); got {type(batch).__name__}")
        return batch

    @staticmethod
    def _active(params: Params, seed: int | None) -> bool:
        return seed is not None and torch.is_grad_enabled() and any(p.requires_grad for p in params.values())


class NoisyGradient(_PerCallRandom):
    """Adds Gaussian noise to the gradient; loss values are exactly those of the inner task.

    The loss is ``f(theta) + sum_i n_i (theta_i - stopgrad(theta_i))``: the added term is
    zero but has gradient ``n``. With ``relative=True`` (default) the noise of problem k has
    standard deviation ``scale * rms_k``, where ``rms_k`` is the root-mean-square of problem
    k's true gradient over all its coordinates (computed, detached, by an extra backward pass
    inside ``loss``); with ``relative=False`` it has standard deviation ``scale``. Noise is
    redrawn on every call from the seed in the batch (see :meth:`batches`).

    Args:
        task: the inner task.
        scale: noise standard deviation, relative or absolute (>= 0).
        relative: scale noise by each problem's gradient RMS.
    """

    tag = "noisy"

    def __init__(self, task: Any, scale: float = 0.5, relative: bool = True) -> None:
        if not scale >= 0:
            raise ValueError(f"scale={scale!r}; expected a noise scale >= 0")
        super().__init__(task)
        self.scale, self.relative = scale, relative

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        inner, seed = self._split(batch)
        f = self.task.loss(params, inner)
        if self.scale == 0 or not self._active(params, seed):
            return f
        gen = torch.Generator().manual_seed(seed)
        keys = sorted(params)
        noise = {k: torch.randn(params[k].shape, generator=gen, dtype=params[k].dtype).to(params[k].device) for k in keys}
        std = torch.full((self.n_problems,), float(self.scale), dtype=f.dtype, device=f.device)
        if self.relative:
            live = [k for k in keys if params[k].requires_grad]
            grads = torch.autograd.grad(f.sum(), [params[k] for k in live], retain_graph=True, allow_unused=True)
            sq = sum(_per_problem(gr * gr) for gr in grads if gr is not None)
            n = sum(params[k][0].numel() for k in keys)
            std = std * torch.sqrt(torch.as_tensor(sq, dtype=f.dtype, device=f.device) / n)
        extra = 0
        for k in keys:
            p = params[k]
            s = std.view(-1, *([1] * (p.ndim - 1))).to(p.dtype)
            extra = extra + _per_problem(noise[k] * s * (p - p.detach()))
        return f + extra


class SparseGradient(_PerCallRandom):
    """Zeroes a random ``fraction`` of gradient coordinates on every loss call.

    Each coordinate is dropped independently with probability ``fraction`` (a fresh mask per
    call, from the seed in the batch). The forward pass sees
    ``theta * mask + stopgrad(theta * (1 - mask))``, which equals theta exactly, so loss
    values are unchanged.
    """

    tag = "sparse"

    def __init__(self, task: Any, fraction: float = 0.5) -> None:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction={fraction!r}; expected 0 <= fraction < 1")
        super().__init__(task)
        self.fraction = fraction

    def masks(self, params: Params, seed: int) -> Params:
        """The 0/1 keep-masks (1 = gradient kept) drawn from ``seed``, shaped like params."""
        gen = torch.Generator().manual_seed(seed)
        return {k: (torch.rand(params[k].shape, generator=gen) >= self.fraction).to(params[k])
                for k in sorted(params)}

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        inner, seed = self._split(batch)
        if self.fraction == 0 or not self._active(params, seed):
            return self.task.loss(params, inner)
        masks = self.masks(params, seed)
        masked = {k: p * masks[k] + (p * (1 - masks[k])).detach() for k, p in params.items()}
        return self.task.loss(masked, inner)


class RescaledParams(TaskWrapper):
    """Optimizes ``f(theta * s)`` for fixed random per-coordinate scales ``s``.

    ``s = 10 ** u`` with ``u ~ U(-decades / 2, decades / 2)``, one per coordinate of every
    parameter of every problem, so the scales span ``decades`` orders of magnitude. They are
    drawn from a seed taken from ``g`` at construction (lazily, once the parameter shapes are
    known, in sorted key order) or given explicitly as ``scales``. Initial parameters are the
    inner ones divided by ``s``, so the initial loss is the inner task's.
    """

    tag = "rescaled"

    def __init__(self, task: Any, g: torch.Generator | None = None, decades: float = 2.0,
                 scales: Params | None = None) -> None:
        if (g is None) == (scales is None):
            raise ValueError("RescaledParams needs exactly one of g (to draw scales) or scales")
        if not decades >= 0:
            raise ValueError(f"decades={decades!r}; expected >= 0")
        if scales is not None and any(not bool((s > 0).all()) for s in scales.values()):
            raise ValueError("scales must all be > 0")
        super().__init__(task)
        self.decades = decades
        self._seed = _draw_seed(g) if g is not None else None
        self._fixed = scales
        self._cache: dict[tuple, Params] = {}

    def scales(self, params: Params) -> Params:
        """The scales for parameters shaped like ``params`` (same dtype and device)."""
        if self._fixed is not None:
            return {k: self._fixed[k].to(params[k]) for k in params}
        key = tuple((k, tuple(params[k].shape)) for k in sorted(params))
        if key not in self._cache:
            gen = torch.Generator().manual_seed(self._seed)
            self._cache[key] = {k: 10.0 ** ((torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5) * self.decades)
                                for k, shape in key}
        return {k: s.to(params[k]) for k, s in self._cache[key].items()}

    def init_params(self, g: torch.Generator) -> Params:
        p = self.task.init_params(g)
        s = self.scales(p)
        return {k: v / s[k] for k, v in p.items()}

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        s = self.scales(params)
        return self.task.loss({k: v * s[k] for k, v in params.items()}, batch)


class GapObjective(TaskWrapper):
    """Optimizes ``f - lower_bound`` (>= 0), so scale-free meta-objectives such as
    ``log(f_t / f_0)`` are defined for problems whose minimum is negative."""

    tag = "gap"

    def __init__(self, task: Any) -> None:
        super().__init__(task)
        lb = getattr(task, "lower_bound", None)
        if lb is None or not math.isfinite(lb):
            raise ValueError(f"GapObjective needs a finite lower_bound; {describe(task)} has {lb!r}")
        self._lb = float(lb)

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        return self.task.loss(params, batch) - self._lb

    @property
    def lower_bound(self) -> float:
        return 0.0

    @property
    def min_value(self) -> float | None:
        inner = getattr(self.task, "min_value", None)
        return None if inner is None else inner - self._lb

    def describe(self) -> str:
        return describe(self.task)


class LogObjective(TaskWrapper):
    """Optimizes ``log(max(f - lower_bound, 0) + eps)``.

    ``lower_bound`` defaults to the inner task's ``lower_bound`` (its true minimum where
    known: 0 for the quadratics, Rosenbrock and cross-entropies, ``log(2 d)`` for LogSumExp,
    ``-d`` for Michalewicz, ...), so for losses known to be >= 0 this is ``log(f + eps)``. The
    clamp only guards against rounding below the bound. The new lower bound is ``log(eps)``.
    """

    tag = "log"

    def __init__(self, task: Any, eps: float = 1e-6, lower_bound: float | None = None) -> None:
        if not eps > 0:
            raise ValueError(f"eps={eps!r}; expected eps > 0")
        lb = getattr(task, "lower_bound", None) if lower_bound is None else lower_bound
        if lb is None or not math.isfinite(lb):
            raise ValueError(f"LogObjective needs a finite lower bound of the inner loss; got {lb!r} "
                             f"for {describe(task)} (pass lower_bound=)")
        super().__init__(task)
        self.eps, self.inner_bound = eps, float(lb)

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        f = self.task.loss(params, batch)
        return torch.log(torch.clamp(f - self.inner_bound, min=0) + self.eps)

    @property
    def lower_bound(self) -> float:
        return math.log(self.eps)

    @property
    def min_value(self) -> float | None:
        m = getattr(self.task, "min_value", None)
        return None if m is None else math.log(max(m - self.inner_bound, 0.0) + self.eps)


class SumOfProblems:
    """The sum of two or more tasks with the same K: ``loss = sum_i task_i.loss``.

    Parameter ``name`` of task i is renamed ``"p{i}/name"``; batches are tuples of the
    tasks' batches (all drawn with the same generator, in order).
    """

    def __init__(self, tasks: Sequence[Any]) -> None:
        tasks = tuple(tasks)
        if len(tasks) < 2:
            raise ValueError(f"SumOfProblems needs two or more tasks; got {len(tasks)}")
        ks = [t.n_problems for t in tasks]
        if len(set(ks)) != 1:
            raise ValueError(f"all tasks must have the same n_problems; got {ks}")
        self.tasks, self.n_problems = tasks, ks[0]

    def _prefix(self, i: int) -> str:
        return f"p{i}/"

    def _part(self, params: Params, i: int) -> Params:
        pre = self._prefix(i)
        return {k[len(pre):]: v for k, v in params.items() if k.startswith(pre)}

    def init_params(self, g: torch.Generator) -> Params:
        return {self._prefix(i) + k: v for i, t in enumerate(self.tasks) for k, v in t.init_params(g).items()}

    def loss(self, params: Params, batch: Any = None) -> Tensor:
        batch = (None,) * len(self.tasks) if batch is None else batch
        if len(batch) != len(self.tasks):
            raise ValueError(f"expected a tuple of {len(self.tasks)} batches; got {len(batch)}")
        return sum(t.loss(self._part(params, i), b) for i, (t, b) in enumerate(zip(self.tasks, batch)))

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[tuple]:
        g = g if g is not None else torch.Generator().manual_seed(0)
        its = [t.batches(split, g) for t in self.tasks]
        while True:
            yield tuple(next(it) for it in its)

    @property
    def lower_bound(self) -> float:
        return sum(getattr(t, "lower_bound", -math.inf) for t in self.tasks)

    @property
    def min_value(self) -> float | None:
        """Sum of the parts' minima (they share no parameters), or None if one is unknown."""
        mins = [getattr(t, "min_value", None) for t in self.tasks]
        return None if any(m is None for m in mins) else sum(mins)

    def describe(self) -> str:
        return f"sum({','.join(describe(t) for t in self.tasks)})"
