"""The meta-training distribution of real networks for learned optimizers.

:class:`NetFamily` samples one :class:`~learnt.tasks.net_task.NetTask` at a time: an
architecture (MLPs with ReLU / GELU / tanh / sigmoid, 1-4 hidden layers of width 8-256, with
and without batch / layer norm; conv nets with batch norm, pooling or strides; GRU / LSTM
sequence models; a small transformer; autoencoders; linear and logistic regression), data
(digits with other class subsets, sizes and scales, random teacher networks, Gaussian
mixtures, synthetic sequence tasks, ill-conditioned least squares), augmentation (per-tensor
parameter rescaling, loss rescaling, input scaling, label noise), a batch size and a horizon.
Digits are drawn from their training split and the held-out role is played by their
validation split: the digits *test* split is never touched, it belongs to evaluation.

Example:
    >>> import torch
    >>> fam = NetFamily(kinds=("mlp",), n_problems=2, max_horizon=300)
    >>> task = fam.sample(torch.Generator().manual_seed(0))
    >>> task.n_problems, 100 <= task.horizon <= 300
    (2, True)
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from learnt.tasks import netdata, nets
from learnt.tasks.net_task import NetTask, log_uniform

KINDS = ("mlp", "mlp-norm", "conv", "rnn", "transformer", "autoencoder", "linear")
# how often each kind is drawn: sequence models and transformers cost several times more per
# step on a CPU, so they are rarer
WEIGHTS = {"mlp": 4.0, "mlp-norm": 3.0, "conv": 1.5, "rnn": 0.7, "transformer": 0.4, "autoencoder": 1.0, "linear": 1.0}


def _choice(g: torch.Generator, options):
    return options[int(torch.randint(0, len(options), (), generator=g))]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _width(g: torch.Generator, lo: int = 8, hi: int = 256) -> int:
    return int(round(log_uniform(g, lo, hi)))


def _tabular(g: torch.Generator, heldout: str) -> netdata.NetData:
    which = _choice(g, ("digits", "teacher", "teacher-regress", "mixture"))
    scale = log_uniform(g, 0.1, 10.0) if float(torch.rand((), generator=g)) < 0.3 else 1.0
    if which == "digits":
        return netdata.digits(g, n_classes=_randint(g, 2, 10), n_train=_randint(g, 100, 1078), scale=scale,
                              heldout=heldout, label_noise=_choice(g, (0.0, 0.0, 0.1, 0.3)))
    if which == "mixture":
        return netdata.gaussian_mixture(g, d=_randint(g, 2, 32), n_classes=_randint(g, 2, 10),
                                        separation=log_uniform(g, 0.5, 4.0), scale=scale)
    return netdata.teacher(g, d=_randint(g, 4, 48), n_out=_randint(g, 2, 10), width=_width(g, 8, 64),
                           kind="classify" if which == "teacher" else "regress",
                           noise=log_uniform(g, 0.01, 0.5), scale=scale)


def _sample(kind: str, g: torch.Generator, heldout: str) -> tuple[Callable, netdata.NetData, str]:
    act = _choice(g, ("relu", "gelu", "tanh", "sigmoid"))
    if kind in ("mlp", "mlp-norm"):
        data = _tabular(g, heldout)
        depth = _randint(g, 1, 4)
        widths = tuple(_width(g) for _ in range(depth))
        norm = "none" if kind == "mlp" else _choice(g, ("batch", "layer"))
        d_in = int(math.prod(data.in_shape))
        return (lambda: nets.MLP(d_in, widths, data.n_out, act, norm)), data, f"mlp{widths}-{act}-{norm}"
    if kind == "conv":
        data = netdata.digits(g, n_classes=_randint(g, 2, 10), image=True, n_train=_randint(g, 200, 1078),
                              heldout=heldout)
        chans = tuple(_width(g, 4, 32) for _ in range(_randint(g, 1, 3)))
        bn, pool, stride = bool(torch.rand((), generator=g) < 0.5), _choice(g, ("none", "max", "avg")), _choice(g, (1, 2))
        return (lambda: nets.ConvNet(1, chans, data.n_out, act, bn, pool, stride)), data, f"conv{chans}-{act}-bn{int(bn)}-{pool}-s{stride}"
    if kind == "rnn":
        task = _choice(g, ("majority", "adding", "first"))
        length = _randint(g, 4, 10)
        data = netdata.sequence(g, task=task, vocab=_randint(g, 3, 10), length=length)
        cell, hidden = _choice(g, ("gru", "lstm")), _width(g, 8, 48)
        vocab = 0 if task == "adding" else int(data.x_train.max()) + 1
        d_in = 2 if task == "adding" else _width(g, 4, 16)
        return (lambda: nets.RNNModel(vocab, d_in, hidden, data.n_out, cell)), data, f"{cell}{hidden}-{task}"
    if kind == "transformer":
        task = _choice(g, ("majority", "first"))
        length = _randint(g, 4, 10)
        data = netdata.sequence(g, task=task, vocab=_randint(g, 3, 10), length=length)
        d, layers = _choice(g, (16, 32)), _randint(g, 1, 2)
        vocab = int(data.x_train.max()) + 1
        return (lambda: nets.Transformer(vocab, length, d, 2, layers, data.n_out)), data, f"transformer{d}x{layers}-{task}"
    if kind == "autoencoder":
        data = netdata.digits(g, n_classes=10, target="reconstruct", n_train=_randint(g, 200, 1078), heldout=heldout)
        widths = tuple(sorted((_width(g, 4, 128) for _ in range(_randint(g, 1, 3))), reverse=True))
        return (lambda: nets.Autoencoder(64, widths, act)), data, f"ae{widths}-{act}"
    if kind == "linear":
        if float(torch.rand((), generator=g)) < 0.5:
            data = netdata.linear_regression(g, d=_randint(g, 4, 64), condition=log_uniform(g, 1, 1e3),
                                             noise=log_uniform(g, 0.01, 1.0))
            name = "linreg"
        else:
            data = _tabular(g, heldout)
            name = "logreg"
        d_in = int(math.prod(data.in_shape))
        return (lambda: nets.Linear(d_in, data.n_out)), data, name
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


class NetFamily:
    """Sample real-network optimizee tasks (see the module docstring).

    Args:
        kinds: architecture kinds to draw from (drawn with :data:`WEIGHTS`).
        n_problems: K, initialisations stepped together.
        min_horizon, max_horizon: the run length of each task is log-uniform in this range
            (``task.horizon``; trainers step a task for its horizon).
        batch_sizes: (low, high) of the log-uniform batch size.
        p_param_scale, p_loss_scale: probabilities of per-tensor parameter rescaling
            (10^U(-1, 1) per tensor) and of loss rescaling (10^U(-2, 2)).
        heldout_objective: tasks report held-out-batch losses as their values (see
            :class:`~learnt.tasks.net_task.NetTask`).
    """

    def __init__(self, kinds: tuple[str, ...] = KINDS, n_problems: int = 4, min_horizon: int = 100,
                 max_horizon: int = 1000, batch_sizes: tuple[int, int] = (8, 512), p_param_scale: float = 0.2,
                 p_loss_scale: float = 0.2, heldout_objective: bool = True) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"kinds={kinds!r}; expected a non-empty subset of {KINDS}")
        if not 1 <= min_horizon <= max_horizon:
            raise ValueError(f"horizons ({min_horizon}, {max_horizon}); expected 1 <= min <= max")
        if not 1 <= batch_sizes[0] <= batch_sizes[1]:
            raise ValueError(f"batch_sizes={batch_sizes}; expected 1 <= low <= high")
        self.kinds, self.n_problems = tuple(kinds), int(n_problems)
        self.min_horizon, self.max_horizon = int(min_horizon), int(max_horizon)
        self.batch_sizes = (int(batch_sizes[0]), int(batch_sizes[1]))
        self.p_param_scale, self.p_loss_scale = float(p_param_scale), float(p_loss_scale)
        self.heldout_objective = bool(heldout_objective)

    def sample(self, g: torch.Generator, n_problems: int | None = None, heldout: str = "val") -> NetTask:
        w = torch.tensor([WEIGHTS[k] for k in self.kinds])
        kind = self.kinds[int(torch.multinomial(w, 1, generator=g))]
        build, data, name = _sample(kind, g, heldout)
        module = build()
        scales = None
        if float(torch.rand((), generator=g)) < self.p_param_scale:
            scales = {k: 10 ** float(torch.empty(()).uniform_(-1, 1, generator=g)) for k, _ in module.named_parameters()}
        loss_scale = 10 ** float(torch.empty(()).uniform_(-2, 2, generator=g)) if float(torch.rand((), generator=g)) < self.p_loss_scale else 1.0
        batch = int(round(log_uniform(g, *self.batch_sizes)))
        task = NetTask(build, data, n_problems or self.n_problems, batch, loss_scale=loss_scale,
                       param_scales=scales, heldout_objective=self.heldout_objective, name=name)
        task.horizon = int(round(log_uniform(g, self.min_horizon, self.max_horizon)))
        return task
