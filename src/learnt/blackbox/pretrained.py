"""Proposers meta-trained by ``learnt reproduce blackbox-gp`` and shipped with the package.

Example:
    >>> from learnt.blackbox import pretrained_proposers, load_pretrained
    >>> "oi" in pretrained_proposers()
    True
    >>> load_pretrained("oi").kind
    'bbo-lstm'
"""
from __future__ import annotations

from learnt.errors import NotFoundError

from importlib import resources

from learnt.blackbox.proposer import load_proposer

# the acquisition proposer: best of the shipped proposers on the GP prior's validation functions
# (tools/bbo_validation.py); among the LSTMs, EI was best on held-out GP functions and the benchmarks
DEFAULT = "acq"


def _root():
    return resources.files("learnt.blackbox") / "pretrained"


def pretrained_proposers() -> list[str]:
    """Names of the shipped proposers: one LSTM per meta-training loss (``sum``, ``ei``, ``oi``)
    and the learned acquisition proposer ``acq`` (the default)."""
    root = _root()
    if not root.is_dir():
        return []
    return sorted(p.name[:-3] for p in root.iterdir() if p.name.endswith(".pt"))


def load_pretrained(name: str | None = None, device: str = "cpu"):
    """A shipped proposer by name (default ``"acq"``), or a proposer file by path."""
    name = DEFAULT if name is None else name
    names = pretrained_proposers()
    if name not in names:
        if name.endswith(".pt"):
            return load_proposer(name).to(device)
        raise NotFoundError(f"no shipped proposer named {name!r}; available: {names} (or give a path to a .pt file)")
    return load_proposer(str(_root() / f"{name}.pt")).to(device)
