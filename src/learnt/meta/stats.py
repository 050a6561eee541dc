"""Summary statistics used by every results table: mean, 95% CI, paired tests."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


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
    half = stats.t.ppf(0.975, n - 1) * a.std(ddof=1) / math.sqrt(n)
    return float(a.mean()), float(half), n


def paired_wilcoxon_less(a, b) -> float:
    """One-sided Wilcoxon signed-rank p-value for ``a < b`` on paired samples.

    NaN/inf (diverged runs) are mapped to +inf, i.e. the worst possible loss.
    """
    a = np.nan_to_num(np.asarray(a, np.float64).ravel(), nan=np.inf)
    b = np.nan_to_num(np.asarray(b, np.float64).ravel(), nan=np.inf)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    diff = np.where(np.isinf(a) & np.isinf(b), 0.0, a - b)
    diff = np.where(np.isposinf(a) & ~np.isinf(b), 1.0, diff)
    diff = np.where(np.isposinf(b) & ~np.isinf(a), -1.0, diff)
    if np.all(diff == 0):
        return 1.0
    return float(stats.wilcoxon(diff, alternative="less", zero_method="wilcox").pvalue)


def finite_or_inf(x: np.ndarray) -> np.ndarray:
    """Replace NaN by +inf (a diverged run is the worst run)."""
    return np.nan_to_num(np.asarray(x, np.float64), nan=np.inf)
