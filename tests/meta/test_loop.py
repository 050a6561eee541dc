"""The one training loop (learnt.meta.loop) and the four trainers on it: SIGKILL twice and
resume to the uninterrupted run, resume refusals, torn logs, declared best direction, NaN policy."""
from __future__ import annotations

import io
import json
import math
import os
import random
import re
import signal
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import learnt.meta.loop as loop_mod
from learnt.errors import CheckpointError, NonFiniteError
from learnt.fewshot.learner import SineMLP
from learnt.fewshot.metalearner import MetaLearnerLSTM
from learnt.fewshot.sinusoid import SinusoidEpisodes
from learnt.fewshot.training import EpisodicTrainConfig, EpisodicTrainer, evaluate_method
from learnt.imitation.block_policy import BlockLoss, BlockStackPolicy
from learnt.imitation.demos import collect_blocks
from learnt.imitation.rollout import rollout_blocks
from learnt.imitation.training import ImitationTrainConfig, ImitationTrainer
from learnt.io import read_jsonl
from learnt.learned import L2LOptimizer
from learnt.meta import MetaTrainConfig, MetaTrainer, final_mean, run_on_split
from learnt.meta.loop import ResumableLoop
from learnt.nas import ArchitectureSearch, SearchConfig, SearchSpace
from learnt.tasks import QuadraticFamily

N = 8   # iterations of every run here

# ------------------------------------------------------------------ the three trainers, tiny
QUAD = QuadraticFamily(dim=3, n_problems=2)
SINE, SINE_VAL = SinusoidEpisodes(5, 5), SinusoidEpisodes(5, 10, split="val")
_rng = np.random.default_rng(0)
BLOCKS = collect_blocks(_rng, ["ab", "ab", "ba", "ba"], [0, 0, 1, 1], noise=0.0)


def _meta(out, init_seed=0, lr=1e-2, iterations=N):
    torch.manual_seed(init_seed)
    cfg = MetaTrainConfig(iterations=iterations, unroll_steps=4, truncation=2, val_every=2, checkpoint_every=2, meta_lr=lr)
    val = lambda r: final_mean(run_on_split(r, QUAD, "val", n_tasks=1, steps=3, seed=0))  # noqa: E731
    return MetaTrainer(L2LOptimizer(hidden_size=4), QUAD, cfg, seed=1, validate=val, out_dir=out, progress=False)


def _fewshot(out, init_seed=0, lr=1e-2, iterations=N):
    torch.manual_seed(init_seed)
    m = MetaLearnerLSTM(SineMLP(8), task="regression", steps=2, hidden_size=4, seed=init_seed)
    cfg = EpisodicTrainConfig(episodes=iterations, meta_lr=lr, val_every=2, checkpoint_every=2, meta_batch=2)
    val = lambda mm: -float(evaluate_method(mm, SINE_VAL, 2).mean())  # noqa: E731
    return EpisodicTrainer(m, SINE.episode, cfg, seed=1, validate=val, out_dir=out, progress=False)


def _collect(policy, k, rng):
    return rollout_blocks(policy, BLOCKS.select(np.array([0, 2])), ["ab", "ba"], rng, label=True).visited


def _imitation(out, init_seed=0, lr=1e-2):
    torch.manual_seed(init_seed)
    # log_every 3 against checkpoint_every 2: the half-filled loss window is part of the state
    cfg = ImitationTrainConfig(iterations=N, batch_pairs=2, states_per_pair=4, lr=lr, dagger_rounds=1,
                               dagger_episodes=2, checkpoint_every=2, log_every=3)
    return ImitationTrainer(BlockStackPolicy(hidden=8, manipulation=(16,)), BLOCKS, BlockLoss(1.0), cfg, seed=1,
                            out_dir=out, progress=False, collect=_collect)


def _fake_child(job) -> dict:
    """A child "trained" in no time: its score is a fixed function of the architecture and seed."""
    g = torch.Generator().manual_seed(zlib.crc32(repr(job.arch).encode()) + job.seed % 1000)
    return {"acc": {"val": float(torch.rand((), generator=g))}, "params": 1, "seconds": 0.0}


