"""Public API: save/load round trip, the shipped glyph meta-learner and adapt() -> classifier."""
import pytest
import torch

import learnt.fewshot as fs
from learnt.errors import CheckpointError
from learnt.fewshot.episodes import EpisodeSampler


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    for m in (fs.MetaLearnerLSTM(fs.ConvLearner(1, 28, 5, 4), steps=2, hidden_size=3),
              fs.MAML(fs.SineMLP(4), "regression", steps=2, inner_lr=0.1, first_order=True),
              fs.ProtoNet(fs.ConvLearner(1, 28, 5, 4)), fs.FineTune(fs.SineMLP(4), "regression", 3, 0.2, "all")):
        fs.save_method(m, tmp_path / "m.pt")
        back = fs.load_method(tmp_path / "m.pt")
        assert type(back) is type(m) and back.config() == m.config()
        for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
            assert torch.equal(a, b), k
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        fs.load_method(tmp_path / "bad.pt")


@pytest.mark.parametrize("k_shot", [1, 5])
def test_shipped_meta_learner_adapts_to_a_user_support_set(k_shot, tiny_glyphs):
    assert f"ravi-glyphs-{k_shot}shot" in fs.pretrained_names()
    learner = fs.load_pretrained(k_shot=k_shot)
    assert learner.n_way == 5 and learner.image_shape == (1, 28, 28)
    ep = EpisodeSampler(tiny_glyphs["test"], 5, 1, 5, split="test", seed=3).episode(0)
    clf = learner.adapt(ep.support_x, ep.support_y)
    logits = clf(ep.query_x)
    assert logits.shape == (25, 5) and torch.isfinite(logits).all()
    assert torch.equal(clf.predict(ep.query_x), logits.argmax(-1))
    assert (clf.predict(ep.query_x) == ep.query_y).float().mean() >= 0.8   # chance is 0.2; the shipped models score ~0.9+
    # the adapted weights are the meta-learner's own inner loop
    theta, _ = learner.method.adapt(ep.support_x, ep.support_y)
    assert torch.allclose(clf.theta, theta.detach())


def test_adapt_rejects_wrong_inputs():
    learner = fs.load_pretrained(k_shot=1)
    with pytest.raises(ValueError, match="expects"):
        learner.adapt(torch.rand(5, 3, 28, 28), torch.arange(5))
    with pytest.raises(ValueError, match="every label 0..4"):
        learner.adapt(torch.rand(4, 1, 28, 28), torch.arange(4))
    with pytest.raises(KeyError, match="no shipped few-shot model"):
        fs.load_pretrained(k_shot=3)
