"""The coordinatewise LSTM optimizer of Andrychowicz et al. (2016)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from learnt.functional.base import Params, State
from learnt.learned.preprocess import log_sign


class CoordinateLSTM(nn.Module):
    """A stacked LSTM applied to every coordinate independently (shared weights).

    Feature-major layout: inputs are (F, N) and states (H, N) for N coordinates, so the
    gate blocks of ``W @ x`` are contiguous row ranges and the elementwise gate math runs
    on contiguous memory. One ``mm`` + one in-place ``addmm_`` per layer over all N
    coordinates. Weights follow ``nn.LSTM``: ``w_ih`` (4H, F), ``w_hh`` (4H, H), ``bias``
    (4H,), gate order input, forget, output, candidate.
    """

    def __init__(self, input_size: int, hidden_size: int = 20, num_layers: int = 2) -> None:
        super().__init__()
        if hidden_size < 1 or num_layers < 1:
            raise ValueError(f"hidden_size={hidden_size}, num_layers={num_layers}; expected both >= 1")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        H = hidden_size
        self.w_ih = nn.ParameterList()
        self.w_hh = nn.ParameterList()
        self.bias = nn.ParameterList()
        bound = 1.0 / math.sqrt(H)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else H
            self.w_ih.append(nn.Parameter(torch.empty(4 * H, fan_in).uniform_(-bound, bound)))
            self.w_hh.append(nn.Parameter(torch.empty(4 * H, H).uniform_(-bound, bound)))
            b = torch.empty(4 * H).uniform_(-bound, bound)
            b[H:2 * H] += 1.0  # forget-gate bias: remember by default
            self.bias.append(nn.Parameter(b))
        scale = torch.ones(4 * H, 1)
        scale[3 * H:] = 2.0
        self.register_buffer("gate_scale", scale, persistent=False)

    def forward(self, x: Tensor, hs: list[Tensor], cs: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Differentiable step. x (F, N); hs, cs lists of (H, N). Returns (top h, hs, cs)."""
        H = self.hidden_size
        new_h, new_c = [], []
        for layer in range(self.num_layers):
            gates = torch.addmm(self.bias[layer].unsqueeze(1), self.w_ih[layer], x).addmm_(self.w_hh[layer], hs[layer])
            # split (not slicing) so backward is one cat, not a zero-filled full-size grad per slice
            i, f, o, g = gates.split(H)
            c = torch.addcmul(torch.sigmoid(f) * cs[layer], torch.sigmoid(i), torch.tanh(g))
            h = torch.sigmoid(o) * torch.tanh(c)
            new_h.append(h)
            new_c.append(c)
            x = h
        return x, new_h, new_c

    @torch.no_grad()
    def forward_(self, x: Tensor, hs: list[Tensor], cs: list[Tensor]) -> Tensor:
        """In-place step for apply mode: overwrites ``hs``/``cs``; no graph, few allocations."""
        H = self.hidden_size
        gates = None
        for layer in range(self.num_layers):
            gates = torch.mm(self.w_ih[layer], x, out=gates).addmm_(self.w_hh[layer], hs[layer])
            # one sigmoid over all gates, tanh(z) = 2 sigmoid(2z) - 1: 3x faster than tanh on
            # CPU for large N; equal to the differentiable path within float32 rounding
            act = gates.add_(self.bias[layer].unsqueeze(1)).mul_(self.gate_scale).sigmoid_()
            cand = act[3 * H:].mul_(2).sub_(1)
            c, h = cs[layer], hs[layer]
            c.mul_(act[H:2 * H]).addcmul_(act[:H], cand)
            torch.mul(c, 2, out=h).sigmoid_().mul_(2).sub_(1).mul_(act[2 * H:3 * H])
            x = h
        return x


