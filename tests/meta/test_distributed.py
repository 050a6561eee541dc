"""Distributed meta-training: 2 gloo ranks == 1 process with 2 task shards; cross-rank resume."""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from learnt.learned import L2LOptimizer
from learnt.meta import MetaTrainConfig, MetaTrainer, final_mean, run_on_split
from learnt.meta.distributed import DistInfo, current, init_distributed, shards_of_rank
from learnt.tasks import QuadraticFamily

FAMILY = QuadraticFamily(dim=5, n_problems=4)
CFG = MetaTrainConfig(iterations=4, unroll_steps=6, truncation=3, val_every=2, checkpoint_every=2,
                      meta_lr=1e-2, task_shards=2)


def _validate(rule):
    return final_mean(run_on_split(rule, FAMILY, "val", n_tasks=1, steps=5, seed=0))


def _trainer(cfg, out_dir):
    torch.manual_seed(0)
    return MetaTrainer(L2LOptimizer(hidden_size=8), FAMILY, cfg, seed=3, validate=_validate,
                       out_dir=out_dir, progress=False)


def _worker(rank: int, world: int, port: int, root: str) -> None:
    # what torchrun sets; the trainer joins the group by itself
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    t = _trainer(CFG, Path(root) / f"rank{rank}")
    assert current() == DistInfo(rank, world, rank)
    res = t.train()
    torch.save({"phi": t.rule.state_dict(), "best_iteration": res.best_iteration, "history": res.history},
               Path(root) / f"phi{rank}.pt")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(world: int, root: Path, timeout: float = 180.0) -> None:
    ctx = mp.start_processes(_worker, args=(world, _free_port(), str(root)), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"distributed workers did not finish in {timeout} s")


def _close(a: dict, b: dict, **tol) -> None:
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=k)


def test_two_gloo_ranks_match_one_process_and_resume_on_one(tmp_path):
    _spawn(2, tmp_path)
    r0, r1 = (torch.load(tmp_path / f"phi{r}.pt") for r in (0, 1))
    # all ranks hold the same phi and the same (broadcast) validation history
    _close(r0["phi"], r1["phi"], rtol=0, atol=0)
    assert r0["history"] == r1["history"] and len(r0["history"]) == 2

    # one process stepping both shards: same phi (the all-reduce is the only difference)
    single = _trainer(CFG, tmp_path / "single")
    res = single.train()
    _close(single.rule.state_dict(), r0["phi"], rtol=1e-5, atol=1e-7)
    assert [h["iteration"] for h in res.history] == [h["iteration"] for h in r0["history"]]
    assert [h["val"] for h in res.history] == pytest.approx([h["val"] for h in r0["history"]], rel=1e-5)
    # the second shard matters: one shard alone gives a different phi
    one = _trainer(replace(CFG, task_shards=1), None)
    one.train()
    assert any(not torch.allclose(one.rule.state_dict()[k], v) for k, v in r0["phi"].items())

    # rank 0 alone wrote checkpoint, log and best.pt
    assert not (tmp_path / "rank1").exists()
    assert {"checkpoint.pt", "log.jsonl", "best.pt"} <= {p.name for p in (tmp_path / "rank0").iterdir()}
    log0 = [json.loads(ln) for ln in (tmp_path / "rank0" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log0] == [0, 1, 2, 3]

    # the 2-rank checkpoint resumes in one process and continues like an uninterrupted run
    longer = replace(CFG, iterations=6)
    resumed = _trainer(longer, tmp_path / "rank0")
    resumed.train(resume=True)
    straight = _trainer(longer, None)
    straight.train()
    _close(resumed.rule.state_dict(), straight.rule.state_dict(), rtol=1e-5, atol=1e-7)
    log_r = [json.loads(ln) for ln in (tmp_path / "rank0" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log_r] == list(range(6))


def test_without_torchrun_it_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed()
    assert info == DistInfo(0, 1, 0) and info.is_main
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        init_distributed()


def test_shards_are_dealt_round_robin():
    assert shards_of_rank(4, DistInfo(0, 2)) == [0, 2]
    assert shards_of_rank(4, DistInfo(1, 2)) == [1, 3]
    assert shards_of_rank(3, DistInfo(1, 2)) == [1]
    with pytest.raises(ValueError, match="task_shards=1 with 2 ranks"):
        shards_of_rank(1, DistInfo(1, 2))


class _CountingFamily:
    def __init__(self, base):
        self.base, self.seen = base, []

    def sample(self, g, n_problems=None):
        task = self.base.sample(g, n_problems)
        self.seen.append(task.W.clone())
        return task


def test_each_shard_is_its_own_task_of_k_problems():
    fam = _CountingFamily(FAMILY)
    cfg = replace(CFG, iterations=2, task_shards=3)
    torch.manual_seed(0)
    t = MetaTrainer(L2LOptimizer(hidden_size=8), fam, cfg, seed=3, progress=False)
    t.train()
    # 3 shards x 2 iterations tasks, each K=4 problems: 12 problems per meta-step
    assert len(fam.seen) == 6 and all(w.shape[0] == FAMILY.n_problems for w in fam.seen)
    assert all(not torch.equal(fam.seen[i], fam.seen[j]) for i in range(6) for j in range(i))
    # shard 0 is the single-shard stream: the first task equals a 1-shard run's first task
    fam1 = _CountingFamily(FAMILY)
    MetaTrainer(L2LOptimizer(hidden_size=8), fam1, replace(cfg, task_shards=1), seed=3, progress=False).train()
    assert torch.equal(fam1.seen[0], fam.seen[0]) and torch.equal(fam1.seen[1], fam.seen[3])
