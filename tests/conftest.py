"""Shared test setup: one CPU thread (fast, reproducible on 2-core CI) and tiny helpers."""
from __future__ import annotations

import torch

torch.set_num_threads(1)


def quadratic_task(k: int = 3, d: int = 4, seed: int = 0, dtype=torch.float64):
    """A small QuadraticTask with Gaussian W, y drawn from a fixed seed."""
    from learnt.tasks import QuadraticTask

    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, d, d, generator=g, dtype=dtype)
    y = torch.randn(k, d, generator=g, dtype=dtype)
    return QuadraticTask(W, y, init_std=1.0)


def clone_tree(tree):
    """Deep copy of a (nested) dict of tensors, for no-mutation checks."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().clone()
    return {k: clone_tree(v) for k, v in tree.items()}


def assert_tree_equal(a, b) -> None:
    """Exact equality of two (nested) dicts of tensors, same keys, dtypes and values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        return
    assert set(a) == set(b), (sorted(a), sorted(b))
    for k in a:
        assert_tree_equal(a[k], b[k])
