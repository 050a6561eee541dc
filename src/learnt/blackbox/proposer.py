"""The learned black-box optimizer: an LSTM that proposes the next query from the last result.

Chen et al. (2017): ``h_t, x_t = RNN(h_{t-1}, x_{t-1}, y_{t-1})``. learnt's proposer is one
network for every dimension up to ``max_dim`` (the paper trained one per dimension): the
query is zero-padded to ``max_dim`` and a 0/1 mask of the active coordinates is part of the
input, so a run in d = 3 and one in d = 9 share phi.

Input of one step (width ``2 max_dim + 2``): the query ``x`` in ``[0, 1]^d`` mapped to
``[-1, 1]`` and zero-padded, the active-coordinate mask, the standardised result ``y`` and
the flag ``o`` (1: finished, ``y`` is real; 0: pending, ``y`` = 0) of the paper's parallel
variant. ``y`` is standardised by the mean and standard deviation of every finished result
so far (the paper leaves this open), so the network is invariant to the objective's offset
and scale. The first step is a dummy input (x = 0, y = 0, o = 1).

With ``parallel = P`` the proposer works like P workers: query t is proposed knowing the
finished results of queries 0..t-P (committed into the LSTM state in order) and the
pending queries t-P+1..t-1 (fed after them with o = 0, on a branch of the state that is
then discarded). This is exactly what :class:`~learnt.blackbox.sampler.LearnedSampler`
replays from an Optuna study's history: finished trials in order, then running ones.

Example:
    >>> import torch
    >>> from learnt.blackbox import GPFunctionFamily
    >>> fns = GPFunctionFamily(dim=3, n_functions=4).sample(torch.Generator().manual_seed(0))
    >>> run = LSTMProposer().rollout(fns, dim=3, steps=10)
    >>> run.x.shape, run.y.shape
    (torch.Size([4, 10, 3]), torch.Size([4, 10]))
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from learnt.errors import CheckpointError, ConfigError

from learnt.io import read_model
from learnt.learned.serialization import check_state_dict

PROPOSER_KIND = "bbo-lstm"
Y_CLIP = 5.0
DESIGN_LEN = 1024


@dataclass
class Rollout:
    """A batch of query sequences: ``x`` (K, T, d) in the unit cube, ``y`` (K, T) the results."""

    x: Tensor
    y: Tensor

    def best_so_far(self) -> Tensor:
        """(K, T): the lowest result among the first t + 1 queries."""
        return torch.cummin(self.y, dim=1).values


class RunningStats:
    """Mean and standard deviation of the finished results of each of K runs, updated in order.

    ``standardise(y)`` adds ``y`` (K,) to the running sums (kept in float64, so objectives
    of any scale are safe) and returns it standardised by the statistics that include it:
    0 for the first result, clipped to +-``Y_CLIP``, in ``y``'s dtype. Differentiable in ``y``.
    """

    def __init__(self, k: int, device: torch.device | str = "cpu") -> None:
        self.n = 0
        self.s1 = torch.zeros(k, dtype=torch.float64, device=device)
        self.s2 = torch.zeros(k, dtype=torch.float64, device=device)

    def copy(self) -> "RunningStats":
        new = RunningStats.__new__(RunningStats)
        new.n, new.s1, new.s2 = self.n, self.s1, self.s2
        return new

    def standardise(self, y: Tensor) -> Tensor:
        yd = y.double()
        self.n += 1
        self.s1 = self.s1 + yd
        self.s2 = self.s2 + yd * yd
        if self.n == 1:
            return torch.zeros_like(y)
        mean = self.s1 / self.n
        var = (self.s2 / self.n - mean * mean).clamp_min(0.0)
        std = torch.sqrt(var + 1e-12).clamp_min(1e-6)
        return ((yd - mean) / std).clamp(-Y_CLIP, Y_CLIP).to(y.dtype)


class QueryHistory:
    """What the proposer knows of K runs' finished queries: running statistics of the
    results and the incumbent (best query so far, (K, max_dim), and its result).

    ``commit(x, y)`` records finished queries ``x`` (K, max_dim) with results ``y`` (K,)
    and returns ``y`` standardised. Copies are cheap (tensors are never modified in place).
    """

    def __init__(self, k: int, max_dim: int, like: Tensor) -> None:
        self.stats = RunningStats(k, like.device)
        self.x_best = torch.full((k, max_dim), 0.5, dtype=like.dtype, device=like.device)
        self.y_best = torch.full((k,), math.inf, dtype=torch.float64, device=like.device)

    def copy(self) -> "QueryHistory":
        new = QueryHistory.__new__(QueryHistory)
        new.stats, new.x_best, new.y_best = self.stats.copy(), self.x_best, self.y_best
        return new

    def commit(self, x: Tensor, y: Tensor) -> Tensor:
        y_std = self.stats.standardise(y)
        better = y.double() < self.y_best
        self.y_best = torch.where(better, y.double().detach(), self.y_best)
        self.x_best = torch.where(better.unsqueeze(1), x, self.x_best)
        return y_std

    def best_standardised(self) -> Tensor:
        st = self.stats
        if st.n < 2:
            return torch.zeros_like(self.y_best, dtype=self.x_best.dtype)
        mean = st.s1 / st.n
        std = torch.sqrt((st.s2 / st.n - mean * mean).clamp_min(0.0) + 1e-12).clamp_min(1e-6)
        return ((self.y_best - mean) / std).clamp(-Y_CLIP, Y_CLIP).to(self.x_best.dtype)


class ProposerBase(nn.Module):
    """What both proposer kinds share: the active-coordinate mask, the Sobol design, the
    dimension checks and the set-up of a rollout. Subclasses set ``max_dim`` and register a
    ``design`` buffer (DESIGN_LEN, max_dim)."""

    max_dim: int

    # the update-rule contract's init: a proposer carries no per-parameter state
    def init(self, params=None, n_problems: int = 1) -> dict:
        return {}

    def check_dim(self, dim: int) -> None:
        if isinstance(dim, bool) or int(dim) != dim or not 1 <= dim <= self.max_dim:
            raise ConfigError(f"dim={dim!r}; this proposer serves dimensions 1..{self.max_dim}")

    def mask(self, dim: int | Tensor, k: int, like: Tensor) -> Tensor:
        """(K, max_dim) 0/1 mask of the active coordinates; ``dim`` an int or per-run dims (K,)."""
        d = torch.as_tensor(dim, device=like.device).expand(k) if not torch.is_tensor(dim) or dim.ndim == 0 else dim
        return (torch.arange(self.max_dim, device=like.device) < d.to(like.device).unsqueeze(1)).to(like.dtype)

    def design_point(self, index: int, like: Tensor) -> Tensor:
        """The ``index``-th design point (1, max_dim) (the design repeats after DESIGN_LEN)."""
        return self.design[index % DESIGN_LEN].to(like).unsqueeze(0)

    def _rollout_setup(self, fn, dim, steps: int, parallel: int, n_functions, first):
        """Checks and shared values of a rollout: (K, a parameter to take device and dtype
        from, mask (K, max_dim), ``first`` as (K, F, d) or None, width of the returned queries)."""
        mixed = torch.is_tensor(dim) and dim.ndim == 1
        if mixed:
            if int(dim.min()) < 1 or int(dim.max()) > self.max_dim:
                raise ConfigError(f"dims {dim.tolist()} outside 1..{self.max_dim}")
        else:
            self.check_dim(int(dim))
        if steps < 1 or parallel < 1:
            raise ConfigError(f"steps={steps}, parallel={parallel}; expected both >= 1")
        k = int(n_functions if n_functions is not None else fn.n_functions)
        like = next(self.parameters())
        if first is not None and first.ndim == 2:
            first = first.unsqueeze(1)
        return k, like, self.mask(dim, k, like), first, self.max_dim if mixed else int(dim)


class LSTMProposer(ProposerBase):
    """LSTM proposer of queries in ``[0, 1]^d`` for any ``d <= max_dim`` (phi of Chen et al.).

    Args:
        max_dim: the largest problem dimension the network serves.
        hidden: LSTM width.
        layers: LSTM depth.
        incumbent: also feed the best query so far with its standardised result, and the
            t-th point ``s_t`` of a fixed scrambled Sobol design (a buffer of the model), and
            propose, in logit space, a quasi-random step of learned radius from a learned
            centre between the cube's centre and the incumbent:
            ``x = sigmoid(g logit(x_best) + R (2 s_t - 1) + b)`` with ``g`` in (0, 1), ``R``
            and the offset ``b`` emitted by the LSTM at every step. A large radius with
            ``g`` ~ 0 explores the cube, a small one with ``g`` ~ 1 is a local search; it
            starts exploring (R = 2, g ~ 0.05) and meta-training learns the schedule. ``False`` is the paper's plain proposer
            ``x = sigmoid(a)`` on (x, y, o) inputs.

    ``step(inp, hc, hist)`` advances the LSTM by one input and returns the proposal
    (K, max_dim) in (0, 1) and the new state; :meth:`rollout` runs whole sequences on a
    batch of functions; :meth:`encode` builds step inputs.
    """

    kind = PROPOSER_KIND

    def __init__(self, max_dim: int = 10, hidden: int = 64, layers: int = 2, incumbent: bool = True) -> None:
        super().__init__()
        for name, v in (("max_dim", max_dim), ("hidden", hidden), ("layers", layers)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ConfigError(f"{name}={v!r}; expected a positive integer")
        self.max_dim, self.hidden, self.layers = int(max_dim), int(hidden), int(layers)
        self.incumbent = bool(incumbent)
        self.lstm = nn.LSTM(self.input_size, self.hidden, self.layers)
        self.head = nn.Linear(self.hidden, (self.max_dim + 2) if self.incumbent else self.max_dim)
        if self.incumbent:
            from torch.quasirandom import SobolEngine
            self.register_buffer("design", SobolEngine(self.max_dim, scramble=True, seed=0).draw(DESIGN_LEN))
        with torch.no_grad():  # start near the centre, with small coordinate-dependent offsets
            self.head.weight.mul_(0.1)
            if self.incumbent:
                self.head.bias[-2:] = torch.tensor([math.log(2.0), -3.0])  # radius 2, centre ~ the cube's

    def config(self) -> dict:
        return {"max_dim": self.max_dim, "hidden": self.hidden, "layers": self.layers, "incumbent": self.incumbent}

    @property
    def input_size(self) -> int:
        return (4 * self.max_dim + 4) if self.incumbent else (2 * self.max_dim + 2)

    def new_history(self, k: int, like: Tensor | None = None) -> QueryHistory:
        return QueryHistory(k, self.max_dim, next(self.parameters()) if like is None else like)

    def encode(self, x: Tensor | None, y_std: Tensor, finished: bool, mask: Tensor, hist: QueryHistory,
               index: int = 0) -> Tensor:
        """Step input (K, input_size) from queries ``x`` (K, max_dim), zero outside ``mask``
        (None: the dummy first input), standardised results ``y_std`` (K,), the finished
        flag and (with ``incumbent``) the history's incumbent, the step's position
        ``index`` in the query sequence (the number of queries fed so far) and its design point."""
        flag = torch.full_like(y_std, 1.0 if finished else 0.0)
        xin = torch.zeros_like(mask) if x is None else (2.0 * x - 1.0) * mask
        parts = [xin, mask, (y_std if finished else torch.zeros_like(y_std)).unsqueeze(1), flag.unsqueeze(1)]
        if self.incumbent:
            parts += [(2.0 * hist.x_best - 1.0) * mask, hist.best_standardised().unsqueeze(1),
                      (2.0 * self.design_point(index, mask) - 1.0) * mask,
                      torch.full_like(y_std, min(index, 200) / 100.0).unsqueeze(1)]
        return torch.cat(parts, dim=1)

    def initial_state(self, k: int, like: Tensor | None = None) -> tuple[Tensor, Tensor]:
        p = next(self.parameters()) if like is None else like
        z = p.new_zeros(self.layers, k, self.hidden)
        return z, z.clone()

    def step(self, inp: Tensor, hc: tuple[Tensor, Tensor], hist: QueryHistory,
             index: int = 0) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One LSTM step: (K, input_size) -> proposal (K, max_dim) in (0, 1) for query
        ``index`` (the same index as the input's), new state."""
        out, hc = self.lstm(inp.unsqueeze(0), hc)
        z = self.head(out[0])
        if not self.incumbent:
            return torch.sigmoid(z), hc
        m = self.max_dim
        xb = hist.x_best.clamp(1e-4, 1 - 1e-4)
        radius = torch.exp(z[:, m:m + 1].clamp(-6.0, 2.0))
        pull = torch.sigmoid(z[:, m + 1:m + 2])
        direction = 2.0 * self.design_point(index, z) - 1.0
        return torch.sigmoid(pull * (torch.log(xb) - torch.log1p(-xb)) + radius * direction + z[:, :m]), hc

    def rollout(self, fn: Callable[[Tensor], Tensor], dim: int | Tensor, steps: int, parallel: int = 1,
                n_functions: int | None = None, first: Tensor | None = None) -> Rollout:
        """Run ``steps`` queries on K functions at once, differentiably.

        Args:
            fn: maps queries (K, d) to results (K,) (GP samples, benchmarks, ...); with
                per-run dimensions, queries come zero-padded to (K, max_dim).
            dim: d (an int), or a (K,) tensor of per-run dimensions (mixed batches).
            steps: T, the number of queries.
            parallel: P, the number of outstanding queries (1: sequential).
            n_functions: K (default ``fn.n_functions``).
            first: optional first queries (K, d) or (K, F, d) used instead of the proposer's
                (what :class:`~learnt.blackbox.sampler.LearnedSampler` sees when Optuna's
                first trials come from the fallback sampler).
        Returns:
            :class:`Rollout` with x (K, T, d) (d = max_dim for mixed batches) and y (K, T).
        """
        k, like, mask, first, width = self._rollout_setup(fn, dim, steps, parallel, n_functions, first)
        hist = self.new_history(k, like)
        zeros = like.new_zeros(k)
        hc = self.initial_state(k)
        u, hc = self.step(self.encode(None, zeros, True, mask, hist, 0), hc, hist, 0)
        xs: list[Tensor] = []
        ys: list[Tensor] = []
        committed = 0
        for t in range(steps):
            # commit the finished queries 0..t-P, in order
            while committed <= t - parallel:
                y_std = hist.commit(xs[committed], ys[committed])
                committed += 1
                u, hc = self.step(self.encode(xs[committed - 1], y_std, True, mask, hist, committed), hc, hist,
                                  committed)
            prop, branch = u, hc
            for j in range(committed, t):  # pending queries, on a discarded branch of the state
                prop, branch = self.step(self.encode(xs[j], zeros, False, mask, hist, j + 1), branch, hist, j + 1)
            x = prop * mask
            if first is not None and t < first.shape[1]:
                x = torch.nn.functional.pad(first[:, t].to(x), (0, self.max_dim - first.shape[2])) * mask
            xs.append(x)
            ys.append(fn(x[:, :width]))
        return Rollout(torch.stack(xs, 1)[:, :, :width], torch.stack(ys, 1))


def proposer_classes() -> dict[str, type]:
    """The proposer kinds a model file may hold: the paper's LSTM, the set (attention) proposer
    and the learned acquisition function."""
    from learnt.blackbox.acquisition import AcquisitionProposer
    from learnt.blackbox.set_proposer import SetProposer
    return {LSTMProposer.kind: LSTMProposer, SetProposer.kind: SetProposer, AcquisitionProposer.kind: AcquisitionProposer}


def load_proposer(path, map_location: str = "cpu") -> nn.Module:
    """Load a proposer (either kind) saved with :func:`learnt.learned.save_rule` (clear errors otherwise)."""
    src = str(path)
    classes = proposer_classes()
    payload = read_model(path, list(classes), map_location)
    kind = payload["kind"]
    try:
        model = classes[kind](**payload["config"])
    except (TypeError, ConfigError) as e:
        raise CheckpointError(f"{src!r}: config {payload.get('config')!r} does not fit {kind!r} ({e})") from None
    check_state_dict(model, payload["state_dict"], src)
    model.load_state_dict(payload["state_dict"])
    model.meta = dict(payload.get("meta", {}))
    return model.eval()
