"""The quadratic optimizee of Andrychowicz et al. (2016): f(theta) = ||W theta - y||^2."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnt.functional.base import Params
from learnt.tasks.base import no_batches


class QuadraticTask:
    """K quadratics ``f_k(theta) = ||W_k theta_k - y_k||^2``.

    Shapes: ``W`` (K, d, d), ``y`` (K, d), parameter ``theta`` (K, d); ``loss`` -> (K,).
    """

    def __init__(self, W: Tensor, y: Tensor, init_std: float = 0.01) -> None:
        if W.ndim != 3 or y.ndim != 2 or W.shape[:2] != y.shape or W.shape[1] != W.shape[2]:
            raise ValueError(f"expected W of shape (K, d, d) and y of shape (K, d); got {tuple(W.shape)}, {tuple(y.shape)}")
        self.W, self.y, self.init_std = W, y, init_std
        self.n_problems, self.dim = y.shape

    def init_params(self, g: torch.Generator) -> Params:
        theta = torch.randn(self.n_problems, self.dim, generator=g, dtype=self.y.dtype) * self.init_std
        return {"theta": theta.to(self.y.device)}

    def loss(self, params: Params, batch=None) -> Tensor:
        r = torch.bmm(self.W, params["theta"].unsqueeze(-1)).squeeze(-1) - self.y
        return (r * r).sum(-1)

    def batches(self, split: str = "train", g: torch.Generator | None = None):
        return no_batches()

    def optimum(self) -> Tensor:
        """Minimum value of each problem (zero unless W is singular), shape (K,)."""
        sol = torch.linalg.lstsq(self.W, self.y.unsqueeze(-1)).solution
        return self.loss({"theta": sol.squeeze(-1)})


@dataclass(frozen=True)
class QuadraticFamily:
    """Random 10-d quadratics; W and y i.i.d. Gaussian (paper) or uniform (released code).

    Example:
        >>> fam = QuadraticFamily(dim=10, n_problems=4)
        >>> task = fam.sample(torch.Generator().manual_seed(0))
        >>> task.loss(task.init_params(torch.Generator().manual_seed(1))).shape
        torch.Size([4])
    """

    dim: int = 10
    n_problems: int = 128
    distribution: str = "gaussian"
    init_std: float = 0.01
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.dim < 1 or self.n_problems < 1:
            raise ValueError(f"dim and n_problems must be >= 1, got dim={self.dim}, n_problems={self.n_problems}")
        if self.distribution not in ("gaussian", "uniform"):
            raise ValueError(f"distribution={self.distribution!r}; expected 'gaussian' or 'uniform'")

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> QuadraticTask:
        k = self.n_problems if n_problems is None else n_problems
        draw = torch.randn if self.distribution == "gaussian" else torch.rand
        W = draw(k, self.dim, self.dim, generator=g)
        y = draw(k, self.dim, generator=g)
        return QuadraticTask(W.to(self.device), y.to(self.device), self.init_std)
