"""Embedded and procedurally generated data for network optimizees (nothing downloads).

Every generator takes a ``torch.Generator`` and returns a :class:`NetData`: a training
split that optimizees step on and a held-out split for test metrics (and for the held-out
part of the meta-objective). The digits helpers draw from scikit-learn's bundled 8x8 digits
through :func:`learnt.tasks.datasets.load_digits`; ``heldout`` picks which of its splits
plays the held-out role (meta-training uses ``"val"``, evaluation suites ``"test"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnt.tasks.datasets import load_digits

LOSSES = ("ce", "mse", "bce")


@dataclass(frozen=True)
class NetData:
    """Inputs and targets, split in two. ``loss``: ``ce`` (y int classes), ``mse`` or ``bce``
    (y float, same shape as the model output); ``n_out``: model output width."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    loss: str
    n_out: int
    name: str

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; expected one of {LOSSES}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: inputs and targets differ in length")

    def split(self, which: str) -> tuple[Tensor, Tensor]:
        if which == "train":
            return self.x_train, self.y_train
        if which in ("val", "test"):
            return self.x_test, self.y_test
        raise ValueError(f"split {which!r}; expected 'train', 'val' or 'test'")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (), generator=g))


def digits(g: torch.Generator, *, n_classes: int = 10, image: bool = False, scale: float = 1.0,
           n_train: int | None = None, heldout: str = "val", label_noise: float = 0.0,
           target: str = "class") -> NetData:
    """Digits: a random subset of ``n_classes`` classes (relabelled 0..n-1), optionally only
    ``n_train`` training images, pixels times ``scale``, a fraction of training labels
    replaced at random. ``target="reconstruct"`` gives the image itself (autoencoders, BCE)."""
    d = load_digits()
    if heldout not in ("val", "test"):
        raise ValueError(f"heldout={heldout!r}; expected 'val' or 'test'")
    classes = torch.randperm(10, generator=g)[:n_classes].sort().values
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[classes] = torch.arange(n_classes)

    def pick(x: Tensor, y: Tensor, n: int | None) -> tuple[Tensor, Tensor]:
        keep = remap[y] >= 0
        x, y = x[keep], remap[y[keep]]
        if n is not None and n < len(x):
            idx = torch.randperm(len(x), generator=g)[:n]
            x, y = x[idx], y[idx]
        return (x if image else x.flatten(1)) * scale, y

    xtr, ytr = pick(d.x_train, d.y_train, n_train)
    xte, yte = pick(*d.split(heldout), None)
    if target == "reconstruct":
        return NetData(xtr, (xtr / scale).flatten(1), xte, (xte / scale).flatten(1), "bce", 64, "digits-ae")
    if label_noise > 0:
        flip = torch.rand(len(ytr), generator=g) < label_noise
        ytr = torch.where(flip, torch.randint(0, n_classes, ytr.shape, generator=g), ytr)
    return NetData(xtr, ytr, xte, yte, "ce", n_classes, f"digits{n_classes}")


def _teacher(g: torch.Generator, d: int, d_out: int, width: int, depth: int = 2) -> list[tuple[Tensor, Tensor]]:
    dims = [d] + [width] * (depth - 1) + [d_out]
    return [(torch.randn(a, b, generator=g) / a ** 0.5, 0.1 * torch.randn(b, generator=g)) for a, b in zip(dims[:-1], dims[1:])]


def _teach(layers, x: Tensor) -> Tensor:
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = torch.tanh(2 * h)
    return h


