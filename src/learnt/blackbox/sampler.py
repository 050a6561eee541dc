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
has ``horizon`` trials (the horizon the proposer was meta-trained for: 100 for the LSTMs,
200 for the acquisition proposer, the default).

The default proposer (``"acq"``, :class:`~learnt.blackbox.acquisition.AcquisitionProposer`)
scores candidate queries by a learned expected improvement over kernel features of the
whole history; a suggestion is a function of the history and ``seed``, with no replay.

Example:
    >>> import optuna
    >>> from learnt.blackbox import LearnedSampler
    >>> study = optuna.create_study(sampler=LearnedSampler())
    >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=20)
    >>> study.best_value < 0.5
    True
"""
from __future__ import annotations

import copy
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from learnt.blackbox.acquisition import AcquisitionProposer
from learnt.blackbox.proposer import DESIGN_LEN, Y_CLIP, LSTMProposer
from learnt.blackbox.set_proposer import NumpySetProposer, SetProposer
from learnt.blackbox.space import decode, encode

log = logging.getLogger(__name__)


MAX_CACHED_STUDIES = 32      # replay caches kept (least recently used dropped first)
MAX_CACHED_TRIALS = 10_000   # encoded trials kept per study


def _lru_get(cache: OrderedDict, key, make, cap: int):
    """``cache[key]`` (created by ``make()`` if absent), marked most recently used; at most ``cap`` keys."""
    if key not in cache:
        cache[key] = make()
        while len(cache) > cap:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


@dataclass
class _Replay:
    """Proposer state after a committed prefix of finished trials (a memo of a pure function)."""

    key: list[tuple]                 # (number, coordinates, y) of the committed trials
    state: "_State"


def _check_single_objective(study: Study) -> None:
    if len(study.directions) != 1:
        raise ValueError(f"LearnedSampler supports single-objective studies; this study has "
                         f"{len(study.directions)} objectives")


class LearnedSampler(BaseSampler):
    """An Optuna sampler driven by a learned proposer: the acquisition proposer (default), or a
    meta-learned LSTM (Chen et al. 2017) or set proposer.

    Args:
        proposer: an :class:`~learnt.blackbox.proposer.LSTMProposer` or a
            :class:`~learnt.blackbox.set_proposer.SetProposer`, an
            :class:`~learnt.blackbox.acquisition.AcquisitionProposer`, the name of a shipped proposer
            (see :func:`learnt.blackbox.pretrained_proposers`) or a path to a saved one; None
            uses the default shipped proposer. An LSTM replays the history (memoised); a set
            proposer reads the whole history at every suggestion.
        horizon: number of trials the proposer handles; later trials go to ``fallback``.
            Default: the proposer's ``meta["horizon"]`` (100 for the LSTMs, 200 for ``"acq"``).
        fallback: sampler for everything the proposer does not handle (see the module
            docstring). Default: ``TPESampler(seed=seed)``.
        seed: seed of the default fallback sampler and of an acquisition proposer's candidates
            (a suggestion is a function of the history and the seed; LSTM and set proposers
            are deterministic).
    """

    def __init__(self, proposer: LSTMProposer | SetProposer | AcquisitionProposer | str | None = None, *,
                 horizon: int | None = None, fallback: BaseSampler | None = None, seed: int | None = None) -> None:
        if proposer is None or isinstance(proposer, str):
            proposer = _load(proposer)
        if not isinstance(proposer, (LSTMProposer, SetProposer, AcquisitionProposer)):
            raise TypeError(f"proposer={proposer!r}; expected an LSTMProposer, a SetProposer, an AcquisitionProposer, "
                            f"a shipped name or a path")
        self._seed = 0 if seed is None else int(seed)
        # a copy: the caller's module keeps its device and train/eval mode
        self.proposer = copy.deepcopy(proposer).cpu().eval()
        meta_h = getattr(proposer, "meta", {}).get("horizon", 200 if isinstance(proposer, AcquisitionProposer) else 100)
        self.horizon = int(meta_h if horizon is None else horizon)
        if self.horizon < 1:
            raise ValueError(f"horizon={horizon!r}; expected a positive number of trials")
        self.fallback = fallback if fallback is not None else TPESampler(seed=seed)
        self._search_space = IntersectionSearchSpace()
        # replay caches, bounded (least recently used studies are dropped). Their keys may
        # collide (a dead in-memory storage's id() is recycled), so every entry is validated
        # against the trial it stands for: a collision costs a re-encoding, never a wrong history
        self._memo: OrderedDict[tuple, _Replay] = OrderedDict()
        self._encoded: OrderedDict[tuple, dict[int, tuple]] = OrderedDict()
        self._np: _NumpyProposer | NumpySetProposer | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Optuna API
    def reseed_rng(self) -> None:
        self.fallback.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _check_single_objective(study)
        if len(_live_trials(study)) > self.horizon:  # the current trial is one of the running ones
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
        trials = _live_trials(study)
        if len(trials) > self.horizon:
            return self.fallback.sample_relative(study, trial, search_space)
        names = sorted(search_space)
        dists = [search_space[n] for n in names]
        key = (study._study_id, id(study._storage), tuple(names), tuple(repr(d) for d in dists))
        done, pending = self._history(study, trials, trial, names, dists, key)
        u = self.propose(done, pending, len(names), key=key)
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
    def _history(self, study: Study, trials: list[FrozenTrial], trial: FrozenTrial, names: list[str],
                 dists: list[BaseDistribution], key: tuple):
        """Finished trials [(number, coords, y)] in number order and pending coords, encoded.

        Finished trials never change in Optuna, so their encodings are cached by number."""
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        with self._lock:
            cache = _lru_get(self._encoded, key, dict, MAX_CACHED_STUDIES)
        done, pending = [], []
        for t in trials:
            if t.number == trial.number:
                continue
            if t.state == TrialState.COMPLETE:
                got = cache.get(t.number)
                if got is not None and got[0] is t:    # the storage's own (finished, unchanging) object
                    hit = got[2]
                else:
                    src = (t.value, tuple(t.params.get(n) for n in names), sign)
                    if got is not None and got[1] == src:
                        hit = got[2]
                    elif not all(n in t.params for n in names) or t.value is None or not math.isfinite(t.value):
                        hit = ()
                    else:
                        hit = (t.number, tuple(encode(d, t.params[n]) for n, d in zip(names, dists)),
                               sign * float(t.value))
                    if len(cache) >= MAX_CACHED_TRIALS:
                        cache.clear()
                    cache[t.number] = (t, src, hit)
                if hit:
                    done.append(hit)
            elif all(n in t.params for n in names):
                pending.append(tuple(encode(d, t.params[n]) for n, d in zip(names, dists)))
        done.sort(key=lambda e: e[0])
        return done, pending

    def propose(self, done: list[tuple], pending: list[tuple], dim: int, key: tuple = ()) -> torch.Tensor:
        """The next query (d,) in [0, 1]^d after finished trials ``done`` = [(number, coords, y)]
        (in order) and pending coordinates ``pending``: a replay through the proposer (an LSTM),
        or one pass over the whole history (a set proposer)."""
        if isinstance(self.proposer, AcquisitionProposer):
            md = self.proposer.max_dim
            xh = np.zeros((1, len(done), md))
            if done:
                xh[0, :, :dim] = [e[1] for e in done]
            xp = np.zeros((1, len(pending), md))
            if pending:
                xp[0, :, :dim] = pending
            yh = np.array([[e[2] for e in done]], dtype=np.float64).reshape(1, len(done))
            mask = (np.arange(md) < dim).astype(np.float64)[None]
            # the candidates' random numbers: a function of the history's size and the seed only
            rng = np.random.default_rng([self._seed, len(done), len(pending)])
            return torch.from_numpy(self.proposer.propose_np(xh, yh, xp, mask, rng)[0, :dim].copy())
        fast = self._fast()
        if isinstance(fast, NumpySetProposer):
            md = self.proposer.max_dim
            rows = [e[1] for e in done] + list(pending)
            x = np.zeros((len(rows), md))
            for i, coords in enumerate(rows):
                x[i, :len(coords)] = coords
            y = np.array([e[2] for e in done] + [0.0] * len(pending), dtype=np.float64)
            finished = np.arange(len(rows)) < len(done)
            return torch.from_numpy(fast.propose(x, y, finished, dim)[:dim].copy())
        with self._lock:
            memo = self._memo.get(key)
            if memo is not None:
                self._memo.move_to_end(key)
        ids = [(e[0], e[1], e[2]) for e in done]    # number, coordinates, value: the whole history
        if memo is None or len(memo.key) > len(ids) or memo.key != ids[:len(memo.key)]:
            memo = _Replay([], fast.start(dim))
        state = memo.state
        for _, coords, y in done[len(memo.key):]:
            state = fast.advance(state, coords, y, True)
        if len(done) > len(memo.key):
            with self._lock:
                self._memo[key] = _Replay(ids, state)
                self._memo.move_to_end(key)
                while len(self._memo) > MAX_CACHED_STUDIES:
                    self._memo.popitem(last=False)
        for coords in pending:
            state = fast.advance(state, coords, 0.0, False)
        return torch.from_numpy(state.u[:dim].copy())

    def _fast(self) -> "_NumpyProposer | NumpySetProposer":
        if self._np is None:
            m = self.proposer
            self._np = NumpySetProposer(m) if isinstance(m, SetProposer) else _NumpyProposer(m)
        return self._np


@dataclass(frozen=True)
class _State:
    """Everything the proposer knows after some inputs (immutable, so memos can share it)."""

    h: np.ndarray        # (layers, hidden)
    c: np.ndarray
    u: np.ndarray        # (max_dim,) the current proposal
    index: int           # queries fed so far
    dim: int
    n: int
    s1: float
    s2: float
    x_best: np.ndarray   # (max_dim,)
    y_best: float


class _NumpyProposer:
    """The proposer's forward pass in float64 numpy, one run at a time: a suggestion costs
    microseconds instead of the per-op overhead of eager torch. Checked against
    :meth:`LSTMProposer.rollout` by the test suite (same maths, same inputs)."""

    def __init__(self, m: LSTMProposer) -> None:
        sd = {k: v.detach().double().cpu().numpy() for k, v in m.state_dict().items()}
        self.layers = [(sd[f"lstm.weight_ih_l{i}"], sd[f"lstm.weight_hh_l{i}"],
                        sd[f"lstm.bias_ih_l{i}"] + sd[f"lstm.bias_hh_l{i}"]) for i in range(m.layers)]
        self.head_w, self.head_b = sd["head.weight"], sd["head.bias"]
        self.design = sd.get("design")
        self.max_dim, self.hidden, self.incumbent = m.max_dim, m.hidden, m.incumbent

    def _std(self, n: int, s1: float, s2: float, y: float) -> float:
        if n < 2:
            return 0.0
        mean = s1 / n
        std = max(math.sqrt(max(s2 / n - mean * mean, 0.0) + 1e-12), 1e-6)
        return min(Y_CLIP, max(-Y_CLIP, (y - mean) / std))

    def _forward(self, st: _State, x: np.ndarray | None, y_std: float, finished: bool, index: int, **upd) -> _State:
        md, d = self.max_dim, st.dim
        mask = np.zeros(md)
        mask[:d] = 1.0
        xin = np.zeros(md) if x is None else (2.0 * x - 1.0) * mask
        parts = [xin, mask, [y_std if finished else 0.0, 1.0 if finished else 0.0]]
        n, s1, s2, x_best, y_best = (upd.get(k, getattr(st, k)) for k in ("n", "s1", "s2", "x_best", "y_best"))
        if self.incumbent:
            best_std = 0.0 if n < 2 else self._std(n, s1, s2, y_best)
            des = self.design[index % DESIGN_LEN]
            parts += [(2.0 * x_best - 1.0) * mask, [best_std], (2.0 * des - 1.0) * mask, [min(index, 200) / 100.0]]
        inp = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        hs, cs = st.h.copy(), st.c.copy()
        for li, (wi, wh, b) in enumerate(self.layers):
            z = wi @ inp + wh @ hs[li] + b
            hn = self.hidden
            i, f, g, o = _sigmoid(z[:hn]), _sigmoid(z[hn:2 * hn]), np.tanh(z[2 * hn:3 * hn]), _sigmoid(z[3 * hn:])
            cs[li] = f * cs[li] + i * g
            hs[li] = o * np.tanh(cs[li])
            inp = hs[li]
        z = self.head_w @ inp + self.head_b
        if self.incumbent:
            xb = np.clip(x_best, 1e-4, 1 - 1e-4)
            radius = math.exp(min(2.0, max(-6.0, z[md])))
            pull = 1.0 / (1.0 + math.exp(-z[md + 1]))
            direction = 2.0 * self.design[index % DESIGN_LEN] - 1.0
            u = _sigmoid(pull * (np.log(xb) - np.log1p(-xb)) + radius * direction + z[:md])
        else:
            u = _sigmoid(z)
        return _State(hs, cs, u * mask, index, d, n, s1, s2, x_best, y_best)

    def start(self, dim: int) -> _State:
        h = np.zeros((len(self.layers), self.hidden))
        st = _State(h, h.copy(), np.zeros(self.max_dim), 0, dim, 0, 0.0, 0.0, np.full(self.max_dim, 0.5), math.inf)
        return self._forward(st, None, 0.0, True, 0)

    def advance(self, st: _State, coords: tuple, y: float, finished: bool) -> _State:
        x = np.zeros(self.max_dim)
        x[:len(coords)] = coords
        index = st.index + 1
        if not finished:
            return self._forward(st, x, 0.0, False, index)
        n, s1, s2 = st.n + 1, st.s1 + y, st.s2 + y * y
        y_std = self._std(n, s1, s2, y)
        better = y < st.y_best
        return self._forward(st, x, y_std, True, index, n=n, s1=s1, s2=s2,
                             x_best=x if better else st.x_best, y_best=y if better else st.y_best)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _live_trials(study: Study) -> list[FrozenTrial]:
    """The study's finished and running trials (no copies)."""
    return study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING), use_cache=True)


def _load(name: str | None) -> LSTMProposer | SetProposer | AcquisitionProposer:
    from learnt.blackbox.pretrained import load_pretrained
    return load_pretrained(name)
