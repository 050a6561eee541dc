"""learnt.meta.unroll: shapes, equivalence with a manual loop, modes, checks and graphs."""
from __future__ import annotations

import pytest
import torch

from learnt.errors import NonFiniteError
from learnt.functional import adam, sgd
from learnt.learned import L2LOptimizer
from learnt.meta import unroll
from learnt.tasks import QuadraticTask
from tests.conftest import quadratic_task


def _setup(k=3, d=4, dtype=torch.float64):
    task = quadratic_task(k=k, d=d, dtype=dtype)
    params = task.init_params(torch.Generator().manual_seed(1))
    return task, params


def _l2l(seed=0, **kw):
    torch.manual_seed(seed)
    return L2LOptimizer(hidden_size=6, **kw)


@pytest.mark.parametrize("differentiable", [True, False])
@pytest.mark.parametrize("steps", [0, 1, 5])
def test_shapes_and_first_row(steps, differentiable):
    task, params = _setup()
    rule = adam(0.05)
    res = unroll(task, rule, params, rule.init(params), task.batches(), steps, differentiable=differentiable)
    assert res.losses.shape == (steps + 1, 3)
    assert res.params["theta"].shape == params["theta"].shape
    torch.testing.assert_close(res.losses[0], task.loss(params), atol=0, rtol=0)


def test_sgd_non_differentiable_equals_manual_loop():
    task, params = _setup()
    lr, steps = 0.01, 7
    res = unroll(task, sgd(lr), params, sgd(lr).init(params), task.batches(), steps, differentiable=False)
    theta, W, y = params["theta"].clone(), task.W, task.y
    expected = []
    for _ in range(steps):
        r = torch.einsum("kij,kj->ki", W, theta) - y
        expected.append((r * r).sum(-1))
        theta = theta - lr * 2 * torch.einsum("kji,kj->ki", W, r)  # grad = 2 W^T r
    r = torch.einsum("kij,kj->ki", W, theta) - y
    expected.append((r * r).sum(-1))
    torch.testing.assert_close(res.losses, torch.stack(expected), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(res.params["theta"], theta, atol=1e-12, rtol=1e-10)
    assert res.losses[-1].sum() < res.losses[0].sum()  # it actually optimised


@pytest.mark.parametrize("make_rule", [lambda: sgd(0.01), lambda: _l2l()], ids=["sgd", "l2l"])
def test_differentiable_and_detached_modes_agree(make_rule):
    task, params = _setup(dtype=torch.float32)
    rule = make_rule()
    a = unroll(task, rule, params, rule.init(params), task.batches(), 5, differentiable=True)
    b = unroll(task, rule, params, rule.init(params), task.batches(), 5, differentiable=False)
    torch.testing.assert_close(a.losses.detach(), b.losses, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(a.params["theta"].detach(), b.params["theta"], atol=1e-6, rtol=1e-6)


def test_input_params_are_not_mutated():
    task, params = _setup()
    before = params["theta"].clone()
    rule = sgd(0.01)
    unroll(task, rule, params, rule.init(params), task.batches(), 3, differentiable=True)
    unroll(task, rule, params, rule.init(params), task.batches(), 3, differentiable=False)
    assert torch.equal(params["theta"], before)


def test_nan_gradient_raises_naming_parameter():
    task, params = _setup()
    W = task.W.clone()
    W[1, 0, 0] = float("nan")
    bad = QuadraticTask(W, task.y)
    rule = sgd(0.01)
    with pytest.raises(NonFiniteError, match="'theta'"):
        unroll(bad, rule, params, rule.init(params), bad.batches(), 3, check=True)
    # check=False lets it through (NaN shows up in the losses instead)
    res = unroll(bad, rule, params, rule.init(params), bad.batches(), 3, differentiable=False, check=False)
    assert torch.isnan(res.losses[:, 1]).all() and torch.isfinite(res.losses[:, 0]).all()


def test_non_differentiable_mode_keeps_no_graph():
    task, params = _setup(dtype=torch.float32)
    rule = _l2l()
    res = unroll(task, rule, params, rule.init(params), task.batches(), 4, differentiable=False)
    assert res.params["theta"].grad_fn is None and not res.params["theta"].requires_grad
    assert res.losses.grad_fn is None and not res.losses.requires_grad
    for per_param in res.state.values():
        for t in per_param.values():
            assert t.grad_fn is None and not t.requires_grad


def test_differentiable_mode_keeps_graph_to_phi():
    task, params = _setup(dtype=torch.float32)
    rule = _l2l()
    res = unroll(task, rule, params, rule.init(params), task.batches(), 2, differentiable=True)
    assert res.losses.requires_grad and res.params["theta"].grad_fn is not None
    (g,) = torch.autograd.grad(res.losses[1:].sum(), [rule.head.bias])
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_second_order_requires_differentiable():
    task, params = _setup()
    rule = sgd(0.01)
    with pytest.raises(ValueError, match="second_order"):
        unroll(task, rule, params, rule.init(params), task.batches(), 2, differentiable=False, second_order=True)


def test_negative_steps_raise():
    task, params = _setup()
    with pytest.raises(ValueError, match="-1"):
        unroll(task, sgd(0.01), params, {"theta": {}}, task.batches(), -1)


def _meta_grads(second_order: bool):
    task, params = _setup(k=2, d=3, dtype=torch.float64)
    rule = _l2l(seed=3, output_scale=0.3).double()  # float64: the difference is far above rounding
    res = unroll(task, rule, params, rule.init(params), task.batches(), 4, differentiable=True,
                 second_order=second_order)
    grads = torch.autograd.grad(res.losses[1:].mean(-1).sum(), list(rule.parameters()))
    return res.losses.detach(), grads


def test_second_order_meta_gradient_differs_from_first_order():
    losses1, g1 = _meta_grads(False)
    losses2, g2 = _meta_grads(True)
    torch.testing.assert_close(losses1, losses2, atol=1e-12, rtol=1e-12)  # same forward pass
    for a, b in zip(g1, g2):
        assert torch.isfinite(a).all() and torch.isfinite(b).all()
    flat1, flat2 = torch.cat([g.reshape(-1) for g in g1]), torch.cat([g.reshape(-1) for g in g2])
    # Hessian-vector terms change the meta-gradient by ~1e-4 relative here; rounding is ~1e-15
    assert (flat1 - flat2).norm() > 1e-6 * flat1.norm()
