"""Retrain the best architectures of a search from scratch and report them on the test split.

The search only ever saw validation accuracy of one short training per child; here each of
the top candidates is retrained with several fresh seeds (usually a longer budget), the
candidate with the best *mean retrained validation* accuracy is selected, and its test
accuracy (never used for any choice) is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnt.nas.backends import Backend, SerialBackend
from learnt.nas.child import ChildConfig, ChildJob, train_child
from learnt.nas.space import Architecture
from learnt.seeding import derive_seed


@dataclass(frozen=True)
class Retrained:
    """Per-seed retrained accuracies of one architecture (failed trainings are NaN)."""

    arch: Architecture
    val: tuple[float, ...]
    test: tuple[float, ...]
    params: int

    @property
    def mean_val(self) -> float:
        v = np.asarray(self.val)
        return float(np.mean(np.nan_to_num(v, nan=0.0)))

    @property
    def mean_test(self) -> float:
        return float(np.mean(np.nan_to_num(np.asarray(self.test), nan=0.0)))


def retrain(archs: list[Architecture], child: ChildConfig, seeds: int, seed: int, *,
            backend: Backend | None = None, dataset: str = "digits") -> list[Retrained]:
    """Train each of ``archs`` ``seeds`` times from scratch (seeds from the ``test`` stream of
    ``seed``), scoring validation and test accuracy; all trainings run as one backend batch."""
    backend = backend if backend is not None else SerialBackend()
    jobs = [ChildJob(a, derive_seed(seed, "test", i, s), child, ("val", "test"), dataset, key=(i, s))
            for i, a in enumerate(archs) for s in range(seeds)]
    outs = backend.map(train_child, jobs)
    res = []
    for i, a in enumerate(archs):
        mine = outs[i * seeds:(i + 1) * seeds]
        val = tuple(o.value["acc"]["val"] if o.ok else float("nan") for o in mine)
        test = tuple(o.value["acc"]["test"] if o.ok else float("nan") for o in mine)
        params = next((o.value["params"] for o in mine if o.ok), 0)
        res.append(Retrained(a, val, test, params))
    return res


def select(retrained: list[Retrained]) -> Retrained:
    """The candidate with the highest mean retrained validation accuracy (first on ties)."""
    if not retrained:
        raise ValueError("select needs at least one retrained architecture")
    return max(retrained, key=lambda r: r.mean_val)
