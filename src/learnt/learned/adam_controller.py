"""A learned controller of per-tensor Adam step sizes, built to generalise from little compute.

Design (why, in one paragraph): on networks it has never seen, a learned optimizer fails
first by taking steps of the wrong size; per-coordinate learned directions (L2L, HRNN) cost
most of the compute and are what breaks off-distribution. So the per-coordinate work here is
exactly Adam's (bias-corrected moments, a normalised direction ``d``), and everything learned
acts per tensor: a small MLP reads scale-free statistics of each tensor (alignment of the new
gradient with the momentum, the signal-to-noise of ``d``, the relative step size, the
fraction of the run done) and moves that tensor's log step multiplier, within hard bounds,
on top of a learned log-space schedule over training progress. At initialisation the MLP's
output is zero and the schedule is a cosine decay, so the untrained rule *is* Adam with a
cosine schedule; meta-training only has to improve on a sound optimizer (Celo, Almeida et
al. 2021). The multipliers are clamped to ``[1/max_mult, max_mult]`` and every step is
clipped to ``clip`` times the base step, so nothing the network outputs can blow a run up.

Per coordinate the state is Adam's (``exp_avg``, ``exp_avg_sq``); per tensor a log
multiplier and a running mean of the gradient/momentum cosine (K,); per rule a step count
and the horizon. With ``total_steps`` unknown
(``None``) the schedule stays at its value for progress 0 and the progress input is 0.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from learnt.functional.base import Params, State

CTL = "__ctl__"
N_FEATURES = 9


def decay_knots(n: int, start: float = 0.0, floor: float = 0.02) -> Tensor:
    """log of a schedule that is flat until progress ``start`` and then decays like a cosine
    to ``floor`` at the end, at ``n`` evenly spaced progress points."""
    tau = ((torch.linspace(0, 1, n) - start) / (1 - start)).clamp(0, 1)
    return torch.log((0.5 * (1 + torch.cos(math.pi * tau))).clamp_min(floor))


class AdamController(nn.Module):
    """Adam whose per-tensor step sizes a small learned network controls.

    Args:
        base_lr: Adam learning rate the multipliers act on (the step at initialisation).
        beta1, beta2, eps: Adam's.
        hidden: width of the per-tensor MLP.
        n_knots: points of the learned log-space schedule over training progress.
        max_mult: bound of each tensor's step multiplier (both directions).
        clip: bound of any coordinate's step, in units of the tensor's current step size.
        lr: multiplier of every step (what ``torch.optim`` schedulers scale).
        total_steps: horizon of the run, when known (``RuleOptimizer(total_steps=...)``).

    Example:
        >>> rule = AdamController()
        >>> p = {"w": torch.ones(3, 2)}
        >>> st = rule.init(p)
        >>> u, st = rule.update({"w": torch.ones(3, 2)}, st, p)
        >>> round(float(u["w"][0, 0]), 6)     # Adam's first step: -base_lr
        -0.01
    """

    kind = "adam-controller"
    uses_horizon = True

    def __init__(self, base_lr: float = 1e-2, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 hidden: int = 16, n_knots: int = 11, max_mult: float = 100.0, clip: float = 5.0,
                 lr: float = 1.0, total_steps: int | None = None, cos_gain: float = 1.0,
                 cos_up: float = 0.1, cos_down: float = 0.3, cos_decay: float = 0.9,
                 decay_start: float = 0.2, short_decay_start: float = 0.7, short_horizon: int = 250,
                 long_horizon: int = 1000) -> None:
        super().__init__()
        if not base_lr > 0:
            raise ValueError(f"base_lr={base_lr!r}; expected > 0")
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}={b!r}; expected 0 <= {name} < 1")
        if hidden < 1 or n_knots < 2 or not max_mult >= 1 or not clip > 0:
            raise ValueError(f"hidden={hidden}, n_knots={n_knots}, max_mult={max_mult}, clip={clip}; "
                             "expected hidden >= 1, n_knots >= 2, max_mult >= 1, clip > 0")
        if not 0.0 <= cos_decay < 1.0:
            raise ValueError(f"cos_decay={cos_decay!r}; expected 0 <= cos_decay < 1")
        for name, v in (("decay_start", decay_start), ("short_decay_start", short_decay_start)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name}={v!r}; expected 0 <= {name} < 1")
        if not 1 <= short_horizon < long_horizon:
            raise ValueError(f"short_horizon={short_horizon!r}, long_horizon={long_horizon!r}; "
                             "expected 1 <= short_horizon < long_horizon")
        self.base_lr, self.beta1, self.beta2, self.eps = float(base_lr), float(beta1), float(beta2), float(eps)
        self.hidden, self.n_knots, self.max_mult, self.clip = int(hidden), int(n_knots), float(max_mult), float(clip)
        self.lr = float(lr)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.inp = nn.Linear(N_FEATURES, hidden)
        self.out = nn.Linear(hidden, 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.knots = nn.Parameter(decay_knots(n_knots, decay_start))
        self.log_mult0 = nn.Parameter(torch.zeros(()))   # initial log multiplier of every tensor
        # the hand-designed part of the control: grow a tensor's step while the running cosine
        # of its new gradient with its momentum is above cos_up (consistent descent), shrink it
        # while it is below -cos_down (oscillation); in between (the noise-dominated regime,
        # where the cosine sits slightly below 0 at any step size) leave it alone
        self.cos_gain0, self.cos_up0, self.cos_down0 = float(cos_gain), float(cos_up), float(cos_down)
        self.cos_decay, self.decay_start = float(cos_decay), float(decay_start)
        self.short_decay_start, self.short_horizon = float(short_decay_start), int(short_horizon)
        self.long_horizon = int(long_horizon)
        self.cos_gain = nn.Parameter(torch.tensor(float(cos_gain)))
        self.cos_up = nn.Parameter(torch.tensor(float(cos_up)))
        self.cos_down = nn.Parameter(torch.tensor(float(cos_down)))

    @staticmethod
    def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
        """A config written before the horizon-dependent decay start, with the keys that
        reproduce what it did then: the same decay start at every horizon."""
        if "short_decay_start" in config:
            return dict(config)
        return {**config, "short_decay_start": config.get("decay_start", 0.7), "short_horizon": 250,
                "long_horizon": 1000}

    def config(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "hidden": self.hidden, "n_knots": self.n_knots, "max_mult": self.max_mult, "clip": self.clip,
                "lr": self.lr, "total_steps": self.total_steps, "cos_gain": self.cos_gain0,
                "cos_up": self.cos_up0, "cos_down": self.cos_down0, "cos_decay": self.cos_decay,
                "decay_start": self.decay_start, "short_decay_start": self.short_decay_start,
                "short_horizon": self.short_horizon, "long_horizon": self.long_horizon}

    # ------------------------------------------------------------------ state
    def init(self, params: Params, n_problems: int = 1, total_steps: int | None = None) -> State:
        horizon = self.total_steps if total_steps is None else int(total_steps)
        state: State = {}
        dev = None
        for k, p in params.items():
            if p.numel() % n_problems:
                raise ValueError(f"parameter {k!r} has {p.numel()} entries, not divisible by n_problems={n_problems}")
            dev = p.device
            state[k] = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p),
                        "log_mult": self.log_mult0.detach().to(dev, p.dtype).expand(n_problems).clone(),
                        "cos_ema": torch.zeros(n_problems, device=dev, dtype=p.dtype)}
        dev = dev if dev is not None else self.knots.device
        state[CTL] = {"step": torch.zeros((), device=dev),
                      "horizon": torch.tensor(float(horizon or 0), device=dev)}
        return state

    # ------------------------------------------------------------------ pieces
    def schedule(self, progress: Tensor) -> Tensor:
        """exp of the learned log schedule, linearly interpolated at ``progress`` in [0, 1]."""
        x = progress.clamp(0, 1) * (self.n_knots - 1)
        i = x.floor().clamp(max=self.n_knots - 2).long()
        w = x - i
        return torch.exp(self.knots[i] * (1 - w) + self.knots[i + 1] * w)

    def schedule_progress(self, progress: Tensor, horizon: Tensor) -> Tensor:
        """Where on the learned schedule a run of ``horizon`` steps is at ``progress``.

        The knots describe a run of ``long_horizon`` steps or more, whose decay starts at
        ``decay_start``. A shorter run decays later: its decay start moves (linearly in log
        horizon) to ``short_decay_start`` at ``short_horizon`` steps and below, by stretching the
        flat part of the schedule and compressing the decay (piecewise linear, no parameters).
        The screens on the meta-training family chose both ends (docs/architecture.md)."""
        lh = torch.log(horizon.to(progress.dtype).clamp_min(1))
        a, b = math.log(self.short_horizon), math.log(self.long_horizon)
        frac = ((b - lh) / (b - a)).clamp(0, 1)
        d0 = self.decay_start
        start = (d0 + (self.short_decay_start - d0) * frac).clamp(1e-6, 1 - 1e-6)
        flat = d0 * progress / start
        decay = d0 + (1 - d0) * (progress - start) / (1 - start)
        return torch.where(progress < start, flat, decay)

    def _control(self, feats: Tensor, sched: Tensor) -> tuple[Tensor, Tensor]:
        """(n_tensors*K, F) features -> change of log multiplier, log step offset (both bounded).

        The change is gated by the schedule, so adaptation fades as the schedule decays
        instead of undoing the decay."""
        o = self.out(torch.tanh(self.inp(feats)))
        c = feats[:, 0]
        hand = self.cos_gain * (torch.relu(c - self.cos_up.abs()) - torch.relu(-self.cos_down.abs() - c))
        return 0.1 * sched * torch.tanh(hand + o[:, 0]), 1.0 * torch.tanh(o[:, 1])

    def _step_sizes(self, cos: Tensor, cos_ema: Tensor, d_rms: Tensor, p_rms: Tensor, numel: Tensor,
                    log_mult: Tensor, t: Tensor, progress: Tensor, known: Tensor, sched: Tensor,
                    mult) -> tuple[Tensor, Tensor, Tensor]:
        """The per-tensor controller, shared by :meth:`update` and :meth:`update_`.

        Every argument but the scalars is one entry per tensor (and problem), (N,): the
        gradient/momentum cosine, its running mean before this step, the RMS of Adam's
        direction and of the parameters, the tensor size, the log multiplier. Returns the new
        running cosine, the new log multiplier and the step size of each tensor (N,)."""
        cos_ema = self.cos_decay * cos_ema + (1 - self.cos_decay) * cos
        rel = torch.log10((self.base_lr * torch.exp(log_mult) * sched + 1e-12) / (p_rms + 1e-8))
        ones = torch.ones_like(cos)
        feats = torch.stack([cos_ema, cos, torch.log10(d_rms + 1e-12), rel / 3, log_mult / math.log(self.max_mult),
                             progress * ones, known * ones, numel.log10() / 6, (t.log10() / 4) * ones], 1)
        delta, offset = self._control(feats.to(self.inp.weight.dtype), sched)
        lim = math.log(self.max_mult)
        new_log_mult = (log_mult + delta).clamp(-lim, lim)
        size = mult * self.base_lr * sched * torch.exp((new_log_mult + offset).clamp(-lim, lim))
        return cos_ema, new_log_mult, size

    # ------------------------------------------------------------------ step
    def update(self, grads: Params, state: State, params: Params, *, lr=None, loss=None):
        names = list(grads)
        if not names:
            return {}, dict(state)
        ctl = state[CTL]
        t = ctl["step"] + 1
        horizon = ctl["horizon"]
        known = (horizon > 0).to(t.dtype)
        progress = known * (t - 1) / horizon.clamp_min(1)
        b1, b2 = self.beta1, self.beta2
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        mult = self.lr if lr is None else lr
        sched = self.schedule(self.schedule_progress(progress, horizon))
        new_state: State = {}
        stats, dirs, moments = [], [], []
        for k in names:
            g, s, p = grads[k], state[k], params[k]
            K = s["log_mult"].shape[0]
            m_old = s["exp_avg"]
            m = b1 * m_old + (1 - b1) * g
            v = b2 * s["exp_avg_sq"] + (1 - b2) * g * g
            d = (m / bc1) / ((v / bc2).sqrt() + self.eps)
            gf, mf, df, pf = g.reshape(K, -1), m_old.reshape(K, -1), d.reshape(K, -1), p.reshape(K, -1)
            cos = (gf * mf).sum(1) / (gf.norm(dim=1) * mf.norm(dim=1) + 1e-30)
            stats.append(torch.stack([cos, s["cos_ema"], df.pow(2).mean(1).sqrt(), pf.pow(2).mean(1).sqrt(),
                                      torch.full_like(cos, float(gf.shape[1])), s["log_mult"]]))
            dirs.append(d)
            moments.append((m, v))
        cos, cos_ema, d_rms, p_rms, numel, log_mult = torch.cat(stats, 1)
        cos_ema, log_mult, size = self._step_sizes(cos, cos_ema, d_rms, p_rms, numel, log_mult, t, progress, known,
                                                   sched, mult)
        updates = {}
        i = 0
        for k, d, (m, v) in zip(names, dirs, moments):
            K = state[k]["log_mult"].shape[0]
            # K stacked problems lead every tensor: one step size per problem
            sz = size[i:i + K].view((K,) + (1,) * (d.dim() - 1)) if d.dim() else size[i:i + K].view(())
            updates[k] = -torch.maximum(torch.minimum(d * sz, self.clip * sz), -self.clip * sz)
            new_state[k] = {"exp_avg": m, "exp_avg_sq": v, "log_mult": log_mult[i:i + K], "cos_ema": cos_ema[i:i + K]}
            i += K
        for k in state:
            if k not in new_state and k != CTL:
                new_state[k] = state[k]
        new_state[CTL] = {"step": t, "horizon": horizon}
        return updates, new_state

    # ------------------------------------------------------------------ apply mode
    @torch.no_grad()
    def update_(self, grads: Params, state: State, params: Params, *, lr=None, loss=None) -> Params:
        """:meth:`update` for one problem (``torch.optim`` use), in place: the moments and
        multipliers are updated in their own buffers with ``torch._foreach`` kernels over
        all tensors at once, the per-tensor controller runs once on a (n_tensors, 9) batch, and
        the returned updates live in scratch buffers reused every step (no per-step
        allocation of parameter-sized tensors). Same numbers as :meth:`update` to float
        rounding."""
        names = list(grads)
        if not names:
            return {}
        ctl = state[CTL]
        t = ctl["step"] + 1
        horizon = ctl["horizon"]
        known = (horizon > 0).to(t.dtype)
        # per-tensor statistics are reduced on the parameters' device; the controller (a few
        # numbers per tensor) runs wherever the rule lives
        dev = self.knots.device
        progress = (known * (t - 1) / horizon.clamp_min(1)).to(dev)
        known = known.to(dev)
        b1, b2 = self.beta1, self.beta2
        tf = float(t)
        bc1, bc2 = 1 - b1 ** tf, 1 - b2 ** tf
        mult = float(self.lr if lr is None else lr)
        sched = self.schedule(self.schedule_progress(progress, horizon.to(dev)))
        gs = [grads[k] for k in names]
        ms = [state[k]["exp_avg"] for k in names]
        vs = [state[k]["exp_avg_sq"] for k in names]
        ps = [params[k] for k in names]
        if any(s["log_mult"].numel() != 1 for s in (state[k] for k in names)):
            raise ValueError("update_ is for one problem (torch.optim use); stacked problems go through update()")
        numel = torch.tensor([float(g.numel()) for g in gs], device=dev)
        dots = torch.stack([torch.dot(g.reshape(-1), m.reshape(-1)) for g, m in zip(gs, ms)])
        gn, mn = torch.stack(torch._foreach_norm(gs)), torch.stack(torch._foreach_norm(ms))
        cos = (dots / (gn * mn + 1e-30)).to(dev)
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, gs, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        d = self._scratch(names, gs)
        torch._foreach_copy_(d, vs)
        torch._foreach_div_(d, bc2)
        torch._foreach_sqrt_(d)
        torch._foreach_add_(d, self.eps)
        torch._foreach_reciprocal_(d)
        torch._foreach_mul_(d, ms)
        torch._foreach_div_(d, bc1)
        d_rms = torch.stack(torch._foreach_norm(d)).to(dev) / numel.sqrt()
        p_rms = torch.stack(torch._foreach_norm(ps)).to(dev) / numel.sqrt()
        log_mult = torch.cat([state[k]["log_mult"] for k in names]).to(dev)
        cos_ema = torch.cat([state[k]["cos_ema"] for k in names]).to(dev)
        cos_ema, new_log_mult, size = self._step_sizes(cos, cos_ema, d_rms, p_rms, numel, log_mult, t.to(dev),
                                                       progress, known, sched, mult)
        sizes = size.tolist()
        torch._foreach_clamp_min_(d, -self.clip)
        torch._foreach_clamp_max_(d, self.clip)
        torch._foreach_mul_(d, [-s for s in sizes])
        for k, lm, ce in zip(names, new_log_mult.tolist(), cos_ema.tolist()):
            state[k]["log_mult"].fill_(lm)
            state[k]["cos_ema"].fill_(ce)
        ctl["step"] = t
        return dict(zip(names, d))

    def _scratch(self, names: list[str], like: list[Tensor]) -> list[Tensor]:
        """Buffers for the updates, reused across steps (not part of the state)."""
        key = tuple((n, tuple(g.shape), g.dtype, str(g.device)) for n, g in zip(names, like))
        cache = self.__dict__.setdefault("_scratch_cache", {})
        if key not in cache:
            if len(cache) >= 8:          # one entry per param group in practice
                cache.clear()
            cache[key] = [torch.empty_like(g) for g in like]
        return cache[key]
