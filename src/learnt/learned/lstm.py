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

    Gates of one layer come from two ``addmm`` calls over all N coordinates at once.
    Shapes: input (N, F); per-layer state h, c (N, H); output (N, H).
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
            self.w_ih.append(nn.Parameter(torch.empty(fan_in, 4 * H).uniform_(-bound, bound)))
            self.w_hh.append(nn.Parameter(torch.empty(H, 4 * H).uniform_(-bound, bound)))
            b = torch.empty(4 * H).uniform_(-bound, bound)
            b[H:2 * H] += 1.0  # forget-gate bias: remember by default
            self.bias.append(nn.Parameter(b))

    def forward(self, x: Tensor, hs: list[Tensor], cs: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        H = self.hidden_size
        new_h, new_c = [], []
        for layer in range(self.num_layers):
            gates = torch.addmm(torch.addmm(self.bias[layer], x, self.w_ih[layer]), hs[layer], self.w_hh[layer])
            # gate order: input, forget, output (sigmoid) then candidate (tanh)
            sig = torch.sigmoid(gates[:, : 3 * H])
            cand = torch.tanh(gates[:, 3 * H:])
            c = sig[:, H:2 * H] * cs[layer] + sig[:, :H] * cand
            h = sig[:, 2 * H:3 * H] * torch.tanh(c)
            new_h.append(h)
            new_c.append(c)
            x = h
        return x, new_h, new_c


class L2LOptimizer(nn.Module):
    """Learned update rule: a 2-layer coordinatewise LSTM (Andrychowicz et al. 2016).

    ``update`` concatenates every coordinate of every parameter into one batch of N
    coordinates, runs one LSTM call, and splits the (N,) output back. The proposed step is
    ``lr * output_scale * head(h)``; ``lr`` defaults to 1.0 and is what ``torch.optim``
    schedulers scale. Per-parameter state: ``h{l}``, ``c{l}`` of shape (numel, hidden).

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

    def init(self, params: Params) -> State:
        w = self.head.weight
        return {
            k: {f"{s}{layer}": torch.zeros(p.numel(), self.hidden_size, dtype=w.dtype, device=p.device)
                for layer in range(self.num_layers) for s in ("h", "c")}
            for k, p in params.items()
        }

    def update(self, grads: Params, state: State, params: Params, *, lr=None, loss=None):
        names = list(grads)
        if not names:
            return {}, {}
        sizes = [grads[k].numel() for k in names]
        w = self.head.weight
        flat = torch.cat([grads[k].reshape(-1) for k in names]).to(w.dtype)
        x = log_sign(flat, self.preproc_p)
        # .to() is a no-op normally; it matters after torch.optim.load_state_dict cast the state
        hs = [torch.cat([state[k][f"h{l}"] for k in names]).to(w.dtype) for l in range(self.num_layers)]
        cs = [torch.cat([state[k][f"c{l}"] for k in names]).to(w.dtype) for l in range(self.num_layers)]
        top, hs, cs = self.lstm(x, hs, cs)
        scale = self.output_scale * (self.lr if lr is None else lr)
        out = (top @ w.squeeze(0) + self.head.bias) * scale
        updates, new_state = {}, {}
        out_parts = out.split(sizes)
        h_parts = [h.split(sizes) for h in hs]
        c_parts = [c.split(sizes) for c in cs]
        for i, k in enumerate(names):
            updates[k] = out_parts[i].view_as(grads[k]).to(grads[k].dtype)
            new_state[k] = {}
            for l in range(self.num_layers):
                new_state[k][f"h{l}"] = h_parts[l][i]
                new_state[k][f"c{l}"] = c_parts[l][i]
        return updates, new_state
