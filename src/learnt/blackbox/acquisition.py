"""A learned acquisition function: score candidate queries from kernel features of the history.

The LSTM (Chen et al. 2017) and the set proposer must *generate* the next query, and both lose
to model-based search (TPE, GP-EI) once a study has more than a few dozen trials: a network
meta-trained for CPU-hours does not learn, from scratch, the regression that a GP does in
closed form. :class:`AcquisitionProposer` splits the job the way PFNs4BO (Muller et al. 2023)
and NAP (Maraval et al. 2023) do, with the parts that cost nothing to compute computed:

1. **Candidates** (``M`` per suggestion): a randomly shifted scrambled Sobol design of the
   cube, Gaussian steps of several radii around the best few queries, and one-coordinate
   moves from the incumbent (objectives of real search spaces often depend on few
   coordinates). The random numbers come from a generator seeded by the history's length,
   so a suggestion stays a pure function of the history.
2. **Features** of each candidate (``N_FEATURES``, parameter-free, float64 numpy, the same
   code in training and in :class:`~learnt.blackbox.sampler.LearnedSampler`; past 64 results
   the smoothers and GPs read the best 32 and an even spread of 32 others, so a suggestion
   costs the same at any history length): kernel-weighted
   means, spreads, ranks and densities of the finished results at eight bandwidths
   (Nadaraya-Watson smoothers), the density of the pending queries (parallel workers),
   the posterior mean, standard deviation and closed-form expected improvement of GP
   regressions at four fixed length scales and two noise levels (on at most 64 of the results: the best half and
   an even spread of the rest) with each one's evidence (a Bayesian model
   average over length scales is one linear map away), the incumbent's standardised result,
   the candidate's distance to the incumbent and to the nearest query, its distance to
   the cube's faces, the number of results and the dimension.
3. **A learned score**: ``softplus(linear(f) + mlp(f))``, trained by regression to the
   realised improvement ``max(0, y_best - y(c))`` of each candidate on functions drawn
   from a prior, i.e. an amortised estimate of the *expected improvement* under the
   meta-training prior (the minimiser of the squared error is the posterior mean of the
   improvement). The next query is the candidate with the highest score. At
   initialisation the linear part is the model average's closed-form log EI and the MLP's
   output is zero, so the untrained proposer is already a GP-EI search (with length scales
   averaged, not fitted); meta-training only has to improve on it.

Training (:func:`train_acquisition`) runs on the shared :class:`~learnt.meta.trainer.MetaTrainer`
(checkpoints, resume, validation-based selection): each iteration rolls a fixed behaviour
policy (the closed-form EI of the best-evidence length scale, with random candidates mixed
in) out on fresh prior functions to a random number of trials, then takes one gradient step
on the regression of every candidate's improvement at that point. Because the behaviour
policy does not depend on phi, the data of an iteration is a function of the seed and the
iteration alone, so a resumed run is the same run.

Example:
    >>> import torch
    >>> from learnt.blackbox import GPFunctionFamily
    >>> fns = GPFunctionFamily(dim=3, n_functions=4).sample(torch.Generator().manual_seed(0))
    >>> run = AcquisitionProposer().rollout(fns, dim=3, steps=6)
    >>> run.x.shape, run.y.shape
    (torch.Size([4, 6, 3]), torch.Size([4, 6]))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.blackbox.proposer import DESIGN_LEN, Y_CLIP, ProposerBase, Rollout
from learnt.errors import ConfigError, NonFiniteError

ACQ_KIND = "bbo-acq"
NW_SCALES = tuple(float(s) for s in np.geomspace(0.02, 1.0, 8))   # RMS per-coordinate distances
GP_SCALES = (0.05, 0.1, 0.2, 0.4)
GP_NOISES = (1e-4, 1e-2)  # noise variances (results standardised to variance 1): near-exact and noisy
GP_MODELS = tuple((s, v) for v in GP_NOISES for s in GP_SCALES)
GP_MAX = 64              # points the GP regressions see (the best half + an even spread of the rest)
DENSITY_EPS = 1e-2
LOCAL_RADII = (0.2, 0.07, 0.02, 0.005, 0.001)
TOP_K = 4
GP_WARPS = ("standardise", "copula")   # what the GP regressions fit (see _gp_targets)
GP_BLOCK = 4 * len(GP_MODELS) + 1      # per warp: mean, std, log EI, weight of each model, the average's log EI
N_FEATURES = 5 * len(NW_SCALES) + len(GP_WARPS) * GP_BLOCK + 1 + 8
BMA_EI = 5 * len(NW_SCALES) + len(GP_WARPS) * GP_BLOCK   # log of the warps' mean model-average EI


# ---------------------------------------------------------------------------------- features
def _standardise(y: np.ndarray) -> np.ndarray:
    """(K, n) results -> standardised by each run's mean and std (0 with fewer than 2), clipped."""
    n = y.shape[1]
    if n < 2:
        return np.zeros_like(y)
    mean = y.mean(1, keepdims=True)
    std = np.maximum(y.std(1, keepdims=True), 1e-6)
    return np.clip((y - mean) / std, -Y_CLIP, Y_CLIP)


