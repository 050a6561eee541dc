"""Global-optimisation benchmarks on the unit cube, and randomly perturbed copies of them.

Chen et al. (2017) test learned black-box optimizers on Branin, Goldstein-Price, Hartmann3
and Hartmann6. Each :class:`Benchmark` here keeps its usual domain and constants (so its
global minimum and minimisers are the published ones) but is exposed on ``[0, 1]^d``: the
point ``u`` of the cube is mapped affinely onto the domain box before evaluation.

:class:`BenchmarkFamily` draws K perturbed copies so that nothing about one fixed function
can be memorised. Copy k, queried at ``x`` in ``[0, 1]^d``, returns ``scale_k * f(u)`` where

1. ``y = x[perm_k]``                      (random permutation of the input dimensions),
2. ``y_i -> 1 - y_i`` where ``flip_k[i]``  (random flips),
3. ``u = reflect(y - shift_k)``            (random translation),

and ``reflect`` folds the real line onto ``[0, 1]`` like a mirror (``-0.1 -> 0.1``,
``1.1 -> 0.9``). Reflection (rather than clamping, available as ``boundary="clamp"``) keeps
each copy continuous without flat regions. Steps 1 and 2 are bijections of the cube. Each
copy picks one of the base function's known minimisers ``u*`` and draws its shift per
coordinate uniformly from ``[-translate, translate]`` intersected with
``[-u*_i, 1 - u*_i]``, so the translated minimiser ``u* + shift`` lies in the cube. Since
every value of a copy is ``scale_k`` times a value of ``f`` on the cube and ``scale_k > 0``,
the copy's global minimum is exactly ``scale_k * f_min``, reached at the transformed
minimiser (``minimiser``, (K, d)).

Example:
    >>> fns = BenchmarkFamily("hartmann6", n_functions=4).sample(torch.Generator().manual_seed(0))
    >>> torch.allclose(fns(fns.minimiser), fns.min_value)
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from learnt.blackbox.gp import as_query, log_uniform

# ------------------------------------------------------------------ the functions on their own domains


def _branin(z: Tensor) -> Tensor:
    u, v = z[..., 0], z[..., 1]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (v - b * u ** 2 + c * u - 6.0) ** 2 + 10.0 * (1 - t) * torch.cos(u) + 10.0


def _goldstein_price(z: Tensor) -> Tensor:
    u, v = z[..., 0], z[..., 1]
    a = 1 + (u + v + 1) ** 2 * (19 - 14 * u + 3 * u ** 2 - 14 * v + 6 * u * v + 3 * v ** 2)
    b = 30 + (2 * u - 3 * v) ** 2 * (18 - 32 * u + 12 * u ** 2 + 48 * v - 36 * u * v + 27 * v ** 2)
    return a * b


_H_ALPHA = torch.tensor([1.0, 1.2, 3.0, 3.2], dtype=torch.float64)
_H3_A = torch.tensor([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]], dtype=torch.float64)
_H3_P = 1e-4 * torch.tensor([[3689.0, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]],
                            dtype=torch.float64)
_H6_A = torch.tensor([[10.0, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                      [3.0, 3.5, 1.7, 10, 17, 8], [17.0, 8, 0.05, 10, 0.1, 14]], dtype=torch.float64)
_H6_P = 1e-4 * torch.tensor([[1312.0, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                             [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]],
                            dtype=torch.float64)


def _hartmann(z: Tensor, a: Tensor, p: Tensor) -> Tensor:
    a, p, alpha = a.to(z), p.to(z), _H_ALPHA.to(z)
    inner = (a * (z.unsqueeze(-2) - p) ** 2).sum(-1)  # (..., 4)
    return -(alpha * torch.exp(-inner)).sum(-1)


def _hartmann3(z: Tensor) -> Tensor:
    return _hartmann(z, _H3_A, _H3_P)


def _hartmann6(z: Tensor) -> Tensor:
    return _hartmann(z, _H6_A, _H6_P)


@dataclass(frozen=True)
class Benchmark:
    """A fixed test function on its box, exposed on the unit cube.

    Args:
        name: registry key.
        bounds: one (low, high) pair per coordinate of the usual domain.
        min_value: the global minimum.
        minimisers: all known global minimisers, in domain coordinates.
        fn: the function on domain coordinates, (..., d) -> (...).

    ``bench(u)`` evaluates at unit-cube points (..., d) -> (...); differentiable.

    Example:
        >>> b = BENCHMARKS["branin"]
        >>> round(b(b.unit_minimisers()[0]).item(), 6)
        0.397887
    """

    name: str
    bounds: tuple[tuple[float, float], ...]
    min_value: float
    minimisers: tuple[tuple[float, ...], ...]
    fn: Callable[[Tensor], Tensor]

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def _low_width(self, like: Tensor) -> tuple[Tensor, Tensor]:
        b = torch.tensor(self.bounds, dtype=torch.float64)
        return b[:, 0].to(like), (b[:, 1] - b[:, 0]).to(like)

    def to_domain(self, u: Tensor) -> Tensor:
        """Unit-cube points (..., d) -> domain points (..., d)."""
        low, width = self._low_width(u)
        return low + width * u

    def from_domain(self, z: Tensor) -> Tensor:
        """Domain points (..., d) -> unit-cube points (..., d)."""
        low, width = self._low_width(z)
        return (z - low) / width

    def unit_minimisers(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The known global minimisers on the unit cube: (n_minimisers, d)."""
        return self.from_domain(torch.tensor(self.minimisers, dtype=torch.float64)).to(dtype)

    def __call__(self, u: Tensor) -> Tensor:
        if u.shape[-1] != self.dim:
            raise ValueError(f"{self.name} takes points of shape (..., {self.dim}); got {tuple(u.shape)}")
        return self.fn(self.to_domain(u))


