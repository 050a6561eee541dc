"""The learnt command, run in-process on tiny budgets."""
import json

import pytest

from learnt.cli import main

TINY = ["--quick", "--no-progress", "--device", "cpu",
        "--set", "train.iterations=3", "--set", "train.unroll_steps=6", "--set", "train.truncation=3",
        "--set", "train.val_every=2", "--set", "task.n_problems=4", "--set", "eval.steps=6",
        "--set", "eval.val_problems=5", "--set", "eval.test_problems=6",
        "--set", "baselines.lr_low=0.01", "--set", "baselines.lr_high=1", "--set", "baselines.per_decade=1"]


def test_list_names_the_experiments(capsys):
    assert main(["list"]) == 0
    assert "l2l-quadratic" in capsys.readouterr().out


def test_reproduce_writes_results_in_the_one_format(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "l2l-quadratic", "--out", str(out), *TINY]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["experiment"] == "l2l-quadratic" and res["budget"] == "quick" and res["seed"] == 0
    assert res["config"]["train"]["iterations"] == 3
    assert res["environment"]["device"] == "cpu"
    methods = {r["method"] for r in res["rows"]}
    assert methods == {"lstm", "sgd", "nag", "rmsprop", "adam"}
    for r in res["rows"]:
        assert r["metric"] == "final_loss" and r["n"] == 6
        assert ("lr" in r) != (r["method"] == "lstm")
    lstm = next(r for r in res["rows"] if r["method"] == "lstm")
    assert set(lstm["p_vs"]) == {"sgd", "nag", "rmsprop", "adam"}
    assert all(0 <= p <= 1 for p in lstm["p_vs"].values())
    assert len(res["curves"]["adam"]["mean"]) == 7
    assert (out / "loss_vs_step.png").stat().st_size > 1000
    assert (out / "meta" / "best.pt").exists()
    assert "final_loss" in capsys.readouterr().out
    # evaluate the trained rule file on its own
    assert main(["evaluate", "l2l-quadratic", "--checkpoint", str(out / "meta" / "best.pt"),
                 "--out", str(tmp_path / "eval"), *TINY]) == 0
    again = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in res["rows"]]


@pytest.mark.parametrize("args, message", [
    (["reproduce", "nope"], "unknown experiment 'nope'"),
    (["reproduce", "l2l-quadratic", "--set", "train.bogus=1"], "unknown config key 'train.bogus'"),
    (["reproduce", "l2l-quadratic", "--set", "train.iterations=x"], "expected an integer"),
    (["reproduce", "l2l-quadratic", "--device", "tpu"], "--device 'tpu'"),
])
def test_bad_input_is_one_clear_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_evaluate_with_a_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "l2l-quadratic", "--checkpoint", str(bad), *TINY]) == 2
    err = capsys.readouterr().err
    assert "corrupt or not a learnt checkpoint" in err and str(bad) in err


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["meta-train", "l2l-quadratic", "--resume", "--out", str(tmp_path), *TINY]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_table_on_rows_without_mean_names_the_problem(tmp_path, capsys):
    import json as _json
    p = tmp_path / "results.json"
    p.write_text(_json.dumps({"rows": [{"method": "a", "setting": "s", "metric": "m", "n": 1}]}))
    assert main(["table", str(p)]) == 2
    err = capsys.readouterr().err
    assert "row 0 lacks ['mean']" in err and err.count("\n") == 1


def test_internal_errors_keep_their_traceback(monkeypatch):
    import learnt.cli as cli

    def broken(args):
        raise KeyError("an internal bug")
    monkeypatch.setattr(cli, "_run", broken)
    with pytest.raises(KeyError):
        cli.main(["list"])


def test_unknown_experiment_is_still_one_line(capsys):
    assert main(["reproduce", "nope", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nope'" in err and err.count("\n") == 1
