"""imitation-particle and imitation-blocks end to end on tiny budgets (results.json rows, plots, resume)."""
import dataclasses
import json

import pytest
import torch

from learnt.errors import CheckpointError

from learnt.experiments.base import RunContext, run_experiment
from learnt.experiments.imitation import IMITATION_BLOCKS, IMITATION_PARTICLE, BlocksConfig, ParticleConfig, _block_policy
from learnt.imitation.training import ImitationTrainConfig

TINY_TRAIN = ImitationTrainConfig(iterations=4, batch_pairs=4, states_per_pair=4, checkpoint_every=2, log_every=2)


def _ctx(out):
    return RunContext(out=out, seed=0, budget="quick", progress=False)


def test_imitation_particle(tmp_path):
    snap = dataclasses.replace(TINY_TRAIN, snapshot_every=2)
    cfg = ParticleConfig(demos=60, hidden=8, train=TINY_TRAIN, lstm_hidden=12, lstm_train=snap,
                         landmarks=(2, 10), eval_episodes=5, curve_episodes=4)
    res = run_experiment(IMITATION_PARTICLE, cfg, _ctx(tmp_path))
    # curves of success at 10 landmarks versus updates, from the snapshots (only the LSTM's here)
    assert set(res["curves"]) == {"lstm, train colours", "lstm, held-out colours"}
    for c in res["curves"].values():
        assert c["updates"] == [2, 4] and c["episodes"] == 4 and c["landmarks"] == 10
        assert len(c["mean"]) == 2 and all(0 <= m <= 1 for m in c["mean"])
    assert (tmp_path / "particle_curves.png").stat().st_size > 1000
    rows = res["rows"]
    keys = {(r["method"], r["setting"]) for r in rows}
    assert keys == {(a, f"{s} tasks, {k} landmarks") for a in ("lstm", "lstm-attention", "final-attention")
                    for s in ("train", "held-out") for k in (2, 10)}
    assert len(rows) == 12 and all(r["metric"] == "success" and r["n"] == 5 and 0 <= r["mean"] <= 1 for r in rows)
    paper = {r["method"]: r["paper"] for r in rows if "paper" in r}
    assert paper == {"lstm": 0.505, "lstm-attention": 0.859, "final-attention": 1.0}
    assert (tmp_path / "particle_success.png").stat().st_size > 1000
    assert (tmp_path / "data" / "particle_demos.npz").is_file()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == "imitation-particle" and saved["config"]["train"]["iterations"] == 4
    # running again (fresh, or resuming the finished checkpoints) reuses the demo store: same numbers
    again = run_experiment(IMITATION_PARTICLE, cfg, _ctx(tmp_path))
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in rows] and again["curves"] == res["curves"]
    resumed = run_experiment(IMITATION_PARTICLE, cfg, dataclasses.replace(_ctx(tmp_path), resume=True))
    assert [r["mean"] for r in resumed["rows"]] == [r["mean"] for r in rows]
    # another learning rate: --resume refuses the old checkpoints, a plain run trains anew
    faster = dataclasses.replace(TINY_TRAIN, lr=TINY_TRAIN.lr * 100)
    other = dataclasses.replace(cfg, train=faster, lstm_train=faster)
    with pytest.raises(CheckpointError, match="was written for"):
        run_experiment(IMITATION_PARTICLE, other, dataclasses.replace(_ctx(tmp_path), resume=True))
    run_experiment(IMITATION_PARTICLE, other, _ctx(tmp_path))
    ck = torch.load(tmp_path / "meta" / "lstm" / "checkpoint.pt", weights_only=True)
    assert json.loads(ck["identity"])["config"]["lr"] == TINY_TRAIN.lr * 100
    loaded = IMITATION_PARTICLE.load_trained(other, str(tmp_path))
    assert set(loaded) == {"lstm", "lstm-attention", "final-attention"}
    # the plain LSTM has its own size and budget; the attention rows share hidden / train
    assert cfg.budget("lstm") == (12, snap) and cfg.budget("final-attention") == (8, TINY_TRAIN)
    sizes = {a: {tuple(v.shape) for v in pol.state_dict().values()} for a, pol in loaded.items()}
    assert any(12 in shape for shape in sizes["lstm"]) and not any(12 in shape for shape in sizes["lstm-attention"])


