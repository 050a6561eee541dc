"""What an experiment is, and the one runner that turns it into ``results.json`` + plots."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from learnt.config import to_dict
from learnt.experiments.results import code_fingerprint, environment, format_table, write_results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """Where and how a run happens (not part of the scientific config)."""

    out: Path
    seed: int = 0
    device: str = "cpu"
    budget: str = "full"
    progress: bool = True
    resume: bool = False


@dataclass(frozen=True)
class Experiment:
    """A named reproduction.

    ``config(budget)`` gives the frozen config for ``"quick"`` or ``"full"``;
    ``meta_train(cfg, ctx)`` returns the trained learned rule(s) (or None);
    ``evaluate(cfg, ctx, trained)`` returns ``(rows, curves, extra)``;
    ``plot(results, out)`` draws PNGs beside ``results.json``; ``load_trained(cfg, path)``
    and ``load_pretrained(cfg)`` give what ``meta_train`` would (for ``learnt evaluate``).
    """

    name: str
    description: str
    config: Callable[[str], Any]
    meta_train: Callable[[Any, RunContext], Any]
    evaluate: Callable[[Any, RunContext, Any], tuple[list, dict, dict]]
    plot: Callable[[dict, Path], list[Path]]
    load_trained: Callable[[Any, str], Any] | None = None
    load_pretrained: Callable[[Any], Any] | None = None   # default: learnt.pretrained.load(name)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; validates explicit choices."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device!r}: CUDA is not available on this machine; use --device cpu")
    return device


def with_device(cfg: Any, device: str) -> Any:
    """Set a top-level ``device`` field of a config when it has one."""
    if dataclasses.is_dataclass(cfg) and "device" in {f.name for f in dataclasses.fields(cfg)}:
        return dataclasses.replace(cfg, device=device)
    return cfg


def run_experiment(exp: Experiment, cfg: Any, ctx: RunContext, trained: Any = None) -> dict[str, Any]:
    """Meta-train (unless ``trained`` is given), evaluate, write results.json and plots.

    Under ``torchrun`` every rank meta-trains (the trainer all-reduces meta-gradients);
    only rank 0 evaluates and writes; the other ranks return ``{"experiment", "rank",
    "rows": [], "curves": {}, "wall_seconds"}``.
    """
    from learnt.meta.distributed import init_distributed

    from learnt.seeding import seed_everything

    seed_everything(ctx.seed)
    info = init_distributed()
    t0 = time.perf_counter()
    if info.is_main:
        ctx.out.mkdir(parents=True, exist_ok=True)
    if trained is None:
        trained = exp.meta_train(cfg, ctx)
    if not info.is_main:
        return {"experiment": exp.name, "rank": info.rank, "rows": [], "curves": {},
                "wall_seconds": round(time.perf_counter() - t0, 2)}
    rows, curves, extra = exp.evaluate(cfg, ctx, trained)
    results = {"experiment": exp.name, "budget": ctx.budget, "seed": ctx.seed, "config": to_dict(cfg),
               "environment": environment(ctx.device), "wall_seconds": round(time.perf_counter() - t0, 2),
               "code": code_fingerprint(sorted({exp.meta_train.__module__, exp.evaluate.__module__,
                                                exp.config.__module__})),
               "rows": rows, "curves": curves, **extra}
    if info.world_size > 1:
        results["environment"]["world_size"] = info.world_size
    path = write_results(ctx.out, results)
    plots = exp.plot(results, ctx.out)
    log.info("wrote %s and %s", path, ", ".join(str(p) for p in plots))
    log.debug("\n%s", format_table(rows))
    return results
