import math

import pytest
import torch

from learnt.blackbox import GPFunctionFamily, expected_improvement, loss_oi, loss_sum


def _naive_ei(x, y, kernel, noise):
    """Per-step GP posterior by a fresh solve at every t."""
    k, steps, _ = x.shape
    out = torch.zeros(k, steps, dtype=torch.float64)
    for t in range(1, steps):
        kt = kernel(x[:, :t], x[:, :t]) + noise * torch.eye(t, dtype=torch.float64)
        ks = kernel(x[:, :t], x[:, t:t + 1])[..., 0]
        kss = kernel(x[:, t:t + 1], x[:, t:t + 1])[:, 0, 0]
        sol = torch.linalg.solve(kt, torch.stack([y[:, :t], ks], -1))
        mu = (ks * sol[..., 0]).sum(-1)
        s = torch.sqrt(kss - (ks * sol[..., 1]).sum(-1))
        best = y[:, :t].min(1).values
        z = (best - mu) / s
        nd = torch.distributions.Normal(0.0, 1.0)
        out[:, t] = (best - mu) * nd.cdf(z) + s * torch.exp(nd.log_prob(z))
    return out


def test_ei_matches_a_per_step_posterior():
    fns = GPFunctionFamily(dim=2, n_functions=3, n_features=64, dtype=torch.float64).sample(torch.Generator().manual_seed(0))
    x = torch.rand(3, 9, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = fns(x)
    fast = expected_improvement(x, y, fns.kernel, noise=1e-3)
    slow = _naive_ei(x, y, fns.kernel, 1e-3)
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-8)
    assert float(fast[:, 1:].min()) >= 0


def test_ei_is_differentiable_in_queries():
    fns = GPFunctionFamily(dim=2, n_functions=2, n_features=64).sample(torch.Generator().manual_seed(0))
    x = torch.rand(2, 6, 2, requires_grad=True)
    expected_improvement(x, fns(x), fns.kernel).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


def test_oi_telescopes_to_best_value_and_sum_is_mean():
    y = torch.tensor([[3.0, 1.0, 2.0, 0.5], [1.0, 2.0, 3.0, 4.0]])
    assert float(loss_oi(y)) == pytest.approx((0.5 + 1.0) / 8)
    assert float(loss_sum(y)) == pytest.approx(float(y.mean()))
    assert math.isclose(float(loss_oi(y[:1])), float(y[:1].min()) / 4)