def _nas(out, init_seed=0, lr=1e-2, iterations=N):
    torch.manual_seed(init_seed)
    cfg = SearchConfig(batches=iterations, batch_size=3, min_layers=1, max_layers=2, curriculum_every=3, lr=lr)
    return ArchitectureSearch(SearchSpace(num_filters=(2, 4), max_layers=2), "controller", cfg, seed=1,
                              train_fn=_fake_child, workdir=out, resume=False)


TRAINERS = {"meta": _meta, "fewshot": _fewshot, "imitation": _imitation, "nas": _nas}
LR_FIELD = {"meta": "config.meta_lr", "fewshot": "config.meta_lr", "imitation": "config.lr", "nas": "search.lr"}


def _outcome(tr: ResumableLoop) -> dict:
    """Everything a run ends with: weights, optimizer state, selection, history, log."""
    logged = [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(tr.log_path)]
    return {"model": tr.model.state_dict(), "optimizer": tr.optimizer.state_dict(), "best": tr.best_state,
            "best_score": tr.best_score, "best_iteration": tr.best_iteration, "iteration": tr.iteration,
            "history": [{k: v for k, v in r.items() if k != "seconds"} for r in tr.history], "log": logged}


def _differences(a, b, path="") -> list[str]:
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b), key=str)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if torch.is_tensor(a):
        return [] if torch.equal(a, b) else [path]
    same = a == b or (isinstance(a, float) and math.isnan(a) and isinstance(b, float) and math.isnan(b))
    return [] if same else [f"{path}: {a!r} != {b!r}"]


def _train(tr: ResumableLoop, resume: bool = False) -> None:
    tr.train(resume=resume)


def _train_part(kind: str, out, stop: int) -> None:
    """Train to ``stop`` of N iterations (imitation: ``until``, its DAgger phases follow N)."""
    if kind == "imitation":
        TRAINERS[kind](out).train(until=stop)
    else:
        TRAINERS[kind](out, iterations=stop).train()


def _killed_in_a_child(make, out: Path, resume: bool, event: int) -> None:
    """Run ``make(out)`` in a forked child that SIGKILLs itself at its ``event``-th event (an
    iteration's update, a log line, a checkpoint write); a log line or checkpoint being
    written when the kill comes is left half-written, as a real crash leaves it."""
    pid = os.fork()
    if pid == 0:   # the child: never returns to pytest
        try:
            torch.set_num_threads(1)
            tr = make(out, init_seed=99 if resume else 0)
            count = [0]

            def tick(what: str) -> bool:
                count[0] += 1
                if count[0] == event:   # say where it died, for the failure message
                    with open(out.parent / "kills.txt", "a") as f:
                        f.write(f"{what} of iteration {tr.iteration}\n")
                return count[0] == event

            real_step, real_log, real_save = tr.train_iteration, loop_mod.append_jsonl, loop_mod.atomic_torch_save

            def step(it):
                rec = real_step(it)
                if tick("after the update"):
                    os.kill(os.getpid(), signal.SIGKILL)
                return rec

            def append(path, record):
                if tick("writing a log line"):
                    with open(path, "a") as f:
                        f.write(json.dumps(record)[:7])
                    os.kill(os.getpid(), signal.SIGKILL)
                real_log(path, record)

            def save(obj, path):
                if tick("writing the checkpoint"):
                    buf = io.BytesIO()
                    torch.save(obj, buf)
                    Path(path).with_name(f".{Path(path).name}.killed.tmp").write_bytes(buf.getvalue()[:500])
                    os.kill(os.getpid(), signal.SIGKILL)
                real_save(obj, path)

            tr.train_iteration = step
            loop_mod.append_jsonl, loop_mod.atomic_torch_save = append, save
            _train(tr, resume)
        finally:
            os._exit(3)   # reached only when the kill did not happen
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child was not killed: {status}"


