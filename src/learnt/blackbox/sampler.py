"""The learned black-box optimizer as an Optuna sampler.

:class:`LearnedSampler` is stateless in the sense that matters for Optuna: every
suggestion is a pure function of the study's history, computed by replaying the finished
trials (in trial-number order, ``o = 1``) and then the running ones (``o = 0``, the paper's
pending flag) through the proposer. It therefore works with any storage (in-memory, SQLite,
journal file, RDB) and any number of worker processes. A memo of the LSTM state after the
longest finished prefix already seen makes a suggestion cost O(new trials) instead of a
replay of the whole history; it is used only when that prefix is unchanged, so results are
identical to a full replay.

What is sampled by the proposer: the study's intersection search space (parameters every
finished trial has) when it has between 1 and ``proposer.max_dim`` non-fixed parameters,
mapped to the unit cube by :mod:`learnt.blackbox.space`. Everything else goes to the
``fallback`` sampler (default: Optuna's TPE): parameters outside the joint space
(conditional ones), search spaces wider than the proposer, and every trial once the study
has ``horizon`` trials (the horizon the proposer was meta-trained for, 100 by default).

Example:
    >>> import optuna
    >>> from learnt.blackbox import LearnedSampler
    >>> study = optuna.create_study(sampler=LearnedSampler())
    >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=20)
    >>> study.best_value < 0.5
    True
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from learnt.blackbox.proposer import LSTMProposer, QueryHistory
from learnt.blackbox.space import decode, encode

log = logging.getLogger(__name__)


@dataclass
class _Replay:
    """LSTM state after a committed prefix of finished trials (a memo of a pure function)."""

    key: list[tuple]                 # (number, coordinates, y) of the committed trials
    hc: tuple[torch.Tensor, torch.Tensor]
    hist: QueryHistory
    u: torch.Tensor                  # (1, max_dim): the proposal after the prefix


def _check_single_objective(study: Study) -> None:
    if len(study.directions) != 1:
        raise ValueError(f"LearnedSampler supports single-objective studies; this study has "
                         f"{len(study.directions)} objectives")


class LearnedSampler(BaseSampler):
    """An Optuna sampler driven by a meta-learned LSTM proposer (Chen et al. 2017).

    Args:
        proposer: an :class:`~learnt.blackbox.proposer.LSTMProposer`, the name of a shipped
            proposer (see :func:`learnt.blackbox.pretrained_proposers`) or a path to a saved one;
            None uses the default shipped proposer.
        horizon: number of trials the proposer handles; later trials go to ``fallback``.
            Default: the horizon the proposer was meta-trained for (100).
        fallback: sampler for everything the proposer does not handle (see the module
            docstring). Default: ``TPESampler(seed=seed)``.
        seed: seed of the default fallback sampler. (The proposer itself is deterministic.)
    """

    def __init__(self, proposer: LSTMProposer | str | None = None, *, horizon: int | None = None,
                 fallback: BaseSampler | None = None, seed: int | None = None) -> None:
        if proposer is None or isinstance(proposer, str):
            proposer = _load(proposer)
        if not isinstance(proposer, LSTMProposer):
            raise TypeError(f"proposer={proposer!r}; expected an LSTMProposer, a shipped name or a path")
        self.proposer = proposer.cpu().eval()
        meta_h = getattr(proposer, "meta", {}).get("horizon", 100)
        self.horizon = int(meta_h if horizon is None else horizon)
        if self.horizon < 1:
            raise ValueError(f"horizon={horizon!r}; expected a positive number of trials")
        self.fallback = fallback if fallback is not None else TPESampler(seed=seed)
        self._search_space = IntersectionSearchSpace()
        self._memo: dict[tuple, _Replay] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Optuna API
    def reseed_rng(self) -> None:
        self.fallback.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _check_single_objective(study)
        if self._beyond_horizon(study):
            return self.fallback.infer_relative_search_space(study, trial)
        space = {n: d for n, d in self._search_space.calculate(study).items() if not d.single()}
        if len(space) > self.proposer.max_dim:
            log.warning("search space has %d parameters, the proposer serves at most %d: using the fallback sampler",
                        len(space), self.proposer.max_dim)
            return {}
        return space

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        _check_single_objective(study)
        if not search_space:
            return {}
        if self._beyond_horizon(study):
            return self.fallback.sample_relative(study, trial, search_space)
        names = sorted(search_space)
        dists = [search_space[n] for n in names]
        done, pending = self._history(study, trial, names, dists)
        u = self.propose(done, pending, len(names), key=(study._study_id, id(study._storage), tuple(names),
                                                         tuple(repr(d) for d in dists)))
        return {n: decode(d, float(v)) for n, d, v in zip(names, dists, u)}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        _check_single_objective(study)
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.fallback.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self.fallback.after_trial(study, trial, state, values)

    # ------------------------------------------------------------------ replay
    def _beyond_horizon(self, study: Study) -> bool:
        n = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING), use_cache=True))
        return n > self.horizon  # the current trial is one of the running ones

    @staticmethod
    def _history(study: Study, trial: FrozenTrial, names: list[str], dists: list[BaseDistribution]):
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        done, pending = [], []
        for t in study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING), use_cache=True):
            if t.number == trial.number or not all(n in t.params for n in names):
                continue
            u = tuple(encode(d, t.params[n]) for n, d in zip(names, dists))
            if t.state == TrialState.COMPLETE:
                if t.value is not None and math.isfinite(t.value):
                    done.append((t.number, u, sign * float(t.value)))
            else:
                pending.append(u)
        done.sort(key=lambda e: e[0])
        return done, pending

    @torch.no_grad()
    def propose(self, done: list[tuple], pending: list[tuple], dim: int, key: tuple = ()) -> torch.Tensor:
        """The next query (d,) in [0, 1]^d after finished trials ``done`` = [(number, coords, y)]
        (in order) and pending coordinates ``pending``: a replay through the proposer."""
        m = self.proposer
        with self._lock:
            memo = self._memo.get(key)
        if memo is None or memo.key != done[:len(memo.key)] or len(memo.key) > len(done):
            memo = self._start(dim)
        mask = m.mask(dim, 1, memo.u)
        hc, hist, u = memo.hc, memo.hist.copy(), memo.u
        i = len(memo.key)
        for _, coords, y in done[i:]:
            x = _pad(coords, m.max_dim)
            ys = hist.commit(x, torch.tensor([y], dtype=torch.float64)).float()
            i += 1
            u, hc = m.step(m.encode(x, ys, True, mask, hist, i), hc, hist, i)
        if len(done) > len(memo.key):
            with self._lock:
                self._memo[key] = _Replay(list(done), hc, hist, u)
        zero = torch.zeros(1)
        for coords in pending:
            i += 1
            u, hc = m.step(m.encode(_pad(coords, m.max_dim), zero, False, mask, hist, i), hc, hist, i)
        return u[0, :dim]

    def _start(self, dim: int) -> _Replay:
        m = self.proposer
        hc = m.initial_state(1)
        mask = m.mask(dim, 1, hc[0])
        hist = m.new_history(1)
        u, hc = m.step(m.encode(None, torch.zeros(1), True, mask, hist, 0), hc, hist, 0)
        return _Replay([], hc, hist, u)


def _pad(coords: tuple, width: int) -> torch.Tensor:
    x = torch.zeros(1, width)
    x[0, :len(coords)] = torch.tensor(coords, dtype=torch.float32)
    return x


def _load(name: str | None) -> LSTMProposer:
    from learnt.blackbox.pretrained import load_pretrained
    return load_pretrained(name)