def _sq_dist(a: np.ndarray, b: np.ndarray, mask: np.ndarray, dim: np.ndarray) -> np.ndarray:
    """Mean squared per-coordinate distance over active coordinates: (K, A, D), (K, B, D) -> (K, A, B)."""
    am, bm = a * mask[:, None], b * mask[:, None]
    d2 = (am * am).sum(-1)[:, :, None] + (bm * bm).sum(-1)[:, None, :] - 2.0 * np.einsum("kad,kbd->kab", am, bm)
    return np.maximum(d2, 0.0) / dim[:, None, None]


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr
    return ndtr(z)


def features(xh: np.ndarray, yh: np.ndarray, xp: np.ndarray, cand: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Features (K, M, N_FEATURES) of candidates ``cand`` (K, M, D) after K histories.

    Args:
        xh: finished queries (K, n, D) in [0, 1] (n may be 0); yh: their results (K, n) (minimised).
        xp: pending queries (K, p, D) (p may be 0). cand: candidates (K, M, D). mask: (K, D) 0/1.
    """
    k, m, _ = cand.shape
    n = xh.shape[1]
    dim = np.maximum(mask.sum(1), 1.0)
    ys = _standardise(yh)                                           # (K, n)
    y_best = ys.min(1) if n else np.zeros(k)                        # (K,)
    out = []
    nw = np.array(NW_SCALES)
    if n:
        d2 = _sq_dist(cand, xh, mask, dim)                          # (K, M, n)
        ranks = (np.argsort(np.argsort(yh, 1), 1) / max(n - 1, 1)) if n > 1 else np.zeros_like(yh)
        nearest = np.sqrt(d2.min(2))                                # to any query so far
        if n > GP_MAX:   # the smoothers and the GPs read at most GP_MAX results (cost O(1) in n)
            idx = _gp_subset(ys)
            d2 = np.take_along_axis(d2, idx[:, None, :], 2)
            xh, yh, ys, ranks = (np.take_along_axis(xh, idx[:, :, None], 1), np.take_along_axis(yh, idx, 1),
                                 np.take_along_axis(ys, idx, 1), np.take_along_axis(ranks, idx, 1))
        d2min = d2.min(2)                                           # (K, M)
        inv = 1.0 / (2.0 * nw * nw)                                 # (H,)
        e = np.exp(-(d2 - d2min[:, :, None])[:, None] * inv[None, :, None, None])     # (K, H, M, n)
        vals = np.stack([np.ones_like(ys), ys, ys * ys, ranks], -1)[:, None]         # (K, 1, n, 4)
        sums = (e @ vals).transpose(0, 2, 1, 3)                     # (K, M, H, 4)
        s = sums[..., 0]
        mean, sq, rank = sums[..., 1] / s, sums[..., 2] / s, sums[..., 3] / s
        out += [mean, np.sqrt(np.maximum(sq - mean * mean, 0.0)), rank * 2 - 1,
                np.log(DENSITY_EPS + s * np.exp(-d2min[:, :, None] * inv))]
    else:
        z = np.zeros((k, m, len(nw)))
        out += [z, z, z, np.full((k, m, len(nw)), math.log(DENSITY_EPS))]
        nearest = np.ones((k, m))
    if xp.shape[1]:
        d2p = _sq_dist(cand, xp, mask, dim)
        out.append(np.log(DENSITY_EPS + np.exp(-d2p[..., None] / (2.0 * nw * nw)).sum(2)))
    else:
        out.append(np.full((k, m, len(nw)), math.log(DENSITY_EPS)))
    blocks, ei = _gp_blocks(xh, yh, ys, cand, mask, dim, d2 if n else None, xp)
    out += blocks + [np.log(ei + 1e-9)[..., None] / 5.0]
    if n:
        best = np.take_along_axis(xh, yh.argmin(1)[:, None, None], 1)      # (K, 1, D)
        to_best = np.sqrt(_sq_dist(cand, best, mask, dim)[:, :, 0])
    else:
        to_best = np.sqrt(_sq_dist(cand, np.full((k, 1, cand.shape[2]), 0.5), mask, dim)[:, :, 0])
    edge = np.abs(2.0 * cand - 1.0) * mask[:, None]
    glob = [np.broadcast_to(y_best[:, None], (k, m)) / Y_CLIP,
            np.full((k, m), min(n, 200) / 100.0), np.full((k, m), math.log1p(n) / 5.0),
            np.broadcast_to(dim[:, None], (k, m)) / 10.0, to_best, nearest,
            edge.sum(-1) / dim[:, None], edge.max(-1)]
    out += [g[..., None] for g in glob]
    return np.concatenate(out, -1)


def _gp_features(xh, yw, cand, mask, dim, dcx=None, xp=None):
    """For each target vector ``yw[:, w]`` (K, W, n): GP posterior mean, std and log EI of
    each fixed (length scale, noise) model (K, M, G), the models' evidence as a tempered
    softmax (log evidence / n; broadcast to (K, M, G)) and the log EI of the model average
    under those weights (K, M, 1) (EI is linear in the predictive distribution, so the
    mixture's EI is the weighted sum of the models' EIs). The kernel matrices depend on the
    locations only and are shared by the W targets; ``dcx`` (K, M, n), the squared distances of
    candidates to queries, if the caller has them. Pending queries ``xp`` (K, p, D) enter as
    a kriging believer (Ginsbourger et al. 2010): each model is conditioned on its own
    posterior mean at them, which leaves the means and evidence as they are and shrinks the
    standard deviations (so EI) near queries already running. Returns a list of W such 5-tuples."""
    k, m, _ = cand.shape
    w_n, n = yw.shape[1], xh.shape[1]
    g = len(GP_MODELS)
    if n == 0:
        z = np.zeros((k, m, g))
        std = np.ones((k, m, g))
        log_ei = np.log(_ei(z, std, np.zeros((k, 1, 1))) + 1e-9) / 5.0
        return [(z, std, log_ei, np.full((k, m, g), 1.0 / g), log_ei[..., :1])] * w_n
    if n > GP_MAX:   # the warps are monotone in the results: one subset serves them all
        idx = _gp_subset(yw[:, 0])
        xh, yw = np.take_along_axis(xh, idx[:, :, None], 1), np.take_along_axis(yw, idx[:, None, :], 2)
        n = GP_MAX
    # models are (noise, length scale) pairs in GP_MODELS' order: kernels computed once per scale
    s2 = (2.0 * np.array(GP_SCALES) ** 2)[:, None, None]            # (S, 1, 1)
    noise = np.array(GP_NOISES)[:, None, None, None]                # (V, 1, 1, 1)
    if dcx is None:
        dcx = _sq_dist(cand, xh, mask, dim)                         # (K, M, n)
    kxx = np.exp(-_sq_dist(xh, xh, mask, dim)[:, None] / s2)[:, None]    # (K, 1, S, n, n)
    kcx = np.exp(-dcx[:, None] / s2)[:, None]                       # (K, 1, S, M, n)
    ainv, logdet = _spd_inverse(kxx + noise * np.eye(n))            # (K, V, S, n, n), (K, V, S)
    if xp is not None and xp.shape[1]:    # the locations of the pending queries lower the variance
        xa = np.concatenate([xh, xp[:, -GP_MAX:]], 1)
        dca = np.concatenate([dcx, _sq_dist(cand, xa[:, n:], mask, dim)], 2)
        kca = np.exp(-dca[:, None] / s2)[:, None]
        kaa = np.exp(-_sq_dist(xa, xa, mask, dim)[:, None] / s2)[:, None]
        var = 1.0 - ((kca @ _spd_inverse(kaa + noise * np.eye(xa.shape[1]))[0]) * kca).sum(-1)
    else:
        var = 1.0 - ((kcx @ ainv) * kcx).sum(-1)                    # (K, V, S, M): of f, not of a noisy y
    std = np.sqrt(np.maximum(var, 1e-9)).reshape(k, g, m).transpose(0, 2, 1)    # (K, M, G)
    logdet = logdet.reshape(k, g)
    alpha = ainv @ yw.transpose(0, 2, 1)[:, None, None]             # (K, V, S, n, W)
    means = (kcx @ alpha).reshape(k, g, m, w_n)                     # (K, G, M, W)
    alpha = alpha.reshape(k, g, n, w_n)
    out = []
    for w in range(w_n):
        ys = yw[:, w]
        mean = means[..., w].transpose(0, 2, 1)                     # (K, M, G)
        log_ev = -0.5 * (ys[:, None, :] * alpha[..., w]).sum(-1) - 0.5 * logdet
        # the models' posterior, tempered (log evidence / n): the untempered one puts all its mass
        # on one model and then EI stops exploring (on validation GP functions it was worse in d = 1..9)
        tempered = np.exp((log_ev - log_ev.max(1, keepdims=True)) / n)
        tempered = tempered / tempered.sum(1, keepdims=True)
        ei = _ei(mean, std, ys.min(1)[:, None, None])               # (K, M, G)
        bma = (ei * tempered[:, None, :]).sum(-1, keepdims=True)    # EI under the mixture posterior
        out.append((mean, std, np.log(ei + 1e-9) / 5.0, np.broadcast_to(tempered[:, None, :], (k, m, g)),
                    np.log(bma + 1e-9) / 5.0))
    return out


def _spd_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of a batch (..., n, n) of symmetric positive-definite
    matrices, by one batched Cholesky (half of what ``np.linalg.inv`` and ``slogdet``, by LU,
    cost at n = 64). Falls back to LU if a matrix is not positive definite in floating point."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    chol, info = torch.linalg.cholesky_ex(t)
    if info.numpy().any():
        return np.linalg.inv(a), np.linalg.slogdet(a)[1]
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return torch.cholesky_inverse(chol).numpy(), logdet.numpy()


def _gp_blocks(xh, yh, ys, cand, mask, dim, dcx=None, xp=None):
    """The GP features of every warp (a list of (K, M, .) arrays) and the warps' mean
    model-average EI (K, M): with standardised results the GPs keep the objective's scale
    (right for smooth objectives), with normal scores they cannot be distorted by heavy tails,
    plateaus and failure values (on validation functions of the GP prior the first wins, of
    the search-space prior the second), so the untrained score hedges between them."""
    yw = np.stack([_gp_targets(yh, ys, warp) for warp in GP_WARPS], 1) if yh.shape[1] else \
        np.zeros((len(yh), len(GP_WARPS), 0))
    blocks, eis = [], []
    for parts in _gp_features(xh, yw, cand, mask, dim, dcx, xp):
        blocks += list(parts)
        eis.append(np.exp(5.0 * parts[-1][..., 0]))
    return blocks, np.mean(eis, 0)


def _gp_targets(yh: np.ndarray, ys: np.ndarray, warp: str) -> np.ndarray:
    """What the GP regressions fit: the standardised results, or (``"copula"``) their normal
    scores ``Phi^-1((rank + 0.5) / n)``."""
    n = yh.shape[1]
    if warp == "standardise" or n < 2:
        return ys
    from scipy.special import ndtri
    ranks = np.argsort(np.argsort(yh, 1, kind="stable"), 1)
    return ndtri((ranks + 0.5) / n)


def _gp_subset(ys: np.ndarray) -> np.ndarray:
    """Indices (K, GP_MAX) of the results the GP regressions see: the best half, and the rest
    evenly spread over the others in trial order (so a suggestion costs O(1) in the history's length)."""
    n = ys.shape[1]
    half = GP_MAX // 2
    order = np.argsort(ys, 1, kind="stable")
    best, rest = order[:, :half], np.sort(order[:, half:], 1)
    pick = np.round(np.linspace(0, n - half - 1, GP_MAX - half)).astype(int)
    return np.concatenate([best, rest[:, pick]], 1)


def _ei(mean, std, best):
    z = (best - mean) / std
    return std * (z * _norm_cdf(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


# ---------------------------------------------------------------------------------- candidates
def candidates(xh: np.ndarray, yh: np.ndarray, mask: np.ndarray, design: np.ndarray, rng: np.random.Generator,
               n_global: int = 64, n_local: int = 64) -> np.ndarray:
    """(K, n_global + n_local, D) candidates: a randomly shifted Sobol design, and (with a
    history) Gaussian steps around the best ``TOP_K`` queries and one-coordinate moves from the incumbent."""
    k, n, d = xh.shape
    start = int(rng.integers(DESIGN_LEN))
    idx = (start + np.arange(n_global)) % DESIGN_LEN
    glob = (design[idx][None, :, :d] + rng.random((k, 1, d))) % 1.0
    if n == 0:
        loc = (design[(idx + n_global) % DESIGN_LEN][None, :n_local, :d] + rng.random((k, 1, d))) % 1.0
    else:
        order = np.argsort(yh, 1)[:, :TOP_K]                           # (K, <=TOP_K)
        top = np.take_along_axis(xh, order[:, :, None], 1)
        n_coord = n_local // 4
        n_gauss = n_local - n_coord
        which = rng.integers(top.shape[1], size=(k, n_gauss))
        which[:, : n_gauss // 2] = 0                                   # half around the incumbent
        radii = np.array(LOCAL_RADII)[rng.integers(len(LOCAL_RADII), size=(k, n_gauss))]
        centre = np.take_along_axis(top, which[:, :, None], 1)
        gauss = centre + radii[..., None] * rng.standard_normal((k, n_gauss, d))
        coord = np.repeat(top[:, :1], n_coord, 1)
        dims_active = np.maximum(mask.sum(1).astype(int), 1)
        j = (rng.random((k, n_coord)) * dims_active[:, None]).astype(int)
        val = np.where(rng.random((k, n_coord)) < 0.5, rng.random((k, n_coord)),
                       np.take_along_axis(coord, j[:, :, None], 2)[..., 0]
                       + 0.1 * rng.standard_normal((k, n_coord)))
        np.put_along_axis(coord, j[:, :, None], val[..., None], 2)
        loc = np.concatenate([gauss, coord], 1)
        loc = np.abs(loc) % 2.0
        loc = np.where(loc > 1.0, 2.0 - loc, loc)                      # reflect into the cube
    return np.concatenate([glob, loc], 1) * mask[:, None]


# ---------------------------------------------------------------------------------- the model
class AcquisitionProposer(ProposerBase):
    """Learned expected improvement over candidate queries (see the module docstring).

    Args:
        max_dim: the largest problem dimension served.
        hidden: width of the score MLP (two hidden layers).
        n_global, n_local: candidates per suggestion from the space-filling design and around
            the best queries.
    """

    kind = ACQ_KIND

    def __init__(self, max_dim: int = 10, hidden: int = 128, n_global: int = 64, n_local: int = 64) -> None:
        super().__init__()
        for name, v in (("max_dim", max_dim), ("hidden", hidden), ("n_global", n_global), ("n_local", n_local)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"{name}={v!r}; expected a positive integer")
        self.max_dim, self.hidden = int(max_dim), int(hidden)
        self.n_global, self.n_local = int(n_global), int(n_local)
        self.linear = nn.Linear(N_FEATURES, 1)
        self.mlp = nn.Sequential(nn.Linear(N_FEATURES, self.hidden), nn.SiLU(), nn.Linear(self.hidden, self.hidden),
                                 nn.SiLU(), nn.Linear(self.hidden, 1))
        from torch.quasirandom import SobolEngine
        self.register_buffer("design", SobolEngine(self.max_dim, scramble=True, seed=0).draw(DESIGN_LEN).double())
        with torch.no_grad():   # at initialisation: the model average's closed-form log EI (x5 undoes its scaling)
            self.linear.weight.zero_()
            self.linear.weight[0, BMA_EI] = 5.0
            self.linear.bias.zero_()
            self.mlp[-1].weight.zero_()
            self.mlp[-1].bias.zero_()

    def config(self) -> dict:
        return {"max_dim": self.max_dim, "hidden": self.hidden, "n_global": self.n_global, "n_local": self.n_local}

    def score(self, feats: Tensor) -> Tensor:
        """(..., N_FEATURES) -> (...) the logit of the learned expected improvement."""
        return (self.linear(feats) + self.mlp(feats))[..., 0]

    def predicted_ei(self, feats: Tensor) -> Tensor:
        return F.softplus(self.score(feats))

    # numpy inference: K runs at once, float64
    def _np_params(self):
        cache = getattr(self, "_np_cache", None)
        version = tuple(int(p._version) for p in self.parameters())
        if cache is None or cache[0] != version:
            ws = [p.detach().double().cpu().numpy() for p in self.parameters()]
            self._np_cache = cache = (version, ws)
        return cache[1]

    def np_score(self, feats: np.ndarray) -> np.ndarray:
        lw, lb, w1, b1, w2, b2, w3, b3 = self._np_params()
        h = feats @ w1.T + b1
        h = h / (1.0 + np.exp(-h))
        h = h @ w2.T + b2
        h = h / (1.0 + np.exp(-h))
        return (feats @ lw.T + lb + h @ w3.T + b3)[..., 0]

    def propose_np(self, xh: np.ndarray, yh: np.ndarray, xp: np.ndarray, mask: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """The next queries (K, D) after K histories (arrays as in :func:`features`)."""
        design = self.design.cpu().numpy()
        cand = candidates(xh, yh, mask, design, rng, self.n_global, self.n_local)
        s = self.np_score(features(xh, yh, xp, cand, mask))
        return np.take_along_axis(cand, s.argmax(1)[:, None, None], 1)[:, 0]

    def rollout(self, fn: Callable[[Tensor], Tensor], dim: int | Tensor, steps: int, parallel: int = 1,
                n_functions: int | None = None, first: Tensor | None = None, seed: int = 0) -> Rollout:
        """Run ``steps`` queries on K functions at once (no gradient: the score is trained by
        regression, not through rollouts). Same arguments as :meth:`LSTMProposer.rollout`;
        ``parallel`` > 1 proposes with the last P - 1 queries pending."""
        k, like, mask_t, first, width = self._rollout_setup(fn, dim, steps, parallel, n_functions, first)
        mask = mask_t.detach().double().cpu().numpy()
        md = self.max_dim
        xs = np.zeros((k, steps, md))
        ys = np.zeros((k, steps))
        rng = np.random.default_rng(seed)
        for t in range(steps):
            done = max(0, t - parallel + 1)
            if first is not None and t < first.shape[1]:
                x = np.zeros((k, md))
                x[:, :first.shape[2]] = first[:, t].detach().double().cpu().numpy()
                x = x * mask
            else:
                x = self.propose_np(xs[:, :done], ys[:, :done], xs[:, done:t], mask, rng)
            xs[:, t] = x
            xt = torch.from_numpy(x[:, :width]).to(like.dtype)
            with torch.no_grad():
                ys[:, t] = fn(xt).double().cpu().numpy()
        return Rollout(torch.from_numpy(xs[:, :, :width]).to(like.dtype), torch.from_numpy(ys).to(like.dtype))


# ---------------------------------------------------------------------------------- training
def behaviour_step(xh, yh, mask, design, rng, explore: float, n_global: int, n_local: int) -> np.ndarray:
    """The data-collection policy: the closed-form EI of the model average over length scales
    (the untrained proposer's choice), or (with probability ``explore``) a random candidate."""
    k = xh.shape[0]
    cand = candidates(xh, yh, mask, design, rng, n_global, n_local)
    dim = np.maximum(mask.sum(1), 1.0)
    ei = _gp_blocks(xh, yh, _standardise(yh), cand, mask, dim)[1]
    pick = ei.argmax(1)
    rand = rng.integers(cand.shape[1], size=k)
    pick = np.where(rng.random(k) < explore, rand, pick)
    return np.take_along_axis(cand, pick[:, None, None], 1)[:, 0]


class AcquisitionRegression:
    """Meta-gradient estimator of :class:`~learnt.meta.trainer.MetaTrainer` for the acquisition
    proposer: roll the behaviour policy out to a random length in [0, ``max_history``), then
    regress every candidate's improvement (standardised by the history) on its features, at
    ``points`` points of the rollout (its end and random earlier lengths)."""

    def __init__(self, max_history: int = 100, explore: float = 0.3, points: int = 4) -> None:
        if max_history < 1 or not 0.0 <= explore <= 1.0 or points < 1:
            raise ConfigError(f"max_history={max_history}, explore={explore}, points={points}; "
                              f"expected >= 1, in [0, 1] and >= 1")
        self.max_history, self.explore, self.points = int(max_history), float(explore), int(points)

    @staticmethod
    def examples(rule, xs, ys, mask, design, rng, evaluate):
        """Features (K, M, F) of fresh candidates after histories (xs, ys) and their improvements
        as ``log1p(max(0, y_best - y) / std)`` (K, M): in units of the history's spread, which is
        small once a search concentrates, so a rare large improvement would dominate a squared
        error; the log keeps the order of candidates and tames that tail."""
        k, n, md = xs.shape
        cand = candidates(xs, ys, mask, design, rng, rule.n_global, rule.n_local)
        feats = features(xs, ys, np.zeros((k, 0, md)), cand, mask)
        yc = evaluate(cand)
        if n >= 2:
            std, best = np.maximum(ys.std(1, keepdims=True), 1e-6), ys.min(1, keepdims=True)
        elif n == 1:
            std, best = np.maximum(yc.std(1, keepdims=True), 1e-6), ys[:, :1]
        else:
            std = np.maximum(yc.std(1, keepdims=True), 1e-6)
            best = yc.mean(1, keepdims=True)
        return feats, np.log1p(np.clip((best - yc) / std, 0.0, 3.0 * Y_CLIP))

    def estimate(self, rule: AcquisitionProposer, task, params, state, batches, steps, f0=None):
        seed = int(torch.randint(2 ** 62, ()).item())   # the trainer seeds torch per iteration and shard
        rng = np.random.default_rng(seed)
        k = task.n_functions
        md = rule.max_dim
        mask = (np.arange(md)[None] < task.dims.numpy()[:, None]).astype(np.float64)
        design = rule.design.cpu().numpy()
        # lengths skewed to short histories (where most of a study's decisions are made), up to max_history
        n = int(min(self.max_history - 1, math.floor(rng.random() ** 1.5 * self.max_history)))
        xs, ys = np.zeros((k, n, md)), np.zeros((k, n))

        def evaluate(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return task(torch.from_numpy(x).float()).double().numpy()

        for t in range(n):
            if t == 0:
                x = rng.random((k, md)) * mask
            else:
                x = behaviour_step(xs[:, :t], ys[:, :t], mask, design, rng, self.explore, rule.n_global, rule.n_local)
            xs[:, t] = x
            ys[:, t] = evaluate(x[:, None])[:, 0]
        feats, target = [], []
        for t in sorted({n, *(int(v) for v in rng.integers(0, n + 1, size=self.points - 1))}):
            f, y = self.examples(rule, xs[:, :t], ys[:, :t], mask, design, rng, evaluate)
            feats.append(f)
            target.append(y)
        pred = rule.predicted_ei(torch.from_numpy(np.concatenate(feats)).to(rule.linear.weight.dtype))
        loss = F.mse_loss(pred, torch.from_numpy(np.concatenate(target)).to(pred.dtype))
        if not torch.isfinite(loss):
            raise NonFiniteError(f"acquisition regression loss is {float(loss)}; expected a finite value")
        loss.backward()
        return params, state, float(loss.detach()), torch.zeros(1, 1)


@dataclass(frozen=True)
class AcquisitionTrainConfig:
    """Meta-training of :class:`AcquisitionProposer` (regression on a prior's functions)."""

    iterations: int = 3000
    dims: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9)
    functions_per_dim: int = 4
    prior: str = "gp"                # "gp", "search-space" or "mixed" (alternating iterations)
    max_history: int = 100
    explore: float = 0.3
    meta_lr: float = 1e-3
    clip_norm: float = 1.0
    val_every: int = 250
    checkpoint_every: int = 50
    val_functions_per_dim: int = 8
    val_horizons: tuple[int, ...] = (10, 20, 50, 100)

    def __post_init__(self) -> None:
        if self.prior not in ("gp", "search-space", "mixed"):
            raise ConfigError(f"prior={self.prior!r}; expected 'gp', 'search-space' or 'mixed'")
        if not self.dims or min(self.dims) < 1:
            raise ConfigError(f"dims={self.dims!r}; expected a non-empty tuple of dimensions >= 1")


class _MixedQueryFamily:
    def __init__(self, families) -> None:
        self.families = families

    def sample(self, g: torch.Generator, n_problems: int | None = None):
        i = int(torch.randint(len(self.families), (), generator=g))
        return self.families[i].sample(g)


def train_acquisition(model: AcquisitionProposer, cfg: AcquisitionTrainConfig, *, seed: int = 0,
                      out_dir: str | Path | None = None, progress: bool = True, resume: bool = False):
    """Meta-train ``model``'s score on prior functions (selection on validation functions of the
    GP prior: best value found at ``val_horizons``); returns the trainer's result."""
    from learnt.blackbox.training import (BlackBoxTrainConfig, GPPrior, GPQueryFamily, best_observed_score,
                                          validation_functions)
    from learnt.meta.trainer import MetaTrainConfig, MetaTrainer

    if max(cfg.dims) > model.max_dim:
        raise ConfigError(f"dims={cfg.dims!r} exceed the proposer's max_dim={model.max_dim}")
    gp = GPQueryFamily(cfg.dims, cfg.functions_per_dim, GPPrior())
    ss = GPQueryFamily(cfg.dims, cfg.functions_per_dim, GPPrior(kind="search-space"))
    family = {"gp": gp, "search-space": ss, "mixed": _MixedQueryFamily([gp, ss])}[cfg.prior]
    val_cfg = BlackBoxTrainConfig(dims=cfg.dims, val_functions_per_dim=cfg.val_functions_per_dim)
    val = validation_functions(val_cfg, seed)
    horizons = cfg.val_horizons
    validate = lambda m: best_observed_score(m, val, horizons)  # noqa: E731
    tcfg = MetaTrainConfig(iterations=cfg.iterations, unroll_steps=1, truncation=1, meta_lr=cfg.meta_lr,
                           clip_norm=cfg.clip_norm, val_every=cfg.val_every, checkpoint_every=cfg.checkpoint_every)
    trainer = MetaTrainer(model, family, tcfg, seed=seed, validate=validate, out_dir=out_dir, progress=progress,
                          estimator=AcquisitionRegression(cfg.max_history, cfg.explore), validate_start=True)
    result = trainer.train(resume=resume)
    model.load_state_dict(result.best_state)
    return result


__all__ = ["ACQ_KIND", "AcquisitionProposer", "AcquisitionRegression", "AcquisitionTrainConfig", "N_FEATURES",
           "candidates", "features", "train_acquisition"]
