"""The hierarchical RNN optimizer: conformance, per-problem independence, the paper's
output parametrisation, and use through torch.optim."""
import copy
import math

import pytest
import torch
from torch import nn

from learnt.functional import adam, chain, ClipByGlobalNorm
from learnt.learned import HierarchicalRNN, load_rule, save_rule
from learnt.learned.hrnn import GLOBAL
from learnt.meta import MetaTrainConfig, MetaTrainer
from learnt.optim import RuleOptimizer
from tests.learned.test_conformance import (check_determinism, check_float64, check_gradients_reach_every_parameter,
                                            check_lr_multiplies, check_no_input_mutation, check_shapes,
                                            check_state_dict_round_trip)


def hrnn_factory(**kw):
    return HierarchicalRNN(**{"param_hidden": 6, "tensor_hidden": 7, "global_hidden": 5, **kw})


@pytest.mark.parametrize("check", [check_shapes, check_determinism, check_state_dict_round_trip,
                                   check_no_input_mutation, check_float64, check_lr_multiplies])
def test_hrnn_conformance(check):
    check(hrnn_factory)


def test_gradients_reach_every_parameter_once_the_lr_readout_is_nonzero():
    # at init the lr readout is zero (as in the paper), which makes d/d(lr momentum) exactly 0;
    # any trained rule has a nonzero readout
    def factory(**kw):
        rule = hrnn_factory(**kw)
        with torch.no_grad():
            rule.w_lr.normal_(0, 0.1)
            rule.b_lr.fill_(0.05)
        return rule
    check_gradients_reach_every_parameter(factory)


def _grads(params, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(p.shape, generator=g) for k, p in params.items()}


def test_stacked_problems_do_not_interact():
    rule = hrnn_factory()
    params = {"w": torch.zeros(4, 3, 5), "b": torch.zeros(4, 5)}
    state = rule.init(params, n_problems=4)
    alone_params = {k: v[2:3] for k, v in params.items()}
    alone_state = rule.init(alone_params, n_problems=1)
    for step in range(3):
        grads = _grads(params, seed=step)
        upd, state = rule.update(grads, state, params)
        upd1, alone_state = rule.update({k: v[2:3] for k, v in grads.items()}, alone_state, alone_params)
        for k in params:
            torch.testing.assert_close(upd[k][2:3], upd1[k], atol=1e-6, rtol=1e-5)
    # pooling across problems would make problem 2 depend on problem 0's gradients
    grads = _grads(params, seed=9)
    grads2 = {k: v.clone() for k, v in grads.items()}
    grads2["w"][0] *= 100
    a, _ = rule.update(grads, state, params)
    b, _ = rule.update(grads2, state, params)
    torch.testing.assert_close(a["w"][2], b["w"][2])


def test_first_step_has_the_per_tensor_rms_of_exp_log_lr_minus_one():
    # direction normalised to unit RMS per tensor, times exp(log lr + offset), offset -1 at init
    rule = hrnn_factory(init_lr=3e-3).eval()
    params = {"w": torch.zeros(7, 4), "b": torch.zeros(4)}
    upd, _ = rule.update(_grads(params), rule.init(params), params)
    for k in params:
        rms = upd[k].pow(2).mean().sqrt().item()
        assert rms == pytest.approx(3e-3 * math.exp(-1), rel=1e-4)


def test_initial_learning_rates_are_drawn_only_while_meta_training():
    rule = hrnn_factory(init_lr=1e-3, init_lr_range=(1e-6, 1e-2))
    params = {"w": torch.zeros(3, 10)}
    torch.manual_seed(0)
    drawn = rule.init(params, n_problems=3)["w"]["log_lr"]
    assert drawn.min() >= math.log(1e-6) and drawn.max() <= math.log(1e-2)
    assert len(torch.unique(drawn)) == 3  # one draw per problem
    rule.eval()
    fixed = rule.init(params, n_problems=3)["w"]["log_lr"]
    assert torch.allclose(fixed, torch.full_like(fixed, math.log(1e-3)))


def _rate_after(rule, steps, n_problems=2):
    params = {"w": torch.zeros(2 * n_problems, 5), "b": torch.zeros(n_problems * 3)}
    state = rule.init(params, n_problems=n_problems)
    with torch.no_grad():
        for _ in range(steps):
            upd, state = rule.update(_grads(params), state, params)
    return state, upd


