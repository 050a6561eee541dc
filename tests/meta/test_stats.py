"""Summary statistics: Student-t CI and the paired one-sided Wilcoxon test."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from learnt.meta.stats import finite_or_inf, mean_ci95, paired_wilcoxon_less


def test_mean_ci95_matches_hand_computation():
    x = [1.0, 2.5, 0.5, 4.0, 3.0]
    n = len(x)
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    m, h, count = mean_ci95(x)
    assert count == 5
    assert m == pytest.approx(2.2, rel=1e-12)
    assert h == pytest.approx(half, rel=1e-12)
    assert h == pytest.approx(2.776445105 * sd / math.sqrt(5), rel=1e-8)  # t_{0.975, 4}


def test_mean_ci95_single_value_and_empty():
    m, h, n = mean_ci95([7.0])
    assert (m, n) == (7.0, 1) and math.isnan(h)
    with pytest.raises(ValueError):
        mean_ci95([])


@pytest.mark.parametrize("bad", [math.inf, math.nan, -math.inf])
def test_non_finite_entries_give_inf_mean(bad):
    m, h, n = mean_ci95(np.array([1.0, bad, 2.0]))
    assert m == math.inf and h == math.inf and n == 3


def test_wilcoxon_small_p_when_a_clearly_less():
    b = np.linspace(1.0, 2.0, 10)
    p = paired_wilcoxon_less(b - 0.5, b)
    assert p == pytest.approx(1 / 2 ** 10, rel=1e-9)  # exact: all 10 differences negative


def test_wilcoxon_large_p_when_a_greater():
    b = np.linspace(1.0, 2.0, 10)
    assert paired_wilcoxon_less(b + 0.5, b) > 0.99
    assert paired_wilcoxon_less(b, b) == 1.0


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")  # inf - inf in src
def test_wilcoxon_nan_is_worst():
    b = np.linspace(1.0, 2.0, 10)
    diverged = np.full(10, np.nan)
    assert paired_wilcoxon_less(diverged, b) > 0.99   # a diverged: not better
    assert paired_wilcoxon_less(b, diverged) < 0.01   # b diverged: a is better
    assert paired_wilcoxon_less(diverged, diverged) == 1.0


def test_wilcoxon_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal shapes"):
        paired_wilcoxon_less([1.0, 2.0], [1.0])


def test_wilcoxon_nan_and_inf_divergences_tie():
    # both methods diverge on the first 5 problems (one as NaN, one as inf); a is better on the rest
    a = np.array([np.nan] * 5 + [1.0] * 5)
    b = np.array([np.inf] * 5 + [2.0] * 5)
    assert paired_wilcoxon_less(a, b) == pytest.approx(1 / 2 ** 5, rel=1e-9)
    assert paired_wilcoxon_less(a, b) == paired_wilcoxon_less(np.where(np.isnan(a), np.inf, a), b)


def test_finite_or_inf_keeps_inf():
    out = finite_or_inf(np.array([np.nan, np.inf, 1.0]))
    assert out[0] == np.inf and out[1] == np.inf and out[2] == 1.0


def test_wilcoxon_with_divergence_is_scale_invariant():
    a = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 1.0, 1.1, 1.2, 1.3, 1.4])  # a worse by 0.3 on the first 5
    b = np.array([0.5, 0.6, 0.7, 0.8, 0.9] + [np.nan] * 5)             # b diverged on the last 5
    assert paired_wilcoxon_less(1000 * a, 1000 * b) == pytest.approx(paired_wilcoxon_less(a, b), rel=1e-12)
