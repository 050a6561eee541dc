"""Meta-training over optimizee runs, with selection, logs, resume and torch.distributed.

The four seams of the design (docs/architecture.md) are kept apart: what is learned (``rule``), how the inner
problem steps (:func:`~learnt.meta.unroll.unroll` in truncations), how the meta-gradient is
estimated (:mod:`learnt.meta.estimators`: truncated BPTT, antithetic ES, PES; selected by
``MetaTrainConfig.estimator`` or passed as ``estimator=``), and how phi is updated (a
``torch.optim`` optimizer, after the meta-gradients of all task shards on all ranks are
averaged).
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from learnt.errors import NonFiniteError
from learnt.learned.serialization import save_rule
from learnt.meta import distributed as dist_
from learnt.meta.estimators import ESTIMATORS, TruncatedBPTT, make_estimator
from learnt.meta.loop import ResumableLoop, TrainResult, clipped_step, run_identity
from learnt.meta.objectives import get_objective
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "learnt.metatrain/1"


@dataclass(frozen=True)
class MetaTrainConfig:
    """How phi is meta-trained. One *iteration* is one optimizee run of ``unroll_steps``
    steps cut into truncations of ``truncation`` steps (one meta-update each); with
    ``truncation_sampling="heavy_tailed"`` the number of truncations (1 + Exp) and each
    truncation's length (``truncation`` + Exp) are drawn per run instead.

    Each meta-step averages the meta-gradients of ``task_shards`` independent runs (each a
    task of K stacked problems, so K x task_shards problems per step), spread over the
    torch.distributed ranks; 0 means one shard per rank. Fixing ``task_shards`` makes the
    numbers independent of how many ranks compute them (resume on another rank count).
    ``estimator`` picks the meta-gradient estimator (see :mod:`learnt.meta.estimators`)."""

    iterations: int = 2000
    unroll_steps: int = 100
    truncation: int = 20
    meta_lr: float = 1e-3
    clip_norm: float = 1.0
    objective: str = "sum"
    second_order: bool = False
    val_every: int = 50
    checkpoint_every: int = 50
    truncation_sampling: str = "fixed"   # or "heavy_tailed" (Wichrowska et al.), or "task": each run
                                         # lasts its task's ``horizon``, in truncations of ``truncation``
    truncations_mean: float = 5.0        # heavy_tailed: 1 + Exp(mean) truncations per run
    truncation_extra_mean: float = 20.0  # heavy_tailed: each truncation + Exp(mean) steps
    estimator: str = "bptt"              # meta-gradient: "bptt", "es" (antithetic) or "pes"
    sigma: float = 0.01                  # es/pes: std of the Gaussian perturbation of phi
    n_pairs: int = 8                     # es/pes: antithetic pairs per shard and truncation
    task_shards: int = 0                 # runs (tasks) averaged per meta-step; 0: one per rank

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator={self.estimator!r}; expected one of {list(ESTIMATORS)}")
        if not (self.sigma > 0 and math.isfinite(self.sigma)) or self.n_pairs < 1:
            raise ValueError(f"sigma={self.sigma}, n_pairs={self.n_pairs}; expected sigma > 0 and n_pairs >= 1")
        if self.task_shards < 0:
            raise ValueError(f"task_shards={self.task_shards}; expected >= 0 (0: one per rank)")
        if self.truncation_sampling not in ("fixed", "heavy_tailed", "task"):
            raise ValueError(f"truncation_sampling={self.truncation_sampling!r}; expected 'fixed', 'heavy_tailed' or 'task'")
        if self.truncations_mean < 0 or self.truncation_extra_mean < 0:
            raise ValueError(f"truncations_mean={self.truncations_mean}, truncation_extra_mean="
                             f"{self.truncation_extra_mean}; expected >= 0")
        for name in ("iterations", "unroll_steps", "truncation", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected >= 1")
        if not (self.meta_lr > 0 and self.clip_norm > 0 and math.isfinite(self.meta_lr) and math.isfinite(self.clip_norm)):
            raise ValueError(f"meta_lr={self.meta_lr}, clip_norm={self.clip_norm}; expected both > 0")
        get_objective(self.objective)


class MetaTrainer(ResumableLoop):
    """Meta-train ``rule`` on tasks from ``family``.

    Each iteration samples a task and initial parameters from ``make_generator(seed,
    "train", iteration)``, so a resumed run sees the same problems and reaches the same
    numbers as an uninterrupted one. The loop, checkpoints (``out_dir/checkpoint.pt``), the
    JSONL log, validation every ``val_every`` iterations (``validate(rule)``, lower is
    better), the NaN policy and resume are :class:`~learnt.meta.loop.ResumableLoop`'s; this
    class supplies the iteration (truncated unrolls, one meta-update each) and writes the
    selected phi to ``out_dir/best.pt`` (with ``validate_start`` the starting phi is validated
    first and competes, so a run that never improves on it selects it). A resumed run must train the same rule
    architecture with the same seed and config (the budget and cadences may change).

    Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process group
    is joined on construction (gloo for CPU, nccl for CUDA tensors). Each rank runs its
    shards of the iteration's ``task_shards`` runs (shard s > 0 draws from
    ``make_generator(seed, "train", iteration, 3, s)``), the meta-gradients are averaged
    over all shards with one all-reduce before clipping and the Adam step, so every rank
    holds the same phi. Rank 0 alone validates (the score is broadcast), writes the
    checkpoint, log, ``best.pt`` and shows progress; resume reads rank 0's checkpoint and
    broadcasts it, so it works with any number of ranks.

    Example:
        >>> from learnt.tasks import QuadraticFamily
        >>> from learnt.learned import L2LOptimizer
        >>> cfg = MetaTrainConfig(iterations=2, unroll_steps=4, truncation=2)
        >>> res = MetaTrainer(L2LOptimizer(), QuadraticFamily(n_problems=2), cfg, progress=False).train()
        >>> res.iterations
        2
    """

    checkpoint_format = CHECKPOINT_FORMAT
    model_key, optimizer_key = "rule_state", "meta_opt_state"
    progress_desc = "meta-train"

    def __init__(self, rule: nn.Module, family, config: MetaTrainConfig, *, seed: int = 0,
                 validate: Callable[[nn.Module], float] | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, estimator=None, validate_start: bool = False) -> None:
        self.rule, self.family, self.cfg, self.seed = rule, family, config, seed
        self.estimator = estimator or make_estimator(config, seed)
        self.meta_opt = torch.optim.Adam(rule.parameters(), lr=config.meta_lr)
        self._setup_loop(model=rule, optimizer=self.meta_opt, total=config.iterations,
                         checkpoint_every=config.checkpoint_every, val_every=config.val_every, validate=validate,
                         direction="min", out_dir=out_dir, progress=progress, dist=dist_.init_distributed(),
                         validate_start=validate_start)

    @property
    def task_shards(self) -> int:
        """Runs averaged per meta-step, over all ranks."""
        return self.cfg.task_shards or self.dist.world_size

    # ----------------------------------------------------------------- what the loop asks
    def identity(self) -> dict:
        return {"kind": self.rule.kind, "rule_config": self.rule.config(), "seed": self.seed,
                "config": run_identity(asdict(self.cfg))}

    def legacy_identity(self, ck: dict) -> dict:
        """Checkpoints of ``learnt.metatrain/1`` written before identities were stored."""
        return {"kind": ck["kind"], "rule_config": ck["rule_config"], "seed": ck["seed"],
                "config": run_identity(ck["config"])}

    def upgrade_identity(self, stored: dict) -> dict:
        upgrade = getattr(type(self.rule), "upgrade_config", None)
        if upgrade is None or not isinstance(stored.get("rule_config"), dict) or stored.get("kind") != self.rule.kind:
            return stored
        return {**stored, "rule_config": upgrade(stored["rule_config"])}

    def extra_state(self) -> dict:
        return {"kind": self.rule.kind, "rule_config": self.rule.config(), "seed": self.seed,
                "config": asdict(self.cfg), "world_size": self.dist.world_size}

    def train_iteration(self, it: int) -> dict:
        return self._run_iteration(it)

    def on_finish(self) -> None:
        if self.out_dir is not None:
            best = copy.deepcopy(self.rule)
            best.load_state_dict(self.best_state)
            save_rule(best, self.out_dir / "best.pt", {"best_iteration": self.best_iteration,
                                                       "best_val": self.best_score, "seed": self.seed})

    # ----------------------------------------------------------------- training
    def truncation_lengths(self, it: int, task=None) -> list[int]:
        """Lengths of the truncations of run ``it`` (deterministic per seed and iteration)."""
        cfg = self.cfg
        if cfg.truncation_sampling in ("fixed", "task"):
            steps = cfg.unroll_steps
            if cfg.truncation_sampling == "task":
                if not hasattr(task, "horizon"):
                    raise ValueError("truncation_sampling='task' needs tasks with a `horizon` (e.g. NetFamily's)")
                steps = int(task.horizon)
            full, rest = divmod(steps, cfg.truncation)
            return [cfg.truncation] * full + ([rest] if rest else [])
        g = make_generator(self.seed, "train", it, 1)
        exp = lambda mean: float(-mean * torch.log1p(-torch.rand((), generator=g)))  # noqa: E731
        n = 1 + int(exp(cfg.truncations_mean))
        return [cfg.truncation + int(exp(cfg.truncation_extra_mean)) for _ in range(n)]

    def run_iteration(self, it: int) -> dict:
        """One meta-training iteration: this rank's shards of ``task_shards`` optimizee runs,
        stepped in truncations, one (all-reduced) meta-update per truncation.

        Any use of torch's global RNG inside (e.g. a rule drawing its initial learning
        rates) is seeded per iteration and shard, so resumed runs stay identical."""
        return self.run_step(it)

    def _start_shard(self, it: int, s: int) -> _Shard:
        if s == 0:  # the single-shard stream of earlier versions: old runs stay reproducible
            g, rng_seed = make_generator(self.seed, "train", it), derive_seed(self.seed, "train", it, 2)
        else:
            g, rng_seed = make_generator(self.seed, "train", it, 3, s), derive_seed(self.seed, "train", it, 2, s)
        torch.manual_seed(rng_seed)
        task = self.family.sample(g)
        params = task.init_params(g)
        state = init_state(self.rule, params, task)
        batches = task.batches("train", g)
        if hasattr(self.estimator, "start_run"):  # the per-run reset hook (ES noise, PES particles)
            params, state = self.estimator.start_run(self.rule, task, params, state,
                                                     make_generator(self.seed, "train", it, 4, s))
        return _Shard(task, params, state, batches, torch.get_rng_state())

    def _run_iteration(self, it: int) -> dict:
        cfg = self.cfg
        shards = [self._start_shard(it, s) for s in dist_.shards_of_rank(self.task_shards, self.dist)]
        phi = list(self.rule.parameters())
        total = self.task_shards
        losses, norms, skipped = [], [], 0
        for steps in self.truncation_lengths(it, shards[0].task if shards else None):
            sums: list[torch.Tensor | None] = [None] * len(phi)
            loss_sum, bad = 0.0, 0
            for sh in shards:
                self.meta_opt.zero_grad(set_to_none=True)
                torch.set_rng_state(sh.rng)
                try:
                    sh.params, sh.state, meta_loss, curve = self.estimator.estimate(
                        self.rule, sh.task, sh.params, sh.state, sh.batches, steps, sh.f0)
                except NonFiniteError as e:
                    log.warning("iteration %d: skipping the rest of a bad unroll (%s)", it, e)
                    bad = 1
                    break
                sh.rng = torch.get_rng_state()
                if sh.f0 is None:
                    sh.f0 = curve[0]
                loss_sum += meta_loss
                if total > 1:
                    # float64 sums: 1 process x 2 shards and 2 ranks x 1 shard give the same bits
                    sums = [s if p.grad is None else (p.grad.double() if s is None else s + p.grad.double())
                            for s, p in zip(sums, phi)]
            if total > 1:
                bad, loss_sum = _average_grads(phi, sums, total, bad, loss_sum)
            if bad:
                self.meta_opt.zero_grad(set_to_none=True)
                skipped += 1
                break
            norm = clipped_step(self.meta_opt, self.rule.parameters(), cfg.clip_norm)
            if not math.isfinite(norm):
                log.warning("iteration %d: non-finite meta-gradient, update skipped", it)
                skipped += 1
                break
            losses.append(loss_sum / total)
            norms.append(norm)
        self.meta_opt.zero_grad(set_to_none=True)
        return {"iteration": it, "meta_loss": sum(losses) / len(losses) if losses else math.nan,
                "grad_norm": max(norms, default=math.nan), "skipped": skipped}

    def train(self, resume: bool = False) -> TrainResult:
        """Run (or continue, with ``resume``) meta-training to ``config.iterations``."""
        self.run(resume=resume)
        return self.result()


def init_state(rule, params, task):
    """``rule.init`` for a run of ``task``; rules that read the horizon (``uses_horizon``) are
    told the task's ``horizon`` when it has one."""
    if getattr(rule, "uses_horizon", False) and getattr(task, "horizon", None):
        return rule.init(params, task.n_problems, total_steps=int(task.horizon))
    return rule.init(params, task.n_problems)


