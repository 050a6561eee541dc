"""Where children train: in this process, in local worker processes, or on a Ray cluster.

A backend maps a picklable function over jobs and returns one :class:`Outcome` per job, in
order. A job that raises, or whose worker process dies, is retried (``retries`` times, once
by default); if it still fails its outcome has ``ok=False`` and the error text, and the
search goes on (the child is scored as failed). Workers run with one torch thread each.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import re
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from learnt.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one job: its value (when ``ok``), the last error, the attempts made."""

    ok: bool
    value: Any = None
    error: str = ""
    attempts: int = 1
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _describe(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # Ray wraps the child's exception (RayTaskError.cause)
    if isinstance(cause, BaseException) and cause is not e:
        return f"{type(e).__name__}({_describe(cause)})"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    text = text.splitlines()[0][:300] if text else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class Backend:
    """Interface: ``map(fn, jobs) -> list[Outcome]``; ``close()`` releases workers."""

    workers: int = 1

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialBackend(Backend):
    """Run jobs one after another in this process (exceptions are caught and retried)."""

    def __init__(self, retries: int = 1) -> None:
        self.retries = retries

    def map(self, fn, jobs):
        outs = []
        for job in jobs:
            errors, t0 = [], time.perf_counter()
            for attempt in range(1, self.retries + 2):
                try:
                    outs.append(Outcome(True, fn(job), attempts=attempt, seconds=time.perf_counter() - t0,
                                        errors=errors))
                    break
                except Exception as e:  # a failed child must not end the search
                    errors.append(_describe(e))
                    log.warning("child %d failed (attempt %d): %s", len(outs), attempt, errors[-1])
            else:
                outs.append(Outcome(False, error=errors[-1], attempts=self.retries + 1,
                                    seconds=time.perf_counter() - t0, errors=errors))
        return outs


class LocalProcessBackend(Backend):
    """A pool of ``workers`` spawned processes, one torch thread each.

    First every job is submitted at once; jobs that raised or were lost with a dead worker
    are then retried one at a time (so a job that kills its process can be told apart from
    the jobs that only shared the pool with it), recreating the pool when it broke.
    """

    def __init__(self, workers: int = 2, retries: int = 1, threads_per_worker: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"local backend workers={workers}; expected >= 1")
        self.workers, self.retries, self.threads = workers, retries, threads_per_worker
        self._pool: cf.ProcessPoolExecutor | None = None

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.threads,))
        return self._pool

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def warm_up(self) -> None:
        """Start the worker processes now (spawn + imports), so timings exclude start-up."""
        pool = self._get_pool()
        list(pool.map(_init_worker, [self.threads] * self.workers))

    def map(self, fn, jobs):
        t0 = time.perf_counter()
        errors: list[list[str]] = [[] for _ in jobs]
        values: dict[int, Any] = {}
        try:
            pool = self._get_pool()
            futures = {pool.submit(fn, job): k for k, job in enumerate(jobs)}
            for fut in cf.as_completed(futures):
                k = futures[fut]
                try:
                    values[k] = fut.result()
                except Exception as e:
                    errors[k].append(_describe(e))
        except BrokenProcessPool as e:  # raised by submit when a worker already died
            for k in range(len(jobs)):
                if k not in values and not errors[k]:
                    errors[k].append(_describe(e))
        pending = [k for k in range(len(jobs)) if k not in values]
        if pending:
            self._drop_pool()
        for k in pending:
            for _ in range(self.retries):
                try:
                    values[k] = self._get_pool().submit(fn, jobs[k]).result()
                    break
                except BrokenProcessPool as e:
                    errors[k].append(_describe(e) or "worker process died")
                    self._drop_pool()
                except Exception as e:
                    errors[k].append(_describe(e))
        seconds = time.perf_counter() - t0
        outs = []
        for k in range(len(jobs)):
            if k in values:
                outs.append(Outcome(True, values[k], attempts=len(errors[k]) + 1, seconds=seconds, errors=errors[k]))
            else:
                log.warning("child %d failed after %d attempts: %s", k, len(errors[k]), errors[k][-1])
                outs.append(Outcome(False, error=errors[k][-1], attempts=len(errors[k]), seconds=seconds,
                                    errors=errors[k]))
        return outs

    def close(self) -> None:
        self._drop_pool()


class RayBackend(Backend):
    """Children as Ray tasks (``pip install 'learnt[ray]'``), on a local or remote cluster.

    ``address=None`` starts (or joins) a local Ray instance; ``"auto"`` or ``"ray://..."``
    joins a cluster. Ray re-runs a task whose worker died or that raised, ``retries`` times.
    """

    def __init__(self, workers: int = 2, retries: int = 1, address: str | None = None,
                 threads_per_worker: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("backend 'ray' needs the optional extra: pip install 'learnt[ray]' "
                              "(or pip install ray); use backend='local' otherwise") from None
        self.ray = ray
        self.workers, self.retries, self.threads = workers, retries, threads_per_worker
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"num_cpus": workers}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
            self._owns = True
        else:
            self._owns = False

    def map(self, fn, jobs):
        ray = self.ray
        t0 = time.perf_counter()
        task = ray.remote(num_cpus=1, max_retries=self.retries, retry_exceptions=True)(_ray_call)
        refs = [task.remote(fn, job, self.threads) for job in jobs]
        outs = []
        for ref in refs:
            try:
                outs.append(Outcome(True, ray.get(ref), seconds=time.perf_counter() - t0))
            except Exception as e:  # RayTaskError / WorkerCrashedError after the retries
                outs.append(Outcome(False, error=_describe(e), attempts=self.retries + 1,
                                    seconds=time.perf_counter() - t0, errors=[_describe(e)]))
        return outs

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()


def _ray_call(fn, job, threads: int):
    _init_worker(threads)
    return fn(job)


def make_backend(name: str, workers: int = 2, retries: int = 1, address: str | None = None) -> Backend:
    """``serial`` (in process), ``local`` (spawned worker processes) or ``ray``."""
    if retries < 0:
        raise ConfigError(f"retries={retries}; expected >= 0")
    if name == "serial":
        return SerialBackend(retries)
    if name == "local":
        return LocalProcessBackend(workers, retries)
    if name == "ray":
        return RayBackend(workers, retries, address)
    raise ConfigError(f"backend {name!r}; expected 'serial', 'local' or 'ray'")
