"""Demonstration-conditioned policies: shapes, masking, temporal dropout, and a tiny one-shot learning check."""
import numpy as np
import pytest
import torch

from learnt.imitation import particle as P
from learnt.imitation.block_policy import (BlockLoss, BlockStackPolicy, block_command, final_frames, snapshot_frames,
                                          temporal_dropout_frames)
from learnt.imitation.demos import collect_blocks, collect_particle
from learnt.imitation.particle_policies import ARCHITECTURES, make_particle_policy
from learnt.imitation.rollout import rollout_blocks, rollout_particle
from learnt.imitation.training import ImitationTrainConfig, ImitationTrainer, mse_loss


def _tensors(tr):
    obs = torch.as_tensor(tr.obs)
    tmask = torch.arange(obs.shape[1])[None] < torch.as_tensor(tr.length)[:, None]
    return obs, tmask, torch.as_tensor(tr.entities)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_particle_policy_shapes_and_padding(arch):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    demos = collect_particle(rng, np.array([0, 1, 2]), np.array([2, 5, 10]))
    pol = make_particle_policy(arch, hidden=16)
    obs, tmask, ents = _tensors(demos)
    ctx = pol.encode_demo(obs, tmask, ents)
    out = pol.act(ctx, obs[:, :7], ents)
    assert out.shape == (3, 7, 2) and torch.isfinite(out).all()
    # frames after the valid length do not change the result
    short = tmask.clone()
    short[:, 20:] = False
    junk = obs.clone()
    junk[:, 20:] = 123.0
    a = pol.act(pol.encode_demo(obs, short, ents), obs[:, :3], ents)
    b = pol.act(pol.encode_demo(junk, short, ents), obs[:, :3], ents)
    assert torch.allclose(a, b, atol=1e-6)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="architecture 'gru'"):
        make_particle_policy("gru")


def test_temporal_dropout_keeps_about_five_percent_in_time_order():
    tmask = torch.arange(200)[None] < torch.tensor([200, 100, 10])[:, None]
    g = torch.Generator().manual_seed(0)
    idx, fmask = temporal_dropout_frames(tmask, 0.95, g, train=True)
    kept = fmask.sum(1)
    assert 2 <= kept[0] <= 25 and 1 <= kept[2] <= 3
    for i in range(3):
        k = idx[i, : kept[i]]
        assert torch.all(k[1:] > k[:-1]) and torch.all(tmask[i, k])
    idx, fmask = temporal_dropout_frames(tmask, 0.95, None, train=False)
    assert fmask.sum(1).tolist() == [10, 5, 1]
    assert idx[0, 9] == 199 and idx[1, 4] == 99 and idx[2, 0] == 9  # evenly spaced, ending at the last frame


def test_snapshots_are_the_frames_after_each_release_and_the_last():
    """Stage ends of the expert's demos: the first frame after the gripper lets go of a block
    (each one is a new correct placement), plus the demo's last frame; the final-state variant
    keeps the last frame only, for demos of different lengths in one batch."""
    from learnt.imitation.blockworld import layout_stages
    layouts = ["abc d", "ab", "a b c"]
    demos = collect_blocks(np.random.default_rng(3), layouts, [0, 1, 2], noise=0.0)
    obs, tmask, _ = _tensors(demos)
    idx, fmask = snapshot_frames(obs, tmask)
    for i, lay in enumerate(layouts):
        k = idx[i, fmask[i]]
        holding = obs[i, :, -1] > 0.5
        assert torch.all(k[1:] > k[:-1]) and int(k[-1]) == demos.length[i] - 1
        assert all(holding[int(t) - 1] and not holding[int(t)] for t in k[:-1])
        assert int(fmask[i].sum()) in (layout_stages(lay), layout_stages(lay) + 1)   # + the last, unless it is a release
    last, m = final_frames(tmask)
    assert last.squeeze(1).tolist() == (demos.length - 1).tolist() and m.all()


