"""The neural-network reproductions (l2l-mlp, l2l-conv, l2l-generalization), in-process on tiny budgets."""
from __future__ import annotations

import json

import pytest

from learnt.cli import main
from learnt.learned import L2LOptimizer, PartitionedRule, load_rule

TINY_SETTINGS = ["train.iterations=2", "train.unroll_steps=4", "train.truncation=2", "train.val_every=1",
                 "eval.steps=3", "long_steps=5", "eval.val_problems=2", "eval.test_problems=3",
                 "baselines.lr_low=0.01", "baselines.lr_high=1", "baselines.per_decade=1", "task.batch_size=16"]
BASELINES = {"sgd", "nag", "rmsprop", "adam"}
METRICS = ["final_loss", "heldout_loss", "heldout_accuracy"]


def _args(settings, prefix=""):
    out = ["--no-progress", "--device", "cpu"]
    for s in settings:
        out += ["--set", prefix + s]
    return out


def _rows_by_key(rows):
    return {(r["setting"], r["method"], r["metric"]): r for r in rows}


def _check_rows(rows, learned: str, settings: list[str], steps: dict[str, int]):
    methods = {learned} | BASELINES
    keys = _rows_by_key(rows)
    assert len(keys) == len(rows) == len(settings) * len(methods) * len(METRICS)
    assert set(keys) == {(s, m, x) for s in settings for m in methods for x in METRICS}
    assert [r["setting"] for r in rows] == [s for s in settings for _ in range(len(methods) * len(METRICS))]
    for r in rows:
        assert r["n"] == 3 and r["step"] == steps[r["setting"]]
        if r["method"] == learned:
            assert set(r["p_vs"]) == BASELINES and all(0 <= p <= 1 for p in r["p_vs"].values())
            assert "lr" not in r
        else:
            assert "p_vs" not in r and 0.01 <= r["lr"] <= 1.0
        if r["metric"] == "heldout_accuracy":
            assert 0 <= r["mean"] <= 1
        else:
            assert isinstance(r["mean"], float) and 0 < r["mean"] < 10  # finite cross-entropy
    return keys


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("l2l-mlp")
    assert main(["reproduce", "l2l-mlp", "--out", str(out), *_args(TINY_SETTINGS)]) == 0
    return out


def test_reproduce_l2l_mlp(mlp_run):
    res = json.loads((mlp_run / "results.json").read_text())
    assert res["experiment"] == "l2l-mlp"
    assert res["config"]["train"]["iterations"] == 2 and res["config"]["task"]["batch_size"] == 16
    _check_rows(res["rows"], "lstm", ["3 steps", "5 steps"], {"3 steps": 3, "5 steps": 5})
    assert set(res["curves_by_setting"]) == {"3 steps", "5 steps"}
    assert len(res["curves_by_setting"]["5 steps"]["lstm"]["mean"]) == 6
    assert (mlp_run / "loss_vs_step.png").stat().st_size > 1000
    log = [json.loads(line) for line in (mlp_run / "meta" / "log.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in log if "iteration" in e][-1] == 1  # 2 meta-iterations ran
    assert isinstance(load_rule(mlp_run / "meta" / "best.pt", expected_kind="l2l-lstm"), L2LOptimizer)


def test_reproduce_l2l_conv(tmp_path):
    out = tmp_path / "conv"
    assert main(["reproduce", "l2l-conv", "--out", str(out), *_args(TINY_SETTINGS + ["task.channels=4,4"])]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == "l2l-conv" and res["config"]["task"]["channels"] == [4, 4]
    _check_rows(res["rows"], "lstm-2", ["3 steps", "5 steps"], {"3 steps": 3, "5 steps": 5})
    assert (out / "loss_vs_step.png").stat().st_size > 1000
    rule = load_rule(out / "meta" / "best.pt", expected_kind="partitioned")
    assert isinstance(rule, PartitionedRule) and set(rule.rules) == {"conv", "fc"}


def test_reproduce_l2l_generalization_from_a_rule_file(mlp_run, tmp_path):
    out = tmp_path / "gen"
    source = mlp_run / "meta" / "best.pt"
    assert main(["reproduce", "l2l-generalization", "--out", str(out), "--set", f"source={source}",
                 *_args(TINY_SETTINGS, prefix="base.")]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == "l2l-generalization" and res["config"]["source"] == str(source)
    settings = ["base", "40 units", "2 layers", "relu"]
    gen = _check_rows(res["rows"], "lstm", settings, {s: 3 for s in settings})
    assert (out / "generalization.png").stat().st_size > 1000
    assert not (out / "meta").exists()  # the rule came from the file, nothing was meta-trained
    # the 'base' setting is the l2l-mlp test at its first horizon: same rule, same problems
    mlp = _rows_by_key(json.loads((mlp_run / "results.json").read_text())["rows"])
    for metric in METRICS:
        assert gen[("base", "lstm", metric)]["mean"] == pytest.approx(mlp[("3 steps", "lstm", metric)]["mean"], rel=1e-6)
    # and the other settings really are other networks
    finals = {s: gen[(s, "sgd", "final_loss")]["mean"] for s in settings}
    assert len(set(finals.values())) == len(settings), finals
