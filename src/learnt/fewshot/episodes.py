"""N-way K-shot episodes over a split of classes.

A :class:`ClassSplit` holds the images of disjoint classes (meta-train, meta-validation or
meta-test); an :class:`EpisodeSampler` draws episodes from one split: ``n_way`` classes,
``k_shot`` support and ``n_query`` query images per class, labels remapped to
``0 .. n_way-1`` in a random order per episode. Episode ``i`` of split ``s`` under run seed
``seed`` always comes from ``make_generator(seed, s, i)``, so every method sees the same
episodes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from learnt.seeding import make_generator


@dataclass(frozen=True)
class Episode:
    """One few-shot problem.

    Shapes: ``support_x`` (n_way * k_shot, C, H, W), ``support_y`` (n_way * k_shot,) int64,
    ``query_x`` (n_way * n_query, C, H, W), ``query_y`` (n_way * n_query,). For regression
    episodes (sinusoid) x is (K, 1) and y is (K, 1) float.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def to(self, device: str | torch.device) -> "Episode":
        return Episode(*(t.to(device) for t in (self.support_x, self.support_y, self.query_x, self.query_y)))


class ClassSplit:
    """Images of a set of classes, one uint8 or float tensor (M_c, C, H, W) per class.

    ``images`` may be one tensor (n_classes, M, C, H, W) when every class has M images.
    uint8 images are scaled to [0, 1] floats when an episode is drawn.

    Example:
        >>> s = ClassSplit(torch.zeros(3, 4, 1, 8, 8, dtype=torch.uint8), ["a", "b", "c"])
        >>> len(s), s.class_images(1).shape
        (3, torch.Size([4, 1, 8, 8]))
    """

    def __init__(self, images: Tensor | Sequence[Tensor], names: Sequence[str],
                 alphabets: Sequence[str] | None = None) -> None:
        if len(images) != len(names):
            raise ValueError(f"{len(images)} image groups but {len(names)} class names; expected one per class")
        if len(names) == 0:
            raise ValueError("a class split needs at least one class, got 0")
        self.images = images
        self.names = list(names)
        self.alphabets = list(alphabets) if alphabets is not None else [n.split("/")[0] for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def class_images(self, c: int) -> Tensor:
        """Images of class ``c``: (M_c, C, H, W) in their stored dtype."""
        return self.images[c]

    def count(self, c: int) -> int:
        return int(self.images[c].shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images[0].shape[-3:])  # type: ignore[return-value]


def _as_float(x: Tensor) -> Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


class EpisodeSampler:
    """Seeded N-way K-shot episodes from one :class:`ClassSplit`.

    Example:
        >>> s = ClassSplit(torch.rand(10, 20, 1, 28, 28), [str(i) for i in range(10)])
        >>> ep = EpisodeSampler(s, n_way=5, k_shot=1, n_query=15, split="test").episode(0)
        >>> ep.support_x.shape, ep.query_y.shape
        (torch.Size([5, 1, 28, 28]), torch.Size([75]))
    """

    def __init__(self, classes: ClassSplit, n_way: int = 5, k_shot: int = 1, n_query: int = 15, *,
                 split: str = "train", seed: int = 0) -> None:
        if n_way < 2 or k_shot < 1 or n_query < 1:
            raise ValueError(f"n_way={n_way}, k_shot={k_shot}, n_query={n_query}; expected n_way >= 2 and k_shot, n_query >= 1")
        if n_way > len(classes):
            raise ValueError(f"n_way={n_way} but the {split} split has only {len(classes)} classes")
        need = k_shot + n_query
        small = [classes.names[c] for c in range(len(classes)) if classes.count(c) < need]
        if small:
            raise ValueError(f"{len(small)} classes of the {split} split (e.g. {small[0]!r}) have fewer than "
                             f"k_shot + n_query = {need} images")
        self.classes, self.n_way, self.k_shot, self.n_query = classes, n_way, k_shot, n_query
        self.split, self.seed = split, seed

    def episode(self, index: int, *extra: int) -> Episode:
        """Episode ``index`` (deterministic in seed, split and index)."""
        g = make_generator(self.seed, self.split, index, 7, *extra)
        chosen = torch.randperm(len(self.classes), generator=g)[: self.n_way].tolist()
        sx, qx = [], []
        for c in chosen:
            imgs = self.classes.class_images(c)
            pick = torch.randperm(imgs.shape[0], generator=g)[: self.k_shot + self.n_query]
            sel = _as_float(imgs[pick])
            sx.append(sel[: self.k_shot])
            qx.append(sel[self.k_shot:])
        # labels follow the random class order, so label 0 is no particular class
        support_y = torch.arange(self.n_way).repeat_interleave(self.k_shot)
        query_y = torch.arange(self.n_way).repeat_interleave(self.n_query)
        return Episode(torch.cat(sx), support_y, torch.cat(qx), query_y)
