"""The LSTM controller: token sampling, scoring, gradients, and a REINFORCE sanity check."""
import math

import pytest
import torch

from learnt.errors import ConfigError
from learnt.nas import ArchitectureSearch, Controller, SearchConfig, SearchSpace, UniformPolicy, decode_tokens


def test_sampling_is_seeded_and_scoring_replays_it():
    s = SearchSpace(strides=(1, 2))
    c = Controller(s)
    t1, lp1, e1 = c(6, 4, torch.Generator().manual_seed(1))
    t2, lp2, _ = c(6, 4, torch.Generator().manual_seed(1))
    t3, _, _ = c(6, 4, torch.Generator().manual_seed(2))
    assert t1.shape == (6, s.num_tokens(4)) and lp1.shape == e1.shape == (6,)
    assert torch.equal(t1, t2) and torch.equal(lp1, lp2) and not torch.equal(t1, t3)
    _, lp_score, e_score = c(6, 4, tokens=t1)
    torch.testing.assert_close(lp_score, lp1)
    torch.testing.assert_close(e_score, e1)
    for row in t1:  # every sample is a valid architecture of the space
        assert len(decode_tokens(s, row.tolist()).layers) == 4


def test_initial_parameters_come_from_the_seed():
    a, b, c = Controller(SearchSpace(), seed=1), Controller(SearchSpace(), seed=1), Controller(SearchSpace(), seed=2)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert pa.abs().max() <= 0.1 and pa.std() > 0.05  # uniform in [-0.1, 0.1]


def test_a_fresh_controller_is_close_to_uniform_and_gradients_reach_every_parameter():
    s = SearchSpace()
    c = Controller(s, hidden_size=35, num_layers=2)
    assert len(c.cells) == 2 and c.cells[0].hidden_size == 35
    tokens, logp, ent = c(16, 3, torch.Generator().manual_seed(0))
    uniform = 9 * math.log(4) + 3 * math.log(2)  # 9 four-way tokens + 3 coin flips
    assert ent.mean().item() == pytest.approx(uniform, rel=0.01)
    assert logp.mean().item() == pytest.approx(-uniform, rel=0.05)
    (-(logp.sum()) - ent.sum()).backward()
    missing = [n for n, p in c.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    u_tokens, u_lp, u_ent = UniformPolicy(s)(16, 3, torch.Generator().manual_seed(0))
    assert u_tokens.shape == tokens.shape and u_lp[0].item() == pytest.approx(-uniform, rel=1e-6)


def test_bad_controller_arguments():
    with pytest.raises(ConfigError, match="hidden_size=0"):
        Controller(SearchSpace(), hidden_size=0)
    with pytest.raises(ValueError, match="expected \\(2, 7\\)"):
        Controller(SearchSpace())(2, 2, tokens=torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="Generator"):
        Controller(SearchSpace())(2, 2)


def many_filters_and_chained(job):
    """A synthetic child: reward = fraction of layers with the most filters, half of it for
    each layer fed by its predecessor (no training: tests the REINFORCE loop in milliseconds)."""
    layers = job.arch.layers
    wide = sum(layer.nf == 16 for layer in layers) / len(layers)
    chained = sum((i - 1) in layer.inputs for i, layer in enumerate(layers) if i) / max(1, len(layers) - 1)
    return {"acc": {"val": 0.5 * wide + 0.5 * chained}, "params": 0, "seconds": 0.0}


def test_reinforce_learns_a_synthetic_reward_that_random_search_does_not():
    space = SearchSpace()
    cfg = SearchConfig(batches=60, batch_size=8, min_layers=3, max_layers=3, lr=0.02)
    late = {}
    for method in ("controller", "random"):
        s = ArchitectureSearch(space, method, cfg, seed=0, train_fn=many_filters_and_chained)
        hist = s.run()
        assert len(hist) == 480 and s.next_batch == 60
        late[method] = sum(h["reward"] for h in hist[-80:]) / 80
    assert late["random"] == pytest.approx(0.4, abs=0.06)  # 1/4 wide + 1/2 chained, halved
    assert late["controller"] > late["random"] + 0.2, late
