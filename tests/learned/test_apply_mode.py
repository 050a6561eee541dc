"""Apply mode of the L2L LSTM (``update_``): same numbers as ``update``, state in shared buffers."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from learnt.learned import L2LOptimizer
from learnt.optim import RuleOptimizer

SHAPES = {"w": (4, 3), "b": (3,), "s": (), "conv": (2, 1, 3, 3), "one": (1,)}


def _rule(seed=0, **kw):
    torch.manual_seed(seed)
    return L2LOptimizer(**{"hidden_size": 6, **kw})


def _params(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=g, dtype=dtype) for k, s in SHAPES.items()}


def _grads(step, dtype=torch.float32):
    g = torch.Generator().manual_seed(100 + step)
    return {k: torch.randn(s, generator=g, dtype=dtype) * 10.0 ** torch.randint(-5, 1, s, generator=g)
            for k, s in SHAPES.items()}


def _step_scale(rule, lr=None) -> float:
    """The largest step the rule can propose: output_scale * lr * (|head.weight|_1 + |bias|)."""
    lr = rule.lr if lr is None else lr
    return rule.output_scale * lr * float(rule.head.weight.detach().abs().sum() + rule.head.bias.detach().abs().sum())


def _assert_close_rel(got: dict, ref: dict, rule, tol=1e-6):
    """``update_`` equals ``update`` to ``tol`` of the rule's step scale, and to 1e-5 of this
    step's largest update. (``forward_`` computes tanh as 2 sigmoid(2z) - 1, whose float32
    rounding is absolute in the hidden state; measured against the actual step it reaches
    ~3e-6 on the first step from a zero state, against the step scale ~1e-7.)"""
    mag = max(float(u.detach().abs().max()) for u in ref.values())
    assert mag > 0
    assert set(got) == set(ref)
    for k in ref:
        err = float((got[k] - ref[k].detach()).abs().max()) if got[k].numel() else 0.0
        assert err <= tol * _step_scale(rule), (k, err, _step_scale(rule))
        assert err <= 1e-5 * mag, (k, err, mag)


@pytest.mark.parametrize("kw", [{}, {"num_layers": 1}, {"num_layers": 3, "hidden_size": 4}, {"lr": 0.3}],
                         ids=["default", "1-layer", "3-layer", "lr"])
def test_update_inplace_matches_pure_update(kw):
    rule = _rule(**kw)
    params = _params()
    s_pure, s_inplace = rule.init(params), rule.init(params)
    for t in range(5):
        grads = _grads(t)
        u_pure, s_pure = rule.update(grads, s_pure, params)
        u_inplace = rule.update_(grads, s_inplace, params)
        assert set(u_inplace) == set(params)
        _assert_close_rel(u_inplace, u_pure, rule)
        for k in params:
            assert u_inplace[k].shape == params[k].shape and u_inplace[k].dtype == params[k].dtype
            for n in s_pure[k]:
                torch.testing.assert_close(s_inplace[k][n], s_pure[k][n].detach(), atol=1e-6, rtol=0)


def test_update_inplace_passes_lr_through():
    rule = _rule()
    params = _params()
    s1, s2 = rule.init(params), rule.init(params)
    for t in range(2):
        a = rule.update_(_grads(t), s1, params)
        b = rule.update_(_grads(t), s2, params, lr=2.0)
        for k in params:
            torch.testing.assert_close(b[k], 2.0 * a[k], atol=1e-7, rtol=1e-6)


def test_update_inplace_with_a_float64_rule_and_params():
    rule = _rule().double()
    params = _params(torch.float64)
    s_pure, s_inplace = rule.init(params), rule.init(params)
    for t in range(3):
        u_pure, s_pure = rule.update(_grads(t, torch.float64), s_pure, params)
        u_inplace = rule.update_(_grads(t, torch.float64), s_inplace, params)
        _assert_close_rel(u_inplace, u_pure, rule)
        for k in params:
            assert u_inplace[k].dtype == torch.float64 and s_inplace[k]["h0"].dtype == torch.float64


def test_state_lives_in_one_shared_buffer_and_is_reused():
    rule = _rule()
    params = _params()
    state = rule.init(params)
    names = list(params)
    N = sum(p.numel() for p in params.values())
    rule.update_(_grads(0), state, params)
    views = {k: dict(state[k]) for k in names}
    ptrs = {}
    for n in ("h0", "c0", "h1", "c1"):
        base = state[names[0]][n]._base
        assert base is not None and base.shape == (6, N) and base.is_contiguous()
        offset = 0
        for k in names:
            v = state[k][n]
            assert v._base is base, (k, n)
            assert v.shape == (6, params[k].numel()) and v.storage_offset() == offset
            offset += params[k].numel()
        ptrs[n] = base.data_ptr()
    assert len({state[names[0]][n]._base.data_ptr() for n in ptrs}) == 4  # one buffer per state name
    for t in range(1, 5):
        before = {k: {n: v.clone() for n, v in state[k].items()} for k in names}
        rule.update_(_grads(t), state, params)
        for k in names:
            for n in ptrs:
                assert state[k][n] is views[k][n], "update_ replaced a state tensor instead of writing into it"
                assert state[k][n]._base.data_ptr() == ptrs[n]
            assert not torch.equal(state[k]["c1"], before[k]["c1"])  # ... and the state did move


def test_update_inplace_does_not_touch_the_gradients():
    rule = _rule()
    params, grads = _params(), _grads(0)
    keep = {k: g.clone() for k, g in grads.items()}
    state = rule.init(params)
    for _ in range(2):
        rule.update_(grads, state, params)
    for k in grads:
        assert torch.equal(grads[k], keep[k])


# ------------------------------------------------------------------ through RuleOptimizer


def _model(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).to(dtype)


def _data(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(12, 5, generator=g, dtype=dtype), torch.randn(12, 2, generator=g, dtype=dtype)


def _steps(model, opt, n):
    x, y = _data(next(model.parameters()).dtype)
    for _ in range(n):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def test_rule_optimizer_uses_apply_mode_and_matches_pure_updates():
    """A float64 model under the float32 learned rule steps as the pure ``update`` says."""
    rule = _rule()
    model = _model(torch.float64)
    opt = RuleOptimizer(model.parameters(), rule)
    ref_params = {f"0.{i}": p.detach().clone() for i, p in enumerate(model.parameters())}
    ref_state = rule.init(ref_params)
    x, y = _data()
    for _ in range(4):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        grads = {f"0.{i}": p.grad.clone() for i, p in enumerate(model.parameters())}
        opt.step()
        upd, ref_state = rule.update(grads, ref_state, ref_params)
        ref_params = {k: ref_params[k] + upd[k].detach() for k in ref_params}
    for i, p in enumerate(model.parameters()):
        assert p.dtype == torch.float64
        torch.testing.assert_close(p.detach(), ref_params[f"0.{i}"], atol=1e-6, rtol=1e-5)
    states = [opt.state[p] for p in model.parameters()]
    assert all(s["h0"].dtype == torch.float32 for s in states)
    assert len({s["h0"]._base.data_ptr() for s in states}) == 1  # the apply-mode shared buffer
    ptr = states[0]["h0"]._base.data_ptr()
    _steps(model, opt, 2)
    assert opt.state[next(model.parameters())]["h0"]._base.data_ptr() == ptr


def test_load_state_dict_then_step_matches_an_uninterrupted_run():
    rule = _rule()
    run, resumed = _model(), _model()
    opt = RuleOptimizer(run.parameters(), rule)
    _steps(run, opt, 3)
    resumed.load_state_dict(run.state_dict())
    opt2 = RuleOptimizer(resumed.parameters(), rule)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    # torch.optim casts floating state to the parameters' dtype: the rule must cope
    loaded = opt2.state[next(resumed.parameters())]
    assert loaded["h0"].dtype == torch.float64 and loaded["h0"].abs().sum() > 0
    _steps(run, opt, 3)
    _steps(resumed, opt2, 3)
    for a, b in zip(run.parameters(), resumed.parameters()):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=0)
    st = opt2.state[next(resumed.parameters())]
    assert st["h0"].dtype == torch.float32 and st["h0"]._base is not None  # back in a shared buffer


def test_resume_differs_from_a_fresh_state():
    """Guard for the test above: the LSTM state matters for the next steps."""
    rule = _rule()
    run, fresh = _model(), _model()
    opt = RuleOptimizer(run.parameters(), rule)
    _steps(run, opt, 3)
    fresh.load_state_dict(run.state_dict())
    opt_fresh = RuleOptimizer(fresh.parameters(), rule)
    _steps(run, opt, 2)
    _steps(fresh, opt_fresh, 2)
    assert any(not torch.allclose(a, b, atol=1e-9) for a, b in zip(run.parameters(), fresh.parameters()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_state_dict_round_trips_through_torch_save_weights_only(tmp_path, dtype):
    rule = _rule()
    run, resumed = _model(dtype), _model(dtype)
    opt = RuleOptimizer(run.parameters(), rule, lr=0.5)
    _steps(run, opt, 3)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    resumed.load_state_dict(run.state_dict())
    sd = torch.load(tmp_path / "opt.pt", weights_only=True)
    for pid, st in opt.state_dict()["state"].items():
        for n, v in st.items():
            assert torch.equal(sd["state"][pid][n], v)
    opt2 = RuleOptimizer(resumed.parameters(), rule)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.5
    _steps(run, opt, 3)
    _steps(resumed, opt2, 3)
    for a, b in zip(run.parameters(), resumed.parameters()):
        torch.testing.assert_close(b, a, atol=1e-12 if dtype == torch.float64 else 1e-7, rtol=0)
