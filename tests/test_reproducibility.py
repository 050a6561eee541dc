"""Same command, same seed, same numbers: fresh processes, resumed runs (issue 19).

Every experiment runs ``learnt reproduce NAME --quick`` on a tiny budget (``TINY``) three
times in fresh processes: twice with ``--seed 0`` (concurrently, with different Python hash
seeds) and once with ``--seed 1``. The two seed-0 runs must write identical rows (all keys,
exact values) and training logs apart from wall-time measurements; the seed-1 run must give
other numbers. Then resumed trainings (MetaTrainer, the few-shot trainer) against
uninterrupted ones, in separate processes, weight for weight.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _s(*assignments: str) -> list[str]:
    return [a for kv in assignments for a in ("--set", kv)]


BASELINES = _s("baselines.lr_low=0.01", "baselines.lr_high=1", "baselines.per_decade=1")
HRNN = [*_s("train.iterations=2", "train.truncation=3", "train.truncations_mean=1", "train.truncation_extra_mean=1",
            "train.val_every=1", "eval.steps=4", "eval.val_tasks=2", "eval.val_problems=2", "eval.test_tasks=3",
            "eval.test_problems=2", "ensemble.n_problems=2", "lstm="), *BASELINES]
L2L_NET = ["train.iterations=2", "train.unroll_steps=4", "train.truncation=2", "train.val_every=1", "eval.steps=3",
           "long_steps=5", "eval.val_problems=2", "eval.test_problems=3", "baselines.lr_low=0.01",
           "baselines.lr_high=1", "baselines.per_decade=1", "task.batch_size=16"]
BLACKBOX_SUITE = _s("suite.n_seeds=2", "suite.report_at=2,4", "suite.evals=4", "suite.gp_evals=3",
                    "suite.timing_seeds=1", "suite.baselines=random,tpe,gp,cmaes")
LOPT_SUITE = _s("suite.problems=logreg-256d,linreg-cond1e5", "suite.steps_scale=0.03", "suite.seeds=2",
                "suite.lr_grid=0.001,0.1", "suite.sgd_grid=0.01,0.1")

# ``{out}`` is replaced by the run's output folder
TINY = {
    "blackbox-benchmarks": [*_s("functions=branin,hartmann3", "losses=oi"), *BLACKBOX_SUITE],
    "blackbox-gp": [*_s("proposer.max_dim=3", "proposer.hidden=8", "losses=oi,ei", "dims=1,3", "train.iterations=2",
                        "train.dims=1,3", "train.functions_per_dim=2", "train.horizon_start=3", "train.horizon_end=4",
                        "train.val_every=2", "train.val_functions_per_dim=2", "train.val_horizons=3,4",
                        "train.prior.n_features=16"), *BLACKBOX_SUITE],
    "blackbox-hpo": [*_s("epochs=1"), *BLACKBOX_SUITE],
    # each objective loads its table (0.6 s): two baselines, not four
    "blackbox-hpolib": [*_s("tables=naval_propulsion"), *BLACKBOX_SUITE, *_s("suite.baselines=random,tpe")],
    "fewshot-glyphs": _s("data.drawers=7", "data.max_per_alphabet=2", "data.cache_dir={out}/cache", "n_query=2",
                         "filters=4", "lstm_episodes=2", "train.episodes=2", "train.val_every=1", "pretrain_batches=2",
                         "test_episodes=4", "val_episodes=2", "tune_episodes=1", "gate_episodes=2",
                         "finetune_lrs=0.1,1.0", "finetune_steps=2", "lstm_steps_1shot=3", "lstm_steps_5shot=2",
                         "maml_steps=1"),
    "fewshot-sinusoid": _s("maml_train.episodes=2", "maml_train.meta_batch=2", "maml_train.val_every=1",
                           "lstm_train.episodes=2", "lstm_train.meta_batch=2", "lstm_train.val_every=1",
                           "pretrain_batches=2", "val_episodes=3", "test_episodes=5", "inner_steps=2", "hidden=8",
                           "finetune_lrs=0.01,0.1"),
    "hrnn-ensemble": HRNN,
    "hrnn-generalization": [*_s("settings=mlp relu,conv", "eval.steps=3", "eval.val_problems=2",
                                "eval.test_problems=2"), *BASELINES],
    "hrnn-lr-robustness": _s("steps=3", "test_problems=2", "per_decade=1"),
    "imitation-blocks": _s("demos_per_task=2", "max_stages=1", "hidden=8", "manipulation=16", "train.iterations=4",
                           "train.batch_pairs=4", "train.states_per_pair=4", "train.checkpoint_every=2",
                           "train.log_every=2", "dagger_rounds=1", "dagger_episodes=3", "eval_train_configs=1",
                           "eval_test_configs=1", "ablation_updates=2", "curve_test_configs=1"),
    "imitation-particle": _s("demos=60", "hidden=8", "train.iterations=4", "train.batch_pairs=4",
                             "train.states_per_pair=4", "train.checkpoint_every=2", "train.log_every=2",
                             "landmarks=2,4", "eval_episodes=3"),
    "l2l-conv": _s(*L2L_NET, "task.channels=4,4"),
    "l2l-generalization": _s(*("base." + s for s in L2L_NET)),
    "l2l-mlp": _s(*L2L_NET),
    "l2l-quadratic": [*_s("train.iterations=3", "train.unroll_steps=10", "train.truncation=5", "train.val_every=3",
                          "task.n_problems=4", "eval.steps=10", "eval.val_problems=4", "eval.test_problems=4"),
                      *BASELINES],
    "l2l-quadratic-pes": [*_s("task.n_problems=4", "train.iterations=2", "train.unroll_steps=4", "train.truncation=2",
                              "train.n_pairs=2", "train.val_every=1", "train.checkpoint_every=1", "eval.steps=3",
                              "eval.val_problems=2", "eval.test_problems=3"), *BASELINES],
    "lopt-suite": [*_s("train.iterations=1", "train.val_every=1", "train.truncation=20", "train.n_pairs=1",
                       "family.max_horizon=30", "family.min_horizon=30", "val_tasks=1"), *LOPT_SUITE],
    "nas-bench201": _s("searches=2", "tune_searches=2", "report_at=10,20", "select_at=20", "budget=20"),
    "nas-digits": _s("searches=2", "search.batches=2", "search.batch_size=2", "search.min_layers=1",
                     "search.max_layers=2", "search.curriculum_every=1", "search.lr=0.05", "child.epochs=1",
                     "child.batch_size=256", "retrain.top_k=2", "retrain.seeds=2", "retrain.epochs=1"),
}
TINY["nas-glyphs"] = TINY["nas-digits"]

TIMING = re.compile(r"wall|seconds|time|_ms\b|_ms@")   # measurements of the machine, not of the science


def _command(name: str, out: Path, seed: int) -> list[str]:
    return [sys.executable, "-m", "learnt.cli", "reproduce", name, "--quick", "--no-progress", "--threads", "1",
            "--device", "cpu", "--seed", str(seed), "--out", str(out),
            *(a.replace("{out}", str(out)) for a in TINY[name])]


def _env(hash_seed: int) -> dict:
    # set and str-hash order differ between the processes, as between any two runs
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": str(hash_seed)}


def _start(name: str, out: Path, seed: int, hash_seed: int) -> subprocess.Popen:
    return subprocess.Popen(_command(name, out, seed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(hash_seed))


def _rows(name: str, out: Path, proc: subprocess.Popen) -> tuple[list[dict], dict]:
    """The run's rows and its training logs (every ``*.jsonl`` under OUT), measurements of time left out."""
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{name} --out {out} failed:\n{log.decode(errors='replace')[-4000:]}"
    rows = json.loads((out / "results.json").read_text())["rows"]
    rows = [{k: v for k, v in r.items() if not TIMING.search(k)} for r in rows if not TIMING.search(r["metric"])]
    logs = {str(p.relative_to(out)): [{k: v for k, v in json.loads(line).items() if not TIMING.search(k)}
                                       for line in p.read_text().splitlines() if line.strip()]
            for p in sorted(out.rglob("*.jsonl"))}
    return rows, logs


