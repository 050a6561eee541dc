"""Optuna's own sampler conformance suites (``optuna.testing.pytest_samplers``, Optuna >= 4)
run against LearnedSampler with an LSTM, a set proposer and an acquisition proposer."""
import optuna
import pytest
import torch
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase

from learnt.blackbox import AcquisitionProposer, LearnedSampler, LSTMProposer, SetProposer

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _proposer(kind: str):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if kind == "acq":
            return AcquisitionProposer(max_dim=4, hidden=16, n_global=16, n_local=16)
        return LSTMProposer(max_dim=4, hidden=16) if kind == "lstm" else SetProposer(max_dim=4, width=16, heads=2)


class TestConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture(params=["lstm", "set", "acq"])
    def sampler(self, request):
        return lambda: LearnedSampler(_proposer(request.param), seed=0)
