"""Behaviour cloning on demo pairs, DAgger, resume to identical numbers, and the demo store."""
import numpy as np
import pytest
import torch

from learnt.errors import CheckpointError
from learnt.imitation.block_policy import BlockLoss, BlockStackPolicy
from learnt.imitation.demos import Trajectories, collect_blocks, collect_particle, load_or_collect
from learnt.imitation.particle_policies import make_particle_policy
from learnt.imitation.rollout import rollout_blocks
from learnt.imitation.training import ImitationTrainConfig, ImitationTrainer, mse_loss


def _particle_demos(n=40):
    rng = np.random.default_rng(0)
    return collect_particle(rng, rng.integers(0, 4, n), rng.integers(2, 6, n))


def _trainer(tmp_path, iterations, demos):
    torch.manual_seed(0)
    pol = make_particle_policy("lstm", hidden=8)
    cfg = ImitationTrainConfig(iterations=iterations, batch_pairs=4, states_per_pair=4, checkpoint_every=2, log_every=1)
    return ImitationTrainer(pol, demos, mse_loss, cfg, out_dir=tmp_path, progress=False)


def test_resume_reaches_the_same_numbers(tmp_path):
    demos = _particle_demos()
    straight = _trainer(tmp_path / "a", 6, demos)
    straight.train()
    half = _trainer(tmp_path / "b", 6, demos)
    half.train(until=3)
    resumed = _trainer(tmp_path / "b", 6, demos)   # a fresh process would start like this
    resumed.train(resume=True)
    assert resumed.iteration == 6
    for k, v in straight.policy.state_dict().items():
        assert torch.equal(v, resumed.policy.state_dict()[k]), k
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_pairs_never_condition_on_the_imitated_demo():
    demos = _particle_demos()
    tr = _trainer(None, 1, demos)
    for it in range(20):
        tgt, cond, t = tr.pair_indices(it, demos)
        assert np.all(tgt != cond) and np.all(demos.task[tgt] == demos.task[cond])
        assert t.shape == (4, 4) and np.all(t < demos.length[tgt][:, None])
    assert not np.array_equal(tr.pair_indices(0, demos)[0], tr.pair_indices(1, demos)[0])


def test_single_demo_task_is_an_error():
    demos = _particle_demos().select(np.array([0]))
    with pytest.raises(ValueError, match="needs >= 2 per task"):
        _trainer(None, 1, demos)


def test_dagger_aggregates_expert_labelled_rollouts(tmp_path):
    rng = np.random.default_rng(0)
    demos = collect_blocks(rng, ["ab", "ab", "ba", "ba"], [0, 0, 1, 1], noise=0.0)
    layouts = ["ab", "ba"]
    calls = []

    def collect(policy, k, r):
        calls.append(k)
        return rollout_blocks(policy, demos.select(np.array([0, 2])), layouts, r, label=True).visited

    torch.manual_seed(0)
    cfg = ImitationTrainConfig(iterations=6, batch_pairs=2, states_per_pair=4, dagger_rounds=2, checkpoint_every=100)
    tr = ImitationTrainer(BlockStackPolicy(hidden=8, manipulation=(16,)), demos, BlockLoss(1.0), cfg,
                          out_dir=tmp_path, progress=False, collect=collect)
    tr.train()
    assert calls == [0, 1] and len(tr.pool) == 4 + 2 * 2
    assert [r["iteration"] for r in tr.history if "dagger_round" in r] == [2, 4]
    # the DAgger pool survives a checkpoint round trip
    again = ImitationTrainer(BlockStackPolicy(hidden=8, manipulation=(16,)), demos, BlockLoss(1.0), cfg,
                             out_dir=tmp_path, progress=False, collect=collect)
    again.load_checkpoint()
    assert len(again.pool) == 8 and np.array_equal(again.pool.obs, tr.pool.obs)


def test_foreign_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "something-else"}, path)
    tr = _trainer(tmp_path, 1, _particle_demos())
    with pytest.raises(CheckpointError, match="not a learnt.imitation/1 checkpoint"):
        tr.load_checkpoint(path)


def test_demo_store_is_written_once_and_reused(tmp_path):
    path = tmp_path / "demos.npz"
    calls = []

    def collect():
        calls.append(1)
        return _particle_demos(6)

    a = load_or_collect(path, {"n": 6}, collect)
    b = load_or_collect(path, {"n": 6}, collect)
    assert len(calls) == 1 and isinstance(b, Trajectories)
    assert all(np.array_equal(x, y) for x, y in zip(a.arrays().values(), b.arrays().values()))
    load_or_collect(path, {"n": 7}, collect)   # other settings: collected again
    assert len(calls) == 2 and not list(tmp_path.glob(".*.tmp"))


def test_noisy_expert_demos_still_succeed():
    rng = np.random.default_rng(0)
    d = collect_blocks(rng, ["abc", "ab cd"], [0, 1], noise=0.1)
    assert d.success.all() and d.obs.shape[2] == 32
    assert tuple(d.picks[0, 0]) == (1, 0) and tuple(d.picks[1, 0]) == (1, 0)   # first move: b onto a
    p = collect_particle(rng, np.array([3] * 20), np.full(20, 10), noise=0.1)
    assert p.success.mean() >= 0.95
