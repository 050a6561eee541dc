"""LearnedSampler: equivalence with the batched rollout, pending trials, fallbacks, and several
worker processes on one storage. Optuna's own conformance suites are in
test_sampler_conformance.py; test_optuna_oldest.py reruns this file under the oldest Optuna
the package supports."""
import subprocess
import sys

import optuna
import pytest
import torch

from learnt.blackbox import GPFunctionFamily, LearnedSampler, LSTMProposer
from learnt.learned import save_rule

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _proposer(max_dim=4, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LSTMProposer(max_dim=max_dim, hidden=16)


def _gp(dim, seed=0):
    return GPFunctionFamily(dim=dim, n_functions=1, n_features=64, dtype=torch.float64).sample(
        torch.Generator().manual_seed(seed))


def _objective(f, dim, sign=1.0):
    def obj(trial):
        x = torch.tensor([[trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)]], dtype=torch.float64)
        return sign * float(f(x)[0])
    return obj


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_sequential_study_replays_exactly_the_batched_rollout(direction):
    dim, n = 3, 12
    m, f = _proposer(), _gp(dim)
    study = optuna.create_study(direction=direction, sampler=LearnedSampler(m))
    study.optimize(_objective(f, dim, 1.0 if direction == "minimize" else -1.0), n_trials=n)
    got = torch.tensor([[t.params[f"x{i}"] for i in range(dim)] for t in study.trials], dtype=torch.float64)
    with torch.no_grad():  # Optuna's first trial comes from the fallback (no joint space yet)
        ref = m.double().rollout(f, dim, n, first=got[:1]).x[0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_running_trials_are_fed_as_pending_like_the_parallel_rollout():
    dim, n = 2, 8
    m, f = _proposer(), _gp(dim, 1)
    study = optuna.create_study(sampler=LearnedSampler(m))
    obj, trials = _objective(f, dim), []
    trials.append(study.ask())
    first_val = obj(trials[0])
    for t in range(1, n):  # two workers: ask the next before telling the previous
        trials.append(study.ask())
        val = obj(trials[t])
        study.tell(trials[t - 1], first_val if t == 1 else prev_val)
        prev_val = val
    got = torch.tensor([[tr.params[f"x{i}"] for i in range(dim)] for tr in trials], dtype=torch.float64)
    with torch.no_grad():  # trials 0 and 1 both start before any trial finished: fallback
        ref = m.double().rollout(f, dim, n, parallel=2, first=got[None, :2]).x[0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


class _Recorder(optuna.samplers.RandomSampler):
    def __init__(self):
        super().__init__(seed=0)
        self.independent = []

    def sample_independent(self, study, trial, name, dist):
        self.independent.append((trial.number, name))
        return super().sample_independent(study, trial, name, dist)


def test_fallback_beyond_horizon_and_for_conditional_parameters():
    rec = _Recorder()
    study = optuna.create_study(sampler=LearnedSampler(_proposer(), horizon=6, fallback=rec))

    def obj(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 2:
            trial.suggest_int("extra", 1, 3)
        return x
    study.optimize(obj, n_trials=9)
    by_trial = {}
    for num, name in rec.independent:
        by_trial.setdefault(num, set()).add(name)
    assert by_trial[0] == {"x"}                           # empty history: nothing is joint yet
    assert all(by_trial.get(i) == {"extra"} for i in (1, 3, 5))  # conditional parameter only
    assert all("x" in by_trial[i] for i in (6, 7, 8))        # beyond the horizon: the fallback does all


def test_search_space_wider_than_the_proposer_uses_the_fallback():
    rec = _Recorder()
    study = optuna.create_study(sampler=LearnedSampler(_proposer(max_dim=2), fallback=rec))
    study.optimize(lambda t: sum(t.suggest_float(f"x{i}", 0, 1) for i in range(3)), n_trials=3)
    assert len(rec.independent) == 9


def test_memo_gives_the_same_suggestion_as_a_full_replay():
    m = _proposer()
    a, b = LearnedSampler(m), LearnedSampler(m)
    done = [(i, (0.1 * i, 0.5), float((i - 3) ** 2)) for i in range(7)]
    a.propose(done[:4], [], 2, key=("k",))
    torch.testing.assert_close(a.propose(done, [(0.2, 0.2)], 2, key=("k",)), b.propose(done, [(0.2, 0.2)], 2))
    changed = done[:2] + [(2, (0.9, 0.9), 5.0)] + done[3:]   # a rewritten prefix invalidates the memo
    torch.testing.assert_close(a.propose(changed, [], 2, key=("k",)), b.propose(changed, [], 2))


def test_default_sampler_loads_the_shipped_proposer():
    from learnt.blackbox import pretrained_proposers
    if not pretrained_proposers():
        pytest.skip("no shipped proposer in this checkout")
    s = LearnedSampler()
    assert s.proposer.kind == "bbo-acq" and s.horizon == 200


def test_unknown_proposer_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no shipped proposer named 'nope'"):
        LearnedSampler("nope")


WORKER = """
import sys, optuna, torch
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna.storages import JournalStorage
try:
    from optuna.storages.journal import JournalFileBackend
except ImportError:                     # Optuna < 4
    from optuna.storages import JournalFileStorage as JournalFileBackend
from learnt.blackbox import LearnedSampler
storage = JournalStorage(JournalFileBackend(sys.argv[1]))
study = optuna.load_study(study_name="s", storage=storage, sampler=LearnedSampler(sys.argv[2]))
study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 0.5) ** 2 + t.suggest_int("n", 1, 8), n_trials=8)
"""


def test_two_worker_processes_share_one_journal_storage(tmp_path):
    from optuna.storages import JournalStorage
    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:                 # Optuna < 4
        from optuna.storages import JournalFileStorage as JournalFileBackend
    path = str(tmp_path / "journal.log")
    save_rule(_proposer(), tmp_path / "p.pt")
    optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(path)))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, path, str(tmp_path / "p.pt")],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(path)))
    trials = study.get_trials()
    assert len(trials) == 16
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(16))


def test_one_sampler_reused_across_many_studies_and_storages_matches_fresh_samplers():
    """The replay caches are keyed on (study id, id(storage)), which Optuna recycles for
    in-memory studies; every suggestion must still equal a fresh sampler's."""
    import gc

    from learnt.blackbox import sampler as sampler_mod

    shared = LearnedSampler(_proposer(max_dim=2), seed=0)
    for i in range(2 * getattr(sampler_mod, "MAX_CACHED_STUDIES", 32) + 4):
        f = _gp(2, seed=i)
        fresh = LearnedSampler(_proposer(max_dim=2), seed=0)
        a = optuna.create_study(sampler=shared)
        b = optuna.create_study(sampler=fresh)
        for study in (a, b):          # the same start (the fallback's RNG carries across studies)
            study.enqueue_trial({"x0": 0.1 * (i % 7), "x1": 0.5})
            study.enqueue_trial({"x0": 0.9, "x1": 0.05 * (i % 5)})
            study.optimize(_objective(f, 2, sign=1.0 if i % 2 else -1.0), n_trials=5)
        assert [t.params for t in a.trials] == [t.params for t in b.trials], i
        del a, b
        gc.collect()                 # free the storages so their id()s are recycled
    assert len(shared._memo) <= getattr(sampler_mod, "MAX_CACHED_STUDIES", 32)
    assert len(shared._encoded) <= getattr(sampler_mod, "MAX_CACHED_STUDIES", 32)


def test_sampler_leaves_the_callers_module_as_it_was():
    prop = _proposer()
    prop.train()
    LearnedSampler(prop, seed=0)
    assert prop.training