def test_lr_bound_stops_the_runaway_rate_of_long_runs():
    """A biased rate readout raises log lr by 0.5 per step: unbounded, the rate integrates it up
    to the absolute clip; with lr_bound it stays within the bound of each problem's start."""
    def biased(**kw):
        rule = hrnn_factory(init_lr_range=(1e-5, 1e-3), max_log_lr=0.0, **kw)
        with torch.no_grad():
            rule.b_lr.fill_(0.5)
            rule.lr_momentum_logit.fill_(-20.0)      # no smoothing: the rate follows the readout
        return rule
    torch.manual_seed(0)
    free, _ = _rate_after(biased(), 200)
    assert free["w"]["log_lr"].max().item() == pytest.approx(0.0, abs=1e-5)       # ran to lr 1
    rule = biased(lr_bound=10.0)
    torch.manual_seed(0)
    start = rule.init({"w": torch.zeros(4, 5), "b": torch.zeros(6)}, n_problems=2)
    torch.manual_seed(0)
    bounded, upd = _rate_after(rule, 200)
    for k in ("w", "b"):
        lr0 = start[k]["log_lr"].reshape(2, -1)[:, :1]
        assert torch.equal(bounded[k]["log_lr0"], lr0.reshape(1, 2))
        got = bounded[k]["log_lr"].reshape(2, -1)
        assert torch.allclose(got, (lr0 + math.log(10.0)).expand_as(got), atol=1e-5)   # each problem at its own cap
        assert len(torch.unique(lr0)) == 2
    assert all(torch.isfinite(u).all() for u in upd.values())
    with pytest.raises(ValueError, match="lr_bound=0.5"):
        HierarchicalRNN(lr_bound=0.5)


def _seg_rms(t, n_problems):
    return t.reshape(n_problems, -1).pow(2).mean(1).sqrt()


def test_trust_region_bounds_each_tensor_step_relative_to_its_weights():
    """With a huge learned rate the unguarded step is far larger than the weights; the trust
    region caps each (tensor, problem) step RMS at rho * lr * max(weight RMS, floor), keeps
    the direction, and leaves steps below the bound exactly as they were."""
    torch.manual_seed(0)
    K = 2
    params = {"w": torch.randn(2 * K, 5) * torch.tensor([[1.0], [1.0], [0.1], [0.1]]), "b": torch.zeros(K * 3)}
    grads = _grads(params)
    big = dict(init_lr=1.0)
    free = hrnn_factory(**big).eval()
    guarded = copy.deepcopy(free)
    guarded.max_rel_step = 0.05
    with torch.no_grad():
        u_free, _ = free.update(grads, free.init(params, n_problems=K), params)
        u_g, _ = guarded.update(grads, guarded.init(params, n_problems=K), params, lr=0.5)
        u_free_half, _ = free.update(grads, free.init(params, n_problems=K), params, lr=0.5)
    for k in params:
        w_rms = _seg_rms(params[k], K).clamp_min(1e-2)
        bound = 0.05 * 0.5 * w_rms
        got = _seg_rms(u_g[k], K)
        assert (_seg_rms(u_free_half[k], K) > 2 * bound).all()          # the guard has work to do
        torch.testing.assert_close(got, bound, rtol=1e-4, atol=0)        # ... and binds exactly
        cos = torch.nn.functional.cosine_similarity(u_g[k].reshape(K, -1), u_free_half[k].reshape(K, -1), dim=1)
        assert (cos > 1 - 1e-5).all()
    # a bound that does not bind changes nothing
    loose = copy.deepcopy(free)
    loose.max_rel_step = 1e6
    with torch.no_grad():
        u_l, _ = loose.update(grads, loose.init(params, n_problems=K), params)
    for k in params:
        torch.testing.assert_close(u_l[k], u_free[k], rtol=1e-6, atol=0)


def test_trust_region_keeps_a_runaway_rate_from_wrecking_small_weights():
    """The biased readout of the lr_bound test drives the rate to its clip (lr 1). On a
    quadratic whose solution has small weights (RMS 0.1), started near it, the unguarded rule
    then takes steps larger than the weights and ends far from the solution, as the shipped
    HRNN stalls at large rates; the guarded rule's steps stay relative to the weights and it
    ends closer than it started."""
    def biased(**kw):
        rule = hrnn_factory(**kw)
        with torch.no_grad():
            rule.b_lr.fill_(0.5)
            rule.lr_momentum_logit.fill_(-20.0)
        return rule.eval()
    g = torch.Generator().manual_seed(0)
    target = 0.1 * torch.randn(50, generator=g)
    start = target + 0.02 * torch.randn(50, generator=g)
    err = {}
    for name, kw in {"free": {}, "guarded": {"max_rel_step": 0.01}}.items():
        torch.manual_seed(0)
        rule, w = biased(**kw), start.clone()
        state = rule.init({"w": w})
        with torch.no_grad():
            for _ in range(300):
                upd, state = rule.update({"w": w - target}, state, {"w": w})
                w = w + upd["w"]
        err[name] = (w - target).norm().item()
    start_err = (start - target).norm().item()
    assert err["free"] > 5 * start_err
    assert err["guarded"] < start_err


