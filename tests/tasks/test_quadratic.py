"""QuadraticTask / QuadraticFamily: f_k(theta) = ||W_k theta_k - y_k||^2."""
from __future__ import annotations

import pytest
import torch

from learnt.tasks import QuadraticFamily, QuadraticTask, Task, TaskFamily


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_loss_shape_and_value_by_hand():
    fam = QuadraticFamily(dim=4, n_problems=3)
    task = fam.sample(_gen(0))
    assert isinstance(task, Task) and isinstance(fam, TaskFamily)
    params = task.init_params(_gen(1))
    assert params["theta"].shape == (3, 4)
    loss = task.loss(params)
    assert loss.shape == (3,)
    k = 1
    W, y, th = task.W[k].double(), task.y[k].double(), params["theta"][k].double()
    by_hand = sum((sum(W[i, j] * th[j] for j in range(4)) - y[i]) ** 2 for i in range(4))
    assert loss[k].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_known_values():
    W = torch.tensor([[[1.0, 2.0], [0.0, 3.0]]], dtype=torch.float64)
    y = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    task = QuadraticTask(W, y)
    loss = task.loss({"theta": torch.tensor([[1.0, 1.0]], dtype=torch.float64)})
    assert loss.tolist() == [(3 - 1) ** 2 + (3 + 1) ** 2]
    torch.testing.assert_close(task.optimum(), torch.zeros(1, dtype=torch.float64), atol=1e-20, rtol=0)


def test_gradient_of_problem_k_depends_only_on_problem_k():
    task = QuadraticFamily(dim=3, n_problems=4).sample(_gen(0))
    theta = task.init_params(_gen(1))["theta"].double().requires_grad_(True)
    task.W, task.y = task.W.double(), task.y.double()
    jac = torch.autograd.functional.jacobian(
        lambda t: torch.autograd.grad(task.loss({"theta": t}).sum(), t, create_graph=True)[0], theta)
    # jac[k, :, j, :] = d grad_k / d theta_j: zero unless j == k
    for k in range(4):
        for j in range(4):
            block = jac[k, :, j, :]
            if j == k:
                torch.testing.assert_close(block, 2 * task.W[k].T @ task.W[k], atol=1e-12, rtol=1e-10)
            else:
                assert torch.count_nonzero(block) == 0, (k, j)
    # the summed loss's gradient equals each problem's own gradient
    g_sum = torch.autograd.grad(task.loss({"theta": theta}).sum(), theta)[0]
    for k in range(4):
        g_k = torch.autograd.grad(task.loss({"theta": theta})[k], theta)[0]
        torch.testing.assert_close(g_sum[k], g_k[k], atol=0, rtol=0)


def test_same_generator_seed_gives_identical_families():
    fam = QuadraticFamily(dim=5, n_problems=2)
    a, b, c = fam.sample(_gen(7)), fam.sample(_gen(7)), fam.sample(_gen(8))
    assert torch.equal(a.W, b.W) and torch.equal(a.y, b.y)
    assert not torch.equal(a.W, c.W)
    assert torch.equal(a.init_params(_gen(1))["theta"], b.init_params(_gen(1))["theta"])


def test_n_problems_override():
    task = QuadraticFamily(dim=2, n_problems=5).sample(_gen(0), n_problems=3)
    assert task.W.shape == (3, 2, 2) and task.n_problems == 3


def test_uniform_distribution():
    fam = QuadraticFamily(dim=6, n_problems=50, distribution="uniform")
    task = fam.sample(_gen(0))
    for t in (task.W, task.y):
        assert t.min() >= 0 and t.max() < 1
        assert abs(t.mean().item() - 0.5) < 0.05
    gauss = QuadraticFamily(dim=6, n_problems=50).sample(_gen(0))
    assert gauss.W.min() < 0 and abs(gauss.W.std().item() - 1.0) < 0.05


def test_init_std_scales_initial_params():
    fam = QuadraticFamily(dim=10, n_problems=50, init_std=0.5)
    theta = fam.sample(_gen(0)).init_params(_gen(1))["theta"]
    assert abs(theta.std().item() - 0.5) < 0.05


@pytest.mark.parametrize("kwargs, text", [
    ({"dim": 0}, "dim=0"), ({"n_problems": 0}, "n_problems=0"), ({"distribution": "cauchy"}, "cauchy"),
])
def test_invalid_family_args(kwargs, text):
    with pytest.raises(ValueError, match=text):
        QuadraticFamily(**kwargs)


@pytest.mark.parametrize("W_shape, y_shape", [((2, 3, 3), (2, 4)), ((2, 3, 4), (2, 3)), ((3, 3), (3,)),
                                              ((2, 3, 3), (3, 3))])
def test_invalid_task_shapes(W_shape, y_shape):
    with pytest.raises(ValueError, match="expected W of shape"):
        QuadraticTask(torch.zeros(W_shape), torch.zeros(y_shape))
