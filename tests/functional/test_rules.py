"""Hand-designed functional rules: step-for-step equality with torch.optim and the contract."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from learnt.functional import (
    ClipByGlobalNorm, adam, adamw, apply_updates, chain, make_rule, momentum, nag, rmsprop, sgd,
)
from tests.conftest import assert_tree_equal, clone_tree

STEPS = 20

# (functional rule, torch.optim factory) with the same hyperparameters
PAIRS = {
    "sgd": (lambda: sgd(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "momentum": (lambda: momentum(lr=0.05, momentum=0.9),
                 lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "nag": (lambda: nag(lr=0.05, momentum=0.9),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda: rmsprop(lr=0.01, alpha=0.99, eps=1e-8),
                lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8)),
    "adam": (lambda: adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    "adamw": (lambda: adamw(lr=0.01, weight_decay=0.1), lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
}


def _model_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randn(8, 1, generator=g, dtype=torch.float64)
    return model, x, y


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_torch_optim_step_by_step(name):
    make_functional, make_torch = PAIRS[name]
    model, x, y = _model_and_batch()
    ref = copy.deepcopy(model)
    opt = make_torch(ref.parameters())

    rule = make_functional()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    init = clone_tree(params)
    state = rule.init(params)
    for step in range(STEPS):
        opt.zero_grad()
        nn.functional.mse_loss(ref(x), y).backward()
        opt.step()

        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = nn.functional.mse_loss(functional_call(model, leaves, (x,)), y)
        grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
        updates, state = rule.update(grads, state, params)
        params = apply_updates(params, updates)

        for k, p in ref.named_parameters():
            torch.testing.assert_close(params[k], p.detach(), atol=1e-12, rtol=1e-10,
                                       msg=lambda m, k=k, s=step: f"{name} step {s} param {k}: {m}")
    # the comparison is not vacuous: parameters really moved
    assert any((params[k] - init[k]).abs().max() > 1e-3 for k in params)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_update_does_not_mutate_inputs(name):
    rule = PAIRS[name][0]()
    g = torch.Generator().manual_seed(0)
    params = {"w": torch.randn(3, 2, generator=g, dtype=torch.float64),
              "b": torch.randn(2, generator=g, dtype=torch.float64)}
    state = rule.init(params)
    for _ in range(2):  # second step: state holds non-zero values
        grads = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}
        before = (clone_tree(grads), clone_tree(state), clone_tree(params))
        updates, new_state = rule.update(grads, state, params)
        assert_tree_equal(grads, before[0])
        assert_tree_equal(state, before[1])
        assert_tree_equal(params, before[2])
        params, state = apply_updates(params, updates), new_state


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_lr_override_equals_constructed_lr(name):
    g = torch.Generator().manual_seed(0)
    params = {"w": torch.randn(4, 3, generator=g, dtype=torch.float64)}
    grads_seq = [{"w": torch.randn(4, 3, generator=g, dtype=torch.float64)} for _ in range(3)]
    base, target = make_rule(name, 0.1), make_rule(name, 0.03)
    s_over, s_ref = base.init(params), target.init(params)
    for grads in grads_seq:
        u_over, s_over = base.update(grads, s_over, params, lr=0.03)
        u_ref, s_ref = target.update(grads, s_ref, params)
        torch.testing.assert_close(u_over["w"], u_ref["w"], atol=1e-15, rtol=1e-12)
    # and the override really changes the step relative to the rule's own lr
    u_own, _ = base.update(grads_seq[0], base.init(params), params)
    u_low, _ = base.update(grads_seq[0], base.init(params), params, lr=0.03)
    assert not torch.allclose(u_own["w"], u_low["w"])


@pytest.mark.parametrize("make, value", [
    (lambda: sgd(lr=-0.5), "-0.5"),
    (lambda: momentum(lr=-0.25), "-0.25"),
    (lambda: rmsprop(lr=-0.125), "-0.125"),
    (lambda: adam(lr=-2.0), "-2.0"),
    (lambda: momentum(lr=0.1, momentum=1.0), "momentum=1.0"),
    (lambda: nag(lr=0.1, momentum=1.0), "momentum=1.0"),
    (lambda: momentum(lr=0.1, momentum=-0.1), "momentum=-0.1"),
    (lambda: adam(beta1=1.0), "beta1=1.0"),
    (lambda: adam(beta2=1.0), "beta2=1.0"),
])
def test_invalid_hyperparameters_raise_naming_value(make, value):
    with pytest.raises(ValueError) as exc:
        make()
    assert value in str(exc.value)


def test_make_rule_builds_each_rule_and_rejects_unknown():
    for name, cls in [("sgd", "SGD"), ("momentum", "Momentum"), ("nag", "Momentum"),
                      ("rmsprop", "RMSprop"), ("adam", "Adam")]:
        rule = make_rule(name, 0.02)
        assert type(rule).__name__ == cls and rule.lr == 0.02
    assert make_rule("nag", 0.1).nesterov and not make_rule("momentum", 0.1).nesterov
    with pytest.raises(ValueError, match="'adagrad'"):
        make_rule("adagrad", 0.1)


def test_chain_clip_by_global_norm_clips_huge_gradient_to_unit_norm():
    rule = chain(ClipByGlobalNorm(1.0), sgd(1.0))
    params = {"a": torch.zeros(3, dtype=torch.float64), "b": torch.zeros(2, 2, dtype=torch.float64)}
    grads = {"a": torch.full((3,), 1e6, dtype=torch.float64),
             "b": torch.tensor([[-2e6, 3e6], [0.5e6, -1e6]], dtype=torch.float64)}
    state = rule.init(params)
    updates, _ = rule.update(grads, state, params)
    norm = torch.sqrt(sum((u * u).sum() for u in updates.values()))
    assert abs(norm.item() - 1.0) < 1e-9
    # direction is preserved: update = -grad / ||grad||
    gnorm = torch.sqrt(sum((g * g).sum() for g in grads.values()))
    for k in grads:
        torch.testing.assert_close(updates[k], -grads[k] / gnorm, atol=1e-12, rtol=1e-9)


def test_chain_clip_leaves_small_gradient_unchanged():
    rule = chain(ClipByGlobalNorm(1.0), sgd(0.5))
    params = {"a": torch.zeros(2, dtype=torch.float64)}
    grads = {"a": torch.tensor([0.3, -0.4], dtype=torch.float64)}  # norm 0.5
    updates, _ = rule.update(grads, rule.init(params), params)
    torch.testing.assert_close(updates["a"], -0.5 * grads["a"], atol=1e-12, rtol=1e-9)
