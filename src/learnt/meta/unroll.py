"""The one unroll: step a task with an update rule, keeping (or not) the graph to phi."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from learnt.functional.base import Params, State, apply_updates, check_finite, tree_detach


@dataclass
class UnrollResult:
    """What an unroll returns.

    ``losses`` has shape (steps + 1, K): row t is the loss of each problem at theta_t, row 0
    at the starting parameters and row ``steps`` after the last update. In differentiable
    mode rows 1.. keep the graph to phi; row 0 never does.
    """

    params: Params
    state: State
    losses: Tensor


def _leaf(params: Params) -> Params:
    return {k: p.detach().requires_grad_(True) for k, p in params.items()}


def unroll(task, rule, params: Params, state: State, batches: Iterator[Any], steps: int, *,
           differentiable: bool = True, second_order: bool = False, lr: float | None = None,
           check: bool = True) -> UnrollResult:
    """Run ``steps`` updates of ``rule`` on ``task`` from ``params``/``state``.

    Args:
        task: a :class:`~learnt.tasks.Task`; ``task.loss`` returns (K,).
        rule: any update rule (hand-designed or learned).
        batches: endless iterator of minibatches; one is drawn per loss evaluation
            (``steps + 1`` in all).
        differentiable: keep the graph from every loss back to phi (meta-training). When
            False, each step is detached and updates run under ``no_grad`` (evaluation),
            so memory does not grow with ``steps``.
        second_order: backpropagate through the optimizee gradients too (Hessian-vector
            terms). Default False, as in the paper: gradients enter as constants.
        check: raise :class:`~learnt.errors.NonFiniteError` on a NaN/inf gradient.

    Returns:
        :class:`UnrollResult` with losses of shape (steps + 1, K).

    Example:
        >>> from learnt.tasks import QuadraticFamily
        >>> from learnt.functional import adam
        >>> g = torch.Generator().manual_seed(0)
        >>> task = QuadraticFamily(n_problems=2).sample(g)
        >>> p = task.init_params(g)
        >>> rule = adam(0.1)
        >>> unroll(task, rule, p, rule.init(p), task.batches("train", g), 5, differentiable=False).losses.shape
        torch.Size([6, 2])
    """
    if steps < 0:
        raise ValueError(f"steps={steps}; expected >= 0")
    if second_order and not differentiable:
        raise ValueError("second_order=True needs differentiable=True")
    params = _leaf(params)
    losses = []
    for _ in range(steps):
        loss = task.loss(params, next(batches))
        grads_t = torch.autograd.grad(loss.sum(), list(params.values()),
                                      create_graph=second_order, retain_graph=differentiable)
        grads = dict(zip(params, grads_t))
        if check:
            check_finite(grads)
        if not second_order:
            grads = {k: g.detach() for k, g in grads.items()}
        if differentiable:
            losses.append(loss)
            updates, state = rule.update(grads, state, params, lr=lr, loss=loss.detach())
            params = apply_updates(params, updates)
        else:
            losses.append(loss.detach())
            with torch.no_grad():
                updates, state = rule.update(grads, state, params, lr=lr, loss=loss.detach())
                params = apply_updates(params, updates)
            params = _leaf(params)
    with torch.set_grad_enabled(differentiable):
        final = task.loss(params, next(batches))
    losses.append(final if differentiable else final.detach())
    if not differentiable:
        state = tree_detach(state)
        params = {k: p.detach() for k, p in params.items()}
    return UnrollResult(params, state, torch.stack(losses))
