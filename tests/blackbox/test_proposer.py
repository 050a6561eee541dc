import pytest
import torch

from learnt.blackbox import GPFunctionFamily, LSTMProposer, QueryTask, load_proposer
from learnt.errors import CheckpointError, ConfigError
from learnt.learned import save_rule


def _fns(dim, k=3, seed=0):
    return GPFunctionFamily(dim=dim, n_functions=k, n_features=64).sample(torch.Generator().manual_seed(seed))


def test_rollout_shapes_range_and_results():
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=4, hidden=8)
    fns = _fns(3)
    run = m.rollout(fns, 3, 7)
    assert run.x.shape == (3, 7, 3) and run.y.shape == (3, 7)
    assert float(run.x.detach().min()) > 0 and float(run.x.detach().max()) < 1
    torch.testing.assert_close(run.y, fns(run.x))
    best = run.best_so_far()
    assert torch.all(best[:, 1:] <= best[:, :-1])


def test_gradients_reach_phi_through_queries():
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=2, hidden=8)
    m.rollout(_fns(2), 2, 5).y.sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in m.parameters())


def test_mixed_dimension_batch_equals_separate_runs():
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=3, hidden=8)
    a, b = _fns(1, 2, 1), _fns(3, 2, 2)
    task = QueryTask([(1, a), (3, b)])
    mixed = m.rollout(task, task.dims, 6)
    ra, rb = m.rollout(a, 1, 6), m.rollout(b, 3, 6)
    torch.testing.assert_close(mixed.y, torch.cat([ra.y, rb.y]))
    torch.testing.assert_close(mixed.x[:2, :, :1], ra.x)
    assert float(mixed.x[:2, :, 1:].detach().abs().max()) == 0.0  # padding stays zero


def test_parallel_one_step_lag_changes_proposals_but_first_query_is_shared():
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=2, hidden=8)
    fns = _fns(2)
    seq, par = m.rollout(fns, 2, 6, parallel=1), m.rollout(fns, 2, 6, parallel=3)
    torch.testing.assert_close(seq.x[:, 0], par.x[:, 0])
    assert not torch.allclose(seq.x[:, 2], par.x[:, 2])


def test_bad_dims_are_clear_errors():
    m = LSTMProposer(max_dim=2, hidden=4)
    with pytest.raises(ConfigError, match="dim=3"):
        m.rollout(_fns(3), 3, 2)
    with pytest.raises(ConfigError, match="hidden"):
        LSTMProposer(hidden=0)


def test_save_load_round_trip_and_foreign_file(tmp_path):
    torch.manual_seed(0)
    m = LSTMProposer(max_dim=3, hidden=8)
    save_rule(m, tmp_path / "p.pt", {"horizon": 50})
    m2 = load_proposer(tmp_path / "p.pt")
    assert m2.meta["horizon"] == 50
    fns = _fns(2)
    torch.testing.assert_close(m.rollout(fns, 2, 4).x, m2.rollout(fns, 2, 4).x)
    from learnt.learned import L2LOptimizer
    save_rule(L2LOptimizer(), tmp_path / "l2l.pt")
    with pytest.raises(CheckpointError, match="expected one of \\['bbo-acq', 'bbo-lstm', 'bbo-set'\\]"):
        load_proposer(tmp_path / "l2l.pt")
