"""Episodic meta-training on the one training loop, and paired evaluation.

:class:`EpisodicTrainer` does one meta-update per batch (an :class:`Episode` for the
meta-learners, an ``(x, y)`` mini-batch for pre-training): ``loss, metrics =
method.meta_loss(batch)``, backward, gradient-norm clip, Adam step. Batch ``i`` comes from
``sample(i)``, and torch's global RNG is reseeded per iteration, so a resumed run reaches
the same numbers as an uninterrupted one. Nothing of one episode's graph outlives its
iteration (the loss is reduced to floats before the next episode), so memory stays flat.
Every ``val_every`` iterations ``validate(method)`` (higher is better, e.g. accuracy;
it may return ``(score, info_dict)`` to log more in the history) selects the best
meta-parameters; ``checkpoint.pt``, ``log.jsonl`` and ``best.pt`` (:func:`save_method`) go
to ``out_dir``. Loop, checkpoints, log and resume: :class:`~learnt.meta.loop.ResumableLoop`.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from learnt.fewshot.api import save_method
from learnt.fewshot.episodes import Episode, EpisodeSampler
from learnt.fewshot.methods import Method
from learnt.meta.loop import ResumableLoop, TrainResult, clipped_step, run_identity
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


EpisodicResult = TrainResult   # the one result type (its best_state: the selected weights)


class EpisodicTrainer(ResumableLoop):
    """Meta-train ``method`` on batches from ``sample(i)``; the loop, checkpoints, log,
    selection (higher is better), NaN policy and resume are
    :class:`~learnt.meta.loop.ResumableLoop`'s. A resumed run must train the same method
    config with the same seed and training config (the budget and cadences may change).

    Example:
        >>> from learnt.fewshot.learner import SineMLP
        >>> from learnt.fewshot.baselines import MAML
        >>> from learnt.fewshot.sinusoid import SinusoidEpisodes
        >>> m, eps = MAML(SineMLP(8), "regression", steps=1, inner_lr=0.01), SinusoidEpisodes()
        >>> EpisodicTrainer(m, eps.episode, EpisodicTrainConfig(episodes=2), progress=False).train().iterations
        2
    """

    checkpoint_format = CHECKPOINT_FORMAT
    model_key, optimizer_key = "state", "opt_state"
    progress_desc = "meta-train"

    def __init__(self, method: Method, sample: Callable[[int], Any], config: EpisodicTrainConfig, *, seed: int = 0,
                 validate: Callable[[Method], float] | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, device: str = "cpu") -> None:
        self.method, self.sample, self.cfg, self.seed = method, sample, config, seed
        self.device = device
        self.opt = torch.optim.Adam(method.parameters(), lr=config.meta_lr)
        self._setup_loop(model=method, optimizer=self.opt, total=config.episodes,
                         checkpoint_every=config.checkpoint_every, val_every=config.val_every, validate=validate,
                         direction="max", out_dir=out_dir, progress=progress)

    def identity(self) -> dict:
        return {"method": self.method.config(), "seed": self.seed, "config": run_identity(asdict(self.cfg))}

    def extra_state(self) -> dict:
        return {"method_config": json.dumps(self.method.config()), "seed": self.seed, "config": asdict(self.cfg)}

    def step_seed(self, it: int) -> int:
        return derive_seed(self.seed, "train", it, 3)

    def train_iteration(self, it: int) -> dict:
        return self.step(it)

    def step(self, it: int) -> dict:
        """One meta-update on batches ``it * meta_batch ..``; returns floats only (no graph
        survives). A non-finite loss or gradient discards the update (``"skipped": 1``)."""
        mb = self.cfg.meta_batch
        self.opt.zero_grad(set_to_none=True)
        total, scores = 0.0, []
        for j in range(mb):
            batch = self.sample(it * mb + j)
            batch = batch.to(self.device) if isinstance(batch, Episode) else tuple(t.to(self.device) for t in batch)
            loss, metrics = self.method.meta_loss(batch)
            if not torch.isfinite(loss):
                value = float(loss.detach())
                log.warning("iteration %d: meta-loss is %s, update skipped", it, value)
                self.opt.zero_grad(set_to_none=True)
                return {"iteration": it + 1, "loss": value, "grad_norm": math.nan, "score": math.nan, "skipped": 1}
            (loss / mb).backward()
            total += float(loss.detach()) / mb
            scores.append(metrics.get("score", math.nan))
            del loss, batch
        norm = clipped_step(self.opt, self.method.parameters(), self.cfg.clip_norm)
        self.opt.zero_grad(set_to_none=True)
        rec = {"iteration": it + 1, "loss": total, "grad_norm": norm, "score": float(np.mean(scores))}
        if not math.isfinite(norm):
            log.warning("iteration %d: non-finite gradient, update skipped", it)
            rec["skipped"] = 1
        return rec

    def on_finish(self) -> None:
        self.method.load_state_dict(self.best_state)
        if self.out_dir is not None:
            save_method(self.method, self.out_dir / "best.pt",
                        {"best_iteration": self.best_iteration, "best_val": self.best_score})

    def train(self, resume: bool = False) -> EpisodicResult:
        self.method.train()
        self.run(resume=resume)
        return self.result()


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