# tiny imitation policies never succeed: their rows are all 0 whatever the seed, their training losses are not
SATURATED = {"imitation-blocks", "imitation-particle"}


def test_every_experiment_has_a_tiny_budget():
    from learnt.experiments import EXPERIMENTS
    missing = sorted(set(EXPERIMENTS) - set(TINY))
    assert not missing, f"add --set overrides for {missing} to TINY: every experiment must be checked for reproducibility"
    assert sorted(TINY) == sorted(EXPERIMENTS)


def _run(name: str, out: Path, seed: int, hash_seed: int) -> tuple[list[dict], dict]:
    return _rows(name, out, _start(name, out, seed, hash_seed))


RUNS = (("a", 0, 1), ("b", 0, 2), ("c", 1, 3))   # (folder, --seed, PYTHONHASHSEED)
TEST = "test_two_fresh_processes_give_identical_rows_and_another_seed_differs"


@pytest.fixture(scope="module")
def launched(request, tmp_path_factory):
    """Every selected experiment's three runs, queued at once on 2 worker threads (one
    subprocess each: the 2 cores stay busy across experiments); tests wait for their own."""
    from concurrent.futures import ThreadPoolExecutor
    names = sorted({item.callspec.params["name"] for item in request.session.items
                    if getattr(item, "originalname", "") == TEST and hasattr(item, "callspec")})
    root = tmp_path_factory.mktemp("repro")
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {(n, tag): pool.submit(_run, n, root / n / tag, seed, hs) for n in names for tag, seed, hs in RUNS}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("name", sorted(TINY))
def test_two_fresh_processes_give_identical_rows_and_another_seed_differs(name, launched):
    (rows_a, logs_a), (rows_b, logs_b), (rows_c, logs_c) = (launched[(name, tag)].result() for tag, _, _ in RUNS)
    assert rows_a, f"{name}: no rows"
    if len(rows_a) == len(rows_b):
        assert rows_a == rows_b, next((x, y) for x, y in zip(rows_a, rows_b) if x != y)
    assert rows_a == rows_b
    assert logs_a == logs_b
    if name in SATURATED:
        assert logs_a and logs_c != logs_a
    else:
        assert [r["mean"] for r in rows_c] != [r["mean"] for r in rows_a]