def teacher(g: torch.Generator, *, d: int = 16, n_out: int = 4, n_train: int = 1024, n_test: int = 512,
            kind: str = "classify", width: int = 32, noise: float = 0.1, scale: float = 1.0) -> NetData:
    """A random teacher network labels Gaussian inputs: classes (argmax) or noisy regression targets."""
    layers = _teacher(g, d, n_out, width)
    x = torch.randn(n_train + n_test, d, generator=g)
    out = _teach(layers, x)
    if kind == "classify":
        y = (out + noise * torch.randn(out.shape, generator=g)).argmax(1)
        loss = "ce"
    elif kind == "regress":
        out = out / out.std(0, keepdim=True).clamp_min(1e-6)
        y = out + noise * torch.randn(out.shape, generator=g)
        loss = "mse"
    else:
        raise ValueError(f"kind={kind!r}; expected 'classify' or 'regress'")
    x = x * scale
    return NetData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], loss, n_out, f"teacher-{kind}")


def gaussian_mixture(g: torch.Generator, *, d: int = 8, n_classes: int = 4, n_train: int = 1024,
                     n_test: int = 512, separation: float = 2.0, scale: float = 1.0) -> NetData:
    """Classes are Gaussian blobs with random means and anisotropic covariances."""
    means = torch.randn(n_classes, d, generator=g) * separation
    mix = torch.randn(n_classes, d, d, generator=g) / d ** 0.5
    y = torch.randint(0, n_classes, (n_train + n_test,), generator=g)
    z = torch.randn(n_train + n_test, d, generator=g)
    x = (means[y] + torch.einsum("nd,nde->ne", z, mix[y])) * scale
    return NetData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "ce", n_classes, "gaussian-mixture")


def linear_regression(g: torch.Generator, *, d: int = 32, n_out: int = 1, n_train: int = 512, n_test: int = 256,
                      condition: float = 10.0, noise: float = 0.1) -> NetData:
    """Least squares with an input covariance of the given condition number."""
    spectrum = torch.logspace(0, -torch.log10(torch.tensor(condition)).item(), d) ** 0.5
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    x = torch.randn(n_train + n_test, d, generator=g) * spectrum @ q.T
    w = torch.randn(d, n_out, generator=g)
    y = x @ w + noise * torch.randn(n_train + n_test, n_out, generator=g)
    return NetData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "mse", n_out, "linear-regression")


def sequence(g: torch.Generator, *, task: str = "majority", vocab: int = 8, length: int = 12,
             n_train: int = 1024, n_test: int = 512) -> NetData:
    """Synthetic sequence tasks over tokens (B, L):

    - ``majority``: the most frequent token (ties to the smallest);
    - ``adding``: (value, marker) pairs as floats (B, L, 2); regress the sum of the two marked values;
    - ``first``: the first token, read at the end (memory);
    - ``count``: how many times token 0 occurs, as a class (0..L);
    - ``retrieval``: the token that follows the (unique) marker token ``vocab - 1``.
    """
    n = n_train + n_test
    if task == "adding":
        vals = torch.rand(n, length, generator=g)
        marks = torch.zeros(n, length)
        first = torch.randint(0, length // 2, (n,), generator=g)
        second = torch.randint(length // 2, length, (n,), generator=g)
        marks[torch.arange(n), first] = 1.0
        marks[torch.arange(n), second] = 1.0
        x = torch.stack([vals, marks], -1)
        y = (vals * marks).sum(1, keepdim=True)
        return NetData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "mse", 1, "seq-adding")
    x = torch.randint(0, vocab, (n, length), generator=g)
    if task == "majority":
        y = torch.nn.functional.one_hot(x, vocab).sum(1).argmax(1)
        n_out = vocab
    elif task == "first":
        y, n_out = x[:, 0].clone(), vocab
    elif task == "count":
        y, n_out = (x == 0).sum(1), length + 1
    elif task == "retrieval":
        x = torch.randint(0, vocab - 1, (n, length), generator=g)
        pos = torch.randint(0, length - 1, (n,), generator=g)
        x[torch.arange(n), pos] = vocab - 1
        y, n_out = x[torch.arange(n), pos + 1].clone(), vocab - 1
    else:
        raise ValueError(f"unknown sequence task {task!r}; expected adding, majority, first, count or retrieval")
    return NetData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "ce", n_out, f"seq-{task}")
