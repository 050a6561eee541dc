"""PartitionedRule: one learned rule per group of parameters (the paper's conv/fc two-LSTM)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from learnt.learned import L2LOptimizer, PartitionedRule, load_rule, save_rule
from learnt.meta import unroll
from learnt.optim import RuleOptimizer
from learnt.tasks.datasets import load_digits
from learnt.tasks.mlp import ConvTask
from tests.conftest import assert_tree_equal
from tests.learned.test_conformance import CHECKS, SHAPES, check_gradients_reach_every_parameter

# the conformance inputs are named scalar / vec / mat / zero_dim: route two of them to each part
CONFORMANCE_PREFIXES = {"conv": ("mat", "zero_dim")}


def partitioned_factory(**overrides):
    lr = overrides.pop("lr", 1.0)
    spec = {"kind": "l2l-lstm", "config": {"hidden_size": 5, **overrides}}
    return PartitionedRule({"conv": spec, "fc": spec}, CONFORMANCE_PREFIXES, default="fc", lr=lr)


def _two_lstm(seed=0, **kw):
    torch.manual_seed(seed)
    return PartitionedRule.two_lstm(**{"hidden_size": 6, **kw})


def _grads(seed=0, dtype=torch.float32):
    """Gradients for conv-net style names (both parts) of mixed shapes and scales."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"conv0.weight": (2, 1, 3, 3), "bn0.weight": (2,), "fc0.weight": (8, 3), "fc0.bias": (3,),
              "conv1.weight": (2, 2, 3, 3), "fc1.bias": (4,)}
    return {k: torch.randn(s, generator=g, dtype=dtype) * 10.0 ** torch.randint(-4, 1, s, generator=g)
            for k, s in shapes.items()}


def _run(rule, grads_seq, pure=True):
    params = {k: torch.zeros_like(v) for k, v in grads_seq[0].items()}
    state = rule.init(params)
    out = []
    for grads in grads_seq:
        if pure:
            updates, state = rule.update(grads, state, params)
        else:
            updates = rule.update_(grads, state, params)
        out.append(updates)
    return out


def _standalone(part_rule: nn.Module) -> L2LOptimizer:
    twin = L2LOptimizer(**part_rule.config())
    twin.load_state_dict(part_rule.state_dict())
    return twin


# ------------------------------------------------------------------ routing


def test_two_lstm_routes_conv_and_bn_to_conv_and_the_rest_to_fc():
    rule = PartitionedRule.two_lstm(hidden_size=4)
    assert set(rule.rules) == {"conv", "fc"}
    assert all(isinstance(r, L2LOptimizer) for r in rule.rules.values())
    for name in ("conv0.weight", "conv12.bias", "bn0.weight", "bn3.bias", "conv.0", "conv.3"):
        assert rule.assign(name) == "conv", name
    for name in ("fc0.weight", "fc1.bias", "fc.0", "0.0", "theta", "linear.weight", "xconv0.weight"):
        assert rule.assign(name) == "fc", name
    state = rule.init({"conv0.weight": torch.zeros(2, 3), "fc0.bias": torch.zeros(4)})
    assert state["conv0.weight"]["h0"].shape == (4, 6) and state["fc0.bias"]["c1"].shape == (4, 4)