def _meta_train(name: str, out: Path, sets: list[str], resume: bool = False, hash_seed: int = 0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "learnt.cli", "meta-train", name, "--quick", "--no-progress", "--threads", "1",
           "--device", "cpu", "--out", str(out), *sets, *(["--resume"] if resume else [])]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(hash_seed))


def _wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log.decode(errors="replace")[-4000:]


def _straight_and_resumed(name: str, tmp_path: Path, sets) -> tuple[Path, Path]:
    """``sets(n)`` trains for n iterations: 4 straight (in a/) beside 2 (in b/), then b/ resumed to 4."""
    a, b = tmp_path / "a", tmp_path / "b"
    _wait(_meta_train(name, a, sets(4), hash_seed=1), _meta_train(name, b, sets(2), hash_seed=2))   # concurrently
    _wait(_meta_train(name, b, sets(4), resume=True, hash_seed=3))
    return a, b


def _differing(x: dict, y: dict) -> list:
    import torch
    assert sorted(x) == sorted(y)
    return [k for k in x if not (torch.equal(x[k], y[k]) if torch.is_tensor(x[k]) else x[k] == y[k])]


def test_a_resumed_meta_training_equals_an_uninterrupted_one_across_processes(tmp_path):
    import torch

    def sets(iterations):
        return [*TINY["l2l-quadratic"], *_s(f"train.iterations={iterations}", "train.checkpoint_every=1")]

    a, b = _straight_and_resumed("l2l-quadratic", tmp_path, sets)
    straight, resumed = (torch.load(d / "meta" / "checkpoint.pt", weights_only=True) for d in (a, b))
    assert straight["iteration"] == resumed["iteration"] == 4
    assert _differing(straight["rule_state"], resumed["rule_state"]) == []   # phi after the last iteration
    assert _differing(_flat(straight["meta_opt_state"]), _flat(resumed["meta_opt_state"])) == []


def test_a_resumed_few_shot_training_equals_an_uninterrupted_one_across_processes(tmp_path):
    """The few-shot trainer (its own loop, not MetaTrainer): 4 episodes straight == 2, then --resume to 4,
    for each of its models (LSTM meta-learner, MAML, first-order MAML, the pre-trained net)."""
    import torch

    def sets(episodes):
        return [*TINY["fewshot-sinusoid"], *_s(f"pretrain_batches={episodes}", *(
            f"{t}.{k}" for t in ("maml_train", "lstm_train") for k in (f"episodes={episodes}", "checkpoint_every=1")))]

    def weights(out):
        cks = {d.name: torch.load(d / "checkpoint.pt", weights_only=True) for d in sorted((out / "train").iterdir())}
        assert {m: ck["iteration"] for m, ck in cks.items()} == {m: 4 for m in ("fomaml", "lstm", "maml", "pretrained")}
        return {(m, part, k): v for m, ck in cks.items() for part in ("state", "best_state", "opt_state")
                for k, v in _flat(ck[part]).items()}

    a, b = _straight_and_resumed("fewshot-sinusoid", tmp_path, sets)
    assert _differing(weights(a), weights(b)) == []


def _flat(tree, prefix=()) -> dict:
    """A nested state dict as {"a.b.c": leaf}."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, (*prefix, str(key))).items()}
    if isinstance(tree, (list, tuple)):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, (*prefix, str(i))).items()}
    return {".".join(prefix): tree}
