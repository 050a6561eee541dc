"""Meta-trained update rules shipped inside the package.

Example:
    >>> import learnt
    >>> rule = learnt.pretrained.load("l2l-quadratic")
    >>> rule.kind
    'l2l-lstm'
"""
from __future__ import annotations

from learnt.errors import NotFoundError

from importlib import resources

from torch import nn

from learnt.learned.serialization import rule_from_payload
from learnt.io import safe_torch_load


# the recommended learned optimizer, by its real name (what ``RuleOptimizer(params)`` uses)
ALIASES = {"default": "adam-controller"}


def available() -> list[str]:
    """Names of the shipped pretrained rules (aliases included)."""
    root = resources.files(__name__)
    names = {p.name[:-3] for p in root.iterdir() if p.name.endswith(".pt")}
    return sorted(names | {a for a, real in ALIASES.items() if real in names})


def resolve(name: str) -> str:
    """The real name behind an alias (``"default"`` -> ``"adam-controller"``)."""
    return ALIASES.get(name, name)


def path(name: str):
    """Filesystem path of a shipped rule file."""
    names = available()
    if name not in names:
        raise NotFoundError(f"no pretrained rule named {name!r}; available: {names}")
    return resources.files(__name__) / f"{resolve(name)}.pt"


def load(name: str, device: str = "cpu") -> nn.Module:
    """Load a shipped learned update rule by name, ready to use (eval mode, on ``device``)."""
    p = path(name)
    payload = safe_torch_load(str(p))
    rule = rule_from_payload(payload, source=f"pretrained:{name}")
    return rule.to(device).eval()


def info(name: str) -> dict:
    """The metadata stored with a shipped rule (how it was trained, selection score)."""
    return dict(safe_torch_load(str(path(name)))["meta"])
