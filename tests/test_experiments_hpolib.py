"""blackbox-hpolib: the HPOLib tables as Optuna objectives a user would write."""
import json

import optuna
import pytest

from learnt.cli import main
from learnt.experiments.blackbox_hpolib import HPOLibObjective, table_minimum

TINY = ["--quick", "--no-progress", "--threads", "1", "--set", "tables=naval_propulsion",
        "--set", "suite.report_at=3,5", "--set", "suite.evals=5", "--set", "suite.gp_evals=5",
        "--set", "suite.n_seeds=2", "--set", "suite.baselines=random,tpe", "--set", "suite.timing_seeds=1"]


def test_objective_snaps_user_style_suggestions_to_table_values():
    obj = HPOLibObjective("protein_structure", seed=0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study.optimize(obj, n_trials=8)
    finally:
        optuna.logging.set_verbosity(previous)
    best = table_minimum("protein_structure")
    assert all(t.value >= best for t in study.trials)
    p = study.trials[0].params
    assert obj._snap("init_lr", p["init_lr"]) in obj.space["init_lr"]
    assert obj._snap("n_units_1", 300) == 256 and obj._snap("n_units_1", 17) == 16 and obj._snap("dropout_1", 0.2) == 0.3
    assert obj._snap("batch_size", 11) == 8 and obj._snap("batch_size", 12) == 16      # nearest in log space


def test_tiny_run_is_seeded_and_scores_log_regret(tmp_path):
    assert main(["reproduce", "blackbox-hpolib", *TINY, "--out", str(tmp_path / "a")]) == 0
    assert main(["reproduce", "blackbox-hpolib", *TINY, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    strip = lambda rows: [r for r in rows if not r["metric"].startswith("suggest_ms")]  # noqa: E731
    assert strip(a["rows"]) == strip(b["rows"])
    reg = [r for r in a["rows"] if r["metric"] == "regret@5"]
    assert {r["method"] for r in reg} == {"learned-ei", "learned-acq", "random", "tpe"}
    assert all(0 <= r["mean"] < 6 for r in reg)
    assert "p_vs" in next(r for r in reg if r["method"] == "learned-ei")
    assert (tmp_path / "a" / "regret_vs_evals.png").exists()


def test_hpobench_tables_are_refused(tmp_path, capsys):
    assert main(["reproduce", "blackbox-hpolib", "--quick", "--no-progress", "--out", str(tmp_path),
                 "--set", "tables=cnn_2d"]) == 2
    assert "cnn_2d" in capsys.readouterr().err


def test_objectives_share_the_table_but_not_the_noise():
    a, b, c = (HPOLibObjective("naval_propulsion", s) for s in (1, 1, 2))
    cfg = {k: v[0] for k, v in a.space.items()}
    draws = lambda o: [o.bench(cfg)["val_loss"] for _ in range(12)]  # noqa: E731
    first = draws(a)
    assert draws(b) == first and draws(c) != first          # same seed, same noise; another seed, other draws
    assert a.bench._dataset is b.bench._dataset
