"""Episodic meta-training with the house checkpoint conventions, and paired evaluation.

:class:`EpisodicTrainer` does one meta-update per batch (an :class:`Episode` for the
meta-learners, an ``(x, y)`` mini-batch for pre-training): ``loss, metrics =
method.meta_loss(batch)``, backward, gradient-norm clip, Adam step. Batch ``i`` comes from
``sample(i)``, and torch's global RNG is reseeded per iteration, so a resumed run reaches
the same numbers as an uninterrupted one. Nothing of one episode's graph outlives its
iteration (the loss is reduced to floats before the next episode), so memory stays flat.
Every ``val_every`` iterations ``validate(method)`` (higher is better, e.g. accuracy;
it may return ``(score, info_dict)`` to log more in the history) selects the best meta-parameters; ``checkpoint.pt`` (atomic), ``log.jsonl`` and ``best.pt``
go to ``out_dir``.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from learnt.errors import CheckpointError, NonFiniteError
from learnt.fewshot.episodes import Episode, EpisodeSampler
from learnt.fewshot.methods import Method
from learnt.io import append_jsonl, atomic_torch_save, read_jsonl, rewrite_jsonl, safe_torch_load
from learnt.seeding import derive_seed

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "learnt.fewshot.train/1"


@dataclass(frozen=True)
class EpisodicTrainConfig:
    """Outer-loop settings (paper: Adam 1e-3, clip 0.25, validation every 1000 episodes)."""

    episodes: int = 1000
    meta_lr: float = 1e-3
    clip_norm: float = 0.25
    val_every: int = 100
    checkpoint_every: int = 50
    meta_batch: int = 1         # episodes averaged per meta-update

    def __post_init__(self) -> None:
        for name in ("episodes", "val_every", "checkpoint_every", "meta_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected >= 1")
        if self.meta_lr <= 0 or self.clip_norm <= 0:
            raise ValueError(f"meta_lr={self.meta_lr}, clip_norm={self.clip_norm}; expected both > 0")


@dataclass
class EpisodicResult:
    best_score: float
    best_iteration: int
    iterations: int
    history: list[dict]
    wall_seconds: float


class EpisodicTrainer:
    """Meta-train ``method`` on batches from ``sample(i)``.

    Example:
        >>> from learnt.fewshot.learner import SineMLP
        >>> from learnt.fewshot.baselines import MAML
        >>> from learnt.fewshot.sinusoid import SinusoidEpisodes
        >>> m, eps = MAML(SineMLP(8), "regression", steps=1, inner_lr=0.01), SinusoidEpisodes()
        >>> EpisodicTrainer(m, eps.episode, EpisodicTrainConfig(episodes=2), progress=False).train().iterations
        2
    """

    def __init__(self, method: Method, sample: Callable[[int], Any], config: EpisodicTrainConfig, *, seed: int = 0,
                 validate: Callable[[Method], float] | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, device: str = "cpu") -> None:
        self.method, self.sample, self.cfg, self.seed = method, sample, config, seed
        self.validate, self.progress, self.device = validate, progress, device
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.opt = torch.optim.Adam(method.parameters(), lr=config.meta_lr)
        self.iteration = 0
        self.best_state = copy.deepcopy(method.state_dict())
        self.best_score, self.best_iteration = -math.inf, -1
        self.history: list[dict] = []

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        atomic_torch_save({"format": CHECKPOINT_FORMAT, "method_config": json.dumps(self.method.config()),
                           "state": self.method.state_dict(), "opt_state": self.opt.state_dict(),
                           "iteration": self.iteration, "seed": self.seed, "config": asdict(self.cfg),
                           "best_state": self.best_state, "best_score": self.best_score,
                           "best_iteration": self.best_iteration, "history": json.dumps(self.history)},
                          self.checkpoint_path)

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path) if path is not None else self.checkpoint_path
        ck = safe_torch_load(path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{str(path)!r} is not a few-shot training checkpoint (expected {CHECKPOINT_FORMAT!r})")
        if json.loads(ck["method_config"]) != self.method.config():
            raise CheckpointError(f"{str(path)!r} was written for {ck['method_config']}; this run trains "
                                  f"{json.dumps(self.method.config())}")
        self.method.load_state_dict(ck["state"])
        self.opt.load_state_dict(ck["opt_state"])
        self.iteration = int(ck["iteration"])
        self.best_state, self.best_score = ck["best_state"], float(ck["best_score"])
        self.best_iteration = int(ck["best_iteration"])
        self.history = json.loads(ck["history"])
        logp = self.out_dir / "log.jsonl" if self.out_dir is not None else None
        if logp is not None and logp.exists():  # drop lines written after the checkpoint (and a torn last one)
            rewrite_jsonl(logp, [r for r in read_jsonl(logp) if r.get("iteration", 0) <= self.iteration])
        log.info("resumed from %s at iteration %d", path, self.iteration)

    def step(self, it: int) -> dict:
        """One meta-update on batches ``it * meta_batch ..``; returns floats only (no graph survives)."""
        mb = self.cfg.meta_batch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "train", it, 3))
            self.opt.zero_grad(set_to_none=True)
            total, scores = 0.0, []
            for j in range(mb):
                batch = self.sample(it * mb + j)
                batch = batch.to(self.device) if isinstance(batch, Episode) else tuple(t.to(self.device) for t in batch)
                loss, metrics = self.method.meta_loss(batch)
                if not torch.isfinite(loss):
                    raise NonFiniteError(f"meta-loss is {float(loss)} at iteration {it}; expected a finite value")
                (loss / mb).backward()
                total += float(loss.detach()) / mb
                scores.append(metrics.get("score", math.nan))
                del loss, batch
            norm = float(torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.cfg.clip_norm))
            if math.isfinite(norm):
                self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            return {"iteration": it + 1, "loss": total, "grad_norm": norm, "score": float(np.mean(scores))}

    def train(self, resume: bool = False) -> EpisodicResult:
        if resume:
            if self.checkpoint_path is None or not self.checkpoint_path.exists():
                raise CheckpointError(f"resume: no checkpoint at {str(self.checkpoint_path)!r}")
            self.load_checkpoint()
        elif self.out_dir is not None and (self.out_dir / "log.jsonl").exists():
            (self.out_dir / "log.jsonl").unlink()
        t0 = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.cfg.episodes, initial=self.iteration, desc="meta-train", leave=False)
        self.method.train()
        try:
            while self.iteration < self.cfg.episodes:
                rec = self.step(self.iteration)
                self.iteration += 1
                if self.iteration % self.cfg.val_every == 0 or self.iteration == self.cfg.episodes:
                    if self.validate is not None:
                        v = self.validate(self.method)
                        score, info = (float(v[0]), dict(v[1])) if isinstance(v, tuple) else (float(v), {})
                        self.method.train()
                        rec["val"] = score
                        self.history.append({"iteration": self.iteration, "val": score, **info})
                        if math.isfinite(score) and score > self.best_score:
                            self.best_score, self.best_iteration = score, self.iteration
                            self.best_state = copy.deepcopy(self.method.state_dict())
                    else:
                        self.best_state, self.best_iteration = copy.deepcopy(self.method.state_dict()), self.iteration
                if self.out_dir is not None:
                    self.out_dir.mkdir(parents=True, exist_ok=True)
                    append_jsonl(self.out_dir / "log.jsonl", rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{rec['loss']:.3g}")
                if self.iteration % self.cfg.checkpoint_every == 0 or self.iteration == self.cfg.episodes:
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        self.method.load_state_dict(self.best_state)
        if self.out_dir is not None:
            atomic_torch_save({"format": "learnt.fewshot.method/1", "method_config": json.dumps(self.method.config()),
                               "state": self.method.state_dict(), "best_iteration": self.best_iteration,
                               "best_val": self.best_score}, self.out_dir / "best.pt")
        return EpisodicResult(self.best_score, self.best_iteration, self.iteration, list(self.history),
                              time.perf_counter() - t0)


def evaluate_method(method: Method, sampler: EpisodeSampler, episodes: int, *, device: str = "cpu",
                    progress: bool = False, desc: str = "evaluate") -> np.ndarray:
    """Scores (accuracy or MSE) of ``method`` on episodes ``0 .. episodes-1`` of ``sampler``: (episodes,)."""
    method.eval()
    it = range(episodes)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=desc, leave=False)
    out = np.empty(episodes)
    for i in it:
        out[i] = method.score(sampler.episode(i).to(device))
    return out
