"""The three HRNN experiments end to end on tiny budgets (the plumbing, not the science)."""
import json

import pytest

from learnt.cli import main

COMMON = ["--quick", "--no-progress", "--device", "cpu"]
TRAIN = ["--set", "train.iterations=2", "--set", "train.truncation=3", "--set", "train.truncations_mean=1",
         "--set", "train.truncation_extra_mean=1", "--set", "train.val_every=1",
         "--set", "eval.steps=4", "--set", "eval.val_tasks=2", "--set", "eval.val_problems=2",
         "--set", "eval.test_tasks=3", "--set", "eval.test_problems=2", "--set", "ensemble.n_problems=2",
         "--set", "baselines.lr_low=0.01", "--set", "baselines.lr_high=1", "--set", "baselines.per_decade=1",
         "--set", "lstm="]


def test_hrnn_experiments_write_results(tmp_path):
    out = tmp_path / "ens"
    assert main(["reproduce", "hrnn-ensemble", "--out", str(out), *COMMON, *TRAIN]) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {(r["method"], r["metric"]) for r in res["rows"]}
    assert rows == {(m, "log10_ratio") for m in ("hrnn", "sgd", "rmsprop", "adam")}
    hrnn = next(r for r in res["rows"] if r["method"] == "hrnn")
    assert hrnn["n"] == 6 and set(hrnn["p_vs"]) == {"sgd", "rmsprop", "adam"}
    assert res["curves"]["hrnn"]["mean"][0] == 0.0  # log10(f_0 / f_0)
    assert (out / "progress_vs_step.png").exists()
    rule = str(out / "meta" / "best.pt")

    gen = tmp_path / "gen"
    assert main(["reproduce", "hrnn-generalization", "--out", str(gen), *COMMON, "--set", f"source={rule}",
                 "--set", "settings=mlp relu,conv", "--set", "eval.steps=3", "--set", "eval.val_problems=2",
                 "--set", "eval.test_problems=2", "--set", "baselines.per_decade=1", "--set", "baselines.lr_low=0.01",
                 "--set", "baselines.lr_high=1", "--set", "lstm="]) == 0
    res = json.loads((gen / "results.json").read_text())
    assert {r["setting"] for r in res["rows"]} == {"mlp relu", "conv"}
    assert {r["metric"] for r in res["rows"]} == {"final_loss", "heldout_loss", "heldout_accuracy"}

    lr = tmp_path / "lr"
    assert main(["reproduce", "hrnn-lr-robustness", "--out", str(lr), *COMMON, "--set", f"source={rule}",
                 "--set", "steps=3", "--set", "test_problems=2", "--set", "per_decade=1"]) == 0
    res = json.loads((lr / "results.json").read_text())
    ratio_rows = {r["method"]: r for r in res["rows"] if r["metric"] == "worst_to_best_ratio"}
    assert set(ratio_rows) == {"hrnn", "rmsprop", "adam"}
    for m, r in ratio_rows.items():   # the ratio is the sweep's worst over its best, at the lrs it names
        finals = [float(v) for v in res["sweep"][m]["final_loss"]]
        lrs = res["sweep"][m]["lr"]
        if r["mean"] != "inf":
            assert r["mean"] == pytest.approx(max(finals) / min(finals))
        assert r["best"] == pytest.approx(min(finals)) and r["best_lr"] == lrs[finals.index(min(finals))]
    assert len(res["sweep"]["adam"]["lr"]) == 5  # 1e-5 .. 1e-1, one per decade
    assert (lr / "lr_robustness.png").exists()


def test_missing_rule_file_is_a_clear_error(tmp_path, capsys):
    assert main(["reproduce", "hrnn-lr-robustness", "--out", str(tmp_path), *COMMON, "--set", "source=nope.pt"]) == 2
    assert "nope.pt" in capsys.readouterr().err
