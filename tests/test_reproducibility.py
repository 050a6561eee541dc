"""Same command, same seed, same numbers: fresh processes, resumed runs (issue: seeding)."""
import json
import subprocess
import sys

import pytest

TINY = {
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
