"""torch.distributed for meta-training: process-group setup and the few collectives needed.

Under ``torchrun --nproc_per_node=N`` (or a multi-node torchrun rendezvous) the launcher
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them and joins the process group once. Without those
variables everything here degrades to a single process (rank 0 of 1), so library code can
call these helpers unconditionally.

Backend: gloo for CPU tensors and, when CUDA is present, nccl for CUDA tensors (the mixed
``"cpu:gloo,cuda:nccl"`` backend), so a CPU config still runs on a GPU machine.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs, results and progress."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r}; expected an integer") from None


def default_backend() -> str:
    """``"cpu:gloo,cuda:nccl"`` when CUDA (and nccl) are available, else ``"gloo"``."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the torchrun process group when launched by torchrun; otherwise a no-op.

    Idempotent: returns the current group's rank/size when a group is already initialised
    (e.g. by the caller). With CUDA, selects device ``cuda:LOCAL_RANK`` so that ``"cuda"``
    means this rank's own GPU.

    Example:
        >>> init_distributed().world_size   # plain python: one process
        1
    """
    if not dist.is_available():
        return DistInfo()
    if dist.is_initialized():
        return current()
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank}; expected 0 <= RANK < WORLD_SIZE={world}")
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
    backend = backend or default_backend()
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    log.info("joined process group: rank %d of %d (backend %s)", rank, world, backend)
    return DistInfo(rank, world, local)


def current() -> DistInfo:
    """This process's rank and world size (0 of 1 when no process group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return DistInfo()


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single process)."""
    return current().is_main


def all_reduce_sum_(t: Tensor) -> Tensor:
    """Sum ``t`` over all ranks, in place (identity in a single process). Any shape."""
    if current().world_size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (pickled; for small objects such as a
    checkpoint dict or a validation score). Identity in a single process."""
    if current().world_size <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if current().world_size > 1:
        dist.barrier()


def shards_of_rank(total: int, info: DistInfo) -> list[int]:
    """The task shards (0..total-1) this rank runs: ``rank, rank + W, rank + 2W, ...``.

    Raises ValueError when there are fewer shards than ranks (a rank would idle).

    Example:
        >>> shards_of_rank(5, DistInfo(rank=1, world_size=2))
        [1, 3]
    """
    if total < info.world_size:
        raise ValueError(f"task_shards={total} with {info.world_size} ranks; expected task_shards >= "
                         f"the number of ranks (or 0 for one shard per rank)")
    return list(range(info.rank, total, info.world_size))
