"""Child networks: decode an :class:`Architecture` into an ``nn.Module``, train and score it.

The decoding rules are Zoph & Le's (2017, Sec. 3.3):

* a layer with several inputs concatenates them in depth;
* a layer with no input takes the image;
* inputs of different spatial sizes are zero-padded to the largest;
* every layer no other layer consumes is concatenated into the final hidden layer, which
  feeds the classifier (global average pool -> linear by default; flatten -> linear optional).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.errors import ConfigError
from learnt.nas.space import Architecture
from learnt.seeding import make_generator


def pad_to(x: Tensor, h: int, w: int) -> Tensor:
    """Zero-pad ``x`` (n, C, H, W) at the bottom/right to (n, C, h, w)."""
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


def concat_padded(xs: list[Tensor]) -> Tensor:
    """Concatenate (n, C_i, H_i, W_i) maps in depth after zero-padding them to the largest H, W."""
    if len(xs) == 1:
        return xs[0]
    h = max(x.shape[-2] for x in xs)
    w = max(x.shape[-1] for x in xs)
    return torch.cat([pad_to(x, h, w) for x in xs], dim=1)


class ChildNet(nn.Module):
    """A conv net built from an architecture: conv -> batch norm -> ReLU per layer.

    Input (n, C, H, W) images; output (n, n_classes) logits.

    Example:
        >>> from learnt.nas.space import Architecture, Layer
        >>> net = ChildNet(Architecture((Layer(3, 3, 4), Layer(5, 1, 8, inputs=(0,)))), (1, 8, 8), 10)
        >>> net(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, arch: Architecture, image_shape: tuple[int, int, int], n_classes: int,
                 head: str = "gap") -> None:
        super().__init__()
        if head not in ("gap", "flatten"):
            raise ConfigError(f"child head {head!r}; expected 'gap' (global average pool) or 'flatten'")
        self.arch = arch
        self.head_kind = head
        c0, h0, w0 = image_shape
        shapes: list[tuple[int, int, int]] = []  # (C, H, W) of each layer's output
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in arch.layers:
            ins = [shapes[j] for j in layer.inputs] or [(c0, h0, w0)]
            c = sum(s[0] for s in ins)
            h, w = max(s[1] for s in ins), max(s[2] for s in ins)
            self.convs.append(nn.Conv2d(c, layer.nf, (layer.fh, layer.fw), stride=layer.stride,
                                        padding=(layer.fh // 2, layer.fw // 2), bias=False))
            self.norms.append(nn.BatchNorm2d(layer.nf))
            shapes.append((layer.nf, (h - 1) // layer.stride + 1, (w - 1) // layer.stride + 1))
        outs = [shapes[i] for i in arch.outputs]
        h, w = max(s[1] for s in outs), max(s[2] for s in outs)
        self.features = sum(s[0] for s in outs) * (h * w if head == "flatten" else 1)
        self.head = nn.Linear(self.features, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        outs: list[Tensor] = []
        for layer, conv, norm in zip(self.arch.layers, self.convs, self.norms):
            inp = concat_padded([outs[j] for j in layer.inputs]) if layer.inputs else x
            outs.append(F.relu(norm(conv(inp))))
        z = concat_padded([outs[i] for i in self.arch.outputs])
        return self.head(z.flatten(1) if self.head_kind == "flatten" else z.mean(dim=(2, 3)))


@dataclass(frozen=True)
class ChildConfig:
    """How a child is trained: Adam on the train split, ``epochs`` passes of ``batch_size``."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 0.0
    head: str = "gap"             # classifier on the final hidden layer: "gap" or "flatten"
    max_params: int = 2_000_000   # larger children are refused (scored as failed)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"child epochs={self.epochs}, batch_size={self.batch_size}; expected both >= 1")
        if self.head not in ("gap", "flatten"):
            raise ConfigError(f"child head {self.head!r}; expected 'gap' (global average pool) or 'flatten'")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"child lr={self.lr}, weight_decay={self.weight_decay}; expected lr > 0, wd >= 0")


@dataclass(frozen=True)
class ChildJob:
    """One child training: which architecture, which seed, how, and which splits to score."""

    arch: Architecture
    seed: int
    config: ChildConfig = ChildConfig()
    splits: tuple[str, ...] = ("val",)
    dataset: str = "digits"
    key: tuple = ()               # caller's identifier, returned untouched


def _load(name: str):
    from learnt.tasks.datasets import load_dataset

    return load_dataset(name)


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor, batch: int = 1024) -> float:
    """Fraction of ``x`` (n, C, H, W) classified as ``y`` (n,) in eval mode."""
    net.eval()
    correct = sum(int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train_child(job: ChildJob) -> dict:
    """Train ``job.arch`` from scratch on the train split and score it on ``job.splits``.

    Deterministic in ``job.seed`` (weights and minibatch order); the global torch RNG is
    left as it was. Returns ``{"acc": {split: accuracy}, "params": n, "seconds": t,
    "final_loss": l}``; a non-finite training loss gives accuracy 0 on every split.
    """
    t0 = time.perf_counter()
    cfg = job.config
    data = _load(job.dataset)
    dev = torch.device(cfg.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(job.seed)
        net = ChildNet(job.arch, data.image_shape, data.n_classes, cfg.head)
    n_params = sum(p.numel() for p in net.parameters())
    if n_params > cfg.max_params:
        raise ValueError(f"child has {n_params} parameters; expected at most max_params={cfg.max_params}")
    net.to(dev)
    x, y = (t.to(dev) for t in data.split("train"))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = make_generator(job.seed, "train", 0, 7)  # minibatch order
    loss = torch.zeros(())
    for _ in range(cfg.epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g).to(dev)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    final = float(loss.detach())
    accs = {}
    for s in job.splits:
        xs, ys = (t.to(dev) for t in data.split(s))
        accs[s] = accuracy(net, xs, ys) if math.isfinite(final) else 0.0
    return {"acc": accs, "params": n_params, "seconds": time.perf_counter() - t0, "final_loss": final}
