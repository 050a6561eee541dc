"""log_sign preprocessing (Andrychowicz et al. 2016, appendix A)."""
from __future__ import annotations

import math

import pytest
import torch

from learnt.learned import log_sign


def test_big_gradients_give_log_over_p_and_sign():
    g = torch.tensor([100.0, -2.0, 1.0, -0.5], dtype=torch.float64)
    out = log_sign(g, p=10.0)
    assert out.shape == (4, 2)
    expected = torch.tensor([[math.log(100.0) / 10, 1.0], [math.log(2.0) / 10, -1.0],
                             [0.0, 1.0], [math.log(0.5) / 10, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-15, rtol=1e-12)


def test_small_gradients_give_minus_one_and_scaled_value():
    g = torch.tensor([1e-6, -3e-7, 0.0], dtype=torch.float64)
    out = log_sign(g, p=10.0)
    expected = torch.tensor([[-1.0, 1e-6 * math.exp(10)], [-1.0, -3e-7 * math.exp(10)], [-1.0, 0.0]],
                            dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-15, rtol=1e-12)


def test_p_is_configurable_and_moves_the_threshold():
    g = torch.tensor([0.01, -0.5], dtype=torch.float64)  # e^-2 = 0.135: 0.01 is small, 0.5 big
    out = log_sign(g, p=2.0)
    expected = torch.tensor([[-1.0, 0.01 * math.exp(2.0)], [math.log(0.5) / 2.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-15, rtol=1e-12)
    # with p=10 the same 0.01 is a "big" gradient
    assert log_sign(g, p=10.0)[0, 1].item() == 1.0


def test_threshold_is_continuous_in_the_first_feature():
    p = 5.0
    t = math.exp(-p)
    out = log_sign(torch.tensor([t * (1 + 1e-9), t * (1 - 1e-9)], dtype=torch.float64), p)
    torch.testing.assert_close(out[:, 0], torch.tensor([-1.0, -1.0], dtype=torch.float64), atol=1e-8, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_for_zero_and_tiny_values(dtype):
    tiny = torch.finfo(dtype).tiny
    g = torch.tensor([0.0, -0.0, tiny, -tiny, tiny / 8, 1e-30, 1.0], dtype=dtype)
    out = log_sign(g)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


def test_gradient_wrt_input_is_finite_and_correct():
    g = torch.tensor([0.0, 1e-30, -1e-6, 2.0, -3.0], dtype=torch.float64, requires_grad=True)
    out = log_sign(g, p=10.0)
    (grad,) = torch.autograd.grad(out.sum(), g)
    assert torch.isfinite(grad).all()
    # d/dg of (e^p g) for small entries; d/dg of log|g|/p = 1/(p g) for big ones
    e = math.exp(10.0)
    expected = torch.tensor([e, e, e, 1 / (10 * 2.0), 1 / (10 * -3.0)], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("p", [0.0, -1.0])
def test_invalid_p_raises(p):
    with pytest.raises(ValueError, match=repr(p)):
        log_sign(torch.ones(2), p=p)
