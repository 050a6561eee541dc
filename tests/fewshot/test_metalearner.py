"""The Ravi & Larochelle meta-learner: init, cell math, constant gradients, meta-gradients, BN reset."""
import pytest
import torch

from learnt.fewshot.learner import ConvLearner, FlatParams, SineMLP, run
from learnt.fewshot.metalearner import MetaLearnerLSTM
from learnt.fewshot.methods import task_loss
from learnt.functional.base import UpdateRule


def _sine_episode(seed=0, k=10):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * k, 1, generator=g) * 10 - 5
    y = 2.0 * torch.sin(x - 0.5)
    return x[:k], y[:k], x[k:], y[k:]


def test_init_follows_the_paper():
    torch.manual_seed(0)
    learner = ConvLearner(1, 28, 5, filters=8)
    m = MetaLearnerLSTM(learner, steps=3, seed=0)
    assert 4.0 <= m.b_f.item() <= 5.0 and -5.0 <= m.b_i.item() <= -4.0
    assert m.w_f.abs().max() <= 0.01 and m.w_i.abs().max() <= 0.01
    flat = FlatParams(dict(learner.named_parameters()))
    assert torch.equal(m.c0.detach(), flat.flatten(dict(learner.named_parameters())).detach())  # c_0 = learner init
    assert m.c0.requires_grad and m.c0.shape == (flat.numel,)
    # the learner's own weights are a frozen template, not meta-parameters: c0 and the LSTM/cell are
    assert all(not p.requires_grad for p in m.learner.parameters())
    assert isinstance(m, UpdateRule)


def test_cell_is_f_theta_minus_i_grad():
    m = MetaLearnerLSTM(SineMLP(4), task="regression", steps=1)
    n = m.flat.numel
    theta, grad = torch.randn(n), torch.randn(n)
    cell = m._init_flat(n, theta.device, theta.dtype)
    new, cell2, (f, i) = m.step(theta, grad, torch.tensor(0.7), cell)
    assert torch.allclose(new, f * theta - i * grad, atol=1e-6)
    # at initialisation: forget ~ sigmoid(4..5) (~0.98-0.99), input ~ sigmoid(-5..-4) (~0.007-0.018)
    assert 0.97 < f.min().item() and f.max().item() < 0.995
    assert 0.005 < i.min().item() and i.max().item() < 0.02
    # gates depend on their previous value: the next step reads cell2's pre-activations
    assert not torch.equal(cell2["f"], cell["f"])


def _reference_step(m, theta, grad, loss, h, c, f_prev, i_prev):
    """The paper's cell written plainly: nn.LSTMCell on (n, features) rows, torch.tanh."""
    from learnt.learned.preprocess import log_sign
    x = torch.cat([log_sign(loss.expand_as(grad), m.preproc_p), log_sign(grad, m.preproc_p)], 1)
    h, c = m.lstm(x, (h, c))
    f_pre = torch.cat([h, theta[:, None], f_prev[:, None]], 1) @ m.w_f + m.b_f
    i_pre = torch.cat([h, theta[:, None], i_prev[:, None]], 1) @ m.w_i + m.b_i
    return torch.sigmoid(f_pre) * theta - torch.sigmoid(i_pre) * grad, h, c, f_pre, i_pre


