"""Behaviour cloning on pairs of demonstrations, and DAgger with the scripted expert as oracle.

One iteration samples ``batch_pairs`` target trajectories from the pool (the demos, plus the
states DAgger has collected), for each a *different* demo of the same task to condition on,
and ``states_per_pair`` time steps of the target; the loss compares the policy's actions at
those states with the expert's labels. Adamax as in the paper.

DAgger (``dagger_rounds > 0``) splits the iterations into ``dagger_rounds + 1`` equal
phases; after each of the first ``dagger_rounds`` phases the current policy runs
``dagger_episodes`` episodes on training tasks (``collect(policy, round, rng)``), the
expert labels every visited state, and those trajectories join the pool.

Resumable: every ``checkpoint_every`` iterations ``out_dir/checkpoint.pt`` (policy,
optimizer, iteration, DAgger pool, log) is written atomically; iteration ``i`` draws its
batch from ``make_generator(seed, "train", i)``, so a resumed run reaches the same numbers.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from learnt.errors import CheckpointError, NonFiniteError
from learnt.imitation.demos import Trajectories
from learnt.io import atomic_torch_save, safe_torch_load
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "learnt.imitation/1"


@dataclass(frozen=True)
class ImitationTrainConfig:
    """How the policy is trained (see module docstring)."""

    iterations: int = 2000
    batch_pairs: int = 32
    states_per_pair: int = 32
    lr: float = 1e-3
    clip_norm: float = 1.0
    dagger_rounds: int = 0
    dagger_episodes: int = 64
    checkpoint_every: int = 200
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_pairs", "states_per_pair", "dagger_episodes", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected >= 1")
        if self.dagger_rounds < 0:
            raise ValueError(f"dagger_rounds={self.dagger_rounds}; expected >= 0")
        if self.lr <= 0 or self.clip_norm <= 0:
            raise ValueError(f"lr={self.lr}, clip_norm={self.clip_norm}; expected both > 0")


def mse_loss(policy: nn.Module, ctx, obs: Tensor, entities: Tensor, label: Tensor, picks: Tensor) -> Tensor:
    """Mean squared error between ``policy.act`` at ``obs (N, S, D)`` and the expert's labels ``(N, S, A)``.

    A loss function gets the policy, the demo context, the states, entity mask, action
    labels and the expert's picks ``(N, S, 2)`` (used by losses with auxiliary terms).
    """
    return ((policy.act(ctx, obs, entities) - label) ** 2).sum(-1).mean()


class ImitationTrainer:
    """Train ``policy`` (``encode_demo`` / ``act``) by behaviour cloning on ``demos`` (+ DAgger).

    Example:
        >>> # trainer = ImitationTrainer(policy, demos, mse_loss, ImitationTrainConfig(iterations=10))
        >>> # history = trainer.train()
    """

    def __init__(self, policy: nn.Module, demos: Trajectories, loss_fn: Callable, config: ImitationTrainConfig, *,
                 seed: int = 0, out_dir: str | Path | None = None, progress: bool = True, device: str = "cpu",
                 collect: Callable[[nn.Module, int, np.random.Generator], Trajectories] | None = None) -> None:
        if config.dagger_rounds and collect is None:
            raise ValueError(f"dagger_rounds={config.dagger_rounds} needs a collect function")
        self.policy, self.demos, self.loss_fn, self.cfg = policy, demos, loss_fn, config
        self.seed, self.progress, self.device, self.collect = seed, progress, device, collect
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.opt = torch.optim.Adamax(policy.parameters(), lr=config.lr)
        self.iteration = 0
        self.dagger: list[Trajectories] = []
        self.history: list[dict] = []
        self.by_task: dict[int, np.ndarray] = {}
        for k in np.unique(demos.task):
            idx = np.flatnonzero(demos.task == k)
            if len(idx) < 2:
                raise ValueError(f"task {int(k)} has {len(idx)} demo; behaviour cloning on pairs needs >= 2 per task")
            self.by_task[int(k)] = idx

    # ----------------------------------------------------------------- data
    @property
    def pool(self) -> Trajectories:
        return Trajectories.concat([self.demos, *self.dagger]) if self.dagger else self.demos

    def _phase_ends(self) -> list[int]:
        r = self.cfg.dagger_rounds
        return [round(self.cfg.iterations * (k + 1) / (r + 1)) for k in range(r)]

    def pair_indices(self, it: int, pool: Trajectories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Iteration ``it``'s batch: target trajectories ``(P,)`` in ``pool``, the demo each is
        conditioned on ``(P,)`` (same task, never itself) and time steps ``(P, S)``."""
        rng = np.random.default_rng(derive_seed(self.seed, "train", it, 1))
        n_demo = len(self.demos)
        tgt = rng.integers(0, len(pool), self.cfg.batch_pairs)
        cond = np.empty_like(tgt)
        for b, j in enumerate(tgt):
            cands = self.by_task[int(pool.task[j])]
            if j < n_demo:
                cands = cands[cands != j]
            cond[b] = cands[rng.integers(len(cands))]
        t = (rng.random((len(tgt), self.cfg.states_per_pair)) * pool.length[tgt][:, None]).astype(np.int64)
        return tgt, cond, t

    def _batch(self, it: int, pool: Trajectories):
        tgt, cond, t = self.pair_indices(it, pool)
        d = self.device
        demo = self.demos.select(cond)
        dt = torch.as_tensor(demo.obs, device=d)
        tmask = torch.arange(dt.shape[1], device=d)[None] < torch.as_tensor(demo.length, device=d)[:, None]
        rows = tgt[:, None]
        obs = torch.as_tensor(pool.obs[rows, t], device=d)
        lab = torch.as_tensor(pool.act[rows, t], device=d)
        picks = torch.as_tensor(pool.picks[rows, t].astype(np.int64), device=d)
        return dt, tmask, torch.as_tensor(demo.entities, device=d), obs, lab, picks

    # ----------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        dagger = [{k: torch.as_tensor(v) for k, v in tr.arrays().items()} for tr in self.dagger]
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "iteration": self.iteration, "policy": self.policy.state_dict(),
                           "optimizer": self.opt.state_dict(), "dagger": dagger, "history": self.history,
                           "identity": self.identity()},
                          self.checkpoint_path)

    def identity(self) -> str:
        """What a checkpoint must have been written for to be resumed here: the training
        config (the iteration budget may grow), the seed and the policy class."""
        cfg = {k: v for k, v in asdict(self.cfg).items() if k != "iterations"}
        return json.dumps({"config": cfg, "seed": self.seed, "policy": type(self.policy).__name__},
                          sort_keys=True, default=str)

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        ck = safe_torch_load(path or self.checkpoint_path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint {str(path or self.checkpoint_path)!r} is not a {CHECKPOINT_FORMAT} checkpoint")
        if ck.get("identity") != self.identity():
            raise CheckpointError(f"checkpoint {str(path or self.checkpoint_path)!r} was written for {ck.get('identity')}; "
                                  f"this run trains {self.identity()} (run without --resume to start over)")
        try:
            self.policy.load_state_dict(ck["policy"])
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint policy does not match this architecture: {str(e).splitlines()[0]}") from None
        self.opt.load_state_dict(ck["optimizer"])
        self.iteration = int(ck["iteration"])
        self.history = list(ck["history"])
        self.dagger = [Trajectories(**{k: v.numpy() for k, v in d.items()}) for d in ck["dagger"]]

    # ----------------------------------------------------------------- training
    def step(self, it: int, pool: Trajectories) -> float:
        self.policy.train()
        demo, tmask, ents, obs, lab, picks = self._batch(it, pool)
        g = make_generator(self.seed, "train", it, 2)
        ctx = self.policy.encode_demo(demo, tmask, ents, generator=g)
        loss = self.loss_fn(self.policy, ctx, obs, ents, lab, picks)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"behaviour-cloning loss is {loss.item()} at iteration {it}; expected a finite value")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.clip_norm)
        self.opt.step()
        return float(loss.detach())

    def start_from(self, other: "ImitationTrainer") -> None:
        """Continue from another trainer's state (policy, optimizer, iteration, log): DAgger
        branches off a behaviour-cloning run at its first phase end instead of repeating it."""
        self.policy.load_state_dict(other.policy.state_dict())
        self.opt.load_state_dict(other.opt.state_dict())
        self.iteration, self.history = other.iteration, list(other.history)

    def _collect_due(self) -> bool:
        """Run the DAgger rounds whose phase has ended; True when the pool grew."""
        due = sum(e <= self.iteration for e in self._phase_ends())
        grew = False
        while len(self.dagger) < due:
            k = len(self.dagger)
            rng = np.random.default_rng(derive_seed(self.seed, "train", k, 3))
            new = self.collect(self.policy, k, rng)
            self.dagger.append(new)
            grew = True
            self._log({"dagger_round": k, "iteration": self.iteration, "episodes": len(new),
                       "rollout_success": float(np.mean(new.success))})
        return grew

    def train(self, resume: bool = False, until: int | None = None) -> list[dict]:
        """Run iterations up to ``until`` (default: all), with DAgger rounds at phase ends; returns the log."""
        if resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_checkpoint()
            log.info("resumed at iteration %d", self.iteration)
        stop = self.cfg.iterations if until is None else min(until, self.cfg.iterations)
        pool = self.pool
        t0 = time.perf_counter()
        bar = _progress(self.progress, stop, self.iteration)
        losses: list[float] = []
        while self.iteration < stop:
            if self._collect_due():
                pool = self.pool
                self.save_checkpoint()
            it = self.iteration
            losses.append(self.step(it, pool))
            self.iteration += 1
            if bar is not None:
                bar.update(1)
            if self.iteration % self.cfg.log_every == 0 or self.iteration == stop:
                self._log({"iteration": it, "loss": float(np.mean(losses)), "pool": len(pool),
                           "seconds": round(time.perf_counter() - t0, 2)})
                losses = []
            if self.iteration % self.cfg.checkpoint_every == 0 or self.iteration == stop:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        self.policy.eval()
        return self.history

    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        log.info("%s", rec)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "log.jsonl", "w") as f:  # rewritten whole: stays consistent on resume
                f.write("".join(json.dumps(r) + "\n" for r in self.history))


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc="imitation", leave=False)
