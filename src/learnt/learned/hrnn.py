"""The hierarchical RNN optimizer of Wichrowska et al. (2017), "Learned optimizers that
scale and generalize".

Three levels of GRUs: a Parameter RNN per coordinate, a Tensor RNN per parameter tensor
(per problem), and a Global RNN per problem. Each level reads the mean of the level below
and feeds the level below as a bias. Per coordinate, the inputs are gradient momenta at
``n_scales`` time scales (each decay the square root of the previous, the first one
learned) normalised by running RMS, the log mean-squared gradients relative to their mean
across scales, and the log learning rate relative to its tensor's mean. The output is a
direction normalised per tensor (a learned readout of the Parameter RNN plus a learned
weighting of the scaled momenta) times a per-coordinate learning rate exp(log_lr) that the
RNN itself updates.

Work is batched: the N coordinates of all tensors of all problems go through one GRU call
(feature-major (F, N) layout), and per-tensor means are segment reductions
(``index_add``), never Python loops over coordinates.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from learnt.functional.base import Params, State

GLOBAL = "__global__"


class GRULayer(nn.Module):
    """A GRU over columns: x (F, N), h (H, N), optional extra gate bias (3H, N)."""

    def __init__(self, input_size: int, hidden_size: int, gate_bias: float = 2.2, scale: float = 0.5) -> None:
        super().__init__()
        H = hidden_size
        self.hidden_size = H
        self.w_x = nn.Parameter(torch.randn(3 * H, input_size) * scale / math.sqrt(max(input_size, 1)))
        self.w_h = nn.Parameter(torch.randn(3 * H, H) * scale / math.sqrt(H))
        b = torch.zeros(3 * H)
        b[: 2 * H] = gate_bias  # reset and update gates start open: keep the state
        self.bias = nn.Parameter(b)

    def forward(self, x: Tensor, h: Tensor, extra: Tensor | None = None) -> Tensor:
        H = self.hidden_size
        gx = torch.addmm(self.bias.unsqueeze(1), self.w_x, x)
        if extra is not None:
            gx = gx + extra
        gh = torch.mm(self.w_h[: 2 * H], h)
        r, u = torch.sigmoid(gx[: 2 * H] + gh).split(H)
        cand = torch.tanh(gx[2 * H:] + torch.mm(self.w_h[2 * H:], r * h))
        return u * h + (1 - u) * cand


def _segment_mean(values: Tensor, seg: Tensor, n_seg: int, counts: Tensor) -> Tensor:
    """Mean of the columns of ``values`` (F, N) per segment id ``seg`` (N,) -> (F, n_seg)."""
    out = values.new_zeros(values.shape[0], n_seg).index_add(1, seg, values)
    return out / counts


class HierarchicalRNN(nn.Module):
    """Learned update rule with Parameter, Tensor and Global GRUs (Wichrowska et al. 2017).

    Args:
        param_hidden, tensor_hidden, global_hidden: GRU sizes (paper: 10, 20, 20).
        n_scales: momentum time scales (paper: 4).
        init_lr: initial per-coordinate learning rate, the hyperparameter users set.
        init_lr_range: when given, meta-training draws the initial rate of each tensor
            log-uniformly from this range instead (paper: (1e-6, 1e-2)).
        lr: multiplier on the step (what ``torch.optim`` schedulers scale).
        max_log_lr: clip of the log learning rate.
        lr_bound: when given (>= 1), each coordinate's learned rate stays within
            ``[init / lr_bound, init * lr_bound]`` of the rate it started from: the guard
            against the run-away rate dynamics of long runs (the rate is an integrator of the
            RNN's outputs, so without a bound small biases compound over thousands of steps).
        max_rel_step: when given (> 0), a relative trust region in the spirit of Adafactor's
            update clipping: each tensor's step, per stacked problem, is scaled down so that its
            RMS is at most ``max_rel_step * lr * max(RMS of the tensor, rel_step_floor)``. It is
            differentiable (meta-training can learn with it on) and exact when it does not bind.
            A guard against the learned rate's run-away: the rate has no restoring force, so a
            bound relative to the parameters' own scale keeps any one step from wrecking them.
        rel_step_floor: the smallest tensor RMS the trust region assumes (for tensors that start
            at zero, such as biases).

    State per parameter (feature-major, n = numel): ``h`` (Hp, n), ``m``/``ms`` (S, n),
    ``log_lr``/``inp_decay``/``scl_decay`` (1, n), ``ht`` (Ht, K); and one entry
    ``"__global__"``: ``hg`` (Hg, K). ``n_problems`` (K) given to :meth:`init` marks a
    leading parameter dimension of independent problems: per-tensor and global means are
    taken per problem, so stacked problems never interact.

    Example:
        >>> rule = HierarchicalRNN()
        >>> params = {"w": torch.zeros(3, 2), "b": torch.zeros(2)}
        >>> state = rule.init(params)
        >>> updates, state = rule.update({k: torch.ones_like(p) for k, p in params.items()}, state, params)
        >>> updates["w"].shape
        torch.Size([3, 2])
    """

    kind = "hrnn"

    def __init__(self, param_hidden: int = 10, tensor_hidden: int = 20, global_hidden: int = 20,
                 n_scales: int = 4, init_lr: float = 1e-3, init_lr_range: tuple[float, float] | None = None,
                 lr: float = 1.0, max_log_lr: float = 0.0, lr_bound: float | None = None,
                 max_rel_step: float | None = None, rel_step_floor: float = 1e-2) -> None:
        super().__init__()
        if max_rel_step is not None and not (isinstance(max_rel_step, (int, float)) and max_rel_step > 0
                                             and math.isfinite(max_rel_step)):
            raise ValueError(f"max_rel_step={max_rel_step!r}; expected None or a finite number > 0")
        if not (isinstance(rel_step_floor, (int, float)) and rel_step_floor > 0 and math.isfinite(rel_step_floor)):
            raise ValueError(f"rel_step_floor={rel_step_floor!r}; expected a finite number > 0")
        if lr_bound is not None and not lr_bound >= 1.0:
            raise ValueError(f"lr_bound={lr_bound!r}; expected None or >= 1")
        if min(param_hidden, tensor_hidden, global_hidden, n_scales) < 1:
            raise ValueError("param_hidden, tensor_hidden, global_hidden and n_scales must be >= 1; got "
                             f"{param_hidden}, {tensor_hidden}, {global_hidden}, {n_scales}")
        if not init_lr > 0:
            raise ValueError(f"init_lr={init_lr!r}; expected > 0")
        if init_lr_range is not None and not (0 < init_lr_range[0] <= init_lr_range[1]):
            raise ValueError(f"init_lr_range={init_lr_range!r}; expected 0 < low <= high")
        self.param_hidden, self.tensor_hidden, self.global_hidden = param_hidden, tensor_hidden, global_hidden
        self.n_scales, self.init_lr, self.lr, self.max_log_lr = n_scales, float(init_lr), float(lr), float(max_log_lr)
        self.init_lr_range = None if init_lr_range is None else (float(init_lr_range[0]), float(init_lr_range[1]))
        self.lr_bound = None if lr_bound is None else float(lr_bound)
        self.max_rel_step = None if max_rel_step is None else float(max_rel_step)
        self.rel_step_floor = float(rel_step_floor)
        S, Hp, Ht, Hg = n_scales, param_hidden, tensor_hidden, global_hidden
        n_in = 2 * S + 1
        self.param_rnn = GRULayer(n_in, Hp)
        self.tensor_rnn = GRULayer(Hp + n_in, Ht)
        self.global_rnn = GRULayer(Ht, Hg)
        self.tensor_to_param = nn.Linear(Ht, 3 * Hp)
        self.global_to_param = nn.Linear(Hg, 3 * Hp, bias=False)
        self.global_to_tensor = nn.Linear(Hg, 3 * Ht)
        for m in (self.tensor_to_param, self.global_to_param, self.global_to_tensor):
            nn.init.normal_(m.weight, 0.0, 0.5 / math.sqrt(m.in_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        readout = 0.5 / math.sqrt(Hp)
        self.w_update = nn.Parameter(torch.randn(Hp) * readout)
        # learned weighting of the scaled momenta ("gradient shortcut"), starts as their mean
        self.w_scales = nn.Parameter(torch.full((S,), 1.0 / S))
        self.w_lr = nn.Parameter(torch.zeros(Hp))          # zero init: lr starts where the user put it
        self.b_lr = nn.Parameter(torch.zeros(()))
        self.w_inp_decay = nn.Parameter(torch.randn(Hp) * readout)
        self.b_inp_decay = nn.Parameter(torch.tensor(2.2))   # sigmoid(2.2) ~ 0.9
        self.w_scl_decay = nn.Parameter(torch.randn(Hp) * readout)
        self.b_scl_decay = nn.Parameter(torch.tensor(3.2))   # sigmoid(3.2) ~ 0.96
        self.lr_momentum_logit = nn.Parameter(torch.tensor(3.2))
        self.step_offset = nn.Parameter(torch.tensor(-1.0))
        self.h0_param = nn.Parameter(torch.empty(Hp).uniform_(-1, 1))
        self.h0_tensor = nn.Parameter(torch.empty(Ht).uniform_(-1, 1))
        self.h0_global = nn.Parameter(torch.empty(Hg).uniform_(-1, 1))
        self._layouts: dict = {}

    def config(self) -> dict[str, Any]:
        return {"param_hidden": self.param_hidden, "tensor_hidden": self.tensor_hidden,
                "global_hidden": self.global_hidden, "n_scales": self.n_scales, "init_lr": self.init_lr,
                "init_lr_range": None if self.init_lr_range is None else list(self.init_lr_range),
                "lr": self.lr, "max_log_lr": self.max_log_lr, "lr_bound": self.lr_bound,
                "max_rel_step": self.max_rel_step, "rel_step_floor": self.rel_step_floor}

    @staticmethod
    def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
        """A config written before the trust region, with the keys that reproduce what it did
        then: no trust region."""
        return {"max_rel_step": None, "rel_step_floor": 1e-2, **config}

    # ------------------------------------------------------------------ state
    def init(self, params: Params, n_problems: int = 1) -> State:
        dt = self.w_update.dtype
        # initial RNN states are meta-learned: keep their graph while meta-training
        learn_h0 = self.training and torch.is_grad_enabled()
        h0 = lambda v, dev: (v if learn_h0 else v.detach()).to(dev)  # noqa: E731
        state: State = {}
        for k, p in params.items():
            n, dev = p.numel(), p.device
            if n % n_problems:
                raise ValueError(f"parameter {k!r} has {n} entries, not divisible by n_problems={n_problems}")
            if self.init_lr_range is not None and self.training:
                lo, hi = math.log(self.init_lr_range[0]), math.log(self.init_lr_range[1])
                log_lr = torch.empty(1, n_problems, device=dev, dtype=dt).uniform_(lo, hi)
                log_lr = log_lr.repeat_interleave(n // n_problems, dim=1)
            else:
                log_lr = torch.full((1, n), math.log(self.init_lr), device=dev, dtype=dt)
            zeros = lambda rows: torch.zeros(rows, n, device=dev, dtype=dt)  # noqa: E731
            state[k] = {"h": h0(self.h0_param, dev).unsqueeze(1).expand(-1, n).clone(),
                        "m": zeros(self.n_scales), "ms": zeros(self.n_scales), "log_lr": log_lr,
                        "inp_decay": zeros(1), "scl_decay": zeros(1),
                        "ht": h0(self.h0_tensor, dev).unsqueeze(1).expand(-1, n_problems).clone()}
            if self.lr_bound is not None:        # the rate each (tensor, problem) started from
                state[k]["log_lr0"] = log_lr.reshape(1, n_problems, -1)[:, :, 0].clone()
        dev = next(iter(params.values())).device if params else self.w_update.device
        state[GLOBAL] = {"hg": h0(self.h0_global, dev).unsqueeze(1).expand(-1, n_problems).clone()}
        return state

    def _layout(self, sizes: tuple[int, ...], K: int, device) -> tuple[Tensor, Tensor, Tensor]:
        """Segment id per coordinate (tensor j, problem k) -> j*K + k, counts, problem of segment."""
        key = (sizes, K, str(device))
        if key not in self._layouts:
            segs = [j * K + torch.arange(K, device=device).repeat_interleave(n // K) for j, n in enumerate(sizes)]
            seg = torch.cat(segs)
            counts = torch.bincount(seg, minlength=len(sizes) * K).to(self.w_update.dtype).clamp_min(1)
            problem = torch.arange(len(sizes) * K, device=device) % K
            self._layouts = {key: (seg, counts, problem)}  # keep one layout: the common case
        return self._layouts[key]

    # ------------------------------------------------------------------ step
    def _trust_region(self, step: Tensor, params: Params, names: list, mult, seg: Tensor, n_seg: int,
                      counts: Tensor, eps: float) -> Tensor:
        """Scale each (tensor, problem) segment of ``step`` (N,) so that its RMS is at most
        ``max_rel_step * |mult| * max(RMS of the segment's parameters, rel_step_floor)``."""
        w = torch.cat([params[k].detach().reshape(1, -1).to(step.dtype) for k in names], dim=1)
        w_rms = torch.sqrt(_segment_mean(w * w, seg, n_seg, counts))[0]
        s_rms = torch.sqrt(_segment_mean((step * step).unsqueeze(0), seg, n_seg, counts) + eps)[0]
        scale_mult = mult.abs() if isinstance(mult, Tensor) else abs(float(mult))
        bound = self.max_rel_step * scale_mult * w_rms.clamp_min(self.rel_step_floor)
        factor = torch.clamp(bound / s_rms, max=1.0)
        return step * factor[seg]

    def update(self, grads: Params, state: State, params: Params, *, lr=None, loss=None):
        names = [k for k in grads]
        if not names:
            return {}, dict(state)
        dt = self.w_update.dtype
        S, eps = self.n_scales, 1e-16
        K = state[GLOBAL]["hg"].shape[1]
        sizes = tuple(grads[k].numel() for k in names)
        seg, counts, problem = self._layout(sizes, K, grads[names[0]].device)
        n_seg = len(sizes) * K
        cat = lambda key: torch.cat([state[k][key] for k in names], dim=1)  # noqa: E731
        g = torch.cat([grads[k].reshape(1, -1) for k in names], dim=1).to(dt)          # (1, N)
        h, m_old, ms_old, log_lr = cat("h"), cat("m"), cat("ms"), cat("log_lr")
        inp_decay, scl_decay = cat("inp_decay"), cat("scl_decay")
        ht = torch.cat([state[k]["ht"] for k in names], dim=1)                         # (Ht, n_seg)
        hg = state[GLOBAL]["hg"]                                                        # (Hg, K)

        # momenta at S time scales, each decay the square root of the previous
        decays = [inp_decay]
        for _ in range(S - 1):
            decays.append(torch.sqrt(decays[-1]))
        decay = torch.cat(decays)                                                       # (S, N)
        m = decay * m_old + (1 - decay) * g
        ms = scl_decay * ms_old + (1 - scl_decay) * m * m
        scaled = m * torch.rsqrt(ms + eps)
        log_ms = torch.log(ms + eps)
        rel_log_ms = log_ms - log_ms.mean(0, keepdim=True)
        rel_lr = log_lr - _segment_mean(log_lr, seg, n_seg, counts)[:, seg]
        x = torch.cat([scaled.clamp(-10, 10), rel_log_ms, rel_lr])                     # (2S+1, N)

        # Parameter RNN, biased by its tensor's and its problem's states
        bias_seg = self.tensor_to_param(ht.t()).t() + self.global_to_param(hg.t()).t()[:, problem]
        h = self.param_rnn(x, h, bias_seg[:, seg])
        # Tensor RNN on the mean of its coordinates; Global RNN on the mean of its tensors
        seg_in = _segment_mean(torch.cat([h, x]), seg, n_seg, counts)
        ht = self.tensor_rnn(seg_in, ht, self.global_to_tensor(hg.t()).t()[:, problem])
        per_problem = ht.new_zeros(ht.shape[0], K).index_add(1, problem, ht) / len(sizes)
        hg = self.global_rnn(per_problem, hg)

        # direction normalised per tensor, times exp(log lr) that the RNN updates
        delta = self.w_update @ h + self.w_scales @ scaled                              # (N,)
        rms = torch.sqrt(_segment_mean((delta * delta).unsqueeze(0), seg, n_seg, counts) + eps)
        delta = delta / rms[0, seg]
        step_log_lr = log_lr + (self.w_lr @ h + self.b_lr).unsqueeze(0)
        lo, hi = -33.0, self.max_log_lr
        if self.lr_bound is not None:
            base = torch.cat([state[k]["log_lr0"] for k in names], dim=1)[:, seg]     # (1, N)
            span = math.log(self.lr_bound)
            lo, hi = (base - span).clamp_min(-33.0), (base + span).clamp_max(self.max_log_lr)
        # clip forward, keep the gradient of the unclipped value
        step_log_lr = step_log_lr + (torch.clamp(step_log_lr, lo, hi) - step_log_lr).detach()
        lrm = torch.sigmoid(self.lr_momentum_logit)
        new_log_lr = lrm * log_lr + (1 - lrm) * step_log_lr
        mult = self.lr if lr is None else lr
        step = -mult * torch.exp(step_log_lr[0] + self.step_offset) * delta
        if self.max_rel_step is not None:
            step = self._trust_region(step, params, names, mult, seg, n_seg, counts, eps)
        new_inp = torch.sigmoid(self.w_inp_decay @ h + self.b_inp_decay).unsqueeze(0)
        new_scl = torch.sigmoid(self.w_scl_decay @ h + self.b_scl_decay).unsqueeze(0)

        updates, new_state = {}, {}
        cols = lambda t: t.split(sizes, dim=1)  # noqa: E731
        parts = {"h": cols(h), "m": cols(m), "ms": cols(ms), "log_lr": cols(new_log_lr),
                 "inp_decay": cols(new_inp), "scl_decay": cols(new_scl)}
        ht_parts = ht.split(K, dim=1)
        for i, (k, s) in enumerate(zip(names, step.split(sizes))):
            updates[k] = s.view_as(grads[k]).to(grads[k].dtype)
            new_state[k] = {key: v[i] for key, v in parts.items()}
            new_state[k]["ht"] = ht_parts[i]
            if self.lr_bound is not None:
                new_state[k]["log_lr0"] = state[k]["log_lr0"]
        for k in state:
            if k not in new_state and k != GLOBAL:
                new_state[k] = state[k]
        new_state[GLOBAL] = {"hg": hg}
        return updates, new_state
