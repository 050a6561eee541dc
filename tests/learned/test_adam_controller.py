"""The default learned optimizer's architecture (AdamController): contract, bounds, apply mode."""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

from learnt.errors import CheckpointError
from learnt.functional import adam
from learnt.learned import AdamController, load_rule, save_rule
from learnt.meta import unroll
from tests.conftest import assert_tree_equal, clone_tree, quadratic_task

SHAPES = {"w": (4, 3), "b": (3,), "s": (), "conv": (2, 1, 3, 3)}


def _inputs(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    params = {k: torch.randn(s, generator=g, dtype=dtype) for k, s in SHAPES.items()}
    grads = {k: torch.randn(s, generator=g, dtype=dtype) * 10.0 ** float(torch.randint(-5, 2, (), generator=g))
             for k, s in SHAPES.items()}
    return params, grads


def _random_controller(seed=0, **kw):
    torch.manual_seed(seed)
    rule = AdamController(**kw)
    nn.init.normal_(rule.out.weight, 0.0, 0.5)        # a non-trivial controller
    return rule


def test_without_control_it_is_adam_times_the_schedule():
    """cos_gain=0 and the zero-initialised MLP: exactly Adam(base_lr) with the schedule."""
    rule = AdamController(base_lr=3e-3, cos_gain=0.0, decay_start=0.5, short_decay_start=0.5, total_steps=10)
    ref = adam(3e-3)
    params, _ = _inputs()
    s_rule, s_ref = rule.init(params), ref.init(params)
    for t in range(10):
        _, grads = _inputs(seed=t + 1)
        u, s_rule = rule.update(grads, s_rule, params)
        v, s_ref = ref.update(grads, s_ref, params)
        sched = float(rule.schedule(torch.tensor(t / 10)).detach())
        expect = 1.0 if t / 10 <= 0.5 else 0.5 * (1 + math.cos(math.pi * (t / 10 - 0.5) / 0.5))
        assert sched == pytest.approx(max(expect, 0.02), rel=0.02, abs=1e-3)
        for k in params:
            clipped = v[k].clamp(-5 * 3e-3, 5 * 3e-3)
            torch.testing.assert_close(u[k], clipped * sched, atol=1e-9, rtol=1e-5)


def test_short_runs_decay_later_long_runs_follow_the_knots():
    rule = AdamController()          # knots decay from 20%; runs of <= 250 steps from 70%
    p = torch.linspace(0, 1, 101)
    with torch.no_grad():
        long = rule.schedule(rule.schedule_progress(p, torch.tensor(3000.0)))
        short = rule.schedule(rule.schedule_progress(p, torch.tensor(100.0)))
        mid = rule.schedule(rule.schedule_progress(p, torch.tensor(500.0)))
    torch.testing.assert_close(long, rule.schedule(p).detach())         # >= long_horizon: the knots as they are
    first_below = lambda s: float(p[(s < 0.999).nonzero()[0, 0]])      # noqa: E731
    assert first_below(long) == pytest.approx(0.21, abs=0.011)
    assert first_below(short) == pytest.approx(0.71, abs=0.011)
    assert 0.3 < first_below(mid) < 0.6
    for s in (long, short, mid):                                       # same start and end, monotone decay
        assert float(s[0]) == pytest.approx(1.0) and float(s[-1]) == pytest.approx(0.02, rel=1e-3)
        assert bool((s[1:] <= s[:-1] + 1e-6).all())
    with pytest.raises(ValueError, match="short_decay_start=1.0"):
        AdamController(short_decay_start=1.0)
    with pytest.raises(ValueError, match="short_horizon=2000"):
        AdamController(short_horizon=2000)


def test_steps_stay_within_the_bounds_whatever_the_controller_says():
    rule = AdamController(base_lr=1e-3, max_mult=10.0, clip=2.0)
    with torch.no_grad():
        rule.out.bias.fill_(50.0)                       # saturate: always grow, max offset
    params, grads = _inputs()
    state = rule.init(params)
    for _ in range(200):
        u, state = rule.update(grads, state, params)
    for k in params:
        assert float(u[k].detach().abs().max()) <= 1e-3 * 10.0 * 2.0 * (1 + 1e-5)
        assert float(state[k]["log_mult"].detach().max()) <= math.log(10.0) + 1e-6


def test_stacked_problems_equal_separate_runs():
    rule = _random_controller()
    params, grads = _inputs()
    K = 3
    stacked_p = {k: torch.stack([v * (i + 1) for i in range(K)]) for k, v in params.items()}
    stacked_g = {k: torch.stack([v * (-1) ** i for i in range(K)]) for k, v in grads.items()}
    st = rule.init(stacked_p, K, total_steps=20)
    singles = [rule.init({k: v[i] for k, v in stacked_p.items()}, total_steps=20) for i in range(K)]
    for _ in range(3):
        u, st = rule.update(stacked_g, st, stacked_p)
        for i in range(K):
            ui, singles[i] = rule.update({k: v[i] for k, v in stacked_g.items()}, singles[i],
                                         {k: v[i] for k, v in stacked_p.items()})
            for k in params:
                torch.testing.assert_close(u[k][i], ui[k], atol=1e-8, rtol=1e-5)


def test_apply_mode_matches_the_pure_update():
    rule = _random_controller()
    params, _ = _inputs()
    s1, s2 = rule.init(params, total_steps=30), None
    s2 = copy.deepcopy(s1)
    p1, p2 = clone_tree(params), clone_tree(params)
    for t in range(30):
        _, grads = _inputs(seed=t + 7)
        u1, s1 = rule.update(grads, s1, p1)
        p1 = {k: p1[k] + u1[k] for k in p1}
        u2 = rule.update_(grads, s2, p2)
        for k in p2:
            p2[k].add_(u2[k])
    moved = max(float((p1[k] - params[k]).abs().max()) for k in params)
    assert moved > 1e-3
    for k in params:
        torch.testing.assert_close(p2[k], p1[k], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(s2[k]["log_mult"], s1[k]["log_mult"], atol=1e-6, rtol=1e-5)


def test_contract_no_mutation_determinism_float64_and_lr():
    rule = _random_controller()
    params, grads = _inputs()
    state = rule.init(params)
    before = (clone_tree(grads), clone_tree(state), clone_tree(params))
    u1, _ = rule.update(grads, state, params)
    assert_tree_equal(grads, before[0]), assert_tree_equal(state, before[1]), assert_tree_equal(params, before[2])
    u2, _ = rule.update(grads, rule.init(params), params)
    assert_tree_equal(u1, u2)
    u3, _ = rule.update(grads, rule.init(params), params, lr=2.5)
    for k in params:
        assert u1[k].shape == params[k].shape
        torch.testing.assert_close(u3[k], 2.5 * u1[k])
    p64, g64 = ({k: v.double() for k, v in t.items()} for t in (params, grads))
    u64, _ = rule.update(g64, rule.init(p64), p64)
    for k in params:
        assert u64[k].dtype == torch.float64
        torch.testing.assert_close(u64[k].float(), u1[k], atol=1e-7, rtol=1e-4)
    assert rule.update({}, rule.init({}), {})[0] == {}


def test_meta_gradients_reach_the_controller():
    rule = _random_controller()
    task = quadratic_task(k=2, d=3, dtype=torch.float32)
    params = task.init_params(torch.Generator().manual_seed(0))
    res = unroll(task, rule, params, rule.init(params, 2, total_steps=5), task.batches(), 5, differentiable=True)
    res.losses[1:].sum().backward()
    for name in ("inp.weight", "out.weight", "knots", "cos_gain"):
        p = dict(rule.named_parameters())[name]
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_save_load_round_trip_and_bad_config(tmp_path):
    rule = _random_controller(base_lr=2e-3)
    save_rule(rule, tmp_path / "r.pt")
    back = load_rule(tmp_path / "r.pt", expected_kind="adam-controller")
    params, grads = _inputs()
    assert_tree_equal(rule.update(grads, rule.init(params), params)[0], back.update(grads, back.init(params), params)[0])
    with pytest.raises(ValueError, match="base_lr"):
        AdamController(base_lr=0.0)
    with pytest.raises(ValueError, match="beta2"):
        AdamController(beta2=1.0)


def test_files_and_checkpoints_from_before_the_horizon_warp_keep_their_behaviour(tmp_path):
    """Configs without the warp's keys load as they ran then: one decay start at every horizon."""
    import json

    from learnt.meta import MetaTrainConfig, MetaTrainer
    from learnt.tasks import QuadraticFamily

    old = AdamController(decay_start=0.3)
    save_rule(old, tmp_path / "old.pt", {})
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    for k in ("short_decay_start", "short_horizon", "long_horizon"):
        del payload["config"][k]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_rule(tmp_path / "old.pt")
    assert loaded.short_decay_start == 0.3       # no warp, as the file's rule ran

    cfg = MetaTrainConfig(iterations=2, unroll_steps=4, truncation=2, checkpoint_every=1)
    fam = QuadraticFamily(dim=3, n_problems=2)
    MetaTrainer(AdamController(decay_start=0.7), fam, cfg, seed=0, out_dir=tmp_path / "run", progress=False).train()
    ck_path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(ck_path, weights_only=True)
    ident = json.loads(ck["identity"])
    for k in ("short_decay_start", "short_horizon", "long_horizon"):
        del ident["rule_config"][k]              # as the checkpoint was written before the warp
    ck["identity"] = json.dumps(ident, sort_keys=True)
    torch.save(ck, ck_path)
    more = dataclasses.replace(cfg, iterations=3)
    MetaTrainer(AdamController(decay_start=0.7), fam, more, seed=0, out_dir=tmp_path / "run", progress=False).train(resume=True)
    with pytest.raises(CheckpointError, match="rule_config.short_decay_start: 0.7 in the checkpoint, 0.2 here"):
        MetaTrainer(AdamController(decay_start=0.7, short_decay_start=0.2), fam, more, seed=0,
                    out_dir=tmp_path / "run", progress=False).train(resume=True)
