"""Real networks as optimizees: K copies of one ``nn.Module`` stepped together.

:class:`NetTask` turns any module built from ordinary layers into a learnt
:class:`~learnt.tasks.Task`: the K problems are K independent initialisations (each drawn
under its own seed) of the same architecture on the same data, with their own minibatch
order, and the forward pass of all K is one ``torch.func.vmap`` of
``torch.func.functional_call``. So a learned optimizer meta-trains on, and is evaluated on,
the same kinds of networks users train, at the cost of roughly one batched forward pass.

The modules here are written from vmappable primitives (``nn.Linear``, ``nn.Conv2d``,
normalisation layers without running statistics, hand-written GRU / LSTM cells and attention),
because ``vmap`` has no batching rule for cuDNN-style fused RNN kernels or for in-place
running-statistics updates. Batch norm therefore always normalises with the statistics of the
batch it sees (``track_running_stats=False``), at evaluation too (evaluation uses large
batches).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU, "elu": nn.ELU, "leaky_relu": lambda: nn.LeakyReLU(0.1), "softplus": nn.Softplus,
}
NORMS = ("none", "batch", "layer")


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _norm1d(kind: str, width: int) -> nn.Module:
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")
    if kind == "batch":
        return nn.BatchNorm1d(width, track_running_stats=False)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class MLP(nn.Module):
    """Fully connected network: (B, *in_shape) -> (B, n_out)."""

    def __init__(self, d_in: int, widths: tuple[int, ...], n_out: int, act: str = "relu",
                 norm: str = "none", residual: bool = False) -> None:
        super().__init__()
        layers, d = [], d_in
        self.residual = residual
        for w in widths:
            layers.append(nn.Sequential(nn.Linear(d, w), _norm1d(norm, w), activation(act)))
            d = w
        self.hidden = nn.ModuleList(layers)
        self.out = nn.Linear(d, n_out)

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)
        for i, layer in enumerate(self.hidden):
            z = layer(h)
            h = h + z if (self.residual and i > 0 and z.shape == h.shape) else z
        return self.out(h)


class ConvNet(nn.Module):
    """Conv layers (optional batch norm, pooling or strides, residual blocks) -> global average -> linear.

    Input (B, C, H, W) -> (B, n_out)."""

    def __init__(self, in_ch: int, channels: tuple[int, ...], n_out: int, act: str = "relu",
                 bn: bool = False, pool: str = "none", stride: int = 1, kernel: int = 3,
                 residual: bool = False, groups: int = 1) -> None:
        super().__init__()
        if pool not in ("none", "max", "avg"):
            raise ValueError(f"pool={pool!r}; expected 'none', 'max' or 'avg'")
        self.pool, self.residual = pool, residual
        blocks, c = [], in_ch
        for i, ch in enumerate(channels):
            s = stride if i > 0 else 1
            g = groups if (c % groups == 0 and ch % groups == 0 and i > 0) else 1
            blocks.append(nn.Sequential(
                nn.Conv2d(c, ch, kernel, stride=s, padding=kernel // 2, groups=g, bias=not bn),
                nn.BatchNorm2d(ch, track_running_stats=False) if bn else nn.Identity(),
                activation(act)))
            c = ch
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Linear(c, n_out)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            z = block(h)
            h = h + z if (self.residual and z.shape == h.shape) else z
            if self.pool != "none" and i < len(self.blocks) - 1 and h.shape[-1] >= 4:
                h = F.max_pool2d(h, 2) if self.pool == "max" else F.avg_pool2d(h, 2)
        return self.out(h.mean((-2, -1)))


class GRUCell(nn.Module):
    """A GRU cell from two linear maps (vmappable)."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.x2h = nn.Linear(d_in, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)
        self.hidden = hidden

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        xr, xz, xn = self.x2h(x).chunk(3, -1)
        hr, hz, hn = self.h2h(h).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        return (1 - z) * torch.tanh(xn + r * hn) + z * h


class LSTMCell(nn.Module):
    """An LSTM cell from two linear maps (vmappable); the state is (h, c) concatenated."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.x2h = nn.Linear(d_in, 4 * hidden)
        self.h2h = nn.Linear(hidden, 4 * hidden, bias=False)
        self.hidden = hidden

    def forward(self, x: Tensor, hc: Tensor) -> Tensor:
        h, c = hc.chunk(2, -1)
        i, f, g, o = (self.x2h(x) + self.h2h(h)).chunk(4, -1)
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c], -1)


class RNNModel(nn.Module):
    """Sequence model: token embedding (or linear input) -> GRU/LSTM -> readout of the last state.

    Input (B, L) int tokens, or (B, L, d) floats when ``vocab`` is 0 -> (B, n_out)."""

    def __init__(self, vocab: int, d_in: int, hidden: int, n_out: int, cell: str = "gru") -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell={cell!r}; expected 'gru' or 'lstm'")
        self.embed = nn.Embedding(vocab, d_in) if vocab else nn.Identity()
        self.cell = GRUCell(d_in, hidden) if cell == "gru" else LSTMCell(d_in, hidden)
        self.state_size = hidden if cell == "gru" else 2 * hidden
        self.out = nn.Linear(hidden, n_out)
        self.hidden = hidden

    def forward(self, x: Tensor) -> Tensor:
        e = self.embed(x)
        h = e.new_zeros(e.shape[0], self.state_size)
        for t in range(e.shape[1]):
            h = self.cell(e[:, t], h)
        return self.out(h[:, : self.hidden])


class Block(nn.Module):
    """Pre-norm transformer block with hand-written multi-head attention."""

    def __init__(self, d: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model={d} not divisible by heads={heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))

    def forward(self, x: Tensor) -> Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.heads), -1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Small transformer classifier: tokens (B, L) -> embeddings + positions -> blocks -> mean -> (B, n_out)."""

    def __init__(self, vocab: int, seq_len: int, d: int, heads: int, layers: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(seq_len, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.out = nn.Linear(d, n_out)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.pos[: x.shape[1]]
        for b in self.blocks:
            h = b(h)
        return self.out(self.ln(h).mean(1))


class BagOfEmbeddings(nn.Module):
    """Mean of token embeddings -> MLP head: tokens (B, L) -> (B, n_out)."""

    def __init__(self, vocab: int, d: int, n_out: int, hidden: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, n_out)) if hidden else nn.Linear(d, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x).mean(1))


class Autoencoder(nn.Module):
    """Encoder-decoder MLP: (B, *shape) -> (B, d_in) reconstruction (logits for BCE, values for MSE)."""

    def __init__(self, d_in: int, widths: tuple[int, ...], act: str = "relu") -> None:
        super().__init__()
        dims = [d_in, *widths]
        enc = []
        for a, b in zip(dims[:-1], dims[1:]):
            enc += [nn.Linear(a, b), activation(act)]
        dec = []
        rdims = dims[::-1]
        for i, (a, b) in enumerate(zip(rdims[:-1], rdims[1:])):
            dec.append(nn.Linear(a, b))
            if i < len(rdims) - 2:
                dec.append(activation(act))
        self.net = nn.Sequential(*enc, *dec)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class Linear(nn.Module):
    """Linear / logistic regression: (B, *shape) -> (B, n_out)."""

    def __init__(self, d_in: int, n_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.lin(x.flatten(1))
