"""The search loop: sample a batch of architectures, train them in parallel, update the policy.

With a :class:`~learnt.nas.controller.Controller` this is Zoph & Le's REINFORCE,

    grad J = (1/m) sum_k sum_t grad log P(a_t^k | a_<t^k) (R_k - b)  [+ entropy bonus]

with ``b`` an exponential moving average of past rewards and ``R = (validation accuracy)^p``
(``p = 3`` in the paper's CIFAR runs). With a
:class:`~learnt.nas.controller.UniformPolicy` the same loop is random search with the same
children, child budget and depth schedule. Depth follows a curriculum: ``min_layers`` at
first, ``+layer_step`` every ``curriculum_every`` batches, up to ``max_layers``.

The search is a :class:`~learnt.meta.loop.ResumableLoop` (docs/architecture.md, "The one
trainer"): one controller batch is one iteration, and every batch ends with an atomic
checkpoint (policy, optimizer, baseline, batch index and the full history of architectures
and rewards) and one line in ``workdir/log.jsonl``. Randomness is derived per batch from the
seed (:func:`learnt.seeding.make_generator`), so a resumed search samples and trains exactly
what an uninterrupted one would have. Checkpoints of the search's own earlier format
(``learnt.nas.search/1``) still resume.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from learnt.errors import ConfigError, SearchFailedError
from learnt.meta.loop import ResumableLoop, clipped_step, run_identity
from learnt.nas.backends import Backend, SerialBackend
from learnt.nas.child import ChildConfig, ChildJob, _load, train_child
from learnt.nas.controller import Controller, UniformPolicy
from learnt.nas.space import Architecture, SearchSpace, decode_tokens
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "learnt.nas.search/2"
LEGACY_FORMAT = "learnt.nas.search/1"   # before the search ran on the one loop: still resumes


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


class ArchitectureSearch(ResumableLoop):
    """One search run (controller or random), resumable from ``workdir/checkpoint.pt``.

    With ``resume=True`` (default) an existing checkpoint in ``workdir`` is continued (it must
    come from the same method, seed and configs: the error names what differs); with
    ``resume=False`` the search starts over and overwrites it. :attr:`history` holds one entry
    per child (architecture tokens, validation accuracy, reward, attempts, error text),
    :attr:`batch_log` one per controller batch.

    Example:
        >>> s = ArchitectureSearch(SearchSpace(), "controller", SearchConfig(batches=2), seed=0)  # doctest: +SKIP
        >>> history = s.run()                                                                    # doctest: +SKIP
    """

    checkpoint_format = CHECKPOINT_FORMAT
    model_key, optimizer_key = "policy", "optimizer"

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
        self.seed, self.dataset, self.train_fn = seed, dataset, train_fn
        self.backend = backend if backend is not None else SerialBackend()
        self.workdir = Path(workdir) if workdir is not None else None
        if method == "controller":
            kwargs = {"seed": derive_seed(seed, "train", 0, 3), **(controller or {})}
            self.policy = Controller(space, **kwargs).to(device)
            optimizer: torch.optim.Optimizer | None = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
            model: nn.Module = self.policy
        else:
            self.policy, optimizer, model = UniformPolicy(space), None, nn.Module()
        self.progress_desc = f"{method} search"
        self._setup_loop(model=model, optimizer=optimizer, total=cfg.batches, checkpoint_every=1,
                         out_dir=self.workdir, progress=progress)
        self.baseline: float | None = None
        self.batch_log: list[dict] = []
        # self.history (the loop's record list) holds one entry per child: there is no validation
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_checkpoint()

    # -- what the loop needs -----------------------------------------------------------
    @property
    def next_batch(self) -> int:
        """Index of the next controller batch (= batches done)."""
        return self.iteration

    def identity(self) -> dict:
        return {"method": self.method, "seed": self.seed, "dataset": self.dataset,
                "space": dataclasses.asdict(self.space), "search": run_identity(dataclasses.asdict(self.cfg)),
                "child": dataclasses.asdict(self.child)}

    def extra_state(self) -> dict:
        return {"baseline": self.baseline, "batch_log": self.batch_log}

    def load_extra_state(self, ck: dict, source: str) -> None:
        self.baseline, self.batch_log = ck["baseline"], list(ck["batch_log"])
        log.info("resumed %s search at batch %d (%d children)", self.method, self.iteration, len(self.history))

    def _read_checkpoint(self, path: Path):
        ck = super()._read_checkpoint(path)
        if isinstance(ck, dict) and ck.get("format") == LEGACY_FORMAT:   # the search's own earlier file
            ident = dict(ck["identity"])
            ident["search"] = run_identity(dict(ident["search"]))
            ck = {"format": CHECKPOINT_FORMAT, "identity": json.dumps(ident, sort_keys=True, default=str),
                  "iteration": ck["next_batch"], "policy": ck["policy"] or {}, "optimizer": ck["optimizer"],
                  "best_state": ck["policy"] or {}, "best_score": math.inf, "best_iteration": -1,
                  "history": list(ck["history"]), "baseline": ck["baseline"], "batch_log": ck["batch_log"]}
        return ck

    def train_iteration(self, b: int) -> dict:
        """Controller batch ``b``: sample, train children, update the policy (the loop
        checkpoints and logs the returned record)."""
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
            norm = clipped_step(self.optimizer, self.policy.parameters(), cfg.clip_norm)
            stats.update(loss=float(loss.detach()), entropy=float(ent.detach().mean()))
            if not (math.isfinite(stats["loss"]) and math.isfinite(norm)):
                stats["skipped"] = True     # the policy update was discarded; the children stay in the history
        self.baseline = cfg.baseline_decay * self.baseline + (1 - cfg.baseline_decay) * mean_r
        for k, (a, o, acc, r) in enumerate(zip(archs, outcomes, accs, rewards)):
            self.history.append({
                "batch": b, "child": len(self.history), "layers": L, "tokens": tokens[k].tolist(),
                "val_acc": acc, "reward": r, "ok": o.ok, "attempts": o.attempts, "error": o.error,
                "params": int(o.value["params"]) if o.ok else 0,
                "seconds": float(o.value["seconds"]) if o.ok else 0.0})
        self.batch_log.append(stats)
        best = max((h["val_acc"] for h in self.history if h["ok"]), default=0.0)
        return {"iteration": b, **stats, "best_val_acc": best}

    # -- the public loop ---------------------------------------------------------------
    def train(self, resume: bool = False, until: int | None = None) -> list[dict]:
        """The entry point every trainer has: run to ``until`` batches (default: all);
        ``resume=True`` continues from the checkpoint and is an error without one."""
        super().run(resume=resume, until=until)
        return self.history

    def run(self, max_batches: int | None = None) -> list[dict]:  # type: ignore[override]
        """Run the remaining batches (at most ``max_batches`` of them now); return the history."""
        end = self.cfg.batches if max_batches is None else min(self.cfg.batches, self.iteration + max_batches)
        super().run(resume=False, until=end)
        return self.history

    def step(self, b: int) -> None:
        """Controller batch ``b`` alone (it must be the next one), checkpointed."""
        if b != self.iteration:
            raise ValueError(f"batch {b} requested but the search is at batch {self.iteration}")
        self.run(max_batches=1)

    def save(self) -> None:
        """Checkpoint now (the loop does so after every batch)."""
        self.save_checkpoint()

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
