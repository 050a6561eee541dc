"""Optuna distributions <-> coordinates of the unit cube, the proposer's domain.

- float: linear (or logarithmic with ``log=True``) in ``[low, high]``; with ``step`` the
  decoded value is snapped to the grid ``low + i * step``;
- int (optionally ``log``/``step``): the values are bins of equal width (in log space for
  ``log=True``), a value maps to its bin's centre and a coordinate decodes to its bin;
- categorical with n choices: n bins of width 1/n (an ordinal embedding; the proposer
  learns nothing about the order, it only needs distinct coordinates).

Example:
    >>> from optuna.distributions import IntDistribution
    >>> d = IntDistribution(1, 4)
    >>> [decode(d, encode(d, v)) for v in (1, 2, 3, 4)]
    [1, 2, 3, 4]
"""
from __future__ import annotations

import math

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def _clip(u: float) -> float:
    return min(1.0, max(0.0, float(u)))


def _int_edges(d: IntDistribution) -> tuple[float, float]:
    lo, hi = d.low - 0.5 * d.step, d.high + 0.5 * d.step
    if d.log:
        return math.log(lo), math.log(hi)
    return lo, hi


def encode(dist: BaseDistribution, value) -> float:
    """An external parameter value -> its coordinate in [0, 1]."""
    if isinstance(dist, FloatDistribution):
        if dist.high == dist.low:
            return 0.5
        if dist.log:
            return _clip((math.log(value) - math.log(dist.low)) / (math.log(dist.high) - math.log(dist.low)))
        return _clip((value - dist.low) / (dist.high - dist.low))
    if isinstance(dist, IntDistribution):
        lo, hi = _int_edges(dist)
        v = math.log(value) if dist.log else float(value)
        return _clip((v - lo) / (hi - lo))
    if isinstance(dist, CategoricalDistribution):
        n = len(dist.choices)
        return (dist.to_internal_repr(value) + 0.5) / n
    raise TypeError(f"distribution {dist!r}; expected a Float-, Int- or CategoricalDistribution")


def decode(dist: BaseDistribution, u: float):
    """A coordinate in [0, 1] -> an external parameter value inside ``dist``."""
    u = _clip(u)
    if isinstance(dist, FloatDistribution):
        if dist.log:
            v = math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low)))
        else:
            v = dist.low + u * (dist.high - dist.low)
        if dist.step is not None:
            v = dist.low + round((v - dist.low) / dist.step) * dist.step
        return min(dist.high, max(dist.low, v))
    if isinstance(dist, IntDistribution):
        lo, hi = _int_edges(dist)
        v = lo + u * (hi - lo)
        v = math.exp(v) if dist.log else v
        i = round((v - dist.low) / dist.step)
        return int(min(dist.high, max(dist.low, dist.low + i * dist.step)))
    if isinstance(dist, CategoricalDistribution):
        n = len(dist.choices)
        return dist.to_external_repr(min(n - 1, int(u * n)))
    raise TypeError(f"distribution {dist!r}; expected a Float-, Int- or CategoricalDistribution")