def test_fast_cell_equals_lstmcell_math_in_value_and_meta_gradient():
    torch.manual_seed(1)
    m = MetaLearnerLSTM(SineMLP(6), task="regression", steps=1, hidden_size=5)
    with torch.no_grad():  # away from the init so that every gate matters
        for p in m.parameters():
            p.add_(0.5 * torch.randn_like(p))
    n = m.flat.numel
    theta0, grads = m.c0, [torch.randn(n) * 10 ** torch.randn(n) for _ in range(3)]
    losses = [torch.tensor(v) for v in (2.0, 0.3, 1e-4)]

    def run_fast():
        cell, th = m._init_flat(n, theta0.device, theta0.dtype), theta0
        for g, l in zip(grads, losses):
            th, cell, _ = m.step(th, g, l, cell)
        return th, cell

    def run_ref():
        z = torch.zeros(n, m.hidden_size)
        th, h, c, f, i = theta0, z, z.clone(), torch.zeros(n), torch.zeros(n)
        for g, l in zip(grads, losses):
            th, h, c, f, i = _reference_step(m, th, g, l, h, c, f, i)
        return th, h, c

    (fast, cell), (ref, h, c) = run_fast(), run_ref()
    assert torch.allclose(fast, ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(cell["h"].t(), h, atol=1e-5) and torch.allclose(cell["c"].t(), c, atol=1e-5)
    w = torch.randn(n)
    named = [(k, p) for k, p in m.named_parameters() if p.requires_grad]
    g_fast = torch.autograd.grad((fast * w).sum(), [p for _, p in named], allow_unused=True)
    g_ref = torch.autograd.grad((ref * w).sum(), [p for _, p in named], allow_unused=True)
    assert len(named) == 9  # c0, the LSTM's four tensors, w_f, w_i, b_f, b_i
    for (name, _), a, b in zip(named, g_fast, g_ref):
        if b is None:
            assert a is None or a.abs().max() == 0, name
            continue
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), name


def test_update_rule_contract_matches_step():
    m = MetaLearnerLSTM(SineMLP(4), task="regression", steps=1)
    params = {k: p.detach().clone() for k, p in m.learner.named_parameters()}
    grads = {k: torch.randn_like(p) for k, p in params.items()}
    before = {k: v.clone() for k, v in params.items()}
    state = m.init(params)
    updates, state2 = m.update(grads, state, params, loss=torch.tensor(1.3))
    for k in params:
        assert torch.equal(params[k], before[k])  # inputs not mutated
    theta, g = m.flat.flatten(params), m.flat.flatten(grads)
    new, _, _ = m.step(theta, g, torch.tensor(1.3), state["__cell"])
    assert torch.allclose(m.flat.flatten(updates), new - theta, atol=1e-6)
    with pytest.raises(ValueError, match="loss"):
        m.update(grads, state, params)


def test_learner_gradients_are_constants_and_meta_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    m = MetaLearnerLSTM(SineMLP(8), task="regression", steps=3)
    sx, sy, qx, qy = _sine_episode()
    seen = []
    orig = m.step

    def spy(theta, grad, loss, cell):
        seen.append((grad.requires_grad, loss.requires_grad))
        return orig(theta, grad, loss, cell)

    m.step = spy
    loss = task_loss("regression", m.query_output(sx, sy, qx), qy)
    assert seen == [(False, False)] * 3   # no second derivatives: gradient and loss enter as constants
    loss.backward()
    for name, p in m.named_parameters():
        if name.startswith("learner."):
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in m.learner.parameters())  # the template's weights are never trained


def test_adaptation_lowers_the_support_loss():
    torch.manual_seed(0)
    m = MetaLearnerLSTM(SineMLP(40), task="regression", steps=10)
    sx, sy, _, _ = _sine_episode()
    theta, trace = m.adapt(sx, sy, record=True)
    before = task_loss("regression", run(m.learner, m.flat.unflatten(m.c0), sx), sy)
    after = task_loss("regression", run(m.learner, m.flat.unflatten(theta), sx), sy)
    assert after.item() < 0.97 * before.item()
    assert len(trace["input"]) == 10 and len(trace["input"][0]) == len(m.flat.names)
    assert trace["loss"][0] == pytest.approx(before.item(), rel=1e-5)


def test_batch_norm_keeps_no_statistics_between_episodes():
    torch.manual_seed(0)
    net = ConvLearner(1, 28, 5, filters=4)
    assert list(net.buffers()) == []  # nothing can carry over from one episode to the next
    x = torch.rand(6, 1, 28, 28)
    out1 = net(x)
    net(torch.rand(50, 1, 28, 28) * 5 + 3)  # another "episode" with very different statistics
    assert torch.equal(out1, net(x))
    net.eval()
    assert torch.allclose(out1, net(x))     # eval mode normalises with the batch too


def test_conv_learner_sizes_its_head_to_the_input():
    assert ConvLearner(3, 84, 5, 32).head.in_features == 32 * 5 * 5
    assert ConvLearner(1, 28, 5, 32).head.in_features == 32
    with pytest.raises(ValueError, match="image_size=8"):
        ConvLearner(1, 8, 5)
