"""Learned black-box optimization (Chen et al. 2017): an LSTM proposer, a set (attention)
proposer over the whole history, or a learned acquisition function over candidate queries
(:class:`AcquisitionProposer`), meta-trained on GP-prior functions (:mod:`~learnt.blackbox.training`), usable as an Optuna sampler
(:class:`LearnedSampler`), with the paper's benchmark functions.

Functions (GP samples and perturbed benchmarks) are called as ``fns(x)`` with x (K, d) -> (K,) or (K, T, d) -> (K, T), are
differentiable in x, and expose ``n_functions`` and ``dim``.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> gp = GPFunctionFamily(dim=2, n_functions=4).sample(g)
    >>> bench = BenchmarkFamily("branin", n_functions=4).sample(g)
    >>> gp(torch.rand(4, 2)).shape == bench(torch.rand(4, 2)).shape == (4,)
    True
"""
from learnt.blackbox.acquisition import AcquisitionProposer, AcquisitionTrainConfig, train_acquisition
from learnt.blackbox.benchmarks import (
    BENCHMARKS, Benchmark, BenchmarkFamily, PerturbedBenchmark, get_benchmark, reflect_into_cube,
)
from learnt.blackbox.gp import KERNELS, GPFunctionFamily, GPFunctions, kernel_matrix
from learnt.blackbox.losses import LOSSES, expected_improvement, loss_ei, loss_oi, loss_sum
from learnt.blackbox.prior import SearchSpaceFunctions, SearchSpacePrior
from learnt.blackbox.pretrained import load_pretrained, pretrained_proposers
from learnt.blackbox.proposer import LSTMProposer, Rollout, load_proposer
from learnt.blackbox.sampler import LearnedSampler
from learnt.blackbox.set_proposer import SetProposer
from learnt.blackbox.training import BlackBoxTrainConfig, GPPrior, GPQueryFamily, QueryTask, train_proposer

__all__ = [
    "LearnedSampler", "LSTMProposer", "SetProposer", "AcquisitionProposer", "AcquisitionTrainConfig", "train_acquisition", "Rollout", "load_proposer", "load_pretrained", "pretrained_proposers",
    "LOSSES", "expected_improvement", "loss_ei", "loss_oi", "loss_sum",
    "BlackBoxTrainConfig", "GPPrior", "GPQueryFamily", "QueryTask", "train_proposer",
    "BENCHMARKS", "Benchmark", "BenchmarkFamily", "PerturbedBenchmark", "get_benchmark", "reflect_into_cube",
    "KERNELS", "GPFunctionFamily", "GPFunctions", "kernel_matrix", "SearchSpacePrior", "SearchSpaceFunctions",
]
