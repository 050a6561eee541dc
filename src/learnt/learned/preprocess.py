"""Input preprocessing for coordinatewise learned optimizers."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def log_sign(g: Tensor, p: float = 10.0, dim: int = -1) -> Tensor:
    """Andrychowicz et al. (2016), appendix A: gradient -> two features per coordinate.

    ``(log|g| / p, sign g)`` where ``|g| >= e^-p``, else ``(-1, e^p g)``.
    Shapes: ``g`` (N,) -> (N, 2) (or (2, N) with ``dim=0``). Finite for every finite
    input, zero included.

    Example:
        >>> log_sign(torch.tensor([1.0, 0.0]), p=10.0)
        tensor([[ 0.,  1.],
                [-1.,  0.]])
    """
    if p <= 0:
        raise ValueError(f"preprocessing p={p!r} is invalid; expected p > 0")
    absg = g.abs()
    big = absg >= math.exp(-p)
    # clamp keeps log finite where the branch is not taken, so where() has clean gradients
    first = torch.where(big, torch.log(absg.clamp_min(math.exp(-p))) / p, torch.full_like(g, -1.0))
    second = torch.where(big, torch.sign(g), g * math.exp(p))
    return torch.stack([first, second], dim=dim)
