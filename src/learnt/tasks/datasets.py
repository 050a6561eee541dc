"""Image classification data for optimizees: embedded digits, MNIST from a user path.

Nothing here downloads. ``digits`` is scikit-learn's bundled set of 1,797 real 8x8
handwritten digits (the offline stand-in for MNIST); ``mnist`` reads the standard IDX files
(optionally gzipped) from a directory the user gives.
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class ImageData:
    """Images split three ways. ``x_*`` (n, C, H, W) float32 in [0, 1]; ``y_*`` (n,) int64."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    name: str

    def split(self, which: str) -> tuple[Tensor, Tensor]:
        if which not in ("train", "val", "test"):
            raise ValueError(f"image split {which!r}; expected 'train', 'val' or 'test'")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: str) -> "ImageData":
        return ImageData(*(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val,
                                                  self.x_test, self.y_test)), self.n_classes, self.name)


def _split_three(x: np.ndarray, y: np.ndarray, fractions=(0.6, 0.2), seed: int = 0):
    perm = np.random.RandomState(seed).permutation(len(x))
    n_tr = int(round(fractions[0] * len(x)))
    n_va = int(round(fractions[1] * len(x)))
    parts = np.split(perm, [n_tr, n_tr + n_va])
    return [(x[p], y[p]) for p in parts]


@lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    (xtr, ytr), (xva, yva), (xte, yte) = _split_three(x, d.target.astype(np.int64))
    for a in (xtr, ytr, xva, yva, xte, yte):
        a.setflags(write=False)
    return xtr, ytr, xva, yva, xte, yte


def load_digits() -> ImageData:
    """scikit-learn's 1,797 8x8 digits, pixels / 16, fixed 60/20/20 split of the images.

    Every call returns tensors of its own (the file is read once per process), so changing
    one in place cannot change what another caller sees."""
    return ImageData(*(torch.tensor(a) for a in _digits_arrays()), 10, "digits")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in dtypes:
        raise ValueError(f"{str(path)!r}: unknown IDX element type 0x{code:02x}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{str(path)!r}: IDX header is truncated ({len(data)} bytes for {ndim} dimensions)")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{str(path)!r}: header says {dims} but holds {arr.size} values (truncated?)")
    return arr.reshape(dims)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_mnist(path: str | os.PathLike, n_val: int = 10_000) -> ImageData:
    """MNIST from the four standard IDX files in ``path`` (never downloads).

    The last ``n_val`` training images form the validation split; pixels / 255.
    """
    root = Path(path).expanduser()
    expected = ", ".join(f"{v}[.gz]" for v in MNIST_FILES.values())
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST path {str(root)!r} is not a directory; expected a folder holding {expected}")
    found = {k: _find(root, v) for k, v in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, p in found.items() if p is None]
    if missing:
        raise FileNotFoundError(f"MNIST path {str(root)!r} lacks {missing}; expected {expected}")
    arrays = {k: read_idx(p) for k, p in found.items()}
    xtr = arrays["train_images"].astype(np.float32)[:, None] / 255.0
    ytr = arrays["train_labels"].astype(np.int64)
    xte = arrays["test_images"].astype(np.float32)[:, None] / 255.0
    yte = arrays["test_labels"].astype(np.int64)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(f"MNIST in {str(root)!r}: image and label counts differ")
    n_tr = len(xtr) - min(n_val, len(xtr) // 5)
    t = torch.from_numpy
    return ImageData(t(xtr[:n_tr].copy()), t(ytr[:n_tr].copy()), t(xtr[n_tr:].copy()), t(ytr[n_tr:].copy()),
                     t(xte), t(yte), 10, "mnist")


@lru_cache(maxsize=None)
def _glyph_arrays() -> tuple[Tensor, ...]:
    import torch.nn.functional as F

    from learnt.tasks.glyphs import GlyphConfig, load_rendered
    data = load_rendered(GlyphConfig(max_per_alphabet=4))               # 57 training-split classes, 16 alphabets
    keep = [i for i, s in enumerate(data["split"]) if s == "train"]
    imgs = data["images"][keep].float() / 255.0                          # (57, 20, 1, 28, 28)
    n_cls, n_dr = imgs.shape[:2]
    small = F.avg_pool2d(imgs.reshape(-1, 1, 28, 28), 2).reshape(n_cls, n_dr, 1, 14, 14)
    y = torch.arange(n_cls).repeat_interleave(n_dr).reshape(n_cls, n_dr)
    out = []
    for lo, hi in ((0, 10), (10, 15), (15, 20)):          # drawers: 10 train, 5 val, 5 test per class
        out += [small[:, lo:hi].reshape(-1, 1, 14, 14).contiguous(), y[:, lo:hi].reshape(-1).contiguous()]
    return tuple(out)


def load_glyph_images() -> ImageData:
    """57-way classification of rendered Hershey glyphs (the few-shot set's training
    alphabets, first 4 characters of each), 14x14, 10 / 5 / 5 drawers per class for train /
    val / test: few images per class, so architectures differ (unlike 8x8 digits, where
    nearly every network reaches ~95%). Rendered on first use and cached like the few-shot set."""
    arrays = [t.clone() for t in _glyph_arrays()]
    return ImageData(*arrays, int(arrays[1].max()) + 1, "glyphs")


def load_dataset(name: str, path: str = "") -> ImageData:
    """``digits`` (embedded), ``glyphs`` (rendered, embedded font) or ``mnist`` (from ``path``)."""
    if name == "digits":
        return load_digits()
    if name == "glyphs":
        return load_glyph_images()
    if name == "mnist":
        if not path:
            raise ValueError("dataset 'mnist' needs a path: --set task.data_path=/path/to/mnist")
        return load_mnist(path)
    raise ValueError(f"unknown dataset {name!r}; expected 'digits', 'glyphs' or 'mnist'")
