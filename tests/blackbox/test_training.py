import json

import pytest
import torch

from learnt.blackbox import BlackBoxTrainConfig, LSTMProposer, train_proposer
from learnt.blackbox.training import GPPrior, GPQueryFamily, QuerySequenceBPTT, validation_functions, best_observed_score
from learnt.errors import ConfigError

TINY = dict(functions_per_dim=4, dims=(1, 2), horizon_start=4, horizon_end=8, val_every=3, checkpoint_every=3,
            val_functions_per_dim=4, val_horizons=(4, 8), prior=GPPrior(n_features=32))


def test_curriculum_is_linear_from_start_to_end():
    cfg = BlackBoxTrainConfig(iterations=100, horizon_start=10, horizon_end=100, curriculum_fraction=0.5)
    assert [cfg.horizon(i) for i in (0, 25, 50, 99)] == [10, 55, 100, 100]


def _val_loss(m, est, val, steps=8):
    from learnt.blackbox.proposer import Rollout
    from learnt.blackbox.training import QueryTask
    task = QueryTask(val)
    run = m.rollout(task, task.dims, steps)
    total = 0.0
    for (d, fns), x, y in zip(task.groups, torch.split(run.x, task.sizes), torch.split(run.y, task.sizes)):
        total += float(est.group_loss(Rollout(x[..., :d], y), fns))
    return total / len(task.groups)


@pytest.mark.parametrize("loss", ["sum", "oi", "ei"])
def test_the_estimator_descends_each_loss_on_a_fixed_task(loss):
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=2, hidden=16)
    task = GPQueryFamily((1, 2), 4, GPPrior(n_features=32)).sample(torch.Generator().manual_seed(0))
    est, opt = QuerySequenceBPTT(loss), torch.optim.Adam(m.parameters(), 1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        _, _, value, curve = est.estimate(m, task, {}, {}, None, 8)
        assert curve.shape == (9, 1)
        losses.append(value)
        opt.step()
    # L_OI and L_EI are small (best value / T, expected improvement): ask for a clear relative drop
    assert min(losses[-5:]) < losses[0] - 0.03 * abs(losses[0]), (losses[0], losses[-5:])


def test_meta_training_on_the_family_improves_held_out_functions():
    torch.manual_seed(0)
    cfg = BlackBoxTrainConfig(iterations=150, loss="sum", meta_lr=1e-2, val_every=150, parallel=(1, 2),
                              **{k: v for k, v in TINY.items() if k != "val_every"})
    m = LSTMProposer(max_dim=2, hidden=16)
    val, est = validation_functions(cfg, 0, "test"), QuerySequenceBPTT("sum")
    with torch.no_grad():
        before = _val_loss(m, est, val)
    train_proposer(m, cfg, progress=False)
    with torch.no_grad():
        after = _val_loss(m, est, val)
    assert after < before - 0.1, (before, after)


def test_resume_gives_identical_weights(tmp_path):
    cfg = BlackBoxTrainConfig(iterations=6, **TINY)
    val = validation_functions(cfg, 0)
    score = lambda m: best_observed_score(m, val, (4, 8))  # noqa: E731
    torch.manual_seed(0)
    full = LSTMProposer(max_dim=2, hidden=8)
    init = {k: v.clone() for k, v in full.state_dict().items()}
    train_proposer(full, cfg, out_dir=tmp_path / "a", progress=False, validate=score)

    calls = []

    def crash_at_second_validation(m):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return score(m)
    half = LSTMProposer(max_dim=2, hidden=8)
    half.load_state_dict(init)
    with pytest.raises(KeyboardInterrupt):
        train_proposer(half, cfg, out_dir=tmp_path / "b", progress=False, validate=crash_at_second_validation)
    resumed = LSTMProposer(max_dim=2, hidden=8)
    train_proposer(resumed, cfg, out_dir=tmp_path / "b", progress=False, resume=True, validate=score)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)
    lines = [json.loads(ln) for ln in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == list(range(6))


def test_config_errors():
    with pytest.raises(ConfigError, match="loss='nope'"):
        BlackBoxTrainConfig(loss="nope")
    with pytest.raises(ConfigError, match="horizon_start=20"):
        BlackBoxTrainConfig(horizon_start=20, horizon_end=10)
    with pytest.raises(ConfigError, match="max_dim"):
        train_proposer(LSTMProposer(max_dim=1), BlackBoxTrainConfig(iterations=1, **TINY), progress=False)
    with pytest.raises(ConfigError, match="parallel"):
        QuerySequenceBPTT("oi", parallel=(0,))
