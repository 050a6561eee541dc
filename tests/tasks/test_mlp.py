"""Neural-network optimizees: K stacked MLPs / conv nets on image data."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learnt.tasks.datasets import ImageData, load_digits
from learnt.tasks.mlp import ConvFamily, ConvTask, MLPFamily, MLPTask

CONV_KW = {"channels": (3, 4), "fc_hidden": 6}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mlp(k=3, hidden=(7, 5), activation="tanh", batch_size=16):
    return MLPTask(load_digits(), hidden, activation, k, batch_size)


def _conv(k=3, batch_size=16, **kw):
    return ConvTask(load_digits(), kw.get("channels", CONV_KW["channels"]), kw.get("fc_hidden", CONV_KW["fc_hidden"]),
                    k, batch_size)


def _tiny_data(n=13, k_shape=(1, 2, 2)):
    """Training image i is constant i (so batches reveal which images they hold); label i % 10."""
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, *k_shape).contiguous()
    y = torch.arange(n) % 10
    return ImageData(x, y, x[:2], y[:2], x[:3], y[:3], 10, "tiny")


def _index_of(xb):
    """Image indices of a batch (K, B, C, H, W) of _tiny_data images."""
    return xb[..., 0, 0, 0].long()


BUILDERS = {"mlp": _mlp, "conv": _conv}


# ------------------------------------------------------------------ shapes and independence


@pytest.mark.parametrize("kind", BUILDERS)
def test_loss_shape_and_param_layout(kind):
    task = BUILDERS[kind](k=3)
    params = task.init_params(_gen())
    batch = next(task.batches("train", _gen(1)))
    assert batch[0].shape == (3, 16, 1, 8, 8) and batch[1].shape == (3, 16)
    loss = task.loss(params, batch)
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    for name, p in params.items():
        assert p.shape[0] == 3, name
    if kind == "mlp":
        assert {k: tuple(v.shape) for k, v in params.items()} == {
            "fc0.weight": (3, 64, 7), "fc0.bias": (3, 7), "fc1.weight": (3, 7, 5), "fc1.bias": (3, 5),
            "fc2.weight": (3, 5, 10), "fc2.bias": (3, 10)}
    else:
        assert params["conv0.weight"].shape == (3, 3, 1, 3, 3) and params["conv1.weight"].shape == (3, 4, 3, 3, 3)
        assert params["bn1.weight"].shape == (3, 4) and params["fc0.weight"].shape == (3, 4 * 2 * 2, 6)
        assert params["fc1.weight"].shape == (3, 6, 10)


@pytest.mark.parametrize("kind", BUILDERS)
def test_problems_are_independent_of_k(kind):
    """Problem k of a K=3 task has the loss of a K=1 task on that problem's params and batch."""
    task3, task1 = BUILDERS[kind](k=3), BUILDERS[kind](k=1)
    params = task3.init_params(_gen())
    x, y = next(task3.batches("train", _gen(1)))
    loss3 = task3.loss(params, (x, y))
    assert not torch.allclose(loss3[0], loss3[1])  # the problems really differ
    for k in range(3):
        sub = {n: p[k:k + 1] for n, p in params.items()}
        loss1 = task1.loss(sub, (x[k:k + 1], y[k:k + 1]))
        torch.testing.assert_close(loss1[0], loss3[k], atol=1e-6, rtol=0)


def test_mlp_matches_nn_sequential_reference():
    task = _mlp(k=3, hidden=(7, 5), activation="tanh")
    params = task.init_params(_gen())
    x, y = next(task.batches("train", _gen(1)))
    loss = task.loss(params, (x, y))
    logits = task.forward(params, x)
    for k in range(3):
        layers = []
        for i, (a, b) in enumerate([(64, 7), (7, 5), (5, 10)]):
            lin = nn.Linear(a, b)
            with torch.no_grad():
                lin.weight.copy_(params[f"fc{i}.weight"][k].T)  # ours is (K, in, out)
                lin.bias.copy_(params[f"fc{i}.bias"][k])
            layers += [lin, nn.Tanh()]
        ref = nn.Sequential(nn.Flatten(), *layers[:-1])
        with torch.no_grad():
            out = ref(x[k])
        torch.testing.assert_close(logits[k], out, atol=1e-6, rtol=0)
        torch.testing.assert_close(loss[k], F.cross_entropy(out, y[k]), atol=1e-6, rtol=0)


