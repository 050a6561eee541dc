"""Explicit, split-aware randomness: every sampler in learnt takes a ``torch.Generator``.

Train, validation and test problems come from disjoint seed streams: the generator for
(seed, split, index) is derived with numpy's ``SeedSequence`` from all three, so the same
index in two splits never shares a stream, and a run with the same seed gives the same
numbers.
"""
from __future__ import annotations

import numpy as np
import torch

SPLITS = {"train": 0, "val": 1, "test": 2}


def derive_seed(seed: int, split: str, index: int = 0, *extra: int) -> int:
    """A 63-bit seed for the ``index``-th draw of ``split`` under the run seed ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    ss = np.random.SeedSequence([int(seed), SPLITS[split], int(index), *map(int, extra)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_generator(seed: int, split: str = "train", index: int = 0, *extra: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`derive_seed`.

    Example:
        >>> g = make_generator(0, "test", 3)
        >>> torch.rand(1, generator=g).item() == torch.rand(1, generator=make_generator(0, "test", 3)).item()
        True
    """
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, split, index, *extra))
    return g


def seed_everything(seed: int) -> None:
    """Seed torch's (CPU and CUDA), numpy's and Python's global generators from the run seed.

    Called at the entry point of every run (``learnt reproduce / evaluate / meta-train``), so
    that anything an experiment builds from the global generators (module initialisation
    above all) is the same in every process given the same ``--seed``; the explicit
    per-split generators of :func:`make_generator` stay the primary source of randomness."""
    import random

    s = derive_seed(seed, "train", 0, 7919)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)