def test_two_lstm_parts_have_their_own_weights():
    rule = _two_lstm()
    a, b = rule.rules["conv"].state_dict(), rule.rules["fc"].state_dict()
    assert set(a) == set(b) and any(not torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ the update-rule contract


def test_conformance_inputs_exercise_both_parts():
    rule = partitioned_factory()
    assert {rule.assign(k) for k in SHAPES} == {"conv", "fc"}


@pytest.mark.parametrize("check", [c for c in CHECKS if c is not check_gradients_reach_every_parameter],
                         ids=lambda c: c.__name__)
def test_partitioned_conformance(check):
    check(partitioned_factory)


def test_gradients_reach_both_parts_through_a_conv_unroll():
    """The conformance gradient check unrolls a one-parameter quadratic, which can only reach
    one part; here a conv net's conv/bn/fc parameters reach both."""
    rule = _two_lstm(hidden_size=4)
    task = ConvTask(load_digits(), (2,), 4, n_problems=2, batch_size=8)
    g = torch.Generator().manual_seed(0)
    params = task.init_params(g)
    res = unroll(task, rule, params, rule.init(params), task.batches("train", g), 3, differentiable=True)
    assert res.losses.shape == (4, 2)
    sum((res.params[k] - params[k]).sum() for k in params).backward()
    for name, p in rule.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------ equivalence with the sub-rules


@pytest.mark.parametrize("pure", [True, False], ids=["update", "update_"])
def test_each_part_updates_like_a_standalone_l2l(pure):
    rule = _two_lstm()
    seq = [_grads(s) for s in range(4)]
    got = _run(rule, seq, pure)
    for part in ("conv", "fc"):
        keys = [k for k in seq[0] if rule.assign(k) == part]
        assert keys
        ref = _run(_standalone(rule.rules[part]), [{k: g[k] for k in keys} for g in seq], pure)
        for u, r in zip(got, ref):
            for k in keys:
                torch.testing.assert_close(u[k], r[k], atol=1e-7, rtol=1e-6)
    # and the two parts really differ (so the comparison above checks routing)
    conv_keys = [k for k in seq[0] if rule.assign(k) == "conv"]
    wrong = _run(_standalone(rule.rules["fc"]), [{k: g[k] for k in conv_keys} for g in seq], pure)
    assert not torch.allclose(wrong[-1][conv_keys[0]], got[-1][conv_keys[0]], atol=1e-6)


def test_update_and_update_agree():
    rule = _two_lstm()
    seq = [_grads(s) for s in range(5)]
    for a, b in zip(_run(rule, seq, True), _run(rule, seq, False)):
        for k in a:
            scale = a[k].detach().abs().max()
            assert scale > 0
            torch.testing.assert_close(b[k], a[k], atol=1e-6 * float(scale), rtol=1e-5)


def test_partition_lr_multiplies_every_part():
    rule = _two_lstm()
    seq = [_grads(s) for s in range(2)]
    base = _run(rule, seq)
    rule.lr = 0.5
    half = _run(rule, seq)
    for ub, uh in zip(base, half):
        for k in ub:
            torch.testing.assert_close(uh[k], 0.5 * ub[k], atol=1e-8, rtol=1e-5)


def test_two_lstm_lr_is_not_silently_ignored():
    try:
        rule = _two_lstm(lr=0.5)
    except ValueError:
        return  # rejecting the option would be a fine fix too
    seq = [_grads(s) for s in range(2)]
    base = _two_lstm()
    for uh, ub in zip(_run(rule, seq), _run(base, seq)):
        for k in ub:
            torch.testing.assert_close(uh[k], 0.5 * ub[k], atol=1e-8, rtol=1e-5)


# ------------------------------------------------------------------ files and construction


def test_save_load_round_trip_gives_identical_updates(tmp_path):
    rule = _two_lstm(output_scale=0.2)
    rule.lr = 0.7
    save_rule(rule, tmp_path / "two.pt")
    loaded = load_rule(tmp_path / "two.pt", expected_kind="partitioned")
    assert isinstance(loaded, PartitionedRule) and loaded.config() == rule.config()
    assert loaded.lr == 0.7 and loaded.prefixes == {"conv": ("conv", "bn")} and loaded.default == "fc"
    seq = [_grads(s) for s in range(3)]
    for a, b in zip(_run(rule, seq), _run(loaded, seq)):
        assert_tree_equal(a, b)
    fresh = _two_lstm(seed=1, output_scale=0.2)
    assert any(not torch.equal(_run(fresh, seq)[0][k], _run(rule, seq)[0][k]) for k in seq[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"parts": {"a": {"kind": "l2l-lstm", "config": {}}}, "prefixes": {}, "default": "b"},
     "default part 'b' is not one of the parts"),
    ({"parts": {"a": {"kind": "l2l-lstm", "config": {}}}, "prefixes": {"z": ("conv",)}, "default": "a"},
     "prefixes name unknown parts ['z']"),
    ({"parts": {"a": {"kind": "adamw-lstm", "config": {}}}, "prefixes": {}, "default": "a"},
     "unknown rule kind 'adamw-lstm'"),
])
def test_invalid_construction_raises(kwargs, message):
    with pytest.raises(ValueError) as exc:
        PartitionedRule(**kwargs)
    assert message in str(exc.value)


# ------------------------------------------------------------------ through RuleOptimizer


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 3 * 3, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def _net_grads(model, x, y):
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()


def test_rule_optimizer_routes_named_groups_to_their_parts():
    rule = _two_lstm(hidden_size=5)
    torch.manual_seed(3)
    model = _Net()
    opt = RuleOptimizer([{"params": model.conv.parameters(), "name": "conv"},
                         {"params": model.fc.parameters(), "name": "fc"}], rule)
    refs = {part: _standalone(rule.rules[part]) for part in ("conv", "fc")}
    ref_states = {"conv": None, "fc": None}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 1, 5, 5, generator=g), torch.randint(0, 3, (6,), generator=g)
    for _ in range(3):
        _net_grads(model, x, y)
        grads = {"conv": {f"conv.{i}": p.grad.clone() for i, p in enumerate(model.conv.parameters())},
                 "fc": {f"fc.{i}": p.grad.clone() for i, p in enumerate(model.fc.parameters())}}
        before = {part: [p.detach().clone() for p in getattr(model, part).parameters()] for part in grads}
        opt.step()
        for part, gr in grads.items():
            ref = refs[part]
            if ref_states[part] is None:
                ref_states[part] = ref.init(gr)
            upd, ref_states[part] = ref.update(gr, ref_states[part], gr)
            for i, p in enumerate(getattr(model, part).parameters()):
                delta = p.detach() - before[part][i]
                expected = upd[f"{part}.{i}"].detach()
                assert expected.abs().max() > 0
                torch.testing.assert_close(delta, expected, atol=1e-6 * float(expected.abs().max()), rtol=1e-4)
    for p in model.parameters():
        st = opt.state[p]
        assert set(st) == {"h0", "c0", "h1", "c1"} and st["h0"].shape == (5, p.numel())
        assert st["h0"].abs().sum() > 0


def test_rule_optimizer_unnamed_groups_go_to_the_default_part():
    rule = _two_lstm(hidden_size=5)
    torch.manual_seed(3)
    model, twin = _Net(), _Net()
    twin.load_state_dict(model.state_dict())
    opt = RuleOptimizer(model.parameters(), rule)  # names "0.0", "0.1", ...: all fc
    ref = RuleOptimizer(twin.parameters(), _standalone(rule.rules["fc"]))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 1, 5, 5, generator=g), torch.randint(0, 3, (6,), generator=g)
    for _ in range(2):
        for m, o in ((model, opt), (twin, ref)):
            _net_grads(m, x, y)
            o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
