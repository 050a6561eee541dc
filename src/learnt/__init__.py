"""learnt: learning to learn in PyTorch.

Learned optimizers (Andrychowicz et al. 2016, Wichrowska et al. 2017) and the machinery
to meta-train, evaluate and use them; see the README for the full map.
"""
from __future__ import annotations

__version__ = "0.1.0"

from learnt import functional, learned, meta, optim, pretrained, tasks  # noqa: E402
from learnt.optim import RuleOptimizer  # noqa: E402

__all__ = ["functional", "learned", "meta", "optim", "pretrained", "tasks", "RuleOptimizer", "__version__"]
