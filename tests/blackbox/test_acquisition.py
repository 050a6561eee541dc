"""The learned acquisition proposer: features, candidates, the numpy score against the torch
module, determinism and pending trials in LearnedSampler, its regression trainer, file round trip."""
import math

import numpy as np
import optuna
import pytest
import torch

from learnt.blackbox import GPFunctionFamily, LearnedSampler, load_proposer
from learnt.blackbox.acquisition import (
    N_FEATURES, AcquisitionProposer, AcquisitionRegression, AcquisitionTrainConfig, candidates, features,
    train_acquisition,
)
from learnt.blackbox.training import QueryTask
from learnt.errors import ConfigError
from learnt.learned import save_rule

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _history(k=3, n=7, p=2, md=5, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((k, md))
    mask[:, :dim] = 1.0
    return (rng.random((k, n, md)) * mask[:, None], rng.standard_normal((k, n)), rng.random((k, p, md)) * mask[:, None],
            mask, rng)


@pytest.mark.parametrize("n,p", [(0, 0), (1, 0), (2, 1), (9, 3)])
def test_features_are_finite_and_shaped_for_any_history(n, p):
    xh, yh, xp, mask, rng = _history(n=n, p=p)
    cand = candidates(xh, yh, mask, AcquisitionProposer(max_dim=5).design.numpy(), rng, 16, 16)
    f = features(xh, yh, xp, cand, mask)
    assert f.shape == (3, 32, N_FEATURES) and np.isfinite(f).all()
    assert (cand >= 0).all() and (cand <= 1).all() and (cand[:, :, 3:] == 0).all()   # in the cube, masked


def test_features_do_not_depend_on_the_results_offset_and_scale():
    xh, yh, xp, mask, rng = _history(n=12)
    cand = candidates(xh, yh, mask, AcquisitionProposer(max_dim=5).design.numpy(), rng, 16, 16)
    a = features(xh, yh, xp, cand, mask)
    b = features(xh, 3.0 * yh - 7.0, xp, cand, mask)
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_pending_queries_change_the_pending_density_and_the_gp_spread_only():
    from learnt.blackbox.acquisition import BMA_EI, GP_BLOCK, GP_MODELS, GP_WARPS
    xh, yh, xp, mask, rng = _history(n=6, p=2)
    cand = candidates(xh, yh, mask, AcquisitionProposer(max_dim=5).design.numpy(), rng, 8, 8)
    with_p = features(xh, yh, xp, cand, mask)
    without = features(xh, yh, xp[:, :0], cand, mask)
    changed = np.abs(with_p - without).max((0, 1)) > 1e-12
    g = len(GP_MODELS)
    expect = np.zeros(N_FEATURES, bool)
    expect[32:40] = True                                        # the pending density
    for w in range(len(GP_WARPS)):                              # per warp: std, log EI, model average's EI
        start = 40 + w * GP_BLOCK
        expect[start + g: start + 3 * g] = True
        expect[start + 4 * g] = True
    expect[BMA_EI] = True
    np.testing.assert_array_equal(changed, expect)
    for w in range(len(GP_WARPS)):                              # the kriging believer only shrinks the spread
        std = slice(40 + w * GP_BLOCK + g, 40 + w * GP_BLOCK + 2 * g)
        assert (with_p[..., std] <= without[..., std] + 1e-12).all()


def test_numpy_score_matches_the_module():
    torch.manual_seed(0)
    m = AcquisitionProposer(max_dim=5, hidden=16)
    with torch.no_grad():
        for p in m.mlp.parameters():
            p.normal_(0, 0.3)
    f = np.random.default_rng(1).standard_normal((4, 9, N_FEATURES))
    ref = m.double().score(torch.from_numpy(f)).detach().numpy()
    np.testing.assert_allclose(m.np_score(f), ref, rtol=1e-10, atol=1e-10)


def test_untrained_proposer_is_a_gp_ei_search_that_beats_random_search():
    fns = GPFunctionFamily(dim=2, n_functions=16, n_features=64).sample(torch.Generator().manual_seed(3))
    run = AcquisitionProposer(max_dim=4).rollout(fns, dim=2, steps=20)
    rand = fns(torch.rand(16, 20, 2, generator=torch.Generator().manual_seed(4)))
    ours, theirs = run.best_so_far()[:, -1], torch.cummin(rand, 1).values[:, -1]
    assert float((ours <= theirs).float().mean()) >= 0.75 and float(ours.mean()) < float(theirs.mean()) - 0.1


def _objective(f, dim):
    def obj(trial):
        return float(f(torch.tensor([[trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)]]))[0])
    return obj


def test_sampler_suggestion_is_a_function_of_the_history_and_seed():
    f = GPFunctionFamily(dim=3, n_functions=1, n_features=64).sample(torch.Generator().manual_seed(0))
    m = AcquisitionProposer(max_dim=4, hidden=8)
    a = optuna.create_study(sampler=LearnedSampler(m, seed=1))
    a.optimize(_objective(f, 3), n_trials=8)
    b = optuna.create_study(sampler=LearnedSampler(m, seed=1))
    for t in a.trials:                      # the same history, copied in
        b.add_trial(t)
    fresh = LearnedSampler(m, seed=1)
    used = LearnedSampler(m, seed=1)
    used_study = optuna.create_study(sampler=used)
    used_study.optimize(_objective(f, 3), n_trials=5)   # a sampler with other studies behind it
    space = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(3)}
    got = []
    for sampler in (fresh, used, LearnedSampler(m, seed=2)):
        b.sampler = sampler
        trial = b.ask(space)
        got.append(trial.params)
        b.tell(trial, state=optuna.trial.TrialState.FAIL)   # the next ask sees the same history
    assert got[0] == got[1]
    assert got[2] != got[0]                  # the seed does matter


