"""The one resumable training loop (docs/architecture.md, "The one trainer").

:class:`ResumableLoop` owns everything a training run does around its updates:

- the iteration counter and the loop itself, with ``until`` (stop early, continue later);
- ``out_dir/checkpoint.pt``, written atomically every ``checkpoint_every`` iterations and at
  the end, and resume from it: ``resume=True`` without a checkpoint is a
  :class:`~learnt.errors.CheckpointError`, and so is a checkpoint of another format, of
  another run (its :meth:`identity` differs: the error names each differing entry) or of
  another architecture;
- ``out_dir/log.jsonl`` (one record per line, :func:`learnt.io.append_jsonl`): the checkpoint
  records how many lines the log held, and resume rewrites the log to those lines, so a log
  line written after the checkpoint, or torn by the crash, is dropped;
- validation every ``val_every`` iterations and at the end, selecting the best state in a
  declared ``direction`` (``"min"``: lower is better, ``"max"``: higher is better); without a
  validator the best state is the last one;
- one NaN policy: an iteration whose loss or gradient is not finite discards its update and
  says so with ``"skipped"`` in its record (counted in :attr:`skipped` and logged);
  ``max_consecutive_skips`` skipped iterations in a row raise :class:`~learnt.errors.NonFiniteError`;
- torch's global RNG: each iteration runs in a fork of it (seeded per iteration when the
  trainer asks, :meth:`step_seed`), so nothing outside leaks in and a resumed run draws the
  same numbers;
- the tqdm progress bar;
- torch.distributed ranks: only rank 0 validates (the score is broadcast), writes files and
  shows progress; rank 0 reads the checkpoint on resume and broadcasts it.

A trainer without a learned model of its own (random search) passes an empty ``nn.Module``
and ``optimizer=None``.

A trainer subclasses it and supplies only what differs: :meth:`train_iteration` (one
iteration's update, returning its log record), a ``validate(model)`` callable, its
:meth:`identity` and its extra state (:meth:`extra_state` / :meth:`load_extra_state`).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from learnt.errors import CheckpointError, NonFiniteError
from learnt.io import append_jsonl, atomic_torch_save, read_jsonl, rewrite_jsonl, safe_torch_load
from learnt.learned.serialization import check_state_dict
from learnt.meta import distributed as dist_

log = logging.getLogger(__name__)

#: config fields a resumed run may change: the budget and how often things happen (they do
#: not change the numbers of the iterations both runs share)
CADENCE_FIELDS = ("iterations", "episodes", "batches", "val_every", "checkpoint_every", "log_every")


def run_identity(config: dict) -> dict:
    """``config`` without the fields a resumed run may change (:data:`CADENCE_FIELDS`)."""
    return {k: v for k, v in config.items() if k not in CADENCE_FIELDS}


def clipped_step(optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor], clip_norm: float) -> float:
    """Clip the gradients of ``params`` to norm ``clip_norm`` and step ``optimizer``; a
    non-finite gradient norm discards the update instead (gradients zeroed). Returns the
    norm before clipping: the caller reports a non-finite one as a skipped iteration."""
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm))
    if math.isfinite(norm):
        optimizer.step()
    else:
        optimizer.zero_grad(set_to_none=True)
    return norm


def _canonical(obj: Any) -> Any:
    """JSON round trip: tuples become lists, keys strings, so identities compare as stored."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _differences(got: Any, want: Any, prefix: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for k in sorted(set(got) | set(want)):
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in got:
                out.append(f"{name}: absent in the checkpoint, {want[k]!r} here")
            elif k not in want:
                out.append(f"{name}: {got[k]!r} in the checkpoint, absent here")
            else:
                out.extend(_differences(got[k], want[k], name))
        return out
    return [] if got == want else [f"{prefix or 'identity'}: {got!r} in the checkpoint, {want!r} here"]


@dataclass
class TrainResult:
    """Outcome of a trainer's ``train`` (:meth:`ResumableLoop.result`)."""

    best_state: dict
    best_score: float
    best_iteration: int
    iterations: int
    history: list[dict]
    wall_seconds: float
    skipped: int = 0       # iterations whose update was discarded (non-finite loss or gradient)


