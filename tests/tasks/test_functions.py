"""Base problems of the Wichrowska et al. (2017) ensemble: classic functions, random
quadratics / LogSumExp, and classifiers on random data."""
from __future__ import annotations

import math

import pytest
import torch

from learnt.functional import adam
from learnt.meta.unroll import unroll
from learnt.tasks import Task, TaskFamily
from learnt.tasks.ensemble import ENSEMBLE_FAMILIES
from learnt.tasks.functions import (
    AckleyTask, BealeTask, BoothTask, BraninFamily, BraninTask, MatyasTask, MichalewiczFamily, MichalewiczTask,
    RosenbrockFamily, RosenbrockTask, StyblinskiTangTask,
)
from learnt.tasks.random_data import SoftmaxRegressionFamily, SoftmaxRegressionTask, TinyMLPFamily, TinyMLPTask
from learnt.tasks.random_problems import BowlFamily, LogSumExpFamily, RandomQuadraticFamily

NAMES = sorted(ENSEMBLE_FAMILIES)
DATA = {"softmax_regression", "tiny_mlp"}
F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _family(name: str, **kw):
    return ENSEMBLE_FAMILIES[name](**{"n_problems": 3, **kw})


def _batch(task, seed: int = 5):
    return next(task.batches("train", _gen(seed)))


def _slice_batch(batch, k: int):
    return None if batch is None else tuple(b[k:k + 1] for b in batch)


# ------------------------------------------------------------------ contract, shapes, independence


@pytest.mark.parametrize("name", NAMES)
def test_contract_shapes_and_finite_gradients(name):
    fam = _family(name)
    assert isinstance(fam, TaskFamily)
    for seed in range(3):
        task = fam.sample(_gen(seed))
        assert isinstance(task, Task) and task.n_problems == 3 and task.name == name
        params = {k: v.requires_grad_(True) for k, v in task.init_params(_gen(seed + 10)).items()}
        assert all(v.shape[0] == 3 and v.dtype == torch.float32 for v in params.values())
        loss = task.loss(params, _batch(task))
        assert loss.shape == (3,) and loss.dtype == torch.float32 and torch.isfinite(loss).all()
        assert loss.min().item() >= task.lower_bound - 1e-4
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        assert all(torch.isfinite(g).all() for g in grads)
        assert task.describe().startswith(name + "[")
    assert fam.sample(_gen(0), n_problems=5).n_problems == 5