@dataclass
class _Shard:
    """One optimizee run of an iteration, carried across its truncations."""

    task: object
    params: object
    state: object
    batches: object
    rng: torch.Tensor
    f0: torch.Tensor | None = None


def _average_grads(phi: list, sums: list, total: int, bad: int, loss_sum: float) -> tuple[int, float]:
    """Set ``p.grad`` to the mean over all shards of all ranks (one all-reduce of a flat
    vector of [grads, has-grad flags, bad flag, loss sum]); returns (any bad, global loss sum).
    A parameter no shard gave a gradient keeps ``grad=None`` (as a single run would)."""
    ref = next(p for p in phi)
    parts = [(s if s is not None else torch.zeros_like(p)).reshape(-1) for s, p in zip(sums, phi)]
    flags = torch.tensor([float(s is not None) for s in sums] + [float(bad), loss_sum],
                         dtype=torch.float64, device=ref.device)
    flat = torch.cat([q.to(torch.float64) for q in parts] + [flags])
    dist_.all_reduce_sum_(flat)
    n = sum(p.numel() for p in phi)
    has = flat[n:n + len(phi)]
    offset = 0
    for i, p in enumerate(phi):
        k = p.numel()
        p.grad = (flat[offset:offset + k] / total).view_as(p).to(p.dtype) if has[i] > 0 else None
        offset += k
    return int(flat[-2].item() > 0), float(flat[-1].item())

