"""Few-shot baselines in the same harness as the meta-learner: MAML (first and second
order), Prototypical Networks, and two methods on a network pre-trained on all meta-train
classes at once: nearest neighbour in its embedding and fine-tuning it on the support set.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.fewshot.learner import run
from learnt.fewshot.methods import Method, task_loss


class MAML(Method):
    """Finn et al. (2017): ``steps`` SGD steps of size ``inner_lr`` from learned initial weights.

    ``first_order=True`` drops the second derivatives (FOMAML). Shapes as :class:`Method`.

    Example:
        >>> from learnt.fewshot.learner import SineMLP
        >>> m = MAML(SineMLP(8), task="regression", steps=1, inner_lr=0.01)
        >>> m.query_output(torch.zeros(5, 1), torch.zeros(5, 1), torch.zeros(3, 1)).shape
        torch.Size([3, 1])
    """

    kind = "maml"

    def __init__(self, learner: nn.Module, task: str = "classification", steps: int = 5, inner_lr: float = 0.4,
                 first_order: bool = False) -> None:
        super().__init__(learner, task)
        if steps < 1 or inner_lr <= 0:
            raise ValueError(f"steps={steps}, inner_lr={inner_lr}; expected steps >= 1 and inner_lr > 0")
        self.steps, self.inner_lr, self.first_order = steps, inner_lr, first_order

    def config(self) -> dict:
        return {**super().config(), "steps": self.steps, "inner_lr": self.inner_lr, "first_order": self.first_order}

    def adapt(self, sx: Tensor, sy: Tensor, steps: int | None = None) -> dict[str, Tensor]:
        meta = torch.is_grad_enabled()
        params = dict(self.learner.named_parameters())
        if not meta:
            params = {k: p.detach().requires_grad_(True) for k, p in params.items()}
        with torch.enable_grad():
            for _ in range(self.steps if steps is None else steps):
                loss = task_loss(self.task, run(self.learner, params, sx), sy)
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=meta and not self.first_order)
                params = {k: p - self.inner_lr * (g if meta and not self.first_order else g.detach())
                          for (k, p), g in zip(params.items(), grads)}
        return params

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        return run(self.learner, self.adapt(sx, sy), qx)


class ProtoNet(Method):
    """Snell et al. (2017): class prototypes = mean support embedding; logits = -squared distance.

    The embedding is the learner's conv body (its head is unused)."""

    kind = "protonet"

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        n_way = int(sy.max()) + 1
        zs, zq = self.learner.features(sx), self.learner.features(qx)
        protos = torch.zeros(n_way, zs.shape[1], dtype=zs.dtype, device=zs.device).index_add_(0, sy, zs)
        protos = protos / torch.bincount(sy, minlength=n_way).clamp_min(1)[:, None].to(zs.dtype)
        return -torch.cdist(zq, protos).pow(2)


class Pretrained(Method):
    """A learner trained as one ordinary classifier (regressor) over all meta-train classes
    (tasks); ``meta_loss`` takes a plain ``(x, y)`` batch. The base of the two baselines below."""

    kind = "pretrained"

    def meta_loss(self, batch) -> tuple[Tensor, dict]:
        x, y = batch
        out = self.learner(x)
        loss = task_loss(self.task, out, y)
        score = float((out.argmax(-1) == y).float().mean()) if self.task == "classification" else float(loss.detach())
        return loss, {"score": score}


class NearestNeighbour(Method):
    """1-nearest-neighbour (cosine) of each query among the support set, in the embedding of
    a pre-trained learner. Logits: per class, the best cosine similarity of its shots."""

    kind = "nearest-neighbour"

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        n_way = int(sy.max()) + 1
        zs = F.normalize(self.learner.features(sx), dim=1)
        zq = F.normalize(self.learner.features(qx), dim=1)
        sim = zq @ zs.t()                                                     # (Q, S)
        out = torch.full((zq.shape[0], n_way), -2.0, dtype=sim.dtype, device=sim.device)
        return out.scatter_reduce(1, sy.expand_as(sim), sim, reduce="amax")


class FineTune(Method):
    """Fine-tune a pre-trained learner on the support set with SGD.

    Classification: a new zero-initialised linear head of ``n_way`` outputs on the
    pre-trained features; ``mode="head"`` trains only that head (the features are computed
    once), ``mode="all"`` trains the whole network. Regression: the whole network.
    """

    kind = "finetune"

    def __init__(self, learner: nn.Module, task: str = "classification", steps: int = 50, lr: float = 0.1,
                 mode: str = "head") -> None:
        super().__init__(learner, task)
        if mode not in ("head", "all") or steps < 1 or lr <= 0:
            raise ValueError(f"mode={mode!r}, steps={steps}, lr={lr}; expected mode 'head' or 'all', steps >= 1, lr > 0")
        self.steps, self.lr, self.mode = steps, lr, mode

    def config(self) -> dict:
        return {**super().config(), "steps": self.steps, "lr": self.lr, "mode": self.mode}

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        with torch.enable_grad():
            if self.task == "regression":
                params = {k: p.detach().clone().requires_grad_(True) for k, p in self.learner.named_parameters()}
                for _ in range(self.steps):
                    loss = task_loss(self.task, run(self.learner, params, sx), sy)
                    grads = torch.autograd.grad(loss, list(params.values()))
                    params = {k: (p - self.lr * g).detach().requires_grad_(True) for (k, p), g in zip(params.items(), grads)}
                return run(self.learner, params, qx).detach()
            n_way = int(sy.max()) + 1
            body = {k: p.detach().clone().requires_grad_(self.mode == "all")
                    for k, p in self.learner.named_parameters() if not k.startswith("head.")}
            feat = lambda x, b: run(self.learner.body, {k[5:]: v for k, v in b.items()}, x).flatten(1)  # noqa: E731
            d = self.learner.feature_dim
            w = torch.zeros(n_way, d, requires_grad=True, device=sx.device)
            b = torch.zeros(n_way, requires_grad=True, device=sx.device)
            fs = feat(sx, body).detach() if self.mode == "head" else None
            for _ in range(self.steps):
                z = fs if fs is not None else feat(sx, body)
                loss = F.cross_entropy(F.linear(z, w, b), sy)
                leaves = [w, b] + (list(body.values()) if self.mode == "all" else [])
                grads = torch.autograd.grad(loss, leaves)
                with torch.no_grad():
                    for p, g in zip(leaves, grads):
                        p -= self.lr * g
            with torch.no_grad():
                return F.linear(feat(qx, body), w, b)