@pytest.mark.parametrize("name", NAMES)
def test_problem_k_alone_matches_its_slice(name):
    task = _family(name, n_problems=4, dtype=F64).sample(_gen(1))
    params = task.init_params(_gen(2))
    batch = _batch(task)
    full = task.loss(params, batch)
    for k in range(4):
        alone = task.problem(k).loss({n: v[k:k + 1] for n, v in params.items()}, _slice_batch(batch, k))
        torch.testing.assert_close(alone, full[k:k + 1], rtol=1e-12, atol=1e-12)
    with pytest.raises(IndexError):
        task.problem(4)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_of_problem_k_depends_only_on_problem_k(name):
    task = _family(name, n_problems=3, dtype=F64).sample(_gen(1))
    params = {k: v.requires_grad_(True) for k, v in task.init_params(_gen(2)).items()}
    batch = _batch(task)
    g_sum = torch.autograd.grad(task.loss(params, batch).sum(), list(params.values()))
    g_1 = torch.autograd.grad(task.loss(params, batch)[1], list(params.values()))
    for a, b in zip(g_sum, g_1):
        torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
        assert torch.count_nonzero(b[0]) == 0 and torch.count_nonzero(b[2]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_same_generator_seed_same_task_params_and_batches(name):
    fam = _family(name)
    a, b, c = fam.sample(_gen(7)), fam.sample(_gen(7)), fam.sample(_gen(8))
    pa, pb = a.init_params(_gen(1)), b.init_params(_gen(1))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    la, lb = a.loss(pa, _batch(a)), b.loss(pb, _batch(b))
    assert torch.equal(la, lb)
    pc = c.init_params(_gen(2))
    different = set(pa) != set(pc) or any(pa[k].shape != pc[k].shape or not torch.equal(pa[k], pc[k]) for k in pa)
    assert different


# ------------------------------------------------------------------ known values and minima

FIXED = [AckleyTask, BealeTask, BoothTask, BraninTask, MatyasTask, RosenbrockTask, StyblinskiTangTask]


@pytest.mark.parametrize("cls", FIXED + [MichalewiczTask])
@pytest.mark.parametrize("dim", [2, 5])
def test_known_minimum_at_known_minimiser(cls, dim):
    if cls.fixed_dim == 2 and dim != 2:
        pytest.skip("2-D function")
    task = cls(3, dim, dtype=F64)
    if task.min_value is None:  # Michalewicz for d != 2
        assert task.minimiser() is None and task.lower_bound == -dim
        return
    x = task.minimiser().requires_grad_(True)
    assert x.shape == (3, dim)
    loss = task.loss({"x": x})
    torch.testing.assert_close(loss, torch.full((3,), task.min_value, dtype=F64), rtol=0, atol=1e-5)
    assert task.lower_bound == task.min_value
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert grad.abs().max() < 1e-4  # a stationary point
    # and nothing lower in a small neighbourhood
    near = x.detach() + 1e-3 * torch.randn(200, dim, generator=_gen(0), dtype=F64).view(200, 1, dim)
    assert (task.value(near.reshape(-1, dim)) >= task.min_value - 1e-9).all()


def test_values_by_hand():
    x = {"x": torch.zeros(1, 2, dtype=F64)}
    assert BoothTask(1, dtype=F64).loss(x).item() == 74.0
    assert BealeTask(1, dtype=F64).loss(x).item() == pytest.approx(1.5 ** 2 + 2.25 ** 2 + 2.625 ** 2)
    assert MatyasTask(1, dtype=F64).loss({"x": torch.tensor([[1.0, 2.0]], dtype=F64)}).item() == pytest.approx(
        0.26 * 5 - 0.48 * 2)
    assert RosenbrockTask(1, 4, dtype=F64).loss({"x": torch.zeros(1, 4, dtype=F64)}).item() == 3.0
    assert StyblinskiTangTask(1, 3, dtype=F64).loss({"x": torch.ones(1, 3, dtype=F64)}).item() == pytest.approx(-15.0)
    one = {"x": torch.ones(1, 3, dtype=F64)}
    assert AckleyTask(1, 3, dtype=F64).loss(one).item() == pytest.approx(20 - 20 * math.exp(-0.2), rel=1e-12)
    mich = MichalewiczTask(1, 2, dtype=F64).loss({"x": torch.tensor([[math.pi / 2, math.pi / 2]], dtype=F64)})
    assert mich.item() == pytest.approx(-(2.0 ** -10 + 1.0))  # sin(pi/4)^20 + sin(pi/2)^20
    branin = BraninTask(1, dtype=F64)
    for pt in ([-math.pi, 12.275], [3 * math.pi, 2.475]):
        assert branin.loss({"x": torch.tensor([pt], dtype=F64)}).item() == pytest.approx(branin.min_value, abs=1e-9)


@pytest.mark.parametrize("fam", [BowlFamily(dtype=F64), RandomQuadraticFamily(dtype=F64), LogSumExpFamily(dtype=F64)])
def test_random_problems_minimum_at_minimiser(fam):
    for seed in range(3):
        task = fam.sample(_gen(seed))
        x = task.minimiser().requires_grad_(True)
        loss = task.loss({"x": x})
        torch.testing.assert_close(loss, torch.full((task.n_problems,), task.min_value, dtype=F64), rtol=0, atol=1e-5)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert grad.abs().max() < 1e-6


def test_quadratic_conditioning_and_symmetry():
    task = RandomQuadraticFamily(dims=(6,), n_problems=50, max_cond=1000.0, dtype=F64).sample(_gen(0))
    torch.testing.assert_close(task.A, task.A.transpose(1, 2), rtol=0, atol=0)
    cond = task.condition_number()
    assert (cond >= 1 - 1e-9).all() and (cond <= 1000 * (1 + 1e-6)).all() and cond.max() > 100 and cond.min() < 10
    ev = torch.linalg.eigvalsh(task.A)
    torch.testing.assert_close(ev[:, -1], torch.ones(50, dtype=F64))
    bowl = BowlFamily(n_problems=20, max_cond=50.0, dtype=F64).sample(_gen(0))
    assert bowl.dim == 2 and (bowl.condition_number() <= 50 * (1 + 1e-6)).all()


def test_starting_points_lie_in_the_box():
    x = BraninFamily(n_problems=500).sample(_gen(0)).init_params(_gen(1))["x"]
    assert x[:, 0].min() >= -5 and x[:, 0].max() <= 10 and x[:, 1].min() >= 0 and x[:, 1].max() <= 15
    assert x[:, 1].max() > 14 and x[:, 0].min() < -4
    x = MichalewiczFamily(n_problems=100, dims=(3,), box=((1.0, 2.0),)).sample(_gen(0)).init_params(_gen(1))["x"]
    assert x.shape == (100, 3) and x.min() >= 1 and x.max() <= 2


# ------------------------------------------------------------------ data tasks


def test_data_task_batches_come_from_each_problems_own_data():
    task = SoftmaxRegressionFamily(dims=(3,), n_problems=4, n_data=20, batch_size=7).sample(_gen(0))
    it = task.batches("train", _gen(1))
    for _ in range(3):
        x, y = next(it)
        assert x.shape == (4, 7, 3) and y.shape == (4, 7) and y.dtype == torch.int64
        for k in range(4):
            rows = (x[k].unsqueeze(1) == task.x[k].unsqueeze(0)).all(-1)  # (7, 20)
            assert rows.any(1).all()
            j = rows.float().argmax(1)
            assert torch.equal(task.y[k, j], y[k])
    assert task.loss(task.init_params(_gen(0))).shape == (4,)  # batch=None: the whole data set


def test_teacher_labels_are_learnable_and_random_labels_are_random():
    teacher = TinyMLPFamily(dims=(5,), n_problems=8, n_data=400).sample(_gen(0))
    frac = teacher.y.float().mean(1)
    assert (frac > 0.1).all() and (frac < 0.9).all()
    rnd = TinyMLPFamily(dims=(5,), n_problems=8, n_data=400, labels="random").sample(_gen(0))
    assert abs(rnd.y.float().mean().item() - 0.5) < 0.05
    p = teacher.init_params(_gen(0))
    assert set(p) == {f"fc{i}.{w}" for i in range(len(teacher.hidden) + 1) for w in ("weight", "bias")}


@pytest.mark.parametrize("bad", [
    lambda: RosenbrockTask(2, 1), lambda: BealeTask(2, 3), lambda: RosenbrockFamily(dims=(1, 2)),
    lambda: RosenbrockFamily(dims=()), lambda: BoothTask(0), lambda: BoothTask(1, box=((1.0, 0.0),)),
    lambda: AckleyTask(1, 3, box=((0, 1), (0, 1))), lambda: TinyMLPFamily(activation="gelu"),
    lambda: TinyMLPFamily(labels="noise"), lambda: SoftmaxRegressionFamily(n_classes=1),
    lambda: RandomQuadraticFamily(max_cond=0.5), lambda: LogSumExpFamily(dims=(0,)),
    lambda: SoftmaxRegressionTask(torch.zeros(2, 3, 4), torch.full((2, 3), 2), n_classes=2),
    lambda: TinyMLPTask(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long)),
])
def test_bad_arguments_raise(bad):
    with pytest.raises(ValueError):
        bad()


