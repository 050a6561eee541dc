"""``nas-digits`` end to end on a tiny budget: rows, plots, architecture rendering, resume."""
import dataclasses
import json

import pytest

from learnt.experiments.base import RunContext, run_experiment
from learnt.experiments.nas import NAS_DIGITS, RetrainConfig
from learnt.nas import Architecture, SearchConfig

METRICS = ["best_val_acc", "late_val_acc", "retrained_val_acc", "test_acc"]


def tiny_config():
    cfg = NAS_DIGITS.config("quick")
    return dataclasses.replace(
        cfg, searches=2,
        search=SearchConfig(batches=2, batch_size=2, min_layers=1, max_layers=2, curriculum_every=1, lr=0.05),
        child=dataclasses.replace(cfg.child, epochs=1, batch_size=256),
        retrain=RetrainConfig(top_k=2, seeds=2, epochs=1))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nas-digits")
    res = run_experiment(NAS_DIGITS, tiny_config(), RunContext(out=out, seed=0, budget="quick", progress=False))
    return out, res


def test_nas_digits_writes_rows_plots_and_the_best_architecture(run):
    out, res = run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["experiment"] == "nas-digits" and on_disk["budget"] == "quick"
    assert on_disk["config"]["search"]["batches"] == 2 and on_disk["config"]["searches"] == 2
    rows = on_disk["rows"]
    assert [(r["metric"], r["method"]) for r in rows] == [(m, x) for m in METRICS for x in ("controller", "random")]
    for r in rows:
        assert r["setting"] == "digits" and r["n"] == 2 and 0.0 < r["mean"] <= 1.0
        assert ("p_greater_vs" in r) == (r["method"] == "controller")
        if "p_greater_vs" in r:
            assert 0.0 <= r["p_greater_vs"]["random"] <= 1.0
    per = on_disk["per_search"]
    for method in ("controller", "random"):
        # the best of a search is the maximum over its 4 children, never below the late mean
        assert all(b >= late for b, late in zip(per[method]["best_val_acc"], per[method]["late_val_acc"]))
        assert len(on_disk["val_acc_by_child"][method]) == 2 and len(on_disk["val_acc_by_child"][method][0]) == 4
        assert max(on_disk["val_acc_by_child"][method][0]) == per[method]["best_val_acc"][0]
        assert len(on_disk["selected"][method]) == 2
    assert on_disk["curves"]["controller"]["step"] == [2, 4]
    assert "controller" in on_disk["verdict"] and "random" in on_disk["verdict"]
    best = on_disk["best_architecture"]
    arch = Architecture.from_dict(best["architecture"])
    assert best["description"] == arch.describe() and len(best["retrained_test"]) == 2
    assert 1 <= len(arch.layers) <= 2
    for png in ("reward_vs_architectures.png", "best_architecture.png"):
        assert (out / png).stat().st_size > 5000
    assert len(list((out / "searches").glob("*/checkpoint.pt"))) == 4


def test_nas_digits_resumes_finished_searches_from_their_checkpoints(run):
    out, res = run
    again = run_experiment(NAS_DIGITS, tiny_config(), RunContext(out=out, seed=0, budget="quick", progress=False,
                                                                 resume=True))
    assert again["per_search"] == res["per_search"] and again["rows"] == res["rows"]
