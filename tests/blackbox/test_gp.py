"""GP-prior training functions: covariance = kernel, shapes, gradients, determinism, minima."""
from __future__ import annotations

import math

import pytest
import torch

from learnt.blackbox import KERNELS, GPFunctionFamily, GPFunctions, kernel_matrix
from learnt.seeding import make_generator

F64 = torch.float64


def _fam(**kw) -> GPFunctionFamily:
    base = dict(dim=2, n_functions=5, n_features=64, dtype=F64)
    return GPFunctionFamily(**{**base, **kw})


def _reference_kernel(kind: str, r: float, ls: float, s2: float) -> float:
    """The textbook formulas, written out independently of the library."""
    if kind == "rbf":
        return s2 * math.exp(-r * r / (2 * ls * ls))
    a = math.sqrt(5) * r / ls
    return s2 * (1 + a + a * a / 3) * math.exp(-a)


# ------------------------------------------------------------------ covariance


@pytest.mark.parametrize("kind", KERNELS)
def test_empirical_covariance_over_functions_matches_the_kernel(kind):
    """Over many functions with fixed l and s^2: Var f(x) = s^2, and at several distances r
    Cov[f(x), f(x')] = k(r) (checked through the variogram E[(f(x) - f(x'))^2] = 2 (s^2 - k(r)),
    whose Monte-Carlo error is small at short range), within 5 standard errors. The same
    check rejects the other kernel and the neighbouring Matern-7/2."""
    ls, s2, n = 0.3, 2.0, 40_000
    fam = _fam(kernel=kind, length_scale_range=(ls, ls), signal_var_range=(s2, s2), n_features=8)
    fns = fam.sample(make_generator(0, "test", 0), n_functions=n)
    x0 = torch.tensor([0.2, 0.3], dtype=F64)
    dists = [0.0, 0.05, 0.15, 0.3, 0.5]
    direction = torch.tensor([0.6, 0.8], dtype=F64)
    pts = torch.stack([x0 + r * direction for r in dists])  # (5, 2)
    y = fns(pts.expand(n, -1, -1))  # (n, 5)
    assert y.shape == (n, 5)

    def se_mean(v):
        return v.mean().item(), v.std().item() / math.sqrt(n)

    var, se = se_mean(y[:, 0] ** 2)  # zero prior mean, so E[f^2] is the variance
    assert abs(var - s2) < 5 * se
    mean, se = se_mean(y[:, 0])
    assert abs(mean) < 5 * se

    def matern72(r):
        a = math.sqrt(7) * r / ls
        return s2 * (1 + a + 2 * a * a / 5 + a ** 3 / 15) * math.exp(-a)

    others = [lambda r: _reference_kernel("matern52" if kind == "rbf" else "rbf", r, ls, s2), matern72]
    rejected = [0, 0]
    for j, r in enumerate(dists[1:], start=1):
        vario, se = se_mean((y[:, 0] - y[:, j]) ** 2)
        want = 2 * (s2 - _reference_kernel(kind, r, ls, s2))
        assert abs(vario - want) < 5 * se, (kind, r, vario, want, se)
        for i, other in enumerate(others):
            rejected[i] += abs(vario - 2 * (s2 - other(r))) > 5 * se
    assert rejected[0] >= 2 and (kind == "rbf" or rejected[1] >= 1)  # the check has power


def test_features_scale_with_length_scale_and_signal_variance():
    """Var f(x) = s^2 for every function whatever M, and features shrink with l."""
    fam = _fam(length_scale_range=(0.05, 2.0), signal_var_range=(0.1, 10.0), n_features=16)
    fns = fam.sample(make_generator(0, "train", 1))
    sq = (fns.amplitude ** 2 * fns.n_features / 2)
    torch.testing.assert_close(sq, fns.signal_var)
    # the RBF spectral density is N(0, I / l^2): E|omega|^2 = d / l^2
    fns = _fam(length_scale_range=(0.2, 0.2), n_features=20_000, n_functions=2).sample(make_generator(0, "train", 2))
    mean_sq = (fns.omega ** 2).sum(-1).mean().item()
    assert abs(mean_sq - 2 / 0.2 ** 2) < 0.05 * 2 / 0.2 ** 2


