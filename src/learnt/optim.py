"""Any update rule, learned or hand-designed, as a real ``torch.optim.Optimizer``.

Example:
    >>> import torch, learnt
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = learnt.optim.RuleOptimizer(model.parameters(), learnt.functional.adam(1e-2))
    >>> loss = model(torch.randn(8, 4)).pow(2).mean()
    >>> loss.backward(); opt.step(); opt.zero_grad()

The learned rules work the same way (``learnt.pretrained.load("l2l-quadratic")``). ``lr``
lives in ``param_groups`` so learning-rate schedulers work; for learned rules it multiplies
the proposed step (default 1.0). ``state_dict`` round-trips every rule's state, LSTM hidden
states included. Parameters whose ``.grad`` is None are skipped. Rules see parameters
under the names ``"{group name}.{index}"`` (a group's ``"name"`` option, else its
index), which is how :class:`~learnt.learned.PartitionedRule` routes conv and fc groups.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor

from learnt.functional.base import check_finite


def _check_lr(group: int, lr) -> None:
    if not (isinstance(lr, (int, float, Tensor)) and float(lr) >= 0 and math.isfinite(float(lr))):
        raise ValueError(f"param group {group}: lr={lr!r}; expected a finite lr >= 0")


class RuleOptimizer(torch.optim.Optimizer):
    """Wrap an update rule (``init``/``update``) as a ``torch.optim.Optimizer``.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        rule: the update rule (an instance); a learned rule (``nn.Module``) is used under
            ``no_grad``. None: the recommended learned optimizer,
            ``learnt.pretrained.load("default")``.
        lr: default learning rate of the groups (the rule's own ``lr`` when None; for learned
            rules a multiplier of the proposed step, default 1.0).
        check_finite: raise :class:`~learnt.errors.NonFiniteError` on NaN/inf gradients,
            before any parameter of any group changes.
        total_steps: how many ``step()`` calls the run will make, for rules that schedule
            themselves over training progress (the default learned optimizer); ignored by
            the others.

    Example:
        >>> import torch, learnt
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = learnt.RuleOptimizer(model.parameters(), total_steps=100)   # the default learned optimizer
        >>> model(torch.randn(4, 3)).pow(2).mean().backward(); _ = opt.step()
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], rule=None, lr: float | None = None,
                 check_finite: bool = True, total_steps: int | None = None) -> None:
        if rule is None:
            from learnt import pretrained
            rule = pretrained.load("default")
        if isinstance(rule, type):
            raise TypeError(f"rule must be an update-rule instance; got the class {rule.__name__} "
                            f"(use {rule.__name__}(...) or learnt.pretrained.load(name))")
        if not (hasattr(rule, "init") and hasattr(rule, "update")):
            raise TypeError(f"rule must have init() and update() (an update rule); got {type(rule).__name__}")
        lr = float(getattr(rule, "lr", 1.0) if lr is None else lr)
        if total_steps is not None and (isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1):
            raise ValueError(f"total_steps={total_steps!r}; expected a positive integer or None")
        super().__init__(params, {"lr": lr})
        for gi, group in enumerate(self.param_groups):
            _check_lr(gi, group["lr"])
        self.rule = rule
        self.rule_state: dict[int, dict] = {}
        self.check_finite = check_finite
        self.total_steps = None if total_steps is None else int(total_steps)

    def _group_state(self, gi: int, group: dict, key_of: dict) -> dict:
        """Per-parameter state of the group's parameters (lazily initialised) and its
        rule-level state (keys starting with ``__``)."""
        rule_state = self.rule_state.setdefault(gi, {})
        states = dict(rule_state)
        for p, key in key_of.items():
            if not self.state[p]:
                fresh = self._init({key: p.detach()})
                self.state[p] = dict(fresh[key])
                for k, v in fresh.items():
                    if k.startswith("__") and k not in rule_state:
                        rule_state[k] = v
                        states[k] = v
            states[key] = self.state[p]
        if not rule_state:  # e.g. a state dict saved without rule_state: start it fresh
            p, key = next(iter(key_of.items()))
            for k, v in self._init({key: p.detach()}).items():
                if k.startswith("__"):
                    rule_state[k] = states[k] = v
        return states

    def _init(self, params: dict) -> dict:
        if self.total_steps is not None and getattr(self.rule, "uses_horizon", False):
            return self.rule.init(params, total_steps=self.total_steps)
        return self.rule.init(params)

    def _check_groups(self) -> None:
        """Validate every group's lr and gradients before anything changes."""
        for gi, group in enumerate(self.param_groups):
            _check_lr(gi, group["lr"])
            if self.check_finite:
                prefix = group.get("name", gi)
                check_finite({f"{prefix}.{pi}": p.grad for pi, p in enumerate(group["params"])
                              if p.grad is not None and not p.grad.is_sparse})

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Apply one update to every parameter that has a gradient; returns the closure's loss.

        A NaN/inf gradient in any group (or an invalid lr) raises before any parameter of any
        group is changed."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_groups()
        for gi, group in enumerate(self.param_groups):
            prefix = group.get("name", gi)
            key_of = {}
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"parameter {prefix}.{pi} has a sparse gradient; RuleOptimizer supports dense gradients only")
                key_of[p] = f"{prefix}.{pi}"
            if not key_of:
                continue
            grads = {key: p.grad for p, key in key_of.items()}
            params = {key: p.detach() for p, key in key_of.items()}
            states = self._group_state(gi, group, key_of)
            loss_in = None if loss is None else loss.detach()
            if hasattr(self.rule, "update_"):
                # apply mode: the rule writes its new state into the buffers it owns
                updates, new_states = self.rule.update_(grads, states, params, lr=group["lr"], loss=loss_in), states
            else:
                updates, new_states = self.rule.update(grads, states, params, lr=group["lr"], loss=loss_in)
            for p, key in key_of.items():
                p.add_(updates[key])
                self.state[p] = new_states[key]
            for k, v in new_states.items():
                if k.startswith("__"):
                    self.rule_state[gi][k] = v
        return loss

    def state_dict(self) -> dict:
        """``torch.optim`` state dict plus ``rule_state`` (rule-level state per group)."""
        sd = super().state_dict()
        sd["rule_state"] = {gi: {k: dict(v) for k, v in st.items()} for gi, st in self.rule_state.items()}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        rule_state = state_dict.pop("rule_state", {})
        super().load_state_dict(state_dict)
        self.rule_state = {}
        for gi, st in rule_state.items():
            gi = int(gi)
            dev = self.param_groups[gi]["params"][0].device
            self.rule_state[gi] = {k: {n: t.to(dev) for n, t in v.items()} for k, v in st.items()}