@pytest.mark.parametrize("frames", ["final", "snapshots"])
def test_conditioning_variants_see_only_their_frames(frames):
    """The final-state and snapshot policies read only their frames: changing every other demo
    frame (but the flag that marks stage ends) changes nothing, in training and at test time; a bad name is a clear error."""
    demos = collect_blocks(np.random.default_rng(4), ["abc d", "ab"], [0, 1], noise=0.0)
    obs, tmask, ents = _tensors(demos)
    torch.manual_seed(0)
    pol = BlockStackPolicy(hidden=16, manipulation=(32,), demo_frames=frames)
    idx, fmask = (final_frames(tmask) if frames == "final" else snapshot_frames(obs, tmask))
    seen = torch.zeros(tmask.shape, dtype=torch.bool)
    seen[torch.arange(2)[:, None].expand_as(idx)[fmask], idx[fmask]] = True
    noise = torch.randn_like(obs)
    noise[..., -1] = 0                        # the holding flag (it marks the stage ends) stays
    noisy = torch.where(seen[..., None], obs, obs + noise)
    assert not torch.equal(noisy, obs)
    for train in (True, False):
        pol.train(train)
        a = pol.act(pol.encode_demo(obs, tmask, ents), obs[:, :6], ents)
        b = pol.act(pol.encode_demo(noisy, tmask, ents), obs[:, :6], ents)
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="demo_frames='middle'"):
        BlockStackPolicy(hidden=16, demo_frames="middle")


def test_block_policy_shapes_and_block_masking():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    demos = collect_blocks(rng, ["ab", "ab c"], [0, 1], noise=0.0)
    pol = BlockStackPolicy(hidden=16, manipulation=(32, 32)).eval()
    obs, tmask, ents = _tensors(demos)
    ctx = pol.encode_demo(obs, tmask, ents)
    out, logits = pol.act(ctx, obs[:, :5], ents, with_picks=True)
    assert out.shape == (2, 5, 4) and logits.shape == (2, 5, 10, 2)
    assert torch.all(torch.softmax(logits, -2)[0, :, 2:] < 1e-6)  # padded blocks are never picked
    cmd = block_command(out)
    assert torch.all(cmd.abs() <= 1) and set(cmd[..., 3].unique().tolist()) <= {-1.0, 1.0}
    loss = BlockLoss(1.0)(pol, ctx, obs[:, :5], ents, torch.as_tensor(demos.act[:, :5]),
                          torch.as_tensor(demos.picks[:, :5].astype(np.int64)))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in pol.manipulation.parameters())


@pytest.mark.parametrize("train", [False, True])
def test_packed_demo_path_matches_the_explicit_one(monkeypatch, train):
    """Long demos (temporal dropout off) are embedded frame-packed with fused attention over
    time: the demo embedding of every valid frame, the actions and the gradients equal the
    explicit path's to float rounding, for demos of different lengths in one batch."""
    import learnt.imitation.block_policy as BP
    rng = np.random.default_rng(2)
    demos = collect_blocks(rng, ["abc d", "ab", "a b c"], [0, 1, 2], noise=0.1)
    obs, tmask, ents = _tensors(demos)
    assert obs.shape[1] > BP.PACKED_MIN_FRAMES and len(set(demos.length.tolist())) == 3

    def run(min_frames):
        monkeypatch.setattr(BP, "PACKED_MIN_FRAMES", min_frames)
        torch.manual_seed(0)
        pol = BlockStackPolicy(hidden=16, manipulation=(32,), dropout=0.0, hard_picks=True).train(train)
        (h, fmask) = pol.encode_demo(obs, tmask, ents, generator=torch.Generator().manual_seed(5))
        out = pol.act((h, fmask), obs[:, :7], ents)
        out.square().sum().backward()
        return h[fmask], out, [p.grad for p in pol.parameters() if p.grad is not None]

    h1, out1, g1 = run(10**6)            # explicit
    h2, out2, g2 = run(0)                # packed
    assert torch.allclose(h1, h2, atol=1e-5) and torch.allclose(out1, out2, atol=1e-5)
    assert len(g1) == len(g2) > 10 and all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(g1, g2))