def test_hyperparameters_are_log_uniform_in_their_ranges():
    fam = _fam(length_scale_range=(0.01, 1.0), signal_var_range=(0.5, 8.0), n_features=1)
    fns = fam.sample(make_generator(0, "train", 0), n_functions=4000)
    for t, (lo, hi) in ((fns.length_scale, (0.01, 1.0)), (fns.signal_var, (0.5, 8.0))):
        assert t.min() >= lo and t.max() <= hi
        u = (t.log() - math.log(lo)) / (math.log(hi) - math.log(lo))  # ~ U(0, 1) if log-uniform
        assert abs(u.mean().item() - 0.5) < 0.02 and abs(u.var().item() - 1 / 12) < 0.01
        assert ((u > 0.25) & (u < 0.5)).float().mean().item() == pytest.approx(0.25, abs=0.03)


# ------------------------------------------------------------------ kernel


@pytest.mark.parametrize("kind", KERNELS)
def test_kernel_matches_the_formula_per_function(kind):
    fns = _fam(kernel=kind, length_scale_range=(0.1, 1.0), signal_var_range=(0.5, 3.0)).sample(make_generator(0, "val", 0))
    g = make_generator(1, "val", 0)
    x1, x2 = torch.rand(5, 3, 2, generator=g, dtype=F64), torch.rand(5, 4, 2, generator=g, dtype=F64)
    km = fns.kernel(x1, x2)
    assert km.shape == (5, 3, 4)
    for k in range(5):
        for i in range(3):
            for j in range(4):
                r = (x1[k, i] - x2[k, j]).norm().item()
                want = _reference_kernel(kind, r, fns.length_scale[k].item(), fns.signal_var[k].item())
                assert km[k, i, j].item() == pytest.approx(want, rel=1e-10)
    # symmetric positive definite on one set of points
    kxx = fns.kernel(x1, x1)
    torch.testing.assert_close(kxx, kxx.transpose(1, 2))
    torch.testing.assert_close(torch.diagonal(kxx, dim1=1, dim2=2), fns.signal_var[:, None].expand(5, 3))
    torch.linalg.cholesky(kxx + 1e-9 * torch.eye(3, dtype=F64))