BENCHMARKS: dict[str, Benchmark] = {
    "branin": Benchmark(
        "branin", ((-5.0, 10.0), (0.0, 15.0)), 5 / (4 * math.pi),
        ((-math.pi, 12.275), (math.pi, 2.275), (3 * math.pi, 2.475)), _branin),
    "goldstein_price": Benchmark("goldstein_price", ((-2.0, 2.0),) * 2, 3.0, ((0.0, -1.0),), _goldstein_price),
    # minimisers and minima refined from the published 6-digit values with BFGS in float64
    "hartmann3": Benchmark(
        "hartmann3", ((0.0, 1.0),) * 3, -3.862779787332655,
        ((0.11458886917481503, 0.5556488865981821, 0.8525469770134643),), _hartmann3),
    "hartmann6": Benchmark(
        "hartmann6", ((0.0, 1.0),) * 6, -3.3223680114155125,
        ((0.20168950923409584, 0.15001068876417922, 0.4768739724329622, 0.275332428312954,
          0.3116516115751367, 0.6573005293804641),), _hartmann6),
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark registered as ``name`` (see ``BENCHMARKS``)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


# ------------------------------------------------------------------ perturbed copies

BOUNDARIES = ("reflect", "clamp")


def reflect_into_cube(y: Tensor) -> Tensor:
    """Fold every coordinate onto [0, 1] like a mirror at 0 and 1 (a triangle wave)."""
    return 1.0 - torch.abs(1.0 - torch.remainder(y, 2.0))


class PerturbedBenchmark:
    """K perturbed copies of one benchmark, evaluated in one batched call.

    Shapes: ``perm`` (K, d) int64 (each row a permutation), ``flip`` (K, d) bool, ``shift``
    (K, d), ``scale`` (K,); ``min_value`` (K,) and ``minimiser`` (K, d) are each copy's
    exact global minimum and a point reaching it. ``fns(x)`` maps (K, d) -> (K,) and
    (K, T, d) -> (K, T) and is differentiable in ``x``. See the module docstring for the
    transformation.
    """

    def __init__(self, base: Benchmark, perm: Tensor, flip: Tensor, shift: Tensor, scale: Tensor,
                 base_minimiser: Tensor, boundary: str = "reflect") -> None:
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary={boundary!r}; expected one of {BOUNDARIES}")
        k, d = scale.shape[0], base.dim
        for name, t in (("perm", perm), ("flip", flip), ("shift", shift), ("base_minimiser", base_minimiser)):
            if tuple(t.shape) != (k, d):
                raise ValueError(f"{name} has shape {tuple(t.shape)}; expected ({k}, {d}) for {base.name}")
        if not torch.equal(perm.sort(dim=1).values, torch.arange(d).expand(k, d)):
            raise ValueError(f"perm rows must be permutations of 0..{d - 1}; got {perm.tolist()}")
        if not bool((scale > 0).all()):
            raise ValueError(f"scale must be positive; got {scale.tolist()}")
        self.base, self.boundary = base, boundary
        self.perm, self.flip, self.shift, self.scale = perm, flip.bool(), shift, scale
        self.n_functions, self.dim = k, d
        self.min_value = scale * base.min_value
        self.minimiser = self.from_base(base_minimiser.to(shift))

    def __repr__(self) -> str:
        return f"PerturbedBenchmark({self.base.name!r}, K={self.n_functions}, boundary={self.boundary!r})"

    def to_base(self, x: Tensor) -> Tensor:
        """Query points (K, T, d) -> the base function's unit-cube points (K, T, d)."""
        idx = self.perm.to(x.device).unsqueeze(1).expand(-1, x.shape[1], -1)
        y = torch.gather(x, 2, idx)  # y[..., j] = x[..., perm[j]]
        y = torch.where(self.flip.to(x.device).unsqueeze(1), 1.0 - y, y)
        y = y - self.shift.to(x).unsqueeze(1)
        return reflect_into_cube(y) if self.boundary == "reflect" else y.clamp(0.0, 1.0)

    def from_base(self, u: Tensor) -> Tensor:
        """Inverse of :meth:`to_base` where no folding/clamping happened: (K, d) or (K, T, d)."""
        u3 = u.unsqueeze(1) if u.ndim == 2 else u
        y = u3 + self.shift.to(u3).unsqueeze(1)
        y = torch.where(self.flip.to(u3.device).unsqueeze(1), 1.0 - y, y)
        inv = torch.argsort(self.perm, dim=1).to(u3.device).unsqueeze(1).expand(-1, u3.shape[1], -1)
        x = torch.gather(y, 2, inv)  # x[..., perm[j]] = y[..., j]
        return x.squeeze(1) if u.ndim == 2 else x

    def __call__(self, x: Tensor) -> Tensor:
        """Copy k at ``x[k]``: (K, d) -> (K,) or (K, T, d) -> (K, T)."""
        x3, squeeze = as_query(x, self.n_functions, self.dim)
        y = self.scale.to(x3).unsqueeze(1) * self.base(self.to_base(x3))
        return y.squeeze(1) if squeeze else y


@dataclass(frozen=True)
class BenchmarkFamily:
    """Random perturbed copies of one benchmark (Chen et al. 2017's evaluation functions).

    Args:
        name: a key of ``BENCHMARKS``: "branin", "goldstein_price", "hartmann3", "hartmann6".
        n_functions: K, the default number of copies per ``sample``.
        translate: maximum shift per coordinate, as a fraction of the cube, in [0, 1).
        scale_range: (low, high); each copy's output scale is drawn log-uniformly from it.
        flip: flip each input dimension (x -> 1 - x) with probability 1/2.
        permute: permute the input dimensions uniformly at random.
        boundary: "reflect" (fold shifted points back into the cube) or "clamp".
        dtype, device: of the sampled tensors.

    Example:
        >>> fam = BenchmarkFamily("branin", n_functions=3, scale_range=(0.5, 2.0))
        >>> fns = fam.sample(torch.Generator().manual_seed(0))
        >>> fns(torch.rand(3, 5, 2)).shape, fns.min_value.shape
        (torch.Size([3, 5]), torch.Size([3]))
    """

    name: str
    n_functions: int = 128
    translate: float = 0.1
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    permute: bool = True
    boundary: str = "reflect"
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        get_benchmark(self.name)
        if isinstance(self.n_functions, bool) or int(self.n_functions) != self.n_functions or self.n_functions < 1:
            raise ValueError(f"n_functions={self.n_functions!r}; expected a positive integer")
        if not 0.0 <= self.translate < 1.0:
            raise ValueError(f"translate={self.translate!r}; expected a fraction of the cube in [0, 1)")
        r = tuple(self.scale_range)
        if len(r) != 2 or not 0 < r[0] <= r[1] or not math.isfinite(r[1]):
            raise ValueError(f"scale_range={r!r}; expected a (low, high) pair with 0 < low <= high < inf")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"boundary={self.boundary!r}; expected one of {BOUNDARIES}")

    @property
    def dim(self) -> int:
        return get_benchmark(self.name).dim

    def sample(self, g: torch.Generator, n_functions: int | None = None) -> PerturbedBenchmark:
        """Draw K perturbed copies (K = ``n_functions`` or the family's) with generator ``g``."""
        k = self.n_functions if n_functions is None else n_functions
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"n_functions={k!r}; expected a positive integer")
        base = get_benchmark(self.name)
        d, f64 = base.dim, torch.float64
        mins = base.unit_minimisers()
        which = torch.randint(len(mins), (k,), generator=g)
        u_star = mins[which]  # (K, d)
        lo = torch.clamp(-u_star, min=-self.translate)
        hi = torch.clamp(1.0 - u_star, max=self.translate)
        shift = lo + (hi - lo) * torch.rand(k, d, generator=g, dtype=f64)
        scale = log_uniform(*self.scale_range, k, g)
        flip = torch.rand(k, d, generator=g) < 0.5 if self.flip else torch.zeros(k, d, dtype=torch.bool)
        perm = (torch.argsort(torch.rand(k, d, generator=g), dim=1) if self.permute
                else torch.arange(d).expand(k, d).clone())
        dev = self.device
        return PerturbedBenchmark(base, perm.to(dev), flip.to(dev), shift.to(dev, self.dtype),
                                  scale.to(dev, self.dtype), u_star.to(dev, self.dtype), self.boundary)
