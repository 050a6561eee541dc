"""Save and load learned update rules as code-free files (``torch.load(weights_only=True)``).

A rule file is a model file (:data:`learnt.io.MODEL_FORMAT`, the one format of every shipped
model kind): ``{"format", "kind", "config", "state_dict", "meta"}``; the architecture is
rebuilt from ``kind`` and ``config`` and the weights are checked against it, so a file of
another architecture is a clear :class:`~learnt.errors.CheckpointError`, never a silent
partial load. Files of the older ``learnt.rule/1`` format load unchanged.
"""
from __future__ import annotations

import os
from typing import Any

from torch import nn

from learnt.errors import CheckpointError
from learnt.io import MODEL_FORMAT, atomic_torch_save, model_payload, parse_model, safe_torch_load

RULE_FORMAT = MODEL_FORMAT


def _registry() -> dict[str, type]:
    from learnt.learned import LEARNED_RULES
    return LEARNED_RULES


def rule_payload(rule: nn.Module, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict that :func:`save_rule` writes (CPU tensors)."""
    return model_payload(rule.kind, rule.config(), rule.state_dict(), meta)


def save_rule(rule: nn.Module, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> None:
    """Atomically write ``rule`` (architecture config + weights + free-form ``meta``)."""
    atomic_torch_save(rule_payload(rule, meta), path)


def rule_from_payload(payload: Any, source: str = "<payload>", expected_kind: str | None = None) -> nn.Module:
    """Rebuild a learned rule from a loaded payload, validating format and architecture."""
    registry = _registry()
    payload = parse_model(payload, source, registry if expected_kind is None else [expected_kind])
    kind = payload["kind"]
    if kind not in registry:
        raise CheckpointError(f"{source!r} holds a rule of unknown kind {kind!r}; expected one of {sorted(registry)}")
    try:
        cls = registry[kind]
        config = payload["config"]
        if hasattr(cls, "upgrade_config"):      # files written before the rule's config gained keys
            config = cls.upgrade_config(config)
        rule = cls(**config)
    except TypeError as e:
        raise CheckpointError(f"{source!r}: config {payload.get('config')!r} does not fit {kind!r} ({e})") from None
    check_state_dict(rule, payload["state_dict"], source)
    rule.load_state_dict(payload["state_dict"])
    return rule


def check_state_dict(rule: nn.Module, state_dict: dict, source: str) -> None:
    """Raise :class:`CheckpointError` if ``state_dict`` does not match ``rule``'s architecture."""
    own = rule.state_dict()
    missing = sorted(set(own) - set(state_dict))
    extra = sorted(set(state_dict) - set(own))
    if missing or extra:
        raise CheckpointError(f"{source!r} does not match the {type(rule).__name__} architecture: "
                              f"missing {missing[:5]}, unexpected {extra[:5]}")
    for k, v in own.items():
        if tuple(state_dict[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source!r} does not match the {type(rule).__name__} architecture: "
                                  f"{k} has shape {tuple(state_dict[k].shape)}, expected {tuple(v.shape)}")


def load_rule(path: str | os.PathLike, expected_kind: str | None = None, map_location: str = "cpu") -> nn.Module:
    """Load a rule saved by :func:`save_rule`; clear errors for missing, corrupt or foreign files."""
    return rule_from_payload(safe_torch_load(path, map_location), str(path), expected_kind)
