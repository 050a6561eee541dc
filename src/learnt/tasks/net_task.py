"""Any ``nn.Module`` on a :class:`~learnt.tasks.netdata.NetData` as a K-problem learnt Task.

Example:
    >>> import torch
    >>> from learnt.tasks.netdata import gaussian_mixture
    >>> from learnt.tasks.nets import MLP
    >>> g = torch.Generator().manual_seed(0)
    >>> data = gaussian_mixture(g, d=4, n_classes=3, n_train=64, n_test=32)
    >>> task = NetTask(lambda: MLP(4, (8,), 3), data, n_problems=2, batch_size=16)
    >>> params = task.init_params(g)
    >>> task.loss(params, next(task.batches("train", g))).shape
    torch.Size([2])
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from learnt.functional.base import Params
from learnt.tasks.netdata import NetData


def _loss(kind: str, out: Tensor, y: Tensor) -> Tensor:
    """Per-example losses (B,) of one problem's outputs (B, n_out)."""
    if kind == "ce":
        return F.cross_entropy(out, y, reduction="none")
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out, y, reduction="none").mean(-1)
    return (out - y).pow(2).mean(-1)


class NetTask:
    """K independent trainings of ``build()`` on ``data``, stacked for vectorised stepping.

    Args:
        build: returns a fresh module (called under a per-problem seed, so the K
            initialisations are independent and reproducible from the generator).
        data: the inputs/targets (shared by the K problems; each has its own batch order).
        batch_size: minibatch size (capped at the training set size).
        loss_scale: the optimizee minimises ``loss_scale * loss`` (task augmentation).
        param_scales: per-tensor reparameterisation: the module sees ``scale * p`` where the
            optimizer sees ``p`` (so gradients scale by ``scale``, parameters by ``1/scale``);
            a dict name -> float, or None.
        heldout_objective: when True, :meth:`loss` on a ``(train_batch, val_batch)`` pair
            returns the held-out batch's loss as its *value* while its gradient is the training
            batch's (``train + (val - train).detach()``), so a meta-objective over the unroll's
            losses measures generalisation without any held-out gradient reaching the optimizee.
        name: for tables and logs.
    """

    def __init__(self, build: Callable[[], nn.Module], data: NetData, n_problems: int = 1, batch_size: int = 64,
                 loss_scale: float = 1.0, param_scales: dict[str, float] | None = None,
                 heldout_objective: bool = False, name: str = "") -> None:
        if n_problems < 1:
            raise ValueError(f"n_problems={n_problems}; expected >= 1")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; expected >= 1")
        if not loss_scale > 0:
            raise ValueError(f"loss_scale={loss_scale}; expected > 0")
        self.build, self.data, self.n_problems = build, data, int(n_problems)
        self.batch_size = min(int(batch_size), len(data.x_train))
        self.loss_scale = float(loss_scale)
        self.heldout_objective = bool(heldout_objective)
        self.module = build()
        self.names = [k for k, _ in self.module.named_parameters()]
        self.param_scales = {k: float(v) for k, v in (param_scales or {}).items()}
        unknown = set(self.param_scales) - set(self.names)
        if unknown:
            raise ValueError(f"param_scales names {sorted(unknown)} are not parameters of the module; expected some of {self.names}")
        self.name = name or data.name
        buffers = sorted(k for k, _ in self.module.named_buffers())
        if buffers:
            raise ValueError(f"module has buffers {buffers[:3]}; NetTask needs buffer-free modules "
                             "(use BatchNorm(track_running_stats=False))")

        def one(p: Params, x: Tensor) -> Tensor:
            return functional_call(self.module, p, (x,))

        self._forward = vmap(one)

    @property
    def n_params(self) -> int:
        """Parameters of one problem."""
        return sum(p.numel() for p in self.module.parameters())

    def init_params(self, g: torch.Generator) -> Params:
        """Independent initialisations of the K problems: each tensor (K, *shape)."""
        per = []
        for _ in range(self.n_problems):
            seed = int(torch.randint(0, 2**62, (), generator=g))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                m = self.build()
            per.append({k: p.detach() for k, p in m.named_parameters()})
        return {k: torch.stack([p[k] for p in per]) / self.param_scales.get(k, 1.0) for k in self.names}

    def _effective(self, params: Params) -> Params:
        if not self.param_scales:
            return params
        return {k: p * self.param_scales[k] if k in self.param_scales else p for k, p in params.items()}

    def outputs(self, params: Params, x: Tensor) -> Tensor:
        """Model outputs (K, B, n_out) for inputs x (K, B, *in_shape)."""
        return self._forward(self._effective(params), x)

    def _per_problem(self, params: Params, x: Tensor, y: Tensor) -> Tensor:
        out = self.outputs(params, x)
        K, B = out.shape[:2]
        flat_y = y.reshape(K * B, *y.shape[2:])
        return _loss(self.data.loss, out.reshape(K * B, *out.shape[2:]), flat_y).view(K, B).mean(1)

    def loss(self, params: Params, batch) -> Tensor:
        """``loss_scale`` x mean loss of each problem on its own minibatch: (K,)."""
        if self.heldout_objective and isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], tuple):
            (x, y), (xv, yv) = batch
            train = self._per_problem(params, x, y)
            with torch.no_grad():
                val = self._per_problem(params, xv, yv)
            return self.loss_scale * (train + (val - train).detach())
        x, y = batch
        return self.loss_scale * self._per_problem(params, x, y)

    def _stream(self, split: str, g: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        x_all, y_all = self.data.split(split)
        n, K, B = len(x_all), self.n_problems, min(self.batch_size, len(x_all))
        pos, perm = n, None
        while True:
            if pos + B > n:
                perm = torch.argsort(torch.rand(K, n, generator=g), dim=1)
                pos = 0
            idx = perm[:, pos:pos + B]
            pos += B
            yield x_all[idx], y_all[idx]

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator:
        """Endless minibatches ``(x (K, B, ...), y (K, B, ...))`` of ``split``; with
        ``heldout_objective`` and ``split="train"``, pairs ``(train_batch, heldout_batch)``."""
        g = g if g is not None else torch.Generator().manual_seed(0)
        train = self._stream(split, g)
        if not (self.heldout_objective and split == "train"):
            return train
        held = self._stream("val", torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g))))
        return zip(train, held)

    @torch.no_grad()
    def metrics(self, params: Params, split: str = "test", chunk: int = 1024) -> dict[str, Tensor]:
        """Whole-split mean loss (without ``loss_scale``) of each problem, and accuracy for
        classification: ``{"loss": (K,), "accuracy": (K,)}``."""
        x_all, y_all = self.data.split(split)
        K = self.n_problems
        total, correct = torch.zeros(K), torch.zeros(K)
        for s in range(0, len(x_all), chunk):
            x, y = x_all[s:s + chunk], y_all[s:s + chunk]
            xk = x.unsqueeze(0).expand(K, *x.shape)
            out = self.outputs(params, xk)
            B = out.shape[1]
            yk = y.unsqueeze(0).expand(K, *y.shape)
            total += _loss(self.data.loss, out.reshape(K * B, *out.shape[2:]), yk.reshape(K * B, *y.shape[1:])).view(K, B).sum(1)
            if self.data.loss == "ce":
                correct += (out.argmax(-1) == yk).float().sum(1)
        out = {"loss": total / len(x_all)}
        if self.data.loss == "ce":
            out["accuracy"] = correct / len(x_all)
        return out

    def describe(self) -> str:
        return f"{self.name} ({self.n_params} params, batch {self.batch_size})"


def log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    """A draw from log-uniform(lo, hi)."""
    u = float(torch.rand((), generator=g))
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
