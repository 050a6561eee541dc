import math

import pytest
import torch

from learnt.blackbox.prior import DIM_TYPES, SearchSpacePrior


def _fns(**kw):
    return SearchSpacePrior(**{"dim": 3, "n_functions": 64, **kw}).sample(torch.Generator().manual_seed(0))


def test_shapes_determinism_and_gradients():
    fns = _fns()
    x = torch.rand(64, 7, 3, requires_grad=True)
    y = fns(x)
    assert y.shape == (64, 7) and torch.isfinite(y).all()
    assert fns(x[:, 0]).shape == (64,)
    torch.testing.assert_close(_fns()(x), y, rtol=0, atol=0)           # same generator, same functions
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs().sum(-1) > 0).float().mean() > 0.5


def test_grid_and_categorical_dimensions_are_constant_within_a_bin():
    fns = _fns(p_grid=0.5, p_categorical=0.5, p_failure=0.0, noise=(0.0, 0.0), dim=2, n_functions=32)
    types = fns.dim_types()
    assert {t for row in types for t in row} <= set(DIM_TYPES) and any("categorical" in r for r in types)
    bins = fns.parts["bins"]
    x = torch.rand(32, 1, 2).expand(-1, 2, -1).clone()
    # move each coordinate within its bin: the value must not change
    b = torch.floor(x[:, 0] * bins).clamp_max(bins - 1)
    x[:, 1] = ((b + torch.rand(32, 2) * 0.98 + 0.01) / bins)
    y = fns(x)
    torch.testing.assert_close(y[:, 0], y[:, 1], rtol=1e-5, atol=1e-5)
    # ... and crossing into another bin usually does
    x2 = x.clone()
    x2[:, 1, 0] = (x2[:, 1, 0] + 0.5) % 1.0
    assert (fns(x2)[:, 1] - y[:, 0]).abs().gt(1e-4).float().mean() > 0.5


def test_failure_region_returns_one_constant_above_typical_values():
    fns = _fns(p_failure=1.0, p_plateau=0.0, p_exp_warp=0.0, p_power_warp=0.0, noise=(0.0, 0.0),
               failure_fraction=(0.3, 0.3), n_functions=16)
    x = torch.rand(16, 512, 3)
    y = fns(x)
    p = fns.parts
    coord = x[torch.arange(16), :, p["fail_dim"]]
    inside = torch.where(p["fail_high"].unsqueeze(1), coord > 0.7, coord < 0.3)
    assert inside.any(1).all() and (~inside).any(1).all()
    assert torch.all(y[inside] == 3.0)
    assert (y[~inside] < 3.0).float().mean() > 0.99


def test_plateau_caps_the_bad_side_and_exp_warp_makes_a_heavy_right_tail():
    flat = _fns(p_plateau=1.0, plateau_quantile=(0.5, 0.5), p_failure=0.0, p_exp_warp=0.0, p_power_warp=0.0,
                noise=(0.0, 0.0), n_functions=16)
    y = flat(torch.rand(16, 2000, 3))
    assert torch.all(y <= 0.5 + 1e-6) and (y == 0.5).float().mean() > 0.1
    heavy = _fns(p_exp_warp=1.0, p_power_warp=0.0, p_plateau=0.0, p_failure=0.0, noise=(0.0, 0.0), n_functions=16)
    y = heavy(torch.rand(16, 2000, 3))
    skew = (((y - y.mean(1, keepdim=True)) / y.std(1, keepdim=True)) ** 3).mean(1)
    assert (skew > 0.5).float().mean() > 0.7


