"""Baselines: MAML (first/second order), ProtoNets, nearest neighbour, fine-tuning."""
import pytest
import torch

from learnt.fewshot.baselines import MAML, FineTune, NearestNeighbour, ProtoNet
from learnt.fewshot.episodes import Episode
from learnt.fewshot.learner import ConvLearner, SineMLP, run
from learnt.fewshot.methods import task_loss


def _sine(k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * k, 1, generator=g) * 10 - 5
    y = 3 * torch.sin(x + 1)
    return Episode(x[:k], y[:k], x[k:], y[k:])


def test_maml_inner_loop_is_sgd():
    torch.manual_seed(0)
    m = MAML(SineMLP(8), "regression", steps=1, inner_lr=0.05)
    ep = _sine()
    with torch.no_grad():
        adapted = m.adapt(ep.support_x, ep.support_y)
    params = {k: p.detach().requires_grad_(True) for k, p in m.learner.named_parameters()}
    loss = task_loss("regression", run(m.learner, params, ep.support_x), ep.support_y)
    grads = torch.autograd.grad(loss, list(params.values()))
    for (k, p), g in zip(params.items(), grads):
        assert torch.allclose(adapted[k], p - 0.05 * g, atol=1e-6)


def test_first_order_drops_exactly_the_second_derivatives():
    ep = _sine()

    def meta_grads(first_order):
        torch.manual_seed(0)
        m = MAML(SineMLP(8), "regression", steps=2, inner_lr=0.05, first_order=first_order)
        loss, _ = m.meta_loss(ep)
        loss.backward()
        return m, [p.grad.clone() for p in m.learner.parameters()]

    m, fo = meta_grads(True)
    _, so = meta_grads(False)
    assert any(not torch.allclose(a, b, atol=1e-5) for a, b in zip(fo, so))
    # FOMAML's meta-gradient is the query gradient at the adapted weights
    with torch.no_grad():
        adapted = m.adapt(ep.support_x, ep.support_y)
    adapted = {k: v.requires_grad_(True) for k, v in adapted.items()}
    q = task_loss("regression", run(m.learner, adapted, ep.query_x), ep.query_y)
    expect = torch.autograd.grad(q, list(adapted.values()))
    for a, b in zip(fo, expect):
        assert torch.allclose(a, b, atol=1e-5)


def _separable_episode():
    # class c: a bright square at position c; queries are noisy copies
    g = torch.Generator().manual_seed(0)
    base = torch.zeros(5, 1, 28, 28)
    for c in range(5):
        base[c, 0, 2 + 5 * c: 6 + 5 * c, 4:24] = 1.0
    sx = base.repeat_interleave(2, 0) + 0.05 * torch.randn(10, 1, 28, 28, generator=g)
    qx = base.repeat_interleave(3, 0) + 0.05 * torch.randn(15, 1, 28, 28, generator=g)
    return Episode(sx, torch.arange(5).repeat_interleave(2), qx, torch.arange(5).repeat_interleave(3))


def test_protonet_nn_and_finetune_solve_a_trivial_episode():
    torch.manual_seed(0)
    ep = _separable_episode()
    net = ConvLearner(1, 28, 5, filters=8)
    assert ProtoNet(net).score(ep) == 1.0
    assert NearestNeighbour(net).score(ep) == 1.0
    ft = FineTune(net, steps=30, lr=1.0, mode="head")
    assert ft.score(Episode(ep.support_x, ep.support_y, ep.support_x, ep.support_y)) == 1.0  # fits its support set
    assert ft.score(ep) >= 0.8


def test_protonet_logits_are_negative_squared_distances_to_class_means():
    torch.manual_seed(0)
    net = ConvLearner(1, 28, 5, filters=4)
    ep = _separable_episode()
    logits = ProtoNet(net).query_output(ep.support_x, ep.support_y, ep.query_x)
    zs, zq = net.features(ep.support_x), net.features(ep.query_x)
    protos = torch.stack([zs[ep.support_y == c].mean(0) for c in range(5)])
    assert torch.allclose(logits, -((zq[:, None] - protos[None]) ** 2).sum(-1), rtol=1e-4, atol=1e-3)


def test_finetune_does_not_touch_the_pretrained_net():
    torch.manual_seed(0)
    net = ConvLearner(1, 28, 5, filters=4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    FineTune(net, steps=3, lr=0.5, mode="all").predict(_separable_episode())
    FineTune(SineMLP(4), "regression", steps=3, lr=0.1).predict(_sine())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="mode='last'"):
        FineTune(SineMLP(4), mode="last")
    with pytest.raises(ValueError, match="inner_lr=0"):
        MAML(SineMLP(4), inner_lr=0)
    with pytest.raises(ValueError, match="task='ranking'"):
        ProtoNet(SineMLP(4), task="ranking")
