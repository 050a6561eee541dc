"""MetaTrainer: determinism, exact resume, model selection, bad checkpoints, NaN tolerance."""
from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
import torch

from learnt.errors import CheckpointError
from learnt.learned import L2LOptimizer, load_rule
from learnt.meta import MetaTrainConfig, MetaTrainer, final_mean, run_on_split
from learnt.tasks import QuadraticFamily, QuadraticTask

CFG = MetaTrainConfig(iterations=6, unroll_steps=6, truncation=3, val_every=2, checkpoint_every=2,
                      meta_lr=1e-2)
FAMILY = QuadraticFamily(dim=5, n_problems=4)


def _rule(hidden_size=8, seed=0):
    torch.manual_seed(seed)
    return L2LOptimizer(hidden_size=hidden_size)


def _validate(rule):
    return final_mean(run_on_split(rule, FAMILY, "val", n_tasks=1, steps=5, seed=0))


def _trainer(cfg=CFG, out_dir=None, rule=None, validate=_validate, family=FAMILY):
    return MetaTrainer(rule if rule is not None else _rule(), family, cfg, seed=3,
                       validate=validate, out_dir=out_dir, progress=False)


def _assert_state_equal(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_gives_identical_parameters():
    t1, t2 = _trainer(), _trainer()
    init = copy.deepcopy(t1.rule.state_dict())
    r1, r2 = t1.train(), t2.train()
    assert r1.iterations == r2.iterations == 6
    _assert_state_equal(t1.rule.state_dict(), t2.rule.state_dict())
    _assert_state_equal(r1.best_state, r2.best_state)
    # training really changed phi
    assert any(not torch.equal(init[k], v) for k, v in t1.rule.state_dict().items())


def test_resume_reproduces_uninterrupted_run(tmp_path):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    ta = _trainer(out_dir=dir_a)
    ra = ta.train()

    _trainer(cfg=replace(CFG, iterations=4), out_dir=dir_b).train()
    # simulate a crash after logging iteration 4 but before its checkpoint
    with open(dir_b / "log.jsonl", "a") as f:
        f.write(json.dumps({"iteration": 4, "meta_loss": 123.0, "grad_norm": 0.0, "skipped": 0}) + "\n")
    tb = _trainer(out_dir=dir_b, rule=_rule(seed=99))  # fresh weights: all must come from the checkpoint
    rb = tb.train(resume=True)

    _assert_state_equal(ta.rule.state_dict(), tb.rule.state_dict())
    _assert_state_equal(ra.best_state, rb.best_state)
    assert (ra.best_iteration, ra.best_score, ra.history) == (rb.best_iteration, rb.best_score, rb.history)
    lines = [json.loads(ln) for ln in (dir_b / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == list(range(6))
    log_a = [json.loads(ln) for ln in (dir_a / "log.jsonl").read_text().splitlines()]
    assert [r["meta_loss"] for r in lines] == [r["meta_loss"] for r in log_a]


def test_validate_selects_best_iteration(tmp_path):
    scores = iter([3.0, 1.0, 2.0])  # calls at iterations 2, 4, 6
    snapshots = {}

    def validate(rule):
        snapshots[len(snapshots)] = copy.deepcopy(rule.state_dict())
        return next(scores)

    t = _trainer(out_dir=tmp_path, validate=validate)
    res = t.train()
    assert [h["iteration"] for h in res.history] == [2, 4, 6]
    vals = [h["val"] for h in res.history]
    assert vals == [3.0, 1.0, 2.0]
    best = min(range(len(vals)), key=vals.__getitem__)
    assert res.best_iteration == res.history[best]["iteration"] == 4
    assert res.best_score == 1.0
    _assert_state_equal(res.best_state, snapshots[1])
    # the final weights are not the selected ones, and best.pt holds the selected ones
    assert any(not torch.equal(snapshots[1][k], v) for k, v in t.rule.state_dict().items())
    loaded = load_rule(tmp_path / "best.pt", expected_kind="l2l-lstm")
    assert loaded.config() == t.rule.config()
    _assert_state_equal(loaded.state_dict(), snapshots[1])


def test_validate_start_lets_the_starting_phi_win_the_selection(tmp_path):
    scores = iter([0.5, 3.0, 1.0, 2.0])  # the start, then iterations 2, 4, 6
    rule = _rule()
    start = copy.deepcopy(rule.state_dict())
    t = MetaTrainer(rule, FAMILY, CFG, seed=0, validate=lambda r: next(scores), out_dir=tmp_path,
                    progress=False, validate_start=True)
    res = t.train()
    assert [h["iteration"] for h in res.history] == [0, 2, 4, 6]
    assert (res.best_iteration, res.best_score) == (0, 0.5)
    _assert_state_equal(res.best_state, start)
    _assert_state_equal(load_rule(tmp_path / "best.pt", expected_kind="l2l-lstm").state_dict(), start)
    assert any(not torch.equal(start[k], v) for k, v in t.rule.state_dict().items())   # it did train


def test_best_pt_loads_without_validate(tmp_path):
    t = _trainer(out_dir=tmp_path, validate=None)
    res = t.train()
    assert res.best_iteration == 6
    loaded = load_rule(tmp_path / "best.pt")
    _assert_state_equal(loaded.state_dict(), t.rule.state_dict())


def test_resume_with_other_architecture_raises(tmp_path):
    _trainer(cfg=replace(CFG, iterations=2), out_dir=tmp_path).train()
    other = _trainer(out_dir=tmp_path, rule=_rule(hidden_size=5))
    with pytest.raises(CheckpointError, match="hidden_size"):
        other.train(resume=True)


def test_resume_without_checkpoint_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        _trainer(out_dir=tmp_path / "empty").train(resume=True)
    with pytest.raises(CheckpointError):
        _trainer(out_dir=None).train(resume=True)


def test_resume_from_corrupt_checkpoint_raises(tmp_path):
    _trainer(cfg=replace(CFG, iterations=2), out_dir=tmp_path).train()
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        _trainer(out_dir=tmp_path).train(resume=True)


class _NaNOnceFamily:
    """QuadraticFamily whose ``bad_call``-th sampled task has a NaN in one problem's W."""

    def __init__(self, base: QuadraticFamily, bad_call: int) -> None:
        self.base, self.bad_call, self.calls = base, bad_call, 0

    def sample(self, g, n_problems=None):
        task = self.base.sample(g, n_problems)
        self.calls += 1
        if self.calls - 1 == self.bad_call:
            W = task.W.clone()
            W[1, 2, 3] = float("nan")
            task = QuadraticTask(W, task.y, task.init_std)
        return task


def test_nan_task_is_skipped_without_crashing(tmp_path):
    fam = _NaNOnceFamily(FAMILY, bad_call=2)
    t = _trainer(out_dir=tmp_path, family=fam, validate=None)
    res = t.train()
    assert res.iterations == 6 and fam.calls == 6
    for name, p in t.rule.named_parameters():
        assert torch.isfinite(p).all(), name
    recs = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["skipped"] > 0 for r in recs] == [False, False, True, False, False, False]
    load_rule(tmp_path / "best.pt")


def test_config_validation():
    with pytest.raises(ValueError, match="truncation=0"):
        MetaTrainConfig(truncation=0)
    with pytest.raises(ValueError, match="objective"):
        MetaTrainConfig(objective="nope")


def test_non_finite_hyperparameters_are_rejected():
    import math as _m
    for kw in ({"meta_lr": _m.nan}, {"meta_lr": _m.inf}, {"clip_norm": _m.nan}, {"sigma": _m.nan}):
        with pytest.raises(ValueError):
            MetaTrainConfig(**kw)


def test_task_truncations_follow_the_task_horizon():
    class T:
        horizon = 45
    tr = MetaTrainer(L2LOptimizer(hidden_size=4), QuadraticFamily(n_problems=2),
                     MetaTrainConfig(truncation=20, truncation_sampling="task"), progress=False)
    assert tr.truncation_lengths(0, T()) == [20, 20, 5]
    with pytest.raises(ValueError, match="horizon"):
        tr.truncation_lengths(0, object())


def test_floored_log_ratio_caps_problems_that_reach_zero():
    import torch as _t
    from learnt.meta.objectives import floored_log_ratio, mean_log_ratio
    losses = _t.tensor([[1.0, 1.0], [1e-9, 0.5]])
    assert float(mean_log_ratio(losses)) < -10
    assert float(floored_log_ratio(losses)) == pytest.approx((_t.log(_t.tensor(1e-4)) + _t.log(_t.tensor(0.5))).item() / 2)


def test_resume_survives_a_torn_last_log_line(tmp_path):
    cfg = MetaTrainConfig(iterations=4, unroll_steps=4, truncation=2, checkpoint_every=2, val_every=2)
    fam = QuadraticFamily(dim=3, n_problems=2)
    torch.manual_seed(0)
    MetaTrainer(L2LOptimizer(hidden_size=4), fam, replace(cfg, iterations=3), out_dir=tmp_path, progress=False).train()
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"iteration": 3, "meta_lo')          # the process died mid-write
    torch.manual_seed(0)
    MetaTrainer(L2LOptimizer(hidden_size=4), fam, cfg, out_dir=tmp_path, progress=False).train(resume=True)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["iteration"] for ln in lines] == [0, 1, 2, 3]
