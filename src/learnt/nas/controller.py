"""The RNN controller of Zoph & Le (2017): an LSTM that emits an architecture token by token.

Each conv decision (filter height, width, number of filters, stride) is one LSTM step: a
softmax over that decision's choices, whose sampled value is embedded and fed back as the
next input. After a layer's conv tokens, one more step gives the layer's *anchor* state
``a_i``; layer ``i`` takes layer ``j < i`` as input with probability

    P(j -> i) = sigmoid(v^T tanh(W_prev a_j + W_curr a_i))

and the mean of the chosen anchors is the next input (zeros when none). The same heads are
shared by every layer, so one controller covers every depth of the curriculum.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Categorical

from learnt.errors import ConfigError
from learnt.nas.space import SearchSpace


class Controller(nn.Module):
    """Stacked-LSTMCell controller over a :class:`SearchSpace`.

    Parameters start uniform in ``[-init_range, init_range]`` drawn from ``seed``.
    ``forward(m, num_layers, g)`` samples ``m`` token sequences; ``forward(..., tokens=T)``
    scores given sequences ``T`` (m, n_tokens). Both return ``(tokens (m, n_tokens) long,
    log_prob (m,), entropy (m,))``; log-prob and entropy carry the graph to the parameters.

    Example:
        >>> c = Controller(SearchSpace())
        >>> tokens, logp, ent = c(5, 3, torch.Generator().manual_seed(0))
        >>> tokens.shape, logp.shape
        (torch.Size([5, 12]), torch.Size([5]))
    """

    def __init__(self, space: SearchSpace, hidden_size: int = 35, num_layers: int = 2,
                 init_range: float = 0.1, temperature: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if hidden_size < 1 or num_layers < 1:
            raise ConfigError(f"controller hidden_size={hidden_size}, num_layers={num_layers}; expected both >= 1")
        if not temperature > 0:
            raise ConfigError(f"controller temperature={temperature}; expected > 0")
        self.space = space
        self.hidden_size = hidden_size
        self.temperature = temperature
        H = hidden_size
        self.cells = nn.ModuleList([nn.LSTMCell(H, H) for _ in range(num_layers)])
        self.start = nn.Parameter(torch.zeros(H))
        kinds = space.conv_kinds
        self.embed = nn.ModuleDict({k: nn.Embedding(len(space.choices(k)), H) for k in kinds})
        self.heads = nn.ModuleDict({k: nn.Linear(H, len(space.choices(k))) for k in kinds})
        self.w_prev = nn.Linear(H, H, bias=False)
        self.w_curr = nn.Linear(H, H, bias=False)
        self.v = nn.Linear(H, 1, bias=False)
        g = torch.Generator().manual_seed(seed)  # the initial policy is part of the seeded run
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.empty(p.shape).uniform_(-init_range, init_range, generator=g))

    def _step(self, x: Tensor, state: list[tuple[Tensor, Tensor]]) -> Tensor:
        for k, cell in enumerate(self.cells):
            state[k] = cell(x, state[k])
            x = state[k][0]
        return x

    def forward(self, m: int, num_layers: int, g: torch.Generator | None = None,
                tokens: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        space = self.space
        space.check_layers(num_layers)
        n_tok = space.num_tokens(num_layers)
        if tokens is not None:
            tokens = torch.as_tensor(tokens, dtype=torch.long)
            if tokens.shape != (m, n_tok):
                raise ValueError(f"tokens of shape {tuple(tokens.shape)}; expected ({m}, {n_tok}) for {num_layers} layers")
        elif g is None:
            raise ValueError("sampling needs a torch.Generator g (or pass tokens to score)")
        dev = self.start.device
        H = self.hidden_size
        state = [(torch.zeros(m, H, device=dev), torch.zeros(m, H, device=dev)) for _ in self.cells]
        x = self.start.expand(m, H)
        out, logp, ent = [], torch.zeros(m, device=dev), torch.zeros(m, device=dev)
        anchors, anchor_proj = [], []

        def pick(dist, pos):
            if tokens is not None:
                return tokens[:, pos].to(dev)
            u = torch.rand(m, generator=g).to(dev)
            if isinstance(dist, Bernoulli):
                return (u < dist.probs.detach()).long()
            cdf = dist.probs.detach().cumsum(-1)
            return torch.searchsorted(cdf, u[:, None]).squeeze(1).clamp_max(cdf.shape[-1] - 1)

        pos = 0
        for i in range(num_layers):
            for kind in space.conv_kinds:
                h = self._step(x, state)
                dist = Categorical(logits=self.heads[kind](h) / self.temperature)
                a = pick(dist, pos)
                logp = logp + dist.log_prob(a)
                ent = ent + dist.entropy()
                out.append(a)
                x = self.embed[kind](a)
                pos += 1
            h = self._step(x, state)  # the anchor point of layer i
            if i > 0:
                prev = torch.stack(anchor_proj, 1)                                       # (m, i, H)
                logits = self.v(torch.tanh(prev + self.w_curr(h)[:, None])).squeeze(-1)  # (m, i)
                dist = Bernoulli(logits=logits / self.temperature)
                a = torch.stack([pick(Bernoulli(logits=dist.logits[:, j]), pos + j) for j in range(i)], 1)
                logp = logp + dist.log_prob(a.float()).sum(1)
                ent = ent + dist.entropy().sum(1)
                out += list(a.unbind(1))
                pos += i
                chosen = a.float()
                x = (chosen[:, :, None] * torch.stack(anchors, 1)).sum(1) / chosen.sum(1, keepdim=True).clamp_min(1.0)
            else:
                x = torch.zeros_like(h)
            anchors.append(h)
            anchor_proj.append(self.w_prev(h))
        return torch.stack(out, 1), logp, ent


class UniformPolicy:
    """Random search: every conv token uniform over its choices, every skip a fair coin.

    Same call signature as :class:`Controller` (tokens, log-prob, entropy), no parameters.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, m: int, num_layers: int, g: torch.Generator | None = None,
                 tokens: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        if tokens is None:
            if g is None:
                raise ValueError("sampling needs a torch.Generator g")
            cols = []
            for kind, _, _ in self.space.layout(num_layers):
                n = 2 if kind == "skip" else len(self.space.choices(kind))
                cols.append(torch.randint(n, (m,), generator=g))
            tokens = torch.stack(cols, 1)
        lp = 0.0
        for kind, _, _ in self.space.layout(num_layers):
            lp -= torch.log(torch.tensor(2.0 if kind == "skip" else float(len(self.space.choices(kind)))))
        lp_t = torch.full((m,), float(lp))
        return tokens, lp_t, -lp_t
