"""Same command, same seed, same numbers: fresh processes, resumed runs (issue: seeding)."""
import json
import subprocess
import sys

import pytest

HRNN = ["--set", "train.iterations=2", "--set", "train.truncation=3", "--set", "train.truncations_mean=1",
        "--set", "train.truncation_extra_mean=1", "--set", "train.val_every=1", "--set", "eval.steps=4",
        "--set", "eval.val_tasks=2", "--set", "eval.val_problems=2", "--set", "eval.test_tasks=3",
        "--set", "eval.test_problems=2", "--set", "ensemble.n_problems=2", "--set", "baselines.lr_low=0.01",
        "--set", "baselines.lr_high=1", "--set", "baselines.per_decade=1", "--set", "lstm="]
TINY = {
    "hrnn-ensemble": HRNN,
    "l2l-quadratic": ["--set", "train.iterations=3", "--set", "train.unroll_steps=10", "--set", "train.truncation=5",
                      "--set", "train.val_every=3", "--set", "task.n_problems=4", "--set", "eval.steps=10",
                      "--set", "eval.val_problems=4", "--set", "eval.test_problems=4", "--set", "baselines.per_decade=1",
                      "--set", "baselines.lr_low=0.01", "--set", "baselines.lr_high=1"],
}


def _run(name: str, out, seed: int, extra=()) -> list[dict]:
    cmd = [sys.executable, "-m", "learnt.cli", "reproduce", name, "--quick", "--no-progress", "--threads", "1",
           "--device", "cpu", "--seed", str(seed), "--out", str(out), *TINY[name], *extra]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    res = json.loads((out / "results.json").read_text())
    return [{k: v for k, v in r.items() if "wall" not in k} for r in res["rows"]]


@pytest.mark.parametrize("name", sorted(TINY))
def test_two_fresh_processes_give_identical_rows_and_another_seed_differs(name, tmp_path):
    a = _run(name, tmp_path / "a", 0)
    b = _run(name, tmp_path / "b", 0)
    assert a == b
    c = _run(name, tmp_path / "c", 1)
    assert [r["mean"] for r in c] != [r["mean"] for r in a]


def test_a_resumed_meta_training_equals_an_uninterrupted_one_across_processes(tmp_path):
    import torch

    def meta_train(out, iterations, resume=False):
        cmd = [sys.executable, "-m", "learnt.cli", "meta-train", "l2l-quadratic", "--quick", "--no-progress",
               "--threads", "1", "--device", "cpu", "--out", str(out), *TINY["l2l-quadratic"],
               "--set", f"train.iterations={iterations}", "--set", "train.checkpoint_every=1"]
        subprocess.run(cmd + (["--resume"] if resume else []), check=True, capture_output=True, timeout=600)
        return torch.load(out / "meta" / "checkpoint.pt", weights_only=True)["rule_state"]   # phi after the last iteration

    straight = meta_train(tmp_path / "a", 4)
    meta_train(tmp_path / "b", 2)
    resumed = meta_train(tmp_path / "b", 4, resume=True)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
