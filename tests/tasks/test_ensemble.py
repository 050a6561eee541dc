"""Task transformations and the Wichrowska et al. (2017) training ensemble."""
from __future__ import annotations

import math
import re

import pytest
import torch

from learnt.functional import adam
from learnt.meta.unroll import unroll
from learnt.tasks import Task, TaskFamily
from learnt.tasks.ensemble import ENSEMBLE_FAMILIES, TRANSFORMS, EnsembleFamily, base_tasks, describe, transforms_of
from learnt.tasks.functions import RosenbrockFamily
from learnt.tasks.mlp import ImageTask
from learnt.tasks.random_data import SoftmaxRegressionFamily
from learnt.tasks.random_problems import BowlFamily, RandomQuadraticFamily
from learnt.tasks.transforms import LogObjective, NoisyGradient, RescaledParams, SparseGradient, SumOfProblems

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _quad(k=4, d=200):
    """Dense quadratics: every gradient coordinate is non-zero at a random point."""
    return RandomQuadraticFamily(dims=(d,), n_problems=k, dtype=F64).sample(_gen(0))


def _leaf(params):
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def _grads(task, params, batch):
    params = _leaf(params)
    loss = task.loss(params, batch)
    return loss.detach(), dict(zip(params, torch.autograd.grad(loss.sum(), list(params.values()))))


# ------------------------------------------------------------------ NoisyGradient


def test_noisy_gradient_keeps_loss_values_and_changes_gradients():
    inner = SoftmaxRegressionFamily(dims=(5,), n_problems=3, dtype=F64).sample(_gen(0))
    task = NoisyGradient(inner, scale=0.5)
    assert isinstance(task, Task) and task.n_problems == 3
    params = task.init_params(_gen(1))
    it = task.batches("train", _gen(2))
    batch = next(it)
    inner_batch, seed = batch
    l_noisy, g_noisy = _grads(task, params, batch)
    l_true, g_true = _grads(inner, params, inner_batch)
    assert torch.equal(l_noisy, l_true)
    assert all(not torch.allclose(g_noisy[k], g_true[k]) for k in g_true)
    # same batch (same seed): same noise; next batch: fresh noise
    assert all(torch.equal(g_noisy[k], _grads(task, params, batch)[1][k]) for k in g_true)
    g_next = _grads(task, params, (inner_batch, next(it)[1]))[1]
    assert not torch.equal(g_next["weight"], g_noisy["weight"])
    # without a seed (batch=None) or without autograd it is the inner task
    assert torch.equal(task.loss(params), inner.loss(params))
    with torch.no_grad():
        assert torch.equal(task.loss(_leaf(params), batch), l_true)


@pytest.mark.parametrize("relative", [True, False])
def test_noisy_gradient_noise_scale(relative):
    inner = _quad()
    task = NoisyGradient(inner, scale=0.3, relative=relative)
    params = task.init_params(_gen(1))
    batch = next(task.batches("train", _gen(2)))
    noise = _grads(task, params, batch)[1]["x"] - _grads(inner, params, None)[1]["x"]
    rms = _grads(inner, params, None)[1]["x"].pow(2).mean(1).sqrt() if relative else torch.ones(4, dtype=F64)
    ratio = noise.std(1) / (0.3 * rms)
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio
    assert noise.mean().abs() < 0.2 * 0.3 * rms.mean()


def test_noisy_gradient_works_inside_a_differentiable_unroll():
    task = NoisyGradient(SparseGradient(RosenbrockFamily(n_problems=3).sample(_gen(0)), 0.3), 0.5)
    g = _gen(1)
    params = task.init_params(g)
    lr = torch.tensor(0.01, requires_grad=True)
    rule = adam(0.01)
    res = unroll(task, rule, params, rule.init(params), task.batches("train", g), 5, lr=lr)
    (d_lr,) = torch.autograd.grad(res.losses[1:].mean(), lr)
    assert torch.isfinite(d_lr) and d_lr != 0


# ------------------------------------------------------------------ SparseGradient


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_sparse_gradient_zeros_about_the_fraction_and_keeps_the_rest(fraction):
    inner = _quad()
    task = SparseGradient(inner, fraction)
    params = task.init_params(_gen(1))
    it = task.batches("train", _gen(2))
    batch = next(it)
    l_sparse, g_sparse = _grads(task, params, batch)
    l_true, g_true = _grads(inner, params, None)
    assert torch.equal(l_sparse, l_true)
    zero = g_sparse["x"] == 0
    assert not (g_true["x"] == 0).any()
    assert abs(zero.double().mean().item() - fraction) < 0.04
    torch.testing.assert_close(g_sparse["x"][~zero], g_true["x"][~zero], rtol=0, atol=0)
    mask = task.masks(params, batch[1])["x"]
    assert torch.equal(mask == 0, zero)
    zero_next = _grads(task, params, next(it))[1]["x"] == 0
    assert not torch.equal(zero, zero_next)  # a fresh mask every step