def test_ard_irrelevant_dimensions_barely_move_the_function():
    # (smooth kernels: Matern-1/2's Cauchy spectrum keeps it rough at every length scale)
    fns = _fns(kernels=("rbf", "matern52"), p_irrelevant=1.0, length_scale=(0.05, 0.05), irrelevant_scale=1000.0, p_grid=0.0, p_categorical=0.0,
               p_failure=0.0, p_input_warp=0.0, noise=(0.0, 0.0), p_exp_warp=0.0, p_power_warp=0.0, p_plateau=0.0)
    x = torch.rand(64, 50, 3)
    assert (fns(x).std(1) < 0.05).all()          # every dimension irrelevant: nearly constant
    relevant = _fns(kernels=("rbf", "matern52"), p_irrelevant=0.0, length_scale=(0.05, 0.05), p_grid=0.0,
                    p_categorical=0.0, p_failure=0.0, p_input_warp=0.0, noise=(0.0, 0.0), p_exp_warp=0.0,
                    p_power_warp=0.0, p_plateau=0.0)
    assert (relevant(x).std(1) > 0.3).float().mean() > 0.9


def test_kernels_match_random_features_and_min_is_below_samples():
    fns = _fns(p_grid=0.0, p_categorical=0.0, p_input_warp=0.0, p_exp_warp=0.0, p_power_warp=0.0, p_plateau=0.0,
               p_failure=0.0, noise=(0.0, 0.0), n_features=4096, dim=2, n_functions=8, dtype=torch.float64)
    x = torch.rand(8, 5, 2, dtype=torch.float64)
    k = fns.kernel(x, x)
    assert k.shape == (8, 5, 5)
    torch.testing.assert_close(torch.diagonal(k, dim1=1, dim2=2), torch.ones(8, 5, dtype=torch.float64))
    # empirical covariance of the random-feature functions over many draws of the prior
    many = SearchSpacePrior(dim=2, n_functions=1, kernels=("rbf",), length_scale=(0.3, 0.3), p_irrelevant=0.0,
                            p_grid=0.0, p_categorical=0.0, p_input_warp=0.0, p_exp_warp=0.0, p_power_warp=0.0,
                            p_plateau=0.0, p_failure=0.0, noise=(0.0, 0.0), dtype=torch.float64)
    pts = torch.tensor([[[0.2, 0.2], [0.4, 0.3]]], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    vals = torch.stack([many.sample(g)(pts)[0] for _ in range(800)])
    emp = (vals[:, 0] * vals[:, 1]).mean().item()
    want = math.exp(-0.5 * ((0.2 ** 2 + 0.1 ** 2) / (0.3 * math.sqrt(2)) ** 2))
    assert abs(emp - want) < 0.12
    fns2 = _fns(n_functions=8)
    m, at = fns2.approx_min(512, n_steps=10, return_argmin=True)
    assert m.shape == (8,) and at.shape == (8, 3) and torch.all((at >= 0) & (at <= 1))
    torch.testing.assert_close(fns2(at), m)                               # the value is reached where it says
    assert torch.all(m <= fns2(torch.full((8, 3), 0.5)))


@pytest.mark.parametrize("kw, match", [({"dim": 0}, "dim=0"), ({"kernels": ("rbf", "cubic")}, "kernels="),
                                       ({"p_grid": 1.5}, "p_grid=1.5"), ({"levels": (1, 4)}, "levels="),
                                       ({"p_grid": 0.7, "p_categorical": 0.5}, "p_grid \\+ p_categorical"),
                                       ({"length_scale": (0.5, 0.1)}, "length_scale=")])
def test_bad_settings_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        SearchSpacePrior(**kw)


@pytest.mark.parametrize("loss", ["oi", "ei"])
def test_proposer_meta_trains_on_the_search_space_prior(loss):
    from learnt.blackbox.proposer import LSTMProposer
    from learnt.blackbox.training import BlackBoxTrainConfig, GPPrior, train_proposer
    torch.manual_seed(0)
    cfg = BlackBoxTrainConfig(iterations=3, loss=loss, dims=(2, 5), functions_per_dim=4,
                              prior=GPPrior(kind="search-space"), horizon_start=5, horizon_end=8, val_every=2,
                              checkpoint_every=2, val_functions_per_dim=4, val_horizons=(8,))
    model = LSTMProposer(max_dim=5, hidden=16)
    before = [p.detach().clone() for p in model.parameters()]
    res = train_proposer(model, cfg, progress=False)
    assert res.iterations == 3 and math.isfinite(res.best_score)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(Exception, match="prior kind='smooth'"):
        GPPrior(kind="smooth")
