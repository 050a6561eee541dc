"""Behaviour cloning on pairs of demonstrations, and DAgger with the scripted expert as oracle.

One iteration samples ``batch_pairs`` target trajectories from the pool (the demos, plus the
states DAgger has collected), for each a *different* demo of the same task to condition on,
and ``states_per_pair`` time steps of the target; the loss compares the policy's actions at
those states with the expert's labels. Adamax as in the paper.

DAgger (``dagger_rounds > 0``) splits the iterations into ``dagger_rounds + 1`` equal
phases; after each of the first ``dagger_rounds`` phases the current policy runs
``dagger_episodes`` episodes on training tasks (``collect(policy, round, rng)``), the
expert labels every visited state, and those trajectories join the pool.

Resumable (the one training loop, :class:`~learnt.meta.loop.ResumableLoop`): every
``checkpoint_every`` iterations ``out_dir/checkpoint.pt`` (policy, optimizer, iteration,
DAgger pool, log) is written atomically; iteration ``i`` draws its batch from
``make_generator(seed, "train", i)``, so a resumed run reaches the same numbers.

Snapshots (``snapshot_every > 0``): after every ``snapshot_every`` updates the policy's
weights go to ``out_dir/snapshots/NNNNNN.pt`` (atomically; a resumed run rewrites the same
files), for curves of success versus updates (:meth:`ImitationTrainer.snapshots`).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from learnt.imitation.demos import Trajectories
from learnt.io import atomic_torch_save, safe_torch_load
from learnt.meta.loop import ResumableLoop, clipped_step, run_identity
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
    snapshot_every: int = 0           # 0: no snapshots

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_pairs", "states_per_pair", "dagger_episodes", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected >= 1")
        if self.dagger_rounds < 0:
            raise ValueError(f"dagger_rounds={self.dagger_rounds}; expected >= 0")
        if self.snapshot_every < 0:
            raise ValueError(f"snapshot_every={self.snapshot_every}; expected >= 0 (0: no snapshots)")
        if self.lr <= 0 or self.clip_norm <= 0:
            raise ValueError(f"lr={self.lr}, clip_norm={self.clip_norm}; expected both > 0")


def mse_loss(policy: nn.Module, ctx, obs: Tensor, entities: Tensor, label: Tensor, picks: Tensor) -> Tensor:
    """Mean squared error between ``policy.act`` at ``obs (N, S, D)`` and the expert's labels ``(N, S, A)``.

    A loss function gets the policy, the demo context, the states, entity mask, action
    labels and the expert's picks ``(N, S, 2)`` (used by losses with auxiliary terms).
    """
    return ((policy.act(ctx, obs, entities) - label) ** 2).sum(-1).mean()


SNAPSHOT_DIR = "snapshots"


def snapshot_files(out_dir: str | Path) -> list[tuple[int, Path]]:
    """``(updates, path)`` of the policy snapshots a trainer wrote under ``out_dir``, in order."""
    d = Path(out_dir) / SNAPSHOT_DIR
    if not d.is_dir():
        return []
    return sorted((int(p.stem), p) for p in d.glob("*.pt") if p.stem.isdigit())


class ImitationTrainer(ResumableLoop):
    """Train ``policy`` (``encode_demo`` / ``act``) by behaviour cloning on ``demos`` (+ DAgger).

    The loop, checkpoints (policy, optimizer, iteration, DAgger pool, log), the NaN policy
    and resume are :class:`~learnt.meta.loop.ResumableLoop`'s; there is no validation (the
    policy trained last is the result). A resumed run must train the same policy class with
    the same seed and training config (the budget and cadences may change).

    Example:
        >>> # trainer = ImitationTrainer(policy, demos, mse_loss, ImitationTrainConfig(iterations=10))
        >>> # history = trainer.train()
    """

    checkpoint_format = CHECKPOINT_FORMAT
    model_key, optimizer_key = "policy", "optimizer"
    progress_desc = "imitation"

    def __init__(self, policy: nn.Module, demos: Trajectories, loss_fn: Callable, config: ImitationTrainConfig, *,
                 seed: int = 0, out_dir: str | Path | None = None, progress: bool = True, device: str = "cpu",
                 collect: Callable[[nn.Module, int, np.random.Generator], Trajectories] | None = None) -> None:
        if config.dagger_rounds and collect is None:
            raise ValueError(f"dagger_rounds={config.dagger_rounds} needs a collect function")
        self.policy, self.demos, self.loss_fn, self.cfg = policy, demos, loss_fn, config
        self.seed, self.device, self.collect = seed, device, collect
        self.opt = torch.optim.Adamax(policy.parameters(), lr=config.lr)
        self._setup_loop(model=policy, optimizer=self.opt, total=config.iterations,
                         checkpoint_every=config.checkpoint_every, out_dir=out_dir, progress=progress)
        self.dagger: list[Trajectories] = []
        self.window: list[float] = []      # losses since the last log record
        self._pool: Trajectories | None = None
        self._t0 = time.perf_counter()
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

    # ----------------------------------------------------------------- what the loop asks
    def identity(self) -> dict:
        """What a checkpoint must have been written for to be resumed here: the training
        config (the iteration budget and cadences may change), the seed and the policy class."""
        config = {k: v for k, v in run_identity(asdict(self.cfg)).items() if k != "snapshot_every"}
        return {"config": config, "seed": self.seed, "policy": type(self.policy).__name__}

    def extra_state(self) -> dict:
        return {"dagger": [{k: torch.as_tensor(v) for k, v in tr.arrays().items()} for tr in self.dagger],
                "window": list(self.window)}

    def load_extra_state(self, ck: dict, source: str) -> None:
        self.dagger = [Trajectories(**{k: v.numpy() for k, v in d.items()}) for d in ck["dagger"]]
        self.window = [float(x) for x in ck.get("window", [])]
        self._pool = None

    def step_seed(self, it: int) -> int:
        return derive_seed(self.seed, "train", it, 4)

    def train_iteration(self, it: int) -> dict | None:
        if self._collect_due() or self._pool is None:
            self._pool = self.pool
        pool = self._pool
        loss = self.step(it, pool)
        self._snapshot(it + 1)
        if not math.isfinite(loss):
            rec = {"iteration": it, "loss": loss, "pool": len(pool), "skipped": 1}
            self.history.append(rec)
            return rec
        self.window.append(loss)
        if (it + 1) % self.cfg.log_every == 0 or it + 1 == self.stop:
            rec = {"iteration": it, "loss": float(np.mean(self.window)), "pool": len(pool),
                   "seconds": round(time.perf_counter() - self._t0, 2)}
            self.window = []
            self.history.append(rec)
            return rec
        return None

    def on_finish(self) -> None:
        self.policy.eval()

    # ----------------------------------------------------------------- training
    def step(self, it: int, pool: Trajectories) -> float:
        """One behaviour-cloning update; returns the loss. A non-finite loss or gradient
        discards the update (and the loss returned is not finite)."""
        self.policy.train()
        demo, tmask, ents, obs, lab, picks = self._batch(it, pool)
        g = make_generator(self.seed, "train", it, 2)
        ctx = self.policy.encode_demo(demo, tmask, ents, generator=g)
        loss = self.loss_fn(self.policy, ctx, obs, ents, lab, picks)
        self.opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            value = float(loss.detach())
            log.warning("iteration %d: behaviour-cloning loss is %s, update skipped", it, value)
            return value
        loss.backward()
        norm = clipped_step(self.opt, self.policy.parameters(), self.cfg.clip_norm)
        if not math.isfinite(norm):
            log.warning("iteration %d: non-finite gradient, update skipped", it)
            return math.nan
        return float(loss.detach())

    # ----------------------------------------------------------------- snapshots
    @property
    def snapshot_dir(self) -> Path | None:
        return self.out_dir / SNAPSHOT_DIR if self.out_dir is not None else None

    def _snapshot(self, updates: int) -> None:
        every = self.cfg.snapshot_every
        if every and self.snapshot_dir is not None and updates % every == 0:
            atomic_torch_save({"updates": updates, "policy": self.policy.state_dict()},
                              self.snapshot_dir / f"{updates:06d}.pt")

    def snapshots(self) -> list[tuple[int, Path]]:
        """``(updates, path)`` of the snapshots written so far, in order (empty without an out_dir)."""
        return snapshot_files(self.out_dir) if self.out_dir is not None else []

    def start_from(self, other: "ImitationTrainer") -> None:
        """Continue from another trainer's state (policy, optimizer, iteration, log): DAgger
        branches off a behaviour-cloning run at its first phase end instead of repeating it."""
        self.policy.load_state_dict(other.policy.state_dict())
        self.opt.load_state_dict(other.opt.state_dict())
        self.iteration, self.history, self.window = other.iteration, list(other.history), list(other.window)
        self.skipped, self.consecutive_skips = other.skipped, other.consecutive_skips
        self.log_records = 0
        if self.log_path is not None and self.log_path.exists():
            self.log_path.unlink()
        for rec in self.history:
            self.log(rec)
        if self.snapshot_dir is not None:      # the shared first phase's snapshots are this run's too
            for updates, path in other.snapshots():
                if updates <= self.iteration:
                    atomic_torch_save(safe_torch_load(path), self.snapshot_dir / path.name)

    def _collect_due(self) -> bool:
        """Run the DAgger rounds whose phase has ended (and checkpoint); True when the pool grew."""
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
        if grew:
            self.save_checkpoint()
        return grew

    def train(self, resume: bool = False, until: int | None = None) -> list[dict]:
        """Run iterations up to ``until`` (default: all), with DAgger rounds at phase ends; returns the log."""
        self._t0, self._pool = time.perf_counter(), None
        self.run(resume=resume, until=until)
        return self.history

    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        log.info("%s", rec)
        self.log(rec)
