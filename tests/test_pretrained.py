"""The shipped meta-trained rules load, and the quadratic one wins on fresh functions."""
import numpy as np
import pytest
import torch
from torch import nn

import learnt
from learnt.experiments.compare import BaselineConfig, EvalConfig, tune_baselines
from learnt.functional import make_rule
from learnt.meta import run_on_split
from learnt.meta.stats import paired_wilcoxon_less
from learnt.tasks import QuadraticFamily


def test_available_lists_the_shipped_rules():
    assert {"l2l-quadratic", "l2l-mlp", "l2l-conv", "hrnn"} <= set(learnt.pretrained.available())


def test_unknown_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no pretrained rule named 'nope'"):
        learnt.pretrained.load("nope")


def test_pretrained_quadratic_rule_beats_tuned_baselines_on_fresh_functions():
    rule = learnt.pretrained.load("l2l-quadratic")
    fam = QuadraticFamily(n_problems=100)
    seed = 977  # not a seed any shipped rule was selected or tested on
    ev = EvalConfig(steps=100, val_problems=64, test_problems=100)
    tuned = tune_baselines(fam, BaselineConfig(methods=("nag", "adam")), ev, seed)
    lstm = run_on_split(rule, fam, "test", n_tasks=1, n_problems=100, steps=100, seed=seed)[-1].numpy()
    for name, (lr, _) in tuned.items():
        base = run_on_split(make_rule(name, lr), fam, "test", n_tasks=1, n_problems=100, steps=100,
                            seed=seed)[-1].numpy()
        assert lstm.mean() < base.mean(), name
        assert paired_wilcoxon_less(lstm, base) < 0.01, name


def test_pretrained_mlp_rule_trains_a_user_module_through_torch_optim():
    torch.manual_seed(0)
    from learnt.tasks.datasets import load_digits
    data = load_digits()
    x, y = data.x_train.flatten(1), data.y_train
    model = nn.Sequential(nn.Linear(64, 20), nn.Sigmoid(), nn.Linear(20, 10))
    opt = learnt.RuleOptimizer(model.parameters(), learnt.pretrained.load("l2l-mlp"))
    g = torch.Generator().manual_seed(0)
    first = nn.functional.cross_entropy(model(x), y).item()
    for _ in range(100):
        idx = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    last = nn.functional.cross_entropy(model(x), y).item()
    assert last < 0.25 * first
    acc = (model(data.x_test.flatten(1)).argmax(1) == data.y_test).float().mean().item()
    assert acc > 0.85


def test_pretrained_conv_rule_routes_named_groups():
    rule = learnt.pretrained.load("l2l-conv")
    conv, fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 2)
    opt = learnt.RuleOptimizer([{"params": conv.parameters(), "name": "conv"},
                                {"params": fc.parameters(), "name": "fc"}], rule)
    out = fc(conv(torch.randn(2, 1, 3, 3)).flatten(1)).sum()
    out.backward()
    before = [p.detach().clone() for p in [*conv.parameters(), *fc.parameters()]]
    opt.step()
    after = [*conv.parameters(), *fc.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    assert np.isclose(rule.assign("conv.0") == "conv", True) and rule.assign("fc.0") == "fc"


def test_pretrained_hrnn_trains_a_user_module_through_torch_optim():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = learnt.RuleOptimizer(model.parameters(), learnt.pretrained.load("hrnn"))
    g = torch.Generator().manual_seed(0)
    w = torch.randn(10, 1, generator=g)
    x_test = torch.randn(256, 10, generator=g)
    first = nn.functional.mse_loss(model(x_test), x_test @ w).item()
    for _ in range(300):
        x = torch.randn(64, 10, generator=g)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), x @ w).backward()
        opt.step()
    last = nn.functional.mse_loss(model(x_test), x_test @ w).item()
    assert last < 0.1 * first
    assert "__global__" in opt.rule_state[0]


def test_pretrained_hrnn_trains_a_relu_mlp_on_digits_from_any_usual_rate():
    """The issue-13 report: the shipped HRNN left a 64-32-10 ReLU MLP on digits at chance
    (2.3) after 120 steps. Its trust region (max_rel_step) keeps each step relative to the
    weights, so the same loop now trains it, from the default rate and from 10x it."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)
    rule = learnt.pretrained.load("hrnn")
    assert rule.max_rel_step is not None
    for init_lr in (1e-3, 1e-2):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        r = learnt.pretrained.load("hrnn")
        r.init_lr = init_lr
        opt = learnt.RuleOptimizer(model.parameters(), r)
        g = torch.Generator().manual_seed(0)
        for _ in range(120):
            idx = torch.randint(0, len(X), (64,), generator=g)
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            assert nn.functional.cross_entropy(model(X), y).item() < 0.5     # chance is 2.30
