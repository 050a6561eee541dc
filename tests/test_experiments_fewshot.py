"""fewshot-glyphs and fewshot-sinusoid end to end on tiny budgets (in-process, via run_experiment)."""
import json

import pytest

from learnt.config import override
from learnt.experiments.base import RunContext, run_experiment
from learnt.experiments.fewshot import FEWSHOT_GLYPHS, FEWSHOT_SINUSOID

GLYPH_METHODS = {"lstm", "maml", "fomaml", "protonet", "nearest-neighbour", "finetune"}


def _tiny_glyphs(cache):
    return ["data.drawers=7", "data.max_per_alphabet=2", f"data.cache_dir={cache}", "n_query=2", "filters=4",
            "lstm_episodes=2", "train.episodes=2", "train.val_every=1", "pretrain_batches=2", "test_episodes=4",
            "val_episodes=2", "tune_episodes=1", "gate_episodes=2", "finetune_lrs=0.1,1.0", "finetune_steps=2",
            "lstm_steps_1shot=3", "lstm_steps_5shot=2", "maml_steps=1"]


def test_fewshot_glyphs_tiny(tmp_path):
    cfg = override(FEWSHOT_GLYPHS.config("quick"), _tiny_glyphs(tmp_path / "cache"))
    out = tmp_path / "run"
    res = run_experiment(FEWSHOT_GLYPHS, cfg, RunContext(out=out, seed=0, budget="quick", progress=False))
    disk = json.loads((out / "results.json").read_text())
    assert disk["experiment"] == "fewshot-glyphs" and disk["budget"] == "quick"
    rows = {(r["setting"], r["method"]): r for r in disk["rows"]}
    assert set(rows) == {(f"5-way {k}-shot", m) for k in (1, 5) for m in GLYPH_METHODS}
    for r in disk["rows"]:
        assert r["metric"] == "accuracy" and r["n"] == 4 and 0 <= r["mean"] <= 100 and r["ci95"] >= 0
    assert rows[("5-way 1-shot", "lstm")]["inner_steps"] == 3 and rows[("5-way 5-shot", "lstm")]["inner_steps"] == 2
    assert rows[("5-way 1-shot", "finetune")]["lr"] in (0.1, 1.0)
    gates = disk["gates"]["5-way 1-shot"]
    assert len(gates["input"]) == 3 and all(0 < v < 1 for step in gates["input"] for v in step)
    assert set(disk["curves"]) == {f"{m} ({k}shot)" for m in ("lstm", "maml", "fomaml", "protonet") for k in (1, 5)}
    assert disk["curves"]["lstm (1shot)"]["step"] == [1, 2]
    assert (out / "accuracy_vs_episodes.png").stat().st_size > 0 and (out / "gates.png").stat().st_size > 0
    assert (out / "train" / "lstm-5shot" / "checkpoint.pt").exists()
    # trained methods load back and give the same table
    trained = FEWSHOT_GLYPHS.load_trained(cfg, str(out))
    again = run_experiment(FEWSHOT_GLYPHS, cfg, RunContext(out=tmp_path / "again", seed=0, budget="quick",
                                                           progress=False), trained=trained)
    assert [r["mean"] for r in again["rows"]] == pytest.approx([r["mean"] for r in res["rows"]])


def test_fewshot_sinusoid_tiny(tmp_path):
    cfg = override(FEWSHOT_SINUSOID.config("quick"), [
        "maml_train.episodes=2", "maml_train.meta_batch=2", "maml_train.val_every=1", "lstm_train.episodes=2",
        "lstm_train.meta_batch=2", "lstm_train.val_every=1", "pretrain_batches=2", "val_episodes=3",
        "test_episodes=5", "inner_steps=2", "hidden=8", "finetune_lrs=0.01,0.1"])
    out = tmp_path / "run"
    run_experiment(FEWSHOT_SINUSOID, cfg, RunContext(out=out, seed=0, budget="quick", progress=False))
    disk = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in disk["rows"]} == {"lstm", "maml", "fomaml", "finetune"}
    for r in disk["rows"]:
        assert r["metric"] == "mse" and r["n"] == 5 and 0 < r["mean"] < 30 and r["setting"] == "10-shot, 2 steps"
    assert (out / "val_mse_vs_iterations.png").exists()


def test_bad_method_name_is_rejected():
    with pytest.raises(Exception, match="unknown"):
        override(FEWSHOT_GLYPHS.config("quick"), ["methods=lstm,matchingnet"])


def test_fewshot_glyphs_evaluates_the_shipped_meta_learner(tmp_path):
    cfg = override(FEWSHOT_GLYPHS.config("quick"), _tiny_glyphs(tmp_path / "cache"))
    trained = FEWSHOT_GLYPHS.load_pretrained(cfg)
    res = run_experiment(FEWSHOT_GLYPHS, cfg, RunContext(out=tmp_path / "run", seed=0, budget="quick", progress=False),
                         trained=trained)
    assert {(r["setting"], r["method"]) for r in res["rows"]} == {("5-way 1-shot", "lstm"), ("5-way 5-shot", "lstm")}
    assert all(r["mean"] > 60 for r in res["rows"])  # chance is 20%
