"""Real-network optimizees: NetTask (vmapped K problems), the data generators, NetFamily."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from learnt.tasks import netdata, nets
from learnt.tasks.net_family import NetFamily
from learnt.tasks.net_task import NetTask


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_vmapped_loss_equals_each_module_on_its_own():
    g = _g()
    data = netdata.gaussian_mixture(g, d=5, n_classes=3, n_train=40, n_test=20)
    task = NetTask(lambda: nets.MLP(5, (7,), 3, "gelu", "layer"), data, n_problems=3, batch_size=8)
    params = task.init_params(g)
    x, y = next(task.batches("train", g))
    losses = task.loss(params, (x, y))
    for k in range(3):
        m = nets.MLP(5, (7,), 3, "gelu", "layer")
        m.load_state_dict({n: params[n][k] for n in task.names})
        ref = nn.functional.cross_entropy(m(x[k]), y[k])
        torch.testing.assert_close(losses[k], ref, atol=1e-6, rtol=1e-5)
    # the K initialisations differ (independent seeds)
    w = params["out.weight"]
    assert not torch.equal(w[0], w[1])


def test_init_is_reproducible_from_the_generator_and_ignores_the_global_rng():
    data = netdata.teacher(_g(), d=4, n_out=2, n_train=32, n_test=16)
    task = NetTask(lambda: nets.MLP(4, (6,), 2), data, n_problems=2, batch_size=8)
    a = task.init_params(_g(5))
    torch.manual_seed(123)
    b = task.init_params(_g(5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = task.init_params(_g(6))
    assert not torch.equal(a["out.weight"], c["out.weight"])


def test_param_scales_reparameterise_without_changing_the_function():
    g = _g()
    data = netdata.linear_regression(g, d=3, n_train=16, n_test=8)
    plain = NetTask(lambda: nets.Linear(3, 1), data, n_problems=1, batch_size=16)
    scaled = NetTask(lambda: nets.Linear(3, 1), data, n_problems=1, batch_size=16,
                     param_scales={"lin.weight": 100.0})
    pa, ps = plain.init_params(_g(1)), scaled.init_params(_g(1))
    torch.testing.assert_close(ps["lin.weight"] * 100.0, pa["lin.weight"])
    batch = next(plain.batches("train", _g(2)))
    torch.testing.assert_close(plain.loss(pa, batch), scaled.loss(ps, batch))
    # the optimizer sees gradients 100x larger on the rescaled tensor
    pa = {k: v.requires_grad_(True) for k, v in pa.items()}
    ps = {k: v.requires_grad_(True) for k, v in ps.items()}
    ga = torch.autograd.grad(plain.loss(pa, batch).sum(), pa["lin.weight"])[0]
    gs = torch.autograd.grad(scaled.loss(ps, batch).sum(), ps["lin.weight"])[0]
    torch.testing.assert_close(gs, 100.0 * ga)


def test_heldout_objective_reports_heldout_loss_with_the_training_gradient():
    g = _g()
    data = netdata.gaussian_mixture(g, d=4, n_classes=2, n_train=32, n_test=32)
    build = lambda: nets.MLP(4, (5,), 2)  # noqa: E731
    task = NetTask(build, data, n_problems=2, batch_size=8, heldout_objective=True)
    params = {k: v.requires_grad_(True) for k, v in task.init_params(g).items()}
    train_b, held_b = next(task.batches("train", g))
    loss = task.loss(params, (train_b, held_b))
    plain = NetTask(build, data, n_problems=2, batch_size=8)
    torch.testing.assert_close(loss, plain.loss(params, held_b))
    g_obj = torch.autograd.grad(loss.sum(), list(params.values()))
    g_train = torch.autograd.grad(plain.loss(params, train_b).sum(), list(params.values()))
    for a, b in zip(g_obj, g_train):
        torch.testing.assert_close(a, b)


def test_metrics_and_bad_inputs():
    g = _g()
    data = netdata.digits(g, n_classes=3, heldout="test")
    assert set(data.y_train.unique().tolist()) <= {0, 1, 2}
    task = NetTask(lambda: nets.MLP(64, (8,), 3), data, n_problems=2, batch_size=16)
    m = task.metrics(task.init_params(g))
    assert m["loss"].shape == (2,) and ((m["accuracy"] >= 0) & (m["accuracy"] <= 1)).all()
    with pytest.raises(ValueError, match="buffers"):
        NetTask(lambda: nn.Sequential(nn.Linear(64, 3), nn.BatchNorm1d(3)), data)
    with pytest.raises(ValueError, match="param_scales"):
        NetTask(lambda: nets.Linear(64, 3), data, param_scales={"nope": 2.0})
    with pytest.raises(ValueError, match="unknown sequence task"):
        netdata.sequence(g, task="sorting")


@pytest.mark.parametrize("task", ["majority", "adding", "first", "count", "retrieval"])
def test_sequence_tasks_have_learnable_targets(task):
    d = netdata.sequence(_g(), task=task, vocab=5, length=6, n_train=64, n_test=32)
    assert len(d.x_train) == 64 and len(d.x_test) == 32
    if d.loss == "ce":
        assert int(d.y_train.max()) < d.n_out


PREFIX = {"mlp": "mlp", "conv": "conv", "gru": "rnn", "lstm": "rnn", "transformer": "transformer",
          "ae": "autoencoder", "linreg": "linear", "logreg": "linear"}


def test_family_draws_every_kind_within_its_horizons():
    fam = NetFamily(n_problems=2, max_horizon=200, batch_sizes=(8, 64))
    seen = set()
    for i in range(40):
        task = fam.sample(_g(i))
        seen.add(next(kind for prefix, kind in PREFIX.items() if task.name.startswith(prefix)))
        assert 100 <= task.horizon <= 200 and 8 <= task.batch_size <= 64
    assert {"mlp", "conv", "autoencoder", "linear"} <= seen and ({"rnn", "transformer"} & seen)
    with pytest.raises(ValueError, match="kinds"):
        NetFamily(kinds=("resnet",))
