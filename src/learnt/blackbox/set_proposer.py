"""A proposer that attends over the whole history: a set (transformer) encoder of (x, y) pairs.

Chen et al.'s LSTM reads the history one result at a time and must carry everything it needs
in its state. PFNs4BO (Muller et al. 2023), NAP (Maraval et al. 2023) and OptFormer (Chen et
al. 2022) instead let the model look at the whole history at every step. ``SetProposer`` does
that with an order-free encoder (no positions: the history is a set), so one network serves
any number of trials and a suggestion is a pure function of the history, with no replay.

Tokens. Every query ``x_i`` so far is one token: ``x_i`` mapped to ``[-1, 1]`` and zero outside
the active-coordinate mask, the mask, its result standardised by the mean and standard
deviation of all *finished* results (clipped to +-5), its rank among them mapped to
``[-1, 1]`` (so heavy-tailed or warped objectives look alike), the finished flag (running
trials are tokens with ``y`` = rank = 0, the paper's pending flag) and an incumbent flag. The
query token carries the mask, the t-th point of a scrambled Sobol design, the incumbent and
its standardised result, and the numbers of queries and of finished ones (over 100).

Network. The tokens and the query token are embedded by two linear maps, pass through
``layers`` pre-norm transformer blocks (multi-head self-attention over query + history,
tanh-GELU MLP), and the query token's output drives the same incumbent-centred head as
:class:`~learnt.blackbox.proposer.LSTMProposer`: ``x = sigmoid(g logit(x_best) + R (2 s_t - 1)
+ b)``. At initialisation the history is ignored (zero output weights) and the proposer is a
scrambled Sobol sequence around the cube's centre, i.e. space filling; meta-training learns
when and where to concentrate.

Example:
    >>> import torch
    >>> from learnt.blackbox import GPFunctionFamily
    >>> fns = GPFunctionFamily(dim=3, n_functions=4).sample(torch.Generator().manual_seed(0))
    >>> run = SetProposer(width=16, heads=2, layers=1).rollout(fns, dim=3, steps=6)
    >>> run.x.shape, run.y.shape
    (torch.Size([4, 6, 3]), torch.Size([4, 6]))
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.blackbox.proposer import DESIGN_LEN, Y_CLIP, ProposerBase, Rollout
from learnt.errors import ConfigError

SET_KIND = "bbo-set"
GRAD_STD_FLOOR = 0.1     # the standardised results' gradient is at most 10x the raw results'
PROGRESS_CAP = 200       # the query token's counts saturate here (the meta-training horizons are <= 200)


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or int(v) != v or v < 1:
        raise ConfigError(f"{name}={v!r}; expected a positive integer")
    return int(v)


class _Block(nn.Module):
    """Pre-norm transformer block: ``h + attn(ln(h))``, then ``h + mlp(ln(h))``."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, h: Tensor) -> Tensor:
        k, n, w = h.shape
        q, key, v = self.qkv(self.ln1(h)).view(k, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, key, v)
        h = h + self.proj(a.transpose(1, 2).reshape(k, n, w))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h)), approximate="tanh"))


