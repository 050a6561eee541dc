"""What every few-shot method is: adapt on a support set, answer on a query set.

A :class:`Method` is an ``nn.Module`` whose parameters are what meta-training learns. It
implements ``query_output(sx, sy, qx)`` (logits (Q, n_way) or predictions (Q, 1), with a
graph to the meta-parameters when grad is enabled); ``meta_loss(episode)`` and
``predict(episode)`` follow from it. Classification is scored by accuracy, regression by
mean squared error.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.fewshot.episodes import Episode

TASKS = ("classification", "regression")


def task_loss(task: str, out: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy (logits (B, C), labels (B,)) or MSE (predictions and targets (B, 1))."""
    return F.cross_entropy(out, y) if task == "classification" else F.mse_loss(out, y)


def task_score(task: str, out: Tensor, y: Tensor) -> float:
    """Accuracy in [0, 1] for classification, mean squared error for regression."""
    if task == "classification":
        return float((out.argmax(-1) == y).float().mean())
    return float(F.mse_loss(out, y))


class Method(nn.Module):
    """Base of the few-shot methods: holds the learner template and the task kind."""

    kind = "method"

    def __init__(self, learner: nn.Module, task: str = "classification") -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task={task!r}; expected one of {list(TASKS)}")
        self.learner, self.task = learner, task

    def config(self) -> dict:
        return {"kind": self.kind, "task": self.task, "learner": type(self.learner).__name__,
                "learner_arch": dict(getattr(self.learner, "arch", {}))}

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        raise NotImplementedError

    def meta_loss(self, ep: Episode) -> tuple[Tensor, dict]:
        """Query loss after adaptation (differentiable in the meta-parameters) and its score."""
        out = self.query_output(ep.support_x, ep.support_y, ep.query_x)
        return task_loss(self.task, out, ep.query_y), {"score": task_score(self.task, out.detach(), ep.query_y)}

    def predict(self, ep: Episode) -> Tensor:
        """Query outputs without a meta-graph (inner gradients are still taken)."""
        with torch.no_grad():
            return self.query_output(ep.support_x, ep.support_y, ep.query_x).detach()

    def score(self, ep: Episode) -> float:
        return task_score(self.task, self.predict(ep), ep.query_y)
