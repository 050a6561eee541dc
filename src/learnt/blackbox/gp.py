"""Training functions for learned black-box optimizers: samples from a Gaussian-process prior.

Chen et al. (2017), "Learning to learn without gradient descent by gradient descent",
meta-train an LSTM that proposes query points ``x_t`` in ``[0, 1]^d`` by backpropagating
through the whole query sequence, so the training functions must be cheap to evaluate at
arbitrary points and differentiable in ``x``. An exact GP sample cannot be evaluated at
points chosen on the fly without an ever-growing Cholesky factorisation; instead each
function is a random-Fourier-feature (Rahimi & Recht 2007) approximation of a GP sample,

    f(x) = sqrt(2 s^2 / M) * sum_m w_m cos(omega_m . x + b_m),
    w_m ~ N(0, 1),  b_m ~ U(0, 2 pi),  omega_m ~ spectral density of the kernel,

whose covariance over the random (omega, b, w) is exactly the kernel ``k(x, x')`` and whose
distribution tends to the GP's as the number of features ``M`` grows. The spectral
density of the RBF kernel with length scale ``l`` is ``N(0, I / l^2)``; that of Matern-5/2
(nu = 5/2) is a multivariate Student-t with ``2 nu = 5`` degrees of freedom and scale
``1 / l``, drawn as ``N(0, I / l^2) * sqrt(5 / chi2_5)``.

Each function has one (isotropic) length scale and one signal variance, drawn
log-uniformly from the family's ranges. The functions are defined on all of ``R^d``; the
search domain is the unit cube ``[0, 1]^d``.

Example:
    >>> fam = GPFunctionFamily(dim=2, n_functions=4)
    >>> fns = fam.sample(torch.Generator().manual_seed(0))
    >>> fns(torch.rand(4, 10, 2)).shape
    torch.Size([4, 10])
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

log = logging.getLogger(__name__)

KERNELS = ("rbf", "matern52")
_SQRT5 = math.sqrt(5.0)
_CHUNK = 1 << 22  # elements of the (K, T, M) feature tensor evaluated at once in approx_min


def as_query(x: Tensor, n_functions: int, dim: int) -> tuple[Tensor, bool]:
    """Check a batch of queries and view it as (K, T, d).

    Returns the (K, T, d) view and whether the input was (K, d) (so the caller squeezes T).
    Raises ValueError naming the shape when ``x`` is neither (K, d) nor (K, T, d).
    """
    if x.ndim == 2 and tuple(x.shape) == (n_functions, dim):
        return x.unsqueeze(1), True
    if x.ndim == 3 and x.shape[0] == n_functions and x.shape[2] == dim:
        return x, False
    raise ValueError(f"query x has shape {tuple(x.shape)}; expected ({n_functions}, {dim}) or "
                     f"({n_functions}, T, {dim}) for K={n_functions} functions on [0, 1]^{dim}")


def _check_range(name: str, r: tuple[float, float]) -> None:
    if len(r) != 2 or not 0 < r[0] <= r[1] or not math.isfinite(r[1]):
        raise ValueError(f"{name}={r!r}; expected a (low, high) pair with 0 < low <= high < inf")


def log_uniform(low: float, high: float, n: int, g: torch.Generator) -> Tensor:
    """``n`` values with ``log`` uniform on ``[log low, log high]``, float64: (n,)."""
    u = torch.rand(n, generator=g, dtype=torch.float64)
    return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u)


def kernel_matrix(kind: str, x1: Tensor, x2: Tensor, length_scale: Tensor, signal_var: Tensor) -> Tensor:
    """Exact kernel matrices of K isotropic kernels: (K, N, d), (K, P, d) -> (K, N, P).

    ``kind`` is ``"rbf"`` (``s^2 exp(-r^2 / 2 l^2)``) or ``"matern52"``
    (``s^2 (1 + sqrt5 r/l + 5 r^2 / 3 l^2) exp(-sqrt5 r/l)``); ``length_scale`` and
    ``signal_var`` are (K,). Differentiable in both inputs, also at ``r = 0``.

    Example:
        >>> x = torch.zeros(1, 1, 2)
        >>> kernel_matrix("rbf", x, x, torch.ones(1), torch.full((1,), 2.0)).item()
        2.0
    """
    if kind not in KERNELS:
        raise ValueError(f"kernel={kind!r}; expected one of {KERNELS}")
    if x1.ndim != 3 or x2.ndim != 3 or x1.shape[0] != x2.shape[0] or x1.shape[2] != x2.shape[2]:
        raise ValueError(f"kernel inputs have shapes {tuple(x1.shape)} and {tuple(x2.shape)}; "
                         f"expected (K, N, d) and (K, P, d)")
    ls = length_scale.to(x1)[:, None, None]
    s2 = signal_var.to(x1)[:, None, None]
    sq = ((x1.unsqueeze(2) - x2.unsqueeze(1)) ** 2).sum(-1) / ls ** 2  # (K, N, P), (r / l)^2
    if kind == "rbf":
        return s2 * torch.exp(-0.5 * sq)
    # clamp keeps the gradient finite at r = 0 (where the true derivative in r is 0)
    r = torch.sqrt(sq.clamp_min(torch.finfo(sq.dtype).tiny))
    return s2 * (1.0 + _SQRT5 * r + (5.0 / 3.0) * sq) * torch.exp(-_SQRT5 * r)


class GPFunctions:
    """K random-feature GP samples on ``[0, 1]^d``, evaluated in one batched call.

    Shapes: ``omega`` (K, M, d), ``phase`` (K, M), ``weight`` (K, M), ``length_scale`` and
    ``signal_var`` (K,). ``fns(x)`` maps (K, d) -> (K,) and (K, T, d) -> (K, T), function k
    evaluated at ``x[k]``; it is differentiable in ``x``. The stored tensors do not require
    grad: the functions are data, not parameters.
    """

    def __init__(self, omega: Tensor, phase: Tensor, weight: Tensor, length_scale: Tensor,
                 signal_var: Tensor, kernel: str) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r}; expected one of {KERNELS}")
        if omega.ndim != 3:
            raise ValueError(f"omega has shape {tuple(omega.shape)}; expected (K, M, d)")
        k, m, _ = omega.shape
        for name, t, shape in (("phase", phase, (k, m)), ("weight", weight, (k, m)),
                               ("length_scale", length_scale, (k,)), ("signal_var", signal_var, (k,))):
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {shape} to match omega {tuple(omega.shape)}")
        self.omega, self.phase, self.weight = omega, phase, weight
        self.length_scale, self.signal_var, self.kernel_name = length_scale, signal_var, kernel
        self.n_functions, self.n_features, self.dim = k, m, omega.shape[2]
        self.amplitude = torch.sqrt(2.0 * signal_var / m)  # (K,)

    def __repr__(self) -> str:
        return (f"GPFunctions(kernel={self.kernel_name!r}, K={self.n_functions}, d={self.dim}, "
                f"M={self.n_features}, dtype={self.omega.dtype})")

    def __call__(self, x: Tensor) -> Tensor:
        """Function k at ``x[k]``: (K, d) -> (K,) or (K, T, d) -> (K, T)."""
        x3, squeeze = as_query(x, self.n_functions, self.dim)
        omega, phase, weight, amp = (t.to(x3) for t in (self.omega, self.phase, self.weight, self.amplitude))
        feats = torch.cos(torch.matmul(x3, omega.transpose(1, 2)) + phase.unsqueeze(1))  # (K, T, M)
        y = torch.matmul(feats, weight.unsqueeze(-1)).squeeze(-1) * amp.unsqueeze(1)  # (K, T)
        return y.squeeze(1) if squeeze else y

    def kernel(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The exact prior covariance of each function: (K, N, d), (K, P, d) -> (K, N, P).

        Uses the family's kernel with function k's own length scale and signal variance
        (the random features approximate a sample from the GP with this kernel).
        """
        return kernel_matrix(self.kernel_name, x1, x2, self.length_scale, self.signal_var)

    def subset(self, index: Tensor | slice | list[int]) -> GPFunctions:
        """The functions picked by ``index`` (over K) as a new GPFunctions."""
        return GPFunctions(self.omega[index], self.phase[index], self.weight[index],
                           self.length_scale[index], self.signal_var[index], self.kernel_name)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> GPFunctions:
        """A copy with every tensor moved to ``device`` and/or cast to ``dtype``."""
        ts = [t.to(device=device, dtype=dtype) for t in
              (self.omega, self.phase, self.weight, self.length_scale, self.signal_var)]
        return GPFunctions(*ts, self.kernel_name)

    # ------------------------------------------------------------------ minimum
    def _values_in_chunks(self, x: Tensor) -> Tensor:
        """``self(x)`` for a large (K, T, d) without building a huge (K, T, M) tensor."""
        step = max(1, _CHUNK // (self.n_functions * self.n_features))
        return torch.cat([self(x[:, i:i + step]) for i in range(0, x.shape[1], step)], dim=1)

    def approx_min(self, n_samples: int = 4096, *, g: torch.Generator | None = None, n_starts: int = 8,
                   n_steps: int = 50, lr: float = 0.01, return_argmin: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """An estimate (an upper bound) of each function's minimum over ``[0, 1]^d``: (K,).

        Evaluates every function at ``n_samples`` uniform random points of the cube, then
        refines the ``n_starts`` best points of each with ``n_steps`` Adam steps (learning
        rate ``lr``), projecting back onto the cube after each step. The result is the
        lowest value seen anywhere, so it is never above the best random sample. Randomness
        comes from ``g`` (a fixed seed when None, so the estimate is reproducible).

        Returns the (K,) values, detached; with ``return_argmin`` also the points (K, d)
        where they were reached.

        Example:
            >>> fns = GPFunctionFamily(dim=1, n_functions=2).sample(torch.Generator().manual_seed(0))
            >>> fns.approx_min(256).shape
            torch.Size([2])
        """
        if n_samples < 1 or n_starts < 1 or n_steps < 0:
            raise ValueError(f"n_samples={n_samples}, n_starts={n_starts}, n_steps={n_steps}; "
                             f"expected n_samples >= 1, n_starts >= 1, n_steps >= 0")
        g = torch.Generator().manual_seed(0) if g is None else g
        like = self.omega
        k = self.n_functions
        with torch.no_grad():
            pts = torch.rand(k, n_samples, self.dim, generator=g, dtype=torch.float64).to(like)
            vals = self._values_in_chunks(pts)  # (K, n)
            top = vals.topk(min(n_starts, n_samples), dim=1, largest=False).indices  # (K, S)
            starts = torch.gather(pts, 1, top.unsqueeze(-1).expand(-1, -1, self.dim))
            best_val, best_i = vals.min(dim=1)
            best_x = pts[torch.arange(k), best_i]
        x = starts.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        with torch.enable_grad():
            for step in range(n_steps + 1):
                y = self(x)  # (K, S)
                with torch.no_grad():
                    v, i = y.min(dim=1)
                    better = v < best_val
                    best_val = torch.where(better, v, best_val)
                    best_x = torch.where(better.unsqueeze(-1), x[torch.arange(k), i], best_x)
                if step == n_steps:
                    break
                opt.zero_grad()
                y.sum().backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
        log.debug("approx_min: %d samples, %d starts x %d steps for %r", n_samples, n_starts, n_steps, self)
        best_val, best_x = best_val.detach(), best_x.detach()
        return (best_val, best_x) if return_argmin else best_val


@dataclass(frozen=True)
class GPFunctionFamily:
    """Random-feature samples of a GP prior on ``[0, 1]^d``, K at a time.

    Args:
        dim: d, the input dimension (any d >= 1).
        kernel: ``"rbf"`` or ``"matern52"``.
        length_scale_range: (low, high); each function's isotropic length scale is drawn
            log-uniformly from it (low == high fixes it).
        signal_var_range: (low, high); each function's signal variance ``s^2``, drawn
            log-uniformly.
        n_features: M, the number of random Fourier features per function.
        n_functions: K, the default number of functions per ``sample``.
        dtype, device: of the sampled tensors (drawn in float64 on the CPU, then cast and
            moved).

    Example:
        >>> fam = GPFunctionFamily(dim=3, kernel="matern52", n_functions=8)
        >>> fns = fam.sample(torch.Generator().manual_seed(0))
        >>> x = torch.rand(8, 3, requires_grad=True)
        >>> fns(x).sum().backward(); x.grad.shape
        torch.Size([8, 3])
    """

    dim: int = 2
    kernel: str = "rbf"
    length_scale_range: tuple[float, float] = (0.1, 0.5)
    signal_var_range: tuple[float, float] = (1.0, 1.0)
    n_features: int = 512
    n_functions: int = 128
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("dim", "n_features", "n_functions"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name}={v!r}; expected a positive integer")
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel={self.kernel!r}; expected one of {KERNELS}")
        _check_range("length_scale_range", tuple(self.length_scale_range))
        _check_range("signal_var_range", tuple(self.signal_var_range))

    def sample(self, g: torch.Generator, n_functions: int | None = None) -> GPFunctions:
        """Draw K functions (K = ``n_functions`` or the family's) with generator ``g``."""
        k = self.n_functions if n_functions is None else n_functions
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"n_functions={k!r}; expected a positive integer")
        m, d = self.n_features, self.dim
        ls = log_uniform(*self.length_scale_range, k, g)
        s2 = log_uniform(*self.signal_var_range, k, g)
        z = torch.randn(k, m, d, generator=g, dtype=torch.float64)
        if self.kernel == "matern52":
            chi2 = (torch.randn(k, m, 5, generator=g, dtype=torch.float64) ** 2).sum(-1)  # chi^2 with 2 nu = 5 dof
            z = z * torch.sqrt(5.0 / chi2).unsqueeze(-1)
        omega = z / ls[:, None, None]
        phase = 2 * math.pi * torch.rand(k, m, generator=g, dtype=torch.float64)
        weight = torch.randn(k, m, generator=g, dtype=torch.float64)
        return GPFunctions(omega, phase, weight, ls, s2, self.kernel).to(self.device, self.dtype)
