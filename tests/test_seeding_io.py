"""Split-aware seeding and atomic, code-free persistence."""
from __future__ import annotations

import os

import pytest
import torch

from learnt.errors import CheckpointError
from learnt.io import atomic_json_dump, atomic_torch_save, safe_torch_load
from learnt.seeding import derive_seed, make_generator


def test_derive_seed_is_deterministic_and_63_bit():
    assert derive_seed(0, "train", 3) == derive_seed(0, "train", 3)
    s = derive_seed(12345, "test", 7, 1)
    assert 0 <= s < 2 ** 63 and isinstance(s, int)


def test_derive_seed_differs_across_splits_indexes_seeds_and_extra():
    seeds = {derive_seed(seed, split, index)
             for seed in (0, 1) for split in ("train", "val", "test") for index in range(20)}
    assert len(seeds) == 2 * 3 * 20
    assert derive_seed(0, "train", 0) != derive_seed(0, "train", 0, 1)


def test_make_generator_streams():
    a = torch.rand(5, generator=make_generator(0, "val", 2))
    b = torch.rand(5, generator=make_generator(0, "val", 2))
    c = torch.rand(5, generator=make_generator(0, "test", 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("args, text", [((0, "dev"), "'dev'"), ((-1, "train"), "seed=-1"), ((0, "train", -2), "index=-2")])
def test_derive_seed_invalid_args(args, text):
    with pytest.raises(ValueError, match=text):
        derive_seed(*args)


def _leftovers(directory, name):
    return [f for f in os.listdir(directory) if f != name]


def test_atomic_torch_save_round_trip_and_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "x.pt"
    obj = {"w": torch.arange(4.0), "n": 3, "s": "hi"}
    atomic_torch_save(obj, path)
    atomic_torch_save({**obj, "n": 4}, path)  # overwrite
    loaded = safe_torch_load(path)
    assert torch.equal(loaded["w"], obj["w"]) and loaded["n"] == 4 and loaded["s"] == "hi"
    assert _leftovers(path.parent, "x.pt") == []


def test_failed_write_keeps_old_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "x.pt"
    atomic_torch_save({"v": torch.tensor([1.0])}, path)
    old = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"v": torch.tensor([2.0])}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert torch.equal(safe_torch_load(path)["v"], torch.tensor([1.0]))
    assert _leftovers(tmp_path, "x.pt") == []


def test_atomic_json_dump(tmp_path):
    import json
    path = tmp_path / "r.json"
    atomic_json_dump({"a": 1, "b": [1.5, float("inf")]}, path)
    assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, float("inf")]}
    assert _leftovers(tmp_path, "r.json") == []


class Payload:
    """A custom class: unpickling it would run code, so safe_torch_load must refuse it."""

    def __init__(self):
        self.x = torch.ones(2)


def test_safe_torch_load_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    assert isinstance(torch.load(path, weights_only=False)["obj"], Payload)  # the file itself is valid
    with pytest.raises(CheckpointError) as exc:
        safe_torch_load(path)
    assert str(path) in str(exc.value)


def test_safe_torch_load_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        safe_torch_load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        safe_torch_load(tmp_path)  # a directory is not a checkpoint
