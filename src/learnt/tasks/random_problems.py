"""Test problems with per-problem random parameters: quadratic bowls and LogSumExp.

Part of the training ensemble of Wichrowska et al. (2017). Like the classic functions in
:mod:`learnt.tasks.functions`, each task has one parameter ``"x"`` of shape (K, d), no data,
and exposes ``min_value``, ``lower_bound``, ``minimiser()``, ``problem(k)`` and
``describe()``; here every problem also has its own random matrix and offset, drawn by the
family with the generator given to ``sample``.

Example:
    >>> task = RandomQuadraticFamily(dims=(5,), n_problems=3).sample(torch.Generator().manual_seed(0))
    >>> torch.allclose(task.loss({"x": task.minimiser()}), torch.zeros(3))
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from learnt.functional.base import Params
from learnt.tasks.base import no_batches
from learnt.tasks.functions import check_index, check_sizes, choose


def _check_dims(dims: tuple[int, ...], n_problems: int) -> None:
    if not dims or any(int(d) != d or d < 1 for d in dims):
        raise ValueError(f"dims={dims!r}; expected a non-empty tuple of positive integers")
    check_sizes(n_problems=n_problems)


def random_orthogonal(k: int, d: int, g: torch.Generator) -> Tensor:
    """K random orthogonal d x d matrices (QR of Gaussian matrices), float64: (K, d, d)."""
    return torch.linalg.qr(torch.randn(k, d, d, generator=g, dtype=torch.float64))[0]


class _VectorProblem:
    """Shared plumbing of tasks with one parameter ``x`` (K, d) drawn ``N(0, init_scale^2)``."""

    name = "vector"
    n_problems: int
    dim: int
    init_scale: float
    _like: Tensor  # a tensor with the task's dtype and device

    def init_params(self, g: torch.Generator) -> Params:
        x = torch.randn(self.n_problems, self.dim, generator=g, dtype=torch.float64) * self.init_scale
        return {"x": x.to(self._like.dtype).to(self._like.device)}

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[None]:
        return no_batches()

    @property
    def lower_bound(self) -> float:
        return self.min_value

    def describe(self) -> str:
        return f"{self.name}[d={self.dim}]"


class QuadraticBowlTask(_VectorProblem):
    """K quadratic bowls ``f_k(x) = 0.5 (x - c_k)^T A_k (x - c_k)``, A_k positive definite.

    Shapes: ``A`` (K, d, d), ``center`` (K, d), parameter ``x`` (K, d); ``loss`` -> (K,).
    Minimum 0 at ``x = center``. Starting points are ``N(0, init_scale^2)``.
    """

    def __init__(self, A: Tensor, center: Tensor, init_scale: float = 1.0, name: str = "quadratic") -> None:
        if A.ndim != 3 or center.ndim != 2 or A.shape[:2] != center.shape or A.shape[1] != A.shape[2]:
            raise ValueError(f"expected A of shape (K, d, d) and center of shape (K, d); "
                             f"got {tuple(A.shape)}, {tuple(center.shape)}")
        self.A, self.center, self.init_scale, self.name = A, center, init_scale, name
        self.n_problems, self.dim = center.shape
        self._like = center

    def loss(self, params: Params, batch=None) -> Tensor:
        r = params["x"] - self.center
        return 0.5 * (r * torch.bmm(self.A, r.unsqueeze(-1)).squeeze(-1)).sum(-1)

    min_value = 0.0

    def minimiser(self) -> Tensor:
        return self.center.clone()

    def condition_number(self) -> Tensor:
        """Condition number of each A_k: (K,)."""
        ev = torch.linalg.eigvalsh(self.A.double())
        return (ev[:, -1] / ev[:, 0]).to(self.A.dtype)

    def problem(self, k: int) -> "QuadraticBowlTask":
        check_index(k, self.n_problems)
        return QuadraticBowlTask(self.A[k:k + 1], self.center[k:k + 1], self.init_scale, self.name)


def _log_uniform(k: int, high: float, g: torch.Generator) -> Tensor:
    """K draws log-uniform in [1, high], float64."""
    return high ** torch.rand(k, generator=g, dtype=torch.float64)


def _bowl_task(Q: Tensor, eig: Tensor, g: torch.Generator, init_scale: float, name: str,
               dtype: torch.dtype, device: str) -> QuadraticBowlTask:
    A = Q @ (eig.unsqueeze(-1) * Q.transpose(1, 2))
    A = 0.5 * (A + A.transpose(1, 2))  # exactly symmetric
    center = torch.randn(eig.shape, generator=g, dtype=torch.float64)
    return QuadraticBowlTask(A.to(dtype).to(device), center.to(dtype).to(device), init_scale, name)


@dataclass(frozen=True)
class BowlFamily:
    """2-D quadratic bowls: eigenvalues 1 and 1/kappa, kappa log-uniform in ``[1, max_cond]``,
    principal axes rotated by a uniform random angle, center ``N(0, 1)``.

    Example:
        >>> task = BowlFamily(n_problems=2).sample(torch.Generator().manual_seed(0))
        >>> task.A.shape, task.describe()
        (torch.Size([2, 2, 2]), 'bowl[d=2]')
    """

    n_problems: int = 8
    max_cond: float = 100.0
    init_scale: float = 1.0
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_sizes(n_problems=self.n_problems)
        if self.max_cond < 1:
            raise ValueError(f"max_cond={self.max_cond}; expected >= 1")

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> QuadraticBowlTask:
        k = self.n_problems if n_problems is None else n_problems
        theta = torch.rand(k, generator=g, dtype=torch.float64) * math.pi
        c, s = torch.cos(theta), torch.sin(theta)
        Q = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        eig = torch.stack([torch.ones(k, dtype=torch.float64), 1 / _log_uniform(k, self.max_cond, g)], -1)
        return _bowl_task(Q, eig, g, self.init_scale, "bowl", self.dtype, self.device)


@dataclass(frozen=True)
class RandomQuadraticFamily:
    """Quadratic bowls of a dimension drawn from ``dims``, random orthogonal eigenvectors,
    condition number kappa log-uniform in ``[1, max_cond]``: eigenvalues ``kappa^-t`` with t
    uniform in [0, 1] and the extremes pinned (largest 1, smallest 1/kappa); center ``N(0, 1)``.

    Example:
        >>> task = RandomQuadraticFamily(dims=(4,), n_problems=2).sample(torch.Generator().manual_seed(0))
        >>> task.describe()
        'quadratic[d=4]'
    """

    dims: tuple[int, ...] = (2, 5, 10, 20)
    n_problems: int = 8
    max_cond: float = 1000.0
    init_scale: float = 1.0
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_dims(self.dims, self.n_problems)
        if self.max_cond < 1:
            raise ValueError(f"max_cond={self.max_cond}; expected >= 1")

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> QuadraticBowlTask:
        k, d = self.n_problems if n_problems is None else n_problems, choose(self.dims, g)
        Q = random_orthogonal(k, d, g)
        kappa = _log_uniform(k, self.max_cond, g)
        t = torch.rand(k, d, generator=g, dtype=torch.float64)
        t[:, 0] = 0.0
        if d > 1:
            t[:, -1] = 1.0
        eig = kappa.unsqueeze(-1) ** -t
        return _bowl_task(Q, eig, g, self.init_scale, "quadratic", self.dtype, self.device)


class LogSumExpTask(_VectorProblem):
    """Smooth l-infinity norm of a random affine map: ``log sum exp([A x + b, -(A x + b)])``.

    Shapes: ``A`` (K, d, d) invertible, ``b`` (K, d), parameter ``x`` (K, d); ``loss`` -> (K,).
    Pairing each ``z_i`` with ``-z_i`` keeps it bounded below: ``exp(z) + exp(-z) >= 2``, so
    the minimum is ``log(2 d)``, reached at ``x = -A^{-1} b``. Starting points are
    ``N(0, init_scale^2)``.
    """

    name = "logsumexp"

    def __init__(self, A: Tensor, b: Tensor, init_scale: float = 2.0) -> None:
        if A.ndim != 3 or b.ndim != 2 or A.shape[:2] != b.shape or A.shape[1] != A.shape[2]:
            raise ValueError(f"expected A of shape (K, d, d) and b of shape (K, d); got {tuple(A.shape)}, {tuple(b.shape)}")
        self.A, self.b, self.init_scale = A, b, init_scale
        self.n_problems, self.dim = b.shape
        self._like = b

    def loss(self, params: Params, batch=None) -> Tensor:
        z = torch.bmm(self.A, params["x"].unsqueeze(-1)).squeeze(-1) + self.b
        return torch.logsumexp(torch.cat([z, -z], dim=-1), dim=-1)

    @property
    def min_value(self) -> float:
        return math.log(2 * self.dim)

    def minimiser(self) -> Tensor:
        return -torch.linalg.solve(self.A, self.b.unsqueeze(-1)).squeeze(-1)

    def problem(self, k: int) -> "LogSumExpTask":
        check_index(k, self.n_problems)
        return LogSumExpTask(self.A[k:k + 1], self.b[k:k + 1], self.init_scale)


@dataclass(frozen=True)
class LogSumExpFamily:
    """LogSumExp of random affine maps ``A = U diag(s) V^T`` (U, V random orthogonal, singular
    values log-uniform in ``[1/sqrt(max_cond), sqrt(max_cond)]``) and ``b ~ N(0, 1)``.

    Example:
        >>> task = LogSumExpFamily(dims=(4,), n_problems=2).sample(torch.Generator().manual_seed(0))
        >>> task.A.shape
        torch.Size([2, 4, 4])
    """

    dims: tuple[int, ...] = (2, 5, 10)
    n_problems: int = 8
    max_cond: float = 10.0
    init_scale: float = 2.0
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_dims(self.dims, self.n_problems)
        if self.max_cond < 1:
            raise ValueError(f"max_cond={self.max_cond}; expected >= 1")

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> LogSumExpTask:
        k, d = self.n_problems if n_problems is None else n_problems, choose(self.dims, g)
        U, V = random_orthogonal(k, d, g), random_orthogonal(k, d, g)
        s = self.max_cond ** (torch.rand(k, d, generator=g, dtype=torch.float64) - 0.5)
        A = U @ (s.unsqueeze(-1) * V.transpose(1, 2))
        b = torch.randn(k, d, generator=g, dtype=torch.float64)
        return LogSumExpTask(A.to(self.dtype).to(self.device), b.to(self.dtype).to(self.device), self.init_scale)