def test_conv_matches_nn_reference():
    task = _conv(k=2)
    params = task.init_params(_gen())
    with torch.no_grad():  # non-trivial batch-norm affine parameters
        for name in params:
            if name.startswith("bn"):
                params[name] += 0.3 * torch.randn(params[name].shape, generator=_gen(5))
    x, y = next(task.batches("train", _gen(1)))
    logits = task.forward(params, x)
    for k in range(2):
        layers, cin = [], 1
        for i, cout in enumerate((3, 4)):
            conv, bn = nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
            with torch.no_grad():
                conv.weight.copy_(params[f"conv{i}.weight"][k])
                bn.weight.copy_(params[f"bn{i}.weight"][k])
                bn.bias.copy_(params[f"bn{i}.bias"][k])
            layers += [conv, bn, nn.ReLU(), nn.MaxPool2d(2)]
            cin = cout
        fcs = [nn.Linear(16, 6), nn.Linear(6, 10)]
        with torch.no_grad():
            for j, lin in enumerate(fcs):
                lin.weight.copy_(params[f"fc{j}.weight"][k].T)
                lin.bias.copy_(params[f"fc{j}.bias"][k])
        ref = nn.Sequential(*layers, nn.Flatten(), fcs[0], nn.ReLU(), fcs[1]).train()
        with torch.no_grad():
            torch.testing.assert_close(logits[k], ref(x[k]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", BUILDERS)
def test_gradient_of_one_problem_ignores_the_others(kind):
    task = BUILDERS[kind](k=3)
    params = task.init_params(_gen())
    batch = next(task.batches("train", _gen(1)))

    def grads_of_problem0(p):
        p = {n: v.detach().clone().requires_grad_(True) for n, v in p.items()}
        g = torch.autograd.grad(task.loss(p, batch).sum(), list(p.values()))
        return {n: gi[0] for n, gi in zip(p, g)}

    before = grads_of_problem0(params)
    changed = {n: v.clone() for n, v in params.items()}
    for n in changed:
        changed[n][1] += torch.randn(changed[n][1].shape, generator=_gen(7))
    after = grads_of_problem0(changed)
    for n in before:
        assert before[n].abs().sum() > 0, n
        torch.testing.assert_close(after[n], before[n], atol=1e-6, rtol=0)


def test_conv_batch_norm_is_per_problem_and_per_minibatch():
    task = _conv(k=2)
    params = task.init_params(_gen())
    x, _ = next(task.batches("train", _gen(1)))
    base = task.forward(params, x)
    scaled = x.clone()
    scaled[1] *= 5.0  # shared batch statistics would change problem 0's output
    torch.testing.assert_close(task.forward(params, scaled)[0], base[0], atol=1e-6, rtol=0)
    noisy = x.clone()
    noisy[1] += torch.rand(noisy[1].shape, generator=_gen(2))
    out = task.forward(params, noisy)
    torch.testing.assert_close(out[0], base[0], atol=1e-6, rtol=0)
    assert not torch.allclose(out[1], base[1], atol=1e-3)
    # batch norm is really applied: scaling a problem's whole minibatch changes nothing
    # (the first conv has no bias; batch statistics absorb the scale)
    mine = x.clone()
    mine[0] *= 5.0
    torch.testing.assert_close(task.forward(params, mine)[0], base[0], atol=1e-3, rtol=0)


# ------------------------------------------------------------------ minibatches


def test_batches_each_problem_sees_each_image_once_per_epoch():
    data = _tiny_data(n=13)
    task = MLPTask(data, (3,), "sigmoid", n_problems=3, batch_size=4)
    it = task.batches("train", _gen(0))
    per_epoch = 13 // 4
    for _epoch in range(3):
        idx = []
        for _ in range(per_epoch):
            x, y = next(it)
            assert x.shape == (3, 4, 1, 2, 2) and y.shape == (3, 4)
            i = _index_of(x)
            assert torch.equal(y, i % 10)  # labels travel with their images
            idx.append(i)
        idx = torch.cat(idx, dim=1)  # (K, 12)
        for k in range(3):
            assert len(set(idx[k].tolist())) == per_epoch * 4, idx[k]  # no image twice in one epoch
        assert not torch.equal(idx[0], idx[1]) and not torch.equal(idx[1], idx[2])  # own orders


def test_batches_exact_epochs_cover_everything_and_reshuffle():
    data = _tiny_data(n=12)
    task = MLPTask(data, (3,), "sigmoid", n_problems=2, batch_size=4)
    it = task.batches("train", _gen(3))
    epochs = [torch.cat([_index_of(next(it)[0]) for _ in range(3)], dim=1) for _ in range(2)]
    for e in epochs:
        for k in range(2):
            assert sorted(e[k].tolist()) == list(range(12))
    assert not torch.equal(epochs[0], epochs[1])


def test_batches_digits_epoch_label_counts():
    d = load_digits()
    B = 98  # 1078 = 11 * 98
    task = MLPTask(d, (4,), "sigmoid", n_problems=2, batch_size=B)
    it = task.batches("train", _gen(0))
    ys = torch.cat([next(it)[1] for _ in range(1078 // B)], dim=1)
    expected = torch.bincount(d.y_train, minlength=10)
    for k in range(2):
        assert torch.equal(torch.bincount(ys[k], minlength=10), expected)


def test_batches_same_seed_same_order():
    task = _mlp(k=2)

    def draw(seed, n=4):
        it = task.batches("train", _gen(seed))
        return [next(it) for _ in range(n)]
    a, b, c = draw(5), draw(5), draw(6)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_batch_larger_than_training_set_raises():
    task = MLPTask(_tiny_data(n=5), (3,), "sigmoid", n_problems=1, batch_size=6)
    with pytest.raises(ValueError, match="batch_size=6"):
        next(task.batches())


# ------------------------------------------------------------------ held-out metrics


@pytest.mark.parametrize("kind", BUILDERS)
def test_metrics_shapes_and_values(kind):
    task = BUILDERS[kind](k=3)
    params = task.init_params(_gen())
    m = task.metrics(params, "val")
    assert set(m) == {"loss", "accuracy"}
    assert m["loss"].shape == (3,) and m["accuracy"].shape == (3,)
    assert ((m["accuracy"] >= 0) & (m["accuracy"] <= 1)).all()
    x, y = task.data.split("val")
    logits = task.forward(params, x.unsqueeze(0).expand(3, *x.shape))
    for k in range(3):
        torch.testing.assert_close(m["loss"][k], F.cross_entropy(logits[k], y), atol=1e-5, rtol=0)
        torch.testing.assert_close(m["accuracy"][k], (logits[k].argmax(-1) == y).float().mean())
    if kind == "mlp":  # chunking is only a memory device (conv batch norm is per chunk by design)
        chunked = task.metrics(params, "val", chunk=50)
        torch.testing.assert_close(chunked["loss"], m["loss"], atol=1e-5, rtol=0)
        torch.testing.assert_close(chunked["accuracy"], m["accuracy"])


def test_adam_trained_mlp_reaches_high_test_accuracy():
    task = MLPFamily(hidden=(20,), activation="sigmoid", n_problems=2).sample(_gen())
    g = _gen(1)
    params = {k: v.clone().requires_grad_(True) for k, v in task.init_params(g).items()}
    before = task.metrics(params, "test")["accuracy"]
    opt = torch.optim.Adam(params.values(), lr=0.01)
    batches = task.batches("train", g)
    for _ in range(150):
        opt.zero_grad()
        task.loss(params, next(batches)).sum().backward()
        opt.step()
    m = task.metrics(params, "test")
    assert (before < 0.5).all()
    assert (m["accuracy"] > 0.85).all(), m
    assert (m["loss"] < 0.6).all(), m


# ------------------------------------------------------------------ families and validation


def test_families_sample_tasks():
    g = _gen()
    mt = MLPFamily(hidden=(5,), n_problems=2, batch_size=8).sample(g)
    assert isinstance(mt, MLPTask) and mt.n_problems == 2 and mt.batch_size == 8 and mt.sizes == (64, 5, 10)
    assert MLPFamily(n_problems=2).sample(g, n_problems=4).n_problems == 4
    ct = ConvFamily(n_problems=2, **CONV_KW).sample(g, n_problems=1)
    assert isinstance(ct, ConvTask) and ct.n_problems == 1 and ct.channels == (3, 4)


@pytest.mark.parametrize("kw, text", [
    ({"activation": "gelu"}, "activation='gelu'"),
    ({"hidden": (20, 0)}, "hidden=(20, 0)"),
    ({"n_problems": 0}, "n_problems=0"),
    ({"batch_size": -1}, "batch_size=-1"),
])
def test_mlp_family_rejects_bad_values(kw, text):
    with pytest.raises(ValueError) as exc:
        MLPFamily(**kw)
    assert text in str(exc.value)


def test_mlp_task_rejects_bad_activation():
    with pytest.raises(ValueError, match="activation='swish'"):
        MLPTask(load_digits(), (4,), "swish", 1)


def test_conv_too_many_pooling_layers_for_8x8_raises():
    ConvTask(load_digits(), (2, 2, 2), 4, 1)  # 8 -> 4 -> 2 -> 1 fits
    with pytest.raises(ValueError, match="4 pooling layers"):
        ConvTask(load_digits(), (2, 2, 2, 2), 4, 1)
    with pytest.raises(ValueError, match="4 pooling layers"):
        ConvFamily(channels=(2, 2, 2, 2)).sample(_gen())


@pytest.mark.parametrize("kw, text", [
    ({"channels": (4, 0)}, "channels=(4, 0)"),
    ({"channels": ()}, "channels=()"),
    ({"fc_hidden": 0}, "fc_hidden=0"),
    ({"n_problems": 0}, "n_problems=0"),
    ({"batch_size": 0}, "batch_size=0"),
])
def test_conv_family_rejects_bad_sizes(kw, text):
    with pytest.raises(ValueError) as exc:
        ConvFamily(**kw)
    assert text in str(exc.value)
