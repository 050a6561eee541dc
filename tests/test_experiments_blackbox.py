"""blackbox-* experiments end to end on tiny budgets (the numbers themselves come from `learnt reproduce`)."""
import dataclasses
import json

import pytest
import torch

from learnt.blackbox import AcquisitionProposer, AcquisitionTrainConfig, BlackBoxTrainConfig, GPPrior, LSTMProposer
from learnt.errors import ConfigError
from learnt.experiments import blackbox as B
from learnt.experiments.base import RunContext, run_experiment

TINY_SUITE = B.SuiteConfig(n_seeds=3, evals=6, report_at=(3, 6), baselines=("random", "tpe", "gp", "cmaes"),
                           gp_evals=4, timing_seeds=1)


def _check(results, settings, methods):
    rows = results["rows"]
    for s in settings:
        for m in methods:
            got = {r["metric"] for r in rows if r["setting"] == s and r["method"] == m}
            assert "regret@3" in got and any(g.startswith("suggest_ms@") for g in got), (s, m, got)
    regrets = [r for r in rows if r["metric"].startswith("regret@")]
    assert all(r["mean"] >= -1e-9 and r["n"] == 3 for r in regrets)
    # regret is monotone in the number of evaluations, for every method
    for s in settings:
        for m in methods:
            r3 = next(r for r in rows if (r["setting"], r["method"], r["metric"]) == (s, m, "regret@3"))
            r6 = [r for r in rows if (r["setting"], r["method"], r["metric"]) == (s, m, "regret@6")]
            if r6:
                assert r6[0]["mean"] <= r3["mean"] + 1e-9


def test_blackbox_gp_tiny(tmp_path):
    cfg = dataclasses.replace(
        B.gp_config("quick"), proposer=B.ProposerConfig(max_dim=3, hidden=8), losses=("oi", "ei", "acq"), dims=(1, 3),
        acq=AcquisitionTrainConfig(iterations=2, dims=(1, 3), functions_per_dim=2, max_history=6, val_every=2,
                                   checkpoint_every=2, val_functions_per_dim=2, val_horizons=(3, 6)),
        train=BlackBoxTrainConfig(iterations=3, dims=(1, 3), functions_per_dim=2, horizon_start=3, horizon_end=6,
                                  val_every=3, val_functions_per_dim=2, val_horizons=(3, 6), prior=GPPrior(n_features=32)),
        suite=TINY_SUITE)
    res = run_experiment(B.BLACKBOX_GP, cfg, RunContext(out=tmp_path, budget="quick", progress=False))
    _check(res, ["gp-d1", "gp-d3"], ["learned-oi", "learned-ei", "learned-acq", "random", "tpe", "cmaes"])
    assert not any(r["metric"] == "regret@6" and r["method"] == "gp" for r in res["rows"])  # GPSampler ran 4
    assert (tmp_path / "meta-oi" / "best.pt").exists() and (tmp_path / "regret_vs_evals.png").exists()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["experiment"] == "blackbox-gp" and set(on_disk["curves"]) == {"gp-d1", "gp-d3"}
    models = B.load_models(cfg, str(tmp_path))
    assert set(models) == {"oi", "ei", "acq"} and isinstance(models["acq"], AcquisitionProposer)


def test_blackbox_benchmarks_and_hpo_tiny(tmp_path):
    torch.manual_seed(0)
    models = {"oi": LSTMProposer(max_dim=6, hidden=8)}
    cfg = dataclasses.replace(B.bench_config("quick"), functions=("branin", "hartmann6"), losses=("oi",), suite=TINY_SUITE)
    res = run_experiment(B.BLACKBOX_BENCHMARKS, cfg, RunContext(out=tmp_path / "b", budget="quick", progress=False),
                         trained=models)
    _check(res, ["branin", "hartmann6"], ["learned-oi", "random", "tpe", "cmaes"])
    # benchmark minima are exact: true_min is the known minimum (or lower, never higher)
    assert res["true_min"]["hartmann6"][0] <= -3.32 * 0.5 + 1e-6
    hcfg = dataclasses.replace(B.hpo_config("quick"), epochs=1,
                               suite=dataclasses.replace(TINY_SUITE, baselines=("random", "tpe")))
    res = run_experiment(B.BLACKBOX_HPO, hcfg, RunContext(out=tmp_path / "h", budget="quick", progress=False),
                         trained=models)
    _check(res, ["digits-mlp"], ["learned-oi", "random", "tpe"])
    errs = [r for r in res["rows"] if r["metric"] == "val_error@6"]
    assert errs and all(0.0 <= r["mean"] < 0.9 for r in errs)


def test_suite_config_errors():
    with pytest.raises(ConfigError, match="unknown \\['smac'\\]"):
        B.SuiteConfig(baselines=("smac",))
    with pytest.raises(ConfigError, match="report_at"):
        B.SuiteConfig(evals=10, report_at=(20,))
