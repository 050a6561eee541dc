"""Meta-objectives: reduce an unroll's (steps + 1, K) losses to one scalar to minimise."""
from __future__ import annotations

import torch
from torch import Tensor


def sum_of_losses(losses: Tensor, f0: Tensor | None = None) -> Tensor:
    """Andrychowicz et al.: ``sum_t mean_k f_t`` over the rows 1.. that depend on phi."""
    return losses[1:].mean(-1).sum()


def mean_log_ratio(losses: Tensor, f0: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    """Wichrowska et al.: ``mean_t mean_k log(f_t / f_0)``; scale free.

    ``f0`` (K,) is the loss at the start of the whole run (defaults to row 0 of ``losses``).
    """
    f0 = losses[0].detach() if f0 is None else f0
    return (torch.log(losses[1:].clamp_min(eps)) - torch.log(f0.clamp_min(eps))).mean()


def floored_log_ratio(losses: Tensor, f0: Tensor | None = None, floor: float = 1e-4) -> Tensor:
    """:func:`mean_log_ratio` with each term floored at ``log(floor)``: a problem whose loss can
    reach 0 (separable data, noise-free regression) stops counting once it is 10^4 times below
    its start, instead of dominating the mean with an unbounded log."""
    f0 = losses[0].detach() if f0 is None else f0
    ratio = torch.log(losses[1:].clamp_min(1e-30)) - torch.log(f0.clamp_min(1e-30))
    return ratio.clamp_min(torch.log(torch.tensor(floor)).item()).mean()


OBJECTIVES = {"sum": sum_of_losses, "log_ratio": mean_log_ratio, "log_ratio_floored": floored_log_ratio}


def get_objective(name: str):
    """Look up a meta-objective by name (``sum``, ``log_ratio`` or ``log_ratio_floored``)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown meta-objective {name!r}; expected one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
