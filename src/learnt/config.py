"""Frozen-dataclass configs and type-checked ``--set a.b=value`` overrides."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

from learnt.errors import ConfigError


def _parse(text: str, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        for c in choices:
            if str(c) == text:
                return c
        raise ConfigError(f"{key}={text!r}: expected one of {list(choices)}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if text.lower() in ("none", "null") and type(None) in get_args(tp):
            return None
        errors = []
        for a in args:
            try:
                return _parse(text, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}={text!r}: expected {tp}")
    if origin is tuple:
        args = get_args(tp)
        inner = text.strip().strip("()[]")
        items = [s.strip() for s in inner.split(",") if s.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse(s, args[0], key) for s in items)
        if len(items) != len(args):
            raise ConfigError(f"{key}={text!r}: expected {len(args)} comma-separated values")
        return tuple(_parse(s, a, key) for s, a in zip(items, args))
    if tp is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}={text!r}: expected a boolean (true/false)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: expected an integer") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: expected a number") from None
    if tp is str:
        return text
    raise ConfigError(f"{key}: fields of type {tp} cannot be set from the command line")


def override(cfg: Any, assignments: list[str] | tuple[str, ...]) -> Any:
    """Return a copy of the frozen dataclass ``cfg`` with ``key.path=value`` assignments applied.

    Values are parsed according to the field's type hint; an unknown key or a value of the
    wrong type raises :class:`~learnt.errors.ConfigError` naming both.

    Example:
        >>> from learnt.meta import MetaTrainConfig
        >>> override(MetaTrainConfig(), ["meta_lr=0.003"]).meta_lr
        0.003
    """
    for a in assignments:
        if "=" not in a:
            raise ConfigError(f"override {a!r}: expected KEY=VALUE, e.g. train.meta_lr=0.003")
        key, value = a.split("=", 1)
        cfg = _set(cfg, key.strip().split("."), value.strip(), key.strip())
    return cfg


def _set(cfg: Any, path: list[str], value: str, full: str) -> Any:
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"unknown config key {full!r}")
    names = [f.name for f in dataclasses.fields(cfg)]
    head = path[0]
    if head not in names:
        raise ConfigError(f"unknown config key {full!r}; {type(cfg).__name__} has {names}")
    current = getattr(cfg, head)
    if len(path) > 1:
        new = _set(current, path[1:], value, full)
    else:
        if dataclasses.is_dataclass(current):
            raise ConfigError(f"config key {full!r} is a section; set one of its fields, e.g. {full}.{dataclasses.fields(current)[0].name}=...")
        new = _parse(value, get_type_hints(type(cfg))[head], full)
    try:
        return dataclasses.replace(cfg, **{head: new})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{full}={value!r}: {e}") from None


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(cfg)
