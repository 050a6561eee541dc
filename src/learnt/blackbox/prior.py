"""A prior over objectives that look like real search spaces, for meta-training proposers.

The smooth isotropic GP samples of :mod:`learnt.blackbox.gp` are what Chen et al. (2017)
meta-trained on; hyperparameter objectives are not like them. :class:`SearchSpacePrior`
draws K functions on ``[0, 1]^d`` (the unit-cube coordinates :mod:`learnt.blackbox.space`
gives Optuna's distributions) built in five layers, each drawn per function:

1. **Dimension types**, as :mod:`~learnt.blackbox.space` encodes them: a continuous
   coordinate (``float``, or ``log=True`` floats, which the encoding already makes
   linear), an ordered grid of ``L`` bins (``int`` / stepped floats: the coordinate is
   snapped to its bin's centre, ``L`` in ``levels``), or a ``categorical`` with ``C``
   choices (``C`` bins, each mapped to a random position, so neighbouring bins are
   unrelated). Snapping uses a straight-through gradient, so the functions stay
   differentiable in ``x`` for backpropagation through the query sequence.
2. **Input warping** per continuous dimension, ``u -> u^a`` with ``log a`` uniform
   (Snoek et al. 2014's Beta-CDF warping, simplified): the sensitivity of a
   linearly-coded log-scale parameter.
3. **A GP sample** with an anisotropic (ARD) length scale per dimension and one of the
   kernels RBF, Matérn 1/2, 3/2, 5/2, as random Fourier features (Matérn-nu's spectral
   density is a Student-t with 2 nu degrees of freedom). A fraction of dimensions is
   nearly irrelevant (length scale ``irrelevant_scale`` times longer), as most
   hyperparameters of a real search space are.
4. **Output warps**: ``exp(s g)`` (losses spanning orders of magnitude, a heavy right
   tail), ``sign(g) |g|^p`` (heavy tails on both sides), or none; then a **plateau** (the
   objective saturates at a quantile on the bad side: chance-level accuracy) and a
   **failure region** (a half-space along one dimension, e.g. a learning rate that is too
   high, where every run returns one constant bad value: diverged runs as a worst score).
5. **Noise**: a small high-frequency random-feature component (length scale
   ``noise_length_scale``), so close queries differ as repeated training runs do. It is a
   deterministic function of ``x`` (reproducible, differentiable), not fresh noise per call.

Values are standardised so that the plain GP layer has mean 0 and variance ``signal_var``
per function before the warps. The minimum is estimated numerically
(:meth:`SearchSpaceFunctions.approx_min`, as for the GP samples); ``kernel`` returns the
GP layer's exact ARD covariance (of the unwarped function, on the snapped and warped
inputs), which the EI loss uses as an approximate surrogate.

Example:
    >>> fns = SearchSpacePrior(dim=3, n_functions=4).sample(torch.Generator().manual_seed(0))
    >>> fns(torch.rand(4, 10, 3)).shape
    torch.Size([4, 10])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from learnt.blackbox.gp import GPFunctions, as_query, log_uniform

PRIOR_KERNELS = {"rbf": 0, "matern12": 1, "matern32": 3, "matern52": 5}   # spectral Student-t dof (0: Gaussian)
WARPS = ("identity", "exp", "power")
DIM_TYPES = ("continuous", "grid", "categorical")


def _prob(name: str, p: float) -> None:
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise ValueError(f"{name}={p!r}; expected a probability in [0, 1]")


def _pair(name: str, r, low_ok: float = 0.0, integer: bool = False) -> None:
    if len(r) != 2 or not (low_ok < r[0] <= r[1] < math.inf) or (integer and any(int(v) != v for v in r)):
        kind = "integers" if integer else "numbers"
        raise ValueError(f"{name}={tuple(r)!r}; expected ({kind}) low <= high with low > {low_ok:g}")


def _straight_through(x: Tensor, value: Tensor) -> Tensor:
    """``value`` forward, the gradient of ``x`` backward."""
    return x + (value - x).detach()


@dataclass(frozen=True)
class SearchSpacePrior:
    """K search-space-like functions of dimension ``dim`` per ``sample`` (see the module).

    Args:
        dim: d >= 1.
        kernels: the GP kernels drawn from, uniformly (keys of ``PRIOR_KERNELS``).
        length_scale: per-dimension length scales, log-uniform in this range, times sqrt(d).
        p_irrelevant: probability that a dimension barely matters (its length scale times
            ``irrelevant_scale``).
        p_grid, p_categorical: probabilities of an ordered-grid (int / stepped) and of a
            categorical dimension; ``levels`` and ``choices`` their bin counts (inclusive).
        warp_exponent: the input warp's exponent ``a`` is log-uniform in it, for continuous
            dimensions drawn to be warped with probability ``p_input_warp``.
        p_exp_warp, p_power_warp: probabilities of the output warps (else none).
        p_plateau: probability of a plateau at the ``plateau_quantile`` (of a standard
            normal) on the bad side.
        p_failure: probability of a failure region covering ``failure_fraction`` of one
            dimension's range, at its low or high end, returning ``failure_value`` (in
            units of the function's spread above its typical values).
        noise: relative amplitude range of the high-frequency noise component.
        n_features: random Fourier features of the GP layer.
    """

    dim: int = 2
    n_functions: int = 64
    kernels: tuple[str, ...] = ("rbf", "matern12", "matern32", "matern52")
    length_scale: tuple[float, float] = (0.05, 0.5)
    p_irrelevant: float = 0.2
    irrelevant_scale: float = 30.0
    p_grid: float = 0.15
    levels: tuple[int, int] = (2, 12)
    p_categorical: float = 0.1
    choices: tuple[int, int] = (2, 6)
    p_input_warp: float = 0.3
    warp_exponent: tuple[float, float] = (0.25, 4.0)
    p_exp_warp: float = 0.3
    p_power_warp: float = 0.15
    p_plateau: float = 0.2
    plateau_quantile: tuple[float, float] = (0.0, 1.5)
    p_failure: float = 0.2
    failure_fraction: tuple[float, float] = (0.05, 0.3)
    failure_value: float = 3.0
    noise: tuple[float, float] = (0.01, 0.1)
    noise_length_scale: float = 0.02
    n_features: int = 256
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("dim", "n_functions", "n_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name}={v!r}; expected a positive integer")
        if not self.kernels or set(self.kernels) - set(PRIOR_KERNELS):
            raise ValueError(f"kernels={self.kernels!r}; expected a non-empty subset of {sorted(PRIOR_KERNELS)}")
        for name in ("p_irrelevant", "p_grid", "p_categorical", "p_input_warp", "p_exp_warp", "p_power_warp",
                     "p_plateau", "p_failure"):
            _prob(name, getattr(self, name))
        if self.p_grid + self.p_categorical > 1 or self.p_exp_warp + self.p_power_warp > 1:
            raise ValueError(f"p_grid + p_categorical = {self.p_grid + self.p_categorical:g} and "
                             f"p_exp_warp + p_power_warp = {self.p_exp_warp + self.p_power_warp:g}; expected both <= 1")
        _pair("length_scale", self.length_scale)
        _pair("warp_exponent", self.warp_exponent)
        _pair("failure_fraction", self.failure_fraction)
        _pair("levels", self.levels, 1, integer=True)
        _pair("choices", self.choices, 1, integer=True)
        _pair("noise", self.noise, -1e-300)
        if not (self.plateau_quantile[0] <= self.plateau_quantile[1]) or self.failure_fraction[1] >= 1:
            raise ValueError(f"plateau_quantile={self.plateau_quantile!r}, failure_fraction={self.failure_fraction!r}; "
                             "expected low <= high and failure fractions below 1")
        if not (self.irrelevant_scale >= 1 and self.noise_length_scale > 0 and math.isfinite(self.failure_value)):
            raise ValueError(f"irrelevant_scale={self.irrelevant_scale!r}, noise_length_scale={self.noise_length_scale!r}, "
                             f"failure_value={self.failure_value!r}; expected >= 1, > 0 and finite")

    def sample(self, g: torch.Generator, n_functions: int | None = None) -> "SearchSpaceFunctions":
        """Draw K functions (K = ``n_functions`` or the prior's) with generator ``g``."""
        k = self.n_functions if n_functions is None else n_functions
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"n_functions={k!r}; expected a positive integer")
        d, m, f64 = self.dim, self.n_features, torch.float64
        u = lambda *shape: torch.rand(*shape, generator=g, dtype=f64)  # noqa: E731

        # 1. dimension types and bins
        r = u(k, d)
        kind = torch.where(r < self.p_grid, 1, torch.where(r < self.p_grid + self.p_categorical, 2, 0))
        levels = torch.randint(self.levels[0], self.levels[1] + 1, (k, d), generator=g)
        choices = torch.randint(self.choices[0], self.choices[1] + 1, (k, d), generator=g)
        bins = torch.where(kind == 1, levels, torch.where(kind == 2, choices, torch.zeros_like(levels)))
        max_bins = max(self.levels[1], self.choices[1])
        cat_pos = u(k, d, max_bins)                       # categorical bin -> random coordinate
        # 2. input warps (continuous dimensions only)
        warped = (u(k, d) < self.p_input_warp) & (kind == 0)
        lo, hi = math.log(self.warp_exponent[0]), math.log(self.warp_exponent[1])
        exponent = torch.where(warped, torch.exp(lo + (hi - lo) * u(k, d)), torch.ones(k, d, dtype=f64))
        # 3. the GP layer: ARD length scales, a kernel per function
        ls = log_uniform(*self.length_scale, k * d, g).view(k, d) * math.sqrt(d)
        ls = torch.where(u(k, d) < self.p_irrelevant, ls * self.irrelevant_scale, ls)
        names = list(self.kernels)
        which = torch.randint(len(names), (k,), generator=g)
        dof = torch.tensor([PRIOR_KERNELS[names[int(i)]] for i in which], dtype=f64)
        z = torch.randn(k, m, d, generator=g, dtype=f64)
        chi2 = (torch.randn(k, m, 5, generator=g, dtype=f64) ** 2)
        mask = torch.arange(5, dtype=f64) < dof[:, None, None]                    # (K, 1, 5): first dof normals
        chi = (chi2 * mask).sum(-1)
        t_scale = torch.where(dof[:, None] > 0, torch.sqrt(dof[:, None] / chi.clamp_min(1e-12)), torch.ones_like(chi))
        omega = z * t_scale.unsqueeze(-1) / ls.unsqueeze(1)
        phase = 2 * math.pi * u(k, m)
        weight = torch.randn(k, m, generator=g, dtype=f64)
        # 4. output warps, plateau, failure region
        r = u(k)
        warp = torch.where(r < self.p_exp_warp, 1, torch.where(r < self.p_exp_warp + self.p_power_warp, 2, 0))
        warp_s = 0.5 + 1.5 * u(k)                         # exp(s g), s in [0.5, 2]; |g|^p, p in [1.5, 3]
        warp_p = 1.5 + 1.5 * u(k)
        plateau = torch.where(u(k) < self.p_plateau,
                              self.plateau_quantile[0] + (self.plateau_quantile[1] - self.plateau_quantile[0]) * u(k),
                              torch.full((k,), math.inf, dtype=f64))
        has_fail = u(k) < self.p_failure
        fail_dim = torch.randint(d, (k,), generator=g)
        fail_frac = self.failure_fraction[0] + (self.failure_fraction[1] - self.failure_fraction[0]) * u(k)
        fail_high = u(k) < 0.5                            # the region is at the top (else bottom) of the range
        # 5. noise component
        noise_amp = self.noise[0] + (self.noise[1] - self.noise[0]) * u(k)
        n_omega = torch.randn(k, m, d, generator=g, dtype=f64) / self.noise_length_scale
        n_phase = 2 * math.pi * u(k, m)
        n_weight = torch.randn(k, m, generator=g, dtype=f64)
        parts = dict(kind=kind, bins=bins, cat_pos=cat_pos, exponent=exponent, length_scale=ls, omega=omega,
                     phase=phase, weight=weight, warp=warp, warp_s=warp_s, warp_p=warp_p, plateau=plateau,
                     has_fail=has_fail, fail_dim=fail_dim, fail_frac=fail_frac, fail_high=fail_high,
                     noise_amp=noise_amp, n_omega=n_omega, n_phase=n_phase, n_weight=n_weight)
        kernels = [names[int(i)] for i in which]
        out = SearchSpaceFunctions(parts, kernels, self.failure_value)
        return out.to(self.device, self.dtype)


