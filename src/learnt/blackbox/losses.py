"""The three meta-training losses of Chen et al. (2017), on a batch of query sequences.

All take the results ``y`` (K, T) of a :class:`~learnt.blackbox.proposer.Rollout` (and,
for EI, the queries and the functions' kernel) and return a scalar to minimise, averaged
over the K runs and the T steps so that the scale does not change with the horizon:

- ``sum``: L_sum = mean_t f(x_t);
- ``oi`` (observed improvement): L_OI = mean_t min(f(x_t) - min_{i<t} f(x_i), 0), with the
  first query's value as its own term; it telescopes to (best value found) / T, but its
  gradient reaches every query through the recurrence;
- ``ei`` (expected improvement): L_EI = -mean_t EI(x_t | x_<t, y_<t) under the exact GP
  posterior of each training function (zero mean, the function's own kernel, a small noise
  for the random-feature approximation), differentiable through the Cholesky factors.

Example:
    >>> import torch
    >>> y = torch.tensor([[3.0, 1.0, 2.0, 0.5]])
    >>> float(loss_oi(y))  # (3 + (1 - 3) + 0 + (0.5 - 1)) / 4 = 0.5 / 4
    0.125
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from learnt.errors import ConfigError

LOSSES = ("sum", "oi", "ei")
_SQRT2 = math.sqrt(2.0)


def loss_sum(y: Tensor) -> Tensor:
    """L_sum: the mean result over runs and steps. ``y`` (K, T)."""
    return y.mean()


def loss_oi(y: Tensor) -> Tensor:
    """L_OI: mean observed improvement (negative when a query beats the best so far). ``y`` (K, T)."""
    prev_best = torch.cummin(y, dim=1).values[:, :-1]  # min_{i<t} for t >= 1
    gain = torch.clamp(y[:, 1:] - prev_best, max=0.0)
    return (y[:, 0].sum() + gain.sum()) / y.numel()


def expected_improvement(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor],
                         noise: float = 1e-4) -> Tensor:
    """EI of each query given the queries before it, under a zero-mean GP: (K, T) with EI = 0 at t = 0.

    Args:
        x: queries (K, T, d). y: results (K, T). kernel: the prior covariance,
            (K, N, d), (K, P, d) -> (K, N, P). noise: observation noise variance.
    """
    # One Cholesky factor L of the whole (noisy) Gram matrix serves every prefix: the factor
    # of the first t points is L[:t, :t], row t of L is L_t^{-1} k(x_<t, x_t), so with
    # w = L^{-1} y the posterior mean at x_t is L[t, :t] . w[:t] and its variance is
    # L[t, t]^2 - noise. O(T^3) once instead of a factorisation per step.
    xd, yd = x.double(), y.double()
    steps = x.shape[1]
    gram = kernel(xd, xd) + noise * torch.eye(steps, dtype=torch.float64, device=x.device)
    chol = torch.linalg.cholesky(gram)  # (K, T, T)
    w = torch.linalg.solve_triangular(chol, yd.unsqueeze(-1), upper=False).squeeze(-1)  # (K, T)
    strict = torch.tril(chol, diagonal=-1)
    mu = (strict * w.unsqueeze(1)).sum(-1)  # (K, T): row t uses w[:t] only
    var = (torch.diagonal(chol, dim1=1, dim2=2) ** 2 - noise).clamp_min(1e-10)
    s = torch.sqrt(var)
    best = torch.cummin(yd, dim=1).values  # best[t - 1] = min_{i<t}
    best, mu, s = best[:, :-1], mu[:, 1:], s[:, 1:]
    z = (best - mu) / s
    cdf = 0.5 * (1.0 + torch.erf(z / _SQRT2))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    ei = (best - mu) * cdf + s * pdf
    return torch.cat([torch.zeros_like(ei[:, :1]), ei], dim=1).to(y.dtype)


def loss_ei(x: Tensor, y: Tensor, kernel: Callable[[Tensor, Tensor], Tensor], noise: float = 1e-4) -> Tensor:
    """L_EI = -mean expected improvement of the queries. x (K, T, d), y (K, T)."""
    return -expected_improvement(x, y, kernel, noise).mean()


def get_loss(name: str) -> str:
    if name not in LOSSES:
        raise ConfigError(f"loss={name!r}; expected one of {LOSSES}")
    return name
