"""Atomic, code-free persistence: files are written to a temporary sibling and renamed, and
read back with ``torch.load(weights_only=True)`` so a checkpoint can never run code."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from learnt.errors import CheckpointError


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path`` then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    atomic_write_bytes(path, lambda f: torch.save(obj, f))


def atomic_json_dump(obj: Any, path: str | os.PathLike) -> None:
    """Write JSON atomically (indented, keys in insertion order)."""
    data = (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by :func:`atomic_torch_save` without unpickling code.

    Raises :class:`CheckpointError` naming the file when it is missing or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; expected a file written by learnt")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or not a learnt checkpoint "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else 'no detail'})"
        ) from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Records of a JSON-lines log; a torn or corrupt line (the crash a resume recovers from)
    is skipped, not fatal."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for ln in path.read_text().splitlines():
        if not ln.strip():
            continue
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one record as a line (one write call, flushed)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def rewrite_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """Atomically replace a JSON-lines log by ``records`` (e.g. on resume, the lines up to the checkpoint)."""
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    atomic_write_bytes(path, lambda f: f.write(data))


# --------------------------------------------------------------------------- model files
#: the one model-file format of every shipped model kind (learned rules, black-box
#: proposers, few-shot methods): ``{"format", "kind", "config", "state_dict", "meta"}``; the
#: architecture is rebuilt from ``kind`` and ``config`` by the kind's owner
MODEL_FORMAT = "learnt.model/1"
_LEGACY_RULE = "learnt.rule/1"              # rules and proposers before MODEL_FORMAT (same keys)
_LEGACY_METHOD = "learnt.fewshot.method/1"  # few-shot methods: method_config (JSON), state, meta on top


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def model_payload(kind: str, config: dict, state_dict: dict, meta: dict | None = None) -> dict:
    """The dict a model file holds (tensors on the CPU)."""
    return {"format": MODEL_FORMAT, "kind": str(kind), "config": config, "state_dict": _cpu(state_dict),
            "meta": dict(meta or {})}


def save_model(path: str | os.PathLike, kind: str, config: dict, state_dict: dict, meta: dict | None = None) -> None:
    """Atomically write a model file (see :data:`MODEL_FORMAT`)."""
    atomic_torch_save(model_payload(kind, config, state_dict, meta), path)


def parse_model(payload: Any, source: str = "<payload>", kinds=None) -> dict:
    """Validate a loaded model file and return it in :data:`MODEL_FORMAT` form (older formats
    are converted); ``kinds``: the kinds the caller can build (a clear
    :class:`CheckpointError` for any other, a foreign or a corrupt file)."""
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == _LEGACY_METHOD:
        try:
            payload = {"format": MODEL_FORMAT, "kind": "fewshot-method", "config": json.loads(payload["method_config"]),
                       "state_dict": payload["state"],
                       "meta": {k: v for k, v in payload.items() if k not in ("format", "method_config", "state")}}
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{source!r} is a damaged few-shot method file ({type(e).__name__})") from None
    elif fmt == _LEGACY_RULE:
        payload = {**payload, "format": MODEL_FORMAT}
    elif fmt != MODEL_FORMAT:
        raise CheckpointError(f"{source!r} is not a learnt model file (expected format {MODEL_FORMAT!r})")
    missing = [k for k in ("kind", "config", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{source!r} is a damaged learnt model file (missing {missing})")
    kinds = None if kinds is None else sorted(kinds)
    if kinds is not None and payload["kind"] not in kinds:
        raise CheckpointError(f"{source!r} holds a {payload['kind']!r} model; expected one of {kinds}")
    payload.setdefault("meta", {})
    return payload


def read_model(path: str | os.PathLike, kinds=None, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a model file (:func:`parse_model`)."""
    return parse_model(safe_torch_load(path, map_location), str(path), kinds)