class SearchSpaceFunctions:
    """K functions drawn by :class:`SearchSpacePrior`; ``fns(x)``: (K, d) -> (K,) or (K, T, d) -> (K, T).

    ``dim_types()`` names each function's dimension types; ``kernel_names`` its GP kernel.
    """

    _FLOAT = ("cat_pos", "exponent", "length_scale", "omega", "phase", "weight", "warp_s", "warp_p", "plateau",
              "fail_frac", "noise_amp", "n_omega", "n_phase", "n_weight")

    def __init__(self, parts: dict[str, Tensor], kernel_names: list[str], failure_value: float) -> None:
        self.parts, self.kernel_names, self.failure_value = parts, list(kernel_names), float(failure_value)
        self.n_functions, self.n_features, self.dim = parts["omega"].shape
        self.omega = parts["omega"]                        # what approx_min takes dtype / device from
        self.amplitude = torch.full((self.n_functions,), math.sqrt(2.0 / self.n_features), dtype=self.omega.dtype,
                                    device=self.omega.device)

    def __repr__(self) -> str:
        return f"SearchSpaceFunctions(K={self.n_functions}, d={self.dim}, M={self.n_features}, dtype={self.omega.dtype})"

    def to(self, device=None, dtype=None) -> "SearchSpaceFunctions":
        parts = {k: (v.to(device=device, dtype=dtype) if k in self._FLOAT else v.to(device=device))
                 for k, v in self.parts.items()}
        return SearchSpaceFunctions(parts, self.kernel_names, self.failure_value)

    def subset(self, index) -> "SearchSpaceFunctions":
        idx = torch.arange(self.n_functions)[index]
        return SearchSpaceFunctions({k: v[idx] for k, v in self.parts.items()},
                                    [self.kernel_names[int(i)] for i in idx], self.failure_value)

    def dim_types(self) -> list[list[str]]:
        return [[DIM_TYPES[int(t)] for t in row] for row in self.parts["kind"]]

    def inputs(self, x: Tensor) -> Tensor:
        """The GP layer's inputs: bins snapped, categories placed, continuous dims warped: (K, T, d)."""
        p = self.parts
        kind, bins = p["kind"].unsqueeze(1), p["bins"].unsqueeze(1).to(x)
        xc = x.clamp(0.0, 1.0)
        b = torch.minimum(torch.floor(xc * bins.clamp_min(1)), (bins - 1).clamp_min(0))       # bin index
        grid = (b + 0.5) / bins.clamp_min(1)
        cat = torch.gather(p["cat_pos"].to(x), 2, b.long().clamp_min(0).transpose(1, 2)).transpose(1, 2)
        warped = xc.clamp_min(1e-12) ** p["exponent"].to(x).unsqueeze(1)
        cont = torch.where(p["exponent"].unsqueeze(1) == 1, x, warped)
        snapped = torch.where(kind == 1, grid, cat)
        return torch.where(kind == 0, cont, _straight_through(x, snapped))

    def _rff(self, x: Tensor, omega: Tensor, phase: Tensor, weight: Tensor) -> Tensor:
        feats = torch.cos(torch.matmul(x, omega.transpose(1, 2)) + phase.unsqueeze(1))
        return torch.matmul(feats, weight.unsqueeze(-1)).squeeze(-1) * math.sqrt(2.0 / omega.shape[1])

    def __call__(self, x: Tensor) -> Tensor:
        x3, squeeze = as_query(x, self.n_functions, self.dim)
        p = {k: (v.to(x3) if k in self._FLOAT else v) for k, v in self.parts.items()}
        gval = self._rff(self.inputs(x3), p["omega"], p["phase"], p["weight"])            # ~ N(0, 1)
        s, pw = p["warp_s"].unsqueeze(1), p["warp_p"].unsqueeze(1)
        warp = p["warp"].unsqueeze(1)
        y = torch.where(warp == 1, torch.exp(s * gval) - torch.exp(0.5 * s * s),           # centred lognormal
                        torch.where(warp == 2, torch.sign(gval) * gval.abs().clamp_min(1e-12) ** pw, gval))
        top = torch.where(warp == 1, torch.exp(s * p["plateau"].unsqueeze(1)) - torch.exp(0.5 * s * s),
                          torch.where(warp == 2, p["plateau"].unsqueeze(1).abs() ** pw * torch.sign(p["plateau"].unsqueeze(1)),
                                      p["plateau"].unsqueeze(1)))
        y = torch.minimum(y, top)                                                          # plateau on the bad side
        y = y + p["noise_amp"].unsqueeze(1) * self._rff(x3, p["n_omega"], p["n_phase"], p["n_weight"])
        # failure region: one constant, above the function's typical values
        coord = torch.gather(x3, 2, p["fail_dim"].view(-1, 1, 1).expand(-1, x3.shape[1], 1)).squeeze(-1)
        frac = p["fail_frac"].unsqueeze(1)
        inside = torch.where(p["fail_high"].unsqueeze(1), coord > 1 - frac, coord < frac) & p["has_fail"].unsqueeze(1)
        bad = torch.where(warp == 1, torch.exp(s * self.failure_value) - torch.exp(0.5 * s * s),
                          torch.full_like(s, self.failure_value) ** torch.where(warp == 2, pw, torch.ones_like(pw)))
        y = torch.where(inside, bad.expand_as(y), y)
        return y.squeeze(1) if squeeze else y

    def kernel(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The GP layer's exact ARD covariance at the snapped / warped inputs: (K, N, P)."""
        i1, i2 = self.inputs(x1), self.inputs(x2)
        ls = self.parts["length_scale"].to(i1).unsqueeze(1)
        sq = (((i1 / ls).unsqueeze(2) - (i2 / ls).unsqueeze(1)) ** 2).sum(-1)
        out = torch.empty_like(sq)
        for k, name in enumerate(self.kernel_names):
            r2 = sq[k]
            if name == "rbf":
                out[k] = torch.exp(-0.5 * r2)
                continue
            r = torch.sqrt(r2.clamp_min(torch.finfo(r2.dtype).tiny))
            if name == "matern12":
                out[k] = torch.exp(-r)
            elif name == "matern32":
                out[k] = (1 + math.sqrt(3) * r) * torch.exp(-math.sqrt(3) * r)
            else:
                out[k] = (1 + math.sqrt(5) * r + 5.0 / 3.0 * r2) * torch.exp(-math.sqrt(5) * r)
        return out

    _values_in_chunks = GPFunctions._values_in_chunks
    approx_min = GPFunctions.approx_min
