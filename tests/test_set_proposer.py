"""The set (attention) proposer: order-free, pending-aware, numpy path equal to torch, usable
by LearnedSampler and the trainer, saved and loaded as one model file."""
import numpy as np
import optuna
import pytest
import torch

from learnt.blackbox import GPFunctionFamily, LearnedSampler, SetProposer, load_proposer
from learnt.blackbox.set_proposer import NumpySetProposer, history_features
from learnt.blackbox.training import BlackBoxTrainConfig, train_proposer
from learnt.errors import ConfigError
from learnt.experiments.blackbox import ProposerConfig
from learnt.learned import save_rule


def _random_proposer(seed=0, **kw) -> SetProposer:
    torch.manual_seed(seed)
    m = SetProposer(**{"max_dim": 5, "width": 16, "heads": 2, "layers": 2, **kw})
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


def _history(n, dim, max_dim=5, k=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(k, n, max_dim, generator=g)
    x[..., dim:] = 0
    y = torch.randn(k, n, generator=g) * 3 + 1
    return x, y


@pytest.mark.parametrize("fourier", [0, 6])
def test_proposal_is_invariant_to_the_order_of_the_history(fourier):
    m = _random_proposer(fourier=fourier)
    x, y = _history(12, 3)
    fin = torch.ones(12, dtype=torch.bool)
    mask = m.mask(3, 1, x)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = m.propose(x, y, fin, mask)
        b = m.propose(x[:, perm], y[:, perm], fin, mask)
    assert torch.allclose(a, b, atol=1e-5)
    assert (a[:, 3:] == 0).all() and ((a[:, :3] > 0) & (a[:, :3] < 1)).all()


def test_results_of_pending_queries_are_not_seen_but_their_positions_are():
    m = _random_proposer()
    x, y = _history(10, 4)
    fin = torch.arange(10) < 7
    mask = m.mask(4, 1, x)
    y2 = y.clone()
    y2[:, 7:] = torch.tensor([[-50.0, 40.0, 3.0]])
    x2 = x.clone()
    x2[:, 8, :4] = 0.05
    with torch.no_grad():
        a = m.propose(x, y, fin, mask)
        assert torch.equal(a, m.propose(x, y2, fin, mask))          # pending results are unknown
        assert not torch.allclose(a, m.propose(x2, y, fin, mask))   # a pending query's position matters


def test_features_standardise_rank_and_mark_the_incumbent():
    x, y = _history(6, 2, max_dim=3)
    y = torch.tensor([[3.0, 1.0, 2.0, 5.0, -1.0, 7.0]])
    fin = torch.tensor([True, True, True, True, True, False])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    tok, x_best, best_std = history_features(x, y, fin, mask)
    z, rank, flag, best = tok[0, :, 6], tok[0, :, 7], tok[0, :, 8], tok[0, :, 9]
    yf = y[0, :5]
    assert torch.allclose(z[:5], (yf - yf.mean()) / yf.std(unbiased=False), atol=1e-5)
    assert torch.allclose(rank[:5], torch.tensor([0.5, -0.5, 0.0, 1.0, -1.0]))
    assert z[5] == rank[5] == flag[5] == 0 and flag[:5].eq(1).all()
    assert best.tolist() == [0, 0, 0, 0, 1, 0]
    assert torch.equal(x_best[0], x[0, 4]) and torch.isclose(best_std[0], z[4])


def test_standardised_results_keep_their_value_but_a_bounded_gradient():
    x, _ = _history(4, 2, max_dim=3)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    fin = torch.ones(4, dtype=torch.bool)
    y = torch.tensor([[1.0, 1.0 + 1e-5, 1.0 - 1e-5, 1.0]], dtype=torch.float64, requires_grad=True)   # a plateau
    z = history_features(x.double(), y, fin, mask)[0][0, :, 6]
    yd = y.detach()
    want = (yd - yd.mean()) / torch.sqrt(yd.var(unbiased=False) + 1e-12)     # the features' epsilon
    assert torch.allclose(z.detach(), want[0].clamp(-5, 5), atol=1e-4)
    (g,) = torch.autograd.grad(z[1], y)
    assert float(g.abs().max()) <= 1.0 / 0.1 + 1e-9            # 1 / max(std, 0.1), not 1 / std ~ 1e5
    assert float(g[0, 1]) == pytest.approx(10.0)


def test_untrained_proposer_ignores_the_history_and_fills_the_space():
    m = SetProposer(max_dim=4, width=16, heads=2, layers=1)
    mask = m.mask(2, 1, torch.zeros(1))
    a, b = _history(7, 2, max_dim=4, seed=0), _history(7, 2, max_dim=4, seed=5)
    fin = torch.ones(7, dtype=torch.bool)
    with torch.no_grad():
        pa, pb = m.propose(*a, fin, mask), m.propose(*b, fin, mask)
    # the incumbent differs, but at initialisation its pull is sigmoid(-3) ~ 0.05: nearly the design point
    assert torch.allclose(pa, pb, atol=0.05)
    fns = GPFunctionFamily(dim=2, n_functions=2).sample(torch.Generator().manual_seed(0))
    with torch.no_grad():
        run = m.rollout(fns, 2, 16)
    pts = run.x[0]
    gaps = torch.cdist(pts, pts) + 10 * torch.eye(16)
    rand = torch.rand(200, 16, 2, generator=torch.Generator().manual_seed(0))
    rand_gaps = (torch.cdist(rand, rand) + 10 * torch.eye(16)).amin((1, 2))
    assert gaps.min() > rand_gaps.median()      # better spread than most uniform random designs


@pytest.mark.parametrize("n,dim,pending,fourier", [(0, 3, 0, 0), (1, 1, 0, 4), (6, 5, 2, 0), (40, 2, 3, 8)])
def test_numpy_path_equals_torch(n, dim, pending, fourier):
    m = _random_proposer(seed=n, fourier=fourier)
    x, y = _history(n, dim, seed=n)
    fin = torch.arange(n) < n - pending
    with torch.no_grad():
        want = m.propose(x, y, fin, m.mask(dim, 1, x))[0].numpy()
    got = NumpySetProposer(m).propose(x[0].double().numpy(), y[0].double().numpy(), fin.numpy(), dim)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_rollout_is_differentiable_in_every_weight_and_serves_mixed_dims():
    m = _random_proposer(max_dim=3)
    fns = GPFunctionFamily(dim=3, n_functions=3).sample(torch.Generator().manual_seed(0))
    run = m.rollout(fns, 3, 6, parallel=2)
    run.y.mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in m.parameters()) > 0
    dims = torch.tensor([1, 3, 2])
    with torch.no_grad():
        mixed = m.rollout(lambda x: x.sum(1), dims, 4, n_functions=3)
    assert mixed.x.shape == (3, 4, 3)
    assert (mixed.x[0, :, 1:] == 0).all() and (mixed.x[2, :, 2] == 0).all()