def test_trust_region_config_round_trips_and_old_files_load_without_it(tmp_path):
    rule = hrnn_factory(max_rel_step=0.03, rel_step_floor=1e-3)
    save_rule(rule, tmp_path / "g.pt")
    back = load_rule(tmp_path / "g.pt", expected_kind="hrnn")
    assert (back.max_rel_step, back.rel_step_floor) == (0.03, 1e-3)
    old = hrnn_factory().config()
    del old["max_rel_step"], old["rel_step_floor"]
    assert HierarchicalRNN.upgrade_config(old) == hrnn_factory().config()
    for bad, match in [({"max_rel_step": 0.0}, "max_rel_step=0.0"), ({"max_rel_step": float("nan")}, "max_rel_step=nan"),
                       ({"rel_step_floor": -1.0}, "rel_step_floor=-1.0")]:
        with pytest.raises(ValueError, match=match):
            HierarchicalRNN(**bad)


def test_invalid_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="init_lr=0"):
        HierarchicalRNN(init_lr=0)
    with pytest.raises(ValueError, match="init_lr_range"):
        HierarchicalRNN(init_lr_range=(1e-2, 1e-6))
    with pytest.raises(ValueError, match="not divisible by n_problems=3"):
        HierarchicalRNN().init({"w": torch.zeros(4)}, n_problems=3)


def test_save_load_round_trip(tmp_path):
    rule = hrnn_factory(init_lr_range=(1e-5, 1e-2))
    save_rule(rule, tmp_path / "h.pt")
    back = load_rule(tmp_path / "h.pt", expected_kind="hrnn")
    params = {"w": torch.zeros(3, 2)}
    rule.eval(), back.eval()
    a, _ = rule.update(_grads(params), rule.init(params), params)
    b, _ = back.update(_grads(params), back.init(params), params)
    torch.testing.assert_close(a["w"], b["w"], atol=0, rtol=0)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))


def _steps(model, opt, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(16, 5, generator=g)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).backward()
        opt.step()


def test_through_torch_optim_with_global_state_round_trip():
    rule = hrnn_factory().eval()
    m1 = _model()
    o1 = RuleOptimizer(m1.parameters(), rule)
    _steps(m1, o1, 3)
    assert GLOBAL in o1.rule_state[0]
    sd = copy.deepcopy(o1.state_dict())
    assert "rule_state" in sd
    m2 = copy.deepcopy(m1)
    o2 = RuleOptimizer(m2.parameters(), rule)
    o2.load_state_dict(sd)
    _steps(m1, o1, 3, seed=1)
    _steps(m2, o2, 3, seed=1)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-6)
    # without the global state the trajectory differs: it is really used
    m3 = copy.deepcopy(m2)
    o3 = RuleOptimizer(m3.parameters(), rule)
    o3.load_state_dict({k: v for k, v in sd.items() if k != "rule_state"})
    _steps(m3, o3, 1, seed=2)
    _steps(m2, o2, 1, seed=2)
    assert any(not torch.allclose(a, b) for a, b in zip(m2.parameters(), m3.parameters()))


def test_chain_with_clipping_matches_torch_adam_after_clip_grad_norm():
    """A chained rule's transform state lives in rule_state, and the chain does what it says:
    torch's clip_grad_norm_ then torch.optim.Adam, step for step (with gradients large enough
    that the clip is active)."""
    ours, ref = _model(), _model()
    opt = RuleOptimizer(ours.parameters(), chain(ClipByGlobalNorm(0.1), adam(0.01)))
    torch_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(16, 5, generator=g) * 10
        for model, o in ((ours, opt), (ref, torch_opt)):
            o.zero_grad()
            nn.functional.mse_loss(model(x), x.sum(1, keepdim=True)).backward()
            if o is torch_opt:
                assert float(nn.utils.clip_grad_norm_(model.parameters(), 0.1)) > 0.1   # the clip is active
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert "__transform0__" in opt.rule_state[0]


def test_meta_training_survives_a_nan_task_and_stays_finite(tmp_path):
    from learnt.tasks import QuadraticFamily

    class SometimesNaN:
        n_problems = 2

        def sample(self, g, n_problems=None):
            task = QuadraticFamily(dim=3, n_problems=2).sample(g, n_problems)
            if torch.rand((), generator=g) < 0.5:
                task.W = task.W * float("nan")
            return task

    rule = hrnn_factory(init_lr_range=(1e-4, 1e-2))
    cfg = MetaTrainConfig(iterations=6, unroll_steps=6, truncation=3, objective="log_ratio", val_every=3)
    res = MetaTrainer(rule, SometimesNaN(), cfg, out_dir=tmp_path, progress=False).train()
    import json
    logs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert res.iterations == 6 and any(r["skipped"] for r in logs)
    assert all(torch.isfinite(p).all() for p in rule.parameters())
