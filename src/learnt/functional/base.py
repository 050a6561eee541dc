"""The update-rule contract shared by hand-designed and learned optimizers.

A rule is a pair of functions in the optax style::

    state = rule.init(params)
    updates, state = rule.update(grads, state, params, lr=None, loss=None)
    params = apply_updates(params, updates)

``params``, ``grads`` and ``updates`` are ``dict[str, Tensor]`` with the same keys and
shapes; ``state`` is ``dict[str, dict[str, Tensor]]`` keyed by the same parameter names,
like ``torch.optim``'s per-parameter state, plus rule-level entries whose keys start with
``"__"`` (e.g. the global RNN of the hierarchical optimizer). ``init(params, n_problems)``
is told when every parameter carries a leading dimension of ``n_problems`` independent
problems (a vectorised task batch), so rules that pool across coordinates pool per problem. ``update`` never mutates its inputs and returns
*updates*, so an unroll through it stays differentiable. ``lr`` overrides the rule's own
learning rate (for learned rules it multiplies the proposed step; default 1.0) so that
``torch.optim`` learning-rate schedulers work through :mod:`learnt.optim`.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from learnt.errors import NonFiniteError

Params = dict[str, Tensor]
State = dict[str, dict[str, Tensor]]


@runtime_checkable
class UpdateRule(Protocol):
    """What every optimizer in learnt is: ``init`` and a pure ``update``."""

    lr: float

    def init(self, params: Params, n_problems: int = 1) -> State: ...

    def update(
        self,
        grads: Params,
        state: State,
        params: Params,
        *,
        lr: float | Tensor | None = None,
        loss: Tensor | None = None,
    ) -> tuple[Params, State]: ...


def apply_updates(params: Params, updates: Params) -> Params:
    """Return ``params + updates`` out of place (the one place parameters change).

    Example:
        >>> p = {"w": torch.zeros(2)}
        >>> apply_updates(p, {"w": torch.ones(2)})["w"]
        tensor([1., 1.])
    """
    return {k: p + updates[k] if k in updates else p for k, p in params.items()}


def check_finite(grads: Params, what: str = "gradient") -> None:
    """Raise :class:`NonFiniteError` naming the first tensor holding NaN or inf."""
    if not grads:
        return
    flags = torch.stack([torch.isfinite(g).all() for g in grads.values()])
    if bool(flags.all()):
        return
    bad = [k for k, ok in zip(grads, flags.tolist()) if not ok][0]
    raise NonFiniteError(
        f"non-finite {what} in parameter {bad!r} (NaN or inf); expected finite values — "
        "lower the learning rate or check the loss for overflow"
    )


def tree_detach(tree):
    """Detach every tensor of a (nested) dict, keeping its structure."""
    if isinstance(tree, Tensor):
        return tree.detach()
    if isinstance(tree, dict):
        return {k: tree_detach(v) for k, v in tree.items()}
    raise TypeError(f"expected a Tensor or dict of tensors, got {type(tree).__name__}")