class L2LOptimizer(nn.Module):
    """Learned update rule: a 2-layer coordinatewise LSTM (Andrychowicz et al. 2016).

    ``update`` concatenates every coordinate of every parameter into one batch of N
    coordinates, runs one LSTM call, and splits the (N,) output back. The proposed step is
    ``lr * output_scale * head(h)``; ``lr`` defaults to 1.0 and is what ``torch.optim``
    schedulers scale. Per-parameter state: ``h{l}``, ``c{l}`` of shape (hidden, numel).

    ``update`` is pure (meta-training differentiates through it); ``update_`` is the
    apply-mode variant :class:`learnt.optim.RuleOptimizer` uses: same numbers, under
    ``no_grad``, writing the new state into preallocated buffers.

    Example:
        >>> opt = L2LOptimizer()
        >>> params = {"w": torch.zeros(3, 2)}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": torch.ones(3, 2)}, state, params)
        >>> updates["w"].shape
        torch.Size([3, 2])
    """

    kind = "l2l-lstm"

    def __init__(self, hidden_size: int = 20, num_layers: int = 2, preproc_p: float = 10.0,
                 output_scale: float = 0.1, lr: float = 1.0) -> None:
        super().__init__()
        if preproc_p <= 0:
            raise ValueError(f"preproc_p={preproc_p!r}; expected > 0")
        if output_scale <= 0:
            raise ValueError(f"output_scale={output_scale!r}; expected > 0")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.preproc_p, self.output_scale, self.lr = float(preproc_p), float(output_scale), float(lr)
        self.lstm = CoordinateLSTM(2, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, 1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)  # start with small, nearly uncorrelated steps
            self.head.bias.zero_()

    def config(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the architecture."""
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "preproc_p": self.preproc_p, "output_scale": self.output_scale, "lr": self.lr}

    def _state_names(self) -> list[str]:
        return [f"{s}{layer}" for layer in range(self.num_layers) for s in ("h", "c")]

    def init(self, params: Params, n_problems: int = 1) -> State:
        w = self.head.weight
        return {k: {n: torch.zeros(self.hidden_size, p.numel(), dtype=w.dtype, device=p.device)
                    for n in self._state_names()}
                for k, p in params.items()}

    def _inputs(self, grads: Params, names: list[str]) -> Tensor:
        w = self.head.weight
        flat = torch.cat([grads[k].reshape(-1) for k in names]).to(w.dtype)
        return log_sign(flat, self.preproc_p, dim=0)

    def _gather(self, parts: list[Tensor]) -> Tensor:
        """The (H, N) state of all coordinates. When ``parts`` are the column views the
        previous ``update`` returned, their base is used as is: no copy forward, and no
        split/cat round trip in the backward pass of an unroll."""
        base = _shared_base(parts, self.head.weight.dtype)
        # .to() matters after torch.optim.load_state_dict cast the state to the parameters' dtype
        return base if base is not None else _cat(parts).to(self.head.weight.dtype)

    def _head(self, top: Tensor, lr) -> Tensor:
        scale = self.output_scale * (self.lr if lr is None else lr)
        return (self.head.weight.squeeze(0) @ top + self.head.bias) * scale

    def update(self, grads: Params, state: State, params: Params, *, lr=None, loss=None):
        names = list(grads)
        if not names:
            return {}, {}
        sizes = [grads[k].numel() for k in names]
        x = self._inputs(grads, names)
        hs = [self._gather([state[k][f"h{l}"] for k in names]) for l in range(self.num_layers)]
        cs = [self._gather([state[k][f"c{l}"] for k in names]) for l in range(self.num_layers)]
        top, hs, cs = self.lstm(x, hs, cs)
        out = self._head(top, lr)
        updates, new_state = {}, {}
        out_parts = out.split(sizes)
        h_parts = [h.split(sizes, dim=1) for h in hs]
        c_parts = [c.split(sizes, dim=1) for c in cs]
        for i, k in enumerate(names):
            updates[k] = out_parts[i].view_as(grads[k]).to(grads[k].dtype)
            new_state[k] = {}
            for l in range(self.num_layers):
                new_state[k][f"h{l}"] = h_parts[l][i]
                new_state[k][f"c{l}"] = c_parts[l][i]
        return updates, new_state

    @torch.no_grad()
    def update_(self, grads: Params, state: State, params: Params, *, lr=None, loss=None) -> Params:
        """Apply-mode update: returns updates and overwrites ``state`` in place.

        The state of all parameters lives in one (H, N) buffer per tensor name; each
        parameter's entry is a view into it. After a ``load_state_dict`` (which replaces
        the views) the buffers are rebuilt once.
        """
        names = list(grads)
        if not names:
            return {}
        sizes = [grads[k].numel() for k in names]
        bufs = {}
        for n in self._state_names():
            parts = [state[k][n] for k in names]
            base = _shared_base(parts, self.head.weight.dtype)
            if base is None:
                base = _cat(parts).to(self.head.weight.dtype).contiguous()
                for k, view in zip(names, base.split(sizes, dim=1)):
                    state[k][n] = view
            bufs[n] = base
        x = self._inputs(grads, names)
        L = self.num_layers
        top = self.lstm.forward_(x, [bufs[f"h{l}"] for l in range(L)], [bufs[f"c{l}"] for l in range(L)])
        out = self._head(top, lr)
        return {k: o.view_as(grads[k]).to(grads[k].dtype) for k, o in zip(names, out.split(sizes))}


def _cat(parts: list[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _shared_base(parts: list[Tensor], dtype) -> Tensor | None:
    """The (H, N) buffer that ``parts`` are consecutive column views of, or None."""
    base = parts[0]._base if parts[0]._base is not None else parts[0]
    if base.dtype != dtype or base.dim() != 2 or not base.is_contiguous():
        return None
    offset = 0
    for p in parts:
        if (p._base if p._base is not None else p) is not base or p.storage_offset() != offset \
                or p.shape[0] != base.shape[0] or p.stride() != base.stride():
            return None
        offset += p.shape[1]
    return base if offset == base.shape[1] else None
