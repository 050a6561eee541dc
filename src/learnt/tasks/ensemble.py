"""The training ensemble of Wichrowska et al. (2017): random base problems, randomly transformed.

:class:`EnsembleFamily` draws one base problem family (weights configurable), optionally
sums it with a second independently drawn problem, then applies each transformation of
:mod:`learnt.tasks.transforms` with its own probability, in the fixed order
sum -> log -> rescaled -> sparse -> noisy. No image / digits task is included: the base
problems are the classic test functions, random quadratics and LogSumExp, and classifiers
on random data.

Example:
    >>> fam = EnsembleFamily(n_problems=4)
    >>> task = fam.sample(torch.Generator().manual_seed(3))
    >>> g = torch.Generator().manual_seed(0)
    >>> task.loss(task.init_params(g), next(task.batches("train", g))).shape
    torch.Size([4])
    >>> isinstance(describe(task), str)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from learnt.tasks.functions import (
    AckleyFamily, BealeFamily, BoothFamily, BraninFamily, MatyasFamily, MichalewiczFamily, RosenbrockFamily,
    StyblinskiTangFamily,
)
from learnt.tasks.random_data import SoftmaxRegressionFamily, TinyMLPFamily
from learnt.tasks.random_problems import BowlFamily, LogSumExpFamily, RandomQuadraticFamily
from learnt.tasks.transforms import (
    GapObjective,
    LogObjective, NoisyGradient, RescaledParams, SparseGradient, SumOfProblems, TaskWrapper, describe,
)

#: name -> family factory. Every factory takes ``n_problems``, ``dtype`` and ``device`` keywords;
#: the task it samples has ``name`` equal to the key.
ENSEMBLE_FAMILIES: dict[str, Callable[..., Any]] = {
    "ackley": AckleyFamily,
    "beale": BealeFamily,
    "booth": BoothFamily,
    "branin": BraninFamily,
    "logsumexp": LogSumExpFamily,
    "matyas": MatyasFamily,
    "michalewicz": MichalewiczFamily,
    "rosenbrock": RosenbrockFamily,
    "styblinski_tang": StyblinskiTangFamily,
    "bowl": BowlFamily,
    "quadratic": RandomQuadraticFamily,
    "softmax_regression": SoftmaxRegressionFamily,
    "tiny_mlp": TinyMLPFamily,
}

TRANSFORMS = ("sum", "log", "rescaled", "sparse", "noisy")

__all__ = ["ENSEMBLE_FAMILIES", "TRANSFORMS", "EnsembleFamily", "base_tasks", "describe", "transforms_of"]


def base_tasks(task: Any) -> list[Any]:
    """The untransformed problems inside a (possibly wrapped / summed) task, in order."""
    if isinstance(task, TaskWrapper):
        return base_tasks(task.task)
    if isinstance(task, SumOfProblems):
        return [b for t in task.tasks for b in base_tasks(t)]
    return [task]


def transforms_of(task: Any) -> list[str]:
    """The transformations applied to ``task``, innermost first (``"sum"`` for sums)."""
    if isinstance(task, TaskWrapper):
        return transforms_of(task.task) + [task.tag]
    if isinstance(task, SumOfProblems):
        return [t for part in task.tasks for t in transforms_of(part)] + ["sum"]
    return []


@dataclass(frozen=True)
class EnsembleFamily:
    """Random problems from the Wichrowska et al. (2017) training ensemble.

    Args:
        names: base families to draw from (keys of :data:`ENSEMBLE_FAMILIES`).
        weights: relative probabilities of ``names`` (uniform when None).
        n_problems: default K.
        p_sum, p_log, p_rescaled, p_sparse, p_noisy: probability of each transformation.
        noise_scale: relative gradient-noise scale of :class:`NoisyGradient`.
        sparse_fraction: fraction of gradient coordinates :class:`SparseGradient` drops.
        rescale_decades: orders of magnitude spanned by :class:`RescaledParams` scales.
        log_eps: ``eps`` of :class:`LogObjective`.
        gap: optimize ``f - lower_bound`` (>= 0; see :class:`GapObjective`), which
            scale-free meta-objectives like ``log(f_t / f_0)`` need.
    """

    names: tuple[str, ...] = tuple(ENSEMBLE_FAMILIES)
    weights: tuple[float, ...] | None = None
    n_problems: int = 8
    p_sum: float = 0.1
    p_log: float = 0.2
    p_rescaled: float = 0.2
    p_sparse: float = 0.2
    p_noisy: float = 0.2
    noise_scale: float = 0.5
    sparse_fraction: float = 0.5
    rescale_decades: float = 2.0
    log_eps: float = 1e-6
    gap: bool = False
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("names is empty; expected at least one of " + ", ".join(ENSEMBLE_FAMILIES))
        unknown = [n for n in self.names if n not in ENSEMBLE_FAMILIES]
        if unknown:
            raise ValueError(f"unknown ensemble families {unknown}; expected names from {sorted(ENSEMBLE_FAMILIES)}")
        if self.weights is not None:
            if len(self.weights) != len(self.names):
                raise ValueError(f"weights has {len(self.weights)} entries; expected one per name ({len(self.names)})")
            if any(not w >= 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError(f"weights={self.weights}; expected non-negative weights with a positive sum")
        for t in TRANSFORMS:
            p = getattr(self, f"p_{t}")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"p_{t}={p!r}; expected a probability in [0, 1]")
        if self.n_problems < 1:
            raise ValueError(f"n_problems={self.n_problems}; expected >= 1")
        if not 0.0 <= self.sparse_fraction < 1.0:
            raise ValueError(f"sparse_fraction={self.sparse_fraction!r}; expected 0 <= fraction < 1")
        if self.noise_scale < 0 or self.rescale_decades < 0 or self.log_eps <= 0:
            raise ValueError(f"noise_scale={self.noise_scale}, rescale_decades={self.rescale_decades}, "
                             f"log_eps={self.log_eps}; expected >= 0, >= 0 and > 0")

    def family(self, name: str) -> Any:
        """The base family ``name`` with this ensemble's K, dtype and device."""
        return ENSEMBLE_FAMILIES[name](n_problems=self.n_problems, dtype=self.dtype, device=self.device)

    def _base(self, g: torch.Generator, k: int) -> Any:
        w = torch.ones(len(self.names)) if self.weights is None else torch.tensor(self.weights, dtype=torch.float64)
        name = self.names[int(torch.multinomial(w, 1, generator=g))]
        return self.family(name).sample(g, k)

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> Any:
        """Draw a base problem, then each transformation with its probability."""
        k = self.n_problems if n_problems is None else n_problems
        coins = torch.rand(len(TRANSFORMS), generator=g, dtype=torch.float64).tolist()
        apply = {t: c < getattr(self, f"p_{t}") for t, c in zip(TRANSFORMS, coins)}
        task = self._base(g, k)
        if apply["sum"]:
            task = SumOfProblems([task, self._base(g, k)])
        if apply["log"]:
            task = LogObjective(task, self.log_eps)
        if apply["rescaled"]:
            task = RescaledParams(task, g, self.rescale_decades)
        if apply["sparse"]:
            task = SparseGradient(task, self.sparse_fraction)
        if apply["noisy"]:
            task = NoisyGradient(task, self.noise_scale)
        return GapObjective(task) if self.gap else task
