"""Neural-network optimizees on image data, K problems stacked for vectorised stepping.

Each of the K problems has its own random initialisation and its own minibatch order;
the forward pass of all K is one batched matmul (``torch.baddbmm``) per layer, so
meta-training on K tasks costs about one call per layer, not K.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from learnt.functional.base import Params
from learnt.tasks.datasets import ImageData, load_dataset

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def _uniform(shape, bound: float, g: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=g) * 2 - 1) * bound


class ImageTask:
    """Shared machinery of image-classification tasks: minibatches and held-out metrics."""

    data: ImageData
    n_problems: int
    batch_size: int

    def forward(self, params: Params, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Logits (K, B, classes) for inputs x (K, B, C, H, W)."""
        raise NotImplementedError

    def loss(self, params: Params, batch: tuple[Tensor, Tensor]) -> Tensor:
        """Mean cross-entropy of each problem on its own minibatch: (K,)."""
        x, y = batch
        logits = self.forward(params, x)
        K, B, C = logits.shape
        return F.cross_entropy(logits.reshape(K * B, C), y.reshape(K * B), reduction="none").view(K, B).mean(1)

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless minibatches from the training images, a fresh permutation per problem per epoch.

        Yields x (K, B, C, H, W) and y (K, B). Every meta-split trains on the training
        images (as the paper); held-out images are for :meth:`metrics`.
        """
        g = g if g is not None else torch.Generator().manual_seed(0)
        x_all, y_all = self.data.split("train")
        n, K, B = len(x_all), self.n_problems, self.batch_size
        if B > n:
            raise ValueError(f"batch_size={B} exceeds the {n} training images")
        pos = n  # force a shuffle on first use
        perm = None
        while True:
            if pos + B > n:
                perm = torch.argsort(torch.rand(K, n, generator=g), dim=1).to(x_all.device)
                pos = 0
            idx = perm[:, pos:pos + B]
            pos += B
            yield x_all[idx], y_all[idx]

    @torch.no_grad()
    def metrics(self, params: Params, split: str = "test", chunk: int = 2048) -> dict[str, Tensor]:
        """Loss and accuracy of each problem on a whole image split: {"loss": (K,), "accuracy": (K,)}."""
        x_all, y_all = self.data.split(split)
        losses, correct = 0.0, 0.0
        for s in range(0, len(x_all), chunk):
            x, y = x_all[s:s + chunk], y_all[s:s + chunk]
            xk = x.unsqueeze(0).expand(self.n_problems, *x.shape)
            logits = self.forward(params, xk)
            K, B, C = logits.shape
            ce = F.cross_entropy(logits.reshape(K * B, C), y.repeat(K), reduction="none").view(K, B)
            losses = losses + ce.sum(1)
            correct = correct + (logits.argmax(-1) == y).float().sum(1)
        return {"loss": losses / len(x_all), "accuracy": correct / len(x_all)}


class MLPTask(ImageTask):
    """K MLPs ``in -> hidden... -> classes``; parameters ``fc{i}.weight`` (K, in, out), ``fc{i}.bias`` (K, out)."""

    def __init__(self, data: ImageData, hidden: tuple[int, ...], activation: str, n_problems: int,
                 batch_size: int = 128) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; expected one of {sorted(ACTIVATIONS)}")
        self.data, self.hidden, self.activation = data, tuple(hidden), activation
        self.n_problems, self.batch_size = n_problems, batch_size
        self.sizes = (math.prod(data.image_shape), *self.hidden, data.n_classes)

    def init_params(self, g: torch.Generator) -> Params:
        """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        params, K = {}, self.n_problems
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            bound = 1.0 / math.sqrt(a)
            params[f"fc{i}.weight"] = _uniform((K, a, b), bound, g)
            params[f"fc{i}.bias"] = _uniform((K, b), bound, g)
        dev = self.data.x_train.device
        return {k: v.to(dev) for k, v in params.items()}

    def forward(self, params: Params, x: Tensor) -> Tensor:
        h = x.reshape(x.shape[0], x.shape[1], -1)
        act = ACTIVATIONS[self.activation]
        n = len(self.sizes) - 1
        for i in range(n):
            h = torch.baddbmm(params[f"fc{i}.bias"].unsqueeze(1), h, params[f"fc{i}.weight"])
            if i < n - 1:
                h = act(h)
        return h


