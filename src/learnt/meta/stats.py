"""Summary statistics used by every results table: mean, 95% CI, paired tests."""
from __future__ import annotations

import math

import numpy as np


def _stats():
    # imported on first use: scipy.stats costs seconds of import time for every process
    # (e.g. each torchrun rank) that only meta-trains
    from scipy import stats
    return stats


def mean_ci95(x) -> tuple[float, float, int]:
    """Mean and half-width of a Student-t 95% interval over the finite entries of ``x``.

    Non-finite entries (diverged runs) count as +inf in the mean, so a method that diverges
    is never reported as good.
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    n = a.size
    if n == 0:
        raise ValueError("mean_ci95 needs at least one value")
    if not np.all(np.isfinite(a)):
        return math.inf, math.inf, n
    if n == 1:
        return float(a[0]), math.nan, 1
    half = _stats().t.ppf(0.975, n - 1) * a.std(ddof=1) / math.sqrt(n)
    return float(a.mean()), float(half), n


def paired_wilcoxon_less(a, b) -> float:
    """One-sided Wilcoxon signed-rank p-value for ``a < b`` on paired samples.

    NaN/inf (diverged runs) count as +inf, the worst possible loss: two diverged runs tie,
    and a pair where only one side diverged gets a difference larger than any finite one
    (so the test stays invariant to rescaling the losses).
    """
    a = finite_or_inf(np.asarray(a, np.float64).ravel())
    b = finite_or_inf(np.asarray(b, np.float64).ravel())
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    ia, ib = np.isinf(a), np.isinf(b)
    with np.errstate(invalid="ignore"):
        diff = np.where(ia | ib, 0.0, a - b)
    big = 2.0 * float(np.max(np.abs(diff), initial=0.0)) + 1.0
    diff = np.where(ia & ~ib, big, diff)
    diff = np.where(ib & ~ia, -big, diff)
    if np.all(diff == 0):
        return 1.0
    return float(_stats().wilcoxon(diff, alternative="less", zero_method="wilcox").pvalue)


def mann_whitney_less(a, b) -> float:
    """One-sided Mann-Whitney U p-value for "``a`` tends to be smaller than ``b``" (unpaired);
    1.0 when both samples are one and the same constant (no evidence either way)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    return float(_stats().mannwhitneyu(a, b, alternative="less").pvalue)


def finite_or_inf(x: np.ndarray) -> np.ndarray:
    """Replace NaN (and -inf) by +inf: a diverged run is the worst run."""
    x = np.asarray(x, np.float64)
    return np.where(np.isnan(x) | np.isinf(x), np.inf, x)
