"""The LSTM meta-learner of Ravi & Larochelle (2017): an LSTM whose cell state is the learner's weights.

Per coordinate of the learner's flat parameter vector theta (all coordinates in one batch):

1. a first LSTM (``hidden_size`` units, shared across coordinates) reads the preprocessed
   loss and gradient, ``log_sign(loss)`` and ``log_sign(grad)`` (4 inputs);
2. the custom cell computes, from its hidden state h, the previous weights and the previous gate,
   ``f_t = sigmoid(W_f [h, theta_{t-1}, f_{t-1}] + b_f)`` (the learned weight decay) and
   ``i_t = sigmoid(W_i [h, theta_{t-1}, i_{t-1}] + b_i)`` (the learned learning rate), and
   ``theta_t = f_t * theta_{t-1} - i_t * grad_t``;
3. ``theta_0 = c_0`` is meta-learned (the learned initialisation).

The learner's gradients and losses enter as constants (detached: no second derivatives);
the meta-gradient flows through the gates and the cell state. ``b_f ~ U(4, 5)`` and
``b_i ~ U(-5, -4)`` start the cell near SGD with a small step and no decay. The cell fits the
house :class:`~learnt.functional.base.UpdateRule` contract (``init``/``update`` returning
updates ``(f - 1) theta - i grad``), so it can also drive :func:`learnt.meta.unroll`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from learnt.fewshot.learner import FlatParams, Params, run
from learnt.fewshot.methods import Method, task_loss
from learnt.learned.preprocess import log_sign
from learnt.seeding import make_generator


class MetaLearnerLSTM(Method):
    """Ravi & Larochelle's meta-learner around a functional ``learner``.

    ``adapt(sx, sy)`` runs ``steps`` updates on the support set (the whole support set is
    the batch, as in the paper's 1-shot (5 images) and 5-shot (25 images) settings) and
    returns the adapted flat weights. Shapes: ``sx`` (B, ...), ``sy`` (B,) labels or (B, 1)
    targets; theta (n,) with n = the learner's parameter count.

    Example:
        >>> from learnt.fewshot.learner import SineMLP
        >>> m = MetaLearnerLSTM(SineMLP(8), task="regression", steps=2)
        >>> m.adapt(torch.zeros(5, 1), torch.zeros(5, 1))[0].shape
        torch.Size([97])
    """

    kind = "ravi-lstm"

    def __init__(self, learner: nn.Module, task: str = "classification", steps: int = 12, hidden_size: int = 20,
                 preproc_p: float = 10.0, seed: int = 0) -> None:
        super().__init__(learner, task)
        if steps < 1 or hidden_size < 1:
            raise ValueError(f"steps={steps}, hidden_size={hidden_size}; expected both >= 1")
        self.steps, self.hidden_size, self.preproc_p = steps, hidden_size, preproc_p
        self.lr = 1.0  # UpdateRule: multiplies the proposed update when given to update()
        learner.requires_grad_(False)  # a template for functional calls; c0 holds the learned weights
        params = dict(learner.named_parameters())
        self.flat = FlatParams(params)
        self.c0 = nn.Parameter(self.flat.flatten(params).detach().clone())
        self.lstm = nn.LSTMCell(4, hidden_size)
        g = make_generator(seed, "train", 0, 101)
        u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(*shape, generator=g)  # noqa: E731
        k = 1 / math.sqrt(hidden_size)
        with torch.no_grad():
            for p in self.lstm.parameters():
                p.copy_(u(-k, k, *p.shape))
        self.w_f = nn.Parameter(u(-0.01, 0.01, hidden_size + 2))
        self.w_i = nn.Parameter(u(-0.01, 0.01, hidden_size + 2))
        self.b_f = nn.Parameter(u(4.0, 5.0, 1))
        self.b_i = nn.Parameter(u(-5.0, -4.0, 1))

    def config(self) -> dict:
        return {**super().config(), "steps": self.steps, "hidden_size": self.hidden_size, "preproc_p": self.preproc_p}

    # -------------------------------------------------------------- UpdateRule contract
    def init(self, params: Params, n_problems: int = 1) -> dict:
        n = sum(p.numel() for p in params.values())
        return {"__cell": self._init_flat(n, self.c0.device, self.c0.dtype)}

    def update(self, grads: Params, state: dict, params: Params, *, lr=None, loss: Tensor | None = None):
        if loss is None:
            raise ValueError("MetaLearnerLSTM.update needs the learner's loss (loss=...); it is one of its inputs")
        flat = FlatParams(params)
        theta = flat.flatten(params)
        new, cell, _ = self.step(theta, flat.flatten(grads), loss, state["__cell"])
        delta = new - theta
        if lr is not None:
            delta = delta * lr
        return flat.unflatten(delta), {"__cell": cell}

    # -------------------------------------------------------------- the cell
    def _init_flat(self, n: int, device, dtype) -> dict[str, Tensor]:
        # coordinate-minor layout: h, c are (hidden, n), so every gate is a contiguous block of rows
        z = torch.zeros(self.hidden_size, n, device=device, dtype=dtype)
        zero = torch.zeros(n, device=device, dtype=dtype)
        return {"h": z, "c": z.clone(), "f": zero, "i": zero.clone()}

    def step(self, theta: Tensor, grad: Tensor, loss: Tensor, cell: dict[str, Tensor]):
        """One update. Shapes: theta, grad (n,); loss (); cell h, c (hidden, n), f, i (n,)
        (the gates' pre-activations).

        Returns ``(theta_t, cell_t, (sigmoid f_t, sigmoid i_t))``."""
        grad, loss = grad.detach(), loss.detach()
        x = torch.cat([log_sign(loss.expand_as(grad), self.preproc_p, dim=0),
                       log_sign(grad, self.preproc_p, dim=0)], dim=0)             # (4, n)
        h, c = self._lstm(x, cell["h"], cell["c"])
        H = self.hidden_size
        f_h, i_h = torch.stack([self.w_f[:H], self.w_i[:H]]) @ h                  # (2, n) in one matmul
        f_pre = f_h + self.w_f[H] * theta + self.w_f[H + 1] * cell["f"] + self.b_f
        i_pre = i_h + self.w_i[H] * theta + self.w_i[H + 1] * cell["i"] + self.b_i
        f, i = torch.sigmoid(f_pre), torch.sigmoid(i_pre)
        new = f * theta - i * grad
        return new, {"h": h, "c": c, "f": f_pre, "i": i_pre}, (f, i)

    def _lstm(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``nn.LSTMCell`` math with its parameters on (features, n) columns.

        One matmul gives the (4 hidden, n) gates, whose row blocks are contiguous; the rest is
        :class:`_LSTMGates`, one sigmoid over all gates (``tanh(g) = 2 sigmoid(2 g) - 1``, the
        cell-input rows doubled in the weights; likewise ``tanh(c)``) with a hand-written
        backward. On CPU, elementwise ops on the column slices of an (n, 4 hidden) layout and
        ``torch.tanh`` are each several times slower than a contiguous sigmoid, and autograd's
        slice backward fills a zero tensor per gate (``benchmarks/fewshot_speed.py``)."""
        m = self.lstm
        H = self.hidden_size
        scale = torch.ones(4 * H, 1, dtype=x.dtype, device=x.device)
        scale[2 * H:3 * H] = 2.0
        w = torch.cat([m.weight_ih, m.weight_hh], 1) * scale               # (4 hidden, 4 + hidden)
        b = (m.bias_ih + m.bias_hh)[:, None] * scale
        return _LSTMGates.apply(torch.addmm(b, w, torch.cat([x, h], 0)), c)

    def adapt(self, sx: Tensor, sy: Tensor, steps: int | None = None, record: bool = False):
        """Run the inner loop on the support set; returns ``(theta_T (n,), trace)``.

        ``trace`` (when ``record``) holds per step and per learner tensor the mean input gate
        (learning rate) and forget gate: ``{"input": [[...per tensor] per step], "forget": ...}``."""
        theta = self.c0
        cell = self._init_flat(self.flat.numel, theta.device, theta.dtype)
        trace = {"input": [], "forget": [], "loss": [], "names": self.flat.names}
        for _ in range(self.steps if steps is None else steps):
            with torch.enable_grad():
                th = theta.detach().requires_grad_(True)
                loss = task_loss(self.task, run(self.learner, self.flat.unflatten(th), sx), sy)
                (grad,) = torch.autograd.grad(loss, th)
            theta, cell, (f, i) = self.step(theta, grad.detach(), loss.detach(), cell)
            if record:
                trace["input"].append([float(t.mean()) for t in i.detach().split(self.flat.sizes)])
                trace["forget"].append([float(t.mean()) for t in f.detach().split(self.flat.sizes)])
                trace["loss"].append(loss.item())
        return theta, trace

    def query_output(self, sx: Tensor, sy: Tensor, qx: Tensor) -> Tensor:
        theta, _ = self.adapt(sx, sy)
        return run(self.learner, self.flat.unflatten(theta), qx)


class _LSTMGates(torch.autograd.Function):
    """The elementwise half of an LSTM cell on (4 hidden, n) pre-activations ``a`` (the
    cell-input block already doubled) and the (hidden, n) cell ``c``: returns ``(h, c_new)``.
    Saves the gates and ``tanh(c_new)`` only; the backward writes all four gate gradients
    into one buffer."""

    @staticmethod
    def forward(ctx, a: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        H = c.shape[0]
        s = torch.sigmoid(a)
        i, f, g, o = s[:H], s[H:2 * H], s[2 * H:3 * H], s[3 * H:]
        gt = 2 * g - 1                                        # tanh of the cell input
        c_new = torch.addcmul(f * c, i, gt)
        tc = torch.sigmoid(2 * c_new).mul_(2).sub_(1)         # tanh(c_new)
        ctx.save_for_backward(s, c, tc)
        return o * tc, c_new

    @staticmethod
    def backward(ctx, dh: Tensor | None, dc_new: Tensor | None):
        s, c, tc = ctx.saved_tensors
        H = c.shape[0]
        i, f, g, o = s[:H], s[H:2 * H], s[2 * H:3 * H], s[3 * H:]
        da = torch.empty_like(s)
        dc = torch.zeros_like(c) if dc_new is None else dc_new.clone()
        if dh is not None:
            dc.addcmul_(dh * o, 1 - tc * tc)
            torch.mul(dh * tc, o * (1 - o), out=da[3 * H:])
        else:
            da[3 * H:].zero_()
        torch.mul(dc * (2 * g - 1), i * (1 - i), out=da[:H])
        torch.mul(dc * c, f * (1 - f), out=da[H:2 * H])
        torch.mul(dc * i, 2 * g * (1 - g), out=da[2 * H:3 * H])
        return da, dc * f

