"""The learners that few-shot methods adapt, used functionally (``torch.func.functional_call``).

:class:`ConvLearner` is the 4-block network of Ravi & Larochelle (2017) and MAML:
4 x [conv 3x3 (``filters``), batch norm, ReLU, max-pool 2] then a linear head sized to the
input. Batch norm keeps **no running statistics** (``track_running_stats=False``): every
forward pass normalises with the statistics of its own batch, so nothing carries over from
one episode to the next (the statistics are reset per episode by construction) and a query
set is normalised with its own batch statistics, as in the reference MAML code.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


class ConvLearner(nn.Module):
    """4 conv blocks + linear head.

    Shapes: x (B, C, H, W) -> logits (B, n_out); ``features(x)`` -> (B, filters * s * s)
    with s = H halved (floor) four times.

    Example:
        >>> net = ConvLearner(1, 28, 5)
        >>> net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 5])
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_out: int = 5, filters: int = 32,
                 blocks: int = 4) -> None:
        super().__init__()
        if image_size < 2 ** blocks:
            raise ValueError(f"image_size={image_size} is too small for {blocks} max-pool blocks; expected >= {2 ** blocks}")
        layers, c = [], in_channels
        for _ in range(blocks):
            layers += [nn.Conv2d(c, filters, 3, padding=1), nn.BatchNorm2d(filters, track_running_stats=False),
                       nn.ReLU(), nn.MaxPool2d(2)]
            c = filters
        self.body = nn.Sequential(*layers)
        s = image_size
        for _ in range(blocks):
            s //= 2
        self.feature_dim = filters * s * s
        self.head = nn.Linear(self.feature_dim, n_out)
        self.arch = {"in_channels": in_channels, "image_size": image_size, "n_out": n_out, "filters": filters,
                     "blocks": blocks}

    def features(self, x: Tensor) -> Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class SineMLP(nn.Module):
    """MAML's sinusoid regressor: 1 -> hidden -> hidden -> 1 with ReLU. x (B, 1) -> (B, 1)."""

    def __init__(self, hidden: int = 40) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))
        self.arch = {"hidden": hidden}

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def run(module: nn.Module, params: Params, x: Tensor) -> Tensor:
    """``module(x)`` with its parameters replaced by ``params`` (keeps the graph to them)."""
    return functional_call(module, params, (x,))


class FlatParams:
    """Flatten a learner's parameter dict into one vector and back (views, differentiable).

    Example:
        >>> fp = FlatParams(dict(nn.Linear(2, 3).named_parameters()))
        >>> fp.numel, fp.unflatten(torch.zeros(9))["weight"].shape
        (9, torch.Size([3, 2]))
    """

    def __init__(self, params: Params) -> None:
        self.names = list(params)
        self.shapes = [tuple(p.shape) for p in params.values()]
        self.sizes = [p.numel() for p in params.values()]
        self.numel = sum(self.sizes)

    def flatten(self, params: Params) -> Tensor:
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def unflatten(self, flat: Tensor) -> Params:
        if flat.shape != (self.numel,):
            raise ValueError(f"flat parameter vector of shape {tuple(flat.shape)}; expected ({self.numel},)")
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.sizes), self.shapes)}
