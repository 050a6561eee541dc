"""Conformance of learned update rules with the (init, update) contract.

``check_update_rule_conformance(rule_factory)`` runs every check below on a rule built by
``rule_factory(**overrides)`` (an ``nn.Module`` with ``init``/``update``); it is applied to
:class:`L2LOptimizer` here and can be reused for any new learned rule.
"""
from __future__ import annotations

import pytest
import torch

from learnt.errors import CheckpointError
from learnt.io import atomic_torch_save
from learnt.learned import L2LOptimizer, load_rule, save_rule
from learnt.learned.serialization import rule_payload
from learnt.meta import unroll
from tests.conftest import assert_tree_equal, clone_tree, quadratic_task

SHAPES = {"scalar": (1,), "vec": (5,), "mat": (3, 4), "zero_dim": ()}


def _inputs(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = {k: torch.randn(s, generator=g, dtype=dtype) for k, s in SHAPES.items()}
    grads = {k: torch.randn(s, generator=g, dtype=dtype) * 10.0 ** torch.randint(-6, 2, s, generator=g)
             for k, s in SHAPES.items()}
    return params, grads


def _build(rule_factory, seed=0, **overrides):
    torch.manual_seed(seed)
    return rule_factory(**overrides)


def _run(rule, params, grads, steps=2, **kw):
    """Apply ``steps`` updates with the same grads; return the list of update dicts."""
    state = rule.init(params)
    out = []
    for _ in range(steps):
        updates, state = rule.update(grads, state, params, **kw)
        out.append(updates)
    return out


def check_shapes(rule_factory):
    rule = _build(rule_factory)
    params, grads = _inputs()
    state = rule.init(params)
    for _ in range(2):
        updates, state = rule.update(grads, state, params)
        assert set(updates) == set(params)
        for k, p in params.items():
            assert updates[k].shape == p.shape, (k, updates[k].shape, p.shape)
            assert torch.isfinite(updates[k]).all(), k
        assert {k for k in state if not k.startswith("__")} == set(params)
    assert rule.update({}, {}, {}) == ({}, {})


def check_determinism(rule_factory):
    rule = _build(rule_factory)
    params, grads = _inputs()
    a, b = _run(rule, params, grads), _run(rule, params, grads)
    for ua, ub in zip(a, b):
        assert_tree_equal(ua, ub)
    # and updates depend on the gradient (the determinism check is not vacuous)
    other = _run(rule, params, {k: -g for k, g in grads.items()})
    assert any(not torch.equal(a[0][k], other[0][k]) for k in params)


def check_state_dict_round_trip(rule_factory):
    src, dst = _build(rule_factory, seed=0), _build(rule_factory, seed=1)
    params, grads = _inputs()
    before = _run(dst, params, grads)
    dst.load_state_dict(src.state_dict())
    after, ref = _run(dst, params, grads), _run(src, params, grads)
    for ua, ub in zip(after, ref):
        assert_tree_equal(ua, ub)
    assert any(not torch.equal(before[0][k], ref[0][k]) for k in params)


def check_gradients_reach_every_parameter(rule_factory):
    rule = _build(rule_factory)
    task = quadratic_task(k=2, d=3, dtype=torch.float32)
    params = task.init_params(torch.Generator().manual_seed(0))
    res = unroll(task, rule, params, rule.init(params), task.batches(), 3, differentiable=True)
    assert res.losses.shape == (4, 2)
    (res.params["theta"] - params["theta"]).sum().backward()  # = sum of the 3 updates
    for name, p in rule.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def check_no_input_mutation(rule_factory):
    rule = _build(rule_factory)
    params, grads = _inputs()
    state = rule.init(params)
    for _ in range(2):
        before = (clone_tree(grads), clone_tree(state), clone_tree(params))
        updates, new_state = rule.update(grads, state, params)
        assert_tree_equal(grads, before[0])
        assert_tree_equal(state, before[1])
        assert_tree_equal(params, before[2])
        state = new_state


def check_float64(rule_factory):
    rule = _build(rule_factory)
    params, grads = _inputs(dtype=torch.float64)
    for updates in _run(rule, params, grads):
        for k in params:
            assert updates[k].dtype == torch.float64, (k, updates[k].dtype)
            assert torch.isfinite(updates[k]).all()
    # same numbers (to float32 precision) as the float32 inputs
    p32, g32 = _inputs(dtype=torch.float32)
    for u64, u32 in zip(_run(rule, params, grads), _run(rule, p32, g32)):
        for k in params:
            torch.testing.assert_close(u64[k].float(), u32[k], atol=1e-6, rtol=1e-5)


def check_output_scale_linear(rule_factory):
    params, grads = _inputs()
    base = _run(_build(rule_factory, output_scale=0.1), params, grads, steps=3)
    tripled = _run(_build(rule_factory, output_scale=0.3), params, grads, steps=3)
    for ub, ut in zip(base, tripled):
        for k in params:
            torch.testing.assert_close(ut[k], 3.0 * ub[k], atol=1e-7, rtol=1e-5)
            assert ub[k].abs().max() > 0


def check_lr_multiplies(rule_factory):
    rule = _build(rule_factory)
    params, grads = _inputs()
    base, scaled = _run(rule, params, grads, steps=3), _run(rule, params, grads, steps=3, lr=2.5)
    for ub, us in zip(base, scaled):
        for k in params:
            torch.testing.assert_close(us[k], 2.5 * ub[k], atol=1e-7, rtol=1e-5)
            assert ub[k].abs().max() > 0
    # a rule constructed with lr=2.5 proposes the same steps
    built = _run(_build(rule_factory, lr=2.5), params, grads, steps=3)
    for ub, us in zip(built, scaled):
        for k in params:
            torch.testing.assert_close(ub[k], us[k], atol=1e-7, rtol=1e-5)


CHECKS = [check_shapes, check_determinism, check_state_dict_round_trip,
          check_gradients_reach_every_parameter, check_no_input_mutation, check_float64,
          check_output_scale_linear, check_lr_multiplies]


def check_update_rule_conformance(rule_factory) -> None:
    """Run every conformance check on ``rule_factory`` (raises AssertionError on failure)."""
    for check in CHECKS:
        check(rule_factory)


def l2l_factory(**overrides):
    kw = {"hidden_size": 6, "num_layers": 2}
    kw.update(overrides)
    return L2LOptimizer(**kw)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_l2l_conformance(check):
    check(l2l_factory)


def test_conformance_suite_runs_end_to_end():
    check_update_rule_conformance(lambda **kw: L2LOptimizer(**{"hidden_size": 4, **kw}))


class _MutatingL2L(L2LOptimizer):
    """A deliberately broken rule: it clips grads in place."""

    def update(self, grads, state, params, *, lr=None, loss=None):
        for g in grads.values():
            g.clamp_(-1e-3, 1e-3)
        return super().update(grads, state, params, lr=lr, loss=loss)


class _UnusedParamL2L(L2LOptimizer):
    """A deliberately broken rule: one parameter never influences the updates."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.unused = torch.nn.Parameter(torch.ones(3))


class _ConstantRule(torch.nn.Module):
    """A deliberately broken rule: ignores ``lr``."""

    lr = 1.0

    def init(self, params):
        return {k: {} for k in params}

    def update(self, grads, state, params, *, lr=None, loss=None):
        return {k: torch.full_like(g, -0.01) for k, g in grads.items()}, state


def test_conformance_catches_broken_rules():
    with pytest.raises(AssertionError):
        check_no_input_mutation(lambda **kw: _MutatingL2L(hidden_size=4, **kw))
    with pytest.raises(AssertionError, match="unused"):
        check_gradients_reach_every_parameter(lambda **kw: _UnusedParamL2L(hidden_size=4, **kw))
    with pytest.raises(AssertionError):
        check_lr_multiplies(lambda **kw: _ConstantRule())


# ----------------------------------------------------------------- serialization


def test_save_load_round_trip_gives_identical_updates(tmp_path):
    rule = _build(l2l_factory, hidden_size=5, output_scale=0.2, lr=0.5)
    path = tmp_path / "rule.pt"
    save_rule(rule, path, meta={"note": "x"})
    loaded = load_rule(path, expected_kind="l2l-lstm")
    assert isinstance(loaded, L2LOptimizer) and loaded.config() == rule.config()
    params, grads = _inputs()
    for ua, ub in zip(_run(rule, params, grads), _run(loaded, params, grads)):
        assert_tree_equal(ua, ub)


def test_load_architecture_mismatch_raises(tmp_path):
    payload = rule_payload(L2LOptimizer(hidden_size=10))
    payload["config"] = dict(payload["config"], hidden_size=12)  # weights stay 10-wide
    path = tmp_path / "mismatch.pt"
    atomic_torch_save(payload, path)
    with pytest.raises(CheckpointError, match="shape"):
        load_rule(path)


def test_load_missing_weight_raises(tmp_path):
    payload = rule_payload(L2LOptimizer(hidden_size=10))
    del payload["state_dict"]["head.bias"]
    atomic_torch_save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="head.bias"):
        load_rule(tmp_path / "m.pt")


def test_load_wrong_kind_or_format_raises(tmp_path):
    save_rule(L2LOptimizer(hidden_size=4), tmp_path / "r.pt")
    with pytest.raises(CheckpointError, match="other-kind"):
        load_rule(tmp_path / "r.pt", expected_kind="other-kind")
    atomic_torch_save({"format": "something/else"}, tmp_path / "f.pt")
    with pytest.raises(CheckpointError, match="not a learnt model file"):
        load_rule(tmp_path / "f.pt")


def test_load_corrupt_random_bytes_names_path(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError) as exc:
        load_rule(path)
    assert str(path) in str(exc.value)


def test_load_truncated_file_names_path(tmp_path):
    path = tmp_path / "trunc.pt"
    save_rule(L2LOptimizer(hidden_size=4), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as exc:
        load_rule(path)
    assert str(path) in str(exc.value)


def test_load_missing_file_raises(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError) as exc:
        load_rule(path)
    assert str(path) in str(exc.value)