class ResumableLoop:
    """Base class of every trainer (see the module docstring).

    A subclass sets :attr:`checkpoint_format` (and the checkpoint keys of its model and
    optimizer state, :attr:`model_key` / :attr:`optimizer_key`), calls :meth:`_setup_loop`
    in its ``__init__`` and :meth:`run` in its ``train``."""

    checkpoint_format: str = ""
    model_key: str = "model_state"
    optimizer_key: str = "optimizer_state"
    progress_desc: str = "train"
    max_consecutive_skips: int = 10

    def _setup_loop(self, *, model: nn.Module, optimizer: torch.optim.Optimizer | None, total: int, checkpoint_every: int,
                    val_every: int | None = None, validate: Callable[[nn.Module], Any] | None = None,
                    direction: str = "min", out_dir: str | Path | None = None, progress: bool = True,
                    dist: dist_.DistInfo | None = None, validate_start: bool = False) -> None:
        if direction not in ("min", "max"):
            raise ValueError(f"direction={direction!r}; expected 'min' (lower is better) or 'max'")
        self.model, self.optimizer = model, optimizer
        self.total, self.checkpoint_every, self.val_every = int(total), int(checkpoint_every), val_every
        self.stop = self.total            # where the current run() stops (``until``)
        self.validate, self.direction = validate, direction
        self.validate_start = bool(validate_start)   # the starting phi competes in the selection
        self.dist = dist if dist is not None else dist_.DistInfo()
        self.out_dir = Path(out_dir) if out_dir is not None and self.dist.is_main else None
        self.progress = progress and self.dist.is_main
        self.iteration = 0
        self.best_state = copy.deepcopy(model.state_dict())
        self.best_score = math.inf if direction == "min" else -math.inf
        self.best_iteration = -1
        self.history: list[dict] = []     # validation records (a trainer may add its own)
        self.skipped = 0                  # iterations whose update was discarded (non-finite)
        self.consecutive_skips = 0
        self.log_records = 0              # lines written to log.jsonl by this run and the ones it resumed
        self.wall_seconds = 0.0

    # ------------------------------------------------------------------ supplied by the trainer
    def train_iteration(self, it: int) -> dict | None:
        """Iteration ``it``'s update; returns its log record (None: nothing to log). A record
        with a true ``"skipped"`` says the update was discarded (non-finite loss or gradient)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What a checkpoint must have been written for to be resumed by this run."""
        raise NotImplementedError

    def extra_state(self) -> dict:
        """The trainer's own checkpoint entries (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_extra_state(self, ck: dict, source: str) -> None:
        """Restore :meth:`extra_state` from the checkpoint dict ``ck``."""

    def step_seed(self, it: int) -> int | None:
        """Seed for torch's global RNG during iteration ``it`` (None: leave the fork unseeded)."""
        return None

    def legacy_identity(self, ck: dict) -> dict | None:
        """The identity of a checkpoint written before identities were stored (None: unknown)."""
        return None

    def upgrade_identity(self, stored: dict) -> dict:
        """A stored identity as this code would write it for the same run (e.g. a rule config
        that has since gained keys whose defaults reproduce the old behaviour)."""
        return stored

    def on_finish(self) -> None:
        """Called after :meth:`run` reaches its stop (e.g. to write ``best.pt``)."""

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoint.pt"

    @property
    def log_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "log.jsonl"

    def save_checkpoint(self) -> None:
        """Write the whole training state atomically (rank 0 with an ``out_dir`` only)."""
        if self.checkpoint_path is None:
            return
        best = self.best_state if self.validate is not None else self.model.state_dict()
        atomic_torch_save({
            "format": self.checkpoint_format, "identity": json.dumps(_canonical(self.identity()), sort_keys=True),
            "iteration": self.iteration, self.model_key: self.model.state_dict(),
            self.optimizer_key: self.optimizer.state_dict() if self.optimizer is not None else None,
            "best_state": best, "best_score": self.best_score,
            "best_iteration": self.best_iteration, "history": json.dumps(self.history), "skipped": self.skipped,
            "consecutive_skips": self.consecutive_skips, "log_records": self.log_records, **self.extra_state(),
        }, self.checkpoint_path)

    def _read_checkpoint(self, path: Path) -> Any:
        if self.dist.world_size <= 1:
            return safe_torch_load(path)
        got = None   # rank 0 reads, every rank gets the same dict (or the same error)
        if self.dist.is_main:
            try:
                got = ("ok", safe_torch_load(path))
            except CheckpointError as e:
                got = ("error", str(e))
        status, ck = dist_.broadcast_object(got)
        if status == "error":
            raise CheckpointError(ck)
        return ck

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore the training state from ``path`` (default: :attr:`checkpoint_path`) after
        checking its format, identity and architecture, and cut the log back to it."""
        path = Path(path) if path is not None else self.checkpoint_path
        src = str(path)
        ck = self._read_checkpoint(path)
        if not isinstance(ck, dict) or ck.get("format") != self.checkpoint_format:
            raise CheckpointError(f"checkpoint {src!r} is not a {self.checkpoint_format} checkpoint "
                                  f"(format {ck.get('format') if isinstance(ck, dict) else type(ck).__name__!r})")
        stored = ck.get("identity")
        stored = json.loads(stored) if isinstance(stored, str) else self.legacy_identity(ck)
        stored = self.upgrade_identity(stored) if stored is not None else None
        want = _canonical(self.identity())
        if stored is None or _canonical(stored) != want:
            diffs = ["no identity stored"] if stored is None else _differences(_canonical(stored), want)
            raise CheckpointError(f"checkpoint {src!r} was written for another run: {'; '.join(diffs[:8])} "
                                  f"(run without resume to start over)")
        check_state_dict(self.model, ck[self.model_key], src)
        self.model.load_state_dict(ck[self.model_key])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(ck[self.optimizer_key])
        self.iteration = int(ck["iteration"])
        self.best_state = ck["best_state"]
        self.best_score, self.best_iteration = float(ck["best_score"]), int(ck["best_iteration"])
        history = ck["history"]
        self.history = json.loads(history) if isinstance(history, str) else list(history)
        self.skipped, self.consecutive_skips = int(ck.get("skipped", 0)), int(ck.get("consecutive_skips", 0))
        self.load_extra_state(ck, src)
        self._cut_log(ck.get("log_records"))
        log.info("resumed from %s at iteration %d", src, self.iteration)

    def _cut_log(self, n: int | None) -> None:
        """Keep the log's first ``n`` records (those written before the checkpoint; a torn last
        line is not a record). Checkpoints that did not count them keep ``iteration <`` theirs."""
        records = read_jsonl(self.log_path) if self.log_path is not None and self.log_path.exists() else []
        keep = records[:n] if n is not None else [r for r in records if r.get("iteration", 0) < self.iteration]
        if self.log_path is not None and self.log_path.exists():
            rewrite_jsonl(self.log_path, keep)
        self.log_records = int(n) if n is not None else len(keep)

    def log(self, record: dict) -> None:
        """Append one record to ``log.jsonl``."""
        self.log_records += 1
        if self.log_path is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.log_path, record)

    # ------------------------------------------------------------------ the loop
    def run_step(self, it: int) -> dict | None:
        """Iteration ``it`` as the loop runs it: in a fork of torch's global RNG, seeded by
        :meth:`step_seed`."""
        with torch.random.fork_rng(devices=[]):
            seed = self.step_seed(it)
            if seed is not None:
                torch.manual_seed(seed)
            return self.train_iteration(it)

    def _due(self, every: int | None, stop: int) -> bool:
        return every is not None and (self.iteration % every == 0 or self.iteration == stop)

    def _validate_and_select(self, record: dict | None) -> None:
        if self.validate is None:
            return
        was_training = self.model.training
        try:
            v = self.validate(self.model) if self.dist.is_main else None
        finally:
            self.model.train(was_training)
        v = dist_.broadcast_object(v)
        score, info = (float(v[0]), dict(v[1])) if isinstance(v, tuple) else (float(v), {})
        if record is not None:
            record["val"] = score
        self.history.append({"iteration": self.iteration, "val": score, **info})
        better = score < self.best_score if self.direction == "min" else score > self.best_score
        if math.isfinite(score) and better:
            self.best_score, self.best_iteration = score, self.iteration
            self.best_state = copy.deepcopy(self.model.state_dict())

    def _count_skip(self, record: dict | None, it: int) -> None:
        if record is not None and record.get("skipped"):
            self.skipped += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= self.max_consecutive_skips:
                raise NonFiniteError(
                    f"{self.consecutive_skips} consecutive iterations (up to {it}) had a non-finite loss or "
                    f"gradient and were skipped (max_consecutive_skips={self.max_consecutive_skips}); "
                    f"lower the learning rate or check the data")
        else:
            self.consecutive_skips = 0

    def run(self, resume: bool = False, until: int | None = None) -> None:
        """Train (``resume``: continue from the checkpoint) up to ``until`` iterations (default:
        the budget); validates, logs and checkpoints on the way, then :meth:`on_finish`."""
        if resume:
            has = dist_.broadcast_object(self.checkpoint_path is not None and self.checkpoint_path.is_file())
            if not has:
                where = repr(str(self.checkpoint_path)) if self.checkpoint_path is not None else "(no out_dir)"
                raise CheckpointError(f"resume: no checkpoint at {where}; run without resume to start")
            self.load_checkpoint()
        elif self.log_records == 0 and self.log_path is not None and self.log_path.exists():
            self.log_path.unlink()     # a fresh run: the log of an earlier one goes
        self.stop = stop = self.total if until is None else min(until, self.total)
        if self.validate_start and self.iteration == 0 and not self.history:
            self._validate_and_select(None)    # so selection keeps the start if training never beats it
        t0 = time.perf_counter()
        bar = None
        if self.progress and self.iteration < stop:
            from tqdm.auto import tqdm
            bar = tqdm(total=stop, initial=self.iteration, desc=self.progress_desc, dynamic_ncols=True, leave=False)
        try:
            while self.iteration < stop:
                it = self.iteration
                record = self.run_step(it)
                self.iteration = it + 1
                if self._due(self.val_every, stop):
                    self._validate_and_select(record)
                if record is not None:
                    self.log(record)
                self._count_skip(record, it)
                if bar is not None:
                    bar.update(1)
                    shown = {k: f"{record[k]:.3g}" for k in ("loss", "meta_loss") if record and k in record}
                    if self.validate is not None:
                        shown["best"] = f"{self.best_score:.3g}"
                    bar.set_postfix(shown)
                if self._due(self.checkpoint_every, stop):
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        if self.validate is None:    # the best state is the last one
            self.best_state, self.best_iteration = copy.deepcopy(self.model.state_dict()), self.iteration
        self.wall_seconds = time.perf_counter() - t0
        self.on_finish()

    def result(self) -> TrainResult:
        """The selection, history and counts of the run so far."""
        return TrainResult(self.best_state, self.best_score, self.best_iteration, self.iteration,
                           list(self.history), self.wall_seconds, self.skipped)