def test_sampler_avoids_running_trials():
    f = GPFunctionFamily(dim=2, n_functions=1, n_features=64).sample(torch.Generator().manual_seed(2))
    study = optuna.create_study(sampler=LearnedSampler(AcquisitionProposer(max_dim=4), seed=0))
    study.optimize(_objective(f, 2), n_trials=10)
    space = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(2)}
    first = study.ask(space)
    second = study.ask(space)                # proposed with the first one running
    x1, x2 = (np.array([t.params["x0"], t.params["x1"]]) for t in (first, second))
    assert np.abs(x1 - x2).max() > 1e-3      # the pending trial is not proposed again


def test_a_pending_query_lowers_the_gp_std_and_moves_the_choice_away():
    """With the same candidates (same random numbers), a query running at the untrained
    proposer's choice makes it choose elsewhere: the kriging believer shrinks the GP std there
    (and leaves the GP means as they are), so the closed-form EI it starts from drops."""
    from learnt.blackbox.acquisition import BMA_EI
    m = AcquisitionProposer(max_dim=3)
    xh, yh, _, mask, _ = _history(k=2, n=12, p=0, md=3, dim=2, seed=4)
    none = np.zeros((2, 0, 3))
    x0 = m.propose_np(xh, yh, none, mask, np.random.default_rng(7))
    x1 = m.propose_np(xh, yh, x0[:, None], mask, np.random.default_rng(7))
    assert (np.abs(x1 - x0).max(1) > 0.01).all()
    cand = candidates(xh, yh, mask, m.design.numpy(), np.random.default_rng(7), m.n_global, m.n_local)
    f0, f1 = features(xh, yh, none, cand, mask), features(xh, yh, x0[:, None], cand, mask)
    pick = ((cand - x0[:, None]) ** 2).sum(-1).argmin(1)      # the candidate chosen without the pending query
    at = np.arange(2), pick
    assert (f1[at][:, BMA_EI] < f0[at][:, BMA_EI] - 0.1).all()


def _heldout_loss(m, est, family, n=6):
    """The regression loss on fixed examples of the training distribution (other seeds)."""
    g, total = torch.Generator().manual_seed(123), 0.0
    for i in range(n):
        torch.manual_seed(1000 + i)
        total += est.estimate(m, family.sample(g), None, None, None, 1)[2]
    m.zero_grad()
    return total / n


def test_regression_trainer_lowers_the_heldout_loss_and_round_trips(tmp_path):
    from learnt.blackbox.training import GPPrior, GPQueryFamily
    cfg = AcquisitionTrainConfig(iterations=60, dims=(1, 2), functions_per_dim=8, max_history=12, val_every=60,
                                 val_functions_per_dim=2, val_horizons=(5,), meta_lr=1e-3)
    torch.manual_seed(0)
    m = AcquisitionProposer(max_dim=2, hidden=16, n_global=16, n_local=16)
    est, family = AcquisitionRegression(cfg.max_history, cfg.explore), GPQueryFamily((1, 2), 8, GPPrior())
    before = _heldout_loss(m, est, family)
    res = train_acquisition(m, cfg, out_dir=tmp_path / "run", progress=False)
    after = _heldout_loss(m, est, family)
    if res.best_iteration > 0:      # validation kept a trained phi: it must fit unseen examples better
        assert after < 0.97 * before, (before, after)
    else:
        assert after == pytest.approx(before)
    save_rule(m, tmp_path / "acq.pt", {"horizon": 50})
    back = load_proposer(tmp_path / "acq.pt")
    assert isinstance(back, AcquisitionProposer) and back.config() == m.config()
    z = np.random.default_rng(0).standard_normal((2, 3, N_FEATURES))
    np.testing.assert_allclose(back.np_score(z), m.np_score(z))


def test_regression_steps_lower_the_heldout_loss():
    from learnt.blackbox.training import GPPrior, GPQueryFamily
    torch.manual_seed(0)
    m = AcquisitionProposer(max_dim=2, hidden=16, n_global=16, n_local=16)
    est, family = AcquisitionRegression(12, 0.3), GPQueryFamily((1, 2), 8, GPPrior())
    before = _heldout_loss(m, est, family)
    opt, g = torch.optim.Adam(m.parameters(), lr=1e-3), torch.Generator().manual_seed(0)
    for _ in range(60):
        opt.zero_grad()
        est.estimate(m, family.sample(g), None, None, None, 1)
        opt.step()
    assert _heldout_loss(m, est, family) < 0.97 * before


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="hidden=0"):
        AcquisitionProposer(hidden=0)
    with pytest.raises(ConfigError, match="prior='uniform'"):
        AcquisitionTrainConfig(prior="uniform")
    with pytest.raises(ConfigError, match="explore=2"):
        AcquisitionRegression(explore=2)
    with pytest.raises(ConfigError, match="dim=5"):
        AcquisitionProposer(max_dim=4).rollout(lambda x: x.sum(-1), dim=5, steps=2, n_functions=1)


def test_spd_inverse_matches_lu_and_falls_back_on_a_singular_matrix():
    from learnt.blackbox.acquisition import _spd_inverse
    rng = np.random.default_rng(0)
    b = rng.standard_normal((2, 3, 6, 6))
    a = b @ np.swapaxes(b, -1, -2) + 0.1 * np.eye(6)
    inv, logdet = _spd_inverse(a)
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(a)[1], rtol=1e-12)
    a[1, 2] = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, -1.0])        # not positive definite: LU answers
    inv, logdet = _spd_inverse(a)
    np.testing.assert_allclose(inv[1, 2], np.linalg.inv(a[1, 2]), rtol=1e-12)
    assert logdet[1, 2] == pytest.approx(math.log(120.0))