# ------------------------------------------------------------------ Adam makes progress

# (family overrides, lr). Ackley and Michalewicz are multimodal: from their default boxes Adam
# stalls in local minima, so they are tested from boxes inside the global basin.
ADAM = {
    "ackley": ({"box": ((-0.5, 0.5),)}, 0.03),
    "beale": ({}, 0.1),
    "booth": ({}, 0.3),
    "branin": ({}, 0.3),
    "logsumexp": ({}, 0.1),
    "matyas": ({}, 0.3),
    "michalewicz": ({"box": ((1.0, 2.5),)}, 0.03),
    "rosenbrock": ({}, 0.03),
    "styblinski_tang": ({}, 0.1),
    "bowl": ({}, 0.1),
    "quadratic": ({}, 0.1),
    "softmax_regression": ({}, 0.1),
    "tiny_mlp": ({}, 0.1),
}


@pytest.mark.parametrize("name", NAMES)
def test_adam_reduces_the_loss(name):
    """Mean gap to the lower bound (the minimum where known) halves in 200 Adam steps."""
    assert set(ADAM) == set(NAMES)
    overrides, lr = ADAM[name]
    g = _gen(0)
    task = _family(name, n_problems=16, **overrides).sample(g)
    params = task.init_params(g)
    rule = adam(lr)
    res = unroll(task, rule, params, rule.init(params), task.batches("train", g), 200, differentiable=False)
    if name in DATA:  # compare whole-data-set losses, not noisy minibatch ones
        first, last = task.loss(params).mean(), task.loss(res.params).mean()
    else:
        first, last = res.losses[0].mean(), res.losses[-1].mean()
    lb = task.lower_bound
    assert torch.isfinite(res.losses).all()
    assert last - lb < 0.5 * (first - lb), (name, first.item(), last.item(), lb)