# ------------------------------------------------------------------ RescaledParams


def test_rescaled_params_keep_initial_loss_and_scale_gradients():
    inner = SoftmaxRegressionFamily(dims=(10,), n_problems=3, dtype=F64).sample(_gen(0))
    task = RescaledParams(inner, _gen(5), decades=3.0)
    batch = next(inner.batches("train", _gen(2)))
    p_outer, p_inner = task.init_params(_gen(1)), inner.init_params(_gen(1))
    torch.testing.assert_close(task.loss(p_outer, batch), inner.loss(p_inner, batch), rtol=1e-12, atol=1e-14)
    s = task.scales(p_outer)
    allscales = torch.cat([v.flatten() for v in s.values()]).log10()
    assert allscales.min() >= -1.5 and allscales.max() <= 1.5 and allscales.max() - allscales.min() > 2.5
    assert all(v.shape == p_outer[k].shape for k, v in s.items())
    # chain rule: d/dtheta f(theta * s) = s * f'(theta * s)
    g_outer = _grads(task, p_outer, batch)[1]
    g_inner = _grads(inner, {k: v * s[k] for k, v in p_outer.items()}, batch)[1]
    for k in g_outer:
        torch.testing.assert_close(g_outer[k], s[k] * g_inner[k])
    # deterministic per generator seed; different seeds differ; explicit scales work
    assert torch.equal(RescaledParams(inner, _gen(5), 3.0).scales(p_outer)["weight"], s["weight"])
    assert not torch.equal(RescaledParams(inner, _gen(6), 3.0).scales(p_outer)["weight"], s["weight"])
    fixed = RescaledParams(inner, scales=s)
    assert torch.equal(fixed.loss(p_outer, batch), task.loss(p_outer, batch))
    with pytest.raises(ValueError):
        RescaledParams(inner)


# ------------------------------------------------------------------ LogObjective


def test_log_objective_is_log_of_the_inner_loss():
    inner = RosenbrockFamily(n_problems=5, dtype=F64).sample(_gen(0))
    task = LogObjective(inner, eps=1e-6)
    params = task.init_params(_gen(1))
    torch.testing.assert_close(task.loss(params), torch.log(inner.loss(params) + 1e-6), rtol=0, atol=0)
    assert task.lower_bound == pytest.approx(math.log(1e-6)) and task.min_value == pytest.approx(math.log(1e-6))
    x = inner.minimiser()
    assert torch.isfinite(task.loss({"x": x})).all()
    # a non-zero lower bound is subtracted (LogSumExp's is log(2d))
    from learnt.tasks.random_problems import LogSumExpFamily
    lse = LogSumExpFamily(dims=(3,), n_problems=2, dtype=F64).sample(_gen(0))
    p = lse.init_params(_gen(1))
    torch.testing.assert_close(LogObjective(lse).loss(p), torch.log(lse.loss(p) - math.log(6) + 1e-6))
    with pytest.raises(ValueError, match="lower bound"):
        LogObjective(SumOfProblems([_NoBound(), _NoBound()]))


class _NoBound:
    n_problems = 2

    def init_params(self, g):
        return {"w": torch.zeros(2, 1)}

    def loss(self, params, batch=None):
        return params["w"].sum(-1)

    def batches(self, split="train", g=None):
        while True:
            yield None


# ------------------------------------------------------------------ SumOfProblems


def test_sum_of_problems_is_the_sum_with_prefixed_params():
    a = SoftmaxRegressionFamily(dims=(3,), n_problems=3, dtype=F64).sample(_gen(0))
    b = BowlFamily(n_problems=3, dtype=F64).sample(_gen(1))
    task = SumOfProblems([a, b])
    params = task.init_params(_gen(2))
    assert set(params) == {"p0/weight", "p0/bias", "p1/x"}
    batch = next(task.batches("train", _gen(3)))
    assert isinstance(batch, tuple) and len(batch) == 2 and batch[1] is None
    expected = a.loss({"weight": params["p0/weight"], "bias": params["p0/bias"]}, batch[0]) + b.loss({"x": params["p1/x"]})
    torch.testing.assert_close(task.loss(params, batch), expected, rtol=0, atol=0)
    assert task.lower_bound == 0.0 and task.min_value is None
    assert describe(task) == "sum(softmax_regression[d=3,c=2],bowl[d=2])"
    assert SumOfProblems([b, b]).min_value == 0.0
    with pytest.raises(ValueError, match="same n_problems"):
        SumOfProblems([a, BowlFamily(n_problems=2).sample(_gen(0))])
    with pytest.raises(ValueError, match="two or more"):
        SumOfProblems([a])