def history_features(x: Tensor, y: Tensor, finished: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Token features of K histories and their incumbents.

    Args:
        x: queries (K, N, max_dim) in [0, 1], zero outside ``mask``. y: results (K, N) (any value
            where not finished). finished: (N,) or (K, N) bool. mask: (K, max_dim).
    Returns:
        tokens (K, N, 2 max_dim + 4), incumbent x (K, max_dim) (0.5 when nothing finished) and
        its standardised result (K,) (0 when fewer than two results).
    """
    k, n, md = x.shape
    fin = finished.expand(k, n) if finished.ndim == 1 else finished
    finf = fin.to(torch.float64)
    yd = torch.where(fin, y.double(), torch.zeros((), dtype=torch.float64, device=y.device))
    cnt = finf.sum(1, keepdim=True)
    mean = yd.sum(1, keepdim=True) / cnt.clamp_min(1.0)
    var = (((yd - mean) ** 2) * finf).sum(1, keepdim=True) / cnt.clamp_min(1.0)
    std = torch.sqrt(var + 1e-12).clamp_min(1e-6)
    many = cnt >= 2
    z = torch.where(fin & many, ((yd - mean) / std).clamp(-Y_CLIP, Y_CLIP), torch.zeros_like(yd))
    if z.requires_grad:
        # the value as computed; the gradient of a plain rescaling by a bounded 1 / std, so that
        # near-equal results (plateaus, failure regions) do not send 1 / std ~ 1e6 into BPTT
        gain = 1.0 / std.detach().clamp_min(GRAD_STD_FLOOR)
        z = z.detach() + torch.where(fin & many & (z.detach().abs() < Y_CLIP), (yd - yd.detach()) * gain, 0.0)
    with torch.no_grad():
        ydet = yd.detach()
        less = ((ydet.unsqueeze(1) < ydet.unsqueeze(2)) & fin.unsqueeze(1)).sum(2).double()
        ties = ((ydet.unsqueeze(1) == ydet.unsqueeze(2)) & fin.unsqueeze(1)).sum(2).double() - 1.0
        rank = torch.where(fin & many, 2.0 * (less + 0.5 * ties) / (cnt - 1.0).clamp_min(1.0) - 1.0,
                           torch.zeros_like(ydet))
        any_fin = fin.any(1)
        if n:
            best = torch.where(fin, ydet, torch.full_like(ydet, math.inf)).argmin(1)
            is_best = F.one_hot(best, n).to(torch.bool) & any_fin.unsqueeze(1)
        else:
            is_best = fin
    dt = x.dtype
    xin = (2.0 * x - 1.0) * mask.unsqueeze(1)
    tokens = torch.cat([xin, mask.unsqueeze(1).expand(k, n, md), z.to(dt).unsqueeze(2), rank.to(dt).unsqueeze(2),
                        fin.to(dt).unsqueeze(2), is_best.to(dt).unsqueeze(2)], dim=2)
    if n:
        x_best = torch.where(any_fin.unsqueeze(1), x[torch.arange(k, device=x.device), best],
                             torch.full_like(mask, 0.5))
        best_std = torch.where(any_fin, z[torch.arange(k, device=x.device), best], torch.zeros_like(mean[:, 0]))
    else:
        x_best, best_std = torch.full_like(mask, 0.5), torch.zeros(k, dtype=torch.float64, device=x.device)
    return tokens, x_best, best_std.to(dt)


class SetProposer(ProposerBase):
    """Attention proposer of queries in ``[0, 1]^d`` for any ``d <= max_dim`` and any history length.

    Args:
        max_dim: the largest problem dimension the network serves.
        width: token width. heads: attention heads (must divide ``width``).
        layers: transformer blocks. ffn: MLP width as a multiple of ``width``.
        fourier: number of random frequencies (0: none) whose sin / cos features of each
            token's query, the design point and the incumbent are added to the inputs.

    :meth:`propose` maps histories to the next queries; :meth:`rollout` runs whole sequences on
    a batch of functions, differentiably, with the same contract as ``LSTMProposer.rollout``.
    """

    kind = SET_KIND
    incumbent = True

    def __init__(self, max_dim: int = 10, width: int = 64, heads: int = 4, layers: int = 2, ffn: int = 2,
                 fourier: int = 0) -> None:
        super().__init__()
        self.max_dim, self.width = _positive_int("max_dim", max_dim), _positive_int("width", width)
        self.heads, self.layers = _positive_int("heads", heads), _positive_int("layers", layers)
        self.ffn = _positive_int("ffn", ffn)
        if isinstance(fourier, bool) or int(fourier) != fourier or fourier < 0:
            raise ConfigError(f"fourier={fourier!r}; expected a non-negative integer")
        self.fourier = int(fourier)
        if self.width % self.heads:
            raise ConfigError(f"width={width!r}, heads={heads!r}; expected heads to divide width")
        md = self.max_dim
        nf = 2 * self.fourier
        self.tok = nn.Linear(2 * md + 4 + nf, self.width)
        self.qry = nn.Linear(3 * md + 3 + 2 * nf, self.width)
        # fixed random frequencies (two bands) of the Fourier features of a point in [-1, 1]^d:
        # dot products of sin / cos features approximate a stationary kernel, so attention can
        # compare locations by distance rather than by a bilinear form of the coordinates
        if self.fourier:
            g = torch.Generator().manual_seed(1)
            band = torch.where(torch.arange(self.fourier) < self.fourier // 2, 3.0, 8.0)
            self.register_buffer("freqs", torch.randn(md, self.fourier, generator=g) * band)
        self.blocks = nn.ModuleList(_Block(self.width, self.heads, self.ffn * self.width) for _ in range(self.layers))
        self.norm = nn.LayerNorm(self.width)
        self.head = nn.Linear(self.width, md + 2)
        from torch.quasirandom import SobolEngine
        self.register_buffer("design", SobolEngine(md, scramble=True, seed=0).draw(DESIGN_LEN))
        with torch.no_grad():   # start as a Sobol sequence of radius 2 around the cube's centre
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.bias[-2:] = torch.tensor([math.log(2.0), -3.0])

    def config(self) -> dict:
        return {"max_dim": self.max_dim, "width": self.width, "heads": self.heads, "layers": self.layers,
                "ffn": self.ffn, "fourier": self.fourier}

    def features(self, u: Tensor) -> Tensor:
        """Fourier features (..., 2 fourier) of points ``u`` in [-1, 1]^max_dim (zero where masked)."""
        z = u @ self.freqs.to(u)
        return torch.cat([torch.sin(z), torch.cos(z)], dim=-1)

    def propose(self, x: Tensor, y: Tensor, finished: Tensor, mask: Tensor) -> Tensor:
        """Next queries (K, max_dim) in (0, 1), zero outside ``mask``, after histories of N
        queries ``x`` (K, N, max_dim) with results ``y`` (K, N) and ``finished`` flags (N,) or (K, N)."""
        k, n, _ = x.shape
        tokens, x_best, best_std = history_features(x, y, finished, mask)
        fin = finished.expand(k, n) if finished.ndim == 1 else finished
        des = 2.0 * self.design_point(n, mask) - 1.0
        counts = torch.stack([torch.full_like(best_std, min(n, PROGRESS_CAP) / 100.0),
                              fin.sum(1).clamp(max=PROGRESS_CAP).to(best_std) / 100.0], dim=1)
        xb_in = (2.0 * x_best - 1.0) * mask
        q = torch.cat([mask, des * mask, xb_in, counts, best_std.unsqueeze(1)], dim=1)
        if self.fourier:
            tokens = torch.cat([tokens, self.features(tokens[..., :self.max_dim])], dim=2)
            q = torch.cat([q, self.features(des * mask), self.features(xb_in)], dim=1)
        h = torch.cat([self.qry(q).unsqueeze(1), self.tok(tokens)], dim=1)
        for blk in self.blocks:
            h = blk(h)
        z = self.head(self.norm(h[:, 0]))
        md = self.max_dim
        xb = x_best.clamp(1e-4, 1 - 1e-4)
        radius = torch.exp(z[:, md:md + 1].clamp(-6.0, 2.0))
        pull = torch.sigmoid(z[:, md + 1:md + 2])
        return torch.sigmoid(pull * (torch.log(xb) - torch.log1p(-xb)) + radius * des + z[:, :md]) * mask

    def rollout(self, fn: Callable[[Tensor], Tensor], dim: int | Tensor, steps: int, parallel: int = 1,
                n_functions: int | None = None, first: Tensor | None = None) -> Rollout:
        """Run ``steps`` queries on K functions at once, differentiably (``LSTMProposer.rollout``'s
        contract): query t is proposed knowing the results of queries 0..t-P and the pending
        queries t-P+1..t-1; ``first`` (K, d) or (K, F, d) replaces the first F proposals."""
        k, like, mask, first, width = self._rollout_setup(fn, dim, steps, parallel, n_functions, first)
        xs = like.new_zeros(k, 0, self.max_dim)
        ys = like.new_zeros(k, 0)
        for t in range(steps):
            finished = torch.arange(t, device=like.device) <= t - parallel
            if first is not None and t < first.shape[1]:
                x = F.pad(first[:, t].to(like), (0, self.max_dim - first.shape[2])) * mask
            else:
                x = self.propose(xs, ys, finished, mask)
            y = fn(x[:, :width])
            xs = torch.cat([xs, x.unsqueeze(1)], dim=1)
            ys = torch.cat([ys, y.to(like).unsqueeze(1)], dim=1)
        return Rollout(xs[:, :, :width], ys)


class NumpySetProposer:
    """:meth:`SetProposer.propose` for one history in numpy (float32 weights and activations,
    float64 statistics of the results): what
    :class:`~learnt.blackbox.sampler.LearnedSampler` calls per suggestion (no per-op overhead
    of eager torch; the last block computes the query's row only). Checked against the torch
    forward by the test suite."""

    def __init__(self, m: SetProposer) -> None:
        sd = {k: v.detach().cpu().to(torch.float64).numpy() for k, v in m.state_dict().items()}
        self.max_dim, self.heads, self.layers, self.fourier = m.max_dim, m.heads, m.layers, m.fourier
        self.design, self.freqs = sd["design"], sd.get("freqs")
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        self.sd = {k: f32(v.T if v.ndim == 2 else v) for k, v in sd.items()       # weights as (in, out)
                   if k not in ("design", "freqs")}
        for i in range(self.layers):
            p = f"blocks.{i}."
            for name, w, b in zip("qkv", np.split(sd[p + "qkv.weight"], 3), np.split(sd[p + "qkv.bias"], 3)):
                self.sd[p + name + ".weight"], self.sd[p + name + ".bias"] = f32(w.T), f32(b)

    @staticmethod
    def _ln(h, w, b):
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        return (h - mu) / np.sqrt(var + 1e-5) * w + b

    def _block(self, i: int, h: np.ndarray, rows: slice) -> np.ndarray:
        sd, p = self.sd, f"blocks.{i}."
        n, w = h.shape
        hd = w // self.heads
        a = self._ln(h, sd[p + "ln1.weight"], sd[p + "ln1.bias"])
        q = ((a[rows] @ sd[p + "q.weight"] + sd[p + "q.bias"]) * np.float32(1.0 / math.sqrt(hd)))
        # contiguous heads: numpy's batched matmul is slow on strided operands
        q = np.ascontiguousarray(q.reshape(-1, self.heads, hd).transpose(1, 0, 2))
        k = np.ascontiguousarray((a @ sd[p + "k.weight"] + sd[p + "k.bias"]).reshape(n, self.heads, hd).transpose(1, 2, 0))
        v = np.ascontiguousarray((a @ sd[p + "v.weight"] + sd[p + "v.bias"]).reshape(n, self.heads, hd).transpose(1, 0, 2))
        s = q @ k                                   # softmax in place: no temporaries
        s -= s.max(-1, keepdims=True)
        np.exp(s, out=s)
        s *= 1.0 / s.sum(-1, keepdims=True)
        att = s @ v
        att = np.ascontiguousarray(att.transpose(1, 0, 2)).reshape(-1, w)
        out = h[rows] + att @ sd[p + "proj.weight"] + sd[p + "proj.bias"]
        f = self._ln(out, sd[p + "ln2.weight"], sd[p + "ln2.bias"]) @ sd[p + "fc1.weight"] + sd[p + "fc1.bias"]
        g = f * f
        g *= np.float32(0.044715)
        g += 1.0
        g *= f
        g *= np.float32(math.sqrt(2.0 / math.pi))
        np.tanh(g, out=g)
        g += 1.0
        g *= 0.5
        f *= g                                      # tanh-GELU, in place
        return out + f @ sd[p + "fc2.weight"] + sd[p + "fc2.bias"]

    def propose(self, x: np.ndarray, y: np.ndarray, finished: np.ndarray, dim: int) -> np.ndarray:
        """Next query (max_dim,) after ``x`` (N, max_dim) (zero beyond ``dim``), ``y`` (N,), ``finished`` (N,) bool."""
        md, sd = self.max_dim, self.sd
        n = len(y)
        mask = np.zeros(md)
        mask[:dim] = 1.0
        fin = np.asarray(finished, dtype=bool)
        yf = np.where(fin, y, 0.0)
        cnt = int(fin.sum())
        mean = yf.sum() / max(cnt, 1)
        std = max(math.sqrt(float((((yf - mean) ** 2) * fin).sum()) / max(cnt, 1) + 1e-12), 1e-6)
        if cnt >= 2:
            z = np.where(fin, np.clip((yf - mean) / std, -Y_CLIP, Y_CLIP), 0.0)
            yc = yf[fin]
            less = (yc[None, :] < yf[:, None]).sum(1)
            ties = (yc[None, :] == yf[:, None]).sum(1) - 1.0
            rank = np.where(fin, 2.0 * (less + 0.5 * ties) / (cnt - 1.0) - 1.0, 0.0)
        else:
            z = rank = np.zeros(n)
        is_best = np.zeros(n)
        x_best, best_std = np.full(md, 0.5), 0.0
        if cnt:
            b = int(np.argmin(np.where(fin, yf, np.inf)))
            is_best[b], x_best, best_std = 1.0, x[b], z[b]
        tokens = np.concatenate([(2.0 * x - 1.0) * mask, np.broadcast_to(mask, (n, md)), z[:, None], rank[:, None],
                                 fin[:, None].astype(np.float64), is_best[:, None]], axis=1).astype(np.float32)
        des = 2.0 * self.design[n % DESIGN_LEN] - 1.0
        xb_in = (2.0 * x_best - 1.0) * mask
        q = np.concatenate([mask, des * mask, xb_in,
                            [min(n, PROGRESS_CAP) / 100.0, min(cnt, PROGRESS_CAP) / 100.0, best_std]])
        if self.fourier:
            feats = lambda u: np.concatenate([np.sin(u @ self.freqs), np.cos(u @ self.freqs)], axis=-1)  # noqa: E731
            tokens = np.concatenate([tokens, feats(tokens[:, :md].astype(np.float64)).astype(np.float32)], axis=1)
            q = np.concatenate([q, feats(des * mask), feats(xb_in)])
        h = np.concatenate([(q.astype(np.float32) @ sd["qry.weight"] + sd["qry.bias"])[None],
                            tokens @ sd["tok.weight"] + sd["tok.bias"]])
        for i in range(self.layers):
            h = self._block(i, h, slice(0, 1) if i == self.layers - 1 else slice(None))
        zq = (self._ln(h[0], sd["norm.weight"], sd["norm.bias"]) @ sd["head.weight"] + sd["head.bias"]).astype(np.float64)
        xb = np.clip(x_best, 1e-4, 1 - 1e-4)
        radius = math.exp(min(2.0, max(-6.0, zq[md])))
        pull = 1.0 / (1.0 + math.exp(-zq[md + 1]))
        u = 0.5 * (1.0 + np.tanh(0.5 * (pull * (np.log(xb) - np.log1p(-xb)) + radius * des + zq[:md])))
        return u * mask


__all__ = ["SET_KIND", "NumpySetProposer", "SetProposer", "history_features"]