def test_save_load_and_sampler_suggest_what_the_proposer_proposes(tmp_path):
    m = _random_proposer(max_dim=3)
    save_rule(m, tmp_path / "set.pt", {"horizon": 30})
    back = load_proposer(tmp_path / "set.pt")
    assert isinstance(back, SetProposer) and back.meta == {"horizon": 30}
    sampler = LearnedSampler(back)
    assert sampler.horizon == 30
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("a", 0, 1) - 0.3) ** 2 + (t.suggest_float("b", 0, 1) - 0.7) ** 2,
                   n_trials=12)
    trials = study.trials
    # every suggestion from trial 2 on (the joint space is known) is the numpy proposal of the history before it
    fast = NumpySetProposer(m)
    for t in trials[2:]:
        before = [s for s in trials if s.number < t.number]
        x = np.array([[s.params["a"], s.params["b"], 0.0] for s in before])
        y = np.array([s.value for s in before])
        u = fast.propose(x, y, np.ones(len(before), bool), 2)
        assert t.params["a"] == pytest.approx(u[0], abs=1e-6) and t.params["b"] == pytest.approx(u[1], abs=1e-6)


def test_trainer_meta_trains_a_set_proposer():
    cfg = BlackBoxTrainConfig(iterations=2, functions_per_dim=2, dims=(1, 2), horizon_start=3, horizon_end=4,
                              val_every=1, checkpoint_every=1, val_functions_per_dim=2, val_horizons=(4,))
    m = SetProposer(max_dim=2, width=8, heads=2, layers=1)
    before = [p.detach().clone() for p in m.parameters()]
    res = train_proposer(m, cfg, progress=False)
    assert res.iterations == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="heads to divide width"):
        SetProposer(width=10, heads=4)
    with pytest.raises(ConfigError, match="width=0"):
        SetProposer(width=0)
    with pytest.raises(ConfigError, match="fourier=-1"):
        SetProposer(fourier=-1)
    with pytest.raises(ConfigError, match="proposer.arch='gru'"):
        ProposerConfig(arch="gru")
    assert isinstance(ProposerConfig(arch="set", hidden=16).build(), SetProposer)
