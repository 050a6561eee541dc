"""MAML's sinusoid regression (Finn et al. 2017, section 5.1) as seeded episodes.

A task is ``y = A sin(x - phase)`` with ``A ~ U[0.1, 5]``, ``phase ~ U[0, pi]``, inputs
``x ~ U[-5, 5]``; an episode has ``k_shot`` support points and ``n_query`` query points.
"""
from __future__ import annotations

import math

import torch

from learnt.fewshot.episodes import Episode
from learnt.seeding import make_generator


class SinusoidEpisodes:
    """Seeded sinusoid episodes; ``episode(i)`` has the :class:`EpisodeSampler` interface.

    Shapes: support x, y (k_shot, 1); query x, y (n_query, 1).

    Example:
        >>> ep = SinusoidEpisodes(k_shot=10, n_query=100, split="test").episode(0)
        >>> ep.support_x.shape, ep.query_y.shape
        (torch.Size([10, 1]), torch.Size([100, 1]))
    """

    def __init__(self, k_shot: int = 10, n_query: int = 10, *, split: str = "train", seed: int = 0,
                 amplitude: tuple[float, float] = (0.1, 5.0), phase: tuple[float, float] = (0.0, math.pi),
                 x_range: tuple[float, float] = (-5.0, 5.0)) -> None:
        if k_shot < 1 or n_query < 1:
            raise ValueError(f"k_shot={k_shot}, n_query={n_query}; expected both >= 1")
        self.k_shot, self.n_query, self.split, self.seed = k_shot, n_query, split, seed
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    def _u(self, g, lo_hi, *shape):
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    def episode(self, index: int, *extra: int) -> Episode:
        g = make_generator(self.seed, self.split, index, 13, *extra)
        a, ph = self._u(g, self.amplitude, 1), self._u(g, self.phase, 1)
        x = self._u(g, self.x_range, self.k_shot + self.n_query, 1)
        y = a * torch.sin(x - ph)
        k = self.k_shot
        return Episode(x[:k], y[:k], x[k:], y[k:])

    def pretrain_batch(self, index: int, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` points, each from its own random task: the pre-training data of the
        fine-tuning baseline (it learns the mean over tasks). Shapes (B, 1), (B, 1)."""
        g = make_generator(self.seed, self.split, index, 14)
        a, ph = self._u(g, self.amplitude, batch_size, 1), self._u(g, self.phase, batch_size, 1)
        x = self._u(g, self.x_range, batch_size, 1)
        return x, a * torch.sin(x - ph)
