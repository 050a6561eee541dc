"""Classifiers on small random data sets: softmax regression on Gaussian blobs, tiny MLPs.

Part of the training ensemble of Wichrowska et al. (2017). Each of the K problems has its
own random data set of ``n_data`` points (drawn by the family with the generator given to
``sample``) and its own minibatch draws; the forward pass of all K is one batched matmul
per layer. Losses are mean cross-entropies, so ``lower_bound`` is 0 (``min_value`` is None:
the minimum depends on the data).

Shapes: inputs ``x`` (K, N, d), labels ``y`` (K, N) int64; a minibatch is
``(x (K, B, d), y (K, B))``; ``loss`` -> (K,).

Example:
    >>> task = SoftmaxRegressionFamily(dims=(3,), n_problems=2).sample(torch.Generator().manual_seed(0))
    >>> g = torch.Generator().manual_seed(1)
    >>> task.loss(task.init_params(g), next(task.batches("train", g))).shape
    torch.Size([2])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from learnt.functional.base import Params
from learnt.tasks.functions import check_index, check_sizes, choose

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


class RandomDataTask:
    """Shared machinery: minibatches drawn per problem from its own data set, mean cross-entropy."""

    name = "classifier"
    min_value = None
    lower_bound = 0.0

    def __init__(self, x: Tensor, y: Tensor, n_classes: int, batch_size: int) -> None:
        if x.ndim != 3 or y.shape != x.shape[:2]:
            raise ValueError(f"expected x of shape (K, N, d) and y of shape (K, N); got {tuple(x.shape)}, {tuple(y.shape)}")
        check_sizes(n_classes=n_classes, batch_size=batch_size)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes}); got range [{int(y.min())}, {int(y.max())}]")
        self.x, self.y, self.n_classes, self.batch_size = x, y, n_classes, batch_size
        self.n_problems, self.n_data, self.dim = x.shape

    def forward(self, params: Params, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Logits (K, B, n_classes) for inputs x (K, B, d)."""
        raise NotImplementedError

    def loss(self, params: Params, batch: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Mean cross-entropy of each problem on its minibatch (the whole data set if None): (K,)."""
        x, y = self.full_batch() if batch is None else batch
        logits = self.forward(params, x)
        K, B, C = logits.shape
        return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B).mean(1)

    def full_batch(self) -> tuple[Tensor, Tensor]:
        """The whole data set as one batch: x (K, N, d), y (K, N)."""
        return self.x, self.y

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless minibatches of ``batch_size`` points drawn with replacement, independently per problem."""
        g = g if g is not None else torch.Generator().manual_seed(0)
        rows = torch.arange(self.n_problems, device=self.x.device).unsqueeze(1)
        while True:
            idx = torch.randint(self.n_data, (self.n_problems, self.batch_size), generator=g).to(self.x.device)
            yield self.x[rows, idx], self.y[rows, idx]

    def _slice(self, k: int) -> tuple[Tensor, Tensor]:
        check_index(k, self.n_problems)
        return self.x[k:k + 1], self.y[k:k + 1]


class SoftmaxRegressionTask(RandomDataTask):
    """K linear softmax classifiers: params ``weight`` (K, d, C), ``bias`` (K, C); init ``N(0, init_std^2)``, zero bias."""

    name = "softmax_regression"

    def __init__(self, x: Tensor, y: Tensor, n_classes: int = 2, batch_size: int = 32, init_std: float = 0.01) -> None:
        super().__init__(x, y, n_classes, batch_size)
        self.init_std = init_std

    def init_params(self, g: torch.Generator) -> Params:
        w = torch.randn(self.n_problems, self.dim, self.n_classes, generator=g) * self.init_std
        b = torch.zeros(self.n_problems, self.n_classes)
        return {"weight": w.to(self.x), "bias": b.to(self.x)}

    def forward(self, params: Params, x: Tensor) -> Tensor:
        return torch.baddbmm(params["bias"].unsqueeze(1), x, params["weight"])

    def problem(self, k: int) -> "SoftmaxRegressionTask":
        return SoftmaxRegressionTask(*self._slice(k), self.n_classes, self.batch_size, self.init_std)

    def describe(self) -> str:
        return f"{self.name}[d={self.dim},c={self.n_classes}]"


class TinyMLPTask(RandomDataTask):
    """K small MLPs ``d -> hidden... -> C``; params ``fc{i}.weight`` (K, in, out), ``fc{i}.bias`` (K, out).

    Initialised like ``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    name = "tiny_mlp"

    def __init__(self, x: Tensor, y: Tensor, hidden: tuple[int, ...] = (8,), activation: str = "sigmoid",
                 n_classes: int = 2, batch_size: int = 32) -> None:
        super().__init__(x, y, n_classes, batch_size)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; expected one of {sorted(ACTIVATIONS)}")
        check_sizes(**{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        self.hidden, self.activation = tuple(hidden), activation
        self.sizes = (self.dim, *self.hidden, n_classes)

    def init_params(self, g: torch.Generator) -> Params:
        params, K = {}, self.n_problems
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            bound = 1.0 / math.sqrt(a)
            params[f"fc{i}.weight"] = ((torch.rand(K, a, b, generator=g) * 2 - 1) * bound).to(self.x)
            params[f"fc{i}.bias"] = ((torch.rand(K, b, generator=g) * 2 - 1) * bound).to(self.x)
        return params

    def forward(self, params: Params, x: Tensor) -> Tensor:
        act, n, h = ACTIVATIONS[self.activation], len(self.sizes) - 1, x
        for i in range(n):
            h = torch.baddbmm(params[f"fc{i}.bias"].unsqueeze(1), h, params[f"fc{i}.weight"])
            if i < n - 1:
                h = act(h)
        return h

    def problem(self, k: int) -> "TinyMLPTask":
        return TinyMLPTask(*self._slice(k), self.hidden, self.activation, self.n_classes, self.batch_size)

    def describe(self) -> str:
        return f"{self.name}[d={self.dim},h={'x'.join(map(str, self.hidden))}]"


def _check_common(dims: tuple[int, ...], n_problems: int, n_data: int, batch_size: int, n_classes: int) -> None:
    if not dims or any(int(d) != d or d < 1 for d in dims):
        raise ValueError(f"dims={dims!r}; expected a non-empty tuple of positive integers")
    check_sizes(n_problems=n_problems, n_data=n_data, batch_size=batch_size)
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes}; expected >= 2")


@dataclass(frozen=True)
class SoftmaxRegressionFamily:
    """Softmax regression on Gaussian blobs: each class c of each problem has mean
    ``mu_c ~ N(0, separation^2 I)``; points are ``mu_y + N(0, I)`` with uniform random labels.

    Example:
        >>> task = SoftmaxRegressionFamily(dims=(4,), n_problems=2).sample(torch.Generator().manual_seed(0))
        >>> task.x.shape, task.describe()
        (torch.Size([2, 256, 4]), 'softmax_regression[d=4,c=2]')
    """

    dims: tuple[int, ...] = (2, 5, 10)
    n_problems: int = 8
    n_data: int = 256
    batch_size: int = 32
    n_classes: int = 2
    separation: float = 2.0
    init_std: float = 0.01
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_common(self.dims, self.n_problems, self.n_data, self.batch_size, self.n_classes)

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> SoftmaxRegressionTask:
        k, d = self.n_problems if n_problems is None else n_problems, choose(self.dims, g)
        means = torch.randn(k, self.n_classes, d, generator=g) * self.separation
        y = torch.randint(self.n_classes, (k, self.n_data), generator=g)
        x = means[torch.arange(k).unsqueeze(1), y] + torch.randn(k, self.n_data, d, generator=g)
        return SoftmaxRegressionTask(x.to(self.dtype).to(self.device), y.to(self.device), self.n_classes,
                                     self.batch_size, self.init_std)


@dataclass(frozen=True)
class TinyMLPFamily:
    """Tiny MLPs on ``N(0, I)`` inputs; labels from a random linear teacher
    (``argmax(x T)``, ``T ~ N(0, 1)`` per problem; ``labels="teacher"``) or uniform random
    (``labels="random"``, pure memorisation). Hidden sizes are drawn from ``hidden``.

    Example:
        >>> task = TinyMLPFamily(dims=(3,), hidden=((4,),), n_problems=2).sample(torch.Generator().manual_seed(0))
        >>> sorted(task.init_params(torch.Generator().manual_seed(1)))
        ['fc0.bias', 'fc0.weight', 'fc1.bias', 'fc1.weight']
    """

    dims: tuple[int, ...] = (2, 5, 10)
    hidden: tuple[tuple[int, ...], ...] = ((4,), (8,), (8, 8))
    activation: str = "sigmoid"
    labels: str = "teacher"
    n_problems: int = 8
    n_data: int = 256
    batch_size: int = 32
    n_classes: int = 2
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_common(self.dims, self.n_problems, self.n_data, self.batch_size, self.n_classes)
        if not self.hidden or any(not isinstance(h, tuple) or any(s < 1 for s in h) for h in self.hidden):
            raise ValueError(f"hidden={self.hidden!r}; expected a non-empty tuple of tuples of positive sizes")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if self.labels not in ("teacher", "random"):
            raise ValueError(f"labels={self.labels!r}; expected 'teacher' or 'random'")

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> TinyMLPTask:
        k, d = self.n_problems if n_problems is None else n_problems, choose(self.dims, g)
        hidden = choose(self.hidden, g)
        x = torch.randn(k, self.n_data, d, generator=g)
        if self.labels == "teacher":
            y = torch.bmm(x, torch.randn(k, d, self.n_classes, generator=g)).argmax(-1)
        else:
            y = torch.randint(self.n_classes, (k, self.n_data), generator=g)
        return TinyMLPTask(x.to(self.dtype).to(self.device), y.to(self.device), hidden, self.activation,
                           self.n_classes, self.batch_size)
