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