def test_wrappers_validate_arguments():
    t = BowlFamily(n_problems=2).sample(_gen(0))
    for bad in (lambda: NoisyGradient(t, -1.0), lambda: SparseGradient(t, 1.0), lambda: SparseGradient(t, -0.1),
                lambda: LogObjective(t, eps=0.0), lambda: RescaledParams(t, _gen(0), decades=-1.0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="seed"):
        NoisyGradient(t).loss(t.init_params(_gen(0)), "not a batch")


# ------------------------------------------------------------------ the ensemble


def test_sampler_covers_every_family_and_transform():
    fam = EnsembleFamily(n_problems=1)
    assert isinstance(fam, TaskFamily)
    seen, tags = set(), set()
    for i in range(250):
        task = fam.sample(_gen(i))
        seen.update(b.name for b in base_tasks(task))
        tags.update(transforms_of(task))
    assert seen == set(ENSEMBLE_FAMILIES)
    assert tags == set(TRANSFORMS)


def test_sampler_is_deterministic_per_seed():
    fam = EnsembleFamily(n_problems=3)
    descs = set()
    for seed in range(10):
        a, b = fam.sample(_gen(seed)), fam.sample(_gen(seed))
        assert describe(a) == describe(b)
        descs.add(describe(a))
        pa, pb = a.init_params(_gen(1)), b.init_params(_gen(1))
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
        ra = unroll(a, adam(0.01), pa, adam(0.01).init(pa), a.batches("train", _gen(2)), 3, differentiable=False)
        rb = unroll(b, adam(0.01), pb, adam(0.01).init(pb), b.batches("train", _gen(2)), 3, differentiable=False)
        assert torch.equal(ra.losses, rb.losses)
    assert len(descs) >= 6


def test_200_sampled_tasks_have_finite_initial_losses_and_gradients():
    fam = EnsembleFamily(n_problems=4)
    for i in range(200):
        g = _gen(1000 + i)
        task = fam.sample(g)
        assert not any(isinstance(b, ImageTask) for b in base_tasks(task))
        params = _leaf(task.init_params(g))
        loss = task.loss(params, next(task.batches("train", g)))
        assert loss.shape == (4,) and torch.isfinite(loss).all(), describe(task)
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        assert all(torch.isfinite(gr).all() for gr in grads), describe(task)


def test_names_weights_and_probabilities_are_respected():
    only = EnsembleFamily(names=("booth", "beale"), weights=(1.0, 0.0), p_sum=0.0, p_log=0.0, p_rescaled=0.0,
                          p_sparse=0.0, p_noisy=0.0, n_problems=2)
    assert {describe(only.sample(_gen(i))) for i in range(20)} == {"booth[d=2]"}
    every = EnsembleFamily(names=("rosenbrock",), p_sum=0.0, p_log=1.0, p_rescaled=0.0, p_sparse=0.0, p_noisy=1.0)
    assert re.fullmatch(r"rosenbrock\[d=\d+\]\+log\+noisy", describe(every.sample(_gen(0))))
    full = EnsembleFamily(names=("bowl",), p_sum=1.0, p_log=1.0, p_rescaled=1.0, p_sparse=1.0, p_noisy=1.0)
    task = full.sample(_gen(0), n_problems=2)
    assert describe(task) == "sum(bowl[d=2],bowl[d=2])+log+rescaled+sparse+noisy" and task.n_problems == 2
    assert transforms_of(task) == ["sum", "log", "rescaled", "sparse", "noisy"]


@pytest.mark.parametrize("kw", [{"names": ()}, {"names": ("digits_mlp",)}, {"weights": (1.0,)},
                                {"p_log": 1.5}, {"sparse_fraction": 1.0}, {"n_problems": 0}, {"log_eps": 0.0}])
def test_bad_ensemble_configs_raise(kw):
    with pytest.raises(ValueError):
        EnsembleFamily(**kw)


def test_adam_unrolls_on_sampled_tasks_stay_finite():
    fam = EnsembleFamily(n_problems=2)
    for i in range(10):
        g = _gen(i)
        task = fam.sample(g)
        params = task.init_params(g)
        res = unroll(task, adam(0.01), params, adam(0.01).init(params), task.batches("train", g), 20,
                     differentiable=False)
        assert torch.isfinite(res.losses).all(), describe(task)