def test_imitation_blocks(tmp_path):
    train = dataclasses.replace(TINY_TRAIN, snapshot_every=2)
    cfg = BlocksConfig(demos_per_task=2, max_stages=1, hidden=8, manipulation=(16,), train=train,
                       dagger_rounds=1, dagger_episodes=3, eval_train_configs=1, eval_test_configs=2,
                       curve_test_configs=1, ablations=("no-temporal-dropout",), ablation_updates=("3",))
    res = run_experiment(IMITATION_BLOCKS, cfg, _ctx(tmp_path))
    rows = res["rows"]
    keys = {(r["method"], r["setting"]) for r in rows}
    methods = ("bc", "dagger", "dagger-no-temporal-dropout")   # the ablation that changes the policy's shape least
    assert keys == {(m, f"{s} tasks, {x}") for m in methods for s in ("train", "held-out")
                    for x in ("all", "1 stages")}
    by = {(r["method"], r["setting"]): r for r in rows}
    assert by[("bc", "held-out tasks, 1 stages")]["n"] == 5 * 2 and by[("bc", "train tasks, 1 stages")]["n"] == 18
    assert by[("dagger", "held-out tasks, 1 stages")]["tasks"] == 5
    assert all(0 <= r["mean"] <= 1 for r in rows)
    assert res["held-out_demo_success"] == 1.0
    log = [json.loads(line) for line in (tmp_path / "meta" / "dagger" / "log.jsonl").read_text().splitlines()]
    assert [r["dagger_round"] for r in log if "dagger_round" in r] == [0]
    # the ablation trains from scratch on the same schedule (DAgger round at 2), stopping at its 3 updates
    assert {r["updates"] for r in rows if r["method"] == methods[2]} == {3}
    assert {r["updates"] for r in rows if r["method"] != methods[2]} == {4}
    log = [json.loads(line) for line in (tmp_path / "meta" / methods[2] / "log.jsonl").read_text().splitlines()]
    assert [r["dagger_round"] for r in log if "dagger_round" in r] == [0]
    loaded = IMITATION_BLOCKS.load_trained(cfg, str(tmp_path))
    assert set(loaded) == set(methods)
    assert loaded["dagger"].dropout == 0.95 and loaded[methods[2]].dropout == 0.0
    # curves from the snapshots: DAgger's share BC's first phase (same weights, same score)
    curves = res["curves"]
    assert set(curves) == set(methods) and all(c["episodes"] == 5 for c in curves.values())
    assert curves["bc"]["updates"] == curves["dagger"]["updates"] == [2, 4] and curves[methods[2]]["updates"] == [2]
    assert curves["dagger"]["mean"][0] == curves["bc"]["mean"][0]
    bc2 = torch.load(tmp_path / "meta" / "bc" / "snapshots" / "000002.pt", weights_only=True)["policy"]
    dg2 = torch.load(tmp_path / "meta" / "dagger" / "snapshots" / "000002.pt", weights_only=True)["policy"]
    assert all(torch.equal(bc2[k], dg2[k]) for k in bc2)
    final = torch.load(tmp_path / "meta" / "dagger" / "snapshots" / "000004.pt", weights_only=True)["policy"]
    assert all(torch.equal(final[k], v) for k, v in loaded["dagger"].state_dict().items())
    for name in ("blocks_success.png", "blocks_episode_strip.png", "blocks_curves.png"):
        assert (tmp_path / name).stat().st_size > 1000
    strip = res["strip"]
    assert len(strip["demo"]) == len(strip["policy"]) == 6 and strip["demo_steps"][0] == 0
    # the snapshot cadence is not part of a run's identity: resuming with another one works
    other = dataclasses.replace(cfg, train=dataclasses.replace(train, snapshot_every=1))
    again = run_experiment(IMITATION_BLOCKS, other, dataclasses.replace(_ctx(tmp_path), resume=True))
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in rows]
    # an ablation budget below its checkpoint cannot be resumed (training does not run backwards)
    with pytest.raises(CheckpointError, match="dagger-no-temporal-dropout: its checkpoint .* is at 3 updates"):
        run_experiment(IMITATION_BLOCKS, dataclasses.replace(cfg, ablation_updates=("no-temporal-dropout=1",)),
                       dataclasses.replace(_ctx(tmp_path), resume=True))


def test_configs_and_bad_values():
    assert IMITATION_PARTICLE.config("full").train.iterations > IMITATION_PARTICLE.config("quick").train.iterations
    assert IMITATION_BLOCKS.config("full").max_stages == 8
    with pytest.raises(ValueError, match="architecture 'gru'"):
        ParticleConfig(architectures=("gru",))
    with pytest.raises(ValueError, match="demos_per_task=1"):
        dataclasses.replace(BlocksConfig(), demos_per_task=1)
    with pytest.raises(ValueError, match="ablation 'no-attention'"):
        BlocksConfig(ablations=("no-attention",))
    with pytest.raises(ValueError, match="curve_episodes=-1"):
        ParticleConfig(curve_episodes=-1)
    with pytest.raises(ValueError, match="snapshot_every=-1"):
        ImitationTrainConfig(snapshot_every=-1)
    full = IMITATION_BLOCKS.config("full")
    assert full.eval_test_configs == 100 and full.methods == ("bc", "dagger", "dagger-no-pick-loss",
                                                                 "dagger-no-temporal-dropout", "dagger-final-state",
                                                                 "dagger-snapshots")
    plain = full.method_config("dagger-no-pick-loss")
    assert (plain.pick_weight, plain.hard_picks, plain.temporal_dropout) == (0.0, False, 0.95)
    no_td = full.method_config("dagger-no-temporal-dropout")
    assert (no_td.pick_weight, no_td.hard_picks, no_td.temporal_dropout) == (1.0, True, 0.0)
    assert full.method_config("dagger") == full and full.demo_frames == "all"
    assert [full.method_config(f"dagger-{m}").demo_frames for m in ("final-state", "snapshots")] == ["final", "snapshots"]
    assert [_block_policy(full, m).demo_frames for m in full.methods] == ["all"] * 4 + ["final", "snapshots"]
    # every ablation runs the whole schedule but temporal dropout off, its first 6,000 updates
    assert [full.updates(m) for m in full.methods] == [12000, 12000, 12000, 6000, 12000, 12000]
    with pytest.raises(ValueError, match="demo_frames='first'"):
        BlocksConfig(demo_frames="first")
    rest = dataclasses.replace(full, ablation_updates=("500", "no-temporal-dropout=700"))
    assert (rest.updates("dagger-no-pick-loss"), rest.updates("dagger-no-temporal-dropout")) == (500, 700)
    for bad in ("-1", "no-attention=5", "no-pick-loss=x"):
        with pytest.raises(ValueError, match=f"ablation_updates item '{bad}': expected NAME=N"):
            BlocksConfig(ablation_updates=(bad,))
    with pytest.raises(ValueError, match="once each"):
        BlocksConfig(ablation_updates=("7", "8"))
