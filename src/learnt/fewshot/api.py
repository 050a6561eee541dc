"""Save, rebuild and ship few-shot methods; the small public API around the meta-learner.

Example:
    >>> import learnt.fewshot as fs
    >>> m = fs.load_pretrained(k_shot=1)                          # the shipped glyph meta-learner
    >>> clf = m.adapt(torch.rand(5, 1, 28, 28), torch.arange(5))  # one image per class
    >>> clf(torch.rand(3, 1, 28, 28)).shape
    torch.Size([3, 5])
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from learnt.errors import CheckpointError, NotFoundError
from learnt.fewshot.baselines import MAML, FineTune, NearestNeighbour, Pretrained, ProtoNet
from learnt.fewshot.learner import ConvLearner, SineMLP, run
from learnt.fewshot.metalearner import MetaLearnerLSTM
from learnt.fewshot.methods import Method
from learnt.io import read_model, save_model

METHOD_KIND = "fewshot-method"
LEARNERS = {"ConvLearner": ConvLearner, "SineMLP": SineMLP}
_ARGS = {"ravi-lstm": ("steps", "hidden_size", "preproc_p"), "maml": ("steps", "inner_lr", "first_order"),
         "finetune": ("steps", "lr", "mode"), "protonet": (), "pretrained": (), "nearest-neighbour": ()}
_KINDS = {"ravi-lstm": MetaLearnerLSTM, "maml": MAML, "finetune": FineTune, "protonet": ProtoNet,
          "pretrained": Pretrained, "nearest-neighbour": NearestNeighbour}


def build_method(config: dict) -> Method:
    """A fresh method from ``Method.config()`` (weights are loaded separately)."""
    kind = config.get("kind")
    if kind not in _KINDS or config.get("learner") not in LEARNERS:
        raise CheckpointError(f"unknown few-shot method {kind!r} / learner {config.get('learner')!r}; "
                              f"expected one of {sorted(_KINDS)} with a learner in {sorted(LEARNERS)}")
    learner = LEARNERS[config["learner"]](**config["learner_arch"])
    return _KINDS[kind](learner, config["task"], **{k: config[k] for k in _ARGS[kind]})


def save_method(method: Method, path: str | Path, meta: dict | None = None) -> None:
    """Write a method's config and weights as a model file (:data:`learnt.io.MODEL_FORMAT`,
    kind ``fewshot-method``; atomic, code-free)."""
    save_model(path, METHOD_KIND, method.config(), method.state_dict(), meta)


def load_method(path: str | Path, device: str = "cpu") -> Method:
    """Rebuild a method saved by :func:`save_method` (or a trainer's ``best.pt``)."""
    ck = read_model(path, [METHOD_KIND])           # also reads the older learnt.fewshot.method/1 files
    m = build_method(ck["config"])
    m.load_state_dict(ck["state_dict"])
    return m.to(device).eval()


class AdaptedClassifier:
    """A learner adapted to one support set; call it on query images (B, C, H, W) -> logits (B, n_way).

    Batch norm normalises with the statistics of the query batch (as in meta-training), so
    pass the queries together, not one at a time."""

    def __init__(self, method: MetaLearnerLSTM, theta: Tensor) -> None:
        self.method, self.theta = method, theta.detach()

    def __call__(self, query_x: Tensor) -> Tensor:
        with torch.no_grad():
            return run(self.method.learner, self.method.flat.unflatten(self.theta), query_x)

    def predict(self, query_x: Tensor) -> Tensor:
        """Predicted labels (B,)."""
        return self(query_x).argmax(-1)


class FewShotLearner:
    """A meta-trained :class:`MetaLearnerLSTM` with a user-facing ``adapt``."""

    def __init__(self, method: MetaLearnerLSTM) -> None:
        self.method = method.eval()
        arch = method.learner.arch
        self.n_way = arch["n_out"]
        self.image_shape = (arch["in_channels"], arch["image_size"], arch["image_size"])

    def adapt(self, support_x: Tensor, support_y: Tensor) -> AdaptedClassifier:
        """Run the learned inner loop on a support set. Shapes: (B, C, H, W) in [0, 1] (strokes 1,
        background 0 for glyphs) and labels (B,) in ``0 .. n_way-1``, every label present."""
        if tuple(support_x.shape[1:]) != self.image_shape:
            raise ValueError(f"support images of shape {tuple(support_x.shape[1:])}; this meta-learner expects "
                             f"{self.image_shape}")
        labels = sorted(set(support_y.tolist()))
        if labels != list(range(self.n_way)):
            raise ValueError(f"support labels {labels}; expected every label 0..{self.n_way - 1} of a {self.n_way}-way task")
        with torch.no_grad():
            theta, _ = self.method.adapt(support_x.float(), support_y.long())
        return AdaptedClassifier(self.method, theta)


def pretrained_names() -> list[str]:
    root = resources.files("learnt.fewshot") / "pretrained"
    return sorted(p.name[:-3] for p in root.iterdir() if p.name.endswith(".pt")) if root.is_dir() else []


def load_pretrained(k_shot: int = 5, name: str | None = None, device: str = "cpu") -> FewShotLearner:
    """The shipped glyph meta-learner (5-way; ``k_shot`` 1 or 5) ready to ``adapt``."""
    name = name or f"ravi-glyphs-{k_shot}shot"
    names = pretrained_names()
    if name not in names:
        raise NotFoundError(f"no shipped few-shot model {name!r}; available: {names}")
    with resources.as_file(resources.files("learnt.fewshot") / "pretrained" / f"{name}.pt") as p:
        m = load_method(p, device)
    if not isinstance(m, MetaLearnerLSTM):
        raise CheckpointError(f"shipped model {name!r} is a {m.kind}, expected a ravi-lstm meta-learner")
    return FewShotLearner(m)
