"""Functions for learned black-box optimizers (Chen et al. 2017): GP-prior training
functions and perturbed global-optimisation benchmarks, all K at a time on ``[0, 1]^d``.

Both kinds are called as ``fns(x)`` with x (K, d) -> (K,) or (K, T, d) -> (K, T), are
differentiable in x, and expose ``n_functions`` and ``dim``.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> gp = GPFunctionFamily(dim=2, n_functions=4).sample(g)
    >>> bench = BenchmarkFamily("branin", n_functions=4).sample(g)
    >>> gp(torch.rand(4, 2)).shape == bench(torch.rand(4, 2)).shape == (4,)
    True
"""
from learnt.blackbox.benchmarks import (
    BENCHMARKS, Benchmark, BenchmarkFamily, PerturbedBenchmark, get_benchmark, reflect_into_cube,
)
from learnt.blackbox.gp import KERNELS, GPFunctionFamily, GPFunctions, kernel_matrix

__all__ = [
    "BENCHMARKS", "Benchmark", "BenchmarkFamily", "PerturbedBenchmark", "get_benchmark", "reflect_into_cube",
    "KERNELS", "GPFunctionFamily", "GPFunctions", "kernel_matrix",
]
