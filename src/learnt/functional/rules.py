"""Hand-designed update rules as small pure (init, update) pairs.

Each rule matches the ``torch.optim`` optimizer of the same name step for step (tests
check this in float64), returns updates (``-lr * direction``) and never mutates inputs, so
unrolls through it are differentiable.

Example:
    >>> rule = adam(lr=0.1)
    >>> params = {"w": torch.ones(3)}
    >>> state = rule.init(params)
    >>> updates, state = rule.update({"w": torch.ones(3)}, state, params)
    >>> updates["w"]
    tensor([-0.1000, -0.1000, -0.1000])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learnt.functional.base import Params, State


def _lr(rule_lr: float, lr: float | Tensor | None) -> float | Tensor:
    return rule_lr if lr is None else lr


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is invalid; expected {name} {bound}")


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: ``update = -lr * g``."""

    lr: float = 0.01

    def __post_init__(self) -> None:
        _check_positive("lr", self.lr, allow_zero=True)

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {k: {} for k in params}

    def update(self, grads, state, params, *, lr=None, loss=None):
        lr = _lr(self.lr, lr)
        return {k: -lr * g for k, g in grads.items()}, state


@dataclass(frozen=True)
class Momentum:
    """Heavy-ball momentum as ``torch.optim.SGD(momentum=mu)``; Nesterov when ``nesterov``."""

    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check_positive("lr", self.lr, allow_zero=True)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum={self.momentum!r} is invalid; expected 0 <= momentum < 1")

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {k: {"buf": torch.zeros_like(p)} for k, p in params.items()}

    def update(self, grads, state, params, *, lr=None, loss=None):
        lr = _lr(self.lr, lr)
        updates, new_state = {}, {}
        for k, g in grads.items():
            buf = self.momentum * state[k]["buf"] + g
            direction = g + self.momentum * buf if self.nesterov else buf
            updates[k] = -lr * direction
            new_state[k] = {"buf": buf}
        return updates, new_state


@dataclass(frozen=True)
class RMSprop:
    """RMSprop as ``torch.optim.RMSprop`` (not centred): ``-lr * g / (sqrt(v) + eps)``."""

    lr: float = 0.01
    alpha: float = 0.99
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_positive("lr", self.lr, allow_zero=True)

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {k: {"square_avg": torch.zeros_like(p)} for k, p in params.items()}

    def update(self, grads, state, params, *, lr=None, loss=None):
        lr = _lr(self.lr, lr)
        updates, new_state = {}, {}
        for k, g in grads.items():
            v = self.alpha * state[k]["square_avg"] + (1 - self.alpha) * g * g
            updates[k] = -lr * g / (v.sqrt() + self.eps)
            new_state[k] = {"square_avg": v}
        return updates, new_state


