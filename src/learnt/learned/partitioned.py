"""Several learned rules, each serving the parameters whose names match its prefixes.

This is the paper's two-LSTM optimizer for conv nets (one LSTM for convolutional
parameters, one for fully connected ones), and works for any mix of rules.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from learnt.functional.base import Params, State


class PartitionedRule(nn.Module):
    """Route each parameter to one sub-rule by name prefix.

    Args:
        parts: ``{"conv": {"kind": "l2l-lstm", "config": {...}}, "fc": {...}}``.
        prefixes: ``{"conv": ("conv", "bn")}``: names starting with any listed prefix go to
            that part; the rest go to ``default``. Through :class:`learnt.optim.RuleOptimizer`
            the names are ``"{group name}.{index}"``, so give param groups a ``name``.

    Example:
        >>> rule = PartitionedRule.two_lstm()
        >>> rule.assign("conv0.weight"), rule.assign("fc1.bias")
        ('conv', 'fc')
    """

    kind = "partitioned"

    def __init__(self, parts: dict[str, dict[str, Any]], prefixes: dict[str, tuple[str, ...] | list[str]],
                 default: str, lr: float = 1.0) -> None:
        super().__init__()
        from learnt.learned import LEARNED_RULES

        if default not in parts:
            raise ValueError(f"default part {default!r} is not one of the parts {sorted(parts)}")
        unknown = set(prefixes) - set(parts)
        if unknown:
            raise ValueError(f"prefixes name unknown parts {sorted(unknown)}; parts are {sorted(parts)}")
        self.parts_config = {k: {"kind": v["kind"], "config": dict(v["config"])} for k, v in parts.items()}
        self.prefixes = {k: tuple(v) for k, v in prefixes.items()}
        self.default, self.lr = default, float(lr)
        rules = {}
        for name, spec in parts.items():
            if spec["kind"] not in LEARNED_RULES:
                raise ValueError(f"part {name!r}: unknown rule kind {spec['kind']!r}; expected one of {sorted(LEARNED_RULES)}")
            rules[name] = LEARNED_RULES[spec["kind"]](**spec["config"])
        self.rules = nn.ModuleDict(rules)

    @classmethod
    def two_lstm(cls, **lstm_config) -> "PartitionedRule":
        """Andrychowicz et al.'s conv-net optimizer: one L2L LSTM for conv/bn, one for fc."""
        spec = {"kind": "l2l-lstm", "config": dict(lstm_config)}
        return cls({"conv": spec, "fc": spec}, {"conv": ("conv", "bn")}, default="fc")

    def config(self) -> dict[str, Any]:
        return {"parts": self.parts_config, "prefixes": {k: list(v) for k, v in self.prefixes.items()},
                "default": self.default, "lr": self.lr}

    def assign(self, name: str) -> str:
        for part, pre in self.prefixes.items():
            if name.startswith(pre):
                return part
        return self.default

    def init(self, params: Params, n_problems: int = 1) -> State:
        state: State = {}
        for part, rule in self.rules.items():
            sub = {k: p for k, p in params.items() if self.assign(k) == part}
            if sub:
                state.update(rule.init(sub, n_problems))
        return state

    def _lr(self, rule, lr):
        """A part's step multiplier: its own lr times the partition's (or the caller's)."""
        return getattr(rule, "lr", 1.0) * (self.lr if lr is None else lr)

    def update(self, grads: Params, state: State, params: Params, *, lr=None, loss=None):
        updates, new_state = {}, {}
        for part, rule in self.rules.items():
            keys = [k for k in grads if self.assign(k) == part]
            if not keys:
                continue
            u, s = rule.update({k: grads[k] for k in keys}, {k: state[k] for k in keys},
                               {k: params[k] for k in keys}, lr=self._lr(rule, lr), loss=loss)
            updates.update(u)
            new_state.update(s)
        return updates, new_state

    def update_(self, grads: Params, state: State, params: Params, *, lr=None, loss=None) -> Params:
        """Apply-mode update (see :meth:`L2LOptimizer.update_`): parts that support it
        update their state in place; the others through their pure ``update``."""
        updates: Params = {}
        for part, rule in self.rules.items():
            keys = [k for k in grads if self.assign(k) == part]
            if not keys:
                continue
            sub_state = {k: state[k] for k in keys}
            args = ({k: grads[k] for k in keys}, sub_state, {k: params[k] for k in keys})
            if hasattr(rule, "update_"):
                updates.update(rule.update_(*args, lr=self._lr(rule, lr), loss=loss))
            else:
                u, s = rule.update(*args, lr=self._lr(rule, lr), loss=loss)
                updates.update(u)
                for k in keys:
                    state[k].clear()
                    state[k].update(s[k])
        return updates