@dataclass(frozen=True)
class MLPFamily:
    """MLP classifiers on an image data set; each task has a fresh init and minibatch order.

    Example:
        >>> fam = MLPFamily(hidden=(20,), activation="sigmoid", n_problems=2)
        >>> task = fam.sample(torch.Generator().manual_seed(0))
        >>> g = torch.Generator().manual_seed(1)
        >>> task.loss(task.init_params(g), next(task.batches("train", g))).shape
        torch.Size([2])
    """

    hidden: tuple[int, ...] = (20,)
    activation: str = "sigmoid"
    n_problems: int = 1
    batch_size: int = 128
    dataset: str = "digits"
    data_path: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if any(h < 1 for h in self.hidden) or self.n_problems < 1 or self.batch_size < 1:
            raise ValueError(f"hidden={self.hidden}, n_problems={self.n_problems}, batch_size={self.batch_size}; expected positive sizes")

    def data(self) -> ImageData:
        return load_dataset(self.dataset, self.data_path).to(self.device)

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> MLPTask:
        return MLPTask(self.data(), self.hidden, self.activation,
                       self.n_problems if n_problems is None else n_problems, self.batch_size)


class ConvTask(ImageTask):
    """K small conv nets: [conv 3x3 -> batch norm -> ReLU -> max-pool 2] x L -> fc -> ReLU -> fc.

    The paper's CIFAR net scaled to small images. The K problems run as one grouped
    convolution (``groups=K``); batch-norm statistics are per problem and per minibatch
    (training mode, no running averages). Parameters: ``conv{i}.weight`` (K, Cout, Cin, 3, 3),
    ``bn{i}.weight``/``bn{i}.bias`` (K, Cout), ``fc{j}.weight`` (K, in, out), ``fc{j}.bias``.
    """

    def __init__(self, data: ImageData, channels: tuple[int, ...], fc_hidden: int, n_problems: int,
                 batch_size: int = 128) -> None:
        C, H, W = data.image_shape
        if min(H, W) < 2 ** len(channels):
            raise ValueError(f"{len(channels)} pooling layers need images of at least {2 ** len(channels)} pixels; got {H}x{W}")
        self.data, self.channels, self.fc_hidden = data, tuple(channels), fc_hidden
        self.n_problems, self.batch_size = n_problems, batch_size
        self.in_channels = C
        self.flat = channels[-1] * (H // 2 ** len(channels)) * (W // 2 ** len(channels))

    def init_params(self, g: torch.Generator) -> Params:
        K, params, cin = self.n_problems, {}, self.in_channels
        for i, cout in enumerate(self.channels):
            params[f"conv{i}.weight"] = _uniform((K, cout, cin, 3, 3), 1.0 / math.sqrt(cin * 9), g)
            params[f"bn{i}.weight"] = torch.ones(K, cout)
            params[f"bn{i}.bias"] = torch.zeros(K, cout)
            cin = cout
        for j, (a, b) in enumerate(((self.flat, self.fc_hidden), (self.fc_hidden, self.data.n_classes))):
            params[f"fc{j}.weight"] = _uniform((K, a, b), 1.0 / math.sqrt(a), g)
            params[f"fc{j}.bias"] = _uniform((K, b), 1.0 / math.sqrt(a), g)
        dev = self.data.x_train.device
        return {k: v.to(dev) for k, v in params.items()}

    def forward(self, params: Params, x: Tensor) -> Tensor:
        K, B = x.shape[:2]
        h = x.transpose(0, 1).reshape(B, K * x.shape[2], *x.shape[3:])
        for i, cout in enumerate(self.channels):
            w = params[f"conv{i}.weight"]
            h = F.conv2d(h, w.reshape(K * cout, *w.shape[2:]), padding=1, groups=K)
            h = F.batch_norm(h, None, None, params[f"bn{i}.weight"].reshape(-1), params[f"bn{i}.bias"].reshape(-1),
                             training=True)
            h = F.max_pool2d(F.relu(h), 2)
        h = h.reshape(B, K, -1).transpose(0, 1)
        h = torch.relu(torch.baddbmm(params["fc0.bias"].unsqueeze(1), h, params["fc0.weight"]))
        return torch.baddbmm(params["fc1.bias"].unsqueeze(1), h, params["fc1.weight"])


@dataclass(frozen=True)
class ConvFamily:
    """Small conv nets with batch norm on an image data set (digits 8x8 by default)."""

    channels: tuple[int, ...] = (16, 16, 16)
    fc_hidden: int = 32
    n_problems: int = 1
    batch_size: int = 128
    dataset: str = "digits"
    data_path: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"channels={self.channels}; expected one or more positive channel counts")
        if self.fc_hidden < 1 or self.n_problems < 1 or self.batch_size < 1:
            raise ValueError(f"fc_hidden={self.fc_hidden}, n_problems={self.n_problems}, batch_size={self.batch_size}; "
                             "expected positive sizes")

    def data(self) -> ImageData:
        return load_dataset(self.dataset, self.data_path).to(self.device)

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> ConvTask:
        return ConvTask(self.data(), self.channels, self.fc_hidden,
                        self.n_problems if n_problems is None else n_problems, self.batch_size)