@dataclass(frozen=True)
class Adam:
    """Adam as ``torch.optim.Adam`` (bias-corrected first and second moments)."""

    lr: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_positive("lr", self.lr, allow_zero=True)
        for name in ("beta1", "beta2"):
            b = getattr(self, name)
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}={b!r} is invalid; expected 0 <= {name} < 1")

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {
            k: {"step": torch.zeros((), dtype=p.dtype, device=p.device),
                "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            for k, p in params.items()
        }

    def update(self, grads, state, params, *, lr=None, loss=None):
        lr = _lr(self.lr, lr)
        updates, new_state = {}, {}
        for k, g in grads.items():
            s = state[k]
            t = s["step"] + 1
            m = self.beta1 * s["exp_avg"] + (1 - self.beta1) * g
            v = self.beta2 * s["exp_avg_sq"] + (1 - self.beta2) * g * g
            bc1 = 1 - self.beta1 ** t
            bc2 = 1 - self.beta2 ** t
            updates[k] = -(lr / bc1) * m / (v.sqrt() / bc2.sqrt() + self.eps)
            new_state[k] = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        return updates, new_state


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW as ``torch.optim.AdamW``: Adam plus decoupled weight decay ``-lr * wd * p``."""

    weight_decay: float = 0.01

    def update(self, grads, state, params, *, lr=None, loss=None):
        step_lr = _lr(self.lr, lr)
        updates, new_state = super().update(grads, state, params, lr=lr, loss=loss)
        # torch decays first (p *= 1 - lr wd) and then adds the Adam step to the decayed p
        return {k: u - step_lr * self.weight_decay * params[k] for k, u in updates.items()}, new_state


@dataclass(frozen=True)
class ClipByGlobalNorm:
    """Gradient transform for :func:`chain`: rescale grads to a global norm of at most ``max_norm``."""

    max_norm: float

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {}

    def transform(self, grads: Params, state: State) -> tuple[Params, State]:
        norm = torch.sqrt(sum((g * g).sum() for g in grads.values()))
        scale = torch.clamp(self.max_norm / (norm + 1e-12), max=1.0)
        return {k: g * scale for k, g in grads.items()}, state


@dataclass(frozen=True)
class AddDecayedWeights:
    """Gradient transform for :func:`chain`: ``g + weight_decay * p`` (L2 regularisation)."""

    weight_decay: float

    def init(self, params: Params, n_problems: int = 1) -> State:
        return {}

    def transform(self, grads: Params, state: State, params: Params | None = None):
        if params is None:
            raise ValueError("AddDecayedWeights needs params; call it through chain()")
        return {k: g + self.weight_decay * params[k] for k, g in grads.items()}, state


class Chain:
    """Gradient transforms followed by one update rule: ``chain(ClipByGlobalNorm(1), adam())``.

    ``lr`` (and ``init``/``update``) are those of the final rule, so the chain is itself an
    update rule. Transform state lives under ``"__transform{i}__"`` keys.
    """

    def __init__(self, *parts) -> None:
        if not parts or not hasattr(parts[-1], "update"):
            raise ValueError("chain(...) expects gradient transforms followed by an update rule last; "
                             f"got {[type(p).__name__ for p in parts]}")
        self.transforms, self.rule = parts[:-1], parts[-1]
        for t in self.transforms:
            if not hasattr(t, "transform"):
                raise ValueError(f"{type(t).__name__} is not a gradient transform (no .transform)")

    @property
    def lr(self) -> float:
        return self.rule.lr

    def init(self, params: Params, n_problems: int = 1) -> State:
        state = dict(self.rule.init(params, n_problems))
        for i, t in enumerate(self.transforms):
            state[f"__transform{i}__"] = t.init(params)
        return state

    def update(self, grads, state, params, *, lr=None, loss=None):
        new_state = {}
        for i, t in enumerate(self.transforms):
            key = f"__transform{i}__"
            if isinstance(t, AddDecayedWeights):
                grads, new_state[key] = t.transform(grads, state[key], params)
            else:
                grads, new_state[key] = t.transform(grads, state[key])
        rule_state = {k: v for k, v in state.items() if not k.startswith("__transform")}
        updates, rule_state = self.rule.update(grads, rule_state, params, lr=lr, loss=loss)
        new_state.update(rule_state)
        return updates, new_state


def sgd(lr: float = 0.01) -> SGD:
    """Plain SGD (see :class:`SGD`)."""
    return SGD(lr)


def momentum(lr: float = 0.01, momentum: float = 0.9) -> Momentum:
    """Heavy-ball momentum (see :class:`Momentum`)."""
    return Momentum(lr, momentum, nesterov=False)


def nag(lr: float = 0.01, momentum: float = 0.9) -> Momentum:
    """Nesterov accelerated gradient as ``torch.optim.SGD(nesterov=True)``."""
    return Momentum(lr, momentum, nesterov=True)


def rmsprop(lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> RMSprop:
    """RMSprop (see :class:`RMSprop`)."""
    return RMSprop(lr, alpha, eps)


def adam(lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Adam:
    """Adam (see :class:`Adam`)."""
    return Adam(lr, beta1, beta2, eps)


def chain(*parts) -> Chain:
    """Compose gradient transforms with a final update rule (see :class:`Chain`)."""
    return Chain(*parts)


def adamw(lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.01) -> AdamW:
    """``torch.optim.AdamW`` (decoupled weight decay, torch's default 0.01)."""
    return AdamW(lr, beta1, beta2, eps, weight_decay)


HAND_DESIGNED = {"sgd": sgd, "momentum": momentum, "nag": nag, "rmsprop": rmsprop, "adam": adam, "adamw": adamw}


def make_rule(name: str, lr: float):
    """Build a hand-designed rule by name: one of ``sgd, momentum, nag, rmsprop, adam, adamw``."""
    if name not in HAND_DESIGNED:
        raise ValueError(f"unknown update rule {name!r}; expected one of {sorted(HAND_DESIGNED)}")
    return HAND_DESIGNED[name](lr=lr)