@pytest.mark.parametrize("kind", KERNELS)
def test_kernel_gradient_is_finite_at_zero_distance(kind):
    x = torch.rand(2, 3, 2, dtype=F64, requires_grad=True)
    kernel_matrix(kind, x, x, torch.tensor([0.3, 0.7], dtype=F64), torch.ones(2, dtype=F64)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_kernel_rejects_bad_inputs():
    x = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="laplace"):
        kernel_matrix("laplace", x, x, torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        kernel_matrix("rbf", x[:, 0], x, torch.ones(2), torch.ones(2))


# ------------------------------------------------------------------ evaluation


@pytest.mark.parametrize("dim", [1, 2, 9])
def test_shapes_and_the_two_query_forms_agree(dim):
    fns = _fam(dim=dim, n_functions=3).sample(make_generator(0, "train", dim))
    assert (fns.n_functions, fns.dim, fns.n_features) == (3, dim, 64)
    x = torch.rand(3, 7, dim, dtype=F64)
    y = fns(x)
    assert y.shape == (3, 7) and y.dtype == F64
    torch.testing.assert_close(fns(x[:, 4]), y[:, 4])
    assert fns(x[:, 4]).shape == (3,)
    # function k is evaluated at x[k] only
    x2 = x.clone()
    x2[1] += 0.1
    y2 = fns(x2)
    torch.testing.assert_close(y2[[0, 2]], y[[0, 2]])
    assert not torch.allclose(y2[1], y[1])


def test_wrong_query_shapes_are_named():
    fns = _fam(dim=2, n_functions=3).sample(make_generator(0, "train", 0))
    for bad in (torch.rand(4, 2), torch.rand(3, 3), torch.rand(3, 5, 1), torch.rand(3)):
        with pytest.raises(ValueError, match=str(tuple(bad.shape)).replace("(", r"\(").replace(")", r"\)")):
            fns(bad)


def test_gradients_are_finite_and_correct():
    fam = _fam(kernel="matern52", n_features=16, n_functions=2)
    fns = fam.sample(make_generator(0, "train", 0))
    x = torch.rand(2, 3, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fns, (x,))
    fns32 = GPFunctionFamily(dim=4, n_functions=8).sample(make_generator(0, "train", 0))
    x32 = torch.rand(8, 5, 4, requires_grad=True)
    fns32(x32).sum().backward()
    assert torch.isfinite(x32.grad).all() and x32.grad.abs().sum() > 0
    assert not any(t.requires_grad for t in (fns32.omega, fns32.phase, fns32.weight))


def test_default_family_is_float32_and_functions_are_smooth_at_the_length_scale():
    fns = GPFunctionFamily(dim=2, n_functions=4).sample(make_generator(0, "train", 0))
    assert fns.omega.dtype == torch.float32 and fns.n_features == 512 and fns.n_functions == 4
    assert ((fns.length_scale >= 0.1 - 1e-6) & (fns.length_scale <= 0.5 + 1e-6)).all()
    x = torch.rand(4, 2)
    small = fns(x + 1e-3 * fns.length_scale[:, None]) - fns(x)
    assert small.abs().max() < 0.05


# ------------------------------------------------------------------ determinism and sampling


def test_same_generator_seed_gives_identical_functions_and_splits_differ():
    fam = _fam(kernel="matern52", length_scale_range=(0.1, 0.5), signal_var_range=(0.5, 2.0))
    a, b = fam.sample(make_generator(3, "train", 7)), fam.sample(make_generator(3, "train", 7))
    c = fam.sample(make_generator(3, "test", 7))
    for name in ("omega", "phase", "weight", "length_scale", "signal_var"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
        assert not torch.equal(getattr(a, name), getattr(c, name)), name
    x = torch.rand(5, 4, 2, dtype=F64)
    assert torch.equal(a(x), b(x))


def test_n_functions_override_and_subset():
    fam = _fam(n_functions=5)
    fns = fam.sample(make_generator(0, "train", 0), n_functions=3)
    assert fns.n_functions == 3 and fns.omega.shape == (3, 64, 2)
    sub = fns.subset([2, 0])
    x = torch.rand(3, 4, 2, dtype=F64)
    torch.testing.assert_close(sub(x[[2, 0]]), fns(x)[[2, 0]])
    assert fns.to(dtype=torch.float32).omega.dtype == torch.float32


@pytest.mark.parametrize("kw, word", [
    (dict(dim=0), "dim=0"), (dict(kernel="matern32"), "matern32"), (dict(n_features=0), "n_features"),
    (dict(length_scale_range=(0.0, 1.0)), "length_scale_range"), (dict(signal_var_range=(2.0, 1.0)), "signal_var_range"),
    (dict(n_functions=-1), "n_functions"),
])
def test_family_rejects_bad_values_by_name(kw, word):
    with pytest.raises(ValueError, match=word):
        _fam(**kw)


def test_sample_rejects_bad_n_functions():
    with pytest.raises(ValueError, match="n_functions=0"):
        _fam().sample(make_generator(0, "train", 0), n_functions=0)


# ------------------------------------------------------------------ approximate minimum


def test_approx_min_is_below_random_search_and_reached_at_its_argmin():
    fns = _fam(dim=3, n_functions=6, n_features=128, length_scale_range=(0.15, 0.4)).sample(make_generator(0, "test", 3))
    val, arg = fns.approx_min(2048, g=make_generator(0, "test", 4), return_argmin=True)
    assert val.shape == (6,) and arg.shape == (6, 3) and not val.requires_grad
    probe = torch.rand(6, 1000, 3, generator=make_generator(1, "test", 4), dtype=F64)
    assert (val <= fns(probe).min(dim=1).values).all()
    assert ((arg >= 0) & (arg <= 1)).all()
    torch.testing.assert_close(fns(arg), val)
    # the Adam refinement does work: strictly better than its own starting samples somewhere
    raw = fns.approx_min(2048, g=make_generator(0, "test", 4), n_steps=0)
    assert (val <= raw).all() and (val < raw - 1e-6).any()


def test_approx_min_matches_a_dense_grid_in_one_dimension():
    fns = _fam(dim=1, n_functions=4, n_features=64, length_scale_range=(0.05, 0.3)).sample(make_generator(0, "test", 9))
    grid = torch.linspace(0, 1, 20_001, dtype=F64).expand(4, -1).unsqueeze(-1)
    exact = fns(grid).min(dim=1).values
    approx = fns.approx_min(256, n_starts=16, n_steps=200, lr=0.005)
    assert (approx >= exact - 1e-6).all()  # cannot beat the true minimum on the cube
    torch.testing.assert_close(approx, exact, atol=1e-4, rtol=0)


def test_approx_min_works_under_no_grad_and_is_reproducible():
    fns = _fam(dim=2, n_functions=3).sample(make_generator(0, "test", 0))
    with torch.no_grad():
        a = fns.approx_min(128, n_steps=5)
    assert torch.equal(a, fns.approx_min(128, n_steps=5))
    with pytest.raises(ValueError, match="n_samples=0"):
        fns.approx_min(0)


def test_functions_validate_their_tensors():
    with pytest.raises(ValueError, match="phase"):
        GPFunctions(torch.zeros(2, 3, 1), torch.zeros(2, 4), torch.zeros(2, 3), torch.ones(2), torch.ones(2), "rbf")