@pytest.mark.parametrize("moments", [0, 1])
@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_sigkilled_twice_at_random_moments_resumes_to_the_uninterrupted_run(kind, moments, tmp_path):
    make = TRAINERS[kind]
    straight = make(tmp_path / "straight")
    _train(straight)
    rnd = random.Random(f"{kind}-kills-{moments}")
    out = tmp_path / "killed"
    _killed_in_a_child(make, out, resume=False, event=rnd.randrange(2, 2 * N))
    has = (out / "checkpoint.pt").is_file()    # killed before the first checkpoint: start again
    left = N - torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] if has else N
    assert left >= 1
    _killed_in_a_child(make, out, resume=has, event=rnd.randrange(1, 2 * left))
    resumed = make(out, init_seed=99)          # fresh weights: everything comes from the checkpoint
    _train(resumed, resume=(out / "checkpoint.pt").is_file())   # (none yet if both kills came before it)
    kills = (tmp_path / "kills.txt").read_text()
    assert _differences(_outcome(straight), _outcome(resumed)) == [], kills
    assert straight.iteration == resumed.iteration == N


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_resume_without_a_checkpoint_is_an_error(kind, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*empty"):
        _train(TRAINERS[kind](tmp_path / "empty"), resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        _train(TRAINERS[kind](None), resume=True)


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_a_changed_config_on_resume_is_an_error_naming_it(kind, tmp_path):
    _train_part(kind, tmp_path, 2)
    other = TRAINERS[kind](tmp_path, lr=0.5)
    with pytest.raises(CheckpointError, match=rf"{re.escape(LR_FIELD[kind])}: 0\.01 in the checkpoint, 0\.5 here"):
        _train(other, resume=True)


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_a_torn_last_log_line_resumes(kind, tmp_path):
    straight = TRAINERS[kind](tmp_path / "a")
    _train(straight)
    _train_part(kind, tmp_path / "b", 6)        # stop after the checkpoint at 6 ...
    with open(tmp_path / "b" / "log.jsonl", "a") as f:
        f.write('{"iteration": 6, "lo')         # ... and die writing the next line
    resumed = TRAINERS[kind](tmp_path / "b", init_seed=99)
    _train(resumed, resume=True)
    assert _differences(_outcome(straight)["log"], _outcome(resumed)["log"]) == []


# ------------------------------------------------------------------ the loop itself, on a toy trainer
class _Toy(ResumableLoop):
    """Least squares on random batches drawn from torch's global RNG (seeded per iteration)."""

    checkpoint_format = "test.toy/1"

    def __init__(self, out_dir=None, scores=None, direction="min", nan_at=(), lr=0.1):
        self.lr, self.nan_at, self.scores = lr, set(nan_at), list(scores or [])
        torch.manual_seed(0)
        self.net = nn.Linear(3, 1)
        validate = (lambda m: self.scores.pop(0)) if scores else None
        self._setup_loop(model=self.net, optimizer=torch.optim.SGD(self.net.parameters(), lr=lr), total=len(
            self.scores) or 6, checkpoint_every=2, val_every=1, validate=validate, direction=direction,
            out_dir=out_dir, progress=False)

    def identity(self):
        return {"lr": self.lr}

    def step_seed(self, it):
        return 1000 + it

    def train_iteration(self, it):
        x = torch.randn(8, 3)
        loss = (self.net(x) - x.sum(1, keepdim=True)).pow(2).mean() * (math.nan if it in self.nan_at else 1.0)
        self.optimizer.zero_grad()
        if not torch.isfinite(loss):
            return {"iteration": it, "loss": float(loss.detach()), "skipped": 1}
        loss.backward()
        loop_mod.clipped_step(self.optimizer, self.net.parameters(), 1.0)
        return {"iteration": it, "loss": float(loss.detach())}


@pytest.mark.parametrize("direction,best", [("max", 3), ("min", 2)])
def test_best_state_follows_the_declared_direction(direction, best):
    snapshots = {}
    toy = _Toy(scores=[2.0, 1.0, 5.0, math.nan, 4.0], direction=direction)
    real = toy.validate
    toy.validate = lambda m: (snapshots.setdefault(toy.iteration, {k: v.clone() for k, v in m.state_dict().items()}),
                              real(m))[1]
    toy.run()
    assert toy.best_iteration == best and toy.best_score == {"max": 5.0, "min": 1.0}[direction]
    assert _differences(toy.best_state, snapshots[best]) == []
    assert _differences(toy.best_state, toy.net.state_dict()) != []   # the last state is not the best


def test_the_fewshot_trainer_keeps_the_highest_score(tmp_path):
    scores = iter([0.1, 0.9, 0.3, 0.2])
    tr = _fewshot(tmp_path)
    tr.validate = lambda m: next(scores)
    res = tr.train()
    assert (res.best_score, res.best_iteration) == (0.9, 4)


def test_a_direction_must_be_declared_as_min_or_max():
    with pytest.raises(ValueError, match="direction='lower'"):
        _Toy(direction="lower")


def test_non_finite_iterations_are_skipped_counted_and_logged(tmp_path):
    toy = _Toy(out_dir=tmp_path, nan_at={1, 4})
    toy.run()
    assert toy.skipped == 2 and all(torch.isfinite(p).all() for p in toy.net.parameters())
    logged = read_jsonl(tmp_path / "log.jsonl")
    assert [bool(r.get("skipped")) for r in logged] == [False, True, False, False, True, False]
    reference = _Toy(nan_at={1, 4})          # a skipped update leaves the weights as they were
    reference.total = 1
    reference.run()
    toy2 = _Toy(nan_at={1, 2, 3, 4, 5})
    toy2.total = 2
    toy2.run()
    assert _differences(reference.net.state_dict(), toy2.net.state_dict()) == []


def test_too_many_consecutive_skips_raise():
    toy = _Toy(nan_at=set(range(1, 6)))
    toy.max_consecutive_skips = 3
    with pytest.raises(NonFiniteError, match="3 consecutive iterations .* skipped"):
        toy.run()
    assert toy.iteration == 4


@pytest.mark.parametrize("kind", ["fewshot", "imitation"])
def test_a_nan_loss_is_skipped_by_the_fewshot_and_imitation_trainers(kind, tmp_path, monkeypatch):
    tr = TRAINERS[kind](tmp_path)
    if kind == "fewshot":
        real = tr.method.meta_loss
        calls = [0]

        def meta_loss(batch):
            calls[0] += 1
            loss, metrics = real(batch)
            return (loss * math.nan if calls[0] == 5 else loss), metrics    # iteration 2, first episode
        monkeypatch.setattr(tr.method, "meta_loss", meta_loss)
    else:
        real = tr.loss_fn
        tr.loss_fn = lambda policy, ctx, *a: real(policy, ctx, *a) * (math.nan if tr.iteration == 2 else 1.0)
    tr.train()
    assert tr.skipped == 1 and all(torch.isfinite(p).all() for p in tr.model.parameters())
    assert [r["iteration"] for r in read_jsonl(tmp_path / "log.jsonl") if r.get("skipped")] == \
        [3 if kind == "fewshot" else 2]


def test_a_checkpoint_of_another_trainer_is_refused(tmp_path):
    _Toy(out_dir=tmp_path).run()
    with pytest.raises(CheckpointError, match="is not a learnt.metatrain/1 checkpoint"):
        _meta(tmp_path).load_checkpoint()
    with pytest.raises(CheckpointError, match="lr: 0.1 in the checkpoint, 0.2 here"):
        _Toy(out_dir=tmp_path, lr=0.2).run(resume=True)


def test_each_iteration_draws_from_its_own_seed_of_the_global_rng(tmp_path):
    """A step that uses torch's global RNG draws the same numbers fresh and resumed, and the
    caller's global RNG is left as it was."""
    straight = _Toy(out_dir=tmp_path / "a")
    before = torch.get_rng_state()
    straight.run()
    assert torch.equal(before, torch.get_rng_state())
    half = _Toy(out_dir=tmp_path / "b")
    half.run(until=3)
    resumed = _Toy(out_dir=tmp_path / "b")
    torch.rand(5)                                 # whatever the caller does in between
    resumed.run(resume=True)
    assert _differences(straight.net.state_dict(), resumed.net.state_dict()) == []
