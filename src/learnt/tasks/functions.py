"""Classic optimization test functions as Tasks: K problems, each from its own random start.

Part of the training ensemble of Wichrowska et al. (2017), "Learned optimizers that scale
and generalize". Every task here has one parameter ``"x"`` of shape (K, d), no data
(``batches`` yields ``None``) and ``loss`` -> (K,). The functions keep their standard
constants (so their minima are known); the randomness is in the starting points, drawn
uniformly from each function's usual search box with the generator passed to
``init_params``. Problems with per-problem random parameters (LogSumExp, bowls,
quadratics) are in :mod:`learnt.tasks.random_problems`, those with random data sets in
:mod:`learnt.tasks.random_data`.

Each task exposes ``min_value`` (the global minimum, or ``None`` where not known in closed
form), ``lower_bound`` (a value the loss never goes below; equal to ``min_value`` where
known), ``minimiser()`` (a global minimiser (K, d) or ``None``), ``problem(k)`` (problem k
alone as a K=1 task) and ``describe()`` (e.g. ``"rosenbrock[d=3]"``).

Example:
    >>> task = RosenbrockFamily(dims=(3,), n_problems=4).sample(torch.Generator().manual_seed(0))
    >>> task.loss(task.init_params(torch.Generator().manual_seed(1))).shape
    torch.Size([4])
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Iterator, Sequence

import torch
from torch import Tensor

from learnt.functional.base import Params
from learnt.tasks.base import no_batches

# 0.5 * (x^4 - 16 x^2 + 5 x) at its minimiser x = -2.9035..., the root of 4x^3 - 32x + 5.
_ST_XMIN = -2.903534027771177
_ST_FMIN = -39.16616570377141


def choose(options: Sequence, g: torch.Generator):
    """One element of ``options`` drawn uniformly with ``g``."""
    if len(options) == 0:
        raise ValueError("choose() got an empty sequence; expected at least one option")
    return options[int(torch.randint(len(options), (1,), generator=g))]


def check_sizes(**sizes: int) -> None:
    """Raise ValueError naming the first size that is not a positive integer."""
    for name, v in sizes.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{name}={v!r}; expected a positive integer")


def check_index(k: int, n_problems: int) -> None:
    """Raise IndexError unless ``0 <= k < n_problems``."""
    if not 0 <= k < n_problems:
        raise IndexError(f"problem {k} out of range for K={n_problems}")


class FunctionTask:
    """K copies of a fixed test function ``f: R^d -> R``, each with its own starting point.

    Subclasses define ``name``, ``default_box`` (the search box: one ``(low, high)`` pair for
    every coordinate, or one pair per coordinate), ``MIN_VALUE``/``ARGMIN`` where known, and
    :meth:`value`.

    Args:
        n_problems: K.
        dim: d (fixed to 2 for the 2-D functions).
        box: override of the box starting points are drawn from uniformly.
    """

    name: ClassVar[str] = "function"
    fixed_dim: ClassVar[int | None] = None
    default_box: ClassVar[tuple] = ((-1.0, 1.0),)
    MIN_VALUE: ClassVar[float | None] = None  # global minimum, None where unknown
    ARGMIN: ClassVar[tuple[float, ...] | None] = None  # a global minimiser (one value for all d, or d values)

    def __init__(self, n_problems: int = 1, dim: int = 2, box: Sequence | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> None:
        check_sizes(n_problems=n_problems, dim=dim)
        if self.fixed_dim is not None and dim != self.fixed_dim:
            raise ValueError(f"{self.name} is {self.fixed_dim}-dimensional; got dim={dim}")
        box = tuple(tuple(b) for b in (box if box is not None else self.default_box))
        if len(box) not in (1, dim) or any(len(b) != 2 or not b[0] <= b[1] for b in box):
            raise ValueError(f"box={box!r}; expected one (low, high) pair with low <= high, or {dim} of them")
        lo_hi = torch.tensor(box, dtype=torch.float64).expand(dim, 2)
        self.n_problems, self.dim, self.box, self.dtype, self.device = n_problems, dim, box, dtype, device
        self.low, self.high = lo_hi[:, 0], lo_hi[:, 1]

    # ------------------------------------------------------------------ Task contract
    def init_params(self, g: torch.Generator) -> Params:
        """Starting points ``{"x": (K, d)}``, uniform in the box."""
        u = torch.rand(self.n_problems, self.dim, generator=g, dtype=torch.float64)
        return {"x": (self.low + (self.high - self.low) * u).to(self.dtype).to(self.device)}

    def loss(self, params: Params, batch=None) -> Tensor:
        """``f(x_k)`` for each problem: (K,)."""
        return self.value(params["x"])

    def batches(self, split: str = "train", g: torch.Generator | None = None) -> Iterator[None]:
        return no_batches()

    # ------------------------------------------------------------------ to override
    def value(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """f at each row of x (K, d): (K,)."""
        raise NotImplementedError

    @property
    def min_value(self) -> float | None:
        """The global minimum of f, or None where not known."""
        return self.MIN_VALUE

    @property
    def lower_bound(self) -> float:
        """A value f never goes below (the minimum where known)."""
        return self.min_value if self.min_value is not None else -math.inf

    # ------------------------------------------------------------------ helpers
    def minimiser(self) -> Tensor | None:
        """A global minimiser for each problem, (K, d), or None where not known."""
        if self.ARGMIN is None:
            return None
        return torch.tensor(self.ARGMIN, dtype=self.dtype, device=self.device).expand(self.n_problems, self.dim).clone()

    def problem(self, k: int) -> "FunctionTask":
        """Problem ``k`` alone, as a task with K=1."""
        check_index(k, self.n_problems)
        return type(self)(1, self.dim, self.box, self.dtype, self.device)

    def describe(self) -> str:
        return f"{self.name}[d={self.dim}]"


class AckleyTask(FunctionTask):
    """Ackley: ``-a exp(-b sqrt(mean x^2)) - exp(mean cos(c x)) + a + e``, a=20, b=0.2, c=2pi.

    Minimum 0 at x = 0 (the square root is smoothed by 1e-20 so gradients stay finite there).
    """

    name, default_box = "ackley", ((-2.0, 2.0),)
    MIN_VALUE, ARGMIN = 0.0, (0.0,)
    a, b, c = 20.0, 0.2, 2 * math.pi

    def value(self, x: Tensor) -> Tensor:
        r = torch.sqrt((x * x).mean(-1) + 1e-20)
        return -self.a * torch.exp(-self.b * r) - torch.exp(torch.cos(self.c * x).mean(-1)) + self.a + math.e


class BealeTask(FunctionTask):
    """Beale (2-D): ``(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``; min 0 at (3, 0.5)."""

    name, fixed_dim, default_box = "beale", 2, ((-4.5, 4.5),)
    MIN_VALUE, ARGMIN = 0.0, (3.0, 0.5)

    def value(self, x: Tensor) -> Tensor:
        u, v = x[:, 0], x[:, 1]
        return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v ** 2) ** 2 + (2.625 - u + u * v ** 3) ** 2


class BoothTask(FunctionTask):
    """Booth (2-D): ``(x + 2y - 7)^2 + (2x + y - 5)^2``; min 0 at (1, 3)."""

    name, fixed_dim, default_box = "booth", 2, ((-10.0, 10.0),)
    MIN_VALUE, ARGMIN = 0.0, (1.0, 3.0)

    def value(self, x: Tensor) -> Tensor:
        u, v = x[:, 0], x[:, 1]
        return (u + 2 * v - 7) ** 2 + (2 * u + v - 5) ** 2


class BraninTask(FunctionTask):
    """Branin (2-D): ``a (y - b x^2 + c x - r)^2 + s (1 - t) cos x + s``, standard constants.

    Minimum ``5 / (4 pi)`` = 0.397887 at (-pi, 12.275), (pi, 2.275) and (3 pi, 2.475).
    """

    name, fixed_dim, default_box = "branin", 2, ((-5.0, 10.0), (0.0, 15.0))
    MIN_VALUE, ARGMIN = 5 / (4 * math.pi), (math.pi, 2.275)
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)

    def value(self, x: Tensor) -> Tensor:
        u, v = x[:, 0], x[:, 1]
        return self.a * (v - self.b * u ** 2 + self.c * u - self.r) ** 2 + self.s * (1 - self.t) * torch.cos(u) + self.s


class MatyasTask(FunctionTask):
    """Matyas (2-D): ``0.26 (x^2 + y^2) - 0.48 x y``; min 0 at the origin."""

    name, fixed_dim, default_box = "matyas", 2, ((-10.0, 10.0),)
    MIN_VALUE, ARGMIN = 0.0, (0.0, 0.0)

    def value(self, x: Tensor) -> Tensor:
        u, v = x[:, 0], x[:, 1]
        return 0.26 * (u * u + v * v) - 0.48 * u * v


class MichalewiczTask(FunctionTask):
    """Michalewicz: ``-sum_i sin(x_i) sin(i x_i^2 / pi)^(2m)``, m=10, on [0, pi]^d.

    Minimum -1.8013034 at (2.2029055, pi/2) for d=2; not known in closed form for other d,
    where ``lower_bound`` is -d.
    """

    name, default_box = "michalewicz", ((0.0, math.pi),)
    m = 10

    def value(self, x: Tensor) -> Tensor:
        i = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
        return -(torch.sin(x) * torch.sin(i * x * x / math.pi) ** (2 * self.m)).sum(-1)

    @property
    def min_value(self) -> float | None:
        return -1.8013034100985528 if self.dim == 2 else None

    @property
    def lower_bound(self) -> float:
        return self.min_value if self.dim == 2 else -float(self.dim)

    def minimiser(self) -> Tensor | None:
        if self.dim != 2:
            return None
        x = torch.tensor([2.2029055201726, math.pi / 2], dtype=self.dtype, device=self.device)
        return x.expand(self.n_problems, 2).clone()


class RosenbrockTask(FunctionTask):
    """Rosenbrock (d-D): ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``; min 0 at (1, ..., 1). Needs d >= 2."""

    name, default_box = "rosenbrock", ((-2.0, 2.0),)
    MIN_VALUE, ARGMIN = 0.0, (1.0,)

    def __init__(self, n_problems: int = 1, dim: int = 2, *args, **kw) -> None:
        if dim < 2:
            raise ValueError(f"rosenbrock needs dim >= 2; got dim={dim}")
        super().__init__(n_problems, dim, *args, **kw)

    def value(self, x: Tensor) -> Tensor:
        a, b = x[:, :-1], x[:, 1:]
        return (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum(-1)


class StyblinskiTangTask(FunctionTask):
    """Styblinski-Tang (d-D): ``0.5 sum_i (x_i^4 - 16 x_i^2 + 5 x_i)``; min -39.16617 d at x_i = -2.903534."""

    name, default_box = "styblinski_tang", ((-5.0, 5.0),)
    ARGMIN = (_ST_XMIN,)

    def value(self, x: Tensor) -> Tensor:
        x2 = x * x
        return 0.5 * (x2 * x2 - 16 * x2 + 5 * x).sum(-1)

    @property
    def min_value(self) -> float:
        return _ST_FMIN * self.dim


# ---------------------------------------------------------------------- families


@dataclass(frozen=True)
class FunctionFamily:
    """Tasks of one test function; the dimension is drawn from ``dims`` for every task.

    Args:
        dims: dimensions to draw d from (uniformly).
        n_problems: default K.
        box: starting-point box overriding the function's own (see :class:`FunctionTask`).

    Example:
        >>> task = AckleyFamily(dims=(2, 5), n_problems=3).sample(torch.Generator().manual_seed(0))
        >>> task.init_params(torch.Generator().manual_seed(1))["x"].shape[0]
        3
    """

    task_class: ClassVar[type] = FunctionTask
    dims: tuple[int, ...] = (2,)
    n_problems: int = 8
    box: tuple | None = None
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.dims or any(int(d) != d or d < 1 for d in self.dims):
            raise ValueError(f"dims={self.dims!r}; expected a non-empty tuple of positive integers")
        fixed = self.task_class.fixed_dim
        if fixed is not None and set(self.dims) != {fixed}:
            raise ValueError(f"{self.task_class.name} is {fixed}-dimensional; got dims={self.dims}")
        check_sizes(n_problems=self.n_problems)

    def sample(self, g: torch.Generator, n_problems: int | None = None) -> FunctionTask:
        k = self.n_problems if n_problems is None else n_problems
        return self.task_class(k, choose(self.dims, g), self.box, self.dtype, self.device)


@dataclass(frozen=True)
class AckleyFamily(FunctionFamily):
    """Ackley tasks, d drawn from ``dims``, starts uniform in [-2, 2]^d (several local basins)."""

    task_class: ClassVar[type] = AckleyTask
    dims: tuple[int, ...] = (2, 5, 10)


@dataclass(frozen=True)
class BealeFamily(FunctionFamily):
    """Beale tasks, starts uniform in [-4.5, 4.5]^2."""

    task_class: ClassVar[type] = BealeTask


@dataclass(frozen=True)
class BoothFamily(FunctionFamily):
    """Booth tasks, starts uniform in [-10, 10]^2."""

    task_class: ClassVar[type] = BoothTask


@dataclass(frozen=True)
class BraninFamily(FunctionFamily):
    """Branin tasks, starts uniform in [-5, 10] x [0, 15]."""

    task_class: ClassVar[type] = BraninTask


@dataclass(frozen=True)
class MatyasFamily(FunctionFamily):
    """Matyas tasks, starts uniform in [-10, 10]^2."""

    task_class: ClassVar[type] = MatyasTask


@dataclass(frozen=True)
class MichalewiczFamily(FunctionFamily):
    """Michalewicz tasks, d drawn from ``dims``, starts uniform in [0, pi]^d."""

    task_class: ClassVar[type] = MichalewiczTask
    dims: tuple[int, ...] = (2, 5, 10)


@dataclass(frozen=True)
class RosenbrockFamily(FunctionFamily):
    """Rosenbrock tasks, d drawn from ``dims`` (>= 2), starts uniform in [-2, 2]^d."""

    task_class: ClassVar[type] = RosenbrockTask
    dims: tuple[int, ...] = (2, 3, 5, 10)

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.dims) < 2:
            raise ValueError(f"rosenbrock needs dims >= 2; got dims={self.dims}")


@dataclass(frozen=True)
class StyblinskiTangFamily(FunctionFamily):
    """Styblinski-Tang tasks, d drawn from ``dims``, starts uniform in [-5, 5]^d."""

    task_class: ClassVar[type] = StyblinskiTangTask
    dims: tuple[int, ...] = (2, 5, 10)
