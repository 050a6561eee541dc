"""ES / PES meta-gradient estimators: agreement with BPTT, PES unbiasedness, trainer wiring."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from learnt.errors import NonFiniteError
from learnt.learned import L2LOptimizer
from learnt.meta import PES, AntitheticES, MetaTrainConfig, MetaTrainer, TruncatedBPTT, make_estimator
from learnt.tasks import QuadraticFamily
from learnt.tasks.base import no_batches


class LogLRSGD(nn.Module):
    """Toy learned rule: SGD with a learned log learning rate (float64, one parameter)."""

    kind = "toy-loglr"

    def __init__(self, log_lr: float) -> None:
        super().__init__()
        self.log_lr = nn.Parameter(torch.tensor(log_lr, dtype=torch.float64))

    def config(self):
        return {}

    def init(self, params, n_problems=1):
        return {k: {} for k in params}

    def update(self, grads, state, params, *, lr=None, loss=None):
        return {k: -torch.exp(self.log_lr) * g for k, g in grads.items()}, state


class ScaledQuadratics:
    """K one-dimensional problems 0.5 a_k x^2 from x = 1: x_t = (1 - lr a_k)^t."""

    def __init__(self, a=(0.5, 1.0, 1.5, 2.0)) -> None:
        self.a = torch.tensor(a, dtype=torch.float64)
        self.n_problems = len(a)

    def init_params(self, g):
        return {"x": torch.ones(self.n_problems, dtype=torch.float64)}

    def loss(self, params, batch=None):
        return 0.5 * self.a * params["x"] ** 2

    def batches(self, split="train", g=None):
        return no_batches()


def _analytic(log_lr: float, T: int, n: int, a=(0.5, 1.0, 1.5, 2.0)) -> tuple[float, float]:
    """(full-run, truncated) d/dlog_lr of sum_t mean_k 0.5 a x_t^2 over n truncations of T steps."""
    lr = math.exp(log_lr)

    def d(t, t_in, ak):  # dependence through the last t_in steps only
        return ak * t_in * (1 - lr * ak) ** (2 * t - 1) * (-ak * lr)
    full = sum(d(t, t, ak) for t in range(1, n * T + 1) for ak in a) / len(a)
    trunc = sum(d(t, (t - 1) % T + 1, ak) for t in range(1, n * T + 1) for ak in a) / len(a)
    return full, trunc


def _run_grad(est, rule, task, truncations, steps, seed=0):
    """Sum of the estimator's gradients over one run's truncations, phi held fixed."""
    g = torch.Generator().manual_seed(seed)
    params = task.init_params(g)
    state = rule.init(params, task.n_problems)
    if hasattr(est, "start_run"):
        params, state = est.start_run(rule, task, params, state, g)
    batches, f0 = task.batches("train", g), None
    rule.zero_grad(set_to_none=True)
    for _ in range(truncations):
        params, state, _, curve = est.estimate(rule, task, params, state, batches, steps, f0)
        f0 = curve[0] if f0 is None else f0
    return torch.cat([p.grad.reshape(-1) for p in rule.parameters() if p.requires_grad]).clone()


LOG_LR, T, N = -3.0, 5, 3


def test_toy_reference_gradients_match_analytic():
    rule, task = LogLRSGD(LOG_LR), ScaledQuadratics()
    full, trunc = _analytic(LOG_LR, T, N)
    g_full = _run_grad(TruncatedBPTT(second_order=True), rule, task, 1, N * T)
    g_trunc = _run_grad(TruncatedBPTT(second_order=True), rule, task, N, T)
    assert g_full.item() == pytest.approx(full, rel=1e-9)
    assert g_trunc.item() == pytest.approx(trunc, rel=1e-9)
    assert abs(trunc - full) > 0.4 * abs(full)  # truncation really is biased on this toy


def test_pes_is_unbiased_where_truncation_is_biased():
    rule, task = LogLRSGD(LOG_LR), ScaledQuadratics()
    full, trunc = _analytic(LOG_LR, T, N)
    # 6 seeds x 50 antithetic pairs; one pair's PES estimate has std ~1.1 |full| here, so the
    # mean's standard error is ~0.065 |full| while |full - trunc| is ~0.49 |full|
    pes = torch.stack([_run_grad(PES(sigma=0.05, n_pairs=50), rule, task, N, T, seed=s) for s in range(6)])
    es = torch.stack([_run_grad(AntitheticES(sigma=0.05, n_pairs=50), rule, task, N, T, seed=s) for s in range(6)])
    # phi was restored exactly after all the perturbations
    assert rule.log_lr.item() == LOG_LR
    pes_mean, es_mean = pes.mean().item(), es.mean().item()
    # PES hits the full-run gradient, ES (like truncated BPTT) the truncated one
    assert pes_mean == pytest.approx(full, rel=0.2), (pes_mean, full, trunc)
    assert abs(pes_mean - trunc) > 0.3 * abs(full)
    assert es_mean == pytest.approx(trunc, rel=0.2), (es_mean, trunc, full)
    assert abs(es_mean - full) > 0.3 * abs(full)
    # the seeds differ (a real estimate, not a constant)
    assert pes.std().item() > 0.01 * abs(full)


def _tiny_l2l_setup(seed=0):
    torch.manual_seed(seed)
    rule = L2LOptimizer(hidden_size=3, num_layers=1)
    task = QuadraticFamily(dim=3, n_problems=4).sample(torch.Generator().manual_seed(1))
    return rule, task


def test_es_and_pes_correlate_with_true_gradient_of_l2l():
    rule, task = _tiny_l2l_setup()
    rule.head.bias.requires_grad_(False)  # else one coordinate dominates the gradient
    other = _tiny_l2l_setup(seed=5)[0]
    other.head.bias.requires_grad_(False)
    before = {k: v.clone() for k, v in rule.state_dict().items()}
    true = _run_grad(TruncatedBPTT(second_order=True), rule, task, 1, 5)
    other_true = _run_grad(TruncatedBPTT(second_order=True), other, task, 1, 5)
    es = _run_grad(AntitheticES(sigma=1e-3, n_pairs=150), rule, task, 1, 5)
    # 75 parameters, 150 pairs: expected cosine ~0.8 in the linear regime
    cos = torch.nn.functional.cosine_similarity(true, es, dim=0).item()
    assert cos > 0.7, cos
    # closer to its own rule's gradient than to another rule's (the meta-gradients of two
    # random LSTMs are themselves aligned, cosine ~0.75)
    assert cos > torch.nn.functional.cosine_similarity(other_true, es, dim=0).item() + 0.1
    assert es.norm().item() == pytest.approx(true.norm().item(), rel=0.5)
    for k, v in rule.state_dict().items():
        assert torch.equal(v, before[k]), k
    # on a run's first truncation PES's accumulator is the perturbation itself: PES == ES
    pes = _run_grad(PES(sigma=1e-3, n_pairs=150), rule, task, 1, 5)
    torch.testing.assert_close(pes, es, rtol=1e-4, atol=1e-6)


def test_pes_memory_does_not_keep_a_graph():
    rule, task = _tiny_l2l_setup()
    g = torch.Generator().manual_seed(0)
    est = PES(n_pairs=2)
    params = task.init_params(g)
    params, state = est.start_run(rule, task, params, rule.init(params, task.n_problems), g)
    params, state, value, curve = est.estimate(rule, task, params, state, task.batches("train", g), 4)
    assert curve.shape == (5, task.n_problems) and not curve.requires_grad
    assert all(not p.requires_grad for p in params.values())
    assert state.truncations == 1 and len(state.particles) == 4
    # antithetic accumulators: xi of pair 0 is its first perturbation, nonzero
    assert any(x.abs().sum() > 0 for x in state.xi[0])
    # start_run is the reset: accumulators back to zero
    _, fresh = est.start_run(rule, task, params, rule.init(params, task.n_problems), g)
    assert all(x.abs().sum() == 0 for xi in fresh.xi for x in xi)


def test_estimators_raise_on_divergence():
    rule, task = _tiny_l2l_setup()
    with torch.no_grad():
        rule.head.bias.fill_(1e30)
    bias = rule.head.bias.detach().clone()
    g = torch.Generator().manual_seed(0)
    p = task.init_params(g)
    for est in (AntitheticES(n_pairs=1), PES(n_pairs=1)):
        pp, s = est.start_run(rule, task, p, rule.init(p, task.n_problems), g)
        with pytest.raises(NonFiniteError):
            est.estimate(rule, task, pp, s, task.batches("train", g), 30)
    assert torch.equal(rule.head.bias.detach(), bias)  # restored even after the error


def test_config_selects_estimator_and_validates():
    assert isinstance(make_estimator(MetaTrainConfig()), TruncatedBPTT)
    assert isinstance(make_estimator(MetaTrainConfig(estimator="es")), AntitheticES)
    pes = make_estimator(MetaTrainConfig(estimator="pes", sigma=0.1, n_pairs=3))
    assert isinstance(pes, PES) and (pes.sigma, pes.n_pairs) == (0.1, 3)
    with pytest.raises(ValueError, match="estimator='adam'"):
        MetaTrainConfig(estimator="adam")
    with pytest.raises(ValueError, match="sigma=0"):
        MetaTrainConfig(sigma=0.0)
    with pytest.raises(ValueError, match="task_shards=-1"):
        MetaTrainConfig(task_shards=-1)


@pytest.mark.parametrize("name", ["es", "pes"])
def test_trainer_with_es_pes_is_deterministic_and_updates_phi(name, tmp_path):
    fam = QuadraticFamily(dim=5, n_problems=8)
    cfg = MetaTrainConfig(iterations=3, unroll_steps=6, truncation=3, meta_lr=1e-2, estimator=name,
                          n_pairs=2, task_shards=2, val_every=3, checkpoint_every=3)

    def train(out):
        torch.manual_seed(0)
        rule = L2LOptimizer(hidden_size=4)
        init = {k: v.clone() for k, v in rule.state_dict().items()}
        MetaTrainer(rule, fam, cfg, seed=1, out_dir=out, progress=False).train()
        return init, rule.state_dict()

    init, a = train(tmp_path / "a")
    _, b = train(None)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], init[k]) for k in a)


def test_pes_training_resumes_to_identical_numbers(tmp_path):
    fam = QuadraticFamily(dim=5, n_problems=4)
    cfg = MetaTrainConfig(iterations=4, unroll_steps=6, truncation=3, meta_lr=1e-2, estimator="pes",
                          n_pairs=2, val_every=2, checkpoint_every=2)

    def trainer(c, out, seed_rule=0):
        torch.manual_seed(seed_rule)
        return MetaTrainer(L2LOptimizer(hidden_size=4), fam, c, seed=1, out_dir=out, progress=False)

    a = trainer(cfg, tmp_path / "a")
    a.train()
    from dataclasses import replace
    trainer(replace(cfg, iterations=2), tmp_path / "b").train()
    b = trainer(cfg, tmp_path / "b", seed_rule=7)  # weights must come from the checkpoint
    b.train(resume=True)
    sa, sb = a.rule.state_dict(), b.rule.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