def test_hard_picks_read_the_exact_block_positions():
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    demos = collect_blocks(rng, ["abc"], [0], noise=0.0)
    pol = BlockStackPolicy(hidden=8, manipulation=(16,), hard_picks=True).eval()
    pol.manipulation = torch.nn.Identity()          # expose the context: src (3), dst (3), ...
    obs, tmask, ents = _tensors(demos)
    ctx = pol.encode_demo(obs, tmask, ents)
    forced = torch.tensor([[[2, 0]]])
    out, logits = pol.act(ctx, obs[:, :1], ents, with_picks=True, picks=forced)
    blocks = obs[0, 0, :9].view(3, 3)
    assert torch.allclose(out[0, 0, :3], blocks[2], atol=1e-5) and torch.allclose(out[0, 0, 3:6], blocks[0], atol=1e-5)
    free = pol.act(ctx, obs[:, :1], ents)             # no teacher forcing: the argmax blocks
    am = logits[0, 0].argmax(0)
    assert torch.allclose(free[0, 0, :3], blocks[am[0]], atol=1e-5)


def test_discretised_motion_round_trips_the_expert_labels():
    torch.manual_seed(0)
    pol = BlockStackPolicy(hidden=8, manipulation=(16,), action_bins=21)
    label = torch.tensor([[[1.0, -1.0, 0.23, 1.0], [0.0, 0.5, -0.04, -1.0]]])
    idx = torch.round((label[..., :3] + 1) / 2 * 20).long()
    out = torch.full((1, 2, 64), -10.0)
    for s in range(2):
        for k in range(3):
            out[0, s, k * 21 + idx[0, s, k]] = 10.0
        out[0, s, -1] = 10.0 * label[0, s, 3]
    cmd = pol.command(out)
    assert torch.allclose(cmd, label, atol=0.05)
    from learnt.imitation.block_policy import action_loss
    assert action_loss(out, label, 21).max() < 1e-3 < action_loss(-out, label, 21).min()
    with pytest.raises(ValueError, match="action_bins=1"):
        BlockStackPolicy(action_bins=1)


def test_block_rollout_reports_expert_labels():
    rng = np.random.default_rng(2)
    demos = collect_blocks(rng, ["ab"], [0], noise=0.0)
    res = rollout_blocks(BlockStackPolicy(hidden=8, manipulation=(16,)), demos, ["ab"], rng, label=True, record=True)
    assert res.visited.obs.shape == (1, 45, 32) and res.visited.length[0] == 45
    assert np.all(np.abs(res.visited.act) <= 1) and np.any(res.visited.act != 0)
    assert res.positions[0].shape == (46, 2, 3)


def test_final_state_attention_learns_one_shot_reaching_in_a_few_seconds():
    """Trained on colours 0-7, it follows demos to the held-out colours 8 and 9 among 10 landmarks."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    demos = collect_particle(rng, rng.integers(0, 8, 400), rng.integers(2, 11, 400))
    pol = make_particle_policy("final-attention", hidden=32)
    cfg = ImitationTrainConfig(iterations=250, batch_pairs=16, states_per_pair=16, lr=3e-3, log_every=25)
    hist = ImitationTrainer(pol, demos, mse_loss, cfg, progress=False).train()
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]
    test = np.random.default_rng(1)
    targets, ks = test.integers(8, 10, 100), np.full(100, 10)
    d = collect_particle(test, targets, ks)
    lm, present, start = P.sample_configs(test, ks, targets)
    assert rollout_particle(pol, d, lm, present, start).success.mean() >= 0.7  # 0.81 on this seed; untrained: ~0.1
    # a policy that ignores the demo cannot do that: with a demo of another colour it fails
    other = d.select(np.arange(100))
    other.task = targets  # the rollout scores against the true target ...
    other.obs = collect_particle(test, 17 - targets, ks).obs  # ... but the demo shows the other held-out colour
    assert rollout_particle(pol, other, lm, present, start).success.mean() <= 0.3
