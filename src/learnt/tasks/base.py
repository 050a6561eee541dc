"""Optimizees: a :class:`Task` is K independent problems stepped together.

Stacking K problems along a leading dimension is how learnt vectorises: one learned
optimizer call serves every coordinate of every problem, and ``loss`` returns the K losses
so evaluation gets K paired samples from one run. Gradients of ``loss.sum()`` are each
problem's own gradients, because the problems share no parameters.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, runtime_checkable

import torch
from torch import Tensor

from learnt.functional.base import Params


@runtime_checkable
class Task(Protocol):
    """K optimization problems with parameters stacked on a leading dimension of size K."""

    n_problems: int

    def init_params(self, g: torch.Generator) -> Params:
        """Initial parameters, each tensor of shape ``(K, ...)``."""
        ...

    def loss(self, params: Params, batch: Any) -> Tensor:
        """Per-problem losses of shape ``(K,)``, differentiable in ``params``."""
        ...

    def batches(self, split: str, g: torch.Generator) -> Iterator[Any]:
        """An endless iterator of minibatches (``None`` for deterministic problems)."""
        ...


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks."""

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> Task:
        """Draw one task of ``n_problems`` problems (the family's default when None)."""
        ...


def no_batches() -> Iterator[None]:
    """Endless ``None`` batches, for problems without data."""
    while True:
        yield None
