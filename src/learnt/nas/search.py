"""The search loop: sample a batch of architectures, train them in parallel, update the policy.

With a :class:`~learnt.nas.controller.Controller` this is Zoph & Le's REINFORCE,

    grad J = (1/m) sum_k sum_t grad log P(a_t^k | a_<t^k) (R_k - b)  [+ entropy bonus]

with ``b`` an exponential moving average of past rewards and ``R = (validation accuracy)^p``
(``p = 3`` in the paper's CIFAR runs). With a
:class:`~learnt.nas.controller.UniformPolicy` the same loop is random search with the same
children, child budget and depth schedule. Depth follows a curriculum: ``min_layers`` at
first, ``+layer_step`` every ``curriculum_every`` batches, up to ``max_layers``.

Every batch ends with an atomic checkpoint (policy, optimizer, baseline, batch index and the
full history of architectures and rewards). Randomness is derived per batch from the seed
(:func:`learnt.seeding.make_generator`), so a resumed search samples and trains exactly what
an uninterrupted one would have.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from learnt.errors import CheckpointError, ConfigError, SearchFailedError
from learnt.io import atomic_torch_save, safe_torch_load
from learnt.nas.backends import Backend, SerialBackend
from learnt.nas.child import ChildConfig, ChildJob, _load, train_child
from learnt.nas.controller import Controller, UniformPolicy
from learnt.nas.space import Architecture, SearchSpace, decode_tokens
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "learnt.nas.search/1"


@dataclass(frozen=True)
class SearchConfig:
    """How the policy is trained; ``batches * batch_size`` children in all."""

    batches: int = 30
    batch_size: int = 8            # children per controller batch (m)
    min_layers: int = 2
    max_layers: int = 6
    curriculum_every: int = 5      # batches between depth increases
    layer_step: int = 1
    lr: float = 0.005              # the paper: 6e-4 over 12,800 children; scaled up for ~100s
    entropy_weight: float = 0.0
    baseline_decay: float = 0.8
    reward_power: float = 1.0      # 3 = the paper's cubed accuracy
    clip_norm: float = 5.0

    def __post_init__(self) -> None:
        for name in ("batches", "batch_size", "min_layers", "curriculum_every", "layer_step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"search {name}={getattr(self, name)}; expected >= 1")
        if self.max_layers < self.min_layers:
            raise ConfigError(f"search max_layers={self.max_layers} < min_layers={self.min_layers}")
        if not 0 <= self.baseline_decay < 1:
            raise ConfigError(f"search baseline_decay={self.baseline_decay}; expected in [0, 1)")
        if not (self.lr > 0 and self.clip_norm > 0 and self.reward_power > 0 and self.entropy_weight >= 0):
            raise ConfigError(f"search lr={self.lr}, clip_norm={self.clip_norm}, reward_power={self.reward_power}, "
                              f"entropy_weight={self.entropy_weight}; expected positive (entropy_weight >= 0)")

    def depth(self, batch: int) -> int:
        """Number of layers sampled in controller batch ``batch`` (the curriculum)."""
        return min(self.max_layers, self.min_layers + self.layer_step * (batch // self.curriculum_every))


class ArchitectureSearch:
    """One search run (controller or random), resumable from ``workdir/checkpoint.pt``.

    With ``resume=True`` (default) an existing checkpoint in ``workdir`` is continued (it must
    come from the same method, seed and configs); with ``resume=False`` it is overwritten.

    Example:
        >>> s = ArchitectureSearch(SearchSpace(), "controller", SearchConfig(batches=2), seed=0)  # doctest: +SKIP
        >>> history = s.run()                                                                    # doctest: +SKIP
    """

    def __init__(self, space: SearchSpace, method: str, cfg: SearchConfig, child: ChildConfig = ChildConfig(), *,
                 seed: int = 0, backend: Backend | None = None, workdir: str | Path | None = None,
                 controller: dict | None = None, progress: bool = False, dataset: str = "digits",
                 train_fn: Callable[[ChildJob], dict] = train_child, device: str = "cpu",
                 resume: bool = True) -> None:
        if method not in ("controller", "random"):
            raise ConfigError(f"search method {method!r}; expected 'controller' or 'random'")
        if cfg.max_layers > space.max_layers:
            raise ConfigError(f"search max_layers={cfg.max_layers} exceeds the search space's {space.max_layers}")
        if train_fn is train_child:   # fail before the first child, not after every one of them
            try:
                _load(dataset)
            except (ValueError, FileNotFoundError) as e:
                raise ConfigError(f"search dataset {dataset!r}: {e}") from None
        self.space, self.method, self.cfg, self.child = space, method, cfg, child
        self.seed, self.dataset, self.progress, self.train_fn = seed, dataset, progress, train_fn
        self.backend = backend if backend is not None else SerialBackend()
        self.workdir = Path(workdir) if workdir is not None else None
        if method == "controller":
            kwargs = {"seed": derive_seed(seed, "train", 0, 3), **(controller or {})}
            self.policy = Controller(space, **kwargs).to(device)
            self.optimizer: torch.optim.Optimizer | None = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        else:
            self.policy, self.optimizer = UniformPolicy(space), None
        self.baseline: float | None = None
        self.next_batch = 0
        self.history: list[dict] = []
        self.batch_log: list[dict] = []
        if resume and self.workdir is not None and (self.workdir / "checkpoint.pt").exists():
            self._load(self.workdir / "checkpoint.pt")

    # -- persistence -------------------------------------------------------------------
    def _identity(self) -> dict:
        return {"method": self.method, "seed": self.seed, "dataset": self.dataset,
                "space": dataclasses.asdict(self.space), "search": dataclasses.asdict(self.cfg),
                "child": dataclasses.asdict(self.child)}

    def state_dict(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "identity": self._identity(), "next_batch": self.next_batch,
                "policy": self.policy.state_dict() if isinstance(self.policy, Controller) else None,
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "baseline": self.baseline, "history": self.history, "batch_log": self.batch_log}

    def _load(self, path: Path) -> None:
        ck = safe_torch_load(path)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{str(path)!r} is not a NAS search checkpoint (format {CHECKPOINT_FORMAT})")
        if _jsonish(ck["identity"]) != _jsonish(self._identity()):
            raise CheckpointError(f"{str(path)!r} belongs to another search (method, seed or config differ); "
                                  "use a fresh output folder or the same settings")
        if ck["policy"] is not None:
            self.policy.load_state_dict(ck["policy"])
            self.optimizer.load_state_dict(ck["optimizer"])
        self.baseline, self.next_batch = ck["baseline"], ck["next_batch"]
        self.history, self.batch_log = list(ck["history"]), list(ck["batch_log"])
        log.info("resumed %s search at batch %d (%d children)", self.method, self.next_batch, len(self.history))

    def save(self) -> None:
        if self.workdir is not None:
            atomic_torch_save(self.state_dict(), self.workdir / "checkpoint.pt")

    # -- the loop ----------------------------------------------------------------------
    def run(self, max_batches: int | None = None) -> list[dict]:
        """Run the remaining batches (at most ``max_batches`` of them now); return the history."""
        end = self.cfg.batches if max_batches is None else min(self.cfg.batches, self.next_batch + max_batches)
        bar = tqdm(range(self.next_batch, end), desc=f"{self.method} search", disable=not self.progress,
                   initial=self.next_batch, total=self.cfg.batches)
        for b in bar:
            self.step(b)
            best = max((h["val_acc"] for h in self.history), default=0.0)
            bar.set_postfix(best=f"{best:.3f}", baseline=f"{self.baseline:.3f}")
        return self.history

    def step(self, b: int) -> None:
        """Controller batch ``b``: sample, train children, update the policy, checkpoint."""
        if b != self.next_batch:
            raise ValueError(f"batch {b} requested but the search is at batch {self.next_batch}")
        cfg, m, L = self.cfg, self.cfg.batch_size, self.cfg.depth(b)
        with torch.no_grad():
            tokens, _, _ = self.policy(m, L, make_generator(self.seed, "train", b, 1))
        tokens = tokens.cpu()
        archs = [decode_tokens(self.space, t.tolist()) for t in tokens]
        jobs = [ChildJob(a, derive_seed(self.seed, "train", b, 2, k), self.child, ("val",), self.dataset,
                         key=(b, k)) for k, a in enumerate(archs)]
        outcomes = self.backend.map(self.train_fn, jobs)
        if not any(o.ok for o in outcomes):
            raise SearchFailedError(f"every child of batch {b} failed (after {outcomes[0].attempts} attempt(s) each); "
                                    f"first error: {outcomes[0].error}")
        accs = [float(o.value["acc"]["val"]) if o.ok else 0.0 for o in outcomes]
        rewards = [a ** cfg.reward_power for a in accs]
        mean_r = sum(rewards) / m
        if self.baseline is None:
            self.baseline = mean_r
        stats = {"batch": b, "layers": L, "mean_reward": mean_r, "baseline": self.baseline,
                 "failed": sum(not o.ok for o in outcomes)}
        if self.optimizer is not None:
            _, logp, ent = self.policy(m, L, tokens=tokens)
            adv = torch.tensor(rewards, device=logp.device) - self.baseline
            loss = -(adv * logp).mean() - cfg.entropy_weight * ent.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.clip_norm)
            self.optimizer.step()
            stats.update(loss=float(loss.detach()), entropy=float(ent.detach().mean()))
        self.baseline = cfg.baseline_decay * self.baseline + (1 - cfg.baseline_decay) * mean_r
        for k, (a, o, acc, r) in enumerate(zip(archs, outcomes, accs, rewards)):
            self.history.append({
                "batch": b, "child": len(self.history), "layers": L, "tokens": tokens[k].tolist(),
                "val_acc": acc, "reward": r, "ok": o.ok, "attempts": o.attempts, "error": o.error,
                "params": int(o.value["params"]) if o.ok else 0,
                "seconds": float(o.value["seconds"]) if o.ok else 0.0})
        self.batch_log.append(stats)
        self.next_batch = b + 1
        self.save()

    def architecture(self, entry: dict) -> Architecture:
        return decode_tokens(self.space, entry["tokens"])

    def top(self, k: int) -> list[dict]:
        """The ``k`` best distinct architectures of the history by validation accuracy."""
        return top_distinct(self.history, k)


def top_distinct(history: list[dict], k: int) -> list[dict]:
    """The ``k`` history entries with the highest ``val_acc`` among distinct token sequences
    (ties: the earlier child); failed children are skipped."""
    seen, out = set(), []
    for h in sorted((h for h in history if h["ok"]), key=lambda h: (-h["val_acc"], h["child"])):
        key = tuple(h["tokens"])
        if key not in seen and math.isfinite(h["val_acc"]):
            seen.add(key)
            out.append(h)
        if len(out) == k:
            break
    return out


def _jsonish(x):
    if isinstance(x, dict):
        return {k: _jsonish(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonish(v) for v in x]
    return x
