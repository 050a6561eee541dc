"""l2l-quadratic-pes in-process on a tiny budget: rows, paired BPTT reference, plots, log."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from learnt.experiments.base import RunContext, run_experiment
from learnt.experiments.pes import L2L_QUADRATIC_PES, config
from learnt.learned import L2LOptimizer, load_rule


def _tiny(cfg):
    return dataclasses.replace(
        cfg, task=dataclasses.replace(cfg.task, n_problems=4),
        train=dataclasses.replace(cfg.train, iterations=2, unroll_steps=4, truncation=2, n_pairs=2,
                                  val_every=1, checkpoint_every=1),
        eval=dataclasses.replace(cfg.eval, steps=3, val_problems=2, test_problems=3),
        baselines=dataclasses.replace(cfg.baselines, lr_low=0.01, lr_high=1.0, per_decade=1))


def test_reproduce_l2l_quadratic_pes(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny(config("quick"))
    assert cfg.train.estimator == "pes"
    res = run_experiment(L2L_QUADRATIC_PES, cfg, RunContext(out=tmp_path, budget="quick", progress=False))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["experiment"] == "l2l-quadratic-pes" and on_disk["config"]["train"]["estimator"] == "pes"
    assert on_disk["command"] == "learnt reproduce l2l-quadratic-pes --seed 0 --quick"
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == {"lstm-pes", "lstm-bptt", "sgd", "nag", "rmsprop", "adam"}
    assert all(r["n"] == 3 and r["metric"] == "final_loss" for r in rows.values())
    pes, bptt = rows["lstm-pes"], rows["lstm-bptt"]
    assert pes["within_bptt_ci95"] == (abs(pes["mean"] - bptt["mean"]) <= bptt["ci95"])
    assert set(pes["p_vs"]) == {"lstm-bptt", "sgd", "nag", "rmsprop", "adam"}
    # the shipped BPTT rule is a good optimizer: it beats plain SGD at lr 0.01..1 on these problems
    assert bptt["mean"] < rows["sgd"]["mean"]
    assert [h["iteration"] for h in res["val_history"]] == [1, 2]
    assert (tmp_path / "loss_vs_step.png").stat().st_size > 1000
    assert (tmp_path / "pes_validation.png").stat().st_size > 1000
    assert isinstance(load_rule(tmp_path / "meta" / "best.pt", expected_kind="l2l-lstm"), L2LOptimizer)


def test_bptt_reference_must_match_the_architecture():
    cfg = dataclasses.replace(config("quick"), optimizer=dataclasses.replace(config("quick").optimizer, hidden_size=7))
    from learnt.experiments.pes import _bptt_rule
    with pytest.raises(ValueError, match="hidden_size"):
        _bptt_rule(cfg)


def test_full_config_is_pes_on_the_l2l_quadratic_setup():
    from learnt.experiments import l2l_quadratic as quad
    full, ref = config("full"), quad.config("full")
    assert full.train.estimator == "pes" and full.train.n_pairs >= 1
    assert (full.optimizer, full.eval, full.baselines) == (ref.optimizer, ref.eval, ref.baselines)
    assert (full.train.unroll_steps, full.train.truncation) == (ref.train.unroll_steps, ref.train.truncation)
